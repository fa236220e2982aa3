"""The library's SQLite file refusing il2watch: read-only, full, locked, corrupt. End to end, through the poll.

Tests run as root, so file permissions cannot make a file read-only or a disk full; SQLite and the kernel
can: a ``file:…?mode=ro`` URI opens the library read-only, and RLIMIT_FSIZE (a per-process limit on file
size, enforced for root too) makes the write that would pass it fail, which SQLite reports as a disk I/O
error. ``PRAGMA max_page_count`` would be SQLite's own way to a full database, but it holds only for the
connection that sets it and il2watch opens its own, so it is tested on the library directly
(test_library.py) rather than here. In every case: one line saying what is wrong, no partial writes, and
the next poll, with the fault gone, posts every paper once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from il2watch.service import PollError
from tests.data import records as R
from tests.support import PROXY_VARIABLES, subprocess_env
from tests.test_reliability_support import REPO, integrity, one_line, open_lab

NEW = "41000001"
BUSY_TIMEOUT = 15  # seconds; il2watch.library waits this long for a lock (not a setting)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def poll_with_file_size_limit(lab, limit: int, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``il2watch poll`` in a process that may not write any file past ``limit`` bytes: a full disk."""
    code = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "from il2watch.cli import main\n"
        "sys.exit(main(['poll']))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=lab.folder,
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(PYTHONPATH=str(REPO), **env),
    )


def last_poll_status(lab) -> str:
    """What ``status`` says the last poll did."""
    from il2watch.commands.status import status_facts
    from il2watch.library import Library

    settings = lab.settings()
    with Library(settings.db_path) as library:
        return status_facts(library, settings)["last_poll"]["status"]


# ---------------------------------------------------------------- locked


@dataclasses.dataclass
class LockedPoll:
    lab: object
    blocker: sqlite3.Connection
    process: subprocess.Popen
    before: dict
    started: float


@pytest.fixture(scope="module", autouse=True)
def locked_poll(tmp_path_factory):
    """``il2watch poll`` against a library another connection holds with BEGIN EXCLUSIVE, started as the module
    starts: SQLite's busy timeout runs out while the other tests here run, and the test at the end of the
    module collects the outcome instead of sitting through fifteen seconds on its own."""
    with pytest.MonkeyPatch.context() as patch:
        for name in PROXY_VARIABLES:
            patch.delenv(name, raising=False)
        with open_lab(tmp_path_factory.mktemp("locked")) as lab:
            lab.poll()
            lab.arrive(NEW)
            blocker = sqlite3.connect(lab.db, isolation_level=None)
            blocker.execute("BEGIN EXCLUSIVE")
            blocker.execute("update state set value = value")  # hold the write lock for real
            locked = LockedPoll(lab, blocker, lab.popen("poll"), lab.rows(), time.monotonic())
            yield locked
            if locked.process.poll() is None:
                locked.process.kill()
                locked.process.wait()
            blocker.close()


# ---------------------------------------------------------------- read-only


@pytest.fixture
def lab(tmp_path):
    with open_lab(tmp_path) as lab:
        lab.poll()  # the baseline, posted to this lab's channel
        lab.arrive(NEW)
        yield lab


def test_a_read_only_library_fails_the_poll_with_one_line_and_writes_nothing(lab):
    before = digest(lab.db)
    read_only = dataclasses.replace(lab.settings(), db_path=Path(f"file:{lab.db}?mode=ro"))
    with pytest.raises(PollError) as failed:
        lab.poll(read_only)
    assert str(failed.value) == (
        f"the library file:{lab.db}?mode=ro is read-only: give il2watch write access to it and its folder"
    )
    assert digest(lab.db) == before and lab.posted()[NEW] == 0
    lab.poll()
    assert lab.posted()[NEW] == 1


# config.load_settings makes every IL2WATCH_DB absolute by joining it to the working folder, so the URI
# "file:/…/library.db?mode=ro" becomes the path "<cwd>/file:/…/library.db?mode=ro": a new, empty library is
# created there (folders and all), il2watch "rebuilds" it from the channel and the real library is never read.
def test_il2watch_db_may_be_a_read_only_uri(lab):
    before = digest(lab.db)
    failed = lab.cli("poll", env=lab.env(IL2WATCH_DB=f"file:{lab.db}?mode=ro"))
    assert not (lab.folder / "file:").exists(), "no library created under the working folder"
    assert failed.returncode == 1
    assert one_line(failed.stderr) == (
        f"il2watch: poll failed: the library file:{lab.db}?mode=ro is read-only: "
        f"give il2watch write access to it and its folder"
    )
    assert digest(lab.db) == before and lab.posted()[NEW] == 0


# ---------------------------------------------------------------- full


def test_a_disk_full_in_the_middle_of_the_polls_transaction_keeps_nothing_of_it(lab):
    big = "Regulatory T cells expand after low-dose IL-2 and the mutein keeps them selective. " * 120
    arrivals = [str(41000010 + n) for n in range(4)]
    for pmid in arrivals:  # 40 KB of abstracts: more than the WAL may grow to under the limit
        lab.arrive(pmid, abstract=(("", "", big),))
    before, posted_before = lab.rows(), lab.posted()
    failed = poll_with_file_size_limit(lab, 64 * 1024, lab.env())
    assert failed.returncode == 1
    assert one_line(failed.stderr) == (
        f"il2watch: poll failed: the library {lab.db} could not be written (disk "
        f"full, a file size limit, or a failing disk): free space or move "
        f"IL2WATCH_DB, then poll again"
    )
    assert integrity(lab.db) == "ok"
    assert lab.rows() == before, "the papers, reasons, outbox rows and watermarks of the poll: all or none"
    assert lab.posted() == posted_before
    assert lab.runs()[-1]["status"] == "error"
    report = lab.poll()
    assert report.stored == 5 and report.delivery.posted == 5
    assert all(lab.posted()[pmid] == 1 for pmid in [NEW, *arrivals])


def test_a_disk_full_between_posts_doubles_nothing(lab):
    arrivals = [str(41000010 + n) for n in range(9)]
    for pmid in arrivals:
        lab.arrive(pmid)
    tokenless = lab.env()
    del tokenless["SLACK_BOT_TOKEN"]
    stored = lab.cli("poll", env=tokenless)  # stored and shown, nothing posted: ten rows due
    assert stored.returncode == 0 and "10 shown here" in stored.stdout
    failed = poll_with_file_size_limit(lab, 80 * 1024, lab.env(IL2WATCH_BURST="0"))
    assert failed.returncode == 1 and one_line(failed.stderr).endswith(
        "free space or move IL2WATCH_DB, then poll again"
    )
    during = sum(lab.posted()[pmid] for pmid in [NEW, *arrivals])
    assert 0 < during < 10, "the disk filled up between posts"
    assert integrity(lab.db) == "ok"
    assert last_poll_status(lab) in ("error", "interrupted"), "a poll that died of a full disk is not running"
    lab.poll(IL2WATCH_BURST="0")
    assert [lab.posted()[pmid] for pmid in [NEW, *arrivals]] == [1] * 10
    assert {state for _, state, *_ in lab.rows()["outbox"]} == {"sent"}
    assert "running" not in [run["status"] for run in lab.runs()]


# ---------------------------------------------------------------- corrupt


def test_a_corrupt_file_is_named_left_alone_and_rebuilt_from_the_channel_once_moved_aside(lab):
    lab.poll()  # NEW is posted
    lab.db.write_bytes(b"SQLite format 2\x00" + b"\x13\x37" * 4000)  # overwritten by something else
    before = digest(lab.db)
    lab.arrive("41000002")
    said = (
        f"the library {lab.db} is not a readable SQLite database (corrupt?): move it aside; il2watch rebuilds what "
        "it posted from the Slack channel"
    )
    failed = lab.cli("poll")
    assert failed.returncode == 1 and one_line(failed.stderr) == f"il2watch: poll failed: {said}"
    status = lab.cli("status")
    assert status.returncode == 1 and one_line(status.stderr) == f"il2watch: {said}"
    assert digest(lab.db) == before, "a corrupt library is not written to"
    assert lab.posted()["41000002"] == 0
    shutil.move(lab.db, lab.folder / "library.db.corrupt")  # what the message says to do
    recovered = lab.cli("poll")
    assert recovered.returncode == 0, recovered.stderr
    counts = lab.posted()
    assert counts[NEW] == 1 and counts["41000002"] == 1 and set(counts.values()) == {1}
    assert len(lab.slack.posts_with_metadata("il2watch_note")) == 2, "no second baseline"


@pytest.mark.parametrize("lost", [False, True], ids=["library kept", "library lost"])
def test_a_rebuilt_library_posts_what_arrived_meanwhile_but_not_an_old_paper_newly_citing(lab, lost):
    """The documented limit of a rebuild: the channel says what was posted and up to which entry date each
    watch had looked, not what else the library knew, so an old paper found anew is taken for baseline."""
    lab.poll()  # NEW is posted
    if lost:
        lab.db.unlink()
    lab.arrive("41000002")  # entered PubMed today: after the watermark
    lab.world.cite(R.UNRELATED_PMID, R.REVIEW_PMID)  # entered months ago, cites the review only now
    lab.poll()
    counts = lab.posted()
    assert counts[NEW] == 1 and counts["41000002"] == 1 and set(counts.values()) == {1}
    assert counts[R.UNRELATED_PMID] == (0 if lost else 1)
    assert len(lab.slack.posts_with_metadata("il2watch_note")) == 2, "no second baseline"


# A damaged page inside a table (the header and schema intact) is met by a read outside Library.transaction():
# sqlite3.DatabaseError escapes poll_once, the CLI's last line of defence prints "failed unexpectedly:
# DatabaseError: database disk image is malformed", the worker's poll_job (which catches PollError only) lets
# it reach APScheduler, and the run stays "running", so consecutive failures never raise the alert.
@pytest.mark.parametrize("table", ["papers", "reasons"])
def test_a_damaged_page_is_named_like_a_corrupt_file(lab, table):
    with sqlite3.connect(lab.db) as conn:
        [page] = conn.execute("select max(pageno) from dbstat where name = ? and pagetype = 'leaf'", [table]).fetchone()
    with open(lab.db, "r+b") as handle:
        handle.seek((page - 1) * 4096)
        handle.write(b"\xff" * 4096)
    failed = lab.cli("poll")
    assert failed.returncode == 1
    assert one_line(failed.stderr) == (
        f"il2watch: poll failed: the library {lab.db} is not a readable SQLite "
        f"database (corrupt?): move it aside; il2watch rebuilds what it posted "
        f"from the Slack channel"
    )


# ---------------------------------------------------------------- locked (last: it collects the fixture)


def test_a_locked_library_fails_the_poll_after_the_busy_timeout_and_keeps_nothing(locked_poll):
    lab = locked_poll.lab
    status = lab.cli("status")  # readers are not blocked: WAL lets them read the last committed state
    assert status.returncode == 0 and "Library: 15 papers" in status.stdout
    out, err = locked_poll.process.communicate(timeout=BUSY_TIMEOUT + 20)
    waited = time.monotonic() - locked_poll.started
    assert locked_poll.process.returncode == 1 and out == ""
    assert one_line(err) == (
        f"il2watch: poll failed: the library {lab.db} is locked by another process: is another il2watch writing to it?"
    )
    assert waited >= BUSY_TIMEOUT - 1, "it waited for the lock before giving up"
    locked_poll.blocker.rollback()
    assert lab.rows() == locked_poll.before and lab.posted()[NEW] == 0
    recovered = lab.cli("poll")
    assert recovered.returncode == 0 and lab.posted()[NEW] == 1
