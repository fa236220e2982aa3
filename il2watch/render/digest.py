"""Many papers in one post: the most relevant on top, the rest in the thread."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from il2watch.followups import is_retracted
from il2watch.markup import counted, escape_mrkdwn, squash
from il2watch.model import Insight, Paper, Reason, Watch
from il2watch.render.blocks import (
    MAX_BLOCKS,
    MAX_FALLBACK_TEXT,
    SEPARATOR,
    Message,
    clip,
    context,
    link,
    metadata,
    section,
)
from il2watch.render.paper import (
    DIGEST_EVENT,
    axis_label,
    feedback_block,
    posted_notices,
    title_mrkdwn,
    why_line,
)

DIGEST_PART_EVENT = "il2watch_digest_part"

ITEMS_PER_REPLY = 15  # two blocks each (the entry and its buttons): 30 of a message's 50
TOP_MAX = (MAX_BLOCKS - 2) // 2  # room for the heading and the "more in the thread" line
ENTRY_TITLE_LIMIT = 300
SUMMARY_LIMIT = 1500  # room for the whole TL;DR (at most 300 characters) once escaped

Item = tuple[Paper, Sequence[Reason], Insight]


def summary_text(summary: str) -> str:
    """Safe mrkdwn: the whole TL;DR on one line. Only the first sentence could hide the finding."""
    return clip(escape_mrkdwn(squash(summary)), SUMMARY_LIMIT)


def digest_entry(number: int, item: Item, watches: Mapping[str, Watch]) -> str:
    """Safe mrkdwn: numbered title link; axis and why; the TL;DR."""
    paper, reasons, insight = item
    retracted = "🚨 *RETRACTED* " if is_retracted(paper) else ""
    lines = [f"{number}. {retracted}*{link(paper.url, title_mrkdwn(paper, ENTRY_TITLE_LIMIT))}*"]
    second = [f"_{axis_label(insight.axis)}_"]
    if reasons:
        second.append(why_line(reasons, watches))
    lines.append(SEPARATOR.join(second))
    summary = summary_text(insight.summary)
    if summary:
        lines.append(summary)
    return "\n".join(lines)


def entry_blocks(
    number: int, item: Item, watches: Mapping[str, Watch], feedback: Mapping[str, tuple[int, int]]
) -> list[dict[str, Any]]:
    """One entry and its Relevant / Not relevant / Save buttons, like a post's."""
    key = item[0].identity
    buttons = feedback_block(key, feedback.get(key, (0, 0)), number=number)
    return [section(digest_entry(number, item, watches)), buttons]


def render_digest(
    items: Sequence[Item],
    watches: Mapping[str, Watch],
    *,
    title: str,
    watermark: dict | None = None,
    key: str = "",
    top_n: int = 5,
    feedback: Mapping[str, tuple[int, int]] | None = None,
) -> tuple[Message, list[Message]]:
    """The digest's top message and its thread replies; items keep the order they are given in.

    Every entry has the buttons a post has; ``feedback`` gives the votes so far by PMID.
    """
    feedback = feedback or {}
    top_n = max(0, min(top_n, TOP_MAX))
    head, rest = list(items[:top_n]), list(items[top_n:])
    heading = clip(escape_mrkdwn(squash(title)), 300) or "il2watch digest"
    blocks: list[dict[str, Any]] = [
        section(f"*{heading}*\n{counted(len(items), 'paper') if items else 'No new papers.'}")
    ]
    for number, item in enumerate(head, 1):
        blocks += entry_blocks(number, item, watches, feedback)
    if rest:
        blocks.append(context(f"and {len(rest)} more in the thread"))
    notices = {paper.identity: posted_notices(paper) for paper, _, _ in items if posted_notices(paper)}
    payload = {
        "papers": [paper.identity for paper, _, _ in items],
        "pmids": [paper.pmid for paper, _, _ in items if paper.pmid],
        "notices": notices or None,
        "key": key or None,
        "watermark": dict(watermark) if watermark is not None else None,
    }
    top = Message(
        text=clip(f"{heading}: {counted(len(items), 'paper')}", MAX_FALLBACK_TEXT),
        blocks=blocks,
        metadata=metadata(DIGEST_EVENT, payload),
    )
    chunks = [rest[i : i + ITEMS_PER_REPLY] for i in range(0, len(rest), ITEMS_PER_REPLY)]
    replies = []
    for part, chunk in enumerate(chunks, 1):
        first = top_n + (part - 1) * ITEMS_PER_REPLY + 1
        entries = [block for i, item in enumerate(chunk) for block in entry_blocks(first + i, item, watches, feedback)]
        last = first + len(chunk) - 1
        part_payload = {
            "papers": [paper.identity for paper, _, _ in chunk],
            "pmids": [paper.pmid for paper, _, _ in chunk if paper.pmid],
            "key": key or None,
            "part": part,
            "parts": len(chunks),
        }
        replies.append(
            Message(
                text=clip(f"{heading}: papers {first}–{last} of {len(items)}", MAX_FALLBACK_TEXT),
                blocks=entries,
                metadata=metadata(DIGEST_PART_EVENT, part_payload),
            )
        )
    return top, replies
