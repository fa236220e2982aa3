"""What every citation source is: one module under ``il2watch/sources/`` behind this small interface.

A source answers two questions for discovery: which works link to the watched papers now, and why
(``find``); and the records of works the library lacks that PubMed cannot give, because they have no
PMID (``records``). Works with a PMID are always fetched from PubMed, whoever listed them, so a paper
reads the same whichever index found it. Sources do I/O only; deciding what is new, merging identities
and storing happen in ``il2watch.discovery``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from il2watch.fields import Fields
from il2watch.identity import Ids
from il2watch.markup import squash
from il2watch.model import SOURCES, Paper, Watch
from il2watch.transport import HOMEPAGE, Host, host_from_settings


class SourceError(Exception):
    """A source failed for this poll; the message is one line naming the source and what went wrong."""


@dataclass(frozen=True)
class Found:
    """One work a source lists as linked to a watched paper, as that source described it."""

    ids: Ids
    watch: str  # the watch's id
    kind: str  # "cites", "similar" or "query"
    source: str  # the source's name
    score: int | None = None  # PubMed's similarity score
    rank: int | None = None  # 1 = most similar
    indexed: str = ""  # YYYY-MM-DD the source first indexed the work: the entry date of a work without a PMID
    record: Paper | None = None  # the whole record, when the source gives it and PubMed cannot
    category: str = ""  # what kind of record the source says it is ("preprint", "patent", "thesis", …)


@dataclass(frozen=True)
class SourceRecord:
    """A record a source gave, with every id it carries."""

    ids: Ids
    paper: Paper


@dataclass
class Given:
    """What a source's ``records`` gave: the records, and a caveat for each record it could read only in
    part or not at all, as (watch id, one line)."""

    records: list[SourceRecord] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Request:
    """What discovery asks every source in one poll: the watches, what the library remembers for the
    sources (resolved ids), and for PubMed the entry-date window of each query watch and how many links
    each paper watch already has (so that an empty answer can be told from a PMID PubMed lacks)."""

    watches: tuple[Watch, ...]
    memory: Mapping[str, str] = field(default_factory=dict)
    windows: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # watch id -> (mindate, maxdate)
    known_links: Mapping[str, int] = field(default_factory=dict)  # watch id -> links the library holds
    # (source, watch id) -> citing papers that source listed before: an empty list then is an outage
    known_cites: Mapping[tuple[str, str], int] = field(default_factory=dict)
    today: date | None = None


@dataclass
class Finding:
    """What one source said in one poll."""

    source: str
    found: list[Found] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)  # ids of the watches the source answered for
    failed: dict[str, str] = field(default_factory=dict)  # watch id -> why the source could not serve it
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (watch id, a caveat): served all the same
    memory: dict[str, str] = field(default_factory=dict)  # facts to keep for the next poll (resolved ids)


class Answer(Protocol):
    status: int
    headers: Mapping[str, str]
    body: bytes


class Http(Protocol):
    """The part of ``il2watch.transport.Host`` a source uses."""

    def get(
        self, path: str, params: Iterable[tuple[str, str]] | Mapping[str, str] = (), *, accept: Collection[int] = ()
    ) -> Answer: ...


@dataclass(frozen=True)
class Kind:
    """What il2watch needs to know of a source to build and check it, declared once in its module as
    ``KIND`` (``il2watch.sources`` finds every module that has one). Its label is ``model.SOURCES``'s;
    its settings are ``config.Settings`` fields (the first, its base URL): ``doctor`` checks them first."""

    name: str
    settings: tuple[str, ...]
    build: Callable[[Any, Any], Source]  # (settings, the E-utilities client) -> the source

    @property
    def label(self) -> str:
        return SOURCES.get(self.name, self.name)


def user_agent(settings: Any) -> str:
    """il2watch and, when set, the lab's contact address (NCBI_EMAIL), as the open indexes ask."""
    contact = f"; mailto:{settings.ncbi_email}" if settings.ncbi_email else ""
    return f"il2watch (+{HOMEPAGE}{contact})"


def json_host(settings: Any, name: str, url_setting: str, rate: float) -> Host:
    """The Host of a JSON index: its base URL setting, its rate, the User-Agent naming il2watch and the
    lab, and a hint naming the setting to check when it cannot be reached."""
    from il2watch.config import OPTIONS_BY_ATTR

    return host_from_settings(
        settings,
        name=SOURCES.get(name, name),
        base_url=getattr(settings, url_setting),
        rate=rate,
        headers={"User-Agent": user_agent(settings)},
        hint=f"check the network, or {OPTIONS_BY_ATTR[url_setting].env}",
    )


class Source(Protocol):
    name: str  # "pubmed", "icite", "europepmc", "openalex"
    label: str  # "PubMed", "iCite", "Europe PMC", "OpenAlex"

    def find(self, request: Request) -> Finding:
        """Which works link to the watches now; raises SourceError (or TransportError) when it cannot answer."""
        ...

    def records(self, found: Sequence[Found]) -> Given:
        """Records of works without a PMID that this source listed and gave no record for inline."""
        ...

    def probe(self, pmid: str) -> str:
        """One request about a watched paper, for ``doctor``: one line saying what the source knows of it."""
        ...


# ---------------------------------------------------------------- helpers the JSON sources share

MAX_WARNINGS = 5  # odd records named one by one in a poll, per source and watch; the rest are counted


class Oddities:
    """The records of one source that could be read only in part or not at all this poll, per watch: one
    warning each naming the record (the poll line names the source), at most ``MAX_WARNINGS`` a watch and
    then a count."""

    def __init__(self, label: str):
        self.label = label
        self._seen: dict[str, list[str]] = {}

    def add(self, watch_id: str, record: object, what: str) -> None:
        lines = self._seen.setdefault(watch_id, [])
        line = f"record {shown(record)}: {what}"
        if line not in lines:
            lines.append(line)

    def read_in_part(self, watch_id: str, record: object, fields: Fields) -> None:
        """A record kept although some of its fields were odd (no-op when none were)."""
        if fields.odd:
            self.add(watch_id, record, f"{', '.join(fields.odd[:5])} of an unexpected type (kept without them)")

    def warnings(self) -> list[tuple[str, str]]:
        found = []
        for watch_id, lines in self._seen.items():
            found += [(watch_id, line) for line in lines[:MAX_WARNINGS]]
            if len(lines) > MAX_WARNINGS:
                found.append((watch_id, f"{len(lines) - MAX_WARNINGS} more odd records this poll"))
        return found


def shown(value: object, limit: int = 40) -> str:
    """Outside text as a short, printable name for a warning line."""
    text = "".join(c for c in str(value) if c.isprintable()).strip() or "(no id)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


_INLINE = re.compile(r"<(/?)(i|b|u|sup|sub)\s*>", re.IGNORECASE)
_BLOCK = re.compile(r"</?(?:h[1-6]|p|div|br|section|title|abstract)\b[^<>]{0,200}/?>", re.IGNORECASE)
_ANY_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")


def marked_from_html(text: object) -> str:
    """Europe PMC's and OpenAlex's HTML-ish text as il2watch's *marked text* (see ``il2watch.model``):
    ``<i> <b> <u> <sup> <sub>`` kept, headings and paragraphs turned into spaces, other tags dropped,
    everything else escaped."""
    raw = html.unescape(str(text or ""))
    raw = _BLOCK.sub(" ", raw)
    out: list[str] = []
    position = 0
    for match in _INLINE.finditer(raw):
        out.append(_escape(_ANY_TAG.sub("", raw[position : match.start()])))
        out.append(f"<{match.group(1)}{match.group(2).lower()}>")
        position = match.end()
    out.append(_escape(_ANY_TAG.sub("", raw[position:])))
    return squash("".join(out))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def read_json(answer: Answer, what: str) -> Any:
    """The JSON of an answer, or SourceError saying what arrived instead (an HTML page, half a document)."""
    body = answer.body
    head = body[:200].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
        raise SourceError(f"{what}: the answer is an HTML or XML page, not JSON (a proxy or maintenance page?)")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise SourceError(f"{what}: the answer is not complete JSON ({len(body):,} bytes)") from None


def iso_date(text: object) -> str:
    """YYYY-MM-DD from the start of a date or timestamp text; "" when there is none."""
    match = re.match(r"\s*(\d{4})-(\d{2})-(\d{2})", str(text or ""))
    if not match:
        return ""
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3))).isoformat()
    except ValueError:
        return ""


def printed_date(iso: str) -> str:
    """'2026 Oct 30' from '2026-10-30', as PubMed prints a publication date."""
    if not iso:
        return ""
    day = date.fromisoformat(iso)
    return f"{day.year} {day.strftime('%b')} {day.day}"
