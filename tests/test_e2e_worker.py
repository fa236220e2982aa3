"""`il2watch run` as a real subprocess against the stand-ins: schedule, lease, takeover, SIGTERM."""

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from tests.data import records as R
from tests.stand_ins.pubmed_world import record
from tests.support import settings_env, subprocess_env

REPO = Path(__file__).resolve().parent.parent


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_worker_outlives_its_test():
    """A failed assertion must not leave an il2watch worker running after the test."""
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def start_worker(env, log_path):
    log = open(log_path, "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "il2watch", "run"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    STARTED.append(process)
    return process


def wait_for(condition, timeout=20.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def finished_polls(folder):
    """How many polls the worker has finished, as its library records them."""
    with contextlib.closing(sqlite3.connect(f"file:{folder / 'library.db'}?mode=ro", uri=True)) as conn:
        return conn.execute("select count(*) from runs where kind = 'poll' and status = 'ok'").fetchone()[0]


def paper_counts(slack_server):
    return Counter(m.metadata["event_payload"]["pmid"] for m in slack_server.posts_with_metadata("il2watch_paper"))


def stop(process, sig=signal.SIGTERM):
    if process.poll() is None:
        process.send_signal(sig)
    return process.wait(timeout=15)


@pytest.fixture
def worker_env(tmp_path, ncbi_server, slack_server):
    return subprocess_env(
        PYTHONPATH=str(REPO),
        **settings_env(
            tmp_path,
            ncbi_server,
            slack_server,
            IL2WATCH_SCHEDULE="2s",
            IL2WATCH_LEASE_SECONDS="5",
            IL2WATCH_LOG_LEVEL="INFO",
        ),
    )


def test_the_worker_polls_on_schedule_and_posts_new_papers_once(worker_env, slack_server, world, tmp_path):
    worker = start_worker(worker_env, tmp_path / "worker.log")
    try:
        assert wait_for(lambda: len(paper_counts(slack_server)) == 3), (tmp_path / "worker.log").read_text()
        world.add(record("46000001", title="An IL-2 mutein for lupus", entry_date=date.today()))
        world.cite("46000001", R.REVIEW_PMID)
        assert wait_for(lambda: "46000001" in paper_counts(slack_server))
        polls_before = finished_polls(tmp_path)
        time.sleep(4.5)  # at least two more scheduled polls
        assert finished_polls(tmp_path) - polls_before >= 2, "the 2 s schedule kept polling"
        assert set(paper_counts(slack_server).values()) == {1}
    finally:
        code = stop(worker)
    assert code == 0
    log = (tmp_path / "worker.log").read_text()
    assert log.count("poll ok") >= polls_before + 2


def test_sigterm_stops_the_worker_within_ten_seconds(worker_env, slack_server, tmp_path):
    worker = start_worker(worker_env, tmp_path / "worker.log")
    assert wait_for(lambda: len(paper_counts(slack_server)) == 3)
    started = time.monotonic()
    assert stop(worker) == 0
    assert time.monotonic() - started < 10
    assert "stopping" in (tmp_path / "worker.log").read_text()


def test_a_second_worker_stands_by_and_takes_over_when_the_first_is_killed(worker_env, slack_server, world, tmp_path):
    first = start_worker(worker_env, tmp_path / "first.log")
    assert wait_for(lambda: len(paper_counts(slack_server)) == 3)
    second = start_worker(worker_env, tmp_path / "second.log")
    try:
        assert wait_for(lambda: "holds the lease; not polling" in (tmp_path / "second.log").read_text())
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        world.add(record("46000002", title="Efavaleukin alfa in ulcerative colitis", entry_date=date.today()))
        world.cite("46000002", R.REVIEW_PMID)
        assert wait_for(lambda: "46000002" in paper_counts(slack_server), timeout=25), (
            tmp_path / "second.log"
        ).read_text()
        assert "holding the poller lease" in (tmp_path / "second.log").read_text()
        assert set(paper_counts(slack_server).values()) == {1}
    finally:
        stop(first)
        stop(second)


def test_poll_by_hand_while_a_worker_holds_the_lease_says_so(worker_env, slack_server, tmp_path):
    worker = start_worker(worker_env, tmp_path / "worker.log")
    try:
        assert wait_for(lambda: len(paper_counts(slack_server)) == 3)
        by_hand = subprocess.run(
            [sys.executable, "-m", "il2watch", "poll"],
            cwd=REPO,
            env=worker_env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert by_hand.returncode == 3
        assert "holds the lease" in by_hand.stderr and by_hand.stderr.count("\n") == 1
    finally:
        stop(worker)


def test_a_restart_does_not_poll_again_at_once_when_one_just_ran(worker_env, slack_server, ncbi_server, tmp_path):
    env = dict(worker_env, IL2WATCH_SCHEDULE="1h")
    worker = start_worker(env, tmp_path / "worker.log")
    assert wait_for(lambda: len(paper_counts(slack_server)) == 3)
    assert wait_for(lambda: "poll ok" in (tmp_path / "worker.log").read_text())
    stop(worker)
    elinks = len([r for r in ncbi_server.requests if r.endpoint == "elink"])
    again = start_worker(env, tmp_path / "again.log")
    assert wait_for(lambda: "first at" in (tmp_path / "again.log").read_text())
    time.sleep(2)  # a poll due at once would have started by now
    stop(again)
    assert len([r for r in ncbi_server.requests if r.endpoint == "elink"]) == elinks


def test_the_worker_answers_slash_commands_over_socket_mode(tmp_path, ncbi_server, world):
    from tests.stand_ins.slack_api import SlackStandIn
    from tests.stand_ins.socket_mode import SocketModeStandIn, slash_command_payload

    with SocketModeStandIn() as socket_mode, SlackStandIn(socket_mode_url=socket_mode.url) as slack:
        slack.add_channel("il2-papers", channel_id="C0PAPERS1")
        env = subprocess_env(
            PYTHONPATH=str(REPO),
            SLACK_APP_TOKEN=slack.app_token,
            IL2WATCH_ADMINS="U0ADMIN01",
            **settings_env(tmp_path, ncbi_server, slack, IL2WATCH_SCHEDULE="1h"),
        )
        worker = start_worker(env, tmp_path / "worker.log")
        try:
            socket_mode.wait_for_connections(1, timeout=20)
            assert wait_for(lambda: len(paper_counts(slack)) == 3)
            url = slack.new_response_url(channel="C0PAPERS1", user="U0READER1")
            envelope = socket_mode.send_envelope(
                "slash_commands",
                slash_command_payload("/il2", "status", user_id="U0READER1", channel_id="C0PAPERS1", response_url=url),
            )
            ack = socket_mode.wait_for_ack(envelope, timeout=3.0)
            assert ack.seconds < 3.0
            reply = json.dumps(ack.payload or {}) + json.dumps([p.body for p in slack.response_posts(url)])
            assert "poll" in reply.lower()

            # an admin's /il2 poll runs the worker's own poll, which finds and posts the new paper
            world.add(record("46000003", title="An orthogonal IL-2 for CAR T cells", entry_date=date.today()))
            world.cite("46000003", R.REVIEW_PMID)
            url = slack.new_response_url(channel="C0PAPERS1", user="U0ADMIN01")
            envelope = socket_mode.send_envelope(
                "slash_commands",
                slash_command_payload("/il2", "poll", user_id="U0ADMIN01", channel_id="C0PAPERS1", response_url=url),
            )
            assert socket_mode.wait_for_ack(envelope, timeout=3.0).seconds < 3.0
            assert wait_for(lambda: "46000003" in paper_counts(slack), timeout=20)
            slack.wait_for_response_posts(1, url=url, timeout=20)
            assert "poll ok" in json.dumps([p.body for p in slack.response_posts(url)])
        finally:
            code = stop(worker)
        assert code == 0


def test_failed_polls_raise_one_alert_and_one_recovery_note(tmp_path, ncbi_server, slack_server, world):
    from il2watch.config import load_settings
    from il2watch.service import PollError, poll_once, raise_or_clear_alert

    settings = load_settings(
        settings_env(tmp_path, ncbi_server, slack_server, IL2WATCH_ALERT_AFTER="2", IL2WATCH_NCBI_ATTEMPTS="1"),
        tmp_path,
    )
    poll_once(settings, out=lambda _: None)
    for _ in range(4):
        ncbi_server.inject(503, times=2)  # ELink, then ESearch: every watch fails, so the poll does
        with pytest.raises(PollError):
            poll_once(settings, out=lambda _: None)
        raise_or_clear_alert(settings)
    alerts = slack_server.posts_with_metadata("il2watch_alert")
    assert len(alerts) == 1 and "the last 2 polls failed" in alerts[0].text and "HTTP 503" in alerts[0].text
    poll_once(settings, out=lambda _: None)
    raise_or_clear_alert(settings)
    raise_or_clear_alert(settings)
    assert len(slack_server.posts_with_metadata("il2watch_recovered")) == 1
    assert len(slack_server.posts_with_metadata("il2watch_alert")) == 1


def test_status_on_the_terminal_shows_the_last_poll(worker_env, slack_server, tmp_path):
    assert (
        subprocess.run(
            [sys.executable, "-m", "il2watch", "poll"], cwd=REPO, env=worker_env, capture_output=True, timeout=60
        ).returncode
        == 0
    )
    status = subprocess.run(
        [sys.executable, "-m", "il2watch", "status"],
        cwd=REPO,
        env=worker_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert "ok" in status.stdout.lower() and "papers" in status.stdout.lower()


def test_sigterm_during_a_slow_poll_still_exits_within_ten_seconds(worker_env, ncbi_server, tmp_path):
    ncbi_server.inject("slow", endpoint="elink", delay=40)
    worker = start_worker(dict(worker_env, IL2WATCH_NCBI_TIMEOUT="60"), tmp_path / "worker.log")
    assert wait_for(lambda: "first at" in (tmp_path / "worker.log").read_text(), timeout=20)
    time.sleep(2.5)  # the first poll starts a second after start-up and now waits on NCBI's slow answer
    started = time.monotonic()
    assert stop(worker) == 0
    assert time.monotonic() - started < 10
    assert "abandoning it" in (tmp_path / "worker.log").read_text()
