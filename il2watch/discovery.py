"""One poll's discovery: ask PubMed what each watch links now, and fetch the papers that are new.

Costs, whatever the number of watched papers: two ELink requests (similar with scores, and citing),
one ESearch per query watch (more only past 10,000 hits), and EFetch in batches of 200 new papers.
Nothing is written here; ``service`` stores what this returns in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from il2watch import pubmed
from il2watch.eutils import Eutils
from il2watch.library import Library, WatchState
from il2watch.model import Insight, Paper, Reason, Watch
from il2watch.pubmed import PubMedError

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


@dataclass
class Findings:
    watches: list[WatchFindings]
    papers: dict[str, Paper]  # fetched now, for PMIDs the library did not hold
    missing: set[str]  # asked of EFetch but not returned: not stored, so not marked seen
    insights: dict[str, Insight] = field(default_factory=dict)  # for the fetched papers, made between requests

    @property
    def new_pmids(self) -> set[str]:
        return {pmid for wf in self.watches for pmid in wf.new}


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
        raise PubMedError(
            f"NCBI returned no {what} for {watch.name} (PMID {watch.pmid}) though {known} were "
            f"known; treating it as an NCBI outage and trying again next poll"
        )


def _query_window(state: WatchState, today: date, overlap_days: int, baseline_days: int) -> tuple[str, str]:
    if state.horizon:
        start = date.fromisoformat(state.horizon) - timedelta(days=overlap_days)
        return start.strftime("%Y/%m/%d"), ""
    if baseline_days:
        return (today - timedelta(days=baseline_days)).strftime("%Y/%m/%d"), ""
    return "", ""


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
) -> Findings:
    """Ask PubMed what every watch links now; fetch the records of new papers the library lacks.

    ``analyse`` runs on each fetched batch while the rate limit holds the next request back.
    """
    findings = [WatchFindings(library.watch_state(w), horizon=today.isoformat()) for w in watches]

    paper_watches = [wf for wf in findings if wf.watch.pmid]
    if paper_watches:
        links = pubmed.fetch_links(client, list(dict.fromkeys(wf.watch.pmid for wf in paper_watches)))
        for wf in paper_watches:
            found = links[wf.watch.pmid]
            if not found.found:
                raise PubMedError(
                    f"watch {wf.watch.id!r}: PMID {wf.watch.pmid} is not in PubMed; fix or remove the watch"
                )
            _check_not_outage(library, wf.watch, "cites", len(found.cited_by), "citing papers")
            _check_not_outage(library, wf.watch, "similar", len(found.similar), "similar articles")
            _merge(
                wf.linked, {pmid: [Reason(wf.watch.id, "cites")] for pmid in found.cited_by if pmid != wf.watch.pmid}
            )
            _merge(
                wf.linked,
                similar_reasons(wf.watch, found.similar, max_rank=similar_max_rank, min_score=similar_min_score),
            )

    for wf in findings:
        if not wf.watch.query:
            continue
        mindate, maxdate = _query_window(wf.state, today, overlap_days, query_baseline_days)
        pmids = pubmed.search(client, wf.watch.query, mindate=mindate, maxdate=maxdate)
        if not pmids and wf.state.horizon:
            expected = library.count_linked_since(wf.watch.id, "query", mindate.replace("/", "-"))
            if expected:
                raise PubMedError(
                    f"NCBI's search for {wf.watch.name} came back empty although {expected} "
                    f"papers it found before fall in the window; treating it as an NCBI outage"
                )
        _merge(wf.linked, {pmid: [Reason(wf.watch.id, "query")] for pmid in pmids})

    for wf in findings:
        known = library.linked(wf.watch.id)
        for pmid, reasons in wf.linked.items():
            fresh = [r for r in reasons if (pmid, r.kind) not in known]
            if fresh:
                wf.new[pmid] = fresh

    wanted = sorted({pmid for wf in findings for pmid in wf.new})
    stored = library.stored_pmids(wanted)
    to_fetch = [pmid for pmid in wanted if pmid not in stored]
    insights: dict[str, Insight | None] = {}

    def analyse_batch(batch: list[Paper]) -> None:
        for paper in batch:
            reasons = [r for wf in findings for r in wf.new.get(paper.pmid, [])]
            insights[paper.pmid] = analyse(paper, reasons) if analyse else None

    papers = (
        {p.pmid: p for p in pubmed.fetch_papers(client, to_fetch, on_batch=analyse_batch if analyse else None)}
        if to_fetch
        else {}
    )
    missing = set(to_fetch) - set(papers)
    if missing:
        log.warning(
            "NCBI returned no record for %d PMID(s) (%s); they stay unseen and are asked for again next poll",
            len(missing),
            ", ".join(sorted(missing)[:5]),
        )
        for wf in findings:
            for pmid in missing:
                wf.new.pop(pmid, None)
                wf.linked.pop(pmid, None)
    return Findings(findings, papers, missing, {k: v for k, v in insights.items() if v is not None})
