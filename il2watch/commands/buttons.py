"""What the buttons on il2watch's messages do to the library, and how the message shows it."""

from __future__ import annotations

import copy
import re
from typing import Any

from il2watch.commands.parsing import parse_pmid
from il2watch.commands.reply import Context, Reply, say
from il2watch.library import Library

RELEVANT, NOT_RELEVANT, SAVE = "il2_relevant", "il2_not_relevant", "il2_save"
FEEDBACK_VALUES = {RELEVANT: 1, NOT_RELEVANT: -1}
_COUNT_SUFFIX = re.compile(r" \(\d+\)$")


def known_pmid(library: Library, value: str) -> str | None:
    """The PMID a button carries, if it is one and the library has the paper."""
    pmid = parse_pmid(value or "")
    return pmid if pmid and library.paper(pmid) is not None else None


def with_feedback_counts(blocks: list[dict[str, Any]], pmid: str, counts: tuple[int, int]) -> list[dict[str, Any]]:
    """The message's blocks with the Relevant / Not relevant buttons of ``pmid`` showing ``counts``."""
    updated = copy.deepcopy(blocks)
    shown = {RELEVANT: counts[0], NOT_RELEVANT: counts[1]}
    for block in updated:
        if block.get("type") != "actions":
            continue
        for element in block.get("elements", []):
            action_id = element.get("action_id")
            if action_id in shown and element.get("value") == pmid and isinstance(element.get("text"), dict):
                label = _COUNT_SUFFIX.sub("", str(element["text"].get("text", "")))
                element["text"]["text"] = label + (f" ({shown[action_id]})" if shown[action_id] else "")
    return updated


def save_reply(ctx: Context, pmid: str) -> Reply:
    if ctx.library.save_for(ctx.user_id, pmid):
        return say(f"Saved PMID {pmid} to your reading list: `{ctx.command} saved` shows it.")
    return say(f"PMID {pmid} is already on your reading list (`{ctx.command} saved`).")
