"""Block Kit building blocks: the message record, safe links, shortening, and Slack's limits.

Everything here works on *mrkdwn that is already safe*: text from outside has passed through
``markup.to_mrkdwn`` or ``markup.escape_mrkdwn``, so the only raw ``<`` in it are links
il2watch wrote itself. That is what lets ``clip`` and ``split_text`` avoid cutting a link or
an ``&amp;`` escape in half.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from il2watch.identity import reader_url

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_CONTEXT_ELEMENTS = 10
MAX_TEXT_OBJECT = 3000
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ID = 255
MAX_BLOCK_ID = 255
MAX_URL = 3000
# Slack cuts a message's top-level text at 40,000 characters; it is a notification line, keep it short.
MAX_FALLBACK_TEXT = 1000

ELLIPSIS = "…"
SEPARATOR = " · "

# Characters left as they are in URLs; everything else (<, >, |, &, spaces, quotes) is percent-encoded
# so that a URL can never end a mrkdwn link early or smuggle a label in.
_URL_SAFE = ":/?#[]@!$'()*+,;=%-._~"


@dataclass(frozen=True)
class Message:
    """One Slack message, ready for ``chat.postMessage``."""

    text: str  # notification and screen-reader text
    blocks: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None  # {"event_type": ..., "event_payload": {...}}

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", with_content(self.blocks))

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``WebClient.chat_postMessage`` (add ``channel`` and maybe ``thread_ts``)."""
        kwargs: dict[str, Any] = {
            "text": self.text,
            "blocks": self.blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if self.metadata is not None:
            kwargs["metadata"] = self.metadata
        return kwargs


def slack_len(text: str) -> int:
    """Length in UTF-16 code units: never less than the character count, so safe whichever Slack counts."""
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, units: int) -> str:
    """The longest prefix of ``text`` no longer than ``units`` UTF-16 code units (astral characters, such
    as emoji and mathematical letters, count two)."""
    used = 0
    for index, char in enumerate(text[:units]):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > units:
            return text[:index]
    return text[:units]


def _safe_end(head: str) -> int:
    """Where ``head`` may end without splitting one of our links or an ``&…;`` escape."""
    end = len(head)
    open_link = head.rfind("<")
    if open_link > head.rfind(">"):
        end = open_link
    amp = head.rfind("&", 0, end)
    if amp != -1 and ";" not in head[amp:end]:
        end = amp
    return end


def clip(mrkdwn: str, limit: int) -> str:
    """Shorten safe mrkdwn to ``limit`` code units, ending with an ellipsis, at a word boundary if near."""
    if slack_len(mrkdwn) <= limit:
        return mrkdwn
    head = _fit(mrkdwn, max(limit - slack_len(ELLIPSIS), 0))
    space = max(head.rfind(" ", len(head) - 40), head.rfind("\n", len(head) - 40))
    if space > 0:
        head = head[:space]
    head = head[: _safe_end(head)]
    # A zero-width joiner left at the end would glue the ellipsis into a broken emoji sequence.
    return head.rstrip().rstrip("\u200d") + ELLIPSIS


def split_text(mrkdwn: str, limit: int) -> list[str]:
    """Split safe mrkdwn into pieces of at most ``limit`` code units, preferring line then word breaks."""
    pieces: list[str] = []
    rest = mrkdwn
    while slack_len(rest) > limit:
        head = _fit(rest, limit)
        cut = head.rfind("\n", len(head) // 2)
        if cut <= 0:
            cut = head.rfind(" ", len(head) // 2)
        if cut <= 0:
            cut = len(head)
        cut = _safe_end(head[:cut]) or cut
        piece = rest[:cut].rstrip()
        if piece:
            pieces.append(piece)
        rest = rest[cut:].lstrip()
    if rest.strip():
        pieces.append(rest)
    return pieces


def safe_url(url: str) -> str:
    """A URL that cannot break out of ``<url|label>``."""
    return quote(url, safe=_URL_SAFE)[:MAX_URL]


def link(url: str, label: str) -> str:
    """A mrkdwn link; ``label`` must already be safe mrkdwn."""
    label = label.strip() or safe_url(url)
    return f"<{safe_url(url)}|{label}>"


def pubmed_url(pmid: str) -> str:
    return reader_url("pmid", pmid)


def mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object. ``verbatim`` stops Slack from turning a bare "@channel" into a mention."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def plain_text(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(clip(text, MAX_SECTION_TEXT))}


def context(*texts: str) -> dict[str, Any]:
    elements = [mrkdwn(clip(text, MAX_TEXT_OBJECT)) for text in texts if text.strip()]
    return {"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS]}


def has_content(block: Any) -> bool:
    """False for a block with nothing to show (a context or actions block without elements, a section
    without text or fields, a header without text), which Slack refuses along with its whole message."""
    if not isinstance(block, dict):
        return True  # not ours to judge here: check_limits names it
    kind = block.get("type")
    if kind in ("context", "actions"):
        return bool(block.get("elements"))
    text = block.get("text")
    has_text = isinstance(text, dict) and bool(text.get("text"))
    if kind == "section":
        return has_text or bool(block.get("fields"))
    if kind == "header":
        return has_text
    return True


def with_content(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The blocks that have something to show: a message or reply never carries an empty one (a paper
    with nothing to list in a line leaves the line out rather than have Slack refuse the message)."""
    return [block for block in blocks if has_content(block)]


def button(action_id: str, label: str, value: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id[:MAX_ACTION_ID],
        "text": plain_text(label[:MAX_BUTTON_TEXT]),
        "value": value[:MAX_BUTTON_VALUE],
    }


def metadata(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Message metadata; Slack's payload values are scalars, lists, or objects of scalars, never null."""
    return {"event_type": event_type, "event_payload": without_none(payload)}


def without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: without_none(value) if isinstance(value, dict) else value
        for key, value in values.items()
        if value is not None
    }


def _check_text(obj: Any, limit: int, where: str, problems: list[str], *, plain_only: bool = False) -> None:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        problems.append(f"{where}: not a text object")
        return
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in kinds:
        problems.append(f"{where}: text type {obj.get('type')!r} not allowed here")
    length = slack_len(obj["text"])
    if length == 0:
        problems.append(f"{where}: empty text")
    if length > limit:
        problems.append(f"{where}: text is {length} characters (limit {limit})")


def _check_section(block: dict[str, Any], where: str, problems: list[str]) -> None:
    text, fields = block.get("text"), block.get("fields")
    if text is None and not fields:
        problems.append(f"{where}: neither text nor fields")
    if text is not None:
        _check_text(text, MAX_SECTION_TEXT, f"{where} text", problems)
    if fields:
        if len(fields) > MAX_FIELDS:
            problems.append(f"{where}: {len(fields)} fields (limit {MAX_FIELDS})")
        for n, item in enumerate(fields):
            _check_text(item, MAX_FIELD_TEXT, f"{where} field {n}", problems)


def _check_context(block: dict[str, Any], where: str, problems: list[str]) -> None:
    elements = block.get("elements") or []
    if not elements:
        problems.append(f"{where}: no elements")
    if len(elements) > MAX_CONTEXT_ELEMENTS:
        problems.append(f"{where}: {len(elements)} elements (limit {MAX_CONTEXT_ELEMENTS})")
    for n, element in enumerate(elements):
        if isinstance(element, dict) and element.get("type") == "image":
            continue
        _check_text(element, MAX_TEXT_OBJECT, f"{where} element {n}", problems)


def _check_actions(block: dict[str, Any], where: str, problems: list[str]) -> None:
    elements = block.get("elements") or []
    if not elements:
        problems.append(f"{where}: no elements")
    if len(elements) > MAX_ACTIONS_ELEMENTS:
        problems.append(f"{where}: {len(elements)} elements (limit {MAX_ACTIONS_ELEMENTS})")
    for n, element in enumerate(elements):
        if not isinstance(element, dict) or element.get("type") != "button":
            continue
        here = f"{where} button {n}"
        _check_text(element.get("text"), MAX_BUTTON_TEXT, here, problems, plain_only=True)
        if len(element.get("value", "")) > MAX_BUTTON_VALUE:
            problems.append(f"{here}: value longer than {MAX_BUTTON_VALUE}")
        if len(element.get("action_id", "")) > MAX_ACTION_ID:
            problems.append(f"{here}: action_id longer than {MAX_ACTION_ID}")
        if len(element.get("url", "")) > MAX_URL:
            problems.append(f"{here}: url longer than {MAX_URL}")


def check_limits(blocks: list[dict[str, Any]]) -> list[str]:
    """Every Block Kit limit these blocks break, in words; empty when Slack will accept them."""
    problems: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks (limit {MAX_BLOCKS})")
    action_ids: list[str] = []
    for n, block in enumerate(blocks):
        if not isinstance(block, dict):
            problems.append(f"block {n}: not an object")
            continue
        kind = block.get("type")
        where = f"block {n} ({kind})"
        if len(block.get("block_id", "")) > MAX_BLOCK_ID:
            problems.append(f"{where}: block_id longer than {MAX_BLOCK_ID}")
        if kind == "section":
            _check_section(block, where, problems)
        elif kind == "header":
            _check_text(block.get("text"), MAX_HEADER_TEXT, f"{where} text", problems, plain_only=True)
        elif kind == "context":
            _check_context(block, where, problems)
        elif kind == "actions":
            _check_actions(block, where, problems)
            elements = [e for e in block.get("elements", []) if isinstance(e, dict)]
            action_ids += [element["action_id"] for element in elements if "action_id" in element]
        elif kind is None:
            problems.append(f"{where}: no type")
    duplicates = sorted({a for a in action_ids if action_ids.count(a) > 1})
    if duplicates:
        problems.append(f"action_id used twice: {', '.join(duplicates)}")
    return problems
