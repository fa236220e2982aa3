"""One poll's discovery: ask every enabled source what links to the watches now, merge what they say into
papers (one per identity, whatever index named it), decide what is new, and fetch the records the library
lacks. Nothing is written here; ``service`` stores what this returns in one transaction.

Sources on different hosts are asked at once (one thread each), and the records an answer needs
whatever the other sources say are asked for as soon as it comes, so a poll takes about as long as its
slowest host rather than its slowest answer and then the records. Each source fails alone, and within a
source each watch: an error, an HTML or malformed answer, or an empty list where the source listed papers
before (an outage, not news) sets that part aside for this poll, named in a ``WatchProblem``, while the
rest goes on; nothing a source listed before is forgotten. Records come from PubMed's EFetch for every
work with a PMID; the others from the source that listed them. A source enabled on a watch that already
has its baseline records what it reveals without posting it (``quiet``), and the channel hears one note
(``SourceBaseline``).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from il2watch import pubmed
from il2watch.eutils import Eutils
from il2watch.identity import Ids, group_by_identity
from il2watch.library import Library, WatchState
from il2watch.model import SOURCES, Insight, Paper, Reason, Watch
from il2watch.pubmed import PubMedError
from il2watch.sources import Finding, Found, Given, Request, Source, SourceError, SourceRecord
from il2watch.transport import TransportError

log = logging.getLogger("il2watch.discovery")


@dataclass
class WatchFindings:
    state: WatchState
    horizon: str  # entry date (YYYY-MM-DD) this poll covered
    linked: dict[str, list[Reason]] = field(default_factory=dict)  # paper key -> every reason it is linked now
    new: dict[str, list[Reason]] = field(default_factory=dict)  # reasons never recorded before: news
    quiet: dict[str, list[Reason]] = field(default_factory=dict)  # new only to a source just enabled: recorded
    pubmed_answered: bool = False  # PubMed served this watch: its horizon moves on

    @property
    def watch(self) -> Watch:
        return self.state.watch

    @property
    def first_poll(self) -> bool:
        return not self.state.baseline_at and not self.state.restored


@dataclass(frozen=True)
class WatchProblem:
    """Something went wrong for one watch at one source. ``failed``: that part was set aside for this
    poll; otherwise a warning (a word of its query PubMed could not use) and it went on."""

    watch: str  # the watch's id
    text: str  # one line
    failed: bool = True
    source: str = "pubmed"

    def line(self) -> str:
        where = f"{SOURCES.get(self.source, self.source)}: " if self.source != "pubmed" else ""
        return f"watch {self.watch} {'failed' if self.failed else 'warning'}: {where}{self.text}"


@dataclass(frozen=True)
class SourceReport:
    """How one source did in this poll."""

    source: str
    status: str  # "ok", "failed", "partial" (some watches failed), "skipped" (not due: its refresh interval)
    error: str = ""
    listed: int = 0  # works it listed
    answered: tuple[str, ...] = ()  # the watches it answered for

    @property
    def label(self) -> str:
        return SOURCES.get(self.source, self.source)


NOTE_IDS_BUDGET = 4000  # characters of paper ids one source-baseline note carries in its metadata


@dataclass(frozen=True)
class SourceBaseline:
    """A source answered for a watch for the first time, on a watch that already had its baseline.

    Its note's metadata lets the rebuild of a lost library record those papers quietly again rather than
    post them: the ids of the newest papers it revealed, as many as fit ``NOTE_IDS_BUDGET`` characters
    (about a hundred; Slack documents no limit for metadata, and this keeps a note far below any message
    limit), and ``entered_by``, the latest entry date among the ones left out: every paper it revealed is
    named or entered on or before that date. The rebuild then treats what that source lists for that watch
    the same way; the cost of the date is that a paper that source lists for the first time in the very
    poll after a rebuild, and that entered by then, is recorded rather than posted."""

    source: str
    watch: str
    found: int  # papers it revealed that were never recorded
    preprints: int
    papers: tuple[str, ...] = ()  # the ids of the newest of them (keys: "pmid:…", "doi:…")
    entered_by: str = ""  # YYYY-MM-DD: every one not named entered on or before it ("" when all are named)


@dataclass
class Findings:
    watches: list[WatchFindings]  # the watches some source answered for this poll
    papers: dict[str, Paper]  # fetched now, by key, for papers the library did not hold (or whose ids grew)
    insights: dict[str, Insight] = field(default_factory=dict)  # for the fetched papers, made between requests
    problems: list[WatchProblem] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # pmid -> why its record could not be read
    sources: list[SourceReport] = field(default_factory=list)
    baselines: list[SourceBaseline] = field(default_factory=list)
    memory: dict[str, str] = field(default_factory=dict)  # what the sources asked to keep (resolved ids)

    @property
    def new_keys(self) -> set[str]:
        return {key for wf in self.watches for key in wf.new}

    @property
    def failed(self) -> list[WatchProblem]:
        return [p for p in self.problems if p.failed]

    def failure(self) -> str:
        """Why nothing could be done this poll, in one line: each source that failed as a whole, once, and
        each watch that failed at a source that answered."""
        whole = {r.source for r in self.sources if r.status == "failed"}
        lines = [
            r.error if r.source == "pubmed" else f"{r.label}: {r.error}" for r in self.sources if r.source in whole
        ]
        lines += [p.line() for p in self.failed if p.source not in whole]
        return "; ".join(dict.fromkeys(lines))


def query_window(state: WatchState, today: date, overlap_days: int, baseline_days: int) -> tuple[str, str]:
    """The entry dates a query watch asks for: from its last horizon less the overlap (however long ago
    that was, so a downtime loses nothing), else its baseline's days, else all of PubMed."""
    if state.horizon:
        start = date.fromisoformat(state.horizon) - timedelta(days=overlap_days)
        return start.strftime("%Y/%m/%d"), ""
    if baseline_days:
        return (today - timedelta(days=baseline_days)).strftime("%Y/%m/%d"), ""
    return "", ""


def due_watches(library: Library, name: str, refresh: float, watches: Sequence[Watch], now: datetime) -> list[Watch]:
    """The watches source ``name`` is asked about this poll: every watch it serves (only PubMed serves
    queries), or, with a refresh interval, those it has not served for that long. A failed answer, or an
    empty one set aside as an outage, served nothing: that watch is asked again next poll."""
    served = [w for w in watches if w.pmid or name == "pubmed"]
    if refresh <= 0:
        return served
    due = []
    for watch in served:
        last = library.source_ok_at(name, watch.id)
        if not last or datetime.fromisoformat(last) + timedelta(seconds=refresh) <= now:
            due.append(watch)
    return due


def ask_all(
    sources: Sequence[Source],
    requests: Mapping[str, Request],
    on_answer: Callable[[Source, Finding], None] | None = None,
) -> dict[str, Finding | Exception]:
    """Every source's answer to its request, asked at once: one thread per source, so hosts wait on
    their own limits. ``on_answer`` sees each answer as it comes, in the calling thread, while the other
    sources are still being asked."""
    with ThreadPoolExecutor(max_workers=max(1, len(sources)), thread_name_prefix="source") as pool:
        futures = {pool.submit(_ask, source, requests[source.name]): source for source in sources}
        for future in as_completed(futures):
            answer = future.result()
            if on_answer is not None and isinstance(answer, Finding):
                on_answer(futures[future], answer)
        return {source.name: future.result() for future, source in futures.items()}


def _ask(source: Source, request: Request) -> Finding | Exception:
    try:
        return source.find(request)
    except (SourceError, TransportError, PubMedError) as error:
        return error
    except Exception as error:  # a source's bug or an answer of a shape nobody foresaw fails that source
        log.debug("source %s failed unexpectedly", source.name, exc_info=True)
        return SourceError(
            f"{SOURCES.get(source.name, source.name)} failed unexpectedly: {type(error).__name__}: {error}"
        )


def _outages(
    library: Library,
    finding: Finding,
    watches: dict[str, Watch],
    windows: dict[str, tuple[str, str]],
    known_cites: Mapping[tuple[str, str], int],
) -> None:
    """An empty answer where the library knows what this source listed before is an outage, not news:
    that watch is set aside at this source for this poll. ``known_cites``: (source, watch id) -> the
    citing papers the library holds from that source, for every watch it was asked about."""
    who = "NCBI" if finding.source == "pubmed" else SOURCES.get(finding.source, finding.source)
    for watch_id in list(finding.answered):
        watch = watches[watch_id]
        kinds = ("query",) if watch.query else ("cites", "similar")
        for kind in kinds:
            if any(f.watch == watch_id and f.kind == kind for f in finding.found):
                continue
            if kind == "query":
                known = library.count_query_links_since(watch_id, windows.get(watch_id, ("", ""))[0])
                if known and watch_id not in finding.failed:
                    finding.failed[watch_id] = (
                        f"NCBI's search for {watch.name} came back empty although {known} papers it found before "
                        f"fall in the window; treating it as an NCBI outage"
                    )
                continue
            if kind == "cites":
                known = known_cites.get((finding.source, watch_id), 0)
            else:
                known = library.count_linked(watch_id, kind, source=finding.source)
            if known and watch_id not in finding.failed:
                what = "citing papers" if kind == "cites" else "similar articles"
                finding.failed[watch_id] = (
                    f"{who} returned no {what} for {watch.name} (PMID {watch.pmid}) though {known} were known; "
                    f"treating it as an {who} outage and trying again next poll"
                )
    for watch_id in finding.failed:
        if watch_id in finding.answered:
            finding.answered.remove(watch_id)
    finding.found = [f for f in finding.found if f.watch not in finding.failed]


@dataclass
class _Paper:
    """One paper as this poll's sources described it: its ids, key, reasons and what came with it."""

    ids: Ids
    key: str
    found: list[Found] = field(default_factory=list)
    stored: bool = False
    stored_pmid: str = ""  # the PMID of the stored record, "" when it has none

    @property
    def record(self) -> Paper | None:
        return next((f.record for f in self.found if f.record is not None), None)

    @property
    def indexed(self) -> str:
        dates = sorted(f.indexed for f in self.found if f.indexed)
        return dates[0] if dates else ""


def _merge(library: Library, found: Sequence[Found]) -> dict[str, _Paper]:
    """This poll's works, one per identity: records sharing a PMID, DOI, PMCID or PPR id are one paper,
    and a paper the library knows by any id keeps its key."""
    groups = []
    for group in group_by_identity([f.ids for f in found]):
        ids = Ids()
        for index in group:
            ids = ids.merged(found[index].ids)
        groups.append((ids, group))
    known = library.find_keys(ids for ids, _ in groups)
    merged: dict[str, _Paper] = {}
    for ids, group in groups:
        key = known.get(ids) or ids.key()
        paper = merged.setdefault(key, _Paper(ids, key))
        paper.ids = paper.ids.merged(ids)
        paper.found += [found[index] for index in group]
    stored = {p.key: p.pmid for p in library.papers(list(merged))}
    for key, paper in merged.items():
        paper.stored = key in stored
        paper.stored_pmid = stored.get(key, "")
    return merged


def _reasons(paper: _Paper) -> dict[tuple[str, str], Reason]:
    """(watch, kind) -> the reason, with every source that listed it and PubMed's score and rank."""
    reasons: dict[tuple[str, str], Reason] = {}
    for f in paper.found:
        old = reasons.get((f.watch, f.kind))
        sources = tuple(sorted({*(old.sources if old else ()), f.source}, key=list(SOURCES).index))
        score = f.score if f.score is not None else (old.score if old else None)
        rank = f.rank if f.rank is not None else (old.rank if old else None)
        reasons[(f.watch, f.kind)] = Reason(f.watch, f.kind, score, rank, sources)
    return reasons


def discover(
    library: Library,
    client: Eutils,
    watches: list[Watch],
    *,
    sources: Sequence[Source],
    today: date,
    overlap_days: int,
    query_baseline_days: int,
    refresh: Callable[[str], float] = lambda name: 0.0,
    analyse: Callable[[Paper, list[Reason]], Insight] | None = None,
    now: datetime | None = None,
) -> Findings:
    """Ask every due source what links to the watches now; fetch the records of new papers the library lacks.

    Fetching starts before the last source has answered (``_prefetch``), so a poll waits about as long as
    its slowest host rather than for the slowest answer and then the records. ``analyse`` runs on each
    EFetch batch while the next one is on its way.
    """
    moment = now or datetime.now(UTC)
    stamp = moment.isoformat(timespec="seconds")
    states = {w.id: library.watch_state(w) for w in watches}
    by_id = {w.id: w for w in watches}
    windows = {w.id: query_window(states[w.id], today, overlap_days, query_baseline_days) for w in watches if w.query}
    asked = {s.name: due_watches(library, s.name, refresh(s.name), watches, moment) for s in sources}
    due = [s for s in sources if asked[s.name]]
    known_cites = {
        (s.name, w.id): library.count_linked(w.id, "cites", source=s.name) for s in due for w in asked[s.name] if w.pmid
    }
    request = Request(
        watches=tuple(watches),
        memory=library.source_memory(),
        windows=windows,
        known_links={
            w.id: library.count_linked(w.id, "cites") + library.count_linked(w.id, "similar") for w in watches if w.pmid
        },
        known_cites=known_cites,
        today=today,
    )
    with _Fetches(client) as fetches:

        def on_answer(source: Source, finding: Finding) -> None:
            """As each source answers, while the others are still being asked: its outages set aside, and
            the records its answer needs whatever the others say asked for at once."""
            _outages(library, finding, by_id, windows, known_cites)
            _prefetch(library, fetches, source, finding, stamp)

        answers = ask_all(due, {s.name: replace(request, watches=tuple(asked[s.name])) for s in due}, on_answer)

        problems: list[WatchProblem] = []
        reports: list[SourceReport] = [SourceReport(s.name, "skipped") for s in sources if s not in due]
        findings: dict[str, Finding] = {}
        memory: dict[str, str] = {}
        for source in due:
            answer = answers[source.name]
            if isinstance(answer, Exception):
                reports.append(SourceReport(source.name, "failed", error=str(answer)))
                problems += [WatchProblem(w.id, str(answer), source=source.name) for w in asked[source.name]]
                continue
            problems += [WatchProblem(w, text, source=source.name) for w, text in answer.failed.items()]
            problems += [WatchProblem(w, text, failed=False, source=source.name) for w, text in answer.warnings]
            status = "partial" if answer.failed else "ok"
            error = "; ".join(f"{w}: {t}" for w, t in answer.failed.items())
            reports.append(SourceReport(source.name, status, error, len(answer.found), tuple(answer.answered)))
            findings[source.name] = answer
            memory.update(answer.memory)
        if "pubmed" not in {s.name for s in sources}:
            problems += [
                WatchProblem(w.id, "PubMed is not among IL2WATCH_SOURCES, and only PubMed serves queries")
                for w in watches
                if w.query
            ]

        answered = {w for f in findings.values() for w in f.answered}
        results = [
            WatchFindings(
                states[w.id],
                horizon=today.isoformat(),
                pubmed_answered=w.id in (findings["pubmed"].answered if "pubmed" in findings else []),
            )
            for w in watches
            if w.id in answered
        ]
        by_watch = {wf.watch.id: wf for wf in results}

        everything = [f for finding in findings.values() for f in finding.found if f.watch in by_watch]
        merged = _merge(library, everything)
        starting = _starting_sources(library, findings, by_watch)
        for key, paper in merged.items():
            for (watch_id, _kind), reason in _reasons(paper).items():
                wf = by_watch[watch_id]
                wf.linked.setdefault(key, []).append(reason)
        for wf in results:
            known = library.linked(wf.watch.id)
            for key, reasons in wf.linked.items():
                fresh = [r for r in reasons if (key, r.kind) not in known]
                if not fresh:
                    continue
                quiet = starting.get(wf.watch.id, set())
                if quiet and all(set(r.sources) <= quiet for r in fresh):
                    wf.quiet[key] = fresh
                else:
                    wf.new[key] = fresh

        wanted = {key for wf in results for key in (*wf.new, *wf.quiet)}
        gained_pmid = {key for key, p in merged.items() if p.stored and p.ids.pmid and not p.stored_pmid}
        to_fetch = {
            key: merged[key] for key in sorted(wanted | gained_pmid) if not merged[key].stored or key in gained_pmid
        }
        papers, unreadable, insights, record_problems = _fetch(
            library, sources, to_fetch, results, stamp, today, analyse, fetches
        )
        problems += record_problems
    missing = set(to_fetch) - set(papers) - (gained_pmid - wanted)
    missing_pmids = sorted(to_fetch[key].ids.pmid for key in missing if to_fetch[key].ids.pmid)
    if missing_pmids:
        log.warning(
            "NCBI returned no record for %d PMID(s) (%s); they stay unseen and are asked for again next poll",
            len(missing_pmids),
            ", ".join(missing_pmids[:5]),
        )
    others = sorted(key for key in missing if not to_fetch[key].ids.pmid)
    if others:
        log.warning("no record could be had for %s; asked for again next poll", ", ".join(others[:5]))
    for wf in results:  # neither stored nor marked seen: asked for again
        for key in missing:
            wf.new.pop(key, None)
            wf.quiet.pop(key, None)
            wf.linked.pop(key, None)
    papers = _rekey(library, papers, results)
    baselines = [
        baseline
        for wf in results
        for source in sorted(starting.get(wf.watch.id, set()), key=list(SOURCES).index)
        if (baseline := source_baseline(source, wf, papers)) is not None
    ]
    for wf in results:
        if wf.state.restored:
            _quiet_what_source_baselines_recorded(library, wf, papers)
    return Findings(results, papers, insights, problems, unreadable, reports, baselines, memory)


def source_baseline(source: str, wf: WatchFindings, papers: Mapping[str, Paper]) -> SourceBaseline | None:
    """The note for a source that answered a watch for the first time: what it revealed, recorded quietly,
    with the ids of the newest of those papers that fit ``NOTE_IDS_BUDGET`` characters and the entry date
    by which every other one had entered (see ``SourceBaseline``); None when it revealed nothing."""
    revealed = [key for key, reasons in wf.quiet.items() if any(source in r.sources for r in reasons)]
    if not revealed:
        return None
    held = [papers[key] for key in revealed if key in papers]
    held.sort(key=lambda p: (p.entry_date, p.key), reverse=True)
    named: list[str] = []
    size = 0
    for index, paper in enumerate(held):
        size += len(paper.key) + 4  # in JSON: the id quoted, and ", "
        if size > NOTE_IDS_BUDGET:
            return SourceBaseline(
                source,
                wf.watch.id,
                len(revealed),
                sum(1 for p in held if p.is_preprint),
                tuple(named),
                max(p.entry_date for p in held[index:]),
            )
        named.append(paper.key)
    return SourceBaseline(source, wf.watch.id, len(revealed), sum(1 for p in held if p.is_preprint), tuple(named))


def _quiet_what_source_baselines_recorded(library: Library, wf: WatchFindings, papers: Mapping[str, Paper]) -> None:
    """On a watch rebuilt from the channel, a paper a later-added source had recorded quietly (named in its
    baseline note, or entered by the note's ``entered_by`` date) is recorded quietly again, not posted."""
    covered = library.source_baselines(wf.watch.id)
    if not covered or not wf.new:
        return
    stored = {p.key: p for p in library.papers([key for key in wf.new if key not in papers])}
    for key in list(wf.new):
        paper = papers.get(key) or stored.get(key)
        if paper is None:
            continue
        tokens = {key, *paper.ids.tokens()}
        for reason in wf.new[key]:
            for source in reason.sources:
                named, entered_by = covered.get(source, ((), ""))
                if tokens & set(named) or (entered_by and paper.entry_date and paper.entry_date <= entered_by):
                    wf.quiet[key] = wf.new.pop(key)
                    break
            if key in wf.quiet:
                break


def _rekey(library: Library, papers: dict[str, Paper], results: list[WatchFindings]) -> dict[str, Paper]:
    """Keys chosen again once the records are in: a record brings ids its listing lacked (Europe PMC lists a
    preprint by its PPR id; its record has the DOI). A new paper takes the key of the paper those ids already
    name in the library (one PubMed indexed earlier: then only reasons never recorded are news), or of
    another paper of this poll, or the key its best id makes ("doi:…" rather than "ppr:…")."""
    final = {old: paper.key for old, paper in papers.items()}  # _fetch chose each record's final key
    if all(old == new for old, new in final.items()):
        return papers
    renamed: dict[str, Paper] = {}
    for old, paper in papers.items():
        if paper.key not in renamed or old == paper.key:
            renamed[paper.key] = paper
    for wf in results:
        known = library.linked(wf.watch.id)
        for old, new in final.items():
            if old == new:
                continue
            reasons = wf.linked.pop(old, None)
            if reasons is not None:
                merged = {(r.watch, r.kind): r for r in wf.linked.get(new, [])}
                for r in reasons:
                    had = merged.get((r.watch, r.kind))
                    sources = tuple(dict.fromkeys((*(had.sources if had else ()), *r.sources)))
                    merged[(r.watch, r.kind)] = replace(had or r, sources=sources)
                wf.linked[new] = list(merged.values())
            for pool in (wf.new, wf.quiet):
                if pool.pop(old, None) is not None:
                    fresh = [r for r in wf.linked.get(new, []) if (new, r.kind) not in known]
                    if fresh:
                        pool[new] = fresh
        for key in list(wf.quiet):  # news at any source beats a quiet listing
            if key in wf.new:
                del wf.quiet[key]
    return renamed


def _starting_sources(
    library: Library, findings: dict[str, Finding], by_watch: dict[str, WatchFindings]
) -> dict[str, set[str]]:
    """watch id -> the sources answering for it for the first time, on a watch that already has its
    baseline (a source added later). A new or restored watch starts with every source at once."""
    starting: dict[str, set[str]] = {}
    for name, finding in findings.items():
        for watch_id in finding.answered:
            wf = by_watch.get(watch_id)
            if wf is None or wf.first_poll or wf.state.restored:
                continue
            if not library.source_started(name, watch_id):
                starting.setdefault(watch_id, set()).add(name)
    return starting


def with_ids(stored: Paper, ids: Ids) -> Paper:
    """A stored paper's record with the ids it lacked filled in from another source's listing and record.
    Its PMID only ever comes with PubMed's record (which then replaces it)."""
    return replace(
        stored,
        doi=stored.doi or ids.doi,
        pmcid=stored.pmcid or ids.pmcid,
        ppr=stored.ppr or ids.ppr,
        openalex=stored.openalex or ids.openalex,
        epmc=stored.epmc or ids.epmc,
    )


class _Fetches:
    """The records one poll asks for, each as soon as it is known to be needed. EFetch requests go one
    after another on a lane of their own (beside PubMed's own questions, at NCBI's one shared rate), each
    taking up to ``EFETCH_BATCH`` of the PMIDs waiting when it leaves, so PMIDs that several answers name
    while a request is on its way share the next one. Each source's records of its works without a PMID go
    on that source's lane. Asked for and read only by the thread that reads the library; nothing is asked
    for twice."""

    def __init__(self, client: Eutils):
        self.client = client
        self.efetches: list[Future[pubmed.Fetched]] = []  # in the order they were asked for
        self.records: list[tuple[Source, list[Found], Future[Given]]] = []
        self._lanes: dict[str, ThreadPoolExecutor] = {}
        self._pmids: set[str] = set()
        self._waiting: list[str] = []  # PMIDs asked for that no EFetch request has taken yet
        self._lock = threading.Lock()
        self._works: set[tuple[str, Ids]] = set()  # (source, the ids it listed the work by)

    def _lane(self, name: str) -> ThreadPoolExecutor:
        if name not in self._lanes:
            self._lanes[name] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"records-{name}")
        return self._lanes[name]

    def pmids(self, pmids: Iterable[str]) -> None:
        """EFetch the PMIDs not asked for yet."""
        fresh = [pmid for pmid in dict.fromkeys(pmids) if pmid not in self._pmids]
        self._pmids.update(fresh)
        with self._lock:
            self._waiting += fresh
        for _ in range(math.ceil(len(fresh) / pubmed.EFETCH_BATCH)):
            self.efetches.append(self._lane("efetch").submit(self._efetch))

    def _efetch(self) -> pubmed.Fetched:
        """One EFetch request for the PMIDs waiting now (none when an earlier request took them all)."""
        with self._lock:
            chunk, self._waiting = self._waiting[: pubmed.EFETCH_BATCH], self._waiting[pubmed.EFETCH_BATCH :]
        return pubmed.fetch_records(self.client, chunk) if chunk else pubmed.Fetched()

    def works(self, source: Source, found: Sequence[Found]) -> None:
        """Ask ``source`` for the records of the works it listed that it was not asked about yet."""
        fresh = [f for f in found if (source.name, f.ids) not in self._works]
        self._works.update((source.name, f.ids) for f in fresh)
        if fresh:
            self.records.append((source, fresh, self._lane(source.name).submit(source.records, fresh)))

    def __enter__(self) -> _Fetches:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        for lane in self._lanes.values():  # a poll that failed asks for nothing more
            lane.shutdown(wait=True, cancel_futures=kind is not None)


def _prefetch(library: Library, fetches: _Fetches, source: Source, finding: Finding, stamp: str) -> None:
    """Start fetching what one source's answer shows the poll needs whatever the other sources say: the
    PMIDs no stored paper has (EFetch), and this source's works without a PMID, listed without their
    record, that no stored paper is known by (its ``records``). The merge later uses what came and asks
    for what is still missing; a record it finds it did not need (a work another source lists with a
    PMID) is dropped."""
    found = [f for f in finding.found if f.watch in finding.answered]
    known = set(library.keys_of({token for f in found for token in f.ids.tokens()}))
    pmids = [f.ids.pmid for f in found if f.ids.pmid and f"pmid:{f.ids.pmid}" not in known]
    waiting = library.unreadable_waiting(pmids, now=stamp)
    fetches.pmids(pmid for pmid in pmids if pmid not in waiting)
    fetches.works(
        source,
        [
            f
            for f in found
            if f.source == source.name and not f.ids.pmid and f.record is None and not known & set(f.ids.tokens())
        ],
    )


def _fetch(
    library: Library,
    sources: Sequence[Source],
    wanted: dict[str, _Paper],
    results: list[WatchFindings],
    stamp: str,
    today: date,
    analyse: Callable[[Paper, list[Reason]], Insight] | None,
    fetches: _Fetches,
) -> tuple[dict[str, Paper], dict[str, str], dict[str, Insight], list[WatchProblem]]:
    """Records of the wanted papers, keyed: EFetch for the ones with a PMID (analysed batch by batch while
    the next batch is on its way), the sources' own records for the others (fetched at the same time from
    each source's host). What ``fetches`` asked for already as the sources answered is used, and only
    the rest asked for now. A work without a PMID takes the earliest date any source says it first
    indexed it as its entry date."""
    by_pmid = {p.ids.pmid: key for key, p in wanted.items() if p.ids.pmid}
    waiting = library.unreadable_waiting(list(by_pmid), now=stamp)
    elsewhere = {key: p for key, p in wanted.items() if not p.ids.pmid}
    insights: dict[str, Insight] = {}
    problems: list[WatchProblem] = []

    def reasons_of(key: str) -> list[Reason]:
        return [r for wf in results for r in (*wf.new.get(key, []), *wf.quiet.get(key, []))]

    taken: dict[str, str] = {}  # a strong id token -> the final key of this poll's paper that has it

    def keyed(key: str, paper: Paper, *, from_pubmed: bool) -> Paper:
        """The record with every id the listings and the record carry, under its final key: the key of the
        paper those ids name in the library (a paper indexed earlier under another id), or of another
        record of this poll, or the key its best id makes ("doi:…" rather than the "ppr:…" it was listed by).
        A paper the library holds keeps its record unless this is PubMed's: another source's record only
        adds its ids (a preprint record never takes a stored PubMed paper's PMID away)."""
        ids = wanted[key].ids.merged(paper.ids)
        held = key if wanted[key].stored else library.find_key(ids)  # a stored paper whose ids grew keeps its key
        final = held or next((taken[t] for t in ids.strong() if t in taken), None) or ids.key()
        for token in ids.strong():
            taken.setdefault(token, final)
        stored = library.paper(held) if held and not from_pubmed else None
        if stored is not None:
            return with_ids(stored, ids)
        indexed = [d for d in (paper.entry_date, wanted[key].indexed) if d]
        entry_date = paper.entry_date if ids.pmid and paper.entry_date else min(indexed, default="")
        return replace(
            paper,
            key=final,
            pmid=ids.pmid,
            doi=paper.doi or ids.doi,
            pmcid=paper.pmcid or ids.pmcid,
            ppr=ids.ppr,
            openalex=ids.openalex,
            epmc=ids.epmc,
            entry_date=entry_date or today.isoformat(),
        )

    # what the sources' answers did not ask for already: every source that listed the work without its
    # record is asked for it (each may know the work's first-indexed date, and the earliest is its entry date)
    fetches.pmids(pmid for pmid in by_pmid if pmid not in waiting)
    theirs = [f for p in elsewhere.values() for f in p.found if f.record is None]
    for source in sources:
        fetches.works(source, [f for f in theirs if f.source == source.name])
    listed = {(f.source, f.watch, f.ids) for f in theirs}
    # PubMed's records failing fails the poll, as it always did: nothing is stored or marked seen, and
    # every paper (from any source) is asked for again next poll
    papers: dict[str, Paper] = {}
    unread: dict[str, str] = {}
    for efetch in fetches.efetches:
        batch = efetch.result()
        for paper in batch.papers:  # keyed once, and analysed while the next batch is on its way
            key = by_pmid.get(paper.pmid)
            if key is not None:
                papers[key] = final = keyed(key, paper, from_pubmed=True)
                if analyse is not None:
                    insights[final.key] = analyse(final, reasons_of(key))
        unread.update(batch.unreadable)
    given: list[SourceRecord] = []
    failed: dict[str, tuple[str, set[str]]] = {}  # source -> why its records failed, the watches that needed them
    for source, asked, future in fetches.records:
        try:
            answer = future.result()
        except (SourceError, TransportError) as error:
            why = str(error)
        except Exception as error:  # a record of a shape nobody foresaw fails that source's records only
            log.debug("%s's records failed unexpectedly", source.name, exc_info=True)
            why = f"unexpected {type(error).__name__}: {error}"
        else:
            given += answer.records
            problems += [WatchProblem(w, text, failed=False, source=source.name) for w, text in answer.warnings]
            continue
        # a work asked about early that turned out to need no record of its own (PubMed's came) is no loss
        needed = {f.watch for f in asked if (f.source, f.watch, f.ids) in listed}
        if needed:
            failed.setdefault(source.name, (why, set()))[1].update(needed)
    for name, (why, needed) in failed.items():
        log.warning("%s's records could not be fetched this poll (%s)", SOURCES.get(name, name), why)
        problems += [
            WatchProblem(w, f"its records could not be fetched ({why}); asked for again next poll", False, name)
            for w in sorted(needed)
        ]
    tokens: dict[str, set[str]] = {}
    for key, p in elsewhere.items():
        for token in p.ids.strong():
            tokens.setdefault(token, set()).add(key)
    records: dict[str, list[Paper]] = {}  # key -> its records, the sources' fetched ones first
    for record in given:  # a record serves every listing it matches (listed by PPR here, by DOI there)
        for key in sorted({k for t in record.ids.strong() for k in tokens.get(t, ())}):
            records.setdefault(key, []).append(replace(record.paper, ppr=record.ids.ppr))
    for key, p in elsewhere.items():
        records.setdefault(key, []).extend(f.record for f in p.found if f.record is not None)
    for key, found in records.items():
        if key not in papers and found:
            earliest = min((r.entry_date for r in found if r.entry_date), default="")
            papers[key] = keyed(key, replace(found[0], entry_date=earliest), from_pubmed=False)
    for key, paper in papers.items():
        if paper.key not in insights and analyse is not None:
            insights[paper.key] = analyse(paper, reasons_of(key))
    unreadable = {pmid: why for pmid, why in unread.items() if pmid in by_pmid and by_pmid[pmid] not in papers}
    if unreadable:
        log.warning(
            "PubMed's record for PMID(s) %s cannot be read (%s); the others are stored, these are asked for "
            "again later",
            ", ".join(sorted(unreadable)[:5]),
            next(iter(unreadable.values()))[:200],
        )
    return papers, unreadable, insights, problems
