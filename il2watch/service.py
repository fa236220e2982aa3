"""``poll_once()``: discover, store, deliver — the one function the CLI, the scheduler and the tests call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache

from slack_sdk import WebClient

from il2watch import intel, redact
from il2watch.config import Settings
from il2watch.deliver import Deliverer, DeliveryReport, DeliveryStopped, Renderer, print_outbox
from il2watch.discovery import Findings, discover
from il2watch.eutils import Eutils, EutilsError
from il2watch.library import Library, LibraryError
from il2watch.model import Insight, Paper, Reason, Watch
from il2watch.planning import Policy, new_key, plan
from il2watch.pubmed import PubMedError
from il2watch.rebuild import rebuild_from_channels
from il2watch.slack_client import make_client

log = logging.getLogger("il2watch.service")


class PollError(Exception):
    """A poll failed; the message is one line saying what and, where possible, what to do (no secret in it)."""

    def __init__(self, message: str):
        super().__init__(redact.scrub(message))


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

    def line(self) -> str:
        parts = [f"{self.new} new paper(s)", f"{self.stored} stored", f"{self.queued} queued"]
        if self.delivery.posted or self.delivery.settled:
            parts.append(f"{self.delivery.posted} posted")
        if self.delivery.settled:
            parts.append(f"{self.delivery.settled} already in Slack")
        if self.printed:
            parts.append(f"{self.printed} shown here (no SLACK_BOT_TOKEN, nothing marked delivered)")
        if self.delivery.still_due:
            parts.append(f"{self.delivery.still_due} still due")
        problems = f" ({'; '.join(self.delivery.problems)})" if self.delivery.problems else ""
        line = f"poll {self.status}: " + ", ".join(parts) + f"; {self.requests} NCBI request(s)" + problems
        return redact.scrub(line)


@lru_cache(maxsize=8)
def _lexicon(paths: tuple) -> intel.Lexicon:
    """The built-in lexicon with the user's files over it; files that do not exist are skipped."""
    try:
        return intel.load_lexicon([p for p in paths if p.is_file()])
    except intel.LexiconError as error:
        raise PollError(f"lexicon: {error}") from None


def insight_maker(
    settings: Settings, library: Library, *, summariser: bool = True
) -> Callable[[Paper, list[Reason]], Insight]:
    """What il2watch says about a paper, from its evidence and the channel's feedback.

    Slash-command replies pass ``summariser=False``: they are built before Slack's 3-second ack, so the
    optional language-model summariser is left to posts.
    """
    lexicon = _lexicon(tuple(settings.lexicon_paths))
    model = (
        intel.make_summariser(
            base_url=settings.summariser_url, model=settings.summariser_model, api_key=settings.summariser_key
        )
        if summariser
        else None
    )

    def insight_for(paper: Paper, reasons: list[Reason]) -> Insight:
        return intel.analyse(paper, reasons, lexicon=lexicon, feedback=library.feedback(paper.pmid), summariser=model)

    return insight_for


def all_watches(settings: Settings, library: Library) -> list[Watch]:
    """Configured watches, then the ones added from Slack (a configured id wins)."""
    configured = list(settings.watches)
    ids = {w.id for w in configured}
    return configured + [w for w in library.slack_watches() if w.id not in ids]


def make_eutils(settings: Settings) -> Eutils:
    return Eutils(
        settings.eutils_url,
        tool=settings.ncbi_tool,
        email=settings.ncbi_email,
        api_key=settings.ncbi_api_key,
        timeout=settings.ncbi_timeout,
        attempts=settings.ncbi_attempts,
        backoff=settings.ncbi_backoff,
    )


def _store(
    library: Library,
    findings: Findings,
    *,
    settings: Settings,
    insight_for,
    run_id: int,
    now: str,
    today: date,
    watermark: dict,
) -> tuple[int, int]:
    """Write one poll's findings and its outbox rows in a single transaction: all of it, or none."""
    new_pmids = sorted(findings.new_pmids)
    stored = {p.pmid: p for p in library.papers([p for p in new_pmids if p not in findings.papers])}
    papers: dict[str, Paper] = {**stored, **findings.papers}
    insights: dict[str, Insight] = dict(findings.insights)
    for pmid in new_pmids:
        if pmid not in papers or pmid in insights:
            continue
        reasons = [s.reason for s in library.reasons_for(pmid)]
        for wf in findings.watches:
            reasons += [r for r in wf.new.get(pmid, []) if r not in reasons]
        insights[pmid] = insight_for(papers[pmid], reasons)
    policy = Policy(
        default_channel=settings.channel,
        mode=settings.delivery_mode,
        burst=settings.burst,
        baseline_posts=settings.baseline_posts,
        relevance_threshold=settings.relevance_threshold,
        overlap_days=settings.overlap_days,
    )
    deliveries = plan(
        findings, papers=papers, insights=insights, claimed=library.claimed, policy=policy, watermark=watermark
    )
    with library.transaction():
        library.save_papers(findings.papers.values(), insights, now=now)
        for pmid in stored:
            if pmid in insights:
                library.update_insight(pmid, insights[pmid])
        library.save_reasons(
            [(pmid, reason) for wf in findings.watches for pmid, reasons in wf.linked.items() for reason in reasons],
            now=now,
            run_id=run_id,
        )
        for wf in findings.watches:
            # An empty first answer (an outage, or a paper nobody links yet) is no baseline: the next
            # poll is still the watch's first, so an outage cannot turn the back catalogue into news.
            baselined = (wf.first_poll and bool(wf.linked)) or wf.state.restored
            library.set_watch_progress(
                wf.watch, horizon=today.isoformat(), baseline_at=now if baselined else None, restored=False
            )
        for delivery in deliveries:
            library.enqueue(
                key=delivery.key,
                channel=delivery.channel,
                kind=delivery.kind,
                pmids=delivery.pmids,
                payload=delivery.payload,
                state=delivery.state,
                run_id=run_id,
                now=now,
            )
    return len(findings.papers), sum(len(d.pmids) for d in deliveries)


def _deliver(
    library: Library,
    settings: Settings,
    client: WebClient | None,
    watches: list[Watch],
    insight_for,
    out: Callable[[str], None],
    should_stop: Callable[[], bool],
) -> tuple[int, DeliveryReport]:
    """Post what is due, or print it when there is no Slack token (then nothing is marked delivered)."""
    renderer = Renderer(library, {w.id: w for w in watches}, insight_for, thread_abstract=settings.thread_abstract)
    if client is None:
        return print_outbox(library, renderer, out), DeliveryReport()
    deliverer = Deliverer(
        library,
        client,
        renderer,
        default_channel=settings.channel,
        post_interval=settings.post_interval,
        backoff=settings.slack_backoff,
        should_stop=should_stop,
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
    try:
        with Library(settings.db_path) as library:
            watches = all_watches(settings, library)
            return _deliver(library, settings, client, watches, insight_maker(settings, library), out, should_stop)[1]
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
            pmids = [p for row in rows for p in row.pmids]
            relevance = library.relevance_of(pmids)
            pmids.sort(key=lambda p: -relevance.get(p, 0))
            key = new_key()
            watermark = rows[-1].payload.get("watermark")
            library.enqueue(
                key=key,
                channel=channel,
                kind="digest",
                pmids=(),
                payload={
                    "title": f"Digest: {len(pmids)} new paper{'s' if len(pmids) != 1 else ''}",
                    "watermark": watermark,
                },
                now=now.isoformat(timespec="seconds"),
            )
            library.update_outbox(key, pmids=pmids)
            library.move_claims(pmids, channel, key)
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
                key=new_key(), channel=channel, kind="note", pmids=(), payload={"text": text, "event_type": event}
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
) -> DeliveryReport:
    """Post up to ``limit`` more of a watch's papers (newest first) that its channel has not had."""
    client = slack if slack is not None else (make_client(settings) if settings.slack_bot_token else None)
    with Library(settings.db_path) as library:
        watches = {w.id: w for w in all_watches(settings, library)}
        if watch_id not in watches:
            raise PollError(f"no watch {watch_id!r}; watches: {', '.join(sorted(watches))}")
        watch = watches[watch_id]
        channel = watch.channel or settings.channel
        candidates = library.linked_newest_first(watch_id)
        taken = library.claimed(channel, candidates)
        chosen = [p for p in candidates if p not in taken][:limit]
        with library.transaction():
            for pmid in chosen:
                library.enqueue(
                    key=new_key(), channel=channel, kind="paper", pmids=(pmid,), payload={"backfill": watch_id}
                )
        progress(0, len(chosen))
        insight_for = insight_maker(settings, library)
        renderer = Renderer(library, watches, insight_for, thread_abstract=settings.thread_abstract)
        if client is None:
            shown = print_outbox(library, renderer, out)
            progress(shown, len(chosen))
            return DeliveryReport(still_due=shown)
        deliverer = Deliverer(
            library,
            client,
            renderer,
            default_channel=settings.channel,
            post_interval=settings.post_interval,
            backoff=settings.slack_backoff,
            on_posted=lambda done: progress(done, len(chosen)),
        )
        try:
            return deliverer.deliver()
        except DeliveryStopped as error:
            raise PollError(str(error)) from None


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
) -> PollReport:
    """One cycle: find what is new, store it with its outbox rows, deliver what is due."""
    moment = now or datetime.now(UTC)
    today = today or moment.date()
    stamp = moment.isoformat(timespec="seconds")
    eutils = eutils or make_eutils(settings)
    report = PollReport()
    try:
        library = Library(settings.db_path)
    except LibraryError as error:
        raise PollError(str(error)) from None
    try:
        client = slack if slack is not None else (make_client(settings) if settings.slack_bot_token else None)
        with library.transaction():
            library.sync_watches(settings.watches)
        fresh_library = library.is_empty()
        report.run_id = library.start_run("poll", holder=holder, now=stamp)
        insight_for = insight_maker(settings, library)
        try:
            if client is not None and fresh_library:
                restored = rebuild_from_channels(library, client, settings, all_watches(settings, library))
                if restored.messages:
                    log.info("rebuilt the library from Slack: %s", restored.line())
            watches = all_watches(settings, library)
            watermark = {"ran_at": stamp, "horizons": {w.id: today.isoformat() for w in watches}}
            findings = discover(
                library,
                eutils,
                watches,
                today=today,
                similar_max_rank=settings.similar_max_rank,
                similar_min_score=settings.similar_min_score,
                overlap_days=settings.overlap_days,
                query_baseline_days=settings.query_baseline_days,
                analyse=insight_for,
            )
            report.candidates = len({p for wf in findings.watches for p in wf.linked})
            report.new = len(findings.new_pmids)
            report.stored, report.queued = _store(
                library,
                findings,
                settings=settings,
                insight_for=insight_for,
                run_id=report.run_id,
                now=stamp,
                today=today,
                watermark=watermark,
            )
            report.printed, report.delivery = _deliver(
                library, settings, client, watches, insight_for, out, should_stop
            )
        except (PubMedError, EutilsError, LibraryError, DeliveryStopped) as error:
            report.status, report.error = "error", str(error)
        report.requests = eutils.stats.requests
        library.finish_run(
            report.run_id,
            status=report.status,
            error=report.error,
            requests=report.requests,
            candidates=report.candidates,
            new=report.new,
            stored=report.stored,
            queued=report.queued,
            posted=report.delivery.posted,
        )
        if report.status == "error":
            raise PollError(report.error)
        return report
    except LibraryError as error:
        raise PollError(str(error)) from None
    finally:
        library.close()
