"""`il2watch run` as a real subprocess against the stand-ins: schedule, lease, takeover, SIGTERM."""

import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from tests.conftest import settings_env, subprocess_env
from tests.data import records as R
from tests.stand_ins.pubmed_world import record

REPO = Path(__file__).resolve().parent.parent


def start_worker(env, log_path):
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "il2watch", "run"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def wait_for(condition, timeout=20.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def paper_counts(slack_server):
    return Counter(m.metadata["event_payload"]["pmid"] for m in slack_server.posts_with_metadata("il2watch_paper"))


def stop(process, sig=signal.SIGTERM):
    if process.poll() is None:
        process.send_signal(sig)
    return process.wait(timeout=15)


@pytest.fixture
def worker_env(tmp_path, ncbi_server, slack_server):
    return subprocess_env(PYTHONPATH=str(REPO), **settings_env(
        tmp_path, ncbi_server, slack_server, IL2WATCH_SCHEDULE="2s", IL2WATCH_LEASE_SECONDS="3",
        IL2WATCH_LOG_LEVEL="INFO"))


def test_the_worker_polls_on_schedule_and_posts_new_papers_once(worker_env, slack_server, world, tmp_path):
    worker = start_worker(worker_env, tmp_path / "worker.log")
    try:
        assert wait_for(lambda: len(paper_counts(slack_server)) == 3), (tmp_path / "worker.log").read_text()
        world.add(record("46000001", title="An IL-2 mutein for lupus", entry_date=date.today()))
        world.cite("46000001", R.REVIEW_PMID)
        assert wait_for(lambda: "46000001" in paper_counts(slack_server))
        polls_before = len([r for r in slack_server.calls("auth.test")])
        time.sleep(4.5)  # at least two more scheduled polls
        assert set(paper_counts(slack_server).values()) == {1}
    finally:
        code = stop(worker)
    assert code == 0
    log = (tmp_path / "worker.log").read_text()
    assert "poll ok" in log
    assert polls_before >= 0


def test_sigterm_stops_the_worker_within_ten_seconds(worker_env, slack_server, tmp_path):
    worker = start_worker(worker_env, tmp_path / "worker.log")
    assert wait_for(lambda: len(paper_counts(slack_server)) == 3)
    started = time.monotonic()
    assert stop(worker) == 0
    assert time.monotonic() - started < 10
    assert "stopping" in (tmp_path / "worker.log").read_text()


def test_a_second_worker_stands_by_and_takes_over_when_the_first_is_killed(worker_env, slack_server, world,
                                                                             tmp_path):
    first = start_worker(worker_env, tmp_path / "first.log")
    assert wait_for(lambda: len(paper_counts(slack_server)) == 3)
    second = start_worker(worker_env, tmp_path / "second.log")
    try:
        assert wait_for(lambda: "holds the lease; not polling" in (tmp_path / "second.log").read_text())
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        world.add(record("46000002", title="Efavaleukin alfa in ulcerative colitis", entry_date=date.today()))
        world.cite("46000002", R.REVIEW_PMID)
        assert wait_for(lambda: "46000002" in paper_counts(slack_server), timeout=25), \
            (tmp_path / "second.log").read_text()
        assert "holding the poller lease" in (tmp_path / "second.log").read_text()
        assert set(paper_counts(slack_server).values()) == {1}
    finally:
        stop(first)
        stop(second)


def test_poll_by_hand_while_a_worker_holds_the_lease_says_so(worker_env, slack_server, tmp_path):
    worker = start_worker(worker_env, tmp_path / "worker.log")
    try:
        assert wait_for(lambda: len(paper_counts(slack_server)) == 3)
        by_hand = subprocess.run([sys.executable, "-m", "il2watch", "poll"], cwd=REPO, env=worker_env,
                                 capture_output=True, text=True, timeout=30)
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
