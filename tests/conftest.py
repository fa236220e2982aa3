"""Shared fixtures: the stand-in servers, real SQLite files and PostgreSQL databases, and an environment free
of proxies."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.data.records import build_world
from tests.stand_ins.eutils import EutilsStandIn
from tests.support import PROXY_VARIABLES, ncbi_client, settings_env


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    """slack_sdk and urllib read proxy variables (and slack_sdk ignores NO_PROXY): talk to 127.0.0.1 directly."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def world():
    return build_world()


@pytest.fixture
def ncbi_server(world):
    with EutilsStandIn(world) as server:
        yield server


@pytest.fixture
def ncbi(ncbi_server):
    """A client with its own limiter at NCBI's real rate and quick retries."""
    return ncbi_client(ncbi_server.base_url, ncbi_attempts=4)


@pytest.fixture
def slack_server():
    from tests.stand_ins.slack_api import SlackStandIn

    with SlackStandIn() as server:
        server.add_channel("il2-papers", channel_id="C0PAPERS1")
        yield server


@pytest.fixture
def make_settings(tmp_path, ncbi_server, database):
    from il2watch.config import load_settings

    def make(slack_server=None, **extra: str):
        return load_settings(settings_env(tmp_path, ncbi_server, slack_server, database, **extra), tmp_path)

    return make


# ---------------------------------------------------------------- the library's backends

TEST_DATABASE_URL = os.environ.get("IL2WATCH_TEST_DATABASE_URL", "")
NO_POSTGRES = (
    "PostgreSQL backend not tested: set IL2WATCH_TEST_DATABASE_URL to a server's URL "
    "(`bash .ci/postgres` starts one and prints it)"
)
BACKENDS = ("sqlite", "postgres")
# Run a test on both backends: @BOTH_BACKENDS, or pytestmark = BOTH_BACKENDS for a whole module.
BOTH_BACKENDS = pytest.mark.parametrize("database", BACKENDS, indirect=True)


def database_url(name: str) -> str:
    """The URL of database ``name`` on the test server."""
    import urllib.parse

    parts = urllib.parse.urlsplit(TEST_DATABASE_URL)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def admin_connection(url: str = ""):
    import psycopg

    return psycopg.connect(url or TEST_DATABASE_URL, autocommit=True)


def new_database() -> str:
    """A fresh, empty database on the test server (one per test: tests stay independent under xdist)."""
    name = f"il2watch_test_{uuid.uuid4().hex[:12]}"
    with admin_connection() as admin:
        admin.execute(f'create database "{name}"')
    return database_url(name)


def drop_database(url: str) -> None:
    from il2watch.store.postgres import close_pools

    close_pools(url)
    with admin_connection() as admin:
        admin.execute(f'drop database if exists "{url.rsplit("/", 1)[1]}" with (force)')


def lose_library(database: str) -> None:
    """Everything in the library gone, as after a lost disk or a new database: the file deleted, or every
    table emptied."""
    from pathlib import Path

    from il2watch.library import TABLE_KEYS

    if database.startswith("postgresql://"):
        with admin_connection(database) as conn:
            conn.execute(f"truncate {', '.join(TABLE_KEYS)} restart identity")
        return
    for suffix in ("", "-wal", "-shm"):
        Path(database + suffix).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def _worker_database():
    """One database for the tests of this process (each xdist worker has its own), emptied before each test."""
    if not TEST_DATABASE_URL:
        yield ""
        return
    url = new_database()
    yield url
    drop_database(url)


@pytest.fixture
def postgres_url(_worker_database):
    """A PostgreSQL library for one test: empty, its connections closed after it (skipped, saying why, when
    no server is given)."""
    if not _worker_database:
        pytest.skip(NO_POSTGRES)
    from il2watch.library import TABLE_KEYS

    with admin_connection(_worker_database) as conn:
        if conn.execute("select to_regclass('il2watch_migrations') is not null").fetchone()[0]:
            conn.execute(f"truncate {', '.join(TABLE_KEYS)} restart identity")
    yield _worker_database
    from il2watch.store.postgres import close_pools

    close_pools(_worker_database)


@pytest.fixture
def fresh_postgres_url():
    """A new, empty PostgreSQL database (no schema yet), dropped after the test."""
    if not TEST_DATABASE_URL:
        pytest.skip(NO_POSTGRES)
    url = new_database()
    yield url
    drop_database(url)


@pytest.fixture
def database(request, tmp_path):
    """Where the test's library is: a SQLite file by default; with BOTH_BACKENDS, also a fresh PostgreSQL
    database (skipped, saying why, when no server is given)."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield str(tmp_path / "library.db")
        return
    yield request.getfixturevalue("postgres_url")
