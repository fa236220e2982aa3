"""Decide what a poll posts: pure, from what discovery found and what the channel already has.

- A watch's first poll records everything as its baseline and posts only the ``baseline_posts`` most
  recent papers the hold-back lets through, with one note saying how many it found and posts.
- A watch rebuilt from the channel after a lost library treats papers that entered PubMed before its
  last watermark less the overlap as baseline, and posts the rest (those entered on that day included:
  PubMed is asked from it on).
- Otherwise every paper with a new reason is posted once per channel, unless it is only "similar" and
  scores below the relevance threshold (it is kept, and posted if a stronger reason comes later).
- More than ``burst`` papers due at once in one channel go out as one digest; in digest mode they wait
  for the digest job.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from il2watch.discovery import Findings
from il2watch.intel import hold_back
from il2watch.model import Insight, Paper, Reason


@dataclass(frozen=True)
class Delivery:
    """One outbox row to create: a message for one channel, covering these papers (their keys)."""

    key: str
    channel: str
    kind: str  # paper, digest, note
    papers: tuple[str, ...]
    payload: dict = field(default_factory=dict)
    state: str = "due"  # or "waiting" for the next digest


@dataclass(frozen=True)
class Policy:
    """What the settings say about posting; every value comes from ``Settings`` (no defaults here)."""

    default_channel: str
    mode: str  # each | digest
    burst: int
    baseline_posts: int
    relevance_threshold: float
    overlap_days: int


# Europe PMC's patents, theses and other non-article records ("epmc:…"): kept in the library, never posted.
NOT_POSTED = ("epmc:",)


def new_key() -> str:
    return uuid.uuid4().hex


def _reason_payload(reasons: Sequence[Reason]) -> list[dict]:
    return [
        {"watch": r.watch, "kind": r.kind, "score": r.score, "rank": r.rank, "sources": list(r.sources)}
        for r in reasons
    ]


def _newest_first(keys: list[str], papers: Mapping[str, Paper]) -> list[str]:
    def order(key: str) -> tuple[str, int, str]:
        pmid = papers[key].pmid
        return papers[key].entry_date, int(pmid) if pmid.isdigit() else 0, key

    return sorted(keys, key=order, reverse=True)


def _held_back(key: str, reasons: Sequence[Reason], insights: Mapping[str, Insight], policy: Policy) -> bool:
    """Not posted now: no insight yet, or only a weak "similar" reason (kept, and posted if a stronger comes)."""
    return key not in insights or hold_back(insights[key], reasons, policy.relevance_threshold)


def plan(
    findings: Findings,
    *,
    papers: Mapping[str, Paper],
    insights: Mapping[str, Insight],
    claimed: Callable[[str, Sequence[str]], set[str]],
    policy: Policy,
    watermark: dict,
    make_key: Callable[[], str] = new_key,
) -> list[Delivery]:
    """The outbox rows this poll creates. ``claimed(channel, keys)`` says which papers are already taken."""
    deliveries: list[Delivery] = []
    # channel -> paper key -> reasons (across every watch posting to that channel)
    to_post: dict[str, dict[str, list[Reason]]] = {}

    for baseline in findings.baselines:
        watch = next(wf.watch for wf in findings.watches if wf.watch.id == baseline.watch)
        deliveries.append(
            Delivery(
                key=make_key(),
                channel=watch.channel or policy.default_channel,
                kind="note",
                papers=(),
                payload={
                    "note": "source_baseline",
                    "source": baseline.source,
                    "watch": baseline.watch,
                    "found": baseline.found,
                    "preprints": baseline.preprints,
                    "papers": list(baseline.papers),
                    "entered_by": baseline.entered_by,
                    "watermark": watermark,
                },
            )
        )

    for wf in findings.watches:
        channel = wf.watch.channel or policy.default_channel
        if not wf.new:
            continue
        candidates = [key for key in wf.new if key in papers and not key.startswith(NOT_POSTED)]
        if wf.first_poll:
            newest = _newest_first(candidates, papers)
            already = claimed(channel, newest)
            # The note says how many are posted, so what the hold-back keeps back is left out before counting.
            postable = [p for p in newest if p not in already and not _held_back(p, wf.new[p], insights, policy)]
            chosen = postable[: policy.baseline_posts]
            for key in chosen:
                to_post.setdefault(channel, {}).setdefault(key, []).extend(wf.new[key])
            deliveries.append(
                Delivery(
                    key=make_key(),
                    channel=channel,
                    kind="note",
                    papers=(),
                    payload={
                        "note": "baseline",
                        "watch": wf.watch.id,
                        "found": len(candidates),
                        "posted": len(chosen),
                        "watermark": watermark,
                    },
                )
            )
            continue
        if wf.state.restored and wf.state.horizon:
            cutoff = (date.fromisoformat(wf.state.horizon) - timedelta(days=policy.overlap_days)).isoformat()
            candidates = [p for p in candidates if papers[p].entry_date >= cutoff]  # PubMed is asked from that day on
        for key in candidates:
            to_post.setdefault(channel, {}).setdefault(key, []).extend(wf.new[key])

    for channel, by_key in to_post.items():
        already = claimed(channel, list(by_key))
        due = []
        for key, reasons in by_key.items():
            if key in already or _held_back(key, reasons, insights, policy):
                continue
            due.append(key)
        due.sort(key=lambda p: (-insights[p].relevance, papers[p].entry_date, p))
        if policy.mode == "digest":
            deliveries.extend(
                Delivery(
                    make_key(),
                    channel,
                    "paper",
                    (p,),
                    {"reasons": _reason_payload(by_key[p]), "watermark": watermark},
                    state="waiting",
                )
                for p in due
            )
        elif policy.burst and len(due) > policy.burst:
            deliveries.append(
                Delivery(
                    make_key(),
                    channel,
                    "digest",
                    tuple(due),
                    {
                        "title": f"{len(due)} new papers",
                        "watermark": watermark,
                        "reasons": {p: _reason_payload(by_key[p]) for p in due},
                    },
                )
            )
        else:
            deliveries.extend(
                Delivery(
                    make_key(), channel, "paper", (p,), {"reasons": _reason_payload(by_key[p]), "watermark": watermark}
                )
                for p in due
            )
    return deliveries
