"""The records il2watch passes between its rooms: plain, immutable, free of I/O.

Text that comes from PubMed (titles, abstract sections) is kept as *marked text*: the
characters of the original, HTML-escaped (``&amp;``, ``&lt;``, ``&gt;``), with PubMed's
inline tags ``<i> <b> <u> <sup> <sub>`` left in place. ``il2watch.markup`` turns it
into plain Unicode (for search and summaries) or Slack mrkdwn (for posts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from il2watch.identity import KINDS as ID_KINDS
from il2watch.identity import Ids, reader_url

KINDS = ("cites", "similar", "query")
# The citation indexes il2watch asks, and how posts and replies name them.
SOURCES = {"pubmed": "PubMed", "icite": "iCite", "europepmc": "Europe PMC", "openalex": "OpenAlex"}
AXES = ("treg", "effector", "both", "biology", "neighbour", "other")
# Servers whose records are preprints whatever their publication types say.
PREPRINT_SERVERS = frozenset({"biorxiv", "medrxiv", "research square", "ssrn", "preprints.org", "arxiv", "chemrxiv"})
FLAGS = ("retraction", "erratum", "preprint", "clinical-trial", "review")  # loudest first, as they are shown
# How posts, replies and exports name the axes and flags.
AXIS_LABELS = {
    "treg": "Treg-directed",
    "effector": "Effector-directed",
    "both": "Treg- and effector-directed",
    "biology": "IL-2 biology",
    "neighbour": "Near neighbour",
    "other": "Other",
}
FLAG_LABELS = {
    "review": "Review",
    "clinical-trial": "Clinical trial",
    "preprint": "Preprint",
    "erratum": "Erratum",
    "retraction": "Retraction",
}


@dataclass(frozen=True)
class Author:
    last_name: str = ""
    fore_name: str = ""
    initials: str = ""
    collective: str = ""  # a consortium or study group listed instead of a person
    suffix: str = ""  # "Jr", "Sr", "3rd", as PubMed prints it

    @property
    def name(self) -> str:
        """How a citation names the author: 'Hernandez R', 'Smith JA Jr', or the group's name."""
        if self.collective:
            return self.collective
        return " ".join(part for part in (self.last_name, self.initials or self.fore_name, self.suffix) if part)


@dataclass(frozen=True)
class Section:
    """One paragraph of an abstract; structured abstracts label theirs (METHODS, CONCLUSIONS…)."""

    text: str  # marked text
    label: str = ""  # as printed, e.g. "CONCLUSIONS"
    category: str = ""  # NLM's normalised category, e.g. "CONCLUSIONS", "RESULTS"


@dataclass(frozen=True)
class Paper:
    """A work as il2watch keeps it: a PubMed record, or a preprint or article from another index.

    ``key`` is the paper's identity in the library ("pmid:36261022", "doi:10.1101/…"), chosen when it was
    first stored and never changed; ``pmid`` is "" for a work PubMed does not have (yet).
    """

    pmid: str
    title: str  # marked text
    abstract: tuple[Section, ...] = ()
    authors: tuple[Author, ...] = ()
    journal: str = ""  # full title
    journal_iso: str = ""  # ISO abbreviation, e.g. "Nat Rev Immunol"
    pub_date: str = ""  # as PubMed prints it: "2022 Oct", "2021 Nov-Dec", "2013 Winter"
    pub_year: int | None = None
    volume: str = ""  # as printed: "22"
    issue: str = ""  # "10", "Suppl 2"
    pages: str = ""  # MEDLINE style, "614-628" or "614-28", or an article number such as "e1234"
    entry_date: str = ""  # EDAT, when PubMed added the record: "YYYY-MM-DD"
    doi: str = ""
    pmcid: str = ""  # "PMC1234567" when free full text exists in PMC
    pub_types: tuple[str, ...] = ()  # "Review", "Clinical Trial, Phase II", "Retracted Publication"…
    keywords: tuple[str, ...] = ()
    mesh: tuple[str, ...] = ()
    language: str = ""
    is_book: bool = False  # a PubmedBookArticle (book chapter, e.g. StatPearls)
    # Links to notices about this record: ("RetractionIn", "PMID"), ("ErratumIn", "PMID")…
    corrections: tuple[tuple[str, str], ...] = ()
    key: str = ""  # the library's identity of the paper; "" until it is stored
    ppr: str = ""  # Europe PMC preprint id, "PPR123456"
    openalex: str = ""  # OpenAlex work id, "W4213…"
    epmc: str = ""  # Europe PMC's id of a patent, thesis or other non-article record, "PAT/WO2024…"

    @property
    def ids(self) -> Ids:
        return Ids(
            pmid=self.pmid, doi=self.doi.lower(), pmcid=self.pmcid, ppr=self.ppr, epmc=self.epmc, openalex=self.openalex
        )

    @property
    def identity(self) -> str:
        """The library key when stored, else the key the paper would get."""
        return self.key or self.ids.key()

    @property
    def url(self) -> str:
        """Where a reader opens it: PubMed when it has a PMID, else its DOI, PMC, Europe PMC or OpenAlex."""
        ids = self.ids
        return next((reader_url(kind, getattr(ids, kind)) for kind in ID_KINDS if getattr(ids, kind)), "")

    @property
    def is_preprint(self) -> bool:
        """A preprint by its publication type or by the server that holds it (PubMed indexes some bioRxiv
        and medRxiv records with neither "Preprint" type nor DOI prefix to tell)."""
        server = (self.journal_iso or self.journal).casefold().split(":")[0].strip()
        return any(t.casefold() == "preprint" for t in self.pub_types) or server in PREPRINT_SERVERS


@dataclass(frozen=True)
class Reason:
    """Why a watch linked a paper. A paper keeps every reason it was found for."""

    watch: str  # the watch's id
    kind: str  # one of KINDS
    score: int | None = None  # PubMed's similarity score ("similar" only)
    rank: int | None = None  # 1 = most similar after the watched paper itself
    sources: tuple[str, ...] = ()  # the indexes that listed it: "pubmed", "icite", "europepmc", "openalex"


@dataclass(frozen=True)
class Watch:
    """What il2watch follows: a paper (its citations and similar articles) or a PubMed query."""

    id: str
    pmid: str = ""
    query: str = ""
    label: str = ""  # how posts name it, e.g. "the review"
    channel: str = ""  # overrides IL2WATCH_CHANNEL for this watch's posts
    source: str = "config"  # "config", or "slack" for watches added with /il2 watch add

    @property
    def kind(self) -> str:
        return "paper" if self.pmid else "query"

    @property
    def name(self) -> str:
        return self.label or (f"PMID {self.pmid}" if self.pmid else self.id)


def review_watch(watches: Iterable[Watch]) -> Watch | None:
    """The review, or whichever paper il2watch watches first: the watch ``/il2 cites`` lists."""
    return next((w for w in watches if w.pmid), None)


@dataclass(frozen=True)
class Insight:
    """What il2watch says about a paper: produced by ``il2watch.intel``, shown by ``render``."""

    summary: str  # plain text, at most 300 characters; says plainly when there is no abstract
    axis: str = "other"  # one of AXES
    is_il2: bool = False  # about IL-2 itself (either axis, or its biology)
    molecules: tuple[str, ...] = ()  # canonical names from the lexicon
    trials: tuple[str, ...] = ()  # "NCT01234567", "2015-001234-12"
    flags: tuple[str, ...] = ()  # "review", "clinical-trial", "preprint", "erratum", "retraction"
    relevance: float = 0.0  # 0-100, higher first
    relevance_why: tuple[str, ...] = field(default=())  # one line per contribution to the score


# What the renderers are given to learn what il2watch says about a paper: the stored insight, or one
# computed on the spot (``il2watch.insights.insight_for``).
InsightFor = Callable[[Paper, list[Reason]], Insight]
