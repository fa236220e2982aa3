"""``il2watch run``: the long-running worker — scheduled polls, digests, the lease, Socket Mode, signals.

One poll at a time (APScheduler with max_instances=1 and coalesced misfires), each delayed by a random
jitter of at most 10% of the interval and never more than ``IL2WATCH_JITTER``. A heartbeat keeps the
lease; a second worker on the same library waits, answering commands, and takes over when the lease
lapses (at once when its holder died on this host), polling as soon as the schedule says one is due. A
poll stops posting as soon as its lease is lost. SIGTERM or SIGINT stops new work, lets the post in
flight finish or be abandoned safely (the outbox marks it "sending", so the next run checks the channel
first), and exits within 10 seconds.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from il2watch.config import Settings, parse_interval
from il2watch.lease import Lease, lease_problem, make_holder_id
from il2watch.library import Library, LibraryError, utcnow
from il2watch.service import PollError, PollReport, bundle_digests, close_interrupted_runs, deliver_due, poll_once

log = logging.getLogger("il2watch.worker")

STOP_GRACE = 5.0  # seconds a running poll gets after SIGTERM; Socket Mode takes up to 3 more to close
JITTER_SHARE = 0.1  # the random delay is at most this share of the time between polls
CRON_GAPS = 100  # how many of a cron schedule's next fires are looked at for its shortest gap
FOLLOWUP_DELAY = 60.0  # seconds after start before a worker's first follow-up check: its first poll goes first


def shortest_cron_gap(trigger: CronTrigger, now: datetime) -> float:
    """Seconds between the closest two of the cron schedule's next fires."""
    fires: list[datetime] = []
    previous: datetime | None = None
    moment = now
    while len(fires) < CRON_GAPS:
        fire = trigger.get_next_fire_time(previous, moment)
        if fire is None:
            break
        fires.append(fire)
        previous = moment = fire
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(fires, fires[1:])]
    return min(gaps) if gaps else 0.0


def poll_trigger(settings: Settings, now: datetime | None = None) -> IntervalTrigger | CronTrigger:
    """The poll schedule; its jitter is at most 10% of the interval (of a cron schedule's shortest gap
    between fires) and never more than IL2WATCH_JITTER, so `90s` polls every 90 to 99 seconds."""
    return schedule_trigger(settings.schedule, settings, now)


def schedule_trigger(schedule: str, settings: Settings, now: datetime | None = None) -> IntervalTrigger | CronTrigger:
    """A job's trigger for an interval or a cron expression, jittered as ``poll_trigger`` says."""
    seconds = parse_interval(schedule)
    if seconds is not None:
        jitter = min(settings.jitter, JITTER_SHARE * seconds)
        return IntervalTrigger(seconds=seconds, jitter=jitter or None, timezone=settings.timezone)
    trigger = CronTrigger.from_crontab(schedule, timezone=settings.timezone)
    gap = shortest_cron_gap(trigger, now or datetime.now(UTC))
    trigger.jitter = min(settings.jitter, JITTER_SHARE * gap) or None
    return trigger


def digest_trigger(settings: Settings) -> CronTrigger:
    parts = settings.digest.split()
    hour, minute = parts[-1].split(":")
    day_of_week = parts[1] if parts[0] == "weekly" else None
    return CronTrigger(day_of_week=day_of_week, hour=int(hour), minute=int(minute), timezone=settings.timezone)


def first_poll_time(settings: Settings, library: Library, now: datetime) -> datetime:
    """Right away, unless a poll succeeded less than one interval ago: then when the next one is due."""
    seconds = parse_interval(settings.schedule)
    last = library.last_run("poll", status="ok")
    if seconds is None or not last or not last.get("finished_at"):
        return now + timedelta(seconds=1)
    due = datetime.fromisoformat(last["finished_at"]) + timedelta(seconds=seconds)
    return max(due, now + timedelta(seconds=1))


def first_followup_time(settings: Settings, library: Library, now: datetime) -> datetime:
    """The first scheduled follow-up check: one interval after the last one that succeeded, or soon when
    none has (a minute from now, or one interval when that is shorter: the first poll goes first)."""
    seconds = parse_interval(settings.followup_schedule) or FOLLOWUP_DELAY
    last = library.last_run("followups", status="ok")
    soon = now + timedelta(seconds=min(FOLLOWUP_DELAY, seconds))
    if not last or not last.get("finished_at"):
        return soon
    return max(datetime.fromisoformat(last["finished_at"]) + timedelta(seconds=seconds), soon)


class Worker:
    def __init__(self, settings: Settings, *, holder: str | None = None, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.holder = holder or make_holder_id()
        self.stop_event = threading.Event()
        self._clock = clock
        self._busy = threading.Lock()  # held while a poll or digest runs
        self._holds_lease = False
        self._lease_until = 0.0  # by our clock, when the lease we last renewed expires
        self._beat = threading.Lock()  # the heartbeat job and the poll job both beat
        self._poll_job_running = threading.Event()  # the scheduled poll has started (it may wait on a beat)
        self.scheduler = BackgroundScheduler(
            timezone=settings.timezone, job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 600}
        )
        self.socket_handler: Any = None

    # ------------------------------------------------------------ the lease

    def _lease(self, library: Library) -> Lease:
        return Lease(library, self.holder, ttl=self.settings.lease_seconds, clock=self._clock)

    def heartbeat(self, *, polling: bool = False) -> None:
        """Renew our lease, or take it over when its holder has stopped or died; then poll when one is due
        (``polling``: the poll job asks, and polls now)."""
        if self.stop_event.is_set():
            return
        with self._beat:
            taken = self._renew_or_take(polling)
        if taken and not polling:
            self._after_takeover()

    def _renew_or_take(self, polling: bool) -> bool:
        """True when this beat took the lease over."""
        had = self._holds_lease
        try:
            with Library(self.settings.db_path) as library:
                lease = self._lease(library)
                beat = self._clock()
                self._holds_lease = lease.renew() if had else lease.acquire()
                if self._holds_lease:
                    self._lease_until = beat + self.settings.lease_seconds
                if self._holds_lease and not had:
                    log.info("holding the poller lease as %s", self.holder)
                    library.set_state("lease_holder", self.holder)
                    if not polling:
                        self._schedule_first_poll(library)
                    return True
                if had and not self._holds_lease:
                    log.warning(
                        "lost the poller lease to another worker (%s); standing by", lease_problem(library, self.holder)
                    )
        except LibraryError as error:
            log.error("heartbeat: %s", error)
            if had and self._clock() >= self._lease_until:
                self._holds_lease = False
                log.warning("the poller lease expired while it could not be renewed; standing by")
        return False

    def _after_takeover(self) -> None:
        """Record the polls a dead predecessor left running as interrupted, and alert if they were the last
        few (a worker killed in every poll never finishes one to raise the alert after). A poll running
        now does this itself."""
        if not self._busy.acquire(blocking=False):
            return
        try:
            with Library(self.settings.db_path) as library:
                closed = close_interrupted_runs(library, self.holder, utcnow(), self._clock)
            if closed:
                log.warning("%d poll(s) left running by a stopped process recorded as interrupted", closed)
                self._after_poll()
        except LibraryError as error:
            log.error("recording interrupted polls: %s", error)
        finally:
            self._busy.release()

    def _schedule_first_poll(self, library: Library) -> None:
        """On taking the lease: the next poll when the schedule says one is due (at once if overdue), unless
        the poll job is running now or comes sooner anyway."""
        first = first_poll_time(self.settings, library, datetime.now(UTC))
        job = self.scheduler.get_job("poll")
        if job is None or self._poll_job_running.is_set():
            return
        if job.next_run_time is None or job.next_run_time > first + timedelta(seconds=1):
            self.scheduler.modify_job("poll", next_run_time=first)
        else:
            first = job.next_run_time
        library.set_state("next_poll_at", first.isoformat(timespec="seconds"))

    # ------------------------------------------------------------ jobs

    def poll_job(self) -> None:
        if self.stop_event.is_set():
            return
        self._poll_job_running.set()
        try:
            self._poll_job()
        finally:
            self._poll_job_running.clear()

    def _poll_job(self) -> None:
        self.heartbeat(polling=True)
        if not self._holds_lease:
            with Library(self.settings.db_path) as library:
                info = self._lease(library).info()
            log.info("another worker (%s) holds the lease; not polling", info.holder if info else "?")
            return
        with self._busy:
            try:
                log.info(self._poll().line())
            except PollError as error:
                log.error("poll failed: %s", error)
            self._after_poll()

    def _poll(self) -> PollReport:
        return poll_once(
            self.settings, out=log.info, holder=self.holder, should_stop=self.stop_event.is_set, clock=self._clock
        )

    def poll_now(self) -> str:
        """What /il2 poll runs inside the worker: a poll right away, unless one is running or we stand by."""
        if self.stop_event.is_set():
            return "il2watch is shutting down; the next worker polls on its schedule."
        if not self._holds_lease:
            return "Another il2watch worker holds the lease and polls; ask it (or wait for its schedule)."
        if not self._busy.acquire(blocking=False):
            return "A poll is running right now; its papers will be posted as soon as it finishes."
        try:
            return self._poll().line()
        except PollError as error:
            return f"The poll failed: {error}"
        finally:
            self._busy.release()

    def digest_job(self) -> None:
        if self.stop_event.is_set() or not self._holds_lease:
            return
        with self._busy:
            try:
                with Library(self.settings.db_path) as library:
                    bundled = bundle_digests(library, datetime.now(UTC))
                if bundled:
                    deliver_due(self.settings, should_stop=self.stop_event.is_set)
            except (PollError, LibraryError) as error:
                log.error("digest failed: %s", error)

    def followup_job(self) -> None:
        """The scheduled follow-up check, under the lease, never beside a poll."""
        if self.stop_event.is_set() or not self._holds_lease:
            return
        from il2watch.service import check_followups

        with self._busy:
            try:
                log.info(
                    check_followups(
                        self.settings, out=log.info, holder=self.holder, should_stop=self.stop_event.is_set
                    ).line()
                )
            except PollError as error:
                log.error("follow-up check failed: %s", error)

    def _after_poll(self) -> None:
        """One alert after N failed polls in a row, one note on recovery; never a storm."""
        from il2watch.service import raise_or_clear_alert

        try:
            raise_or_clear_alert(self.settings)
        except (PollError, LibraryError) as error:
            log.error("could not send the alert: %s", error)
        job = self.scheduler.get_job("poll")
        if job and job.next_run_time and self._holds_lease:
            try:
                with Library(self.settings.db_path) as library:
                    library.set_state("next_poll_at", job.next_run_time.isoformat(timespec="seconds"))
            except LibraryError as error:
                log.error("recording the next poll: %s", error)

    # ------------------------------------------------------------ running

    def start(self) -> None:
        with Library(self.settings.db_path) as library:
            first = first_poll_time(self.settings, library, datetime.now(UTC))
        self.scheduler.add_job(self.poll_job, poll_trigger(self.settings), id="poll", next_run_time=first)
        self.scheduler.add_job(
            self.heartbeat,
            IntervalTrigger(seconds=max(1.0, self.settings.lease_seconds / 3)),
            id="heartbeat",
            next_run_time=datetime.now(UTC),
        )
        if self.settings.delivery_mode == "digest":
            self.scheduler.add_job(self.digest_job, digest_trigger(self.settings), id="digest")
        if self.settings.followup_schedule != "off":
            first_check: dict[str, Any] = {}  # a cron schedule fires on its own
            if parse_interval(self.settings.followup_schedule) is not None:
                with Library(self.settings.db_path) as library:
                    first_check["next_run_time"] = first_followup_time(self.settings, library, datetime.now(UTC))
            trigger = schedule_trigger(self.settings.followup_schedule, self.settings)
            self.scheduler.add_job(self.followup_job, trigger, id="followups", **first_check)
        self.scheduler.start()
        log.info(
            "worker %s started: polls %s, first at %s; follow-up checks %s",
            self.holder,
            self.settings.schedule,
            first.isoformat(timespec="seconds"),
            self.settings.followup_schedule,
        )
        if self.settings.slack_app_token:
            from il2watch.slack_app import build_app, start_socket_mode

            self.socket_handler = start_socket_mode(build_app(self.settings, poll=self.poll_now), self.settings)
            log.info("answering Slack over Socket Mode")
        elif self.settings.slack_bot_token:
            log.info("SLACK_APP_TOKEN is not set: polling and posting, but not answering commands here")

    def stop(self) -> None:
        """Stop taking work, give a running poll a few seconds, give up the lease, close connections."""
        self.stop_event.set()
        self.scheduler.shutdown(wait=False)
        finished = self._busy.acquire(timeout=STOP_GRACE)
        if self.socket_handler is not None:
            try:
                self.socket_handler.close()
            except Exception as error:  # closing a socket must not keep the worker from exiting
                log.warning("closing Socket Mode: %s", error)
        try:
            with Library(self.settings.db_path) as library:
                if self._holds_lease:
                    library.set_state("next_poll_at", "")  # nobody schedules it any more
                self._lease(library).release()
        except LibraryError as error:
            log.error("releasing the lease: %s", error)
        self._holds_lease = False
        if finished:
            self._busy.release()
        else:
            log.warning(
                "a poll was still running after %.0fs; abandoning it (its post, if any, is checked "
                "against the channel next time)",
                STOP_GRACE,
            )

    def run_forever(self) -> bool:
        """Run until SIGTERM/SIGINT; True when every job had finished at exit."""

        def on_signal(signum: int, _frame: Any) -> None:
            log.info("received %s; stopping", signal.Signals(signum).name)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        while not self.stop_event.wait(0.5):
            pass
        self.stop()
        return not self._busy.locked()
