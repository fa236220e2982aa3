"""The worker in-process, against the stand-ins: how often it polls, the lease it polls under, taking over
from a worker that died, a poll that loses its lease, and what ``status`` says once workers are gone.

``Worker`` runs here as ``il2watch run`` runs it (scheduler, heartbeat, lease) minus the signal handlers,
with a one-second schedule, so the tests wait seconds, not minutes; test_e2e_worker.py runs it as a process.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger

from il2watch.commands.status import format_status_text, status_facts
from il2watch.lease import Lease
from il2watch.library import INTERRUPTED_RUN, Library
from il2watch.service import PollError, poll_once
from il2watch.worker import Worker, poll_trigger
from tests.data import records as R
from tests.stand_ins.pubmed_world import record

CHANNEL = "C0PAPERS1"


def wait_for(condition, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def dead_holder() -> str:
    """A lease holder id for a process on this host that has exited (killed, crashed)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return f"{socket.gethostname()}:{process.pid}:0dead0"


def paper_posts(slack_server):
    return [m.metadata["event_payload"]["pmid"] for m in slack_server.posts_with_metadata("il2watch_paper", CHANNEL)]


def runs(settings):
    with Library(settings.db_path) as library:
        rows = library.db.execute("select id, status, started_at, holder, error from runs order by id").fetchall()
    return [dict(zip(("id", "status", "started_at", "holder", "error"), row)) for row in rows]


def status_text(settings, now=None):
    with Library(settings.db_path) as library:
        return format_status_text(status_facts(library, settings, now))


def arrive(world, pmid, title="An IL-2 mutein for lupus"):
    world.add(record(pmid, title=title, entry_date=date.today()))
    world.cite(pmid, R.REVIEW_PMID)


@pytest.fixture
def running():
    """Workers started by a test, stopped after it whatever happened."""
    started: list[Worker] = []

    def start(settings, **options):
        worker = Worker(settings, **options)
        started.append(worker)
        worker.start()
        return worker

    yield start
    for worker in started:
        worker.stop()


# ---------------------------------------------------------------- the schedule


def fire_gaps(trigger, count=300):
    previous = datetime(2024, 1, 1, tzinfo=UTC)
    gaps = []
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, previous)
        gaps.append((fire - previous).total_seconds())
        previous = fire
    return gaps


@pytest.mark.parametrize(
    "schedule, shortest, longest",
    [("90s", 90, 99), ("4s", 4, 4.4), ("1h", 3600, 3720), ("1s", 1, 1.1)],
)
def test_jitter_is_at_most_a_tenth_of_the_interval_and_never_more_than_the_setting(
    make_settings, schedule, shortest, longest
):
    gaps = fire_gaps(poll_trigger(make_settings(IL2WATCH_SCHEDULE=schedule, IL2WATCH_JITTER="120")))
    assert shortest <= min(gaps) and max(gaps) <= longest + 1e-6
    assert max(gaps) > (shortest + longest) / 2, "the polls are still spread out"


@pytest.mark.parametrize("schedule, most", [("*/5 * * * *", 30), ("0,1 * * * *", 6), ("0 * * * *", 120)])
def test_a_cron_schedule_is_late_by_at_most_a_tenth_of_its_shortest_gap(make_settings, schedule, most):
    settings = make_settings(IL2WATCH_SCHEDULE=schedule, IL2WATCH_JITTER="120")
    trigger = poll_trigger(settings, now=datetime(2024, 1, 1, tzinfo=UTC))
    exact = CronTrigger.from_crontab(schedule, timezone="UTC")
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    lateness = []
    for _ in range(200):
        fire = trigger.get_next_fire_time(moment, moment)
        lateness.append((fire - exact.get_next_fire_time(moment, moment)).total_seconds())
        moment = fire
    assert 0 <= min(lateness) and max(lateness) <= most
    assert max(lateness) > most / 2


def test_the_worker_polls_every_interval_whatever_the_jitter_setting(make_settings, slack_server, running):
    # IL2WATCH_JITTER's default (120 s) once went on top of every interval: a 1 s schedule polled every 1-121 s
    settings = make_settings(slack_server, IL2WATCH_SCHEDULE="1s", IL2WATCH_JITTER="120", IL2WATCH_LEASE_SECONDS="5")
    running(settings)
    assert wait_for(lambda: len([r for r in runs(settings) if r["status"] == "ok"]) >= 4, timeout=15)
    starts = [datetime.fromisoformat(r["started_at"]) for r in runs(settings)[:4]]
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(starts, starts[1:])]
    assert min(gaps) >= 0.9, gaps  # never sooner than the schedule; four polls in 15 s: never 120 s late
    assert set(paper_posts(slack_server)) == set(paper_posts(slack_server)[:3]) and len(paper_posts(slack_server)) == 3


# ---------------------------------------------------------------- taking over


def test_a_dead_holder_on_this_host_is_taken_over_at_once(make_settings, slack_server, running):
    settings = make_settings(slack_server, IL2WATCH_SCHEDULE="1h", IL2WATCH_LEASE_SECONDS="600")
    dead = dead_holder()
    with Library(settings.db_path) as library:
        assert Lease(library, dead, ttl=600).acquire()  # killed: its lease would last ten more minutes
        library.set_state("lease_holder", dead)
    started = time.monotonic()
    running(settings)
    assert wait_for(lambda: len(paper_posts(slack_server)) == 3, timeout=10)
    assert time.monotonic() - started < 8


def test_a_standby_worker_polls_as_soon_as_it_takes_over_when_a_poll_is_due(
    make_settings, slack_server, world, running
):
    settings = make_settings(slack_server, IL2WATCH_SCHEDULE="1h", IL2WATCH_LEASE_SECONDS="5")
    poll_once(settings, out=lambda _: None)  # the last poll, by the worker that has since stopped
    with Library(settings.db_path) as library:
        library.db.execute("update runs set finished_at = ?", [(datetime.now(UTC) - timedelta(hours=2)).isoformat()])
        library.db.conn.commit()
        # a worker on another machine still holds the lease for two more seconds, then stops renewing it
        assert Lease(library, "elsewhere:1:aaaaaa", ttl=2).acquire()
    arrive(world, "46000010")
    running(settings)
    # the standby's first scheduled poll finds the lease held and its schedule says the next is in an hour;
    # taking the lease over when it lapses, the overdue poll runs at once
    assert wait_for(lambda: "46000010" in paper_posts(slack_server), timeout=12), runs(settings)


def test_a_standby_worker_does_not_check_follow_ups_while_another_holds_the_lease(
    make_settings, slack_server, world, running
):
    settings = make_settings(
        slack_server, IL2WATCH_SCHEDULE="1h", IL2WATCH_FOLLOWUP_SCHEDULE="1s", IL2WATCH_BASELINE_POSTS="20"
    )
    poll_once(settings, out=lambda _: None)
    world.add(record("46000020", title="Retraction notice", pub_types=["Retraction of Publication"], abstract=[]))
    world.amend(R.LOW_DOSE_SLE_PMID, corrections=[("RetractionIn", "46000020")], pub_types=["Retracted Publication"])
    with Library(settings.db_path) as library:
        assert Lease(library, "elsewhere:1:aaaaaa", ttl=60).acquire()  # a worker on another machine
    standby = running(settings)
    fired: set[datetime] = set()

    def checks_were_due_three_times() -> bool:
        job = standby.scheduler.get_job("followups")
        fired.add(job.next_run_time)
        return len(fired) >= 3

    assert wait_for(checks_were_due_three_times, timeout=15), "the follow-up job never came round"
    with Library(settings.db_path) as library:
        assert library.db.execute("select count(*) from runs where kind = 'followups'").fetchone()[0] == 0
    assert slack_server.posts_with_metadata("il2watch_followup", CHANNEL) == []


# ---------------------------------------------------------------- losing the lease


def lab_with_papers(make_settings, slack_server, world, count=4, **extra):
    settings = make_settings(slack_server, IL2WATCH_BURST="0", **extra)
    poll_once(settings, out=lambda _: None)
    for n in range(count):
        arrive(world, str(46000100 + n), title=f"An IL-2 mutein, study {n}")
    return settings


class Clock:
    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


@pytest.mark.parametrize("how", ["taken over", "expired"])
def test_a_poll_stops_posting_once_its_lease_is_lost_and_says_why(make_settings, slack_server, world, how):
    settings = lab_with_papers(make_settings, slack_server, world)
    clock = Clock()
    with Library(settings.db_path) as library:
        assert Lease(library, "worker-a", ttl=30, clock=clock).acquire()
    before = len(paper_posts(slack_server))
    slack_server.inject("stall", method="chat.postMessage")  # the first new post is accepted, then held

    def meanwhile():
        slack_server.stalled.wait(10)
        clock.now += 31  # worker-a's heartbeat stops getting through…
        if how == "taken over":
            with Library(settings.db_path) as library:
                assert Lease(library, "worker-b", ttl=30, clock=clock).acquire()  # …and worker-b takes over
        slack_server.release_stalled()

    thread = threading.Thread(target=meanwhile)
    thread.start()
    with pytest.raises(PollError) as stopped:
        poll_once(settings, out=lambda _: None, holder="worker-a", clock=clock)
    thread.join()
    says = {
        "taken over": "stopped posting: worker worker-b took over the poller lease; the rest is left to it",
        "expired": "stopped posting: the poller lease expired because it could not be renewed",
    }[how]
    assert str(stopped.value).startswith(says)
    assert len(paper_posts(slack_server)) == before + 1, "the post in flight, and nothing after it"
    assert runs(settings)[-1]["status"] == "error" and runs(settings)[-1]["error"].startswith(says)
    report = poll_once(settings, out=lambda _: None)  # whoever polls next posts the rest, once
    assert report.delivery.posted == 3
    assert sorted(paper_posts(slack_server)[before:]) == [str(46000100 + n) for n in range(4)]


def test_a_worker_whose_renewals_fail_past_expiry_stands_by(make_settings, caplog):
    settings = make_settings(IL2WATCH_LEASE_SECONDS="30")
    clock = Clock()
    worker = Worker(settings, holder="worker-a", clock=clock)
    with caplog.at_level(logging.INFO, logger="il2watch.worker"):
        worker.heartbeat()
    assert "holding the poller lease as worker-a" in caplog.text
    worker.settings = dataclasses.replace(settings, db_path=f"file:{settings.db_path}?mode=ro")  # renewals fail
    worker.heartbeat()
    clock.now += 31
    worker.heartbeat()
    assert "the poller lease expired while it could not be renewed; standing by" in caplog.text
    assert worker.poll_now().startswith("Another il2watch worker holds the lease")


# ---------------------------------------------------------------- what status says


def test_status_names_the_worker_only_while_it_runs(make_settings, slack_server):
    settings = make_settings(slack_server, IL2WATCH_SCHEDULE="1h", IL2WATCH_LEASE_SECONDS="5")
    worker = Worker(settings)
    worker.start()
    try:
        assert wait_for(lambda: len(paper_posts(slack_server)) == 3 and runs(settings)[-1]["status"] == "ok")
        assert wait_for(lambda: "Next poll: " in status_text(settings) and "(in 60 min)" in status_text(settings))
        assert f"Worker: {worker.holder}" in status_text(settings)
    finally:
        worker.stop()
    text = status_text(settings)
    assert "Next poll: not scheduled: no worker is running (schedule: 1h)" in text
    assert f"Worker: none running (the last was {worker.holder})" in text


def test_status_after_a_worker_was_killed_says_none_is_running(make_settings):
    settings = make_settings(IL2WATCH_SCHEDULE="1h")
    dead = dead_holder()
    with Library(settings.db_path) as library:
        assert Lease(library, dead, ttl=600).acquire()  # killed: its lease still runs for ten minutes
        library.set_state("lease_holder", dead)
        library.set_state("next_poll_at", (datetime.now(UTC) + timedelta(seconds=6)).isoformat())
    text = status_text(settings)
    assert "Next poll: not scheduled: no worker is running" in text and "in 6 s" not in text
    assert f"Worker: none running (the last was {dead})" in text


def test_a_killed_poll_is_shown_interrupted_counted_and_alerted(make_settings, slack_server):
    settings = make_settings(slack_server, IL2WATCH_ALERT_AFTER="2", IL2WATCH_SCHEDULE="1h")
    poll_once(settings, out=lambda _: None)
    with Library(settings.db_path) as library:
        for _ in range(2):  # two polls killed (or out of disk) before they could record how they ended
            dead = dead_holder()
            assert Lease(library, dead, ttl=600).acquire()
            library.start_run("poll", holder=dead)
        facts = status_facts(library, settings)
    assert facts["last_poll"]["status"] == "interrupted" and facts["consecutive_failures"] == 2
    assert "Last poll: " in format_status_text(facts) and ": interrupted" in format_status_text(facts)
    assert "Last error: " in format_status_text(facts) and INTERRUPTED_RUN in format_status_text(facts)
    worker = Worker(settings)
    worker.start()  # takes over from the dead holder at once, records both runs as interrupted, alerts
    try:
        assert wait_for(lambda: slack_server.posts_with_metadata("il2watch_alert"), timeout=10)
    finally:
        worker.stop()
    [alert] = slack_server.posts_with_metadata("il2watch_alert")
    assert "the last 2 polls failed" in alert.text and "interrupted: the process stopped" in alert.text
    assert [r["status"] for r in runs(settings)][1:3] == ["interrupted", "interrupted"]
