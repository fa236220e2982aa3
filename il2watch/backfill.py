"""Backfill: post more of a watch's papers that were recorded (as its baseline) but not posted.

Shared by ``il2watch backfill`` and ``/il2 backfill``: which papers (newest first, none the channel has
had, none held back as off-topic unless asked), and as what (one digest when there are more than the
burst setting allows at once, else one post each). Delivery is the caller's: the outbox rows made here
go out like any others, exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

from il2watch.deliver import DeliveryReport
from il2watch.intel import hold_back
from il2watch.library import Library
from il2watch.markup import counted
from il2watch.model import InsightFor, Watch
from il2watch.planning import NOT_POSTED, new_key

BACKFILL_MAX = 200  # papers one backfill may post; run it again for more


def limit_problem(limit: int) -> str:
    """Why a backfill size is refused, or "" when it is fine."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= BACKFILL_MAX:
        return f"the number of papers to backfill must be a whole number from 1 to {BACKFILL_MAX}, not {limit}"
    return ""


@dataclass
class BackfillReport(DeliveryReport):
    chosen: str = ""  # what was queued and passed over, in one line (``describe``)


@dataclass(frozen=True)
class Choice:
    """The papers a backfill posts, newest first, and what it passed over."""

    papers: tuple[str, ...]  # their keys
    held_back: int  # off-topic papers skipped (posted only with include_held)
    left: int  # papers of the watch the channel still has not had after this backfill


def choose(
    library: Library,
    watch: Watch,
    channel: str,
    limit: int,
    *,
    insight_for: InsightFor,
    threshold: float,
    include_held: bool = False,
) -> Choice:
    """Up to ``limit`` of the watch's papers the channel has not had, newest first."""
    candidates = library.linked_newest_first(watch.id)
    taken = library.claimed(channel, candidates)
    open_keys = [p for p in candidates if p not in taken and not p.startswith(NOT_POSTED)]
    chosen: list[str] = []
    held = 0
    for key in open_keys:
        if len(chosen) >= limit:
            break
        paper = library.paper(key)
        if paper is None:
            continue
        reasons = [stored.reason for stored in library.reasons_for(key)]
        if not include_held and hold_back(insight_for(paper, reasons), reasons, threshold):
            held += 1
            continue
        chosen.append(key)
    return Choice(tuple(chosen), held, len(open_keys) - len(chosen) - held)


def enqueue(library: Library, choice: Choice, *, watch: Watch, channel: str, burst: int) -> str:
    """Outbox rows for the chosen papers: one digest above ``burst`` (0: never), else one post each.
    Returns "digest", "paper" or "" (nothing chosen)."""
    if not choice.papers:
        return ""
    keys = list(choice.papers)
    with library.transaction():
        if burst and len(keys) > burst:
            count = f"{counted(len(keys), 'earlier paper')}"
            library.enqueue(
                key=new_key(),
                channel=channel,
                kind="digest",
                papers=keys,
                payload={"title": f"Backfill: {count} from {watch.name}", "backfill": watch.id},
            )
            return "digest"
        for key in keys:
            library.enqueue(key=new_key(), channel=channel, kind="paper", papers=(key,), payload={"backfill": watch.id})
    return "paper"


def describe(choice: Choice, kind: str, watch: Watch) -> str:
    """One plain line: what the backfill queued and what it passed over."""
    count = len(choice.papers)
    papers = f"{counted(count, 'paper')}"
    if not count and not choice.held_back:
        line = f"nothing to backfill from {watch.id}: the channel has had every paper it found"
    elif not count:
        line = f"nothing to backfill from {watch.id}"
    elif kind == "digest":
        line = f"backfilling {papers} from {watch.id} as one digest"
    else:
        line = f"backfilling {papers} from {watch.id}"
    if choice.held_back:
        line += f"; {choice.held_back} held back as off-topic skipped"
    if choice.left:
        line += f"; {choice.left} more not posted yet"
    return line
