"""Many papers in one post: the most relevant on top, the rest in the thread."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from il2watch.markup import escape_mrkdwn, squash
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
    pubmed_url,
    section,
)
from il2watch.render.paper import axis_label, is_retracted, title_mrkdwn, why_line

DIGEST_EVENT = "il2watch_digest"
DIGEST_PART_EVENT = "il2watch_digest_part"

ITEMS_PER_REPLY = 15
TOP_MAX = MAX_BLOCKS - 3  # room for the heading and the "more in the thread" line
ENTRY_TITLE_LIMIT = 300
SUMMARY_LINE_LIMIT = 200

Item = tuple[Paper, Sequence[Reason], Insight]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


def summary_line(summary: str) -> str:
    """Safe mrkdwn: the summary's first sentence, shortened to one line."""
    first = _SENTENCE_END.split(squash(summary), maxsplit=1)[0]
    return clip(escape_mrkdwn(first), SUMMARY_LINE_LIMIT)


def digest_entry(number: int, item: Item, watches: Mapping[str, Watch]) -> str:
    """Safe mrkdwn: numbered title link; axis and why; one line of summary."""
    paper, reasons, insight = item
    retracted = "🚨 *RETRACTED* " if is_retracted(paper) else ""
    lines = [f"{number}. {retracted}*{link(pubmed_url(paper.pmid), title_mrkdwn(paper, ENTRY_TITLE_LIMIT))}*"]
    second = [f"_{axis_label(insight.axis)}_"]
    if reasons:
        second.append(why_line(reasons, watches))
    lines.append(SEPARATOR.join(second))
    summary = summary_line(insight.summary)
    if summary:
        lines.append(summary)
    return "\n".join(lines)


def _count(n: int) -> str:
    return f"{n} paper" if n == 1 else f"{n} papers"


def render_digest(
    items: Sequence[Item],
    watches: Mapping[str, Watch],
    *,
    title: str,
    watermark: dict | None = None,
    key: str = "",
    top_n: int = 5,
) -> tuple[Message, list[Message]]:
    """The digest's top message and its thread replies; items keep the order they are given in."""
    top_n = max(0, min(top_n, TOP_MAX))
    head, rest = list(items[:top_n]), list(items[top_n:])
    heading = clip(escape_mrkdwn(squash(title)), 300) or "il2watch digest"
    blocks: list[dict[str, Any]] = [section(f"*{heading}*\n{_count(len(items)) if items else 'No new papers.'}")]
    blocks += [section(digest_entry(n, item, watches)) for n, item in enumerate(head, 1)]
    if rest:
        blocks.append(context(f"and {len(rest)} more in the thread"))
    payload = {
        "pmids": [paper.pmid for paper, _, _ in items],
        "key": key or None,
        "watermark": dict(watermark) if watermark is not None else None,
    }
    top = Message(
        text=clip(f"{heading}: {_count(len(items))}", MAX_FALLBACK_TEXT),
        blocks=blocks,
        metadata=metadata(DIGEST_EVENT, payload),
    )
    chunks = [rest[i : i + ITEMS_PER_REPLY] for i in range(0, len(rest), ITEMS_PER_REPLY)]
    replies = []
    for part, chunk in enumerate(chunks, 1):
        first = top_n + (part - 1) * ITEMS_PER_REPLY + 1
        entries = [section(digest_entry(first + i, item, watches)) for i, item in enumerate(chunk)]
        last = first + len(chunk) - 1
        part_payload = {
            "pmids": [paper.pmid for paper, _, _ in chunk],
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
