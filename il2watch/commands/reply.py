"""What a command answers with, what it may ask for after the ack, and the blocks its lists are made of.

A handler reads the library and returns a ``Reply``. Anything slow (PubMed, a poll, an upload) is not
done but described, as a ``Deferred`` the Slack layer runs after acknowledging, with ``Tools`` it hands in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from il2watch.config import Settings
from il2watch.followup_check import shown as shown_followups
from il2watch.followups import Followup
from il2watch.identity import describe_key
from il2watch.library import Library
from il2watch.markup import escape_mrkdwn, squash
from il2watch.model import InsightFor, Paper, Reason, Watch
from il2watch.render.blocks import (
    MAX_BUTTON_VALUE,
    MAX_FALLBACK_TEXT,
    button,
    clip,
    context,
    link,
    section,
    with_content,
)
from il2watch.render.followup import flags as followup_flags
from il2watch.render.followup import plain_note
from il2watch.render.paper import byline, title_mrkdwn, why_line

if TYPE_CHECKING:
    from il2watch.pubmed import Search

PAGE = 10  # papers per reply; "More" shows the next ten

EPHEMERAL, IN_CHANNEL = "ephemeral", "in_channel"
MORE_ACTION, SHARE_ACTION, DETAILS_ACTION = "il2_more", "il2_share", "il2_details"


def utc_now() -> datetime:
    return datetime.now(UTC)


class ToolError(Exception):
    """Slow work failed in a way the person should hear about; the message is one plain line."""


def _no_direct_messages(user_id: str) -> str:
    raise ToolError("direct messages are not available here: add `share` to upload the file in this channel")


@dataclass(frozen=True)
class Tools:
    """The I/O slow work may do; the Slack layer builds the real ones, tests build them on stand-ins."""

    fetch_papers: Callable[[Sequence[str]], list[Paper]]  # EFetch by PMID
    find_pmids: Callable[[str], list[str]]  # ESearch: a PubMed term -> PMIDs
    poll: Callable[[], str]  # one poll now; returns its one-line report
    upload: Callable[[str, str, str, str], None]  # (channel, filename, content, title) into the conversation
    check_query: Callable[[str], Search]  # ESearch: how many a term matches, and the words PubMed cannot use
    open_dm: Callable[[str], str] = _no_direct_messages  # a user ID -> the app's direct-message channel with them
    # Each may raise ToolError; the PubMed ones may also raise TransportError or PubMedError.


@dataclass(frozen=True)
class Deferred:
    """Work that must wait until after the ack; ``working`` is what the ack says meanwhile."""

    working: str  # safe mrkdwn
    run: Callable[[Tools], Reply]


@dataclass(frozen=True)
class Reply:
    """One answer: fallback text and blocks (safe mrkdwn), who sees it, and what may follow."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    response_type: str = EPHEMERAL
    deferred: Deferred | None = None
    next_offset: int | None = None  # more results start here ("More" button)
    shareable: bool = False  # offer "Share in channel"

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", with_content(self.blocks))

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for Bolt's ack() and respond()."""
        return {"text": self.text, "blocks": self.blocks, "response_type": self.response_type}


@dataclass(frozen=True)
class Context:
    """Everything a command may read: the caller, the library, the settings, the watches, the time.

    ``insight_for`` answers with what il2watch says about a paper as stored with it (``service.insight_maker``
    with ``summariser=False``: the summary the post showed, never a new model call, nothing written).
    """

    library: Library
    settings: Settings
    insight_for: InsightFor
    user_id: str = ""
    channel_id: str = ""
    watches: tuple[Watch, ...] = ()
    now: Callable[[], datetime] = utc_now

    @property
    def watch_map(self) -> dict[str, Watch]:
        return {w.id: w for w in self.watches}

    @property
    def is_admin(self) -> bool:
        return bool(self.user_id) and self.user_id in self.settings.admins

    @property
    def command(self) -> str:
        return self.settings.command


def say(text: str, *, shareable: bool = False) -> Reply:
    """A reply of one section; ``text`` must already be safe mrkdwn."""
    return Reply(text=clip(text, MAX_FALLBACK_TEXT), blocks=[section(text)], shareable=shareable)


def echo(user_text: str, limit: int = 80) -> str:
    """Text a person typed, shown back safely: escaped, one line, short, no code-span breakers."""
    return clip(escape_mrkdwn(squash(user_text)).replace("`", "'"), limit)


def paper_item(
    paper: Paper,
    reasons: Sequence[Reason],
    watches: Mapping[str, Watch],
    *,
    details: bool = True,
    followups: Sequence[Followup] = (),
) -> dict[str, Any]:
    """One paper in a list: what happened to it since (a retraction first), linked title, byline, why
    il2watch has it; a Details button beside it."""
    lines = [followup_flags(followups)] if followups else []
    lines.append(f"*{link(paper.url, title_mrkdwn(paper, 400))}*")
    by = byline(paper)
    if by:
        lines.append(by)
    why = why_line(reasons, watches)
    named = escape_mrkdwn(describe_key(paper.identity))
    lines.append(f"🔎 {why}" if why else f"{named} · looked up, not found by a watch")
    block = section("\n".join(lines))
    if details:
        block["accessory"] = button(DETAILS_ACTION, "Details", paper.identity)
    return block


def paper_list(
    library: Library, keys: Sequence[str], watches: Mapping[str, Watch], *, details: bool = True
) -> list[dict[str, Any]]:
    papers = library.papers(list(keys))
    followups = shown_followups(library, papers)
    return [
        paper_item(
            p,
            [s.reason for s in library.reasons_for(p.key)],
            watches,
            details=details,
            followups=followups.get(p.key, ()),
        )
        for p in papers
    ]


def followup_notes(library: Library, papers: Sequence[Paper]) -> dict[str, str]:
    """What exports say about each paper's follow-ups, by its key (only the papers that have some)."""
    return {key: plain_note(followups) for key, followups in shown_followups(library, papers).items()}


def page_of(keys: Sequence[str], offset: int) -> tuple[list[str], int | None]:
    """The ten from ``offset`` of a list fetched one longer than needed, and where the next page starts."""
    shown = list(keys[offset : offset + PAGE])
    more = offset + PAGE if len(keys) > offset + PAGE else None
    return shown, more


def listing(
    title: str,
    blocks: list[dict[str, Any]],
    *,
    offset: int,
    next_offset: int | None,
    total: int | None = None,
    empty: str,
    count: int | None = None,
) -> Reply:
    """A page of papers under a title line saying which ones these are; ``count`` is how many papers the
    blocks show when that is not one block each."""
    if not blocks:
        return say(empty, shareable=False) if offset == 0 else say("No more papers.")
    last = offset + (len(blocks) if count is None else count)
    span = f"{offset + 1}–{last}" if last > offset + 1 else f"{last}"
    counted = f" of {total:,}" if total is not None else ""
    head = f"{title} · showing {span}{counted}"
    return Reply(
        text=clip(head, MAX_FALLBACK_TEXT), blocks=[section(head), *blocks], next_offset=next_offset, shareable=True
    )


def control_value(text: str, offset: int) -> str | None:
    """A button value that replays a command from ``offset``; None when it would not fit."""
    value = json.dumps({"c": text, "o": offset}, ensure_ascii=False, separators=(",", ":"))
    return value if len(value) <= MAX_BUTTON_VALUE else None


def read_control_value(value: str) -> tuple[str, int] | None:
    """(command text, offset) from a More/Share button's value; None when it was not ours."""
    try:
        data = json.loads(value)
        text, offset = data["c"], data["o"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(text, str) or not isinstance(offset, int) or isinstance(offset, bool):
        return None
    return (text, offset) if 0 <= offset <= 100_000 else None


def with_controls(reply: Reply, text: str, offset: int, *, shared_by: str = "") -> Reply:
    """Add "More" and "Share in channel" buttons, or, for a shared copy, who shared it."""
    if shared_by:
        note = context(f"Shared by <@{shared_by}>" if _looks_like_user(shared_by) else "Shared")
        return replace(reply, blocks=[*reply.blocks, note], response_type=IN_CHANNEL, next_offset=None, shareable=False)
    elements = []
    if reply.next_offset is not None:
        value = control_value(text, reply.next_offset)
        if value:
            elements.append(button(MORE_ACTION, "More", value))
    if reply.shareable:
        value = control_value(text, offset)
        if value:
            elements.append(button(SHARE_ACTION, "Share in channel", value))
    if not elements:
        return reply
    return replace(reply, blocks=[*reply.blocks, {"type": "actions", "block_id": "il2_controls", "elements": elements}])


def _looks_like_user(user_id: str) -> bool:
    return user_id.isascii() and user_id.isalnum() and user_id[:1] in ("U", "W") and len(user_id) <= 21
