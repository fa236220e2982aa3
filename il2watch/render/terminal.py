"""A message as plain text, for ``il2watch poll`` without a Slack token."""

from __future__ import annotations

import re
from typing import Any

from il2watch.render.blocks import Message

# Links and mentions il2watch writes: <url|label>, <url>, <@U123>, <#C123>.
_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
# Slack's bold/italic markers: paired, hugging their text, not inside words (so DOIs with "_" survive).
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])")


def _link_text(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    if target.startswith(("@", "#")):
        return target
    if target.startswith("!"):
        return "@" + target[1:]
    return f"{label} ({target})" if label and label != target else target


def mrkdwn_to_plain(text: str) -> str:
    """What a reader sees in Slack, as plain text: links spelled out, markers and escapes gone."""
    text = _BOLD.sub(r"\1", text)
    text = _ITALIC.sub(r"\1", text)
    text = _LINK.sub(_link_text, text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _block_lines(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind in ("section", "header"):
        texts = [block["text"]["text"]] if block.get("text") else []
        texts += [field["text"] for field in block.get("fields", [])]
        return [mrkdwn_to_plain(text) for text in texts]
    if kind == "context":
        parts = [element.get("text", "") for element in block.get("elements", [])]
        return ["  ".join(mrkdwn_to_plain(part) for part in parts if part)]
    if kind == "divider":
        return [""]
    return []  # buttons do nothing in a terminal


def render_terminal(message: Message) -> str:
    """Readable plain text of a message: title, authors, journal, why, summary, tags, links."""
    lines = [line for block in message.blocks for line in _block_lines(block)]
    if not lines:
        lines = [mrkdwn_to_plain(message.text)]
    return "\n".join(lines).strip() + "\n"
