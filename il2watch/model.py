"""The records il2watch passes between its rooms: plain, immutable, free of I/O.

Text that comes from PubMed (titles, abstract sections) is kept as *marked text*: the
characters of the original, HTML-escaped (``&amp;``, ``&lt;``, ``&gt;``), with PubMed's
inline tags ``<i> <b> <u> <sup> <sub>`` left in place. ``il2watch.markup`` turns it
into plain Unicode (for search and summaries) or Slack mrkdwn (for posts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("cites", "similar", "query")
AXES = ("treg", "effector", "both", "biology", "neighbour", "other")


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

    @property
    def url(self) -> str:
        return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/"

    @property
    def doi_url(self) -> str:
        return f"https://doi.org/{self.doi}" if self.doi else ""

    @property
    def pmc_url(self) -> str:
        return f"https://www.ncbi.nlm.nih.gov/pmc/articles/{self.pmcid}/" if self.pmcid else ""


@dataclass(frozen=True)
class Reason:
    """Why a watch linked a paper. A paper keeps every reason it was found for."""

    watch: str  # the watch's id
    kind: str  # one of KINDS
    score: int | None = None  # PubMed's similarity score ("similar" only)
    rank: int | None = None  # 1 = most similar after the watched paper itself


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
