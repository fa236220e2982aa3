"""Short messages from il2watch itself: poll notes, alerts, recoveries, watch announcements."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from il2watch.markup import counted, escape_mrkdwn
from il2watch.model import SOURCES, Watch
from il2watch.render.blocks import MAX_FALLBACK_TEXT, MAX_SECTION_TEXT, Message, clip, metadata, section

NOTE_EVENT = "il2watch_note"
WATCH_EVENT = "il2watch_watch"

# Only IDs of this shape become mentions; anything else is shown as text.
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,20}")


def render_note(
    text: str,
    *,
    event_type: str = NOTE_EVENT,
    payload: dict[str, Any] | None = None,
    watermark: dict | None = None,
    key: str = "",
) -> Message:
    """A note in plain words (escaped: it may quote errors or names from outside) with its metadata.

    ``key`` and ``watermark``, when given, join the payload under those names.
    """
    safe = escape_mrkdwn(text).strip() or "(empty note)"
    extra = {"key": key or None, "watermark": dict(watermark) if watermark is not None else None}
    return Message(
        text=clip(safe, MAX_FALLBACK_TEXT),
        blocks=[section(clip(safe, MAX_SECTION_TEXT))],
        metadata=metadata(event_type, {**(payload or {}), **{k: v for k, v in extra.items() if v is not None}}),
    )


def baseline_text(watch: Watch, found: int, posted: int, *, command: str) -> str:
    """What a new watch found already there, how much of it is being posted, and how admins post more.

    ``command`` is the slash command as configured (IL2WATCH_COMMAND), e.g. "/il2".
    """
    if watch.kind == "paper":
        already = "already cites it or is similar" if found == 1 else "already cite it or are similar"
        none = "no papers cite it or are similar yet"
    else:
        already = "already matches it" if found == 1 else "already match it"
        none = "no papers match it yet"
    start = f"Started watching {watch.name}: "
    if found <= 0:
        return start + none + "; new ones will be posted here."
    more = f"Admins can post more with `{command} backfill {watch.id} [N]`."
    if posted <= 0:
        return start + f"{counted(found, 'paper')} {already}; posting none of them now. {more}"
    if posted >= found:
        return start + f"{counted(found, 'paper')} {already}; posting {'it' if found == 1 else 'all of them'}."
    recent = "the most recent one" if posted == 1 else f"the {posted} most recent"
    return start + f"{counted(found, 'paper')} {already}; posting {recent}. {more}"


def render_baseline_note(
    watch: Watch, found: int, posted: int, *, command: str, watermark: dict | None = None, key: str = ""
) -> Message:
    """The note a first poll of a watch posts instead of flooding the channel with its backlog."""
    payload = {"kind": "baseline", "watch": watch.id, "found": found, "posted": posted}
    text = baseline_text(watch, found, posted, command=command)
    return render_note(text, payload=payload, watermark=watermark, key=key)


def source_baseline_text(
    source: str, watch: Watch, found: int, preprints: int, *, command: str, listed_by_cites: bool
) -> str:
    """What a citation source enabled on an existing watch revealed: recorded, not posted one by one.
    ``listed_by_cites``: the watch is the one ``cites`` lists (the first paper watch); the others' papers
    are reached by a backfill of that watch."""
    label = SOURCES.get(source, source)
    linked = "citing" if watch.kind == "paper" else "matching"
    some = f", {counted(preprints, 'preprint')} among them" if preprints else ""
    if watch.kind != "paper":
        listing = f"`{command} recent` shows the newest"
    elif listed_by_cites:
        listing = f"`{command} cites` lists them"
    else:
        listing = f"an admin's `{command} backfill {watch.id} 20` posts up to 20 of them, newest first"
    return (
        f"{label} found {counted(found, 'paper')} more {linked} {watch.name} that il2watch had not seen{some}; "
        f"they are in the library, not posted one by one ({listing}). From now on what {label} finds is posted as new."
    )


def render_source_baseline_note(
    source: str,
    watch: Watch,
    found: int,
    preprints: int,
    *,
    command: str,
    listed_by_cites: bool,
    papers: Sequence[str] = (),
    entered_by: str = "",
    watermark: dict | None = None,
    key: str = "",
) -> Message:
    """The note a source enabled later posts instead of flooding the channel with what it reveals. Its
    metadata names the newest of those papers (``papers``) and the entry date by which every other one
    had entered (``entered_by``), so that the rebuild of a lost library records them quietly again."""
    payload: dict[str, Any] = {
        "kind": "source_baseline",
        "source": source,
        "watch": watch.id,
        "found": found,
        "preprints": preprints,
        "papers": list(papers),
    }
    if entered_by:
        payload["entered_by"] = entered_by
    text = source_baseline_text(source, watch, found, preprints, command=command, listed_by_cites=listed_by_cites)
    return render_note(text, payload=payload, watermark=watermark, key=key)


def _describe_watch(watch: Watch) -> str:
    """Safe mrkdwn naming what a watch follows."""
    name = clip(escape_mrkdwn(watch.name), 200)
    if watch.kind == "paper":
        pmid = clip(escape_mrkdwn(watch.pmid), 20)
        detail = f" (PMID {pmid})" if watch.name != f"PMID {watch.pmid}" else ""
        return f"{name}{detail}"
    query = clip(escape_mrkdwn(watch.query), 500)
    return f"query {name}" + (f" ({query})" if query and watch.query != watch.name else "")


def render_watch_announcement(watch: Watch, user_id: str, action: str, *, key: str = "") -> Message:
    """Tells the channel who added or removed a watch; metadata lets il2watch rebuild its watch list."""
    if action not in ("added", "removed"):
        raise ValueError(f"action must be 'added' or 'removed', not {action!r}")
    who = f"<@{user_id}>" if _USER_ID.fullmatch(user_id) else (clip(escape_mrkdwn(user_id), 40) or "Someone")
    what = _describe_watch(watch)
    if action == "added":
        where = f"<#{watch.channel}>" if _CHANNEL_ID.fullmatch(watch.channel) else "this channel"
        follows = "papers that cite it or are similar" if watch.kind == "paper" else "papers that match it"
        text = f"{who} added a watch on {what}: new {follows} will be posted in {where}."
    else:
        text = f"{who} removed the watch on {what}."
    payload = {
        "watch": {
            "id": watch.id,
            "pmid": watch.pmid,
            "query": watch.query,
            "label": watch.label,
            "channel": watch.channel,
        },
        "action": action,
        "by": user_id,
        "key": key or None,
    }
    return Message(text=clip(text, MAX_FALLBACK_TEXT), blocks=[section(text)], metadata=metadata(WATCH_EVENT, payload))
