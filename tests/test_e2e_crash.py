"""`il2watch poll` killed with SIGKILL at random moments, again and again, and at the one moment that matters
most (Slack has the message, il2watch has not recorded it): every paper still arrives once. The random kills
run on both backends (fewer on PostgreSQL, which shares the code paths that the SQLite run covers)."""

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from il2watch.library import Library
from tests.conftest import BOTH_BACKENDS
from tests.data import records as R
from tests.stand_ins.pubmed_world import record
from tests.support import settings_env, subprocess_env
from tests.test_reliability_support import integrity

REPO = Path(__file__).resolve().parent.parent
KILLS = {
    "sqlite": int(os.environ.get("IL2WATCH_TEST_KILLS", "50")),
    "postgres": int(os.environ.get("IL2WATCH_TEST_KILLS_POSTGRES", "15")),
}


def start_poll(env):
    return subprocess.Popen(
        [sys.executable, "-m", "il2watch", "poll"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def posted(slack_server):
    pmids = [m.metadata["event_payload"]["pmid"] for m in slack_server.posts_with_metadata("il2watch_paper")]
    for digest in slack_server.posts_with_metadata("il2watch_digest"):
        pmids += digest.metadata["event_payload"]["pmids"]
    return Counter(pmids)


@BOTH_BACKENDS
def test_random_sigkills_during_discovery_and_delivery_lose_and_double_nothing(
    tmp_path, ncbi_server, slack_server, world, database
):
    kills_wanted = KILLS["postgres" if database.startswith("postgresql://") else "sqlite"]
    env = subprocess_env(
        PYTHONPATH=str(REPO),
        **settings_env(
            tmp_path,
            ncbi_server,
            slack_server,
            database,
            IL2WATCH_BURST="0",
            NCBI_API_KEY="",
            IL2WATCH_POST_INTERVAL="0.15",
            IL2WATCH_LEASE_SECONDS="5",
            IL2WATCH_LOG_LEVEL="WARNING",
        ),
    )
    assert (
        subprocess.run(
            [sys.executable, "-m", "il2watch", "poll"], cwd=REPO, env=env, capture_output=True, timeout=60
        ).returncode
        == 0
    )
    baseline = posted(slack_server)
    rng = random.Random(20221010)
    expected = set()
    next_pmid = 45_000_000
    kills = runs = 0
    while kills < kills_wanted and runs < kills_wanted * 3:
        runs += 1
        for _ in range(3):  # papers keep arriving while il2watch keeps dying: every run has work to do
            pmid = str(next_pmid)
            next_pmid += 1
            world.add(record(pmid, title=f"IL-2 mutein {pmid} and regulatory T cells", entry_date=date.today()))
            world.cite(pmid, R.REVIEW_PMID)
            expected.add(pmid)
        process = start_poll(env)
        time.sleep(rng.uniform(0.2, 1.3))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)

    assert kills == kills_wanted, f"only {kills} of {runs} runs were still going when the kill came"
    for _ in range(2):  # finally let it finish, twice
        finished = subprocess.run(
            [sys.executable, "-m", "il2watch", "poll"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert finished.returncode == 0, finished.stderr

    counts = posted(slack_server)
    doubled = {pmid: n for pmid, n in counts.items() if n > 1}
    assert doubled == {}, f"posted twice: {doubled}"
    assert expected <= set(counts), f"never posted: {sorted(expected - set(counts))}"
    assert set(counts) - expected == set(baseline)
    with Library(database) as library:
        if not database.startswith("postgresql://"):
            assert integrity(database) == "ok"
        states = dict(library.execute("select state, count(*) from outbox group by state").fetchall())
    assert set(states) <= {"sent"}, states


def thread_replies(slack_server, parent):
    return [m for m in slack_server.messages("C0PAPERS1") if m.thread_ts == parent.ts and m.ts != parent.ts]


@BOTH_BACKENDS
@pytest.mark.parametrize("where", ["post", "thread reply"])
def test_a_kill_right_after_slack_accepted_a_message_doubles_nothing(
    tmp_path, ncbi_server, slack_server, world, where, database
):
    """The random kills above rarely land in the few milliseconds between Slack accepting a message and
    il2watch recording it; here the Slack stand-in accepts the message and holds its answer until il2watch
    has been killed."""
    from il2watch.config import load_settings
    from il2watch.service import poll_once

    env = settings_env(
        tmp_path, ncbi_server, slack_server, database, IL2WATCH_THREAD_ABSTRACT="true", IL2WATCH_BURST="0"
    )
    settings = load_settings(env, tmp_path)
    poll_once(settings, out=lambda _: None)  # the baseline
    arrivals = [str(45_100_000 + n) for n in range(3)]
    for pmid in arrivals:
        world.add(record(pmid, title=f"IL-2 mutein {pmid} and regulatory T cells", entry_date=date.today()))
        world.cite(pmid, R.REVIEW_PMID)
    in_thread = where == "thread reply"
    slack_server.inject("stall", method="chat.postMessage", when=lambda p: bool(p.get("thread_ts")) == in_thread)
    process = start_poll(subprocess_env(PYTHONPATH=str(REPO), **env))
    assert slack_server.stalled.wait(30), "il2watch never posted"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    slack_server.release_stalled()

    report = poll_once(settings, out=lambda _: None)
    assert report.status == "ok" and report.delivery.still_due == 0
    counts = posted(slack_server)
    assert [counts[pmid] for pmid in arrivals] == [1, 1, 1]
    for post in slack_server.posts_with_metadata("il2watch_paper"):
        parts = [m.metadata["event_payload"]["part"] for m in thread_replies(slack_server, post)]
        assert parts == sorted(set(parts)), f"a reply in the thread of {post.ts} was posted twice"
    assert {pmid: len(thread_replies(slack_server, posted_message(slack_server, pmid))) for pmid in arrivals} == {
        pmid: 1 for pmid in arrivals
    }
    with Library(database) as library:
        states = dict(library.execute("select state, count(*) from outbox group by state").fetchall())
        statuses = [status for (status,) in library.execute("select status from runs order by id").fetchall()]
    assert states.keys() == {"sent"}
    assert statuses == ["ok", "interrupted", "ok"], "the killed poll is recorded as interrupted"


def posted_message(slack_server, pmid):
    return next(
        m for m in slack_server.posts_with_metadata("il2watch_paper") if m.metadata["event_payload"]["pmid"] == pmid
    )
