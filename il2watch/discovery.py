"""One poll's discovery: ask PubMed what each watch links now, and fetch the papers that are new.

Costs, whatever the number of watched papers: two ELink requests (similar with scores, and citing),
one ESearch per query watch (more only past 9,999 matches, when the entry-date window is cut), and
EFetch in batches of 200 new papers. Nothing is written here; ``service`` stores what this returns in
one transaction.

Each watch fails alone: an ``<ERROR>`` in its ELink link set, its ESearch failing, an empty answer
where links were known (an outage) set that watch aside for this poll, named in a ``WatchProblem``,
while the others go on. Only an NCBI that cannot be reached at all stops the poll at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from il2watch import pubmed
from il2watch.eutils import Eutils
from il2watch.library import Library, WatchState
from il2watch.model import Insight, Paper, Reason, Watch
from il2watch.pubmed import PubMedError
from il2watch.transport import TransportError

log = logging.getLogger("il2watch.discovery")


@dataclass
class WatchFindings:
    state: WatchState
    horizon: str  # entry date (YYYY-MM-DD) this poll covered
    linked: dict[str, list[Reason]] = field(default_factory=dict)  # everything the watch links now
    new: dict[str, list[Reason]] = field(default_factory=dict)  # reasons never recorded before

    @property
    def watch(self) -> Watch:
        return self.state.watch

    @property
    def first_poll(self) -> bool:
        return not self.state.baseline_at and not self.state.restored


@dataclass(frozen=True)
class WatchProblem:
    """Something went wrong for one watch. ``failed``: the watch was set aside for this poll; otherwise
    a warning (a word of its query PubMed could not use) and the watch went on."""

    watch: str  # the watch's id
    text: str  # one line
    failed: bool = True

    def line(self) -> str:
        return f"watch {self.watch} {'failed' if self.failed else 'warning'}: {self.text}"


@dataclass
class Findings:
    watches: list[WatchFindings]  # the watches that answered this poll
    papers: dict[str, Paper]  # fetched now, for PMIDs the library did not hold
    missing: set[str]  # asked of EFetch but not returned: not stored, so not marked seen
    insights: dict[str, Insight] = field(default_factory=dict)  # for the fetched papers, made between requests
    problems: list[WatchProblem] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # pmid -> why its record could not be read

    @property
    def new_pmids(self) -> set[str]:
        return {pmid for wf in self.watches for pmid in wf.new}

    @property
    def failed(self) -> list[WatchProblem]:
        return [p for p in self.problems if p.failed]


class _WatchFailed(Exception):
    """This watch cannot be served this poll; the message says why (one line)."""


def similar_reasons(
    watch: Watch, similar: list[tuple[str, int]], *, max_rank: int, min_score: int
) -> dict[str, list[Reason]]:
    """PubMed's similar articles kept by rank and score; the watched paper itself is already excluded."""
    kept: dict[str, list[Reason]] = {}
    for rank, (pmid, score) in enumerate(similar, start=1):
        if rank > max_rank:
            break
        if score >= min_score:
            kept[pmid] = [Reason(watch.id, "similar", score=score, rank=rank)]
    return kept


def _merge(into: dict[str, list[Reason]], more: dict[str, list[Reason]]) -> None:
    for pmid, reasons in more.items():
        into.setdefault(pmid, []).extend(reasons)


def _check_not_outage(library: Library, watch: Watch, kind: str, found: int, what: str) -> None:
    """An empty answer where the library already knows links is an NCBI outage, not news."""
    known = library.count_linked(watch.id, kind)
    if found == 0 and known > 0:
        raise _WatchFailed(
            f"NCBI returned no {what} for {watch.name} (PMID {watch.pmid}) though {known} were "
            f"known; treating it as an NCBI outage and trying again next poll"
        )


def query_window(state: WatchState, today: date, overlap_days: int, baseline_days: int) -> tuple[str, str]:
    """The entry dates a query watch asks for: from its last horizon less the overlap (however long ago
    that was, so a downtime loses nothing), else its baseline's days, else all of PubMed."""
    if state.horizon:
        start = date.fromisoformat(state.horizon) - timedelta(days=overlap_days)
        return start.strftime("%Y/%m/%d"), ""
    if baseline_days:
        return (today - timedelta(days=baseline_days)).strftime("%Y/%m/%d"), ""
    return "", ""


def _fatal(error: TransportError) -> bool:
    """NCBI cannot be reached at all: every other request would fail the same way, so the poll stops."""
    return error.kind == "unreachable"


def _paper_watch(
    library: Library,
    client: Eutils,
    wf: WatchFindings,
    found: pubmed.Links,
    *,
    similar_max_rank: int,
    similar_min_score: int,
) -> None:
    watch = wf.watch
    if found.error:
        raise _WatchFailed(found.error)
    if found.empty and not library.count_linked(watch.id, "cites") + library.count_linked(watch.id, "similar"):
        # No links at all, and none known: a paper nobody cites yet, or a PMID PubMed does not have.
        if watch.pmid not in pubmed.verify_pmids(client, [watch.pmid]):
            raise _WatchFailed(f"PMID {watch.pmid} is not in PubMed; fix or remove the watch")
    _check_not_outage(library, watch, "cites", len(found.cited_by), "citing papers")
    _check_not_outage(library, watch, "similar", len(found.similar), "similar articles")
    _merge(wf.linked, {pmid: [Reason(watch.id, "cites")] for pmid in found.cited_by if pmid != watch.pmid})
    _merge(wf.linked, similar_reasons(watch, found.similar, max_rank=similar_max_rank, min_score=similar_min_score))


def _query_watch(
    library: Library,
    client: Eutils,
    wf: WatchFindings,
    *,
    today: date,
    overlap_days: int,
    query_baseline_days: int,
    problems: list[WatchProblem],
) -> None:
    watch = wf.watch
    mindate, maxdate = query_window(wf.state, today, overlap_days, query_baseline_days)
    found = pubmed.esearch(client, watch.query, mindate=mindate, maxdate=maxdate, today=today)
    problems.extend(WatchProblem(watch.id, p.describe(), failed=False) for p in found.problems)
    if not found.pmids and wf.state.horizon:
        expected = library.count_linked_since(watch.id, "query", mindate.replace("/", "-"))
        if expected:
            raise _WatchFailed(
                f"NCBI's search for {watch.name} came back empty although {expected} "
                f"papers it found before fall in the window; treating it as an NCBI outage"
            )
    _merge(wf.linked, {pmid: [Reason(watch.id, "query")] for pmid in found.pmids})


def discover(
    library: Library,
    client: Eutils,
    watches: list[Watch],
    *,
    today: date,
    similar_max_rank: int,
    similar_min_score: int,
    overlap_days: int,
    query_baseline_days: int,
    analyse: Callable[[Paper, list[Reason]], Insight] | None = None,
    now: datetime | None = None,
) -> Findings:
    """Ask PubMed what every watch links now; fetch the records of new papers the library lacks.

    ``analyse`` runs on each fetched batch while the rate limit holds the next request back.
    """
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    findings = [WatchFindings(library.watch_state(w), horizon=today.isoformat()) for w in watches]
    problems: list[WatchProblem] = []
    failed: set[str] = set()

    def attempt(wf: WatchFindings, step: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        try:
            step(*args, **kwargs)
        except TransportError as error:
            if _fatal(error):
                raise
            problems.append(WatchProblem(wf.watch.id, str(error)))
            failed.add(wf.watch.id)
        except (PubMedError, _WatchFailed) as error:
            problems.append(WatchProblem(wf.watch.id, str(error)))
            failed.add(wf.watch.id)

    paper_watches = [wf for wf in findings if wf.watch.pmid]
    links: dict[str, pubmed.Links] = {}
    if paper_watches:
        pmids = list(dict.fromkeys(wf.watch.pmid for wf in paper_watches))

        def ask_links() -> None:
            links.update(pubmed.fetch_links(client, pmids))

        attempt(paper_watches[0], ask_links)
        if paper_watches[0].watch.id in failed:  # the request itself failed: every paper watch with it
            problem = problems[-1]
            problems.extend(WatchProblem(wf.watch.id, problem.text) for wf in paper_watches[1:])
            failed.update(wf.watch.id for wf in paper_watches)
        for wf in paper_watches:
            if wf.watch.id not in failed:
                attempt(
                    wf,
                    _paper_watch,
                    library,
                    client,
                    wf,
                    links[wf.watch.pmid],
                    similar_max_rank=similar_max_rank,
                    similar_min_score=similar_min_score,
                )

    for wf in findings:
        if wf.watch.query:
            attempt(
                wf,
                _query_watch,
                library,
                client,
                wf,
                today=today,
                overlap_days=overlap_days,
                query_baseline_days=query_baseline_days,
                problems=problems,
            )

    findings = [wf for wf in findings if wf.watch.id not in failed]
    for wf in findings:
        known = library.linked(wf.watch.id)
        for pmid, reasons in wf.linked.items():
            fresh = [r for r in reasons if (pmid, r.kind) not in known]
            if fresh:
                wf.new[pmid] = fresh

    wanted = sorted({pmid for wf in findings for pmid in wf.new})
    stored = library.stored_pmids(wanted)
    waiting = library.unreadable_waiting([p for p in wanted if p not in stored], now=stamp)
    to_fetch = [pmid for pmid in wanted if pmid not in stored and pmid not in waiting]
    insights: dict[str, Insight | None] = {}

    def analyse_batch(batch: list[Paper]) -> None:
        for paper in batch:
            reasons = [r for wf in findings for r in wf.new.get(paper.pmid, [])]
            insights[paper.pmid] = analyse(paper, reasons) if analyse else None

    fetched = (
        pubmed.fetch_records(client, to_fetch, on_batch=analyse_batch if analyse else None)
        if to_fetch
        else pubmed.Fetched()
    )
    papers = {p.pmid: p for p in fetched.papers}
    unreadable = {pmid: why for pmid, why in fetched.unreadable.items() if pmid not in papers}
    missing = set(to_fetch) - set(papers) - set(unreadable)
    if missing:
        log.warning(
            "NCBI returned no record for %d PMID(s) (%s); they stay unseen and are asked for again next poll",
            len(missing),
            ", ".join(sorted(missing)[:5]),
        )
    if unreadable:
        log.warning(
            "PubMed's record for PMID(s) %s cannot be read (%s); the others are stored, these are asked for "
            "again later",
            ", ".join(sorted(unreadable)[:5]),
            next(iter(unreadable.values()))[:200],
        )
    for wf in findings:  # neither stored nor marked seen: asked for again
        for pmid in missing | set(unreadable) | waiting:
            wf.new.pop(pmid, None)
            wf.linked.pop(pmid, None)
    return Findings(
        findings,
        papers,
        missing,
        {k: v for k, v in insights.items() if v is not None},
        problems=problems,
        unreadable=unreadable,
    )
