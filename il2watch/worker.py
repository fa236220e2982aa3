"""``il2watch run``: the long-running worker — scheduled polls, digests, the lease, Socket Mode, signals.

One poll at a time (APScheduler with max_instances=1 and coalesced misfires). A heartbeat keeps the
lease; a second worker on the same library waits, answering commands, and takes over when the lease
lapses. SIGTERM or SIGINT stops new work, lets the post in flight finish or be abandoned safely (the
outbox marks it "sending", so the next run checks the channel first), and exits within 10 seconds.
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
from il2watch.lease import Lease, make_holder_id
from il2watch.library import Library, LibraryError
from il2watch.service import PollError, bundle_digests, deliver_due, poll_once

log = logging.getLogger("il2watch.worker")

STOP_GRACE = 5.0  # seconds a running poll gets after SIGTERM; Socket Mode takes up to 3 more to close


def poll_trigger(settings: Settings) -> IntervalTrigger | CronTrigger:
    seconds = parse_interval(settings.schedule)
    jitter = int(settings.jitter) or None
    if seconds is not None:
        return IntervalTrigger(seconds=seconds, jitter=jitter, timezone=settings.timezone)
    trigger = CronTrigger.from_crontab(settings.schedule, timezone=settings.timezone)
    trigger.jitter = jitter
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


class Worker:
    def __init__(self, settings: Settings, *, holder: str | None = None, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.holder = holder or make_holder_id()
        self.stop_event = threading.Event()
        self._clock = clock
        self._busy = threading.Lock()  # held while a poll or digest runs
        self._holds_lease = False
        self.scheduler = BackgroundScheduler(
            timezone=settings.timezone, job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 600}
        )
        self.socket_handler: Any = None

    # ------------------------------------------------------------ the lease

    def _lease(self, library: Library) -> Lease:
        return Lease(library, self.holder, ttl=self.settings.lease_seconds, clock=self._clock)

    def heartbeat(self) -> None:
        """Renew our lease, or take it over when its holder has stopped or died."""
        if self.stop_event.is_set():
            return
        try:
            with Library(self.settings.db_path) as library:
                lease = self._lease(library)
                had = self._holds_lease
                self._holds_lease = lease.renew() if had else lease.acquire()
                if self._holds_lease and not had:
                    log.info("holding the poller lease as %s", self.holder)
                    library.set_state("lease_holder", self.holder)
                elif had and not self._holds_lease:
                    log.warning("lost the poller lease to another worker; standing by")
        except LibraryError as error:
            log.error("heartbeat: %s", error)

    # ------------------------------------------------------------ jobs

    def poll_job(self) -> None:
        if self.stop_event.is_set():
            return
        self.heartbeat()
        if not self._holds_lease:
            with Library(self.settings.db_path) as library:
                info = self._lease(library).info()
            log.info("another worker (%s) holds the lease; not polling", info.holder if info else "?")
            return
        with self._busy:
            try:
                report = poll_once(self.settings, out=log.info, holder=self.holder, should_stop=self.stop_event.is_set)
                log.info(report.line())
            except PollError as error:
                log.error("poll failed: %s", error)
            self._after_poll()

    def poll_now(self) -> str:
        """What /il2 poll runs inside the worker: a poll right away, unless one is running or we stand by."""
        if self.stop_event.is_set():
            return "il2watch is shutting down; the next worker polls on its schedule."
        if not self._holds_lease:
            return "Another il2watch worker holds the lease and polls; ask it (or wait for its schedule)."
        if not self._busy.acquire(blocking=False):
            return "A poll is running right now; its papers will be posted as soon as it finishes."
        try:
            report = poll_once(self.settings, out=log.info, holder=self.holder, should_stop=self.stop_event.is_set)
            return report.line()
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

    def _after_poll(self) -> None:
        """One alert after N failed polls in a row, one note on recovery; never a storm."""
        from il2watch.service import raise_or_clear_alert

        try:
            raise_or_clear_alert(self.settings)
        except (PollError, LibraryError) as error:
            log.error("could not send the alert: %s", error)
        job = self.scheduler.get_job("poll")
        if job and job.next_run_time:
            with Library(self.settings.db_path) as library:
                library.set_state("next_poll_at", job.next_run_time.isoformat(timespec="seconds"))

    # ------------------------------------------------------------ running

    def start(self) -> None:
        with Library(self.settings.db_path) as library:
            first = first_poll_time(self.settings, library, datetime.now(UTC))
            library.set_state("next_poll_at", first.isoformat(timespec="seconds"))
        self.scheduler.add_job(self.poll_job, poll_trigger(self.settings), id="poll", next_run_time=first)
        self.scheduler.add_job(
            self.heartbeat,
            IntervalTrigger(seconds=max(1.0, self.settings.lease_seconds / 3)),
            id="heartbeat",
            next_run_time=datetime.now(UTC),
        )
        if self.settings.delivery_mode == "digest":
            self.scheduler.add_job(self.digest_job, digest_trigger(self.settings), id="digest")
        self.scheduler.start()
        log.info(
            "worker %s started: polls %s, first at %s",
            self.holder,
            self.settings.schedule,
            first.isoformat(timespec="seconds"),
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
                self._lease(library).release()
        except LibraryError as error:
            log.error("releasing the lease: %s", error)
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
