"""The library: what il2watch has found, why, what it posted, and what people said about it.

One interface, two backends. ``Library(location)`` opens the one the location names: a ``postgres://`` or
``postgresql://`` URL is PostgreSQL (``il2watch.store.postgres``), anything else a SQLite file through
sqlite-utils (``il2watch.store.sqlite``). Both have the same tables and the same versioned migrations, and
this class holds every query the two can share (written in the SQL both speak, with ``?`` placeholders);
each backend adds its connection, transactions, error messages, full-text search, JSON look-ups and the
poller lease. Nothing above this module knows which backend it has.

A ``Library`` is one connection and is used by one thread at a time (SQLite's rule; on PostgreSQL a
connection borrowed from the process's pool until ``close()``); every thread opens its own. Writes that
belong together go through ``transaction()`` so a crash leaves either all of them or none.
"""

from __future__ import annotations

import contextlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from il2watch import redact
from il2watch.identity import Ids, parse_token
from il2watch.ids import batches
from il2watch.intel.synonyms import LONGEST as LONGEST_SYNONYM
from il2watch.intel.synonyms import Synonyms
from il2watch.markup import to_plain
from il2watch.model import SOURCES, Author, Insight, Paper, Reason, Section, Watch

# What a run left "running" by a process that is gone says about itself once found (counted as a failure).
INTERRUPTED_RUN = "interrupted: the process stopped before the poll finished (killed, crashed, or out of disk)"
SEARCH_WINDOW = 5000  # matches ranked per search, newest first; also where counting stops
RERANK_EXTRA = 40  # candidates beyond the page that relevance may lift into it
# Newest first: by entry date, then by PMID (digits: the longer is the larger, higher is newer; none is
# lowest), then by key. Written without casting, which PostgreSQL refuses for an empty PMID.
NEWEST_FIRST = "entry_date desc, length(coalesce(pmid, '')) desc, coalesce(pmid, '') desc, paper desc"
LEASE_NAME = "poller"


class LibraryError(Exception):
    """The database cannot be used as asked; the message is one line saying why and what to do."""


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# Every table of the library and its key, in the order ``il2watch migrate`` copies them. A migration that
# adds a table adds it here (a test compares this with the tables the migrations create).
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "watches": ("id",),
    "papers": ("paper",),
    "paper_ids": ("token",),
    "reasons": ("watch", "paper", "kind"),
    "sightings": ("paper", "watch", "kind", "source"),
    "runs": ("id",),
    "state": ("key",),
    "outbox": ("id",),
    "claims": ("channel", "paper"),
    "feedback": ("paper", "user"),
    "saved": ("user", "paper"),
    "lease": ("name",),
    "handled_requests": ("key",),
    "unreadable": ("pmid",),
    "insights": ("paper",),
    "followups": ("id",),
    "notify": ("user",),
}

# A record the parser rejects is asked for again at most every six hours for its first four tries (so at
# most four times a day while NCBI may still be fixing it), then once a day.
UNREADABLE_RETRY = ((4, timedelta(hours=6)), (None, timedelta(days=1)))


def next_try(attempts: int, last_tried: str) -> str:
    """When a record that failed ``attempts`` times, last at ``last_tried``, is asked for again."""
    gap = next(gap for tries, gap in UNREADABLE_RETRY if tries is None or attempts < tries)
    return (datetime.fromisoformat(last_tried) + gap).isoformat(timespec="seconds")


def paper_key(ref: str) -> str:
    """A library key from a key or a bare PMID ("36104538" -> "pmid:36104538"); other text unchanged."""
    ref = str(ref).strip()
    if ref.isdigit():
        return f"pmid:{ref}"
    token = parse_token(ref)
    return f"{token[0]}:{token[1]}" if token else ref


def _keys(refs: Iterable[str]) -> list[str]:
    return [paper_key(ref) for ref in refs]


def _named_key(ids: Ids, known: Mapping[str, str], ids_of: Callable[[str], Ids]) -> str | None:
    """The key of the paper ``ids`` name, given ``known`` ({id token: paper key} for its ids) and the ids
    of a stored paper: see ``Library.find_key``."""
    for token in ids.strong():
        key = known.get(token)
        if key and not (ids.pmid and ids_of(key).pmid not in ("", ids.pmid)):  # two PMIDs: two papers
            return key
    if ids.openalex:
        key = known.get(f"openalex:{ids.openalex}")
        if key and (not ids.doi or ids_of(key).doi in ("", ids.doi)):
            return key
    return None


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


def _watch_row(watch: Watch) -> dict[str, Any]:
    """The columns of a watches row that say what the watch is (its progress columns are the library's)."""
    return {
        "id": watch.id,
        "pmid": watch.pmid,
        "query": watch.query,
        "label": watch.label,
        "channel": watch.channel,
        "source": watch.source,
    }


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
class StoredFollowup:
    """A follow-up as the library keeps it (``il2watch.followups.Followup`` with what became of it)."""

    key: str
    paper: str
    kind: str
    notice: str
    source: str
    told: bool
    how: str
    found_at: str


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


def _outbox_row(row: Sequence[Any], columns: Sequence[str]) -> OutboxRow:
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
_TOKEN_CHARS = re.compile(r"[^\W_]+", re.UNICODE)  # what both indexes keep of a word: letters and digits
_OPERATORS = ("AND", "OR", "NOT")


@dataclass(frozen=True)
class Term:
    """One thing to look for: a word or a phrase (its words in this order), or a word's prefix."""

    words: tuple[str, ...]
    prefix: bool = False

    @property
    def tokens(self) -> tuple[str, ...]:
        """The words as both indexes split them: runs of letters and digits ("IL-2" is "IL", "2")."""
        return tuple(token for word in self.words for token in _TOKEN_CHARS.findall(word))


@dataclass(frozen=True)
class Group:
    """Terms of which any will do; an excluded group leaves out the papers that have any of them."""

    terms: tuple[Term, ...]
    excluded: bool = False


@dataclass(frozen=True)
class SearchQuery:
    """What a user asked, parsed once for every backend: each wanted group must match (by any of its
    terms), and no excluded one may."""

    groups: tuple[Group, ...]

    @property
    def wanted(self) -> tuple[Group, ...]:
        return tuple(group for group in self.groups if not group.excluded)

    @property
    def excluded(self) -> tuple[Group, ...]:
        return tuple(group for group in self.groups if group.excluded)

    def __bool__(self) -> bool:
        return bool(self.wanted)  # an index cannot search for "everything but": there must be something to find


def parse_search(text: str, synonyms: Synonyms | None = None) -> SearchQuery:
    """What a user typed (PubMed habits included), as groups of terms; empty when nothing is searchable.

    Quoted phrases stay exact phrases; OR between terms offers alternatives; NOT (or a leading "-")
    leaves out papers with the next term; AND and field tags like [tiab] are dropped; punctuation is never
    syntax. With ``synonyms``, an unquoted word or run of words also finds what papers write instead
    ("treg" finds "regulatory T cells"). Each backend writes its own query from this (``fts_query`` for
    SQLite's FTS5, a tsquery for PostgreSQL), so both give a search the same meaning.
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
    groups: list[tuple[bool, list[Term]]] = []  # (left out, alternatives)
    pending_or = pending_not = False
    index = 0
    while index < len(tokens):
        operator, words, quoted, prefix = tokens[index]
        if operator:
            pending_or = pending_or or operator == "OR"
            pending_not = pending_not or operator == "NOT"
            index += 1
            continue
        used, alternatives = 1, [Term(tuple(words), prefix)]
        if synonyms is not None and not quoted and not prefix:
            used, alternatives = _expanded(tokens, index, synonyms) or (used, alternatives)
        if pending_or and groups and not pending_not:
            groups[-1][1].extend(a for a in alternatives if a not in groups[-1][1])
        else:
            groups.append((pending_not, alternatives))
        pending_or = pending_not = False
        index += used
    return SearchQuery(tuple(Group(tuple(terms), excluded) for excluded, terms in groups))


def fts_query(text: str, synonyms: Synonyms | None = None) -> str:
    """A safe FTS5 query from what a user typed, or "" when nothing is searchable: every term is emitted
    as a quoted string, so nothing a user types is FTS5 syntax."""
    query = parse_search(text, synonyms)
    if not query:
        return ""
    wanted = [_fts_alternatives(group) for group in query.wanted]
    left_out = [_fts_alternatives(group) for group in query.excluded]
    if not left_out:
        return " AND ".join(wanted)
    joined = wanted[0] if len(wanted) == 1 else "(" + " AND ".join(wanted) + ")"
    return joined + " NOT " + " NOT ".join(left_out)


def _fts_alternatives(group: Group) -> str:
    terms = ['"' + " ".join(t.words).replace('"', '""') + '"' + ("*" if t.prefix else "") for t in group.terms]
    return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"


def _expanded(
    tokens: Sequence[tuple[str, list[str], bool, bool]], index: int, synonyms: Synonyms
) -> tuple[int, list[Term]] | None:
    """The longest run of plain words from ``index`` that has synonyms: (tokens used, alternatives)."""
    run: list[str] = []
    for operator, words, quoted, prefix in tokens[index : index + LONGEST_SYNONYM]:
        if operator or quoted or prefix:
            break
        run.append(" ".join(words))
    for length in range(len(run), 0, -1):
        spellings = synonyms.expand(" ".join(run[:length]))
        if spellings:
            return length, [Term(tuple(words)) for words in _fewest_phrases(spellings)]
    return None


def _index_tokens(text: str) -> tuple[str, ...]:
    """Roughly the tokens the indexes keep (both split at punctuation; both stemmers drop a plural s)."""
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


@dataclass(frozen=True)
class LeaseInfo:
    holder: str
    expires_in: float  # seconds; negative when lapsed


class Library(ABC):
    """One connection to the library, on whichever backend ``location`` names."""

    name: str  # how messages name this library: a file, or a database without its password
    db: Any  # the backend's own handle (sqlite_utils.Database, or the PostgreSQL connection); tests and tools only

    def __new__(cls, location: str | Path, *, migrate: bool = True) -> Library:
        if cls is Library:
            from il2watch.store import backend_for

            cls = backend_for(str(location))
        return super().__new__(cls)

    @abstractmethod
    def __init__(self, location: str | Path, *, migrate: bool = True):
        """Every backend opens its own connection."""

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------ what each backend provides

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[Library]:
        """All writes inside land together or not at all (nested: a savepoint); errors become LibraryError."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement (``?`` placeholders) and return its cursor; database errors become LibraryError."""

    @abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row, in one transaction."""

    @abstractmethod
    def search(
        self, text: str, *, limit: int = 10, offset: int = 0, synonyms: Synonyms | None = None
    ) -> tuple[list[str], int]:
        """Keys of the papers matching ``text`` best first, and how many match in all (counted up to
        SEARCH_WINDOW).

        Words also find their synonyms (``synonyms``, else the packaged lexicon's). Both backends rank the
        newest SEARCH_WINDOW matches (a word nearly every paper has, "IL-2", would otherwise rank the whole
        library on each keystroke), title words weighing most, then abstract, authors and journal; the best
        few are nudged by il2watch's relevance score.
        """

    @abstractmethod
    def _has_molecule(self) -> str:
        """A condition on ``papers``: its molecules include ``?`` (any case)."""

    @abstractmethod
    def _has_flag(self) -> str:
        """A condition on ``papers``: its flags include ``?``."""

    @abstractmethod
    def known_molecules(self) -> list[str]: ...

    @abstractmethod
    def first_handling(self, key: str, *, now: float, keep: float, wait: float = 1.0) -> bool:
        """True the first time ``key`` is handled (and remember it); False when it was, less than ``keep``
        seconds before ``now``. Older keys are forgotten. It waits at most ``wait`` seconds for a lock
        (a poll may hold one), so Slack's three seconds are kept: LibraryError "locked" beyond."""

    @abstractmethod
    def acquire_lease(self, name: str, holder: str, *, now: float, ttl: float) -> bool:
        """Take the lease ``name`` for ``holder`` if nobody else holds it (or theirs has lapsed)."""

    @abstractmethod
    def renew_lease(self, name: str, holder: str, *, now: float, ttl: float) -> bool:
        """Keep holding it; False when ``holder`` no longer does."""

    @abstractmethod
    def release_lease(self, name: str, holder: str) -> None: ...

    @abstractmethod
    def lease_info(self, name: str, *, now: float) -> LeaseInfo | None:
        """Who holds the lease now, if anyone does."""

    @abstractmethod
    def lease_problem(self, name: str, holder: str, *, now: float) -> str:
        """Why ``holder`` must stop posting ("" while it still holds the lease)."""

    @abstractmethod
    def applied_migrations(self) -> list[str]:
        """The schema versions recorded in this library, by name ([] before il2watch created its schema)."""

    @abstractmethod
    def privileges_missing(self) -> list[str]:
        """What this library will not let il2watch do that it needs ([] when nothing is missing)."""

    def _write(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """One statement that commits by itself outside a transaction (and joins one inside)."""
        with self.transaction():
            return self.execute(sql, params)

    def _rows_in(self, sql: str, values: Iterable[str], *, before: Sequence[Any] = ()) -> Iterator[tuple]:
        """Rows of ``sql`` (with one ``{marks}`` placeholder list) for ``values``, 500 at a time:
        SQLite limits how many parameters one statement may take."""
        for chunk in batches(list(values), 500):
            yield from self.execute(sql.format(marks=",".join("?" * len(chunk))), [*before, *chunk]).fetchall()

    def _upsert(self, table: str, rows: Sequence[dict[str, Any]], key: Sequence[str], keep: Sequence[str] = ()) -> None:
        """Insert ``rows``, or update the columns each row gives (all but ``key`` and ``keep``) where the key
        exists; rows giving different columns go in separate statements, as only given columns change."""
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            by_columns.setdefault(tuple(row), []).append(row)
        for columns, group in by_columns.items():
            changed = [c for c in columns if c not in key and c not in keep]
            action = (
                "do update set " + ", ".join(f'"{c}" = excluded."{c}"' for c in changed) if changed else "do nothing"
            )
            sql = (
                f"insert into {table} ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)}) "
                f"values ({', '.join('?' * len(columns))}) "
                f"on conflict ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in key)}) {action}"
            )
            self.executemany(sql, [[row[c] for c in columns] for row in group])

    # ------------------------------------------------------------ state

    def get_state(self, key: str, default: str = "") -> str:
        row = self.execute("select value from state where key = ?", [key]).fetchone()
        return row[0] if row else default

    def set_state(self, key: str, value: str) -> None:
        self._upsert("state", [{"key": key, "value": value}], key=("key",))

    def is_empty(self) -> bool:
        """True for a library that holds no paper and no post (new, or lost and recreated).

        Runs do not count: a first poll that failed before storing anything leaves the library empty,
        so the next one still rebuilds from the channel before posting.
        """
        return not any(self.execute(f"select 1 from {t} limit 1").fetchone() for t in ("papers", "claims", "outbox"))

    # ------------------------------------------------------------ papers

    def save_papers(
        self, papers: Iterable[Paper], insights: dict[str, Insight] | None = None, now: str | None = None
    ) -> int:
        """Store records and every id they carry; ``insights`` by key (or PMID). A paper without its ``key``
        gets the key of the paper its ids already name, else the key its best id makes."""
        now = now or utcnow()
        insights = insights or {}
        rows = []
        with self.transaction():
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
            self._upsert("papers", rows, key=("paper",), keep=("stored_at",))
        return len(rows)

    def save_ids(self, key: str, ids: Ids) -> None:
        """Remember that every id in ``ids`` names the paper ``key`` (an id already known is left as is)."""
        tokens = ids.tokens()
        if tokens:
            self.executemany(
                "insert into paper_ids (token, paper) values (?, ?) on conflict (token) do nothing",
                [(t, key) for t in tokens],
            )

    def keys_of(self, tokens: Iterable[str]) -> dict[str, str]:
        """{id token: paper key} for the tokens ("pmid:1", "doi:10.1/x") some paper is known by."""
        return dict(self._rows_in("select token, paper from paper_ids where token in ({marks})", tokens))

    def find_key(self, ids: Ids) -> str | None:
        """The key of the paper these ids name: by any strong id, else by an OpenAlex id alone (only for a
        paper whose DOI does not differ: OpenAlex sometimes folds two works into one id)."""
        return _named_key(ids, self.keys_of(ids.tokens()), self.ids_of)

    def find_keys(self, many: Iterable[Ids]) -> dict[Ids, str]:
        """``find_key`` for many papers' ids at once, in two look-ups whatever their number (one of every
        id, one of the ids of the papers those name): {ids: key} for the ids that name a paper."""
        many = list(dict.fromkeys(many))
        known = self.keys_of({token for ids in many for token in ids.tokens()})
        held = self._ids_by_key(set(known.values()))
        found = {ids: _named_key(ids, known, lambda key: held.get(key, Ids())) for ids in many}
        return {ids: key for ids, key in found.items() if key}

    def ids_of(self, key: str) -> Ids:
        """Every id the library knows the paper ``key`` by."""
        return self._ids_by_key([key]).get(key, Ids())

    def _ids_by_key(self, keys: Iterable[str]) -> dict[str, Ids]:
        """{paper key: every id the library knows it by} for the keys it knows; of two ids of one kind, the
        first in the database's order."""
        found: dict[str, dict[str, str]] = {}
        sql = "select token, paper from paper_ids where paper in ({marks}) order by token"
        for token, key in self._rows_in(sql, keys):
            kind, _, value = token.partition(":")
            found.setdefault(key, {}).setdefault(kind, value)
        return {
            key: Ids(**{k: v for k, v in kinds.items() if k in Ids.__dataclass_fields__})
            for key, kinds in found.items()
        }

    def tokens_of(self, keys: Iterable[str]) -> dict[str, list[str]]:
        """{paper key: every id token it is known by, its key first}."""
        keys = list(keys)
        result: dict[str, list[str]] = {key: [key] for key in keys}
        for token, key in self._rows_in("select token, paper from paper_ids where paper in ({marks})", keys):
            if token not in result[key]:
                result[key].append(token)
        return result

    def stored_papers(self, refs: Iterable[str]) -> set[str]:
        """Which of these papers (keys, or bare PMIDs) the library holds, as keys."""
        return {r[0] for r in self._rows_in("select paper from papers where paper in ({marks})", _keys(refs))}

    def paper(self, ref: str) -> Paper | None:
        """A stored paper by its key, a bare PMID, or any id token it is known by."""
        key = paper_key(ref)
        row = self.execute("select paper, record from papers where paper = ?", [key]).fetchone()
        if row is None and ":" in key:
            other = self.keys_of([key]).get(key)
            row = (
                self.execute("select paper, record from papers where paper = ?", [other]).fetchone() if other else None
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

    def update_insight(self, key: str, insight: Insight) -> None:
        self._write(
            "update papers set axis = ?, molecules = ?, flags = ?, relevance = ?, is_il2 = ? where paper = ?",
            [
                insight.axis,
                json.dumps(list(insight.molecules)),
                json.dumps(list(insight.flags)),
                insight.relevance,
                int(insight.is_il2),
                paper_key(key),
            ],
        )

    def relevance_of(self, refs: Iterable[str]) -> dict[str, float]:
        """{key: relevance} of stored papers (0 when never scored)."""
        return {
            key: float(relevance or 0)
            for key, relevance in self._rows_in(
                "select paper, relevance from papers where paper in ({marks})", _keys(refs)
            )
        }

    def stored_insight(self, key: str) -> StoredInsight | None:
        row = self.execute(
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
        row = {
            "paper": key,
            "insight": insight_to_json(stored.insight),
            "record_key": stored.record_key,
            "evidence_key": stored.evidence_key,
            "summariser": stored.summariser,
            "computed_at": now or utcnow(),
        }
        with self.transaction():
            self._upsert("insights", [row], key=("paper",))
            if self.execute("select 1 from papers where paper = ?", [key]).fetchone():
                self.update_insight(key, stored.insight)

    def count_papers(self) -> int:
        return self.execute("select count(*) from papers").fetchone()[0]

    def recent(self, *, limit: int = 10, since: str = "") -> list[str]:
        """Keys of the most recently entered papers that a watch linked (not look-ups), newest first."""
        # "exists" lets SQLite walk papers newest first and stop at the limit; "in (select …)" cannot
        sql = (
            "select paper from papers where exists (select 1 from reasons where reasons.paper = papers.paper) "
            + ("and entry_date >= ? " if since else "")
            + f"order by {NEWEST_FIRST} limit ?"
        )
        return [r[0] for r in self.execute(sql, ([since] if since else []) + [limit]).fetchall()]

    def with_reason(self, kind: str, *, watch: str = "", limit: int = 10) -> list[str]:
        sql = (
            "select paper from papers where exists (select 1 from reasons where reasons.paper = papers.paper "
            "and reasons.kind = ? " + ("and reasons.watch = ? " if watch else "") + ") "
            f"order by {NEWEST_FIRST} limit ?"
        )
        return [r[0] for r in self.execute(sql, [kind] + ([watch] if watch else []) + [limit]).fetchall()]

    def count_with_reason(self, kind: str, watch: str = "") -> int:
        sql = "select count(distinct paper) from reasons where kind = ?" + (" and watch = ?" if watch else "")
        return self.execute(sql, [kind] + ([watch] if watch else [])).fetchone()[0]

    def linked_newest_first(self, watch_id: str) -> list[str]:
        """Every paper a watch has linked, newest first (what a backfill chooses from)."""
        rows = self.execute(
            f"select paper from papers where exists (select 1 from reasons where reasons.paper = papers.paper "
            f"and reasons.watch = ?) order by {NEWEST_FIRST}",
            [watch_id],
        ).fetchall()
        return [row[0] for row in rows]

    def count_query_links_since(self, watch_id: str, mindate: str) -> int:
        """Papers a query watch found before that entered PubMed on or after ``mindate`` (YYYY/MM/DD)."""
        return self.execute(
            "select count(*) from reasons join papers on papers.paper = reasons.paper "
            "where reasons.watch = ? and reasons.kind = 'query' and papers.entry_date >= ?",
            [watch_id, mindate.replace("/", "-")],
        ).fetchone()[0]

    def tagged(self, *, axis: str = "", molecule: str = "", flag: str = "", limit: int = 10) -> list[str]:
        clauses, args = [], []
        if axis:
            clauses.append("axis = ?")
            args.append(axis)
        if molecule:
            clauses.append(self._has_molecule())
            args.append(molecule)
        if flag:
            clauses.append(self._has_flag())
            args.append(flag)
        where = " and ".join(clauses) or "1 = 1"
        sql = f"select paper from papers where {where} order by {NEWEST_FIRST} limit ?"
        return [r[0] for r in self.execute(sql, args + [limit]).fetchall()]

    def stored_axis(self, refs: Sequence[str]) -> str:
        """The axis stored for the first of these papers (keys or PMIDs) the library has tagged, or ""."""
        keys = _keys(refs)
        axes = dict(self._rows_in("select paper, axis from papers where paper in ({marks}) and axis != ''", keys))
        return next((axes[k] for k in keys if axes.get(k)), "")

    # ------------------------------------------------------------ records PubMed sends that cannot be read

    def record_unreadable(self, reasons: dict[str, str], *, now: str) -> None:
        """Note another failed try for each PMID (call inside the poll's transaction)."""
        with self.transaction():
            for pmid, reason in reasons.items():
                self.execute(
                    "insert into unreadable (pmid, reason, first_failed, last_tried, attempts) "
                    "values (?, ?, ?, ?, 1) on conflict (pmid) do update set reason = excluded.reason, "
                    "last_tried = excluded.last_tried, attempts = unreadable.attempts + 1",
                    [pmid, redact.scrub(reason), now, now],
                )

    def clear_unreadable(self, pmids: Iterable[str]) -> None:
        """These records were read after all."""
        for chunk in batches(list(pmids), 500):
            self._write(f"delete from unreadable where pmid in ({','.join('?' * len(chunk))})", chunk)

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
        cursor = self.execute(
            "select pmid, reason, first_failed, last_tried, attempts from unreadable order by first_failed, pmid"
        )
        rows = [dict(zip([c[0] for c in cursor.description], row)) for row in cursor.fetchall()]
        return [{**row, "next_try": next_try(row["attempts"], row["last_tried"])} for row in rows]

    # ------------------------------------------------------------ reasons

    def linked(self, watch_id: str) -> dict[tuple[str, str], StoredReason]:
        """Every (paper key, kind) this watch has ever linked."""
        rows = self.execute(
            "select paper, kind, score, rank, first_seen, last_seen from reasons where watch = ?", [watch_id]
        ).fetchall()
        return {
            (key, kind): StoredReason(Reason(watch_id, kind, score, rank), first, last)
            for key, kind, score, rank, first, last in rows
        }

    def count_linked(self, watch_id: str, kind: str, *, source: str = "") -> int:
        """How many papers this watch links for ``kind`` (as ``source`` listed them, when given)."""
        if source:
            return self.execute(
                "select count(*) from sightings where watch = ? and kind = ? and source = ?", [watch_id, kind, source]
            ).fetchone()[0]
        return self.execute("select count(*) from reasons where watch = ? and kind = ?", [watch_id, kind]).fetchone()[0]

    def save_reasons(self, paper_reasons: Iterable[tuple[str, Reason]], *, now: str, run_id: int | None) -> int:
        """Record reasons and the sources that listed them; a reason seen before keeps its first_seen and gets
        the new score and rank."""
        given = [(paper_key(key), reason) for key, reason in paper_reasons]
        rows = [(r.watch, key, r.kind, r.score, r.rank, now, now, run_id) for key, r in given]
        sightings = [(key, r.watch, r.kind, source, now, now) for key, r in given for source in r.sources]
        if not rows:
            return 0
        with self.transaction():
            self.executemany(
                "insert into reasons (watch, paper, kind, score, rank, first_seen, last_seen, run_id) "
                "values (?, ?, ?, ?, ?, ?, ?, ?) "
                "on conflict (watch, paper, kind) do update set score = excluded.score, rank = excluded.rank, "
                "last_seen = excluded.last_seen",
                rows,
            )
            if sightings:
                self.executemany(
                    "insert into sightings (paper, watch, kind, source, first_seen, last_seen) "
                    "values (?, ?, ?, ?, ?, ?) "
                    "on conflict (paper, watch, kind, source) do update set last_seen = excluded.last_seen",
                    sightings,
                )
        return len(rows)

    def reasons_for(self, ref: str) -> list[StoredReason]:
        """Why a paper is in the library, each reason with the sources that listed it."""
        key = paper_key(ref)
        sources: dict[tuple[str, str], list[str]] = {}
        order = list(SOURCES)
        sighted = self.execute(
            "select watch, kind, source, first_seen from sightings where paper = ?", [key]
        ).fetchall()
        for watch, kind, source, _ in sorted(
            sighted, key=lambda r: (r[3], order.index(r[2]) if r[2] in order else len(order), r[2])
        ):
            sources.setdefault((watch, kind), []).append(source)
        rows = self.execute(
            "select watch, kind, score, rank, first_seen, last_seen from reasons where paper = ? "
            "order by first_seen, watch, kind",
            [key],
        ).fetchall()
        return [
            StoredReason(Reason(w, k, s, r, tuple(sources.get((w, k), ()))), f, last) for w, k, s, r, f, last in rows
        ]

    def sources_of(self, ref: str) -> list[str]:
        """Every index that has listed the paper, in the order they first did."""
        rows = self.execute(
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
            self.execute(
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

    # ------------------------------------------------------------ watches

    def sync_watches(self, configured: Sequence[Watch]) -> None:
        """Make the watches table know every configured watch (keeping their progress)."""
        now = utcnow()
        self._upsert(
            "watches",
            [{**_watch_row(w), "added_at": now, "restored": 0} for w in configured],
            key=("id",),
            keep=("added_at", "restored"),
        )

    def add_watch(self, watch: Watch, *, added_by: str, now: str | None = None) -> None:
        row = {**_watch_row(watch), "added_by": added_by, "added_at": now or utcnow(), "removed_at": None}
        self._upsert("watches", [row], key=("id",))

    def remove_watch(self, watch_id: str, *, now: str | None = None) -> bool:
        cursor = self._write(
            "update watches set removed_at = ? where id = ? and removed_at is null", [now or utcnow(), watch_id]
        )
        return cursor.rowcount == 1

    def reset_watch_progress(self, watch_id: str) -> None:
        """A watch added again starts over with a baseline, like a new one."""
        self._write("update watches set baseline_at = null, horizon = null where id = ?", [watch_id])

    def slack_watches(self) -> list[Watch]:
        rows = self.execute(
            "select id, pmid, query, label, channel from watches where source = 'slack' and removed_at is null "
            "order by added_at"
        ).fetchall()
        return [
            Watch(id=i, pmid=p or "", query=q or "", label=lbl or "", channel=c or "", source="slack")
            for i, p, q, lbl, c in rows
        ]

    def watch_state(self, watch: Watch) -> WatchState:
        row = self.execute(
            "select baseline_at, horizon, restored, removed_at from watches where id = ?", [watch.id]
        ).fetchone()
        if not row:
            return WatchState(watch)
        return WatchState(watch, row[0] or "", row[1] or "", bool(row[2]), bool(row[3]))

    def set_watch_progress(
        self, watch: Watch, *, horizon: str, baseline_at: str | None = None, restored: bool | None = None
    ) -> None:
        with self.transaction():
            self._upsert(
                "watches",
                [{**_watch_row(watch), "added_at": utcnow(), "restored": 0}],
                key=("id",),
                keep=("pmid", "query", "label", "channel", "source", "added_at", "restored"),
            )
            changes: dict[str, Any] = {"horizon": horizon}
            if baseline_at is not None:
                changes["baseline_at"] = baseline_at
            if restored is not None:
                changes["restored"] = int(restored)
            sets = ", ".join(f"{column} = ?" for column in changes)
            self.execute(f"update watches set {sets} where id = ?", [*changes.values(), watch.id])

    # ------------------------------------------------------------ runs

    def start_run(self, kind: str, *, holder: str = "", now: str | None = None) -> int:
        with self.transaction():
            cursor = self.execute(
                "insert into runs (kind, started_at, status, holder) values (?, ?, 'running', ?) returning id",
                [kind, now or utcnow(), holder],
            )
            return int(cursor.fetchone()[0])

    def finish_run(self, run_id: int, *, status: str, error: str = "", now: str | None = None, **counts: int) -> None:
        changes: dict[str, Any] = {"status": status, "error": redact.scrub(error), "finished_at": now or utcnow()}
        changes.update(counts)
        sets = ", ".join(f"{column} = ?" for column in changes)
        self._write(f"update runs set {sets} where id = ?", [*changes.values(), run_id])

    def last_run(self, kind: str = "poll", status: str = "") -> dict[str, Any] | None:
        sql = "select * from runs where kind = ?" + (" and status = ?" if status else "") + " order by id desc limit 1"
        cursor = self.execute(sql, [kind] + ([status] if status else []))
        row = cursor.fetchone()
        return dict(zip([c[0] for c in cursor.description], row)) if row else None

    def consecutive_failures(self, kind: str = "poll", *, live_holder: str | None = None) -> int:
        """Failed polls in a row, the newest first: errors, and runs interrupted before they finished.

        With ``live_holder`` (who holds the lease now), a run still marked running by anyone else is one
        whose process is gone: it counts as interrupted before it has been recorded so.
        """
        count = 0
        for status, holder in self.execute(
            "select status, holder from runs where kind = ? order by id desc limit 1000", [kind]
        ).fetchall():
            if status == "running" and (live_holder is None or (holder and holder == live_holder)):
                continue
            if status not in ("error", "interrupted", "running"):
                break
            count += 1
        return count

    def unfinished_runs(self, kind: str = "poll") -> list[dict[str, Any]]:
        """Runs still marked running: in progress, or left so by a process that was killed or died."""
        cursor = self.execute(
            "select id, holder, started_at from runs where kind = ? and status = 'running' order by id", [kind]
        )
        return [dict(zip(("id", "holder", "started_at"), row)) for row in cursor.fetchall()]

    # ------------------------------------------------------------ feedback and reading lists

    def set_feedback(self, ref: str, user: str, value: int, now: str | None = None) -> tuple[int, int]:
        key = paper_key(ref)
        row = {"paper": key, "user": user, "value": 1 if value > 0 else -1, "at": now or utcnow()}
        with self.transaction():
            self._upsert("feedback", [row], key=("paper", "user"))
        return self.feedback(key)

    def feedback(self, ref: str) -> tuple[int, int]:
        row = self.execute(
            "select coalesce(sum(case when value > 0 then 1 else 0 end), 0), "
            "coalesce(sum(case when value < 0 then 1 else 0 end), 0) from feedback where paper = ?",
            [paper_key(ref)],
        ).fetchone()
        return int(row[0]), int(row[1])

    def feedback_totals(self) -> tuple[int, int]:
        row = self.execute(
            "select coalesce(sum(case when value > 0 then 1 else 0 end), 0), "
            "coalesce(sum(case when value < 0 then 1 else 0 end), 0) from feedback"
        ).fetchone()
        return int(row[0]), int(row[1])

    def save_for(self, user: str, ref: str, now: str | None = None) -> bool:
        """Add to a user's reading list; False when it was already there."""
        cursor = self._write(
            'insert into saved ("user", paper, at) values (?, ?, ?) on conflict ("user", paper) do nothing',
            [user, paper_key(ref), now or utcnow()],
        )
        return cursor.rowcount == 1

    def unsave_for(self, user: str, ref: str) -> bool:
        """Take a paper off a user's reading list; False when it was not on it."""
        return self._write('delete from saved where "user" = ? and paper = ?', [user, paper_key(ref)]).rowcount > 0

    def saved_by(self, user: str, limit: int = 50) -> list[str]:
        rows = self.execute('select paper from saved where "user" = ? order by at desc limit ?', [user, limit])
        return [r[0] for r in rows.fetchall()]

    def count_saved(self) -> int:
        """Papers on all reading lists together."""
        return self.execute("select count(*) from saved").fetchone()[0]

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
        with self.transaction():
            self.execute(
                "insert into outbox (key, channel, kind, papers, payload, state, ts, thread_ts, attempts, "
                "last_error, created_at, sent_at, run_id) values (?, ?, ?, ?, ?, ?, ?, '', 0, '', ?, ?, ?)",
                [
                    key,
                    channel,
                    kind,
                    json.dumps(keys),
                    json.dumps(payload, ensure_ascii=False),
                    state,
                    ts,
                    now or utcnow(),
                    sent_at,
                    run_id,
                ],
            )
            if keys:
                self.executemany(
                    "insert into claims (channel, paper, key) values (?, ?, ?)", [(channel, k, key) for k in keys]
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
        cursor = self.execute(sql, args)
        columns = [c[0] for c in cursor.description]
        return [_outbox_row(row, columns) for row in cursor.fetchall()]

    def outbox_row(self, key: str) -> OutboxRow | None:
        cursor = self.execute("select * from outbox where key = ?", [key])
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
        self._write(f"update outbox set {sets} where key = ?", [*changes.values(), key])

    def move_claims(self, papers: Sequence[str], channel: str, key: str) -> None:
        """Hand the claims of ``papers`` in ``channel`` to another outbox row (a digest bundling them)."""
        self.executemany(
            "update claims set key = ? where channel = ? and paper = ?", [(key, channel, p) for p in _keys(papers)]
        )

    def count_outbox(self, state: str) -> int:
        return self.execute("select count(*) from outbox where state = ?", [state]).fetchone()[0]

    # ------------------------------------------------------------ follow-ups on posted papers

    def posted_papers(self) -> list[str]:
        """Every paper a post or a digest carried to a channel (Slack confirmed it), oldest post first."""
        rows = self.execute(
            "select claims.paper, min(outbox.id) from claims join outbox on outbox.key = claims.key "
            "where outbox.state = 'sent' and outbox.kind in ('paper', 'digest') group by claims.paper "
            "order by min(outbox.id), claims.paper"
        ).fetchall()
        return [paper for paper, _ in rows]

    def posted_preprints(self) -> list[str]:
        """The posted papers tagged as preprints: the ones a journal version may arrive for."""
        rows = self.execute(
            "select distinct claims.paper from claims join outbox on outbox.key = claims.key "
            "join papers on papers.paper = claims.paper where outbox.state = 'sent' "
            f"and outbox.kind in ('paper', 'digest') and {self._has_flag()} order by claims.paper",
            ["preprint"],
        ).fetchall()
        return [paper for (paper,) in rows]

    def carrier(self, channel: str, paper: str) -> OutboxRow | None:
        """The post or digest that carries ``paper`` in ``channel`` (whatever its state), or None."""
        cursor = self.execute(
            "select outbox.* from claims join outbox on outbox.key = claims.key where claims.channel = ? "
            "and claims.paper = ? and outbox.kind in ('paper', 'digest')",
            [channel, paper_key(paper)],
        )
        row = cursor.fetchone()
        return _outbox_row(row, [c[0] for c in cursor.description]) if row else None

    def carrying_channels(self, paper: str) -> list[str]:
        """The channels a post or a digest carried (or is to carry) ``paper`` to."""
        rows = self.execute(
            "select distinct claims.channel from claims join outbox on outbox.key = claims.key "
            "where claims.paper = ? and outbox.kind in ('paper', 'digest') and outbox.state != 'failed' "
            "order by claims.channel",
            [paper_key(paper)],
        ).fetchall()
        return [channel for (channel,) in rows]

    def record_followup(
        self, *, key: str, paper: str, kind: str, notice: str, source: str, told: bool, how: str, now: str
    ) -> bool:
        """Remember a follow-up (call inside a transaction); False when it was known already."""
        cursor = self.execute(
            "insert into followups (key, paper, kind, notice, source, told, how, found_at) "
            "values (?, ?, ?, ?, ?, ?, ?, ?) on conflict (key) do nothing",
            [key, paper, kind, notice, redact.scrub(source), int(told), how, now],
        )
        return cursor.rowcount == 1

    def followups(self, papers: Iterable[str], *, told: bool | None = None) -> dict[str, list[StoredFollowup]]:
        """The follow-ups known about each of ``papers`` (keys), in the order they were found."""
        found: dict[str, list[StoredFollowup]] = {}
        sql = (
            "select key, paper, kind, notice, source, told, how, found_at, id from followups "
            "where paper in ({marks})" + ("" if told is None else f" and told = {int(told)}")
        )
        for row in sorted(self._rows_in(sql, _keys(papers)), key=lambda row: row[8]):
            stored = StoredFollowup(row[0], row[1], row[2], row[3], row[4] or "", bool(row[5]), row[6], row[7])
            found.setdefault(stored.paper, []).append(stored)
        return found

    def with_followup(self, kinds: Sequence[str], *, limit: int = 10) -> list[str]:
        """Papers told one of these kinds of follow-up, newest paper first."""
        marks = ",".join("?" * len(kinds))
        sql = (
            "select paper from papers where exists (select 1 from followups where followups.paper = papers.paper "
            f"and followups.told = 1 and followups.kind in ({marks})) order by {NEWEST_FIRST} limit ?"
        )
        return [r[0] for r in self.execute(sql, [*kinds, limit]).fetchall()]

    def savers(self, paper: str) -> list[str]:
        """Who has ``paper`` on their reading list and has not turned direct messages off."""
        rows = self.execute(
            'select saved."user" from saved left join notify on notify."user" = saved."user" '
            'where saved.paper = ? and coalesce(notify.enabled, 1) = 1 order by saved.at, saved."user"',
            [paper_key(paper)],
        ).fetchall()
        return [user for (user,) in rows]

    def set_notify(self, user: str, enabled: bool, now: str | None = None) -> None:
        """Direct messages about saved papers on (the default) or off for ``user``."""
        with self.transaction():
            self._upsert("notify", [{"user": user, "enabled": int(enabled), "at": now or utcnow()}], key=("user",))

    def notify_enabled(self, user: str) -> bool:
        row = self.execute('select enabled from notify where "user" = ?', [user]).fetchone()
        return bool(row[0]) if row else True

    def last_delivery_error(self) -> str:
        """The error of the newest post that failed or is still trying, if any."""
        row = self.execute(
            "select last_error from outbox where state in ('failed', 'due', 'sending') "
            "and coalesce(last_error, '') != '' order by id desc limit 1"
        ).fetchone()
        return row[0] if row else ""

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Store rows copied from another library (``il2watch migrate``): inserted, or updated where their key
        is already here, so copying again changes nothing."""
        self._upsert(table, [dict(zip(columns, row)) for row in rows], key=TABLE_KEYS[table])
