"""A paper's whole abstract as replies in its post's thread."""

from __future__ import annotations

from typing import Any

from il2watch.markup import escape_mrkdwn, squash, to_mrkdwn
from il2watch.model import Paper
from il2watch.render.blocks import (
    MAX_SECTION_TEXT,
    Message,
    clip,
    context,
    link,
    metadata,
    section,
    slack_len,
    split_text,
)
from il2watch.render.paper import title_text

ABSTRACT_EVENT = "il2watch_abstract"

# Real abstracts stay under ~5,000 characters; past this budget the rest is left to PubMed.
ABSTRACT_BUDGET = 15_000
REPLY_BUDGET = 6_000  # characters per reply, so no reply hides behind Slack's "Show more" for long
REPLY_BLOCKS = 20


def _paragraphs(paper: Paper) -> list[str]:
    paragraphs = []
    for part in paper.abstract:
        body = squash(to_mrkdwn(part.text))
        label = squash(escape_mrkdwn(part.label))
        if label and body:
            paragraphs.append(f"*{clip(label, 100)}:* {body}")
        elif body or label:
            paragraphs.append(body or f"*{clip(label, 100)}*")
    return paragraphs


def _within_budget(paragraphs: list[str], budget: int) -> tuple[list[str], bool]:
    """The paragraphs that fit in ``budget`` characters, the last one clipped; and whether any was cut."""
    kept: list[str] = []
    left = budget
    for paragraph in paragraphs:
        if slack_len(paragraph) <= left:
            kept.append(paragraph)
            left -= slack_len(paragraph)
            continue
        if left > 200:
            kept.append(clip(paragraph, left))
        return kept, True
    return kept, False


def _pack(blocks: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Group blocks into replies, each within REPLY_BUDGET characters and REPLY_BLOCKS blocks."""
    replies: list[list[dict[str, Any]]] = [[]]
    size = 0
    for block in blocks:
        length = slack_len(block["text"]["text"]) if "text" in block else 0
        if replies[-1] and (size + length > REPLY_BUDGET or len(replies[-1]) >= REPLY_BLOCKS):
            replies.append([])
            size = 0
        replies[-1].append(block)
        size += length
    return replies


def render_abstract_thread(paper: Paper, *, key: str = "") -> list[Message]:
    """The abstract, section labels in bold, split into replies; [] when PubMed has no abstract."""
    paragraphs, cut = _within_budget(_paragraphs(paper), ABSTRACT_BUDGET)
    if not paragraphs:
        return []
    blocks = [section(piece) for paragraph in paragraphs for piece in split_text(paragraph, MAX_SECTION_TEXT)]
    if cut:
        where = "on PubMed" if paper.pmid else "at the source"
        blocks.append(context(f"Abstract shortened. {link(paper.url, f'Read it in full {where}')}"))
    replies = _pack(blocks)
    title = title_text(paper, 200)
    messages = []
    for number, reply in enumerate(replies, 1):
        part = f", part {number} of {len(replies)}" if len(replies) > 1 else ""
        payload = {
            "paper": paper.identity,
            "pmid": paper.pmid or None,
            "part": number,
            "parts": len(replies),
            "key": key or None,
        }
        messages.append(
            Message(text=f"Abstract{part}: {title}", blocks=reply, metadata=metadata(ABSTRACT_EVENT, payload))
        )
    return messages
