"""Every Slack message il2watch sends, as pure functions: records in, Block Kit, text and metadata out.

Text from outside (titles, abstracts, names, summaries, labels) is always escaped, so nothing
il2watch posts can ping a channel or hide a link; every message stays inside Block Kit's limits,
shortening with an ellipsis rather than failing.
"""

from il2watch.render.abstract import render_abstract_thread
from il2watch.render.blocks import Message, check_limits
from il2watch.render.digest import render_digest
from il2watch.render.followup import render_followup, render_followup_dm
from il2watch.render.notes import (
    render_baseline_note,
    render_note,
    render_source_baseline_note,
    render_watch_announcement,
)
from il2watch.render.paper import authors_line, describe_reason, render_paper
from il2watch.render.terminal import render_terminal

__all__ = [
    "Message",
    "authors_line",
    "check_limits",
    "describe_reason",
    "render_abstract_thread",
    "render_baseline_note",
    "render_digest",
    "render_followup",
    "render_followup_dm",
    "render_note",
    "render_source_baseline_note",
    "render_paper",
    "render_terminal",
    "render_watch_announcement",
]
