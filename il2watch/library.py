"""The library: what il2watch has found, why, what it posted, and what people said about it.

SQLite through sqlite-utils, in WAL mode, with versioned migrations. A ``Library`` wraps one connection
and is bound to the thread that opened it (SQLite's rule); every thread opens its own. Writes that
belong together go through ``transaction()`` so a crash leaves either all of them or none.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from il2watch import redact
from il2watch.identity import Ids, parse_token
from il2watch.intel.synonyms import LONGEST as LONGEST_SYNONYM
from il2watch.intel.synonyms import Synonyms, synonyms_for
from il2watch.markup import to_plain
from il2watch.model import SOURCES, Author, Insight, Paper, Reason, Section, Watch

migrations = Migrations("il2watch")


# What a run left "running" by a process that is gone says about itself once found (counted as a failure).
INTERRUPTED_RUN = "interrupted: the process stopped before the poll finished (killed, crashed, or out of disk)"
SEARCH_WINDOW = 5000  # matches ranked per search, newest first; also where counting stops
RERANK_EXTRA = 40  # candidates beyond the page that relevance may lift into it


class LibraryError(Exception):
    """The database cannot be used as asked; the message is one line saying why and what to do."""


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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


# A record the parser rejects is asked for again at most every six hours for its first four tries (so at
# most four times a day while NCBI may still be fixing it), then once a day.
UNREADABLE_RETRY = ((4, timedelta(hours=6)), (None, timedelta(days=1)))


def next_try(attempts: int, last_tried: str) -> str:
    """When a record that failed ``attempts`` times, last at ``last_tried``, is asked for again."""
    gap = next(gap for tries, gap in UNREADABLE_RETRY if tries is None or attempts < tries)
    return (datetime.fromisoformat(last_tried) + gap).isoformat(timespec="seconds")


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


def paper_key(ref: str) -> str:
    """A library key from a key or a bare PMID ("36104538" -> "pmid:36104538"); other text unchanged."""
    ref = str(ref).strip()
    if ref.isdigit():
        return f"pmid:{ref}"
    token = parse_token(ref)
    return f"{token[0]}:{token[1]}" if token else ref


def _keys(refs: Iterable[str]) -> list[str]:
    return [paper_key(ref) for ref in refs]


# ---------------------------------------------------------------- records <-> rows


def paper_to_json(paper: Paper) -> str:
    return json.dumps(asdict(paper), ensure_ascii=False)


def paper_from_json(text: str, key: str = "") -> Paper:
    data = json.loads(text)
    data["key"] = key or data.get("key", "")
    data["abstract"] = tuple(Section(**s) for s in data.get("abstract", []))
    data["authors"] = tuple(Author(**a) for a in data.get("authors", []))
    for key in ("pub_types", "keywords", "mesh"):
        data[key] = tuple(data.get(key, []))
    data["corrections"] = tuple(tuple(c) for c in data.get("corrections", []))
    return Paper(**data)


def paper_row(paper: Paper, insight: Insight | None, now: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "paper": paper.key,
        "pmid": paper.pmid,
        "ppr": paper.ppr,
        "openalex": paper.openalex,
        "epmc": paper.epmc,
        "title": paper.title,
        "title_text": to_plain(paper.title),
        "abstract_text": " ".join(to_plain(s.text) for s in paper.abstract),
        "authors_text": "; ".join(a.name for a in paper.authors),
        "journal": " ".join(p for p in (paper.journal, paper.journal_iso) if p),
        "entry_date": paper.entry_date,
        "pub_year": paper.pub_year,
        "doi": paper.doi.lower(),
        "pmcid": paper.pmcid,
        "record": paper_to_json(paper),
        "updated_at": now,
    }
    if insight is not None:
        row.update(
            axis=insight.axis,
            molecules=json.dumps(list(insight.molecules)),
            flags=json.dumps(list(insight.flags)),
            relevance=insight.relevance,
            is_il2=int(insight.is_il2),
        )
    return row


def insight_to_json(insight: Insight) -> str:
    return json.dumps(asdict(insight), ensure_ascii=False)


def insight_from_json(text: str) -> Insight:
    data = json.loads(text)
    for key in ("molecules", "trials", "flags", "relevance_why"):
        data[key] = tuple(data.get(key, []))
    return Insight(**data)


@dataclass(frozen=True)
class StoredInsight:
    """An insight as the library keeps it, with what it was computed from."""

    insight: Insight
    record_key: str
    evidence_key: str
    summariser: str


@dataclass(frozen=True)
class StoredReason:
    reason: Reason
    first_seen: str
    last_seen: str


@dataclass(frozen=True)
class WatchState:
    watch: Watch
    baseline_at: str = ""
    horizon: str = ""
    restored: bool = False
    removed: bool = False


@dataclass(frozen=True)
class OutboxRow:
    id: int
    key: str
    channel: str
    kind: str
    papers: tuple[str, ...]  # the keys of the papers the message stands for
    payload: dict[str, Any]
    state: str
    ts: str
    thread_ts: str
    attempts: int
    last_error: str
    created_at: str
    sent_at: str


def _outbox_row(row: sqlite3.Row | tuple, columns: Sequence[str]) -> OutboxRow:
    data = dict(zip(columns, row))
    return OutboxRow(
        id=data["id"],
        key=data["key"],
        channel=data["channel"] or "",
        kind=data["kind"],
        papers=tuple(json.loads(data["papers"] or "[]")),
        payload=json.loads(data["payload"] or "{}"),
        state=data["state"],
        ts=data["ts"] or "",
        thread_ts=data["thread_ts"] or "",
        attempts=data["attempts"] or 0,
        last_error=data["last_error"] or "",
        created_at=data["created_at"] or "",
        sent_at=data["sent_at"] or "",
    )


# ---------------------------------------------------------------- full-text queries

_FIELD_TAG = re.compile(r"\[[^\]]*\]")
_TOKEN = re.compile(r'"([^"]*)"|(\S+)')
_WORD = re.compile(r"\w+(?:[-'/]\w+)*", re.UNICODE)
_OPERATORS = ("AND", "OR", "NOT")


def _fts_string(words: Sequence[str], prefix: bool = False) -> str:
    return '"' + " ".join(words).replace('"', '""') + '"' + ("*" if prefix else "")


def _alternatives(group: Sequence[str]) -> str:
    return group[0] if len(group) == 1 else "(" + " OR ".join(group) + ")"


def fts_query(text: str, synonyms: Synonyms | None = None) -> str:
    """A safe FTS5 query from what a user typed (PubMed habits included), or "" when nothing is searchable.

    Quoted phrases stay exact phrases; OR between terms offers alternatives; NOT (or a leading "-")
    leaves out papers with the next term; AND and field tags like [tiab] are dropped; punctuation never
    reaches FTS5 as syntax: every term is emitted as a quoted string. With ``synonyms``, an unquoted word
    or run of words also finds what papers write instead ("treg" finds "regulatory T cells").
    """
    text = _FIELD_TAG.sub(" ", text.replace("\u201c", '"').replace("\u201d", '"'))
    if text.count('"') % 2:
        text = text + '"'
    # (operator or "", words, quoted, prefix) for each token
    tokens: list[tuple[str, list[str], bool, bool]] = []
    for phrase, bare in _TOKEN.findall(text):
        if bare and bare.upper() in _OPERATORS:
            tokens.append((bare.upper(), [], False, False))
            continue
        if bare.startswith("-") and len(bare) > 1:
            tokens.append(("NOT", [], False, False))
        words = _WORD.findall(phrase if phrase else bare)
        if words:
            tokens.append(("", words, bool(phrase), bool(bare) and bare.endswith("*") and len(words) == 1))
    groups: list[tuple[bool, list[str]]] = []  # (left out, alternatives)
    pending_or = pending_not = False
    index = 0
    while index < len(tokens):
        operator, words, quoted, prefix = tokens[index]
        if operator:
            pending_or = pending_or or operator == "OR"
            pending_not = pending_not or operator == "NOT"
            index += 1
            continue
        used, alternatives = 1, [_fts_string(words, prefix)]
        if synonyms is not None and not quoted and not prefix:
            used, alternatives = _expanded(tokens, index, synonyms) or (used, alternatives)
        if pending_or and groups and not pending_not:
            groups[-1][1].extend(a for a in alternatives if a not in groups[-1][1])
        else:
            groups.append((pending_not, alternatives))
        pending_or = pending_not = False
        index += used
    wanted = [_alternatives(group) for left_out, group in groups if not left_out]
    if not wanted:
        return ""  # FTS5 cannot search for "everything but": there must be something to find
    left_out = [_alternatives(group) for excluded, group in groups if excluded]
    if not left_out:
        return " AND ".join(wanted)
    query = wanted[0] if len(wanted) == 1 else "(" + " AND ".join(wanted) + ")"
    return query + " NOT " + " NOT ".join(left_out)


def _expanded(
    tokens: Sequence[tuple[str, list[str], bool, bool]], index: int, synonyms: Synonyms
) -> tuple[int, list[str]] | None:
    """The longest run of plain words from ``index`` that has synonyms: (tokens used, FTS alternatives)."""
    run: list[str] = []
    for operator, words, quoted, prefix in tokens[index : index + LONGEST_SYNONYM]:
        if operator or quoted or prefix:
            break
        run.append(" ".join(words))
    for length in range(len(run), 0, -1):
        spellings = synonyms.expand(" ".join(run[:length]))
        if spellings:
            return length, [_fts_string(words) for words in _fewest_phrases(spellings)]
    return None


def _index_tokens(text: str) -> tuple[str, ...]:
    """Roughly the tokens the index keeps (unicode61 splits at punctuation, porter drops plural s)."""
    tokens = re.findall(r"\w+", text.casefold())
    return tuple(t[:-1] if len(t) > 3 and t.endswith("s") and not t.endswith("ss") else t for t in tokens)


def _fewest_phrases(spellings: Sequence[str]) -> list[list[str]]:
    """The spellings as phrases, leaving out any that another one already finds: "Treg cell" finds
    nothing "Treg" does not, "regulatory T cell" is "regulatory T cells" to the index. Each phrase
    an OR carries costs the search index a pass."""
    kept: list[tuple[tuple[str, ...], list[str]]] = []
    for spelling in spellings:
        words = _WORD.findall(spelling)
        tokens = _index_tokens(" ".join(words))
        if not tokens or any(_contains(tokens, other) for other, _ in kept):
            continue
        kept = [(other, w) for other, w in kept if not _contains(other, tokens)]
        kept.append((tokens, words))
    return [words for _, words in kept]


def _contains(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    """Whether ``shorter`` occurs as a run of ``longer``."""
    size = len(shorter)
    return any(longer[i : i + size] == shorter for i in range(len(longer) - size + 1))


# ---------------------------------------------------------------- the library


class Library:
    """One connection to the library file."""

    def __init__(self, path: str | Path, *, migrate: bool = True):
        self.path = str(path)
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

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

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

    def integrity_ok(self) -> bool:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # ------------------------------------------------------------ state

    def get_state(self, key: str, default: str = "") -> str:
        row = self.db.execute("select value from state where key = ?", [key]).fetchone()
        return row[0] if row else default

    def set_state(self, key: str, value: str) -> None:
        self.db.table("state").upsert({"key": key, "value": value}, pk="key")

    def is_empty(self) -> bool:
        """True for a library that holds no paper and no post (new, or lost and recreated).

        Runs do not count: a first poll that failed before storing anything leaves the library empty,
        so the next one still rebuilds from the channel before posting.
        """
        return not any(self.db.execute(f"select 1 from {t} limit 1").fetchone() for t in ("papers", "claims", "outbox"))

    # ------------------------------------------------------------ papers and their identities

    def save_papers(
        self, papers: Iterable[Paper], insights: dict[str, Insight] | None = None, now: str | None = None
    ) -> int:
        """Store records and every id they carry; ``insights`` by key (or PMID). A paper without its ``key``
        gets the key of the paper its ids already name, else the key its best id makes."""
        now = now or utcnow()
        insights = insights or {}
        rows = []
        for paper in papers:
            if not paper.key:
                paper = replace(paper, key=self.find_key(paper.ids) or paper.ids.key())
            rows.append(paper_row(paper, insights.get(paper.key) or insights.get(paper.pmid), now))
            self.save_ids(paper.key, paper.ids)
        if not rows:
            return 0
        existing = self.stored_papers([r["paper"] for r in rows])
        for row in rows:
            if row["paper"] not in existing:
                row["stored_at"] = now
        self.db.table("papers").upsert_all(rows, pk="paper")
        return len(rows)

    def save_ids(self, key: str, ids: Ids) -> None:
        """Remember that every id in ``ids`` names the paper ``key`` (an id already known is left as is)."""
        tokens = ids.tokens()
        if tokens:
            with self.db.atomic():  # raw executemany does not commit by itself
                self.db.conn.executemany(
                    "insert or ignore into paper_ids (token, paper) values (?, ?)", [(t, key) for t in tokens]
                )

    def keys_of(self, tokens: Iterable[str]) -> dict[str, str]:
        """{id token: paper key} for the tokens ("pmid:1", "doi:10.1/x") some paper is known by."""
        return dict(self._rows_in("select token, paper from paper_ids where token in ({marks})", tokens))

    def find_key(self, ids: Ids) -> str | None:
        """The key of the paper these ids name: by any strong id, else by an OpenAlex id alone (only for a
        paper whose DOI does not differ: OpenAlex sometimes folds two works into one id)."""
        known = self.keys_of(ids.strong())
        for token in ids.strong():
            key = known.get(token)
            if key and not (ids.pmid and self.ids_of(key).pmid not in ("", ids.pmid)):  # two PMIDs: two papers
                return key
        if ids.openalex:
            key = self.keys_of([f"openalex:{ids.openalex}"]).get(f"openalex:{ids.openalex}")
            if key and (not ids.doi or self.ids_of(key).doi in ("", ids.doi)):
                return key
        return None

    def ids_of(self, key: str) -> Ids:
        """Every id the library knows the paper ``key`` by."""
        found: dict[str, str] = {}
        for (token,) in self.db.execute("select token from paper_ids where paper = ? order by token", [key]):
            kind, _, value = token.partition(":")
            found.setdefault(kind, value)
        return Ids(**{k: v for k, v in found.items() if k in Ids.__dataclass_fields__})

    def tokens_of(self, keys: Iterable[str]) -> dict[str, list[str]]:
        """{paper key: every id token it is known by, its key first}."""
        keys = list(keys)
        result: dict[str, list[str]] = {key: [key] for key in keys}
        for token, key in self._rows_in("select token, paper from paper_ids where paper in ({marks})", keys):
            if token not in result[key]:
                result[key].append(token)
        return result

    def _rows_in(self, sql: str, values: Iterable[str], *, before: Sequence[Any] = ()) -> Iterator[tuple]:
        """Rows of ``sql`` (with one ``{marks}`` placeholder list) for ``values``, 500 at a time:
        SQLite limits how many parameters one statement may take."""
        values = list(values)
        for i in range(0, len(values), 500):
            chunk = values[i : i + 500]
            yield from self.db.execute(sql.format(marks=",".join("?" * len(chunk))), [*before, *chunk])

    def stored_papers(self, refs: Iterable[str]) -> set[str]:
        """Which of these papers (keys, or bare PMIDs) the library holds, as keys."""
        return {r[0] for r in self._rows_in("select paper from papers where paper in ({marks})", _keys(refs))}

    def stored_pmids(self, pmids: Iterable[str]) -> set[str]:
        """Which of these PMIDs a stored paper has."""
        return {r[0] for r in self._rows_in("select pmid from papers where pmid in ({marks})", pmids)}

    def paper(self, ref: str) -> Paper | None:
        """A stored paper by its key, a bare PMID, or any id token it is known by."""
        key = paper_key(ref)
        row = self.db.execute("select paper, record from papers where paper = ?", [key]).fetchone()
        if row is None and ":" in key:
            other = self.keys_of([key]).get(key)
            row = (
                self.db.execute("select paper, record from papers where paper = ?", [other]).fetchone()
                if other
                else None
            )
        return paper_from_json(row[1], row[0]) if row else None

    def papers(self, refs: Sequence[str]) -> list[Paper]:
        """Papers in the order asked (keys or bare PMIDs), skipping unknown ones."""
        keys = _keys(refs)
        found = {
            key: paper_from_json(record, key)
            for key, record in self._rows_in("select paper, record from papers where paper in ({marks})", keys)
        }
        return [found[k] for k in keys if k in found]

    def paper_by_doi(self, doi: str) -> Paper | None:
        return self.paper(f"doi:{doi.strip().lower()}")

    def update_insight(self, key: str, insight: Insight) -> None:
        self.db.table("papers").update(
            paper_key(key),
            {
                "axis": insight.axis,
                "molecules": json.dumps(list(insight.molecules)),
                "flags": json.dumps(list(insight.flags)),
                "relevance": insight.relevance,
                "is_il2": int(insight.is_il2),
            },
        )

    def stored_insight(self, key: str) -> StoredInsight | None:
        row = self.db.execute(
            "select insight, record_key, evidence_key, summariser from insights where paper = ?", [paper_key(key)]
        ).fetchone()
        if not row:
            return None
        try:
            insight = insight_from_json(row[0])
        except (ValueError, TypeError):  # written by another version: computed again
            return None
        return StoredInsight(insight, row[1] or "", row[2] or "", row[3] or "")

    def save_insight(self, key: str, stored: StoredInsight, now: str | None = None) -> None:
        """Keep what il2watch says about a paper, and the tag and relevance columns that lists query."""
        key = paper_key(key)
        with self.transaction():
            self.db.table("insights").upsert(
                {
                    "paper": key,
                    "insight": insight_to_json(stored.insight),
                    "record_key": stored.record_key,
                    "evidence_key": stored.evidence_key,
                    "summariser": stored.summariser,
                    "computed_at": now or utcnow(),
                },
                pk="paper",
            )
            if self.db.execute("select 1 from papers where paper = ?", [key]).fetchone():
                self.update_insight(key, stored.insight)

    def count_papers(self) -> int:
        return self.db.execute("select count(*) from papers").fetchone()[0]

    def search(
        self, text: str, *, limit: int = 10, offset: int = 0, synonyms: Synonyms | None = None
    ) -> tuple[list[str], int]:
        """Keys of the papers matching ``text`` best first, and how many match in all (counted up to
        SEARCH_WINDOW).

        Words also find their synonyms (``synonyms``, else the packaged lexicon's). Ranking is FTS5's
        bm25 (title words weigh most), among the newest SEARCH_WINDOW matches: a word nearly every paper
        has ("IL-2") would otherwise rank the whole library on each keystroke. The best few are then
        nudged by il2watch's relevance score, read for those rows only.
        """
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
            raise LibraryError(f"the search index rejected {query!r}: {error}") from None
        if not best:
            return [], total
        marks = ",".join("?" * len(best))
        facts = {
            rowid: (key, relevance or 0.0)
            for rowid, key, relevance in self.db.execute(
                f"select rowid, paper, relevance from papers where rowid in ({marks})", [r[0] for r in best]
            )
        }
        ranked = sorted(best, key=lambda r: r[1] - facts[r[0]][1] / 50.0)
        return [facts[rowid][0] for rowid, _ in ranked[offset:wanted]], total

    # Newest first: by entry date, then by PMID (higher is newer), then by key.
    _NEWEST = "order by entry_date desc, cast(coalesce(pmid, '0') as integer) desc, paper desc"

    def recent(self, *, limit: int = 10, since: str = "") -> list[str]:
        """Keys of the most recently entered papers that a watch linked (not look-ups), newest first."""
        # "exists" lets SQLite walk papers newest first and stop at the limit; "in (select …)" cannot
        sql = (
            "select paper from papers where exists (select 1 from reasons where reasons.paper = papers.paper) "
            + ("and entry_date >= ? " if since else "")
            + self._NEWEST
            + " limit ?"
        )
        return [r[0] for r in self.db.execute(sql, ([since] if since else []) + [limit])]

    def with_reason(self, kind: str, *, watch: str = "", limit: int = 10) -> list[str]:
        sql = (
            "select paper from papers where exists (select 1 from reasons where reasons.paper = papers.paper "
            "and reasons.kind = ? " + ("and reasons.watch = ? " if watch else "") + ") " + self._NEWEST + " limit ?"
        )
        return [r[0] for r in self.db.execute(sql, [kind] + ([watch] if watch else []) + [limit])]

    def count_with_reason(self, kind: str, watch: str = "") -> int:
        sql = "select count(distinct paper) from reasons where kind = ?" + (" and watch = ?" if watch else "")
        return self.db.execute(sql, [kind] + ([watch] if watch else [])).fetchone()[0]

    def tagged(self, *, axis: str = "", molecule: str = "", flag: str = "", limit: int = 10) -> list[str]:
        clauses, args = [], []
        if axis:
            clauses.append("axis = ?")
            args.append(axis)
        if molecule:
            clauses.append("exists (select 1 from json_each(papers.molecules) where lower(value) = lower(?))")
            args.append(molecule)
        if flag:
            clauses.append("exists (select 1 from json_each(papers.flags) where value = ?)")
            args.append(flag)
        where = " and ".join(clauses) or "1"
        sql = f"select paper from papers where {where} {self._NEWEST} limit ?"
        return [r[0] for r in self.db.execute(sql, args + [limit])]

    def stored_axis(self, refs: Sequence[str]) -> str:
        """The axis stored for the first of these papers (keys or PMIDs) the library has tagged, or ""."""
        keys = _keys(refs)
        axes = dict(self._rows_in("select paper, axis from papers where paper in ({marks}) and axis != ''", keys))
        return next((axes[k] for k in keys if axes.get(k)), "")

    def known_molecules(self) -> list[str]:
        rows = self.db.execute("select distinct value from papers, json_each(papers.molecules) order by value")
        return [r[0] for r in rows]

    # ------------------------------------------------------------ records PubMed sends that cannot be read

    def record_unreadable(self, reasons: dict[str, str], *, now: str) -> None:
        """Note another failed try for each PMID (call inside the poll's transaction)."""
        for pmid, reason in reasons.items():
            row = self.db.execute("select attempts from unreadable where pmid = ?", [pmid]).fetchone()
            self.db.table("unreadable").upsert(
                {
                    "pmid": pmid,
                    "reason": redact.scrub(reason),
                    "last_tried": now,
                    "attempts": (row[0] if row else 0) + 1,
                    **({} if row else {"first_failed": now}),
                },
                pk="pmid",
            )

    def clear_unreadable(self, pmids: Iterable[str]) -> None:
        """These records were read after all."""
        for chunk in _chunks(list(pmids)):
            self.db.execute(f"delete from unreadable where pmid in ({','.join('?' * len(chunk))})", chunk)

    def unreadable_waiting(self, pmids: Iterable[str], *, now: str) -> set[str]:
        """Which of ``pmids`` failed before and are not due to be asked for again at ``now``."""
        rows = self._rows_in("select pmid, attempts, last_tried from unreadable where pmid in ({marks})", pmids)
        return {pmid for pmid, attempts, last in rows if next_try(attempts, last) > now}

    def set_watch_problems(self, lines: Sequence[str], *, now: str) -> None:
        """What the last poll that reached PubMed found wrong with single watches and records."""
        payload = {"at": now, "problems": [redact.scrub(line) for line in lines]}
        self.set_state("watch_problems", json.dumps(payload, ensure_ascii=False))

    def watch_problems(self) -> tuple[str, list[str]]:
        """(when, lines) as the last poll recorded them; ("", []) when there were none."""
        try:
            payload = json.loads(self.get_state("watch_problems") or "{}")
        except ValueError:
            return "", []
        return str(payload.get("at", "")), [str(line) for line in payload.get("problems", [])]

    def unreadable(self) -> list[dict[str, Any]]:
        """Every record still unreadable, oldest failure first, with when it is asked for next."""
        cursor = self.db.execute(
            "select pmid, reason, first_failed, last_tried, attempts from unreadable order by first_failed, pmid"
        )
        rows = [dict(zip([c[0] for c in cursor.description], row)) for row in cursor.fetchall()]
        return [{**row, "next_try": next_try(row["attempts"], row["last_tried"])} for row in rows]

    # ------------------------------------------------------------ reasons and the sources that gave them

    def linked(self, watch_id: str) -> dict[tuple[str, str], StoredReason]:
        """Every (paper key, kind) this watch has ever linked."""
        rows = self.db.execute(
            "select paper, kind, score, rank, first_seen, last_seen from reasons where watch = ?", [watch_id]
        )
        return {
            (key, kind): StoredReason(Reason(watch_id, kind, score, rank), first, last)
            for key, kind, score, rank, first, last in rows
        }

    def count_linked(self, watch_id: str, kind: str, *, source: str = "") -> int:
        """How many papers this watch links for ``kind`` (as ``source`` listed them, when given)."""
        if source:
            return self.db.execute(
                "select count(*) from sightings where watch = ? and kind = ? and source = ?", [watch_id, kind, source]
            ).fetchone()[0]
        return self.db.execute(
            "select count(*) from reasons where watch = ? and kind = ?", [watch_id, kind]
        ).fetchone()[0]

    def save_reasons(self, paper_reasons: Iterable[tuple[str, Reason]], *, now: str, run_id: int | None) -> int:
        """Record reasons and the sources that listed them; a reason seen before keeps its first_seen and gets
        the new score and rank."""
        given = [(paper_key(key), reason) for key, reason in paper_reasons]
        rows = [
            {
                "watch": r.watch,
                "paper": key,
                "kind": r.kind,
                "score": r.score,
                "rank": r.rank,
                "first_seen": now,
                "last_seen": now,
                "run_id": run_id,
            }
            for key, r in given
        ]
        sightings = [(key, r.watch, r.kind, source, now, now) for key, r in given for source in r.sources]
        if not rows:
            return 0
        with self.db.atomic():  # raw executemany does not commit by itself
            self.db.conn.executemany(
                "insert into reasons (watch, paper, kind, score, rank, first_seen, last_seen, run_id) "
                "values (:watch, :paper, :kind, :score, :rank, :first_seen, :last_seen, :run_id) "
                "on conflict (watch, paper, kind) do update set score = excluded.score, rank = excluded.rank, "
                "last_seen = excluded.last_seen",
                rows,
            )
            self.db.conn.executemany(
                "insert into sightings (paper, watch, kind, source, first_seen, last_seen) values (?, ?, ?, ?, ?, ?) "
                "on conflict (paper, watch, kind, source) do update set last_seen = excluded.last_seen",
                sightings,
            )
        return len(rows)

    def reasons_for(self, ref: str) -> list[StoredReason]:
        """Why a paper is in the library, each reason with the sources that listed it."""
        key = paper_key(ref)
        sources: dict[tuple[str, str], list[str]] = {}
        order = list(SOURCES)
        sighted = self.db.execute("select watch, kind, source, first_seen from sightings where paper = ?", [key])
        for watch, kind, source, _ in sorted(
            sighted, key=lambda r: (r[3], order.index(r[2]) if r[2] in order else len(order), r[2])
        ):
            sources.setdefault((watch, kind), []).append(source)
        rows = self.db.execute(
            "select watch, kind, score, rank, first_seen, last_seen from reasons where paper = ? "
            "order by first_seen, watch, kind",
            [key],
        )
        return [
            StoredReason(Reason(w, k, s, r, tuple(sources.get((w, k), ()))), f, last) for w, k, s, r, f, last in rows
        ]

    def sources_of(self, ref: str) -> list[str]:
        """Every index that has listed the paper, in the order they first did."""
        rows = self.db.execute(
            "select source, min(first_seen) from sightings where paper = ? group by source", [paper_key(ref)]
        ).fetchall()
        order = list(SOURCES)
        rows.sort(key=lambda row: (row[1], order.index(row[0]) if row[0] in order else len(order), row[0]))
        return [source for source, _ in rows]

    # ------------------------------------------------------------ the sources: health, memory, starts

    def source_memory(self) -> dict[str, str]:
        """What the sources asked the library to keep (an OpenAlex id resolved once, …)."""
        try:
            return {str(k): str(v) for k, v in json.loads(self.get_state("source_memory") or "{}").items()}
        except (ValueError, AttributeError):
            return {}

    def source_ok_at(self, source: str, watch_id: str = "") -> str:
        """When ``source`` last answered at all, or, with ``watch_id``, last served that watch (what its
        refresh interval counts from: a failed or outage answer does not count); "" when it never did."""
        return self.get_state(f"source_ok_at:{source}:{watch_id}" if watch_id else f"source_ok_at:{source}")

    def source_started(self, source: str, watch_id: str) -> bool:
        """Whether ``source`` has answered for this watch before (or listed something for it)."""
        if self.get_state(f"source_started:{source}:{watch_id}"):
            return True
        return bool(
            self.db.execute(
                "select 1 from sightings where source = ? and watch = ? limit 1", [source, watch_id]
            ).fetchone()
        )

    def save_source_outcomes(self, reports: Iterable[Any], memory: dict[str, str], *, now: str) -> None:
        """How each source did this poll (``discovery.SourceReport``), what it asked to keep, and which
        watches it has now answered for (call inside the poll's transaction)."""
        for report in reports:
            if report.status == "skipped":
                continue
            status = {"status": report.status, "at": now, "error": redact.scrub(report.error), "listed": report.listed}
            if report.status != "failed":
                self.set_state(f"source_ok_at:{report.source}", now)
            for watch_id in report.answered:  # served: what the refresh interval of that watch counts from
                self.set_state(f"source_ok_at:{report.source}:{watch_id}", now)
                self.set_state(f"source_started:{report.source}:{watch_id}", now)
            self.set_state(f"source_status:{report.source}", json.dumps(status, ensure_ascii=False))
        if memory:
            self.set_state("source_memory", json.dumps({**self.source_memory(), **memory}, ensure_ascii=False))

    def save_source_baseline(self, source: str, watch_id: str, papers: Iterable[str], entered_by: str) -> None:
        """What a source's baseline note says it recorded for a watch (read back by the rebuild of a lost
        library): the ids of the papers it names, and the entry date on or before which every other one
        entered ("" when it names them all)."""
        known = self.source_baselines(watch_id)
        old_papers, old_date = known.get(source, ((), ""))
        known[source] = (tuple(dict.fromkeys((*old_papers, *papers))), max(old_date, entered_by))
        payload = {name: {"papers": list(p), "entered_by": d} for name, (p, d) in known.items()}
        self.set_state(f"source_baselines:{watch_id}", json.dumps(payload, ensure_ascii=False))

    def source_baselines(self, watch_id: str) -> dict[str, tuple[tuple[str, ...], str]]:
        """{source: (paper ids, entered_by)} as ``save_source_baseline`` kept them for this watch."""
        try:
            stored = json.loads(self.get_state(f"source_baselines:{watch_id}") or "{}")
        except ValueError:
            return {}
        if not isinstance(stored, dict):
            return {}
        return {
            str(name): (tuple(str(p) for p in value.get("papers") or []), str(value.get("entered_by") or ""))
            for name, value in stored.items()
            if isinstance(value, dict)
        }

    def source_status(self, source: str) -> dict[str, Any]:
        """{status, at, error, listed} as the last poll that asked ``source`` recorded it; {} when none did."""
        try:
            found = json.loads(self.get_state(f"source_status:{source}") or "{}")
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}

    def count_query_links_since(self, watch_id: str, mindate: str) -> int:
        """Papers a query watch found before that entered PubMed on or after ``mindate`` (YYYY/MM/DD)."""
        return self.db.execute(
            "select count(*) from reasons join papers on papers.paper = reasons.paper "
            "where reasons.watch = ? and reasons.kind = 'query' and papers.entry_date >= ?",
            [watch_id, mindate.replace("/", "-")],
        ).fetchone()[0]

    def linked_newest_first(self, watch_id: str) -> list[str]:
        """Every paper a watch has linked, newest first (what a backfill chooses from)."""
        rows = self.db.execute(
            "select distinct papers.paper, papers.entry_date, cast(coalesce(papers.pmid, '0') as integer) "
            "from reasons join papers on papers.paper = reasons.paper where reasons.watch = ? "
            "order by papers.entry_date desc, 3 desc, papers.paper desc",
            [watch_id],
        )
        return [r[0] for r in rows]

    def relevance_of(self, refs: Iterable[str]) -> dict[str, float]:
        """{key: relevance} of stored papers (0 when never scored)."""
        return {
            key: float(relevance or 0)
            for key, relevance in self._rows_in(
                "select paper, relevance from papers where paper in ({marks})", _keys(refs)
            )
        }

    # ------------------------------------------------------------ watches

    def sync_watches(self, configured: Sequence[Watch]) -> None:
        """Make the watches table know every configured watch (keeping their progress)."""
        for watch in configured:
            existing = self.db.execute("select id from watches where id = ?", [watch.id]).fetchone()
            fields = {
                "pmid": watch.pmid,
                "query": watch.query,
                "label": watch.label,
                "channel": watch.channel,
                "source": watch.source,
            }
            if existing:
                self.db.table("watches").update(watch.id, fields)
            else:
                self.db.table("watches").insert({"id": watch.id, **fields, "added_at": utcnow(), "restored": 0})

    def add_watch(self, watch: Watch, *, added_by: str, now: str | None = None) -> None:
        self.db.table("watches").upsert(
            {
                "id": watch.id,
                "pmid": watch.pmid,
                "query": watch.query,
                "label": watch.label,
                "channel": watch.channel,
                "source": watch.source,
                "added_by": added_by,
                "added_at": now or utcnow(),
                "removed_at": None,
            },
            pk="id",
        )

    def remove_watch(self, watch_id: str, *, now: str | None = None) -> bool:
        row = self.db.execute("select source from watches where id = ? and removed_at is null", [watch_id]).fetchone()
        if not row:
            return False
        self.db.table("watches").update(watch_id, {"removed_at": now or utcnow()})
        return True

    def slack_watches(self) -> list[Watch]:
        rows = self.db.execute(
            "select id, pmid, query, label, channel from watches where source = 'slack' and removed_at is null "
            "order by added_at"
        )
        return [
            Watch(id=i, pmid=p or "", query=q or "", label=lbl or "", channel=c or "", source="slack")
            for i, p, q, lbl, c in rows
        ]

    def watch_state(self, watch: Watch) -> WatchState:
        row = self.db.execute(
            "select baseline_at, horizon, restored, removed_at from watches where id = ?", [watch.id]
        ).fetchone()
        if not row:
            return WatchState(watch)
        return WatchState(watch, row[0] or "", row[1] or "", bool(row[2]), bool(row[3]))

    def set_watch_progress(
        self, watch: Watch, *, horizon: str, baseline_at: str | None = None, restored: bool | None = None
    ) -> None:
        if not self.db.execute("select 1 from watches where id = ?", [watch.id]).fetchone():
            self.db.table("watches").insert(
                {
                    "id": watch.id,
                    "pmid": watch.pmid,
                    "query": watch.query,
                    "label": watch.label,
                    "channel": watch.channel,
                    "source": watch.source,
                    "added_at": utcnow(),
                    "restored": 0,
                }
            )
        changes: dict[str, Any] = {"horizon": horizon}
        if baseline_at is not None:
            changes["baseline_at"] = baseline_at
        if restored is not None:
            changes["restored"] = int(restored)
        self.db.table("watches").update(watch.id, changes)

    # ------------------------------------------------------------ runs

    def start_run(self, kind: str, *, holder: str = "", now: str | None = None) -> int:
        with self.transaction():
            table = self.db.table("runs")
            table.insert({"kind": kind, "started_at": now or utcnow(), "status": "running", "holder": holder})
            return int(table.last_pk or 0)

    def finish_run(self, run_id: int, *, status: str, error: str = "", now: str | None = None, **counts: int) -> None:
        with self.transaction():
            self.db.table("runs").update(
                run_id, {"status": status, "error": redact.scrub(error), "finished_at": now or utcnow(), **counts}
            )

    def last_run(self, kind: str = "poll", status: str = "") -> dict[str, Any] | None:
        sql = "select * from runs where kind = ?" + (" and status = ?" if status else "") + " order by id desc limit 1"
        cursor = self.db.execute(sql, [kind] + ([status] if status else []))
        row = cursor.fetchone()
        return dict(zip([c[0] for c in cursor.description], row)) if row else None

    def consecutive_failures(self, kind: str = "poll", *, live_holder: str | None = None) -> int:
        """Failed polls in a row, the newest first: errors, and runs interrupted before they finished.

        With ``live_holder`` (who holds the lease now), a run still marked running by anyone else is one
        whose process is gone: it counts as interrupted before it has been recorded so.
        """
        count = 0
        for status, holder in self.db.execute(
            "select status, holder from runs where kind = ? order by id desc limit 1000", [kind]
        ):
            if status == "running" and (live_holder is None or (holder and holder == live_holder)):
                continue
            if status not in ("error", "interrupted", "running"):
                break
            count += 1
        return count

    def unfinished_runs(self, kind: str = "poll") -> list[dict[str, Any]]:
        """Runs still marked running: in progress, or left so by a process that was killed or died."""
        cursor = self.db.execute(
            "select id, holder, started_at from runs where kind = ? and status = 'running' order by id", [kind]
        )
        return [dict(zip(("id", "holder", "started_at"), row)) for row in cursor]

    # ------------------------------------------------------------ feedback and reading lists

    def set_feedback(self, ref: str, user: str, value: int, now: str | None = None) -> tuple[int, int]:
        key = paper_key(ref)
        with self.transaction():
            self.db.table("feedback").upsert(
                {"paper": key, "user": user, "value": 1 if value > 0 else -1, "at": now or utcnow()},
                pk=("paper", "user"),
            )
        return self.feedback(key)

    def feedback(self, ref: str) -> tuple[int, int]:
        row = self.db.execute(
            "select coalesce(sum(value > 0), 0), coalesce(sum(value < 0), 0) from feedback where paper = ?",
            [paper_key(ref)],
        ).fetchone()
        return int(row[0]), int(row[1])

    def feedback_totals(self) -> tuple[int, int]:
        row = self.db.execute(
            "select coalesce(sum(value > 0), 0), coalesce(sum(value < 0), 0) from feedback"
        ).fetchone()
        return int(row[0]), int(row[1])

    def save_for(self, user: str, ref: str, now: str | None = None) -> bool:
        """Add to a user's reading list; False when it was already there."""
        key = paper_key(ref)
        with self.transaction():
            if self.db.execute("select 1 from saved where user = ? and paper = ?", [user, key]).fetchone():
                return False
            self.db.table("saved").insert({"user": user, "paper": key, "at": now or utcnow()})
            return True

    def unsave_for(self, user: str, ref: str) -> bool:
        """Take a paper off a user's reading list; False when it was not on it."""
        with self.transaction():
            return (
                self.db.execute("delete from saved where user = ? and paper = ?", [user, paper_key(ref)]).rowcount > 0
            )

    def saved_by(self, user: str, limit: int = 50) -> list[str]:
        return [
            r[0]
            for r in self.db.execute("select paper from saved where user = ? order by at desc limit ?", [user, limit])
        ]

    # ------------------------------------------------------------ outbox

    def claimed(self, channel: str, refs: Iterable[str]) -> set[str]:
        """Which of these papers (keys) already have an outbox row for ``channel`` (posted, due or waiting)."""
        return {
            r[0]
            for r in self._rows_in(
                "select paper from claims where channel = ? and paper in ({marks})", _keys(refs), before=[channel]
            )
        }

    def enqueue(
        self,
        *,
        key: str,
        channel: str,
        kind: str,
        papers: Sequence[str],
        payload: dict[str, Any],
        state: str = "due",
        run_id: int | None = None,
        now: str | None = None,
        ts: str = "",
        sent_at: str = "",
    ) -> None:
        """Create an outbox row and claim its papers for the channel (call inside a transaction)."""
        keys = _keys(papers)
        self.db.table("outbox").insert(
            {
                "key": key,
                "channel": channel,
                "kind": kind,
                "papers": json.dumps(keys),
                "payload": json.dumps(payload, ensure_ascii=False),
                "state": state,
                "ts": ts,
                "thread_ts": "",
                "attempts": 0,
                "last_error": "",
                "created_at": now or utcnow(),
                "sent_at": sent_at,
                "run_id": run_id,
            }
        )
        if keys:
            self.db.table("claims").insert_all(
                [{"channel": channel, "paper": k, "key": key} for k in keys], pk=("channel", "paper")
            )

    def outbox(
        self, *states: str, channel: str | None = None, kind: str | None = None, newest: int = 0
    ) -> list[OutboxRow]:
        """Outbox rows in these states (all when none is named), oldest first; or the ``newest`` few, newest
        first."""
        clauses: list[str] = []
        args: list[str] = []
        if states:
            clauses.append(f"state in ({','.join('?' * len(states))})")
            args.extend(states)
        if channel is not None:
            clauses.append("channel = ?")
            args.append(channel)
        if kind is not None:
            clauses.append("kind = ?")
            args.append(kind)
        sql = "select * from outbox" + (" where " + " and ".join(clauses) if clauses else "")
        sql += f" order by id desc limit {int(newest)}" if newest else " order by id"
        cursor = self.db.execute(sql, args)
        columns = [c[0] for c in cursor.description]
        return [_outbox_row(row, columns) for row in cursor.fetchall()]

    def outbox_row(self, key: str) -> OutboxRow | None:
        cursor = self.db.execute("select * from outbox where key = ?", [key])
        row = cursor.fetchone()
        return _outbox_row(row, [c[0] for c in cursor.description]) if row else None

    def update_outbox(self, key: str, **changes: Any) -> None:
        if "payload" in changes and not isinstance(changes["payload"], str):
            changes["payload"] = json.dumps(changes["payload"], ensure_ascii=False)
        if "papers" in changes and not isinstance(changes["papers"], str):
            changes["papers"] = json.dumps(_keys(changes["papers"]))
        if "last_error" in changes:
            changes["last_error"] = redact.scrub(str(changes["last_error"]))
        sets = ", ".join(f"{column} = ?" for column in changes)
        self.db.execute(f"update outbox set {sets} where key = ?", [*changes.values(), key])

    def move_claims(self, papers: Sequence[str], channel: str, key: str) -> None:
        """Hand the claims of ``papers`` in ``channel`` to another outbox row (a digest bundling them)."""
        with self.db.atomic():  # raw executemany does not commit by itself
            self.db.conn.executemany(
                "update claims set key = ? where channel = ? and paper = ?",
                [(key, channel, p) for p in _keys(papers)],
            )

    def count_outbox(self, state: str) -> int:
        return self.db.execute("select count(*) from outbox where state = ?", [state]).fetchone()[0]

    # ------------------------------------------------------------ handled Slack requests

    def first_handling(self, key: str, *, now: float, keep: float, wait: float = 1.0) -> bool:
        """True the first time ``key`` is handled (and remember it); False when it was, less than ``keep``
        seconds before ``now``. Older keys are forgotten. It waits at most ``wait`` seconds for the write
        lock (a poll may hold it), so Slack's three seconds are kept: LibraryError "locked" beyond."""
        usual = self.db.execute("PRAGMA busy_timeout").fetchone()[0]
        self.db.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
        try:
            with self.transaction():
                self.db.execute("delete from handled_requests where at < ?", [now - keep])
                cursor = self.db.execute("insert or ignore into handled_requests (key, at) values (?, ?)", [key, now])
                return cursor.rowcount == 1
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {int(usual)}")


def _chunks(values: list[str], size: int = 500) -> Iterator[list[str]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


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
    return f"the library {path} failed: {text}"
