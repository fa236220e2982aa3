"""Convert PubMed's marked text into plain Unicode or safe Slack mrkdwn.

Marked text (see ``il2watch.model``) is HTML-escaped text with PubMed's inline tags. Any
other tag-like text is shown as text. Both conversions drop control and bidi-override
characters, which can hide or reorder what a reader sees.
"""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"<(/?)(i|b|u|sup|sub)>", re.IGNORECASE)
# C0/C1 controls except tab and newline, bidi marks/embeddings/overrides/isolates, zero-width space and
# word joiner, BOM. (The zero-width joiner stays: emoji sequences need it.)
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]")

_SUPERSCRIPT = dict(zip("0123456789+-−=()n i", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ⁿ ⁱ"))
_SUBSCRIPT = dict(zip("0123456789+-−=()aeoxhklmnpst ", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑₒₓₕₖₗₘₙₚₛₜ "))


def _script(text: str, table: dict[str, str], marker: str) -> str:
    """Unicode super/subscript when every character has one, else a readable marker."""
    if text and all(ch in table for ch in text):
        return "".join(table[ch] for ch in text)
    return f"{marker}{text}" if len(text) <= 1 or text.isalnum() else f"{marker}({text})"


def _convert(marked: str, *, italic: str, bold: str, escape: bool) -> str:
    out: list[str] = []
    pos = 0
    open_tags: list[str] = []
    buffer: list[str] = []  # text collected inside <sup>/<sub>

    def emit(piece: str) -> None:
        (buffer if open_tags and open_tags[-1] in ("sup", "sub") else out).append(piece)

    def text(raw: str) -> str:
        plain = _INVISIBLE.sub("", html.unescape(raw))
        if escape:
            plain = plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return plain

    for match in _TAG.finditer(marked):
        emit(text(marked[pos : match.start()]))
        pos = match.end()
        closing, tag = match.group(1) == "/", match.group(2).lower()
        if not closing:
            if tag in ("sup", "sub"):
                open_tags.append(tag)
                buffer = []
            else:
                open_tags.append(tag)
                emit(italic if tag == "i" else bold if tag == "b" else "")
        elif tag in open_tags:
            while open_tags:
                top = open_tags.pop()
                if top in ("sup", "sub"):
                    table, marker = (_SUPERSCRIPT, "^") if top == "sup" else (_SUBSCRIPT, "_")
                    emit(_script("".join(buffer), table, marker))
                    buffer = []
                else:
                    emit(italic if top == "i" else bold if top == "b" else "")
                if top == tag:
                    break
    emit(text(marked[pos:]))
    while open_tags:  # unbalanced markup: close what is open so nothing leaks
        top = open_tags.pop()
        if top in ("sup", "sub"):
            out.append("".join(buffer))
        else:
            out.append(italic if top == "i" else bold if top == "b" else "")
    return "".join(out)


def to_plain(marked: str) -> str:
    """Plain Unicode text: for search, summaries and terminal output."""
    return _convert(marked, italic="", bold="", escape=False)


def to_mrkdwn(marked: str) -> str:
    """Slack mrkdwn: italics and bold kept, everything else shown literally and pinging no one."""
    return _convert(marked, italic="_", bold="*", escape=True)


def escape_mrkdwn(plain: str) -> str:
    """Make plain text from outside safe for a mrkdwn field: no mentions, links or hidden text."""
    cleaned = _INVISIBLE.sub("", plain)
    return cleaned.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def strip_tags(marked: str) -> str:
    """Marked text without its inline tags, still HTML-escaped (for storage comparisons)."""
    return _TAG.sub("", marked)


_SPACE = re.compile(r"\s+")


def squash(text: str) -> str:
    """Collapse runs of whitespace (PubMed records carry newlines and double spaces)."""
    return _SPACE.sub(" ", text).strip()
