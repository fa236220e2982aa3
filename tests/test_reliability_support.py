"""What the reliability tests share: one il2watch installation against the stand-ins, and ways to look at it.

No tests live here. ``Lab`` is a PubMed world served by the NCBI stand-in, a Slack stand-in with the lab's
channel, a real SQLite library in a temporary folder and the settings that tie them together; it polls
in-process (``poll_once``) or runs ``il2watch`` as a subprocess, and reads back what Slack received and
what the library holds. The NCBI stand-in counts its rate window in 50 ms instead of a second, and the
in-process polls use a limiter to match: NCBI's rate is tested in test_poll.py, and here it would only
make every poll queue behind the previous test's budget.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from il2watch.config import Settings, load_settings
from il2watch.eutils import Eutils, RateLimiter, from_settings
from il2watch.service import PollReport, poll_once
from tests.data import records as R
from tests.data.records import build_world
from tests.stand_ins.eutils import EutilsStandIn
from tests.stand_ins.pubmed_world import PubMedWorld, Record, record
from tests.stand_ins.slack_api import SlackStandIn
from tests.support import settings_env, subprocess_env

REPO = Path(__file__).resolve().parent.parent
CHANNEL = "C0PAPERS1"
RATE_WINDOW = 0.05  # seconds: the stand-in's rate window, and the in-process limiter's period
# Tables whose rows a poll writes; "runs" and "lease" record the attempt itself and are left out.
CONTENT_TABLES = {
    "papers": "paper",
    "reasons": "watch, paper, kind",
    "outbox": "key, state, kind, papers, ts",
    "claims": "channel, paper, key",
    "watches": "id, horizon, baseline_at, restored",
    "state": "key, value",
}


@dataclasses.dataclass
class Lab:
    world: PubMedWorld
    ncbi: EutilsStandIn
    slack: SlackStandIn
    folder: Path
    extra: dict[str, str]
    query_matches: list[str] = dataclasses.field(default_factory=lambda: list(R.ENGINEERED_IL2_MATCHES))

    # ------------------------------------------------------------ settings

    def env(self, **extra: str) -> dict[str, str]:
        """The environment variables of this installation, with ``extra`` over them."""
        return settings_env(self.folder, self.ncbi, self.slack, **{**self.extra, **extra})

    def start_from(self, library: Path) -> Lab:
        """Use a copy of ``library`` (closed, so whole in its one file) as this lab's library."""
        shutil.copyfile(library, self.db)
        return self

    def settings(self, **extra: str) -> Settings:
        return load_settings(self.env(**extra), self.folder)

    @property
    def db(self) -> Path:
        return self.folder / "library.db"

    # ------------------------------------------------------------ running il2watch

    def eutils(self, settings: Settings) -> Eutils:
        """The client ``make_eutils`` builds from these settings, with a limiter matching the stand-in's window."""
        return from_settings(settings, limiter=RateLimiter(10, period=RATE_WINDOW * 1.5))  # a margin for jitter

    def poll(self, settings: Settings | None = None, **extra: str) -> PollReport:
        settings = settings or self.settings(**extra)
        return poll_once(settings, out=lambda _: None, eutils=self.eutils(settings))

    def cli(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60, **options: Any
    ) -> subprocess.CompletedProcess:
        """``il2watch <args>`` as a subprocess in the lab's folder (so a stray relative path lands there)."""
        environment = subprocess_env(PYTHONPATH=str(REPO), **(env if env is not None else self.env()))
        return subprocess.run(
            [sys.executable, "-m", "il2watch", *args],
            cwd=self.folder,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            **options,
        )

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        environment = subprocess_env(PYTHONPATH=str(REPO), **(env if env is not None else self.env()))
        return subprocess.Popen(
            [sys.executable, "-m", "il2watch", *args],
            cwd=self.folder,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    # ------------------------------------------------------------ the world changes

    def arrive(
        self,
        pmid: str,
        title: str = "A CD25-biased IL-2 mutein expands regulatory T cells",
        *,
        query_match: bool = False,
        **fields: Any,
    ) -> Record:
        """A new paper enters PubMed today and cites the review (and, with ``query_match``, matches the query)."""
        rec = record(pmid, title=title, entry_date=date.today(), **fields)
        self.world.add(rec)
        self.world.cite(pmid, R.REVIEW_PMID)
        if query_match:
            self.query_matches.append(pmid)
            self.world.add_query(R.ENGINEERED_IL2_QUERY, self.query_matches)
        return rec

    # ------------------------------------------------------------ looking

    def posted(self) -> Counter:
        """How many times each PMID reached the channel, as a post of its own or in a digest."""
        pmids = [m.metadata["event_payload"]["pmid"] for m in self.slack.posts_with_metadata("il2watch_paper")]
        for digest in self.slack.posts_with_metadata("il2watch_digest"):
            pmids += digest.metadata["event_payload"]["pmids"]
        return Counter(pmids)

    def channel_messages(self) -> list:
        return self.slack.messages(CHANNEL)

    def rows(self) -> dict[str, set[tuple]]:
        """Everything a poll writes, table by table, read through a connection of the test's own."""
        return library_rows(self.db)

    def runs(self) -> list[dict[str, Any]]:
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)) as conn:
            cursor = conn.execute("select id, status, error from runs order by id")
            return [dict(zip(("id", "status", "error"), row)) for row in cursor]


@contextlib.contextmanager
def baseline_library(folder: Path, **extra: str) -> Iterator[Path]:
    """A library after a clean first poll (two baseline notes, the three newest papers posted), made once so
    that tests which copy it start from there without paying for the baseline poll again."""
    with open_lab(folder, **extra) as lab:
        lab.poll()
    yield lab.db


def library_rows(path: Path) -> dict[str, set[tuple]]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return {
            table: set(conn.execute(f"select {columns} from {table}").fetchall())
            for table, columns in CONTENT_TABLES.items()
        }


def integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


@contextlib.contextmanager
def open_lab(folder: Path, world: PubMedWorld | None = None, **extra: str) -> Iterator[Lab]:
    """The stand-ins running for one test, and the lab's settings (``extra`` are environment variables)."""
    world = world or build_world()
    # These tests are about faults, not pacing (test_pubmed and test_poll prove the limit): a 50 ms window is
    # too tight to enforce on a loaded machine, where arrival times bunch up, so the stand-in only counts.
    with EutilsStandIn(world, rate_window=RATE_WINDOW, enforce_rate_limit=False) as ncbi, SlackStandIn() as slack:
        slack.add_channel("il2-papers", channel_id=CHANNEL)
        yield Lab(world, ncbi, slack, folder, dict(extra))


def one_line(stderr: str) -> str:
    """The last thing il2watch said on stderr, checked to be a single line after any log lines."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "il2watch said nothing on stderr"
    assert not any(line.startswith("Traceback") for line in lines), stderr
    return lines[-1]
