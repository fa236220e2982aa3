"""The library in a SQLite file, through sqlite-utils: WAL mode, versioned migrations, FTS5 search, and the
poller lease as a row renewed by a heartbeat.

This is the embedded default that needs no server. Its migrations are the schema's history; a migration
added here is added to ``il2watch.store.postgres`` under the same name (docs/architecture.md says how).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from il2watch.intel.synonyms import Synonyms, synonyms_for
from il2watch.lease import holder_is_dead
from il2watch.library import RERANK_EXTRA, SEARCH_WINDOW, LeaseInfo, Library, LibraryError, fts_query, utcnow

migrations = Migrations("il2watch")


# ---------------------------------------------------------------- schema


@migrations()
def m001_papers_and_reasons(db: sqlite_utils.Database) -> None:
    db.table("papers").create(
        {
            "pmid": str,
            "title": str,
            "title_text": str,
            "abstract_text": str,
            "authors_text": str,
            "journal": str,
            "entry_date": str,
            "pub_year": int,
            "doi": str,
            "pmcid": str,
            "record": str,  # the whole Paper as JSON
            "axis": str,
            "molecules": str,
            "flags": str,
            "relevance": float,
            "is_il2": int,
            "stored_at": str,
            "updated_at": str,
        },
        pk="pmid",
        not_null={"title"},
    )
    db.table("papers").create_index(["entry_date"])
    db.table("papers").create_index(["doi"])
    db.table("papers").enable_fts(
        ["title_text", "abstract_text", "authors_text", "journal"],
        create_triggers=True,
        tokenize="porter unicode61 remove_diacritics 2",
    )
    db.table("reasons").create(
        {
            "watch": str,
            "pmid": str,
            "kind": str,
            "score": int,
            "rank": int,
            "first_seen": str,
            "last_seen": str,
            "run_id": int,
        },
        pk=("watch", "pmid", "kind"),
    )
    db.table("reasons").create_index(["pmid"])
    db.table("watches").create(
        {
            "id": str,
            "pmid": str,
            "query": str,
            "label": str,
            "channel": str,
            "source": str,
            "added_by": str,
            "added_at": str,
            "removed_at": str,
            "baseline_at": str,  # when the first poll recorded what already existed
            "horizon": str,  # entry date (YYYY-MM-DD) up to which this watch has looked
            "restored": int,  # 1 when the state was rebuilt from the channel after a lost database
        },
        pk="id",
    )
    db.table("runs").create(
        {
            "id": int,
            "kind": str,
            "started_at": str,
            "finished_at": str,
            "status": str,
            "error": str,
            "requests": int,
            "candidates": int,
            "new": int,
            "stored": int,
            "queued": int,
            "posted": int,
            "holder": str,
        },
        pk="id",
    )
    db.table("state").create({"key": str, "value": str}, pk="key")


@migrations()
def m002_delivery(db: sqlite_utils.Database) -> None:
    db.table("outbox").create(
        {
            "id": int,
            "key": str,
            "channel": str,
            "kind": str,  # paper, digest, note, watch, abstract
            "pmids": str,  # JSON list
            "payload": str,  # JSON: what to render (reasons, note text, digest title…)
            "state": str,  # waiting (for a digest), due, sending (outcome unknown), sent, bundled, failed
            "ts": str,
            "thread_ts": str,
            "attempts": int,
            "last_error": str,
            "created_at": str,
            "sent_at": str,
            "run_id": int,
        },
        pk="id",
    )
    db.table("outbox").create_index(["key"], unique=True)
    db.table("outbox").create_index(["state", "channel"])
    # The exactly-once ledger: a (channel, pmid) pair is claimed by one outbox row, in the same
    # transaction that creates the row; the unique key makes a second claim impossible.
    db.table("claims").create({"channel": str, "pmid": str, "key": str}, pk=("channel", "pmid"))
    db.table("claims").create_index(["key"])
    db.table("feedback").create(
        {
            "pmid": str,
            "user": str,
            "value": int,
            "at": str,
        },
        pk=("pmid", "user"),
    )
    db.table("saved").create({"user": str, "pmid": str, "at": str}, pk=("user", "pmid"))
    db.table("lease").create(
        {
            "name": str,
            "holder": str,
            "acquired_at": str,
            "heartbeat_at": float,
            "expires_at": float,
        },
        pk="name",
    )


@migrations()
def m003_tag_indexes(db: sqlite_utils.Database) -> None:
    """/il2 tag reads axis and molecules across the whole library; index them."""
    db.table("papers").create_index(["axis"])
    db.table("papers").create_index(["molecules"])


@migrations()
def m004_unreadable_records(db: sqlite_utils.Database) -> None:
    """PubMed records the parser rejects: asked for again on a schedule (UNREADABLE_RETRY), not every poll."""
    db.table("unreadable").create(
        {"pmid": str, "reason": str, "first_failed": str, "last_tried": str, "attempts": int}, pk="pmid"
    )


@migrations()
def m005_handled_requests(db: sqlite_utils.Database) -> None:
    """Slack requests already handled, so that a redelivered or replayed one is not handled again, even by
    a process started since (the in-memory record does not survive a restart)."""
    db.table("handled_requests").create({"key": str, "at": float}, pk="key")
    db.table("handled_requests").create_index(["at"])


@migrations()
def m006_stored_insights(db: sqlite_utils.Database) -> None:
    """What il2watch says about each paper (the whole Insight), kept with what it was computed from, so
    that posts, digests and commands show the same summary and a language model is asked once."""
    db.table("insights").create(
        {
            "pmid": str,
            "insight": str,  # the Insight as JSON
            "record_key": str,  # a digest of the record it was computed from (corrections included)
            "evidence_key": str,  # a digest of the reasons, the feedback and the lexicon
            "summariser": str,  # which summariser wrote the summary; "" for the extractive one
            "computed_at": str,
        },
        pk="pmid",
    )


@migrations()
def m007_paper_identity(db: sqlite_utils.Database) -> None:
    """Papers known by identity ("pmid:…", "doi:…", "ppr:…") instead of by PMID, so that a preprint or a
    work PubMed lacks is a paper like any other; every id a paper has ever had finds it (``paper_ids``),
    and every index that listed it for a watch is remembered (``sightings``). Existing rows become
    "pmid:<their PMID>", so posts made before are still recognised."""
    keyed = ("papers", "reasons", "claims", "feedback", "saved", "insights")
    for table in keyed:
        db.execute(f"alter table {table} rename column pmid to paper")
        db.execute(f"update {table} set paper = 'pmid:' || paper where paper not like '%:%'")
    db.execute("alter table outbox rename column pmids to papers")
    db.execute(
        "update outbox set papers = (select json_group_array(case when value like '%:%' then value "
        "else 'pmid:' || value end) from json_each(outbox.papers)) where papers not in ('', '[]')"
    )
    papers = db.table("papers")
    for column in ("pmid", "ppr", "openalex", "epmc"):
        papers.add_column(column, str)
    db.execute("update papers set pmid = substr(paper, 6) where paper like 'pmid:%'")
    papers.create_index(["pmid"])
    db.table("paper_ids").create({"token": str, "paper": str}, pk="token")
    db.table("paper_ids").create_index(["paper"])
    for kind, column in (("pmid", "pmid"), ("doi", "doi"), ("pmcid", "pmcid")):
        db.execute(
            f"insert or ignore into paper_ids (token, paper) select '{kind}:' || {column}, paper from papers "
            f"where coalesce({column}, '') != ''"
        )
    db.table("sightings").create(
        {"paper": str, "watch": str, "kind": str, "source": str, "first_seen": str, "last_seen": str},
        pk=("paper", "watch", "kind", "source"),
    )
    db.table("sightings").create_index(["watch", "source"])
    db.execute(
        "insert into sightings (paper, watch, kind, source, first_seen, last_seen) "
        "select paper, watch, kind, 'pubmed', first_seen, last_seen from reasons"
    )


@migrations()
def m008_followups(db: sqlite_utils.Database) -> None:
    """What happened to posted papers since (a retraction, an erratum, a journal version), each told once,
    and who does not want a direct message about the papers they saved."""
    db.execute(
        "create table followups (id integer primary key, key text not null, paper text, kind text, notice text, "
        "source text, told integer, how text, found_at text)"
    )
    db.execute("create unique index followups_key on followups (key)")
    db.execute("create index followups_paper on followups (paper)")
    db.execute('create table notify ("user" text primary key, enabled integer, at text)')


def migration_names() -> tuple[str, ...]:
    """Every version of the schema, oldest first: each is also a PostgreSQL migration of the same name."""
    return tuple(migration.name for migration in migrations._migrations)


# ---------------------------------------------------------------- the backend


class SqliteLibrary(Library):
    """One connection to the library file."""

    def __init__(self, location: str | Path, *, migrate: bool = True):
        self.path = self.name = str(location)
        try:
            if self.path.startswith("file:"):
                conn = sqlite3.connect(self.path, uri=True, timeout=15)
            else:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=15)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA busy_timeout = 15000")
            if not self.path.startswith("file:") or "mode=ro" not in self.path:
                self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            if migrate:
                migrations.apply(self.db)
        except sqlite3.DatabaseError as error:
            raise LibraryError(describe_db_error(self.path, error)) from None
        except OSError as error:
            raise LibraryError(f"cannot open the library {self.path}: {error.strerror}") from None

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Library]:
        """All writes inside land together or not at all; database errors become LibraryError.

        The outermost level is BEGIN IMMEDIATE: it takes the write lock before the first read, so a
        read-then-write transaction never meets a snapshot another process has moved on from (which
        SQLite reports as "locked" at once, without waiting out the busy timeout).
        """
        conn = self.db.conn
        try:
            if conn.in_transaction:
                with self.db.atomic():  # nested: a savepoint
                    yield self
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise LibraryError(describe_db_error(self.path, error)) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, list(params))
        except sqlite3.DatabaseError as error:
            raise LibraryError(describe_db_error(self.path, error)) from None

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.transaction():
            try:
                self.db.conn.executemany(sql, rows)
            except sqlite3.DatabaseError as error:
                raise LibraryError(describe_db_error(self.path, error)) from None

    def _write(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self.db.conn.in_transaction:
            return self.execute(sql, params)
        return super()._write(sql, params)

    def applied_migrations(self) -> list[str]:
        return sorted(migration.name for migration in migrations.applied(self.db))

    def privileges_missing(self) -> list[str]:
        return [] if os.access(self.path, os.W_OK) or self.path.startswith("file:") else [f"writing {self.path}"]

    # ------------------------------------------------------------ search and tags

    def search(
        self, text: str, *, limit: int = 10, offset: int = 0, synonyms: Synonyms | None = None
    ) -> tuple[list[str], int]:
        """FTS5's bm25 over the newest SEARCH_WINDOW matches (weights 10, 3, 2, 1), then relevance."""
        query = fts_query(text, synonyms if synonyms is not None else synonyms_for(()))
        if not query:
            return [], 0
        wanted = offset + limit
        try:
            total = self.db.execute(
                "select count(*) from (select 1 from papers_fts where papers_fts match ? limit ?)",
                [query, SEARCH_WINDOW],
            ).fetchone()[0]
            best = self.db.execute(
                "select rowid, score from (select rowid, bm25(papers_fts, 10.0, 3.0, 2.0, 1.0) as score "
                "from papers_fts where papers_fts match ? order by rowid desc limit ?) "
                "order by score limit ?",
                [query, SEARCH_WINDOW, wanted + RERANK_EXTRA],
            ).fetchall()
        except sqlite3.OperationalError as error:
            if "fts5" not in str(error) and "syntax" not in str(error):
                raise LibraryError(describe_db_error(self.path, error)) from None
            raise LibraryError(f"the search index rejected {query!r}: {error}") from None
        except sqlite3.DatabaseError as error:
            raise LibraryError(describe_db_error(self.path, error)) from None
        if not best:
            return [], total
        marks = ",".join("?" * len(best))
        facts = {
            rowid: (key, relevance or 0.0)
            for rowid, key, relevance in self.execute(
                f"select rowid, paper, relevance from papers where rowid in ({marks})", [r[0] for r in best]
            ).fetchall()
        }
        ranked = sorted(best, key=lambda r: r[1] - facts[r[0]][1] / 50.0)
        return [facts[rowid][0] for rowid, _ in ranked[offset:wanted]], total

    def _has_molecule(self) -> str:
        return "exists (select 1 from json_each(papers.molecules) where lower(value) = lower(?))"

    def _has_flag(self) -> str:
        return "exists (select 1 from json_each(papers.flags) where value = ?)"

    def known_molecules(self) -> list[str]:
        rows = self.execute("select distinct value from papers, json_each(papers.molecules) order by value")
        return [r[0] for r in rows.fetchall()]

    # ------------------------------------------------------------ handled Slack requests

    def first_handling(self, key: str, *, now: float, keep: float, wait: float = 1.0) -> bool:
        usual = self.execute("PRAGMA busy_timeout").fetchone()[0]
        self.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
        try:
            with self.transaction():
                self.execute("delete from handled_requests where at < ?", [now - keep])
                cursor = self.execute(
                    "insert into handled_requests (key, at) values (?, ?) on conflict (key) do nothing", [key, now]
                )
                return cursor.rowcount == 1
        finally:
            self.execute(f"PRAGMA busy_timeout = {int(usual)}")

    # ------------------------------------------------------------ the poller lease: a row and a heartbeat

    def acquire_lease(self, name: str, holder: str, *, now: float, ttl: float) -> bool:
        """Free, lapsed, already ours, or held by a dead process on this host. Each change is one
        statement, so two processes racing for the lease cannot both win."""
        current = self.execute("select holder from lease where name = ?", [name]).fetchone()
        if current and current[0] and current[0] != holder and holder_is_dead(current[0]):
            self._write("update lease set expires_at = 0 where name = ? and holder = ?", [name, current[0]])
        with self.transaction():
            self.execute(
                "insert into lease (name, holder, acquired_at, heartbeat_at, expires_at) values (?, '', '', 0, 0) "
                "on conflict (name) do nothing",
                [name],
            )
            cursor = self.execute(
                "update lease set holder = ?, acquired_at = case when holder = ? then acquired_at else ? end, "
                "heartbeat_at = ?, expires_at = ? where name = ? and (holder = ? or holder = '' or expires_at < ?)",
                [holder, holder, utcnow(), now, now + ttl, name, holder, now],
            )
            return cursor.rowcount == 1

    def renew_lease(self, name: str, holder: str, *, now: float, ttl: float) -> bool:
        cursor = self._write(
            "update lease set heartbeat_at = ?, expires_at = ? where name = ? and holder = ?",
            [now, now + ttl, name, holder],
        )
        return cursor.rowcount == 1

    def release_lease(self, name: str, holder: str) -> None:
        self._write("update lease set holder = '', expires_at = 0 where name = ? and holder = ?", [name, holder])

    def lease_info(self, name: str, *, now: float) -> LeaseInfo | None:
        row = self.execute("select holder, expires_at from lease where name = ?", [name]).fetchone()
        if not row or not row[0]:
            return None
        expires_in = float(row[1]) - now
        return LeaseInfo(row[0], expires_in) if expires_in > 0 else None

    def lease_problem(self, name: str, holder: str, *, now: float) -> str:
        row = self.execute("select holder, expires_at from lease where name = ?", [name]).fetchone()
        current = row[0] if row else ""
        if current != holder:
            if current:
                return f"worker {current} took over the poller lease; the rest is left to it"
            return "this process no longer holds the poller lease"
        if float(row[1]) <= now:
            return "the poller lease expired because it could not be renewed; another worker may be polling"
        return ""


def describe_db_error(path: str, error: sqlite3.DatabaseError) -> str:
    """One actionable line for the ways a SQLite file can refuse us."""
    text = str(error)
    if "readonly" in text or "read-only" in text:
        return f"the library {path} is read-only: give il2watch write access to it and its folder"
    if "disk I/O error" in text:
        return (
            f"the library {path} could not be written (disk full, a file size limit, or a failing disk): "
            f"free space or move IL2WATCH_DB, then poll again"
        )
    if "database or disk is full" in text:
        return f"the library {path} cannot grow (disk full or size limit): free space, then poll again"
    if "locked" in text or "busy" in text:
        return f"the library {path} is locked by another process: is another il2watch writing to it?"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return (
            f"the library {path} is not a readable SQLite database (corrupt?): move it aside; "
            f"il2watch rebuilds what it posted from the Slack channel"
        )
    if "unable to open" in text:
        return f"cannot open the library {path}: check that its folder exists and is writable"
    if "UNIQUE constraint failed" in text:
        return f"the library {path} already holds that row ({text})"
    return f"the library {path} failed: {text}"
