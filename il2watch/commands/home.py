"""The App Home tab: the service's status and the latest papers, rebuilt each time someone opens it."""

from __future__ import annotations

from typing import Any

from il2watch.commands.reply import Context, paper_list
from il2watch.commands.status import status_facts, status_mrkdwn
from il2watch.render.blocks import context, plain_text, section

HOME_PAPERS = 15


def home_view(ctx: Context) -> dict[str, Any]:
    """A ``home`` view for views.publish (no buttons that need a response_url: the Home tab has none)."""
    facts = status_facts(ctx.library, ctx.settings, ctx.now())
    latest = paper_list(ctx.library, ctx.library.recent(limit=HOME_PAPERS), ctx.watch_map, details=False)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": plain_text("il2watch")},
        section(status_mrkdwn(facts)),
        {"type": "divider"},
        {"type": "header", "text": plain_text("Latest papers")},
        *(latest or [section("No papers yet: the first poll fills the library.")]),
        {"type": "divider"},
        context(
            f"Ask in any channel: `{ctx.command} search &lt;words&gt;`, `{ctx.command} paper &lt;PMID&gt;`, "
            f"`{ctx.command} help`."
        ),
    ]
    return {"type": "home", "blocks": blocks}
