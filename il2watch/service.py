"""``poll_once()``: discover, store, deliver — the one function the CLI, the scheduler and the tests call."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Protocol, TypeVar

from slack_sdk import WebClient

from il2watch import backfill as backfilling
from il2watch import eutils as eutils_client
from il2watch import followup_check, intel, redact
from il2watch.config import Settings
from il2watch.deliver import Deliverer, DeliveryReport, DeliveryStopped, Renderer, StopReason, print_outbox
from il2watch.discovery import Findings, discover
from il2watch.eutils import Eutils
from il2watch.identity import describe_key
from il2watch.insights import Insights
from il2watch.lease import HeldLease, lease_problem, live_holder, make_holder_id
from il2watch.library import INTERRUPTED_RUN, Library, LibraryError, StoredInsight
from il2watch.markup import counted
from il2watch.model import Insight, Paper, Watch
from il2watch.planning import Policy, new_key, plan
from il2watch.pubmed import PubMedError
from il2watch.rebuild import rebuild_from_channels
from il2watch.slack_client import make_client
from il2watch.sources import SourceError, make_source, make_sources
from il2watch.sources.europepmc import EuropePmc
from il2watch.sources.openalex import OpenAlex
from il2watch.transport import TransportError

log = logging.getLogger("il2watch.service")


class PollError(Exception):
    """A poll failed; the message is one line saying what and, where possible, what to do (no secret in it)."""

    def __init__(self, message: str):
        super().__init__(redact.scrub(message))


class PollFailed(Exception):
    """Discovery could not serve any watch; the message names each and why."""


@dataclass
class PollReport:
    run_id: int = 0
    status: str = "ok"
    error: str = ""
    requests: int = 0
    candidates: int = 0
    new: int = 0
    stored: int = 0
    queued: int = 0
    printed: int = 0
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    problems: list[str] = field(default_factory=list)  # one line per watch that failed or warned
    other_requests: dict[str, int] = field(default_factory=dict)  # the other sources' requests, by label

    def line(self) -> str:
        parts = [counted(self.new, "new paper"), f"{self.stored} stored", f"{self.queued} queued"]
        if self.delivery.posted or self.delivery.settled:
            parts.append(f"{self.delivery.posted} posted")
        if self.delivery.settled:
            parts.append(f"{self.delivery.settled} already in Slack")
        if self.delivery.updated:
            parts.append(f"{self.delivery.updated} post(s) updated with a follow-up")
        if self.printed:
            parts.append(f"{self.printed} shown here (no SLACK_BOT_TOKEN, nothing marked delivered)")
        if self.delivery.still_due:
            parts.append(f"{self.delivery.still_due} still due")
        problems = f" ({'; '.join(self.delivery.problems)})" if self.delivery.problems else ""
        watches = "".join(f"; {problem}" for problem in self.problems)
        others = "".join(f", {count} {label}" for label, count in self.other_requests.items() if count)
        line = (
            f"poll {self.status}: "
            + ", ".join(parts)
            + f"; {counted(self.requests, 'NCBI request')}"
            + others
            + problems
            + watches
        )
        return redact.scrub(line)


@lru_cache(maxsize=8)
def _lexicon(paths: tuple) -> intel.Lexicon:
    """The built-in lexicon with the user's files over it; files that do not exist are skipped."""
    try:
        return intel.load_lexicon([p for p in paths if p.is_file()])
    except intel.LexiconError as error:
        raise PollError(f"lexicon: {error}") from None


def insight_maker(settings: Settings, library: Library, *, summariser: bool = True) -> Insights:
    """What il2watch says about a paper: the insight stored with it, computed again (and stored) only when
    its record, reasons, votes or the lexicon changed.

    Slash-command replies pass ``summariser=False``: they are built before Slack's 3-second ack, so they
    read what is stored, never ask the optional language model and write nothing.
    """
    lexicon = _lexicon(tuple(settings.lexicon_paths))
    model = intel.make_summariser(settings) if summariser else None
    return Insights(library, lexicon, summariser=model, summariser_name=settings.summariser_model, keep=summariser)


def all_watches(settings: Settings, library: Library) -> list[Watch]:
    """Configured watches, then the ones added from Slack (a configured id wins)."""
    configured = list(settings.watches)
    ids = {w.id for w in configured}
    return configured + [w for w in library.slack_watches() if w.id not in ids]


def make_eutils(settings: Settings) -> Eutils:
    """The E-utilities client the settings describe (``il2watch doctor`` asks it with one attempt, briefly)."""
    return eutils_client.from_settings(settings)


def problem_lines(findings: Findings) -> list[str]:
    """What went wrong for single watches and records, one line each, for the poll's line and ``status``."""
    lines = [problem.line() for problem in findings.problems]
    lines += [
        f"PubMed's record for PMID {pmid} cannot be read ({why}); the others are stored, it is asked for again later"
        for pmid, why in sorted(findings.unreadable.items())
    ]
    return [redact.scrub(line) for line in lines]


def _store(
    library: Library,
    findings: Findings,
    *,
    settings: Settings,
    insight_for: Insights,
    run_id: int,
    now: str,
    today: date,
    watermark: dict,
) -> tuple[int, int]:
    """Write one poll's findings and its outbox rows in a single transaction: all of it, or none."""
    new_keys = sorted(findings.new_keys)
    stored = {p.key: p for p in library.papers([k for k in new_keys if k not in findings.papers])}
    papers: dict[str, Paper] = {**stored, **findings.papers}
    current: dict[str, StoredInsight] = {}
    for key in sorted(set(new_keys) | {k for wf in findings.watches for k in wf.quiet}):
        if key not in papers:
            continue
        reasons = [s.reason for s in library.reasons_for(key)]
        for wf in findings.watches:
            reasons += [r for r in (*wf.new.get(key, []), *wf.quiet.get(key, [])) if r not in reasons]
        current[key] = insight_for.current(papers[key], reasons)  # analysed already if discovery fetched it
    insights: dict[str, Insight] = {key: c.insight for key, c in current.items()}
    policy = Policy(
        default_channel=settings.channel,
        mode=settings.delivery_mode,
        burst=settings.burst,
        baseline_posts=settings.baseline_posts,
        relevance_threshold=settings.relevance_threshold,
        overlap_days=settings.overlap_days,
    )
    # New papers that are notices about posted papers, or journal versions of posted preprints, are told as
    # those papers' follow-ups and not posted as papers.
    arriving = followup_check.arrivals(library, {key: papers[key] for key in new_keys if key in papers})

    def claimed(channel: str, keys: Sequence[str]) -> set[str]:
        return library.claimed(channel, keys) | arriving.held_in(channel, keys)

    deliveries = plan(findings, papers=papers, insights=insights, claimed=claimed, policy=policy, watermark=watermark)
    with library.transaction():
        library.save_papers(findings.papers.values(), insights, now=now)
        for key, insight in current.items():
            library.save_insight(key, insight, now=now)
        library.save_reasons(
            [(key, reason) for wf in findings.watches for key, reasons in wf.linked.items() for reason in reasons],
            now=now,
            run_id=run_id,
        )
        for wf in findings.watches:
            # An empty first answer (an outage, or a paper nobody links yet) is no baseline: the next
            # poll is still the watch's first, so an outage cannot turn the back catalogue into news.
            baselined = (wf.first_poll and bool(wf.linked)) or wf.state.restored
            library.set_watch_progress(
                wf.watch,
                horizon=today.isoformat() if wf.pubmed_answered else (wf.state.horizon or today.isoformat()),
                baseline_at=now if baselined else None,
                restored=False,
            )
        library.save_source_outcomes(findings.sources, findings.memory, now=now)
        library.clear_unreadable(p.pmid for p in findings.papers.values() if p.pmid)
        library.record_unreadable(findings.unreadable, now=now)
        library.set_watch_problems(problem_lines(findings), now=now)
        for delivery in deliveries:
            library.enqueue(
                key=delivery.key,
                channel=delivery.channel,
                kind=delivery.kind,
                papers=delivery.papers,
                payload=delivery.payload,
                state=delivery.state,
                run_id=run_id,
                now=now,
            )
            if delivery.kind in ("paper", "digest"):  # what each record says as it is posted, kept as it was
                for key in delivery.papers:
                    if key in papers:
                        followup_check.remember_posted_state(library, papers[key], now=now)
        followup_check.record_arrivals(library, arriving, now=now)
    return len(findings.papers), sum(len(d.papers) for d in deliveries)


def _deliver(
    library: Library,
    settings: Settings,
    client: WebClient | None,
    watches: list[Watch],
    insight_for: Insights,
    out: Callable[[str], None],
    stop_reason: StopReason,
) -> tuple[int, DeliveryReport]:
    """Post what is due, or print it when there is no Slack token (then nothing is marked delivered)."""
    renderer = Renderer(
        library,
        {w.id: w for w in watches},
        insight_for,
        command=settings.command,
        thread_abstract=settings.thread_abstract,
    )
    if client is None:
        return print_outbox(library, renderer, out), DeliveryReport()
    deliverer = Deliverer(
        library,
        client,
        renderer,
        default_channel=settings.channel,
        post_interval=settings.post_interval,
        backoff=settings.slack_backoff,
        stop_reason=stop_reason,
    )
    return 0, deliverer.deliver()


def deliver_due(
    settings: Settings,
    *,
    out: Callable[[str], None] = print,
    slack: WebClient | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> DeliveryReport:
    """Deliver the outbox without polling (digests, alerts)."""
    client = slack if slack is not None else (make_client(settings) if settings.slack_bot_token else None)

    def stop_reason() -> str:
        return SHUTTING_DOWN if should_stop() else ""

    try:
        with Library(settings.db_path) as library:
            watches = all_watches(settings, library)
            insights = insight_maker(settings, library)
            return _deliver(library, settings, client, watches, insights, out, stop_reason)[1]
    except (LibraryError, DeliveryStopped) as error:
        raise PollError(str(error)) from None


def bundle_digests(library: Library, now: datetime) -> int:
    """Gather the papers waiting for the digest into one digest row per channel, most relevant first."""
    waiting = library.outbox("waiting", kind="paper")
    by_channel: dict[str, list] = {}
    for row in waiting:
        by_channel.setdefault(row.channel, []).append(row)
    with library.transaction():
        for channel, rows in by_channel.items():
            keys = [p for row in rows for p in row.papers]
            relevance = library.relevance_of(keys)
            keys.sort(key=lambda p: -relevance.get(p, 0))
            key = new_key()
            watermark = rows[-1].payload.get("watermark")
            library.enqueue(
                key=key,
                channel=channel,
                kind="digest",
                papers=(),
                payload={
                    "title": f"Digest: {counted(len(keys), 'new paper')}",
                    "watermark": watermark,
                },
                now=now.isoformat(timespec="seconds"),
            )
            library.update_outbox(key, papers=keys)
            library.move_claims(keys, channel, key)
            for row in rows:
                library.update_outbox(row.key, state="bundled")
    return len(by_channel)


def raise_or_clear_alert(settings: Settings, *, slack: WebClient | None = None) -> str:
    """After ``alert_after`` failed polls in a row, one alert; after the next success, one recovery note."""
    if not settings.alert_after:
        return ""
    with Library(settings.db_path) as library:
        failures = library.consecutive_failures()
        raised = library.get_state("alert_raised")
        channel = settings.alert_channel or settings.channel
        if failures >= settings.alert_after and not raised:
            last = library.last_run() or {}
            text = (
                f"il2watch: the last {failures} polls failed. Latest error: {last.get('error') or 'unknown'}. "
                f"Run `il2watch doctor` on the worker to check every setting."
            )
            event, state = "il2watch_alert", "raised"
        elif failures == 0 and raised:
            text, event, state = "il2watch has recovered: the last poll succeeded.", "il2watch_recovered", ""
        else:
            return ""
        text = redact.scrub(text)
        with library.transaction():
            library.enqueue(
                key=new_key(), channel=channel, kind="note", papers=(), payload={"text": text, "event_type": event}
            )
            library.set_state("alert_raised", state)
    log.warning(text) if state else log.info(text)
    deliver_due(settings, slack=slack, out=log.warning)
    return text


def backfill(
    settings: Settings,
    watch_id: str,
    limit: int,
    *,
    progress: Callable[[int, int], None],
    slack: WebClient | None = None,
    out: Callable[[str], None] = print,
    include_held: bool = False,
) -> backfilling.BackfillReport:
    """Post up to ``limit`` more of a watch's papers (newest first) that its channel has not had: one
    digest above the burst size, and none held back as off-topic unless ``include_held``."""
    problem = backfilling.limit_problem(limit)
    if problem:
        raise PollError(problem)
    client = slack if slack is not None else (make_client(settings) if settings.slack_bot_token else None)
    with Library(settings.db_path) as library:
        watches = {w.id: w for w in all_watches(settings, library)}
        if watch_id not in watches:
            raise PollError(f"no watch {watch_id!r}; watches: {', '.join(sorted(watches))}")
        watch = watches[watch_id]
        channel = watch.channel or settings.channel
        insight_for = insight_maker(settings, library)
        choice = backfilling.choose(
            library,
            watch,
            channel,
            limit,
            insight_for=insight_for,
            threshold=settings.relevance_threshold,
            include_held=include_held,
        )
        kind = backfilling.enqueue(library, choice, watch=watch, channel=channel, burst=settings.burst)
        chosen = backfilling.describe(choice, kind, watch)
        total = 1 if kind == "digest" else len(choice.papers)
        progress(0, total)
        renderer = Renderer(
            library, watches, insight_for, command=settings.command, thread_abstract=settings.thread_abstract
        )
        if client is None:
            shown = print_outbox(library, renderer, out)
            progress(shown, total)
            return backfilling.BackfillReport(still_due=shown, chosen=chosen)
        deliverer = Deliverer(
            library,
            client,
            renderer,
            default_channel=settings.channel,
            post_interval=settings.post_interval,
            backoff=settings.slack_backoff,
            on_posted=lambda done: progress(done, total),
        )
        try:
            report = deliverer.deliver()
        except DeliveryStopped as error:
            raise PollError(str(error)) from None
        return backfilling.BackfillReport(**vars(report), chosen=chosen)


SHUTTING_DOWN = "il2watch is shutting down; the rest is posted by the next run"


def unexpected(error: BaseException) -> str:
    """One line for an exception nobody expected: what it was, never a traceback."""
    lines = str(error).strip().splitlines()
    first = lines[0][:300] if lines else ""
    return f"unexpected {type(error).__name__}" + (f": {first}" if first else "") + " (a bug: please report it)"


def _open_library(settings: Settings) -> Library:
    """The library a run works on; one that cannot be opened is the run's one line."""
    try:
        return Library(settings.db_path)
    except LibraryError as error:
        raise PollError(str(error)) from None


def _stopper(
    library: Library, holder: str, should_stop: Callable[[], bool], clock: Callable[[], float]
) -> Callable[[], str]:
    """Why a run must stop posting now ("" while it may go on): shutting down, or its lease lost."""

    def stop_reason() -> str:
        if should_stop():
            return SHUTTING_DOWN
        return lease_problem(library, holder, clock=clock) if holder else ""

    return stop_reason


def close_interrupted_runs(
    library: Library, holder: str, now: str, clock: Callable[[], float] = time.time, *, kind: str = "poll"
) -> int:
    """Mark the runs a killed or crashed poller left "running" as interrupted, so they count as failures.

    A poller holding the lease (``holder``) knows no other poll is running; without one, a run is left
    alone while its holder still holds the lease.
    """
    live = "" if holder else live_holder(library, clock=clock)
    dead = [run for run in library.unfinished_runs(kind) if holder or not run["holder"] or run["holder"] != live]
    for run in dead:
        library.finish_run(run["id"], status="interrupted", error=INTERRUPTED_RUN, now=now)
    return len(dead)


Ran = TypeVar("Ran")  # what a run under the lease gives


@dataclass(frozen=True)
class LeaseHeld:
    """Why a poll asked for now did not run: a worker holds the poller lease and polls on its schedule."""

    holder: str  # "" when the lease row names nobody
    next_poll_at: str  # ISO time of its next poll, "" when it has not said


def poll_unless_held(settings: Settings, *, out: Callable[[str], None]) -> PollReport | LeaseHeld:
    """One poll under the poller lease (``il2watch poll``, ``/il2 poll``), or who holds it: two pollers on one
    library would ask every host twice."""
    return unless_held(settings, lambda holder: poll_once(settings, out=out, holder=holder))


def unless_held(settings: Settings, run: Callable[[str], Ran]) -> Ran | LeaseHeld:
    """``run(holder)`` under the poller lease (a poll, a follow-up check asked for now), or who holds it."""
    holder = make_holder_id()
    held = HeldLease(settings.db_path, holder, ttl=settings.lease_seconds)
    with held as holding:
        if not holding:
            with Library(settings.db_path) as library:
                upcoming = library.get_state("next_poll_at") or ""
            return LeaseHeld(held.other.holder if held.other else "", upcoming)
        return run(holder)


class RecordedReport(Protocol):
    """What a recorded run's report holds for the run's row (``PollReport``, ``FollowupReport``)."""

    run_id: int
    status: str
    error: str
    requests: int
    delivery: DeliveryReport


Report = TypeVar("Report", bound=RecordedReport)


@dataclass(frozen=True)
class Run:
    """What a recorded run's body works with: the open library, the Slack client (None without a token),
    and why posting must stop now."""

    library: Library
    client: WebClient | None
    stop_reason: StopReason


def _recorded_run(
    settings: Settings,
    kind: str,
    report: Report,
    body: Callable[[Run], None],
    *,
    expected: tuple[type[Exception], ...],
    counts: Callable[[Report], dict[str, int]],
    stamp: str,
    eutils: Eutils,
    slack: WebClient | None,
    holder: str,
    should_stop: Callable[[], bool],
    clock: Callable[[], float],
    setup: Callable[[Library], None] = lambda _: None,
) -> Report:
    """One run of ``kind`` ("poll", "followups") with its row in the runs table: the runs a killed worker
    left running closed first (with ``setup``, in one transaction), then ``body``, then the outcome
    recorded whatever failed (an ``expected`` error as its message, anything else as one line) with the
    requests, the posts and the ``counts`` of its report. A failed run raises PollError (one line)."""
    library = _open_library(settings)
    stop_reason = _stopper(library, holder, should_stop, clock)
    try:
        client = slack if slack is not None else (make_client(settings) if settings.slack_bot_token else None)
        with library.transaction():
            setup(library)
            close_interrupted_runs(library, holder, stamp, clock, kind=kind)
        report.run_id = library.start_run(kind, holder=holder, now=stamp)
        try:
            body(Run(library, client, stop_reason))
            stopped = report.delivery.stopped
            if stopped and stopped != SHUTTING_DOWN:
                report.status, report.error = "error", f"stopped posting: {stopped}"
        except expected as error:
            report.status, report.error = "error", str(error)
        except Exception as error:  # anything else still ends the run, as an error with one line
            log.debug("the %s run failed unexpectedly", kind, exc_info=True)
            report.status, report.error = "error", unexpected(error)
        report.requests = eutils.stats.requests
        library.finish_run(
            report.run_id,
            status=report.status,
            error=report.error,
            now=None,  # the moment it finished, by the wall clock
            requests=report.requests,
            posted=report.delivery.posted,
            **counts(report),
        )
        if report.status == "error":
            raise PollError(report.error)
        return report
    except LibraryError as error:
        raise PollError(str(error)) from None
    finally:
        library.close()


def poll_once(
    settings: Settings,
    *,
    out: Callable[[str], None] = print,
    today: date | None = None,
    now: datetime | None = None,
    eutils: Eutils | None = None,
    slack: WebClient | None = None,
    holder: str = "",
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.time,
) -> PollReport:
    """One cycle: find what is new, store it with its outbox rows, deliver what is due.

    Every run it starts ends with a recorded outcome, whatever fails. With ``holder`` (the poller lease's
    holder) posting stops, and says why, as soon as that lease is lost.
    """
    moment = now or datetime.now(UTC)
    day = today or moment.date()
    stamp = moment.isoformat(timespec="seconds")
    ncbi = eutils or make_eutils(settings)
    report = PollReport()

    def body(run: Run) -> None:
        library, client = run.library, run.client
        insight_for = insight_maker(settings, library)
        if client is not None and library.is_empty():
            restored = rebuild_from_channels(library, client, settings, all_watches(settings, library))
            if restored.messages:
                log.info("rebuilt the library from Slack: %s", restored.line())
        watches = all_watches(settings, library)
        sources = make_sources(settings, ncbi)
        findings = discover(
            library,
            ncbi,
            watches,
            sources=sources,
            today=day,
            overlap_days=settings.overlap_days,
            query_baseline_days=settings.query_baseline_days,
            refresh=settings.refresh_of,
            analyse=lambda paper, reasons: insight_for.current(paper, reasons).insight,
            now=moment,
        )
        report.problems = problem_lines(findings)
        report.other_requests = {s.label: s.http.stats.requests for s in sources if hasattr(s, "http")}
        if findings.failed and not findings.watches:
            raise PollFailed(findings.failure())
        # each watch PubMed answered has looked up to today; one it failed keeps its horizon
        horizons = {wf.watch.id: day.isoformat() for wf in findings.watches if wf.pubmed_answered}
        watermark = {"ran_at": stamp, "horizons": horizons}
        report.candidates = len({p for wf in findings.watches for p in wf.linked})
        report.new = len(findings.new_keys)
        report.stored, report.queued = _store(
            library,
            findings,
            settings=settings,
            insight_for=insight_for,
            run_id=report.run_id,
            now=stamp,
            today=day,
            watermark=watermark,
        )
        report.printed, report.delivery = _deliver(
            library, settings, client, watches, insight_for, out, run.stop_reason
        )

    return _recorded_run(
        settings,
        "poll",
        report,
        body,
        expected=(PubMedError, TransportError, PollFailed, LibraryError, DeliveryStopped, PollError),
        counts=lambda r: {"candidates": r.candidates, "new": r.new, "stored": r.stored, "queued": r.queued},
        setup=lambda library: library.sync_watches(settings.watches),
        stamp=stamp,
        eutils=ncbi,
        slack=slack,
        holder=holder,
        should_stop=should_stop,
        clock=clock,
    )


# ---------------------------------------------------------------- follow-ups on posted papers


@dataclass
class FollowupReport:
    """What one follow-up check did: how many posted papers it asked PubMed about, what was new, the cost."""

    run_id: int = 0
    status: str = "ok"
    error: str = ""
    checked: int = 0  # posted papers with a PMID
    hits: int = 0  # of which PubMed's follow-up filters matched
    new: list[str] = field(default_factory=list)  # one phrase per follow-up found now
    requests: int = 0
    printed: int = 0
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        found = f"{len(self.new)} new follow-up(s)" + (f" ({'; '.join(self.new[:5])})" if self.new else "")
        parts = [f"{self.checked} posted paper(s) checked", f"{self.hits} with a follow-up in PubMed", found]
        told = self.delivery
        if told.posted or told.updated or told.settled:
            parts.append(f"{told.posted} message(s) posted, {told.updated} post(s) updated")
        if told.settled:
            parts.append(f"{told.settled} already in Slack")
        if self.printed:
            parts.append(f"{self.printed} shown here (no SLACK_BOT_TOKEN, nothing marked delivered)")
        if told.still_due:
            parts.append(f"{told.still_due} still due")
        problems = "".join(f"; {problem}" for problem in [*self.problems, *told.problems])
        return redact.scrub(
            f"follow-ups {self.status}: " + ", ".join(parts) + f"; {self.requests} NCBI request(s)" + problems
        )


def _preprint_followups(
    settings: Settings, library: Library, posted: followup_check.Posted, eutils: Eutils, report: FollowupReport
) -> list[tuple[str, followup_check.Decision]]:
    """What Europe PMC and OpenAlex (those of them enabled) say of the posted papers PubMed does not index,
    as (how, decision): one failing, however, is one line in the check's report, and the rest of the check
    (PubMed's follow-ups included) goes on. A record read only in part is one line too."""
    asked = []
    enabled = settings.enabled_sources
    if "europepmc" in enabled and (pprs := followup_check.posted_without_pmid(posted, "ppr")):
        asked.append(("europepmc", "Europe PMC", "posted preprints", _europepmc_decision, pprs))
    if "openalex" in enabled and (dois := followup_check.posted_without_pmid(posted, "doi")):
        asked.append(("openalex", "OpenAlex", "posted papers without a PMID", _openalex_decision, dois))
    decisions = []
    for name, label, about, decide, wanted in asked:
        try:
            decision = decide(settings, library, eutils, wanted)
        except (SourceError, TransportError) as error:
            report.problems.append(f"{label} could not be asked about {about} ({error}); asked again next time")
            continue
        except LibraryError:
            raise
        except Exception as error:  # one source's surprise is its own part's failure, not the whole check's
            log.debug("%s's part of the follow-up check failed unexpectedly", label, exc_info=True)
            report.problems.append(f"{label}'s answer about {about} could not be read ({unexpected(error)})")
            continue
        report.problems += decision.odd
        decisions.append((name, decision))
    return decisions


def _europepmc_decision(
    settings: Settings, library: Library, eutils: Eutils, wanted: Mapping[str, str]
) -> followup_check.Decision:
    europepmc = make_source(settings, "europepmc", eutils)
    assert isinstance(europepmc, EuropePmc)
    return followup_check.decide_preprints(library, europepmc, wanted)


def _openalex_decision(
    settings: Settings, library: Library, eutils: Eutils, wanted: Mapping[str, str]
) -> followup_check.Decision:
    openalex = make_source(settings, "openalex", eutils)
    assert isinstance(openalex, OpenAlex)
    return followup_check.decide_openalex(library, openalex, wanted)


def check_followups_unless_held(settings: Settings, *, out: Callable[[str], None]) -> FollowupReport | LeaseHeld:
    """One follow-up check under the poller lease (``il2watch followups``), or who holds it."""
    return unless_held(settings, lambda holder: check_followups(settings, out=out, holder=holder))


def check_followups(
    settings: Settings,
    *,
    out: Callable[[str], None] = print,
    now: datetime | None = None,
    eutils: Eutils | None = None,
    slack: WebClient | None = None,
    holder: str = "",
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.time,
) -> FollowupReport:
    """Check every posted paper for what happened to it since (``followup_check``), owe each new follow-up
    to Slack and deliver the outbox. Every run ends recorded as ``ok`` or ``error`` (kind "followups")."""
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    ncbi = eutils or make_eutils(settings)
    report = FollowupReport()

    def body(run: Run) -> None:
        library, client = run.library, run.client
        insight_for = insight_maker(settings, library)
        if client is not None and library.is_empty():
            rebuild_from_channels(library, client, settings, all_watches(settings, library))
        posted = followup_check.posted_tokens(library)  # read once: every part of the check picks from it
        checked = followup_check.fetch(posted, ncbi)
        report.checked, report.hits = checked.posted, len(checked.papers)
        report.problems += [
            f"PubMed's record for PMID {pmid} cannot be read ({why}); it is checked again next time"
            for pmid, why in sorted(checked.unreadable.items())
        ]
        decision = followup_check.decide(library, checked)
        preprints = _preprint_followups(settings, library, posted, ncbi, report)
        # after a rebuild, the posted papers' records, read after deciding: they are not what was posted
        fresh = {paper.key for paper in decision.records}
        records = decision.records + [
            p for p in followup_check.fetch_missing(library, posted, ncbi) if p.key not in fresh
        ]
        current = {
            paper.key: insight_for.current(paper, [s.reason for s in library.reasons_for(paper.key)])
            for paper in records
        }
        with library.transaction():
            library.save_papers(records, {key: c.insight for key, c in current.items()}, now=stamp)
            for key, stored in current.items():
                library.save_insight(key, stored, now=stamp)
            owed = followup_check.record(library, decision, how="pubmed", now=stamp)
            for how, preprint_decision in preprints:
                owed += followup_check.record(library, preprint_decision, how=how, now=stamp)
        report.new = [
            f"{f.kind} of {describe_key(f.paper)}" + (f", notice {describe_key(f.notice)}" if f.notice else "")
            for f in owed
        ]
        watches = all_watches(settings, library)
        report.printed, report.delivery = _deliver(
            library, settings, client, watches, insight_for, out, run.stop_reason
        )

    return _recorded_run(
        settings,
        "followups",
        report,
        body,
        expected=(PubMedError, TransportError, LibraryError, DeliveryStopped, PollError),
        counts=lambda r: {"candidates": r.checked, "new": len(r.new), "queued": len(r.new)},
        stamp=stamp,
        eutils=ncbi,
        slack=slack,
        holder=holder,
        should_stop=should_stop,
        clock=clock,
    )
