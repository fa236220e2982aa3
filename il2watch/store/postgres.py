"""The library on PostgreSQL, for platforms where processes share no disk (``DATABASE_URL``).

psycopg 3 with a small pool per process and URL; the same tables and versioned migrations as the SQLite
backend; text search through a weighted ``tsvector`` column with a GIN index; the poller lease as a session
advisory lock, so a worker whose process dies loses it at once. A connection that drops (a server restart,
a network fault) fails the statement with one line and is replaced at the next checkout, so the next poll
runs. ``sslmode`` and every other connection parameter come from the URL; the password never reaches a
message (``il2watch.store.describe`` names a database by host, port and name only).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from il2watch import redact
from il2watch.intel.synonyms import Synonyms, synonyms_for
from il2watch.library import (
    RERANK_EXTRA,
    SEARCH_WINDOW,
    TABLE_KEYS,
    Group,
    LeaseInfo,
    Library,
    LibraryError,
    SearchQuery,
    parse_search,
    utcnow,
)
from il2watch.store import describe

log = logging.getLogger("il2watch.library")

POOL_SIZE = 5  # connections per process: a poll, the heartbeat, and a few commands at once
POOL_WAIT = 5.0  # seconds a Library waits for a connection before saying why there is none
CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise
LOCK_CLASS = 0x112  # first half of il2watch's advisory lock keys; the second is the lease's name
SEARCH_CONFIG = "il2watch"
RANK_WEIGHTS = "{0.1, 0.2, 0.3, 1.0}"  # journal, authors, abstract, title: as SQLite's bm25 10, 3, 2, 1
RANK_SCALE = 10.0  # ts_rank is about a tenth of bm25's size; scaled so relevance nudges both alike

# ---------------------------------------------------------------- schema

# Both indexes split text at every character that is not a letter or a digit; PostgreSQL's parser would
# keep "CD4/CD8" or "2.5" whole, so ASCII punctuation becomes space first (translate() needs no locale).
_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_SPACES = " " * len(_PUNCTUATION)


def _words(column: str) -> str:
    punctuation = _PUNCTUATION.replace("'", "''")
    return f"translate(coalesce({column}, ''), '{punctuation}', '{_SPACES}')"


def _weighted(column: str, weight: str) -> str:
    return f"setweight(to_tsvector('{SEARCH_CONFIG}', {_words(column)}), '{weight}')"


T = 'text collate "C"'  # text compares and sorts byte by byte, as in SQLite, whatever the server's locale

SCHEMA = f"""
create extension if not exists unaccent;
create text search dictionary il2watch_stem (template = snowball, language = english);
create text search configuration {SEARCH_CONFIG} (copy = simple);
alter text search configuration {SEARCH_CONFIG}
    alter mapping for asciiword, word, numword, asciihword, hword, numhword, hword_asciipart, hword_part,
    hword_numpart with unaccent, il2watch_stem;

create table papers (
    paper {T} primary key, pmid {T}, ppr {T}, openalex {T}, epmc {T}, title {T} not null, title_text {T},
    abstract_text {T}, authors_text {T},
    journal {T}, entry_date {T}, pub_year integer, doi {T}, pmcid {T}, record {T}, axis {T}, molecules {T},
    flags {T}, relevance double precision, is_il2 integer, stored_at {T}, updated_at {T},
    seq bigint generated always as identity,
    search tsvector generated always as (
        {_weighted("title_text", "A")} || {_weighted("abstract_text", "B")} ||
        {_weighted("authors_text", "C")} || {_weighted("journal", "D")}
    ) stored
);
-- the vector stays in the row (compressed) rather than in TOAST: a search reads it for every match it ranks
alter table papers alter column search set storage main;
create index papers_entry_date on papers (entry_date);
create index papers_pmid on papers (pmid);
create index papers_doi on papers (doi);
create index papers_axis on papers (axis);
create index papers_seq on papers (seq);
create index papers_search on papers using gin (search);

create table reasons (
    watch {T}, paper {T}, kind {T}, score integer, rank integer, first_seen {T}, last_seen {T}, run_id bigint,
    primary key (watch, paper, kind)
);
create index reasons_paper on reasons (paper);
create table paper_ids (token {T} primary key, paper {T});
create index paper_ids_paper on paper_ids (paper);
create table sightings (
    paper {T}, watch {T}, kind {T}, source {T}, first_seen {T}, last_seen {T},
    primary key (paper, watch, kind, source)
);
create index sightings_watch_source on sightings (watch, source);
create table watches (
    id {T} primary key, pmid {T}, query {T}, label {T}, channel {T}, source {T}, added_by {T}, added_at {T},
    removed_at {T}, baseline_at {T}, horizon {T}, restored integer
);
create table runs (
    id bigint generated by default as identity primary key, kind {T}, started_at {T}, finished_at {T},
    status {T}, error {T}, requests integer, candidates integer, new integer, stored integer, queued integer,
    posted integer, holder {T}
);
create table state (key {T} primary key, value {T});

create table outbox (
    id bigint generated by default as identity primary key, key {T}, channel {T}, kind {T}, papers {T},
    payload {T}, state {T}, ts {T}, thread_ts {T}, attempts integer, last_error {T}, created_at {T},
    sent_at {T}, run_id bigint
);
create unique index outbox_key on outbox (key);
create index outbox_state_channel on outbox (state, channel);
create table claims (channel {T}, paper {T}, key {T}, primary key (channel, paper));
create index claims_key on claims (key);
create table feedback (paper {T}, "user" {T}, value integer, at {T}, primary key (paper, "user"));
create table saved ("user" {T}, paper {T}, at {T}, primary key ("user", paper));
create table lease (
    name {T} primary key, holder {T}, acquired_at {T}, heartbeat_at double precision, expires_at double precision
);

create table handled_requests (key {T} primary key, at double precision);
create index handled_requests_at on handled_requests (at);

create table unreadable (pmid {T} primary key, reason {T}, first_failed {T}, last_tried {T}, attempts integer);
create table insights (
    paper {T} primary key, insight {T}, record_key {T}, evidence_key {T}, summariser {T}, computed_at {T}
);
"""

# The SQLite migrations that SCHEMA stands for: a new database is created at this version in one step.
BASELINE = (
    "m001_papers_and_reasons",
    "m002_delivery",
    "m003_tag_indexes",
    "m004_unreadable_records",
    "m005_handled_requests",
    "m006_stored_insights",
    "m007_paper_identity",
)


def m008_followups(db: PgDatabase) -> None:
    """What happened to posted papers since, each told once (``followups``), and who turned direct messages
    about their saved papers off (``notify``)."""
    db.execute(
        f"create table followups (id bigint generated by default as identity primary key, key {T} not null, "
        f"paper {T}, kind {T}, notice {T}, source {T}, told integer, how {T}, found_at {T})"
    )
    db.execute("create unique index followups_key on followups (key)")
    db.execute("create index followups_paper on followups (paper)")
    db.execute(f'create table notify ("user" {T} primary key, enabled integer, at {T})')


# Migrations after the baseline, in order: (name, function taking the PgDatabase). Each has a SQLite twin of
# the same name in il2watch.store.sqlite; docs/architecture.md says how to add one.
MIGRATIONS: list[tuple[str, Callable[[PgDatabase], None]]] = [("m008_followups", m008_followups)]


def migration_names() -> tuple[str, ...]:
    """Every version of the schema this il2watch knows, oldest first."""
    return BASELINE + tuple(name for name, _ in MIGRATIONS)


def apply_migrations(db: PgDatabase) -> None:
    """Bring the schema up to date, one process at a time (a transaction-scoped advisory lock)."""
    with db.conn.transaction():
        db.execute("select pg_advisory_xact_lock(?, 0)", [LOCK_CLASS])
        exists = db.execute("select to_regclass('il2watch_migrations') is not null").fetchone()[0]
        if not exists:  # a new database: the baseline at once, recorded as applied, then what came after it
            db.execute("create table il2watch_migrations (name text primary key, applied_at text)")
            db.conn.execute(SCHEMA.encode())  # many statements: the simple protocol, no placeholders
            db.executemany(
                "insert into il2watch_migrations (name, applied_at) values (?, ?)",
                [(name, utcnow()) for name in BASELINE],
            )
        applied = {row[0] for row in db.execute("select name from il2watch_migrations").fetchall()}
        for name, migrate in MIGRATIONS:
            if name not in applied:
                migrate(db)
                db.execute("insert into il2watch_migrations (name, applied_at) values (?, ?)", [name, utcnow()])


# ---------------------------------------------------------------- connections


@functools.lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """The library's SQL (``?`` placeholders) as psycopg takes it (``%s``, a literal ``%`` doubled)."""
    out, quoted = [], False
    for char in sql:
        if char == "'":
            quoted = not quoted
        if char == "%":
            out.append("%%")
        elif char == "?" and not quoted:
            out.append("%s")
        else:
            out.append(char)
    return "".join(out)


class PgDatabase:
    """A psycopg connection that speaks the library's SQL and turns every database error into one line."""

    def __init__(self, conn: psycopg.Connection, name: str):
        self.conn, self.name = conn, name

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            return self.conn.execute(_placeholders(sql), list(params))
        except psycopg.Error as error:
            raise LibraryError(describe_error(self.name, error)) from None

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            with self.conn.transaction(), self.conn.cursor() as cursor:
                cursor.executemany(_placeholders(sql), rows)
        except psycopg.Error as error:
            raise LibraryError(describe_error(self.name, error)) from None


def connection_info(location: str, **defaults: Any) -> str:
    """The URL as libpq takes it, with il2watch's defaults where the URL says nothing (sslmode, timeouts
    and keepalives in the URL win)."""
    try:
        params = conninfo_to_dict(location.strip())
    except psycopg.Error as error:
        raise LibraryError(f"the library URL is not a PostgreSQL URL libpq can read: {_first_line(error)}") from None
    wanted = {
        "connect_timeout": CONNECT_TIMEOUT,
        "application_name": "il2watch",
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        **defaults,
    }
    for key, value in wanted.items():
        params.setdefault(key, value)
    return make_conninfo("", **params)


_pools: dict[str, ConnectionPool] = {}
_migrated: set[str] = set()
_pools_lock = threading.Lock()


def _pool(location: str, name: str) -> ConnectionPool:
    """This process's pool for ``location``; the first time, one direct attempt first, so that a server that
    cannot be reached is said at once rather than after the pool's wait."""
    with _pools_lock:
        pool = _pools.get(location)
        if pool is None:
            why = reachable(location)
            if why:
                raise LibraryError(
                    f"cannot reach the library {name}: {why}: check DATABASE_URL (or IL2WATCH_DB) "
                    f"and that the server is up"
                )
            pool = ConnectionPool(
                connection_info(location),
                min_size=1,
                max_size=POOL_SIZE,
                # no server-side prepared statements: a generic plan cannot see how common a searched word is
                # (and a pooler in front of the server may not keep them)
                kwargs={"autocommit": True, "prepare_threshold": None},
                check=ConnectionPool.check_connection,  # a connection a restart killed is replaced, not handed out
                timeout=POOL_WAIT,
                name="il2watch",
                open=False,
            )
            pool.open(wait=False)
            _pools[location] = pool
        return pool


def close_pools(location: str | None = None) -> None:
    """Close this process's connections (to one database, or to all): at exit, and in tests."""
    with _pools_lock:
        chosen = [location] if location is not None else list(_pools)
        closing = [_pools.pop(name) for name in chosen if name in _pools]
        _migrated.difference_update(chosen)
    for pool in closing:
        pool.close(timeout=2)
    for key in [key for key in _lease_sessions if location is None or key[0] == location]:
        with contextlib.suppress(psycopg.Error):
            _lease_sessions.pop(key).close()


atexit.register(close_pools)


def reachable(location: str, timeout: int = 5) -> str:
    """Why a connection cannot be made, in one line; "" when it can (one attempt, no pool)."""
    try:
        with psycopg.connect(connection_info(location, connect_timeout=timeout)):
            return ""
    except psycopg.Error as error:
        return redact.scrub(_first_line(error))


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return redact.scrub(text)


def describe_error(name: str, error: psycopg.Error) -> str:
    """One actionable line for the ways PostgreSQL can refuse us (never the password)."""
    text = _first_line(error)
    if isinstance(error, pg_errors.UniqueViolation):
        return f"the library {name} already holds that row ({text})"
    if isinstance(error, pg_errors.InsufficientPrivilege):
        return f"the library {name} refused il2watch's role ({text}): `il2watch doctor` lists the privileges it needs"
    if isinstance(error, pg_errors.DiskFull) or "No space left" in text:
        return (
            f"the library {name} cannot grow (the server's disk is full): free space or a bigger plan, then poll again"
        )
    if isinstance(error, (pg_errors.LockNotAvailable, pg_errors.DeadlockDetected)) or "lock timeout" in text:
        return f"the library {name} is locked by another process: is another il2watch writing to it?"
    if isinstance(error, pg_errors.ReadOnlySqlTransaction):
        return f"the library {name} is read-only (a standby or a read-only role): point DATABASE_URL at the primary"
    if isinstance(error, psycopg.OperationalError):
        return f"lost the connection to the library {name} ({text}); the next poll reconnects"
    return f"the library {name} failed: {text}"


# ---------------------------------------------------------------- search


def tsquery_text(query: SearchQuery) -> str:
    """A tsquery for ``to_tsquery``: wanted groups AND-ed, excluded ones AND NOT-ed, terms OR-ed, a phrase's
    tokens adjacent, a prefix marked. Tokens are letters and digits only, so nothing a user types is
    tsquery syntax; "" when nothing is wanted."""
    wanted = [text for text in map(_tsquery_group, query.wanted) if text]
    if not wanted:
        return ""
    left_out = [text for text in map(_tsquery_group, query.excluded) if text]
    return " & ".join(wanted + [f"!{text}" for text in left_out])


def _tsquery_group(group: Group) -> str:
    terms = []
    for term in group.terms:
        tokens = list(term.tokens)
        if not tokens:
            continue
        if term.prefix:
            tokens[-1] += ":*"
        terms.append("(" + " <-> ".join(tokens) + ")")
    return "(" + " | ".join(terms) + ")" if terms else ""


# ---------------------------------------------------------------- the lease: a session advisory lock

_lease_sessions: dict[tuple[str, str, str], psycopg.Connection] = {}
_lease_lock = threading.Lock()
STALE_WAIT = 3.0  # seconds to wait for a stale holder's session to end once it was told to


def _lock_key(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


# ---------------------------------------------------------------- the backend


class PostgresLibrary(Library):
    """One pooled connection to the library database, borrowed until ``close()``."""

    def __init__(self, location: str | Path, *, migrate: bool = True):
        self.location = str(location).strip()
        self.name = describe(self.location)
        self._pool = _pool(self.location, self.name)
        try:
            conn = self._pool.getconn()
        except PoolTimeout:
            why = reachable(self.location)
            if why:
                raise LibraryError(
                    f"cannot reach the library {self.name}: {why}: check DATABASE_URL (or IL2WATCH_DB) "
                    f"and that the server is up"
                ) from None
            raise LibraryError(
                f"the library {self.name} had no free connection for {POOL_WAIT:.0f}s (all {POOL_SIZE} in use)"
            ) from None
        self.db = PgDatabase(conn, self.name)
        self._open = True
        if migrate and self.location not in _migrated:
            try:
                apply_migrations(self.db)
            except (LibraryError, psycopg.Error) as error:
                self.close()
                why = str(error) if isinstance(error, LibraryError) else describe_error(self.name, error)
                raise LibraryError(f"could not bring the schema of {self.name} up to date: {why}") from None
            _migrated.add(self.location)

    def close(self) -> None:
        if self._open:
            self._open = False
            self._pool.putconn(self.db.conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Library]:
        try:
            with self.db.conn.transaction():  # nested: a savepoint
                yield self
        except psycopg.Error as error:
            raise LibraryError(describe_error(self.name, error)) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.db.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.db.executemany(sql, rows)

    def _write(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.execute(sql, params)  # autocommit outside a transaction, part of it inside

    def applied_migrations(self) -> list[str]:
        """The schema versions recorded in this database ([] when il2watch never created its schema)."""
        if not self.execute("select to_regclass('il2watch_migrations') is not null").fetchone()[0]:
            return []
        return [row[0] for row in self.execute("select name from il2watch_migrations order by name").fetchall()]

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        described = self.execute(
            "select column_name, data_type, is_identity from information_schema.columns "
            "where table_schema = current_schema() and table_name = ?",
            [table],
        ).fetchall()
        kinds: dict[str, str] = {column: kind for column, kind, _ in described}
        identity = [column for column, _, is_identity in described if is_identity == "YES" and column != "seq"]
        chosen = [i for i, column in enumerate(columns) if column in kinds]
        names = [columns[i] for i in chosen]
        converted = [[_as(kinds[columns[i]], row[i]) for i in chosen] for row in rows]
        with self.transaction():
            super().copy_rows(table, names, converted)
            for column in identity:  # new ids continue after the copied ones
                self.execute(
                    f"select setval(pg_get_serial_sequence('{table}', '{column}'), "
                    f"coalesce((select max({column}) from {table}), 0) + 1, false)"
                )

    # ------------------------------------------------------------ search and tags

    def search(
        self, text: str, *, limit: int = 10, offset: int = 0, synonyms: Synonyms | None = None
    ) -> tuple[list[str], int]:
        """ts_rank with the title weighing most, over the newest SEARCH_WINDOW matches, then relevance. One
        pass: the window's size is the count, so the matches are read once (each reads its tsvector)."""
        query = tsquery_text(parse_search(text, synonyms if synonyms is not None else synonyms_for(())))
        if not query:
            return [], 0
        wanted = offset + limit
        best = self.execute(
            f"select paper, score, relevance, count(*) over () from (select paper, relevance, "
            f"-{RANK_SCALE} * ts_rank('{RANK_WEIGHTS}', search, q) as score "
            f"from papers, to_tsquery('{SEARCH_CONFIG}', ?) as q where search @@ q order by seq desc limit ?) "
            f"as newest order by score limit ?",
            [query, SEARCH_WINDOW, wanted + RERANK_EXTRA],
        ).fetchall()
        if not best:
            return [], 0
        ranked = sorted(best, key=lambda r: r[1] - (r[2] or 0.0) / 50.0)
        return [key for key, _, _, _ in ranked[offset:wanted]], int(best[0][3])

    def _has_molecule(self) -> str:
        return (
            "exists (select 1 from json_array_elements_text(cast(papers.molecules as json)) as m(value) "
            "where lower(m.value) = lower(?))"
        )

    def _has_flag(self) -> str:
        return (
            "exists (select 1 from json_array_elements_text(cast(papers.flags as json)) as f(value) where f.value = ?)"
        )

    def known_molecules(self) -> list[str]:
        rows = self.execute(
            "select value from (select distinct m.value from papers, "
            "json_array_elements_text(cast(papers.molecules as json)) as m(value)) as known "
            'order by value collate "C"'
        ).fetchall()
        return [r[0] for r in rows]

    # ------------------------------------------------------------ handled Slack requests

    def first_handling(self, key: str, *, now: float, keep: float, wait: float = 1.0) -> bool:
        with self.transaction():
            self.execute(f"set local lock_timeout = {max(1, int(wait * 1000))}")
            self.execute("delete from handled_requests where at < ?", [now - keep])
            cursor = self.execute(
                "insert into handled_requests (key, at) values (?, ?) on conflict (key) do nothing", [key, now]
            )
            return cursor.rowcount == 1

    # ------------------------------------------------------------ the poller lease

    def acquire_lease(self, name: str, holder: str, *, now: float, ttl: float) -> bool:
        """The advisory lock, held by a session of its own for as long as the lease: it ends with the
        process (a kill frees it at once) and, through TCP keepalives, with a machine that vanished. A
        holder whose heartbeat stopped for longer than ``ttl`` (a frozen process) has its session ended."""
        key = (self.location, name, holder)
        with _lease_lock:
            session = _lease_sessions.get(key)
            if session is not None:
                if self._beat(session, name, holder, ttl):
                    return True
                self._drop_session(key)
            try:
                session = self._lease_session(ttl)
            except psycopg.Error as error:
                raise LibraryError(describe_error(self.name, error)) from None
            try:
                got = self._try_lock(session, name)
                if not got and self._end_stale_holder(name, holder):
                    deadline = time.monotonic() + STALE_WAIT
                    while not got and time.monotonic() < deadline:
                        time.sleep(0.05)
                        got = self._try_lock(session, name)
                if not got:
                    session.close()
                    return False
                session.execute(
                    "insert into lease (name, holder, acquired_at, heartbeat_at, expires_at) "
                    "values (%s, %s, %s, extract(epoch from clock_timestamp()), "
                    "extract(epoch from clock_timestamp()) + %s) on conflict (name) do update set "
                    "holder = excluded.holder, acquired_at = excluded.acquired_at, "
                    "heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at",
                    [name, holder, utcnow(), ttl],
                )
            except psycopg.Error as error:
                session.close()
                raise LibraryError(describe_error(self.name, error)) from None
            _lease_sessions[key] = session
            return True

    def renew_lease(self, name: str, holder: str, *, now: float, ttl: float) -> bool:
        key = (self.location, name, holder)
        with _lease_lock:
            session = _lease_sessions.get(key)
            if session is None:
                return False
            if self._beat(session, name, holder, ttl):
                return True
            self._drop_session(key)
            return False

    def release_lease(self, name: str, holder: str) -> None:
        key = (self.location, name, holder)
        with _lease_lock:
            self._drop_session(key)
        self._write("update lease set holder = '', expires_at = 0 where name = ? and holder = ?", [name, holder])

    def lease_info(self, name: str, *, now: float) -> LeaseInfo | None:
        row = self.execute(
            "select holder, expires_at - extract(epoch from clock_timestamp()) from lease where name = ? "
            "and holder != '' and exists (select 1 from pg_locks where locktype = 'advisory' and granted "
            "and database = (select oid from pg_database where datname = current_database()) "
            "and classid = ? and objid = ? and objsubid = 2)",
            [name, LOCK_CLASS, _lock_key(name)],
        ).fetchone()
        return LeaseInfo(row[0], float(row[1])) if row else None

    def lease_problem(self, name: str, holder: str, *, now: float) -> str:
        row = self.execute("select holder from lease where name = ?", [name]).fetchone()
        current = row[0] if row else ""
        if current and current != holder:
            return f"worker {current} took over the poller lease; the rest is left to it"
        session = _lease_sessions.get((self.location, name, holder))
        if session is None or session.closed or session.broken:
            return "this process no longer holds the poller lease"
        return ""

    def _lease_session(self, ttl: float) -> psycopg.Connection:
        """A connection of its own, with keepalives on both ends that give up within half a lease."""
        idle, interval, count = max(1, int(ttl / 4)), max(1, int(ttl / 12)), 3
        conn = psycopg.connect(
            connection_info(
                self.location,
                keepalives_idle=idle,
                keepalives_interval=interval,
                keepalives_count=count,
                tcp_user_timeout=int(ttl * 500),
                application_name="il2watch lease",
            ),
            autocommit=True,
        )
        conn.execute(
            "select set_config('tcp_keepalives_idle', %s, false), set_config('tcp_keepalives_interval', %s, false),"
            " set_config('tcp_keepalives_count', %s, false), set_config('tcp_user_timeout', %s, false)",
            [str(idle), str(interval), str(count), str(int(ttl * 500))],
        )
        return conn

    def _try_lock(self, session: psycopg.Connection, name: str) -> bool:
        row = session.execute("select pg_try_advisory_lock(%s, %s)", [LOCK_CLASS, _lock_key(name)]).fetchone()
        return bool(row and row[0])

    def _beat(self, session: psycopg.Connection, name: str, holder: str, ttl: float) -> bool:
        """The heartbeat, written through the lease's own session: False when that session is gone."""
        try:
            session.execute(
                "update lease set holder = %s, heartbeat_at = extract(epoch from clock_timestamp()), "
                "expires_at = extract(epoch from clock_timestamp()) + %s where name = %s",
                [holder, ttl, name],
            )
            return True
        except psycopg.Error:
            return False

    def _end_stale_holder(self, name: str, holder: str) -> bool:
        """End the session of a holder whose heartbeat lapsed (frozen, or on a machine that vanished before
        the server noticed). True when one was told to end."""
        row = self.execute(
            "select holder, l.pid from lease, pg_locks as l where name = ? and holder != ? "
            "and expires_at < extract(epoch from clock_timestamp()) and l.locktype = 'advisory' and l.granted "
            "and l.database = (select oid from pg_database where datname = current_database()) "
            "and l.classid = ? and l.objid = ? and l.objsubid = 2",
            [name, holder, LOCK_CLASS, _lock_key(name)],
        ).fetchone()
        if not row:
            return False
        log.warning("the lease holder %s stopped beating; ending its database session", row[0])
        return bool(self.execute("select pg_terminate_backend(?)", [row[1]]).fetchone()[0])

    def _drop_session(self, key: tuple[str, str, str]) -> None:
        session = _lease_sessions.pop(key, None)
        if session is None:
            return
        with contextlib.suppress(psycopg.Error):
            session.execute("select pg_advisory_unlock(%s, %s)", [LOCK_CLASS, _lock_key(key[1])])
        with contextlib.suppress(psycopg.Error):
            session.close()

    # ------------------------------------------------------------ doctor

    def privileges_missing(self) -> list[str]:
        """What il2watch's role may not do here: read and write each table, create in the schema."""
        missing = []
        for table in ("il2watch_migrations", *TABLE_KEYS):
            if self.execute("select to_regclass(?) is null", [table]).fetchone()[0]:
                continue  # not created yet: creating it needs the schema privilege below
            lacking = [
                privilege
                for privilege in ("select", "insert", "update", "delete")
                if not self.execute("select has_table_privilege(?, ?)", [table, privilege]).fetchone()[0]
            ]
            if lacking:
                missing.append(f"{', '.join(lacking)} on {table}")
        if not self.execute("select has_schema_privilege(current_schema(), 'create')").fetchone()[0]:
            missing.append("create on schema " + str(self.execute("select current_schema()").fetchone()[0]))
        return missing


def _as(kind: str, value: Any) -> Any:
    """A value from SQLite (which stores what it is given) in the type of a PostgreSQL column."""
    if value is None:
        return None
    if kind in ("integer", "bigint"):
        return int(value) if str(value).strip() else None
    if kind == "double precision":
        return float(value) if str(value).strip() else None
    if kind == "text" and not isinstance(value, str):
        return str(value)
    return value
