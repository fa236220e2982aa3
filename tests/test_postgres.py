"""What only PostgreSQL has: a library shared by processes that share no disk, the lease as an advisory lock,
connections that drop and come back, sslmode and the password from the URL, `migrate` and `doctor`.

Every test here needs a server (IL2WATCH_TEST_DATABASE_URL) and is skipped, saying so, without one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from il2watch.config import load_settings
from il2watch.lease import Lease, lease_problem, live_holder
from il2watch.library import TABLE_KEYS, Library, LibraryError, StoredInsight
from il2watch.model import Insight, Paper, Reason, Watch
from il2watch.service import PollError, poll_once
from il2watch.store import postgres as pg
from tests.conftest import admin_connection
from tests.data import records as R
from tests.stand_ins.pubmed_world import record
from tests.support import settings_env, subprocess_env

REPO = Path(__file__).resolve().parent.parent
STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_process_outlives_its_test():
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
            process.wait(timeout=10)


def start(args, env, log_path, cwd=REPO):
    log = open(log_path, "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "il2watch", *args], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    STARTED.append(process)
    return process


def wait_for(condition, timeout=20.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def paper_counts(slack_server):
    return Counter(m.metadata["event_payload"]["pmid"] for m in slack_server.posts_with_metadata("il2watch_paper"))


def arrive(world, pmid, title="A CD25-biased IL-2 mutein expands regulatory T cells"):
    world.add(record(pmid, title=title, entry_date=date.today()))
    world.cite(pmid, R.REVIEW_PMID)


def backends_of(postgres_url):
    with admin_connection(postgres_url) as conn:
        return conn.execute(
            "select pid from pg_stat_activity where datname = current_database() and pid != pg_backend_pid()"
        ).fetchall()


def drop_connections(postgres_url, application=""):
    """What a server restart or a network fault does to the library's connections: they end."""
    with admin_connection(postgres_url) as conn:
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() "
            "and pid != pg_backend_pid() and application_name like %s",
            [application + "%"],
        )


# ---------------------------------------------------------------- connections


def test_a_dropped_connection_fails_one_statement_in_one_line_and_the_next_library_reconnects(postgres_url):
    with Library(postgres_url) as library:
        library.save_papers([Paper("1", "Low-dose IL-2 in lupus")])
        drop_connections(postgres_url)
        with pytest.raises(LibraryError, match=r"^lost the connection to the library PostgreSQL .* reconnects$"):
            library.count_papers()
    with Library(postgres_url) as again:
        assert again.count_papers() == 1


def test_a_poll_whose_connection_drops_fails_cleanly_and_the_next_one_runs(
    make_settings, postgres_url, ncbi_server, world
):
    settings = make_settings(DATABASE_URL=postgres_url, IL2WATCH_DB="")
    assert settings.db_path == postgres_url
    poll_once(settings, out=lambda _: None)
    arrive(world, "45000001")
    ncbi_server.inject("slow", endpoint="efetch", delay=1.0)
    failed: list[BaseException] = []
    poller = threading.Thread(target=lambda: _poll_catching(settings, failed))
    poller.start()
    assert wait_for(lambda: any(r.endpoint == "efetch" for r in ncbi_server.requests[-3:]), timeout=10)
    drop_connections(postgres_url)
    poller.join(timeout=30)
    assert len(failed) == 1 and "lost the connection" in str(failed[0]) and "\n" not in str(failed[0])
    report = poll_once(settings, out=lambda _: None)
    assert report.status == "ok" and report.new == 1
    with Library(postgres_url) as library:
        assert library.paper("45000001") is not None and library.count_with_reason("cites") >= 1


def _poll_catching(settings, failed):
    try:
        poll_once(settings, out=lambda _: None)
    except PollError as error:
        failed.append(error)


def test_sslmode_comes_from_the_url(postgres_url):
    """The test server speaks no TLS: require makes the connection fail, saying so; disable is plain."""
    with pytest.raises(LibraryError, match="SSL"):
        Library(postgres_url + "?sslmode=require")
    with Library(postgres_url + "?sslmode=disable") as library:
        assert library.count_papers() == 0
    assert "sslmode" in pg.connection_info(postgres_url + "?sslmode=require")


def test_the_password_reaches_no_message(postgres_url, tmp_path, ncbi_server):
    wrong = "postgresql://nobody77:hunter2pw@127.0.0.1:9/il2watch"  # nothing listens on port 9
    with pytest.raises(LibraryError) as refused:
        Library(wrong)
    assert "hunter2pw" not in str(refused.value) and "nobody77" not in str(refused.value)
    assert str(refused.value).startswith("cannot reach the library PostgreSQL")
    env = subprocess_env(PYTHONPATH=str(REPO), **settings_env(tmp_path, ncbi_server, database=wrong))
    for command in ("poll", "status", "doctor"):
        done = subprocess.run(
            [sys.executable, "-m", "il2watch", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 1, (command, done.stderr)
        assert "hunter2pw" not in done.stdout + done.stderr and "nobody77" not in done.stdout + done.stderr
        assert "PostgreSQL" in done.stdout + done.stderr
    assert len(done.stdout.strip().splitlines()) > 3  # doctor: every line, the library's among them


# ---------------------------------------------------------------- the lease


def test_the_lease_is_one_holders_and_a_release_frees_it(postgres_url):
    with Library(postgres_url) as one, Library(postgres_url) as two:
        first, second = Lease(one, "worker-a", ttl=30), Lease(two, "worker-b", ttl=30)
        assert first.acquire() and first.acquire() and first.renew()
        assert not second.acquire() and not second.renew()
        assert second.info().holder == "worker-a" and 25 < second.info().expires_in <= 30
        assert lease_problem(one, "worker-a") == "" and live_holder(two) == "worker-a"
        first.release()
        assert second.info() is None and live_holder(two) == ""
        assert lease_problem(one, "worker-a") == "this process no longer holds the poller lease"
        assert second.acquire() and not first.renew()
        assert lease_problem(one, "worker-a") == "worker worker-b took over the poller lease; the rest is left to it"
        second.release()


def test_the_lease_session_gives_up_on_a_vanished_peer_within_half_a_lease(postgres_url):
    with Library(postgres_url) as library:
        assert Lease(library, "worker-a", ttl=60).acquire()
        session = pg._lease_sessions[(postgres_url, "poller", "worker-a")]
        settings = session.execute(
            "select current_setting('tcp_keepalives_idle')::int, current_setting('tcp_keepalives_interval')::int, "
            "current_setting('tcp_keepalives_count')::int, current_setting('tcp_user_timeout')::int"
        ).fetchone()
        idle, interval, count, user_timeout = settings
        assert idle + interval * count <= 30 and 0 < user_timeout <= 30_000
        assert session.info.get_parameters()["keepalives"] == "1"
        Lease(library, "worker-a").release()


HOLDER = """
import sys, time
from il2watch.lease import Lease
from il2watch.library import Library
with Library(sys.argv[1]) as library:
    lease = Lease(library, "frozen-or-killed", ttl=float(sys.argv[2]))
    assert lease.acquire()
    print("holding", flush=True)
    while True:
        time.sleep(float(sys.argv[2]) / 3)
        lease.renew()
"""


def hold_lease_elsewhere(postgres_url, ttl, tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, postgres_url, str(ttl)],
        cwd=REPO,
        env=subprocess_env(PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        text=True,
    )
    STARTED.append(process)
    assert process.stdout.readline().strip() == "holding"
    return process


def test_a_killed_holder_loses_the_lease_at_once(postgres_url, tmp_path):
    holder = hold_lease_elsewhere(postgres_url, 30, tmp_path)
    with Library(postgres_url) as library:
        lease = Lease(library, "survivor", ttl=30)
        assert not lease.acquire() and lease.info().holder == "frozen-or-killed"
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        assert wait_for(lease.acquire, timeout=5)  # no waiting out the 30 seconds
        lease.release()


def test_a_frozen_holder_loses_the_lease_after_one_lease_interval(postgres_url, tmp_path):
    """SIGSTOP: the process and its connection live on, but its heartbeat stops, as on a machine that hangs."""
    holder = hold_lease_elsewhere(postgres_url, 2, tmp_path)
    with Library(postgres_url) as library:
        lease = Lease(library, "survivor", ttl=2)
        assert not lease.acquire()
        holder.send_signal(signal.SIGSTOP)
        frozen = time.monotonic()
        assert wait_for(lease.acquire, timeout=10, step=0.2)
        assert 1.0 < time.monotonic() - frozen < 2 + 2.5
        holder.send_signal(signal.SIGCONT)
        assert lease.renew()
        lease.release()


# ---------------------------------------------------------------- processes that share no disk


def worker_env(tmp_path, ncbi_server, slack_server, postgres_url, **extra):
    return subprocess_env(
        PYTHONPATH=str(REPO),
        **settings_env(
            tmp_path,
            ncbi_server,
            slack_server,
            database=postgres_url,
            IL2WATCH_SCHEDULE="2s",
            IL2WATCH_LEASE_SECONDS="5",
            IL2WATCH_LOG_LEVEL="INFO",
            **extra,
        ),
    )


def test_two_workers_in_separate_folders_poll_once_between_them_and_take_over_after_a_kill(
    tmp_path, ncbi_server, slack_server, world, postgres_url
):
    folders = [tmp_path / "dyno-1", tmp_path / "dyno-2"]
    for folder in folders:
        folder.mkdir()
    envs = [worker_env(folder, ncbi_server, slack_server, postgres_url) for folder in folders]
    assert all("IL2WATCH_DB" not in env and env["DATABASE_URL"] == postgres_url for env in envs)
    first = start(["run"], envs[0], folders[0] / "worker.log", cwd=folders[0])
    assert wait_for(lambda: len(paper_counts(slack_server)) == 3)
    second = start(["run"], envs[1], folders[1] / "worker.log", cwd=folders[1])
    log_of = [lambda n=n: (folders[n] / "worker.log").read_text() for n in (0, 1)]
    assert wait_for(lambda: "holds the lease; not polling" in log_of[1]())
    arrive(world, "46000001")
    assert wait_for(lambda: "46000001" in paper_counts(slack_server))
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed = time.monotonic()
    assert wait_for(lambda: "holding the poller lease" in log_of[1](), timeout=10), log_of[1]()
    assert time.monotonic() - killed < 5  # within one lease interval
    arrive(world, "46000002", title="Efavaleukin alfa in ulcerative colitis")
    assert wait_for(lambda: "46000002" in paper_counts(slack_server), timeout=20), log_of[1]()
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=15) == 0
    assert set(paper_counts(slack_server).values()) == {1}
    assert not any(folder.joinpath("il2watch.db").exists() or list(folder.glob("*.db")) for folder in folders)


def test_serve_and_run_in_separate_folders_answer_from_one_library(
    tmp_path, ncbi_server, slack_server, world, postgres_url
):
    from tests.test_serve import SECRET, block_actions_payload, free_port, interactive, slash, wait_for_health

    web, worker = tmp_path / "web", tmp_path / "worker"
    web.mkdir()
    worker.mkdir()
    run = start(["run"], worker_env(worker, ncbi_server, slack_server, postgres_url), worker / "run.log", cwd=worker)
    assert wait_for(lambda: len(paper_counts(slack_server)) == 3)
    port = free_port()
    serve_env = worker_env(web, ncbi_server, slack_server, postgres_url, SLACK_SIGNING_SECRET=SECRET)
    serve_env.update(IL2WATCH_ADMINS="UADMIN01", IL2WATCH_CHANNEL="C0PAPERS1")
    serve = start(["serve", "--port", str(port), "--host", "127.0.0.1"], serve_env, web / "serve.log", cwd=web)
    wait_for_health(port, serve)
    posted = [m for m in slack_server.posts_with_metadata("il2watch_paper")]
    pmid = posted[0].metadata["event_payload"]["pmid"]

    _, data, seconds, _ = slash(port, slack_server, "recent")
    assert seconds < 3 and all(p in data.decode() for p in paper_counts(slack_server))

    for action in ("il2_save", "il2_relevant"):
        url = slack_server.new_response_url(channel="C0PAPERS1", user="UREADER1", message_ts=posted[0].ts)
        payload = block_actions_payload(
            action,
            pmid,
            message={"ts": posted[0].ts, "blocks": posted[0].blocks},
            user_id="UREADER1",
            channel_id="C0PAPERS1",
            response_url=url,
        )
        assert interactive(port, payload)[0] == 200

    def clicks_stored() -> bool:  # a click is acknowledged first and stored just after
        with Library(postgres_url) as library:
            return library.saved_by("UREADER1") == [f"pmid:{pmid}"] and library.feedback(pmid) == (1, 0)

    assert wait_for(clicks_stored, timeout=10)
    _, data, _, _ = slash(port, slack_server, "saved")
    assert pmid in data.decode()

    _, data, _, url = slash(port, slack_server, "poll", user="UADMIN01")
    answers = data.decode() + json.dumps([p.body for p in slack_server.wait_for_response_posts(1, url=url)])
    assert "holds the poller lease" in answers and "polls on its schedule" in answers
    run.send_signal(signal.SIGTERM)
    serve.send_signal(signal.SIGTERM)
    assert run.wait(timeout=15) == 0 and serve.wait(timeout=15) == 0
    assert set(paper_counts(slack_server).values()) == {1}


# ---------------------------------------------------------------- a server restarted mid-poll


class Server:
    """A PostgreSQL server of this test's own, to stop and start (the shared one serves other tests)."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port = folder, port
        env = dict(os.environ, IL2WATCH_PG_DIR=str(folder), IL2WATCH_PG_PORT=str(port))
        self.url = subprocess.run(
            ["bash", str(REPO / ".ci" / "postgres")], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        self.bin = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))[-1])

    def pg_ctl(self, action: str) -> None:
        options = f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off"
        command = f"{self.bin} -D {self.folder} -w -m immediate -l {self.folder}/server.log -o '{options}' {action}"
        shell = ["su", "postgres", "-s", "/bin/sh", "-c", command] if os.geteuid() == 0 else ["sh", "-c", command]
        subprocess.run(shell, check=True, capture_output=True, timeout=60)

    def restart(self) -> None:
        self.pg_ctl("stop")
        self.pg_ctl("start")

    def stop(self) -> None:
        self.pg_ctl("stop")


@pytest.fixture
def own_server(tmp_path, postgres_url):
    from tests.test_serve import free_port

    server = Server(Path(f"/tmp/il2watch-pg-{os.getpid()}-{time.monotonic_ns()}"), free_port())
    yield server
    pg.close_pools()
    server.stop()
    subprocess.run(["rm", "-rf", str(server.folder)], check=False)


def test_a_server_restarted_mid_poll_loses_and_doubles_nothing(own_server, make_settings, slack_server, world):
    settings = make_settings(slack_server, DATABASE_URL=own_server.url, IL2WATCH_DB="")
    poll_once(settings, out=lambda _: None)
    for n in range(4):
        arrive(world, str(47000001 + n), title=f"An IL-2 mutein number {n} for lupus")
    slack_server.inject("slow", method="chat.postMessage", delay=1.5)  # the first post leaves, slowly
    posts_before = len(slack_server.calls("chat.postMessage"))
    failed: list[BaseException] = []
    poller = threading.Thread(target=lambda: _poll_catching(settings, failed))
    poller.start()
    assert wait_for(lambda: len(slack_server.calls("chat.postMessage")) > posts_before, timeout=20)
    own_server.restart()
    poller.join(timeout=60)
    assert failed and "\n" not in str(failed[0])
    report = poll_once(settings, out=lambda _: None)
    assert report.status == "ok"
    counts = paper_counts(slack_server)
    assert all(counts[str(47000001 + n)] == 1 for n in range(4)) and set(counts.values()) == {1}


# ---------------------------------------------------------------- migrate and doctor


def every_kind_of_row(path):
    with Library(path) as library, library.transaction():
        library.sync_watches([Watch("review", pmid=R.REVIEW_PMID, label="the review")])
        library.add_watch(Watch("mine", query="IL-2 mutein", source="slack"), added_by="UADMIN01")
        library.set_watch_progress(Watch("review", pmid=R.REVIEW_PMID), horizon="2024-05-01", baseline_at="2024-05-01")
        library.save_papers(
            [
                Paper(
                    "40000001", "Low-dose <i>IL-2</i> in lupus", entry_date="2024-05-30", pub_year=2024, doi="10.1/A"
                ),
                Paper("40000002", "Bempegaldesleukin in melanoma", entry_date="2024-05-20", pub_year=2024),
            ],
            {
                "40000001": Insight(
                    "s", axis="treg", molecules=("aldesleukin",), flags=("clinical-trial",), relevance=70
                )
            },
        )
        run = library.start_run("poll", holder="old-worker")
        library.save_reasons(
            [
                ("40000001", Reason("review", "cites", sources=("pubmed", "icite"))),
                ("40000002", Reason("mine", "query")),
            ],
            now="2024-06-01T00:00:00+00:00",
            run_id=run,
        )
        library.finish_run(run, status="ok", requests=4, new=2)
        library.enqueue(
            key="k1",
            channel="C0PAPERS1",
            kind="paper",
            papers=["40000001"],
            payload={"x": 1},
            state="sent",
            ts="1.0001",
            sent_at="2024-06-01",
        )
        library.enqueue(key="k2", channel="C0PAPERS1", kind="paper", papers=["40000002"], payload={}, state="sending")
        library.enqueue(key="k3", channel="C0PAPERS1", kind="note", papers=[], payload={"text": "hi"}, state="failed")
        library.set_state("next_poll_at", "2024-06-02T00:00:00+00:00")
        library.set_feedback("40000001", "UREADER1", 1)
        library.save_for("UREADER1", "40000001")
        library.record_unreadable({"40000009": "not complete XML"}, now="2024-06-01T00:00:00+00:00")
        library.save_insight("40000002", StoredInsight(Insight("About melanoma", axis="effector"), "r", "e", ""))
        library.record_followup(
            key="fu-1",
            paper="pmid:40000001",
            kind="retraction",
            notice="pmid:40000009",
            source="J Immunol. 2024 Jun;1:2",
            told=True,
            how="pubmed",
            now="2024-06-01T00:00:00+00:00",
        )
        library.set_notify("UREADER1", False)
    with Library(path) as library:
        library.first_handling("request-1", now=time.time(), keep=3600)
        library.acquire_lease("poller", "old-worker", now=time.time(), ttl=60)


ANSWERS = ("recent", "cites", "tag treg", "tag aldesleukin", "search lupus", "saved", "paper 40000001", "watch list")


def answers(location, tmp_path):
    """What every command answers, and what status and the outbox say, from the library at ``location``."""
    from il2watch.commands import Context, answer
    from il2watch.commands.status import status_facts
    from tests.test_commands import ADMIN, NOW, insight_for

    settings = load_settings({"IL2WATCH_ADMINS": ADMIN, "IL2WATCH_DB": location}, cwd=tmp_path)
    with Library(location) as library:
        context = Context(
            library=library,
            settings=settings,
            insight_for=insight_for,
            user_id="UREADER1",
            channel_id="C0PAPERS1",
            watches=tuple(settings.watches) + tuple(library.slack_watches()),
            now=lambda: NOW,
        )
        replies = {text: answer(text, context).as_kwargs() for text in ANSWERS}
        replies["status"] = status_facts(library, settings, now=NOW)
        replies["outbox"] = [(r.key, r.state, r.papers, r.ts, r.payload) for r in library.outbox()]
        replies["last run"] = library.last_run()
    return replies


def test_migrate_copies_every_row_and_every_command_answers_the_same(tmp_path, postgres_url, ncbi_server):
    source = str(tmp_path / "library.db")
    every_kind_of_row(source)
    env = subprocess_env(PYTHONPATH=str(REPO), **settings_env(tmp_path, ncbi_server))
    for _ in range(2):  # a second run changes nothing
        done = subprocess.run(
            [sys.executable, "-m", "il2watch", "migrate", "--to", postgres_url],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert (
            "migrate papers: 2/2 copied" in done.stderr and "papers 2, " in done.stdout and "reasons 2, " in done.stdout
        )
    with Library(source) as lite, Library(postgres_url) as postgres:
        for table in set(TABLE_KEYS) - {"lease"}:
            here = lite.execute(f"select * from {table}").fetchall()
            there = postgres.execute(f"select * from {table}").fetchall()
            assert len(here) == len(there) >= 1, table
        assert postgres.execute("select count(*) from lease").fetchone()[0] == 0  # the lease is the workers'
    there, here = answers(postgres_url, tmp_path), answers(source, tmp_path)
    assert (here["status"].pop("poller"), there["status"].pop("poller")) == ("old-worker", "")
    assert there == here
    with Library(postgres_url) as postgres:
        assert postgres.start_run("poll") == 2  # ids carry on after the copied ones


def test_migrate_refuses_what_it_cannot_copy(tmp_path, ncbi_server, postgres_url):
    env = subprocess_env(PYTHONPATH=str(REPO), **settings_env(tmp_path, ncbi_server))

    def migrate(*args, **extra):
        return subprocess.run(
            [sys.executable, "-m", "il2watch", "migrate", *args],
            cwd=REPO,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert migrate("--to", "mysql://x").returncode == 2
    missing = migrate("--to", postgres_url)
    assert missing.returncode == 1 and "there is no library at" in missing.stderr
    already = migrate("--to", postgres_url, IL2WATCH_DB=postgres_url)
    assert already.returncode == 2 and "already PostgreSQL" in already.stderr


def test_doctor_checks_the_connection_the_schema_version_and_the_privileges(fresh_postgres_url, make_settings):
    from il2watch.doctor import _library_checks

    settings = make_settings(DATABASE_URL=fresh_postgres_url, IL2WATCH_DB="")
    lines = [check.line() for check in _library_checks(settings)[0]]
    assert any("has no il2watch schema yet" in line for line in lines)
    with Library(fresh_postgres_url) as library:
        library.count_papers()
    lines = [check.line() for check in _library_checks(settings)[0]]
    assert any(line.startswith("✓ schema up to date") for line in lines)
    assert any(line.startswith("✓ il2watch's role may read and write every table") for line in lines)
    with admin_connection(fresh_postgres_url) as conn:
        conn.execute("create role il2watch_reader login")
        conn.execute("grant select on papers to il2watch_reader")
    try:
        reader = fresh_postgres_url.replace("postgresql://postgres@", "postgresql://il2watch_reader@")
        lines = [c.line() for c in _library_checks(make_settings(DATABASE_URL=reader, IL2WATCH_DB=""))[0]]
        [lacks] = [line for line in lines if line.startswith("✗ il2watch's role lacks: ")]
        assert "; insert, update, delete on papers;" in lacks and "select, insert, update, delete on reasons" in lacks
        assert "create on schema public" in lacks
    finally:
        pg.close_pools()
        with admin_connection(fresh_postgres_url) as conn:
            conn.execute("drop owned by il2watch_reader")
            conn.execute("drop role il2watch_reader")
    with admin_connection(fresh_postgres_url) as conn:
        conn.execute("insert into il2watch_migrations values ('m999_from_the_future', '')")
    lines = [check.line() for check in _library_checks(settings)[0]]
    assert any("schema written by a newer il2watch (m999_from_the_future)" in line for line in lines)


# ---------------------------------------------------------------- how platforms hand the library over


def test_a_read_only_library_fails_the_poll_in_one_line_naming_the_fix(postgres_url, make_settings):
    """A standby, or a role whose sessions are read-only, as some platforms hand out for a follower."""
    Library(postgres_url).close()  # the schema exists; this session may only read it
    read_only = postgres_url + "?options=-c%20default_transaction_read_only%3Don"
    settings = make_settings(DATABASE_URL=read_only, IL2WATCH_DB="")
    try:
        with pytest.raises(PollError) as failed:
            poll_once(settings, out=lambda _: None)
    finally:
        pg.close_pools(read_only)
    message = str(failed.value)
    assert "is read-only (a standby or a read-only role): point DATABASE_URL at the primary" in message
    assert "\n" not in message and "Traceback" not in message
    with Library(postgres_url) as library:
        assert library.count_papers() == 0 and library.outbox() == []


def test_a_postgres_url_in_herokus_spelling_is_the_postgresql_library(postgres_url, make_settings):
    heroku = "postgres://" + postgres_url.removeprefix("postgresql://")
    settings = make_settings(DATABASE_URL=heroku, IL2WATCH_DB="")
    try:
        assert settings.db_path == heroku
        report = poll_once(settings, out=lambda _: None)
        with Library(heroku) as library:
            assert type(library).__name__ == "PostgresLibrary"
            stored = library.count_papers()
    finally:
        pg.close_pools(heroku)
    assert report.status == "ok" and report.new > 0 and stored == report.new
    with Library(postgres_url) as library:
        assert library.count_papers() == stored  # the same database, whichever spelling named it
