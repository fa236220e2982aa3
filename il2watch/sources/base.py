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
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from il2watch.identity import Ids
from il2watch.markup import squash
from il2watch.model import Paper, Watch


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


@dataclass(frozen=True)
class Request:
    """What discovery asks every source in one poll: the watches, what the library remembers for the
    sources (resolved ids), and for PubMed the entry-date window of each query watch and how many links
    each paper watch already has (so that an empty answer can be told from a PMID PubMed lacks)."""

    watches: tuple[Watch, ...]
    memory: Mapping[str, str] = field(default_factory=dict)
    windows: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # watch id -> (mindate, maxdate)
    known_links: Mapping[str, int] = field(default_factory=dict)  # watch id -> links the library holds
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


class Source(Protocol):
    name: str  # "pubmed", "icite", "europepmc", "openalex"
    label: str  # "PubMed", "iCite", "Europe PMC", "OpenAlex"

    def find(self, request: Request) -> Finding:
        """Which works link to the watches now; raises SourceError (or TransportError) when it cannot answer."""
        ...

    def records(self, found: Sequence[Found]) -> list[SourceRecord]:
        """Records of works without a PMID that this source listed and gave no record for inline."""
        ...

    def probe(self, pmid: str) -> str:
        """One request about a watched paper, for ``doctor``: one line saying what the source knows of it."""
        ...


# ---------------------------------------------------------------- helpers the JSON sources share

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
