"""A small model of PubMed, and its answers written in NCBI's XML shapes.

``PubMedWorld`` holds records, who cites whom, similar-article scores and registered
queries; tests change it while a stand-in server answers from it. The ``*_xml``
functions write each E-utility's answer with the DOCTYPE lines NCBI sends, because
``Bio.Entrez.read`` refuses a document without one and loads its DTD by file name.

Text fields of a ``Record`` (title, abstract sections, names) are plain Unicode in which
PubMed's inline tags ``<i> <b> <u> <sup> <sub>`` may appear. They are written as XML
child markup, the way PubMed writes them, and every other ``& < >`` is escaped; so
``Entrez.read(..., escape=True)`` hands back exactly ``marked_text(field)``.
"""

from __future__ import annotations

import calendar
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

# ---------------------------------------------------------------------------- XML headers

UTF8_DECLARATION = '<?xml version="1.0" encoding="UTF-8" ?>\n'
ELINK_DOCTYPE = (
    '<!DOCTYPE eLinkResult PUBLIC "-//NLM//DTD elink 20101123//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20101123/elink.dtd">\n'
)
ESEARCH_DOCTYPE = (
    '<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n'
)
EPOST_DOCTYPE = (
    '<!DOCTYPE ePostResult PUBLIC "-//NLM//DTD epost 20090526//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20090526/epost.dtd">\n'
)
ESUMMARY_DOCTYPE = (
    '<!DOCTYPE eSummaryResult PUBLIC "-//NLM//DTD esummary v1 20041029//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20041029/esummary-v1.dtd">\n'
)
EINFO_DOCTYPE = (
    '<!DOCTYPE eInfoResult PUBLIC "-//NLM//DTD einfo 20190110//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20190110/einfo.dtd">\n'
)
PUBMED_DECLARATION = '<?xml version="1.0" ?>\n'
PUBMED_DOCTYPE = (
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
)
# EFetch's error document. NCBI really spells the DOCTYPE name "eEfetchResult"; Biopython
# ships no efetch.dtd, so Entrez.read tries to download it (and fails offline).
EFETCH_ERROR_DOCTYPE = (
    '<!DOCTYPE eEfetchResult PUBLIC "-//NLM//DTD efetch 20131226//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20131226/efetch.dtd">\n'
)

MONTHS = tuple(calendar.month_abbr)[1:]  # ("Jan", ..., "Dec")

PUBLICATION_TYPE_UI = {
    "Journal Article": "D016428",
    "Review": "D016454",
    "Systematic Review": "D000078182",
    "Meta-Analysis": "D017418",
    "Clinical Trial": "D016430",
    "Clinical Trial, Phase I": "D017426",
    "Clinical Trial, Phase II": "D017427",
    "Randomized Controlled Trial": "D016449",
    "Observational Study": "D064888",
    "Case Reports": "D002363",
    "Comment": "D016420",
    "Letter": "D016422",
    "Editorial": "D016421",
    "Published Erratum": "D016425",
    "Retracted Publication": "D016441",
    "Retraction of Publication": "D016440",
    "Preprint": "D000076942",
    "English Abstract": "D004740",
    "Research Support, N.I.H., Extramural": "D052061",
    "Research Support, Non-U.S. Gov't": "D013485",
}
MESH_UI = {
    "Humans": "D006801",
    "Animals": "D000818",
    "Mice": "D051379",
    "Female": "D005260",
    "Male": "D008297",
    "Interleukin-2": "D007376",
}

# ---------------------------------------------------------------------------- text

_INLINE_TAG = re.compile(r"</?(?:i|b|u|sup|sub)>")
_WORD = re.compile(r"\w+")


def escape(text: str) -> str:
    """XML-escape character data (the same three characters Bio.Entrez's escape mode does)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attribute(text: str) -> str:
    return escape(text).replace('"', "&quot;")


def marked_text(text: str) -> str:
    """A field as PubMed's XML carries it: inline tags kept and balanced, everything else escaped.

    This is also what ``Entrez.read(handle, escape=True)`` returns for that field.
    """
    out: list[str] = []
    open_tags: list[str] = []
    position = 0
    for match in _INLINE_TAG.finditer(text):
        out.append(escape(text[position : match.start()]))
        position = match.end()
        tag = match.group(0)
        name = tag.strip("</>")
        if not tag.startswith("</"):
            open_tags.append(name)
            out.append(tag)
        elif name in open_tags:  # a stray closer is dropped: the document must stay well-formed
            while open_tags:
                top = open_tags.pop()
                out.append(f"</{top}>")
                if top == name:
                    break
    out.append(escape(text[position:]))
    out.extend(f"</{name}>" for name in reversed(open_tags))
    return "".join(out)


def plain_text(text: str) -> str:
    """The field without its inline tags (what a reader sees, unescaped)."""
    return _INLINE_TAG.sub("", text)


def words(text: str) -> tuple[str, ...]:
    """Lower-case word tokens: how the model searches ("IL-2" is the phrase "il 2")."""
    return tuple(_WORD.findall(plain_text(text).lower()))


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Author:
    last: str = ""
    fore: str = ""
    initials: str = ""
    collective: str = ""  # a consortium or study group instead of a person
    affiliation: str = ""
    suffix: str = ""  # "Jr", "Sr", "3rd"

    @property
    def short_name(self) -> str:
        """How ESummary and citations name an author: 'Hernandez R', or the group."""
        return self.collective or " ".join(p for p in (self.last, self.initials) if p)


@dataclass(frozen=True)
class Record:
    """One PubMed record. Text fields may carry PubMed's inline tags (see the module docstring)."""

    pmid: str
    title: str
    # (label, NLM category, text) per paragraph; ("", "", text) for an unstructured abstract
    abstract: tuple[tuple[str, str, str], ...] = ()
    authors: tuple[Author, ...] = ()
    journal: str = ""  # full journal title; for a book, the book title
    journal_iso: str = ""
    issn: str = ""
    nlm_unique_id: str = ""
    country: str = ""
    volume: str = ""
    issue: str = ""
    pages: str = ""  # "614-628", or an article number such as "e1234"
    pub_year: int = 0
    pub_month: str = ""  # "Oct"
    pub_day: str = ""
    medline_date: str = ""  # "2021 Nov-Dec": replaces Year/Month/Day in PubDate
    pub_season: str = ""  # "Winter", "Jan-Mar": PubDate's <Season>, in place of Month and Day
    entry_date: date = date(2000, 1, 1)  # EDAT
    entry_time: tuple[int, int] = (6, 0)  # hour, minute written into History
    doi: str = ""
    pmcid: str = ""
    pub_types: tuple[str, ...] = ("Journal Article",)
    keywords: tuple[str, ...] = ()
    mesh: tuple[str, ...] = ()  # a trailing "*" marks a major topic, as PubMed displays it
    language: str = "eng"
    vernacular_title: str = ""
    # notices about this record: ("RetractionIn", "37845510"), ("ErratumFor", "36104521")…
    corrections: tuple[tuple[str, str], ...] = ()
    citation_status: str = "MEDLINE"  # MedlineCitation/@Status
    publication_status: str = "ppublish"  # PubmedData/PublicationStatus
    pub_model: str = "Print-Electronic"
    copyright: str = ""
    is_book: bool = False
    publisher: str = ""
    publisher_location: str = ""
    book_accession: str = ""  # "NBK555555"
    # (old, new) replacements made in the record's rendered XML: the shapes real records take that the
    # fields above cannot say (MathML, an element the DTD does not know, a missing <Article>, …)
    replace_xml: tuple[tuple[str, str], ...] = ()
    drop_elements: tuple[str, ...] = ()  # elements left out of the rendered record ("Article")

    @property
    def pub_date_text(self) -> str:
        """PubDate as PubMed prints it: '2022 Oct', '2021 Nov-Dec'."""
        if self.medline_date:
            return self.medline_date
        if self.pub_season:
            return f"{self.pub_year} {self.pub_season}"
        return " ".join(str(p) for p in (self.pub_year, self.pub_month, self.pub_day) if p)

    @property
    def pub_date(self) -> date:
        """The first day of the publication period, for PDAT limits and sorting."""
        if self.medline_date:
            year_match = re.search(r"\d{4}", self.medline_date)
            year = int(year_match.group(0)) if year_match else self.entry_date.year
            month = next((i + 1 for i, m in enumerate(MONTHS) if m in self.medline_date), 1)
            return date(year, month, 1)
        year = self.pub_year or self.entry_date.year
        month = _month_number(self.pub_month) or 1
        day = int(self.pub_day) if str(self.pub_day).isdigit() else 1
        return date(year, month, min(day, calendar.monthrange(year, month)[1]))

    @property
    def citation(self) -> str:
        """'Nat Rev Immunol. 2022 Oct;22(10):614-628', as RefSource and ESummary's SO use it."""
        if self.is_book:
            place = f"{self.publisher_location}: " if self.publisher_location else ""
            return f"{plain_text(self.journal)}. {place}{self.publisher}; {self.pub_date_text}"
        issue = f"({self.issue})" if self.issue else ""
        pages = f":{self.pages}" if self.pages else ""
        return f"{self.journal_iso}. {self.pub_date_text};{self.volume}{issue}{pages}"


def _month_number(month: str | int) -> int:
    if isinstance(month, int):
        return month
    if month.isdigit():
        return int(month)
    return MONTHS.index(month[:3].title()) + 1 if month[:3].title() in MONTHS else 0


def record(pmid: str | int, **overrides: object) -> Record:
    """A believable journal article; pass any ``Record`` field to change it.

    ``entry_date`` may be a ``date`` or "YYYY-MM-DD"; unless given, the publication date
    follows the entry date. Lists are accepted wherever the record keeps tuples.
    """
    pmid = str(pmid)
    entry = overrides.pop("entry_date", date(2024, 1, 15))
    if isinstance(entry, str):
        entry = date.fromisoformat(entry)
    if not isinstance(entry, date):
        raise TypeError(f"entry_date must be a date or 'YYYY-MM-DD', not {entry!r}")
    fields: dict[str, object] = {
        "title": f"Interleukin-2 receptor signalling in regulatory T cells: study {pmid}.",
        "abstract": (
            (
                "",
                "",
                "We measured IL-2 receptor signalling in regulatory and conventional T cells "
                "and found that regulatory T cells responded to lower doses.",
            ),
        ),
        "authors": (
            Author("Doe", "Jane", "J", affiliation="Department of Immunology, Example University."),
            Author("Roe", "Richard", "R"),
        ),
        "journal": "Journal of immunology (Baltimore, Md. : 1950)",
        "journal_iso": "J Immunol",
        "issn": "1550-6606",
        "nlm_unique_id": "2985117R",
        "country": "United States",
        "volume": "212",
        "issue": "4",
        "pages": "501-510",
        "pub_year": entry.year,
        "pub_month": MONTHS[entry.month - 1],
        "doi": f"10.5555/standin.{pmid}",
    }
    fields.update(overrides)
    for name, value in fields.items():
        if isinstance(value, list):
            fields[name] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return Record(pmid=pmid, entry_date=entry, **fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- dates

DATE_TYPES = {
    "edat": "Date - Entry",
    "crdt": "Date - Create",
    "mdat": "Date - Modification",
    "pdat": "Date - Publication",
}


def parse_limit_date(text: str, *, end: bool) -> date:
    """'YYYY', 'YYYY/MM' or 'YYYY/MM/DD' (also with '-' or '.'); the period's first or last day."""
    parts = [p for p in re.split(r"[/\-.]", text.strip()) if p]
    if not parts or len(parts) > 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"Invalid date: {text!r}")
    year = int(parts[0])
    month = int(parts[1]) if len(parts) > 1 else (12 if end else 1)
    if len(parts) > 2:
        day = int(parts[2])
    else:
        day = calendar.monthrange(year, month)[1] if end else 1
    return date(year, month, day)


@dataclass(frozen=True)
class DateLimit:
    """ESearch's and ELink's datetype/mindate/maxdate/reldate, resolved into a closed range."""

    datetype: str = "edat"  # edat, crdt and mdat read the entry date; pdat the publication date
    start: date | None = None
    end: date | None = None

    @classmethod
    def from_params(cls, datetype: str, mindate: str, maxdate: str, reldate: str, today: date) -> DateLimit | None:
        """None when no limit was asked for; ValueError when one is malformed."""
        datetype = (datetype or "pdat").lower()
        if not (mindate or maxdate or reldate):
            return None
        if datetype not in DATE_TYPES:
            raise ValueError(f"Invalid datetype: {datetype}")
        start = parse_limit_date(mindate, end=False) if mindate else None
        end = parse_limit_date(maxdate, end=True) if maxdate else None
        if reldate:
            if not reldate.strip().isdigit():
                raise ValueError(f"Invalid reldate: {reldate!r}")
            since = today - timedelta(days=int(reldate))
            start = max(start, since) if start else since
            end = min(end, today) if end else today
        return cls(datetype, start, end)

    def date_of(self, rec: Record) -> date:
        return rec.pub_date if self.datetype == "pdat" else rec.entry_date

    def admits(self, rec: Record | None) -> bool:
        if rec is None:
            return False
        value = self.date_of(rec)
        return (self.start is None or value >= self.start) and (self.end is None or value <= self.end)

    @property
    def translation(self) -> str:
        start = self.start.strftime("%Y/%m/%d") if self.start else "1000/01/01"
        end = self.end.strftime("%Y/%m/%d") if self.end else "3000/12/31"
        return f"{start}:{end}[{DATE_TYPES[self.datetype]}]"


# ---------------------------------------------------------------------------- queries

_QUERY_TOKEN = re.compile(
    r"\s*(?:(?P<open>\()|(?P<close>\))|(?P<colon>:)"
    r'|"(?P<quoted>[^"]*)"?(?:\s*\[(?P<qfield>[^\]]*)\]?)?'
    r'|(?P<word>[^\s()"\[\]:]+)(?:\[(?P<wfield>[^\]]*)\]?)?'
    r"|\[(?P<stray>[^\]]*)\]?)"
)
_TEXT_FIELDS = {
    "": "All Fields",
    "all fields": "All Fields",
    "all": "All Fields",
    "tiab": "Title/Abstract",
    "title/abstract": "Title/Abstract",
    "tw": "Text Word",
    "text word": "Text Word",
    "ti": "Title",
    "title": "Title",
    "ab": "Abstract",
    "abstract": "Abstract",
}
_FIELD_ALIASES = {
    "au": "author",
    "author": "author",
    "1au": "author",
    "lastau": "author",
    "fau": "author",
    "full author name": "author",
    "pt": "pubtype",
    "ptyp": "pubtype",
    "publication type": "pubtype",
    "mh": "mesh",
    "mesh": "mesh",
    "mesh terms": "mesh",
    "majr": "mesh",
    "mesh major topic": "mesh",
    "la": "language",
    "lang": "language",
    "language": "language",
    "uid": "pmid",
    "pmid": "pmid",
    "ta": "journal",
    "jour": "journal",
    "journal": "journal",
    "sb": "subset",
    "filter": "subset",
    "subset": "subset",
    "edat": "edat",
    "date - entry": "edat",
    "entrez date": "edat",
    "crdt": "edat",
    "date - create": "edat",
    "mhda": "edat",
    "mdat": "edat",
    "dp": "pdat",
    "pdat": "pdat",
    "date - publication": "pdat",
    "publication date": "pdat",
    "doi": "doi",
    "aid": "doi",
    "lid": "doi",
    "location id": "doi",
}
_LANGUAGES = {"english": "eng", "german": "ger", "french": "fre", "spanish": "spa", "chinese": "chi", "japanese": "jpn"}


@dataclass(frozen=True)
class _Term:
    field: str  # a _TEXT_FIELDS label or a _FIELD_ALIASES value
    raw: str
    tokens: tuple[str, ...]
    wildcard: bool


@dataclass(frozen=True)
class _Range:
    datetype: str
    start: date
    end: date


@dataclass(frozen=True)
class _Op:
    op: str  # AND, OR, NOT
    left: object
    right: object


@dataclass(frozen=True)
class _Group:
    inner: object


@dataclass(frozen=True)
class _HistoryRef:
    """``#2``: the id list kept under query key 2 of the request's WebEnv."""

    key: str


# PubMed's Comment Correction Type filters, and the CommentsCorrections RefType each selects.
CORRECTION_FILTERS = {
    "hasretractionin": "RetractionIn",
    "hasretractionof": "RetractionOf",
    "haspartialretractionin": "PartialRetractionIn",
    "haserratumin": "ErratumIn",
    "haserratumfor": "ErratumFor",
    "hasexpressionofconcernin": "ExpressionOfConcernIn",
    "hasexpressionofconcernfor": "ExpressionOfConcernFor",
    "hasupdatein": "UpdateIn",
    "hasupdateof": "UpdateOf",
    "hascorrectedrepublishedin": "CorrectedandRepublishedIn",
    "hascorrectedrepublishedfrom": "CorrectedandRepublishedFrom",
    "hasretractedandrepublishedin": "RetractedandRepublishedIn",
    "hasretractedandrepublishedfrom": "RetractedandRepublishedFrom",
    "hascommentin": "CommentIn",
}
_HISTORY_REF = re.compile(r"#(\d+)")


def _lex(term: str) -> list[tuple]:
    tokens: list[tuple] = []
    position = 0
    while position < len(term):
        match = _QUERY_TOKEN.match(term, position)
        if not match or match.end() == position:
            position += 1
            continue
        position = match.end()
        if match.group("open"):
            tokens.append(("(",))
        elif match.group("close"):
            tokens.append((")",))
        elif match.group("colon"):
            tokens.append((":",))
        elif match.group("quoted") is not None:
            tokens.append(("term", match.group("quoted"), match.group("qfield") or "", True))
        elif match.group("word") is not None:
            word, fieldname = match.group("word"), match.group("wfield")
            if word in ("AND", "OR", "NOT") and fieldname is None:
                tokens.append(("op", word))
            else:
                tokens.append(("term", word, fieldname or "", False))
    # As in PubMed, a tag applies to the run of bare words before it: "Poder J[au]" is one author.
    grouped: list[tuple] = []
    for token in tokens:
        if token[0] == "term" and token[2] and not token[3]:
            run: list[str] = []
            while grouped and grouped[-1][0] == "term" and not grouped[-1][2] and not grouped[-1][3]:
                run.insert(0, grouped.pop()[1])
            token = ("term", " ".join(run + [token[1]]), token[2], False)
        grouped.append(token)
    # Balance parentheses so the parser never meets a surprise.
    balanced: list[tuple] = []
    depth = 0
    for token in grouped:
        if token[0] == ")":
            if depth == 0:
                continue
            depth -= 1
        elif token[0] == "(":
            depth += 1
        balanced.append(token)
    return balanced + [(")",)] * depth


def _make_term(raw: str, fieldname: str) -> object:
    key = fieldname.strip().lower()
    kind = _FIELD_ALIASES.get(key)
    if not key and _HISTORY_REF.fullmatch(raw):
        return _HistoryRef(raw[1:])
    if raw.strip().lower() in CORRECTION_FILTERS and (not key or kind == "subset"):
        return _Term("subset", raw, (raw.strip().lower(),), False)
    if kind in ("edat", "pdat"):
        try:
            return _Range(kind, parse_limit_date(raw, end=False), parse_limit_date(raw, end=True))
        except ValueError:
            pass
    wildcard = raw.endswith("*")
    if key and kind is None and key not in _TEXT_FIELDS:
        return _Term(UNKNOWN_FIELD + fieldname.strip(), raw, words(raw.rstrip("*")), wildcard)
    label = kind if kind and kind not in ("edat", "pdat") else _TEXT_FIELDS.get(key, "All Fields")
    return _Term(label, raw, words(raw.rstrip("*")), wildcard)


UNKNOWN_FIELD = "unknown:"  # a term tagged with a field PubMed does not have


def parse_query(term: str) -> object | None:
    """PubMed's syntax, evaluated left to right as PubMed does: AND/OR/NOT, (), "phrases",
    [field] tags, trailing-* wildcards, and date ranges like 2024/01/01:2024/12/31[edat]."""
    tokens = _lex(term)
    position = 0

    def unit() -> object | None:
        nonlocal position
        token = tokens[position]
        position += 1
        if token[0] == "(":
            inner = expression()
            position += 1  # the matching ")" (guaranteed by _lex)
            return _Group(inner) if inner is not None else None
        if token[0] != "term":
            return None
        _, raw, fieldname, _quoted = token
        if position + 1 < len(tokens) and tokens[position][0] == ":" and tokens[position + 1][0] == "term":
            end_raw, end_field = tokens[position + 1][1], tokens[position + 1][2] or fieldname
            kind = _FIELD_ALIASES.get(end_field.strip().lower())
            if kind in ("edat", "pdat"):
                try:
                    start = parse_limit_date(raw, end=False)
                    end = parse_limit_date(end_raw, end=True)
                    position += 2
                    return _Range(kind, start, end)
                except ValueError:
                    pass
        return _make_term(raw, fieldname)

    def expression() -> object | None:
        nonlocal position
        node = None
        while position < len(tokens) and tokens[position][0] != ")":
            op = "AND"
            if tokens[position][0] == "op":
                op = tokens[position][1]
                position += 1
                if position >= len(tokens) or tokens[position][0] == ")":
                    break
            right = unit()
            if right is None:
                continue
            node = right if node is None else _Op(op, node, right)
        return node

    return expression()


def _translate(node: object) -> str:
    if isinstance(node, _Term):
        label = {
            "author": "Author",
            "pubtype": "Publication Type",
            "mesh": "MeSH Terms",
            "language": "Language",
            "pmid": "UID",
            "journal": "Journal",
            "subset": "Filter",
        }
        name = label.get(node.field, node.field)
        text = node.raw.rstrip("*") if node.field in ("pmid",) else " ".join(node.tokens)
        return f'"{text}{"*" if node.wildcard else ""}"[{name}]'
    if isinstance(node, _Range):
        return DateLimit(node.datetype, node.start, node.end).translation
    if isinstance(node, _Op):
        return f"{_translate(node.left)} {node.op} {_translate(node.right)}"
    if isinstance(node, _Group):
        return f"({_translate(node.inner)})"
    if isinstance(node, _HistoryRef):
        return f"#{node.key}"
    return ""


def _pruned(node: object, known: Callable[[_Term], bool], dropped: dict[str, list[str]]) -> object | None:
    """The query without the terms PubMed drops: unknown words (PhraseNotFound) and fields (FieldNotFound)."""
    if isinstance(node, _Term):
        if node.field.startswith(UNKNOWN_FIELD):
            dropped["fields"].append(node.field[len(UNKNOWN_FIELD) :])
            return None
        if node.field in _TEXT_FIELDS.values() and not known(node):
            dropped["phrases"].append(node.raw)
            return None
        return node
    if isinstance(node, _Group):
        inner = _pruned(node.inner, known, dropped)
        return _Group(inner) if inner is not None else None
    if isinstance(node, _Op):
        left, right = _pruned(node.left, known, dropped), _pruned(node.right, known, dropped)
        if left is None:
            return None if node.op == "NOT" else right
        return left if right is None else _Op(node.op, left, right)
    return node


def _phrase_in(index: str, tokens: tuple[str, ...], wildcard: bool) -> bool:
    if not tokens:
        return False
    needle = " " + " ".join(tokens) + ("" if wildcard else " ")
    return needle in index


@dataclass(frozen=True)
class _SearchIndex:
    """Per-record strings of space-separated tokens, so phrase matching is a substring test."""

    title: str
    abstract: str
    author: str
    pubtype: str
    mesh: str
    journal: str
    vocabulary: frozenset[str]

    @classmethod
    def of(cls, rec: Record) -> _SearchIndex:
        def joined(parts: Iterable[str]) -> str:
            return " " + " | ".join(" ".join(words(p)) for p in parts) + " "

        title_words = words(rec.title)
        abstract_words = tuple(w for _, _, text in rec.abstract for w in words(text))
        names = [a.collective or f"{a.last} {a.initials}" for a in rec.authors]
        names += [f"{a.last} {a.fore}" for a in rec.authors if a.fore]
        return cls(
            title=" " + " ".join(title_words) + " ",
            abstract=" " + " ".join(abstract_words) + " ",
            author=joined(names),
            pubtype=joined(rec.pub_types),
            mesh=joined(m.rstrip("*") for m in rec.mesh),
            journal=joined((rec.journal, rec.journal_iso)),
            vocabulary=frozenset(title_words + abstract_words),
        )


@dataclass(frozen=True)
class SearchResult:
    pmids: list[str]  # newest entry first unless another sort was asked for
    translation: str
    phrases_not_found: list[str]  # terms none of whose words occur anywhere: dropped, as PubMed drops them
    fields_not_found: list[str] = field(default_factory=list)  # [tags] PubMed does not have: dropped


# ---------------------------------------------------------------------------- the world

LINK_NAMES = (
    "pubmed_pubmed",
    "pubmed_pubmed_citedin",
    "pubmed_pubmed_five",
    "pubmed_pubmed_refs",
    "pubmed_pubmed_reviews",
)
_SIMILAR_FAMILY = ("pubmed_pubmed", "pubmed_pubmed_five", "pubmed_pubmed_reviews")

_SYNTHETIC_AGENTS = (
    "an engineered IL-2 mutein",
    "low-dose interleukin-2",
    "an IL-2/anti-IL-2 antibody complex",
    "a CD25-biased IL-2 variant",
    "a not-alpha IL-2 variant",
    "PEGylated interleukin-2",
)
_SYNTHETIC_SETTINGS = (
    "regulatory T cell expansion",
    "NK cell activation",
    "CD8<sup>+</sup> T cell memory",
    "type 1 diabetes",
    "lupus nephritis",
    "graft-versus-host disease",
    "metastatic melanoma",
    "renal cell carcinoma",
)
_SYNTHETIC_AUTHORS = (
    Author("Andersen", "Mette", "M"),
    Author("Kowalczyk", "Paweł", "P"),
    Author("Osei", "Kwame", "K"),
)


class PubMedWorld:
    """Records and their links, safe to change from a test while a server reads them."""

    def __init__(self, records: Iterable[Record] = (), *, today: date | Callable[[], date] | None = None):
        self._lock = threading.RLock()
        self._records: dict[str, Record] = {}
        self._index: dict[str, _SearchIndex] = {}
        self._vocabulary: Counter[str] = Counter()
        self._cited_by: dict[str, set[str]] = {}
        self._references: dict[str, set[str]] = {}
        self._similar: dict[str, tuple[list[tuple[str, int]], int]] = {}
        self._queries: dict[str, tuple[list[str], str]] = {}
        self._xml_cache: dict[str, str] = {}
        self._withdrawn: dict[str, str] = {}
        # pmid → records whose XML cites it (ReferenceList, RefSource): re-rendered when it changes
        self._mentioned_by: dict[str, set[str]] = {}
        if today is None:
            self._today: Callable[[], date] = date.today
        elif isinstance(today, date):
            self._today = lambda: today
        else:
            self._today = today
        self.add(*records)

    # -- time

    def today(self) -> date:
        """The world's 'today', for reldate limits; settable so tests do not depend on the calendar."""
        return self._today()

    def set_today(self, today: date | Callable[[], date]) -> None:
        self._today = today if callable(today) else (lambda: today)

    # -- records

    def add(self, *records: Record) -> None:
        """Add records, replacing any with the same PMID (a corrected record)."""
        with self._lock:
            for rec in records:
                old = self._index.get(rec.pmid)
                if old is not None:
                    self._vocabulary.subtract(old.vocabulary)
                index = _SearchIndex.of(rec)
                self._vocabulary.update(index.vocabulary)
                self._records[rec.pmid] = rec
                self._index[rec.pmid] = index
                for _, target in rec.corrections:
                    self._mentioned_by.setdefault(target, set()).add(rec.pmid)
                self._forget_xml(rec.pmid)

    def amend(self, pmid: str, *, corrections: Iterable[tuple[str, str]] = (), pub_types: Iterable[str] = ()) -> Record:
        """PubMed's record of ``pmid`` as it reads after NLM links a notice to it: ``corrections`` added to
        its CommentsCorrectionsList and ``pub_types`` to its publication types (a retraction makes it a
        "Retracted Publication"), everything else kept. Returns the new record."""
        with self._lock:
            old = self._records[str(pmid)]
            added = tuple((str(kind), str(target)) for kind, target in corrections)
            amended = replace(
                old,
                corrections=old.corrections + tuple(c for c in added if c not in old.corrections),
                pub_types=old.pub_types + tuple(t for t in pub_types if t not in old.pub_types),
            )
            self.add(amended)
            return amended

    def remove(self, pmid: str) -> None:
        """Withdraw a record (its links stay, as deleted PMIDs linger in NCBI's link tables)."""
        with self._lock:
            old = self._index.pop(str(pmid), None)
            if old is not None:
                self._vocabulary.subtract(old.vocabulary)
            self._records.pop(str(pmid), None)
            self._forget_xml(str(pmid))

    def withdraw(self, pmid: str, *, message: str = "") -> None:
        """Delete a record as PubMed deletes or merges one: it is gone, and ELink answers an ERROR in its
        LinkSet (``message``, by default NCBI's wording) instead of its links."""
        with self._lock:
            self.remove(pmid)
            self._withdrawn[str(pmid)] = message or f"ID {pmid} is not valid for the database pubmed"

    def withdrawn(self, pmid: str) -> str:
        """The ELink error for a withdrawn PMID, or ""."""
        with self._lock:
            return self._withdrawn.get(str(pmid), "")

    def _forget_xml(self, pmid: str) -> None:
        self._xml_cache.pop(pmid, None)
        for other in self._mentioned_by.get(pmid, ()):
            self._xml_cache.pop(other, None)

    def get(self, pmid: str) -> Record | None:
        with self._lock:
            return self._records.get(str(pmid))

    def __contains__(self, pmid: object) -> bool:
        with self._lock:
            return str(pmid) in self._records

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def pmids(self) -> list[str]:
        with self._lock:
            return list(self._records)

    # -- links

    def cite(self, citing: str, cited: str) -> None:
        """Record that ``citing`` cites ``cited`` (ELink's pubmed_pubmed_citedin of ``cited``)."""
        citing, cited = str(citing), str(cited)
        with self._lock:
            self._cited_by.setdefault(cited, set()).add(citing)
            self._references.setdefault(citing, set()).add(cited)
            self._mentioned_by.setdefault(cited, set()).add(citing)
            self._xml_cache.pop(citing, None)

    def citing(self, cited: str) -> list[str]:
        """PMIDs citing ``cited``, newest PMID first (ELink's order)."""
        with self._lock:
            return sorted(self._cited_by.get(str(cited), ()), key=int, reverse=True)

    def references(self, citing: str) -> list[str]:
        with self._lock:
            return sorted(self._references.get(str(citing), ()), key=int, reverse=True)

    def set_similar(self, pmid: str, neighbours: Sequence[tuple[str, int]], *, self_score: int | None = None) -> None:
        """Similar articles of ``pmid`` with PubMed-style integer scores.

        ELink lists the article itself first; its score is ``self_score`` or, by default,
        twice the best neighbour's, so it is always the highest.
        """
        ranked = sorted(((str(p), int(s)) for p, s in neighbours if str(p) != str(pmid)), key=lambda n: -n[1])
        best = ranked[0][1] if ranked else 0
        with self._lock:
            self._similar[str(pmid)] = (ranked, self_score if self_score is not None else max(best * 2, 1))

    def derive_similar(self, pmid: str, *, limit: int = 100) -> list[tuple[str, int]]:
        """Set ``pmid``'s similar articles from shared title/abstract words, and return them."""
        with self._lock:
            own = self._index.get(str(pmid))
            if own is None:
                return []
            scored = []
            for other, index in self._index.items():
                if other == str(pmid):
                    continue
                shared = len(own.vocabulary & index.vocabulary)
                if shared:
                    union = len(own.vocabulary | index.vocabulary)
                    scored.append((other, int(100_000_000 * shared / union)))
            scored.sort(key=lambda n: (-n[1], -int(n[0])))
            self.set_similar(str(pmid), scored[:limit])
            return scored[:limit]

    def similar(self, pmid: str) -> list[tuple[str, int]]:
        """ELink's pubmed_pubmed for one article: itself first, then by descending score."""
        with self._lock:
            entry = self._similar.get(str(pmid))
            if not entry or not entry[0]:
                return []
            ranked, self_score = entry
            return [(str(pmid), self_score)] + list(ranked)

    def link_sets(
        self,
        ids: Sequence[str],
        *,
        linkname: str = "",
        limit: DateLimit | None = None,
        term: str = "",
    ) -> list[tuple[str, list[tuple[str, int]]]]:
        """The pubmed→pubmed link sets of ``ids`` merged (ELink's comma-joined form).

        Returns [(link name, [(pmid, score)])] in NCBI's order, leaving out empty sets.
        A date limit or a term keeps only linked records that exist and match, and then
        lists them newest first, as NCBI does.
        """
        ids = [str(i) for i in ids]
        with self._lock:
            similar: dict[str, int] = {}
            for pmid in ids:
                for other, score in self.similar(pmid):
                    similar[other] = max(score, similar.get(other, 0))
            ranked_similar = sorted(similar.items(), key=lambda n: (-n[1], -int(n[0])))
            citedin = sorted({c for pmid in ids for c in self._cited_by.get(pmid, ())}, key=int, reverse=True)
            refs = sorted({r for pmid in ids for r in self._references.get(pmid, ())}, key=int, reverse=True)
            sets: dict[str, list[tuple[str, int]]] = {
                "pubmed_pubmed": ranked_similar,
                "pubmed_pubmed_citedin": [(p, 0) for p in citedin],
                "pubmed_pubmed_five": ranked_similar[:5],
                "pubmed_pubmed_refs": [(p, 0) for p in refs],
                "pubmed_pubmed_reviews": [
                    (p, s) for p, s in ranked_similar if p in self._records and "Review" in self._records[p].pub_types
                ],
            }
            keep: set[str] | None = None
            if term:
                keep = set(self.search(term).pmids)
            answer = []
            for name in LINK_NAMES:
                if linkname and name != linkname:
                    continue
                links = sets[name]
                if limit is not None or keep is not None:
                    links = [
                        (p, s)
                        for p, s in links
                        if p in self._records
                        and (limit is None or limit.admits(self._records[p]))
                        and (keep is None or p in keep)
                    ]
                    if name in _SIMILAR_FAMILY:
                        dated = limit or DateLimit("pdat")
                        links.sort(key=lambda n: (dated.date_of(self._records[n[0]]), int(n[0])), reverse=True)
                if links:
                    answer.append((name, links))
            return answer

    # -- queries

    def add_query(self, term: str, pmids: Sequence[str], *, translation: str = "") -> None:
        """Register what a query matches, overriding the word-matching fallback for that term."""
        with self._lock:
            self._queries[_query_key(term)] = ([str(p) for p in pmids], translation or term)

    def search(
        self,
        term: str,
        *,
        limit: DateLimit | None = None,
        sort: str = "",
        history: Mapping[str, Sequence[str]] | None = None,
    ) -> SearchResult:
        """ESearch's matches: a registered query, else PubMed-like matching over title+abstract.

        ``history`` holds the id lists a ``#N`` in the term names (the request's WebEnv). Never raises,
        whatever the term.
        """
        with self._lock:
            registered = self._queries.get(_query_key(term))
            dropped: dict[str, list[str]] = {"phrases": [], "fields": []}
            if registered is not None:
                pmids, translation = list(registered[0]), registered[1]
            else:
                try:
                    node = _pruned(parse_query(term), self._known_term, dropped)
                    pmids = sorted(self._evaluate(node, history or {})) if node is not None else []
                    translation = _translate(node) if node is not None else ""
                except RecursionError:  # thousands of chained terms: match them all as one bag of words
                    bag = _Term("All Fields", term, words(term), False)
                    pmids = sorted(
                        p
                        for p, i in self._index.items()
                        if all(f" {w} " in i.title or f" {w} " in i.abstract for w in bag.tokens)
                    )
                    translation = f'"{term}"[All Fields]'
            not_found = dropped["phrases"]
            if limit is not None:
                pmids = [p for p in pmids if limit.admits(self._records.get(p))]
                translation = f"{translation} AND {limit.translation}" if translation else limit.translation
            return SearchResult(self._sorted(pmids, sort), translation, not_found, dropped["fields"])

    def _known_term(self, term: _Term) -> bool:
        """Whether any word of ``term`` occurs in some record (a trailing * matches word beginnings)."""
        if not term.tokens:
            return True
        if term.wildcard:
            return any(self._vocabulary[w] > 0 for w in term.tokens[:-1]) or any(
                word.startswith(term.tokens[-1]) and count > 0 for word, count in self._vocabulary.items()
            )
        return any(self._vocabulary[w] > 0 for w in term.tokens)

    def _evaluate(self, node: object, history: Mapping[str, Sequence[str]]) -> set[str]:
        if isinstance(node, _Group):
            return self._evaluate(node.inner, history)
        if isinstance(node, _HistoryRef):
            return {str(p) for p in history.get(node.key, ())}
        if isinstance(node, _Op):
            left = self._evaluate(node.left, history)
            right = self._evaluate(node.right, history)
            if node.op == "OR":
                return left | right
            if node.op == "NOT":
                return left - right
            return left & right
        if isinstance(node, _Range):
            limit = DateLimit(node.datetype, node.start, node.end)
            return {p for p, r in self._records.items() if limit.admits(r)}
        if isinstance(node, _Term):
            return {p for p, r in self._records.items() if self._term_matches(node, r, self._index[p])}
        return set()

    @staticmethod
    def _term_matches(term: _Term, rec: Record, index: _SearchIndex) -> bool:
        tokens, wildcard = term.tokens, term.wildcard
        if term.field == "pmid":
            return rec.pmid == term.raw.strip()
        if term.field == "doi":
            return bool(rec.doi) and rec.doi.lower() == term.raw.strip().lower()
        if term.field == "language":
            wanted = term.raw.strip().lower()
            return rec.language == _LANGUAGES.get(wanted, wanted)
        if term.field == "subset":
            wanted = " ".join(tokens)
            if wanted in ("free full text", "pubmed pmc", "pmc"):
                return bool(rec.pmcid)
            if wanted == "preprint":
                return "Preprint" in rec.pub_types
            if wanted in CORRECTION_FILTERS:
                return any(kind == CORRECTION_FILTERS[wanted] for kind, _ in rec.corrections)
            return True  # other subsets (medline, …) are not modelled: they admit everything
        haystacks = {
            "author": (index.author,),
            "pubtype": (index.pubtype,),
            "mesh": (index.mesh,),
            "journal": (index.journal,),
            "Title": (index.title,),
            "Abstract": (index.abstract,),
        }.get(term.field, (index.title, index.abstract))
        return any(_phrase_in(h, tokens, wildcard) for h in haystacks)

    def _sorted(self, pmids: list[str], sort: str) -> list[str]:
        """ESearch's sort orders; ids the world lacks (from registered queries) go last."""
        sort = re.sub(r"[\s+_]+", "_", sort.strip().lower())
        records = self._records

        def newest(p: str) -> tuple:
            r = records.get(p)
            return (r.entry_date if r else date.min, int(p) if p.isdigit() else 0)

        def text(p: str, of: Callable[[Record], str]) -> tuple:
            return (of(records[p]).lower() if p in records else "\uffff", p)

        if sort in ("pub_date", "pubdate"):
            return sorted(
                pmids, key=lambda p: (records[p].pub_date if p in records else date.min, newest(p)), reverse=True
            )
        if sort in ("first_author", "author"):
            return sorted(pmids, key=lambda p: text(p, lambda r: r.authors[0].short_name if r.authors else "\uffff"))
        if sort == "journal":
            return sorted(pmids, key=lambda p: text(p, lambda r: r.journal_iso))
        if sort == "title":
            return sorted(pmids, key=lambda p: text(p, lambda r: plain_text(r.title)))
        return sorted(pmids, key=newest, reverse=True)  # most recent entry first; "relevance" too

    # -- bulk

    def generate_citing(
        self,
        cited: str,
        n: int,
        start_pmid: int,
        *,
        entry_dates: Sequence[date] | Callable[[int], date] | None = None,
    ) -> list[str]:
        """Create ``n`` synthetic records citing ``cited``, PMIDs from ``start_pmid`` upwards.

        ``entry_dates``: one date per record (cycled if shorter), or a function of the index;
        by default every record enters today.
        """
        today = self.today()
        made: list[Record] = []
        for i in range(n):
            if entry_dates is None:
                entered = today
            elif callable(entry_dates):
                entered = entry_dates(i)
            else:
                entered = entry_dates[i % len(entry_dates)]
            agent = _SYNTHETIC_AGENTS[i % len(_SYNTHETIC_AGENTS)]
            setting = _SYNTHETIC_SETTINGS[(i // len(_SYNTHETIC_AGENTS)) % len(_SYNTHETIC_SETTINGS)]
            pmid = str(start_pmid + i)
            made.append(
                Record(
                    pmid=pmid,
                    title=f"{agent[0].upper()}{agent[1:]} in {setting}: synthetic study {i + 1}.",
                    abstract=(
                        (
                            "",
                            "",
                            f"We studied {agent} in {setting}. Responses were measured over "
                            f"twelve weeks and compared with untreated controls (synthetic record {i + 1}).",
                        ),
                    ),
                    authors=_SYNTHETIC_AUTHORS,
                    journal="Frontiers in immunology",
                    journal_iso="Front Immunol",
                    issn="1664-3224",
                    nlm_unique_id="101560960",
                    country="Switzerland",
                    volume=str(entered.year - 2009),
                    pages=str(1_000_000 + i),
                    pub_year=entered.year,
                    pub_month=MONTHS[entered.month - 1],
                    entry_date=entered,
                    doi=f"10.5555/standin.synthetic.{pmid}",
                    pub_model="Electronic-eCollection",
                    publication_status="epublish",
                )
            )
        with self._lock:
            self.add(*made)
            for rec in made:
                self.cite(rec.pmid, cited)
        return [rec.pmid for rec in made]

    # -- rendering

    def article_xml(self, pmid: str) -> str | None:
        """The record's PubmedArticle / PubmedBookArticle element (cached; None if unknown)."""
        with self._lock:
            cached = self._xml_cache.get(pmid)
            if cached is not None:
                return cached
            rec = self._records.get(pmid)
            if rec is None:
                return None
            refs = [self._records.get(r) for r in self.references(pmid)]
            targets = {p: self._records.get(p) for _, p in rec.corrections}
            text = _book_xml(rec) if rec.is_book else _article_xml(rec, self.references(pmid), refs, targets)
            for old, new in rec.replace_xml:
                text = text.replace(old, new)
            for name in rec.drop_elements:
                text = re.sub(rf"<{name}[ >].*?</{name}>", "", text, flags=re.DOTALL)
            self._xml_cache[pmid] = text
            return text

    def docsum(self, pmid: str) -> str | None:
        with self._lock:
            rec = self._records.get(pmid)
            return None if rec is None else _docsum_xml(rec, len(self._cited_by.get(pmid, ())))

    def last_update(self) -> str:
        """EInfo's LastUpdate: the latest entry in the world."""
        with self._lock:
            latest = max((r.entry_date for r in self._records.values()), default=self.today())
            return f"{latest:%Y/%m/%d} 06:00"


def _query_key(term: str) -> str:
    return " ".join(term.split()).lower()


# ---------------------------------------------------------------------------- PubmedArticle


def _ymd(tag: str, day: date, *, padded: bool = True, attrs: str = "") -> str:
    if padded:
        return f"<{tag}{attrs}><Year>{day.year}</Year><Month>{day.month:02d}</Month><Day>{day.day:02d}</Day></{tag}>"
    return f"<{tag}{attrs}><Year>{day.year}</Year><Month>{day.month}</Month><Day>{day.day}</Day></{tag}>"


def _history_xml(rec: Record) -> str:
    hour, minute = rec.entry_time
    stamp = (
        f"<Year>{rec.entry_date.year}</Year><Month>{rec.entry_date.month}</Month>"
        f"<Day>{rec.entry_date.day}</Day><Hour>{hour}</Hour><Minute>{minute}</Minute>"
    )
    parts = [
        f'<PubMedPubDate PubStatus="pubmed">{stamp}</PubMedPubDate>',
        f'<PubMedPubDate PubStatus="entrez">{stamp}</PubMedPubDate>',
    ]
    if rec.citation_status == "MEDLINE":
        later = rec.entry_date + timedelta(days=30)
        parts.append(
            f'<PubMedPubDate PubStatus="medline"><Year>{later.year}</Year><Month>{later.month}</Month>'
            f"<Day>{later.day}</Day><Hour>6</Hour><Minute>1</Minute></PubMedPubDate>"
        )
    return "<History>" + "".join(parts) + "</History>"


def _authors_xml(authors: Sequence[Author], list_attrs: str = ' CompleteYN="Y"') -> str:
    if not authors:
        return ""
    parts = [f"<AuthorList{list_attrs}>"]
    for a in authors:
        if a.collective:
            parts.append(f'<Author ValidYN="Y"><CollectiveName>{marked_text(a.collective)}</CollectiveName>')
        else:
            parts.append(f'<Author ValidYN="Y"><LastName>{escape(a.last)}</LastName>')
            if a.fore:
                parts.append(f"<ForeName>{escape(a.fore)}</ForeName>")
            if a.initials:
                parts.append(f"<Initials>{escape(a.initials)}</Initials>")
            if a.suffix:
                parts.append(f"<Suffix>{escape(a.suffix)}</Suffix>")
        if a.affiliation:
            parts.append(f"<AffiliationInfo><Affiliation>{marked_text(a.affiliation)}</Affiliation></AffiliationInfo>")
        parts.append("</Author>")
    parts.append("</AuthorList>")
    return "".join(parts)


def _abstract_xml(rec: Record) -> str:
    if not rec.abstract:
        return ""
    parts = ["<Abstract>"]
    for label, category, text in rec.abstract:
        attrs = (f' Label="{_attribute(label)}"' if label else "") + (
            f' NlmCategory="{_attribute(category)}"' if category else ""
        )
        parts.append(f"<AbstractText{attrs}>{marked_text(text)}</AbstractText>")
    if rec.copyright:
        parts.append(f"<CopyrightInformation>{escape(rec.copyright)}</CopyrightInformation>")
    parts.append("</Abstract>")
    return "".join(parts)


def _pub_date_xml(rec: Record) -> str:
    if rec.medline_date:
        return f"<PubDate><MedlineDate>{escape(rec.medline_date)}</MedlineDate></PubDate>"
    inner = f"<Year>{rec.pub_year}</Year>"
    if rec.pub_season:
        return f"<PubDate>{inner}<Season>{escape(rec.pub_season)}</Season></PubDate>"
    if rec.pub_month:
        inner += f"<Month>{escape(str(rec.pub_month))}</Month>"
        if rec.pub_day:
            inner += f"<Day>{escape(str(rec.pub_day))}</Day>"
    return f"<PubDate>{inner}</PubDate>"


def _pagination_xml(pages: str) -> str:
    if not pages:
        return ""
    start, _, end = pages.partition("-")
    inner = f"<StartPage>{escape(start)}</StartPage>"
    if end:
        inner += f"<EndPage>{escape(end)}</EndPage>"
    return f"<Pagination>{inner}<MedlinePgn>{escape(pages)}</MedlinePgn></Pagination>"


def _pub_types_xml(pub_types: Sequence[str], wrapper: bool = True) -> str:
    items = "".join(
        f'<PublicationType UI="{PUBLICATION_TYPE_UI.get(t, "")}">{escape(t)}</PublicationType>' for t in pub_types
    )
    return f"<PublicationTypeList>{items}</PublicationTypeList>" if wrapper else items


def _article_ids_xml(rec: Record) -> str:
    ids = [f'<ArticleId IdType="pubmed">{rec.pmid}</ArticleId>']
    if rec.doi:
        ids.append(f'<ArticleId IdType="doi">{escape(rec.doi)}</ArticleId>')
    if rec.pmcid:
        ids.append(f'<ArticleId IdType="pmc">{escape(rec.pmcid)}</ArticleId>')
    return "<ArticleIdList>" + "".join(ids) + "</ArticleIdList>"


def _article_xml(
    rec: Record,
    reference_ids: Sequence[str],
    references: Sequence[Record | None],
    correction_targets: dict[str, Record | None],
) -> str:
    parts = [
        f'<PubmedArticle><MedlineCitation Status="{_attribute(rec.citation_status)}" Owner="NLM">',
        f'<PMID Version="1">{rec.pmid}</PMID>',
        _ymd("DateRevised", rec.entry_date),
        f'<Article PubModel="{_attribute(rec.pub_model)}"><Journal>',
        f'<ISSN IssnType="Electronic">{escape(rec.issn)}</ISSN>' if rec.issn else "",
        '<JournalIssue CitedMedium="Internet">',
        f"<Volume>{escape(rec.volume)}</Volume>" if rec.volume else "",
        f"<Issue>{escape(rec.issue)}</Issue>" if rec.issue else "",
        _pub_date_xml(rec),
        f"</JournalIssue><Title>{escape(rec.journal)}</Title>",
        f"<ISOAbbreviation>{escape(rec.journal_iso)}</ISOAbbreviation></Journal>",
        f"<ArticleTitle>{marked_text(rec.title)}</ArticleTitle>",
        _pagination_xml(rec.pages),
        f'<ELocationID EIdType="doi" ValidYN="Y">{escape(rec.doi)}</ELocationID>' if rec.doi else "",
        _abstract_xml(rec),
        _authors_xml(rec.authors),
        f"<Language>{escape(rec.language)}</Language>",
        _pub_types_xml(rec.pub_types),
        f"<VernacularTitle>{marked_text(rec.vernacular_title)}</VernacularTitle>" if rec.vernacular_title else "",
        _ymd("ArticleDate", rec.entry_date, attrs=' DateType="Electronic"') if "Electronic" in rec.pub_model else "",
        "</Article><MedlineJournalInfo>",
        f"<Country>{escape(rec.country)}</Country>" if rec.country else "",
        f"<MedlineTA>{escape(rec.journal_iso)}</MedlineTA>",
        f"<NlmUniqueID>{escape(rec.nlm_unique_id)}</NlmUniqueID>" if rec.nlm_unique_id else "",
        "</MedlineJournalInfo>",
    ]
    if rec.citation_status == "MEDLINE":
        parts.append("<CitationSubset>IM</CitationSubset>")
    if rec.corrections:
        parts.append("<CommentsCorrectionsList>")
        for ref_type, target in rec.corrections:
            target_rec = correction_targets.get(target)
            source = target_rec.citation if target_rec else f"PMID {target}"
            parts.append(
                f'<CommentsCorrections RefType="{_attribute(ref_type)}"><RefSource>{escape(source)}</RefSource>'
                f'<PMID Version="1">{escape(target)}</PMID></CommentsCorrections>'
            )
        parts.append("</CommentsCorrectionsList>")
    if rec.mesh:
        parts.append("<MeshHeadingList>")
        for heading in rec.mesh:
            name = heading.rstrip("*")
            major = "Y" if heading.endswith("*") else "N"
            ui = MESH_UI.get(name)
            ui_attr = f' UI="{ui}"' if ui else ""
            parts.append(
                f'<MeshHeading><DescriptorName{ui_attr} MajorTopicYN="{major}">{escape(name)}</DescriptorName>'
                "</MeshHeading>"
            )
        parts.append("</MeshHeadingList>")
    if rec.keywords:
        keywords = "".join(f'<Keyword MajorTopicYN="N">{marked_text(k)}</Keyword>' for k in rec.keywords)
        parts.append(f'<KeywordList Owner="NOTNLM">{keywords}</KeywordList>')
    parts += [
        "</MedlineCitation><PubmedData>",
        _history_xml(rec),
        f"<PublicationStatus>{escape(rec.publication_status)}</PublicationStatus>",
        _article_ids_xml(rec),
    ]
    if reference_ids:
        parts.append("<ReferenceList>")
        for ref_id, ref in zip(reference_ids, references):
            citation = ref.citation if ref else f"PMID {ref_id}"
            parts.append(
                f"<Reference><Citation>{escape(citation)}</Citation><ArticleIdList>"
                f'<ArticleId IdType="pubmed">{ref_id}</ArticleId></ArticleIdList></Reference>'
            )
        parts.append("</ReferenceList>")
    parts.append("</PubmedData></PubmedArticle>\n")
    return "".join(parts)


def _book_xml(rec: Record) -> str:
    accession = rec.book_accession or f"NBK{rec.pmid[-6:]}"
    book_slug = re.sub(r"\W+", "", plain_text(rec.journal).lower())[:20] or "book"
    parts = [
        f'<PubmedBookArticle><BookDocument><PMID Version="1">{rec.pmid}</PMID>',
        f'<ArticleIdList><ArticleId IdType="bookaccession">{escape(accession)}</ArticleId></ArticleIdList>',
        "<Book><Publisher>",
        f"<PublisherName>{escape(rec.publisher)}</PublisherName>",
        f"<PublisherLocation>{escape(rec.publisher_location)}</PublisherLocation>" if rec.publisher_location else "",
        f'</Publisher><BookTitle book="{book_slug}">{marked_text(rec.journal)}</BookTitle>',
        _pub_date_xml(rec),
        "<Medium>Internet</Medium></Book>",
        f'<ArticleTitle book="{book_slug}" part="article-{rec.pmid}">{marked_text(rec.title)}</ArticleTitle>',
        f"<Language>{escape(rec.language)}</Language>",
        _authors_xml(rec.authors, ' Type="authors"'),
        _pub_types_xml(rec.pub_types, wrapper=False),
        _abstract_xml(rec),
        _ymd("ContributionDate", rec.entry_date),
        "</BookDocument><PubmedBookData>",
        _history_xml(rec),
        f"<PublicationStatus>{escape(rec.publication_status)}</PublicationStatus>",
        f'<ArticleIdList><ArticleId IdType="pubmed">{rec.pmid}</ArticleId></ArticleIdList>',
        "</PubmedBookData></PubmedBookArticle>\n",
    ]
    return "".join(parts)


# ---------------------------------------------------------------------------- answers


def pubmed_articles_xml(articles: Iterable[str]) -> str:
    """EFetch's PubmedArticleSet around already-rendered articles (empty when there are none)."""
    return PUBMED_DECLARATION + PUBMED_DOCTYPE + "<PubmedArticleSet>\n" + "".join(articles) + "</PubmedArticleSet>\n"


def efetch_error_xml(message: str) -> str:
    body = f"<eFetchResult>\n\t<ERROR>{escape(message)}</ERROR>\n</eFetchResult>\n"
    return UTF8_DECLARATION + EFETCH_ERROR_DOCTYPE + body


@dataclass
class LinkSetAnswer:
    """One ELink LinkSet: the asked ids, then link sets, a history handle, or a neighbour check."""

    ids: list[str]
    link_sets: list[tuple[str, list[tuple[str, int]]]] = field(default_factory=list)
    with_scores: bool = False
    history: tuple[str, list[tuple[str, int]]] | None = None  # (WebEnv, [(link name, query key)])
    checks: list[tuple[str, bool]] | None = None  # cmd=ncheck: (id, has neighbours)
    error: str = ""


def elink_xml(link_sets: Sequence[LinkSetAnswer]) -> str:
    parts = [UTF8_DECLARATION, ELINK_DOCTYPE, "<eLinkResult>\n"]
    for answer in link_sets:
        parts.append("<LinkSet>\n\t<DbFrom>pubmed</DbFrom>\n")
        if answer.checks is not None:
            checks = "".join(
                f'\t\t<Id HasNeighbor="{"Y" if has else "N"}">{escape(i)}</Id>\n' for i, has in answer.checks
            )
            parts.append(f"\t<IdCheckList>\n{checks}\t</IdCheckList>\n")
        else:
            ids = "".join(f"\t\t<Id>{escape(i)}</Id>\n" for i in answer.ids)
            parts.append(f"\t<IdList>\n{ids}\t</IdList>\n")
            for name, links in answer.link_sets:
                parts.append(f"\t<LinkSetDb>\n\t\t<DbTo>pubmed</DbTo>\n\t\t<LinkName>{name}</LinkName>\n")
                scored = answer.with_scores and name in _SIMILAR_FAMILY
                for pmid, score in links:
                    score_xml = f"\n\t\t\t<Score>{score}</Score>" if scored else ""
                    parts.append(f"\t\t<Link>\n\t\t\t<Id>{pmid}</Id>{score_xml}\n\t\t</Link>\n")
                parts.append("\t</LinkSetDb>\n")
            if answer.history is not None:
                webenv, keys = answer.history
                for name, key in keys:
                    parts.append(
                        f"\t<LinkSetDbHistory>\n\t\t<DbTo>pubmed</DbTo>\n\t\t<LinkName>{name}</LinkName>\n"
                        f"\t\t<QueryKey>{key}</QueryKey>\n\t</LinkSetDbHistory>\n"
                    )
                parts.append(f"\t<WebEnv>{escape(webenv)}</WebEnv>\n")
        if answer.error:
            parts.append(f"\t<ERROR>{escape(answer.error)}</ERROR>\n")
        parts.append("</LinkSet>\n")
    parts.append("</eLinkResult>\n")
    return "".join(parts)


def esearch_xml(
    *,
    count: int,
    pmids: Sequence[str] = (),
    retstart: int = 0,
    translation: str = "",
    history: tuple[str, int] | None = None,
    phrases_not_found: Sequence[str] = (),
    fields_not_found: Sequence[str] = (),
    count_only: bool = False,
) -> str:
    head = UTF8_DECLARATION + ESEARCH_DOCTYPE + f"<eSearchResult><Count>{count}</Count>"
    if count_only:
        return head + "</eSearchResult>\n"
    history_xml = f"<QueryKey>{history[1]}</QueryKey><WebEnv>{escape(history[0])}</WebEnv>" if history else ""
    ids = "".join(f"<Id>{p}</Id>\n" for p in pmids)
    id_list = f"<IdList>\n{ids}</IdList>" if pmids else "<IdList/>"
    tail = ""
    if phrases_not_found or fields_not_found:
        missing = "".join(f"<PhraseNotFound>{escape(p)}</PhraseNotFound>" for p in phrases_not_found)
        missing += "".join(f"<FieldNotFound>{escape(f)}</FieldNotFound>" for f in fields_not_found)
        tail = f"<ErrorList>{missing}</ErrorList>"
        if not count:
            tail += "<WarningList><OutputMessage>No items found.</OutputMessage></WarningList>"
    return (
        head + f"<RetMax>{len(pmids)}</RetMax><RetStart>{retstart}</RetStart>{history_xml}{id_list}"
        f"<TranslationSet/><QueryTranslation>{escape(translation)}</QueryTranslation>{tail}</eSearchResult>\n"
    )


def root_error_xml(endpoint: str, message: str) -> str:
    """NCBI's answer to a bad request: an ERROR inside the endpoint's usual root element."""
    if endpoint == "efetch":
        return efetch_error_xml(message)
    header = {
        "elink": ELINK_DOCTYPE + "<eLinkResult>",
        "esearch": ESEARCH_DOCTYPE + "<eSearchResult>",
        "epost": EPOST_DOCTYPE + "<ePostResult>",
        "esummary": ESUMMARY_DOCTYPE + "<eSummaryResult>",
        "einfo": EINFO_DOCTYPE + "<eInfoResult>",
    }[endpoint]
    root = header.rsplit("<", 1)[1].rstrip(">")
    return UTF8_DECLARATION + header + f"<ERROR>{escape(message)}</ERROR></{root}>\n"


def epost_xml(webenv: str, query_key: int, invalid_ids: Sequence[str] = ()) -> str:
    """EPost's answer; with no ``webenv``, the well-formed but empty answer of an outage."""
    invalid = ""
    if invalid_ids:
        invalid = "\t<InvalidIdList>" + "".join(f"<Id>{escape(i)}</Id>" for i in invalid_ids) + "</InvalidIdList>\n"
    session = f"\t<QueryKey>{query_key}</QueryKey>\n\t<WebEnv>{escape(webenv)}</WebEnv>\n" if webenv else ""
    return UTF8_DECLARATION + EPOST_DOCTYPE + f"<ePostResult>\n{invalid}{session}</ePostResult>\n"


def esummary_xml(items: Sequence[str]) -> str:
    """``items`` are rendered DocSum elements or ERROR elements, in the order asked."""
    return UTF8_DECLARATION + ESUMMARY_DOCTYPE + "<eSummaryResult>\n" + "".join(items) + "</eSummaryResult>\n"


def esummary_missing(pmid: str) -> str:
    return f"<ERROR>UID={escape(pmid)}: cannot get document summary</ERROR>\n"


def _item(name: str, kind: str, value: str) -> str:
    return f'\t<Item Name="{name}" Type="{kind}">{escape(value)}</Item>\n'


def _docsum_xml(rec: Record, cited_by: int) -> str:
    names = [a.short_name for a in rec.authors]
    authors = "".join(f"\t\t{_item('Author', 'String', n).strip()}\n" for n in names)
    pub_types = "".join(f"\t\t{_item('PubType', 'String', t).strip()}\n" for t in rec.pub_types)
    ids = [("pubmed", rec.pmid)] + ([("doi", rec.doi)] if rec.doi else []) + ([("pmc", rec.pmcid)] if rec.pmcid else [])
    article_ids = "".join(f"\t\t{_item(kind, 'String', value).strip()}\n" for kind, value in ids)
    entered = f"{rec.entry_date:%Y/%m/%d} {rec.entry_time[0]:02d}:{rec.entry_time[1]:02d}"
    source = plain_text(rec.journal) if rec.is_book else rec.journal_iso
    issue = f"({rec.issue})" if rec.issue else ""
    pages = f":{rec.pages}" if rec.pages else ""
    status = "PubMed - indexed for MEDLINE" if rec.citation_status == "MEDLINE" else "PubMed"
    language = _item("Lang", "String", _language_name(rec.language)).strip()
    return (
        f"<DocSum>\n\t<Id>{rec.pmid}</Id>\n"
        + _item("PubDate", "Date", rec.pub_date_text)
        + _item(
            "EPubDate",
            "Date",
            f"{rec.entry_date.year} {MONTHS[rec.entry_date.month - 1]} {rec.entry_date.day}"
            if "Electronic" in rec.pub_model
            else "",
        )
        + _item("Source", "String", source)
        + f'\t<Item Name="AuthorList" Type="List">\n{authors}\t</Item>\n'
        + _item("LastAuthor", "String", names[-1] if names else "")
        + _item("Title", "String", plain_text(rec.title))
        + _item("Volume", "String", rec.volume)
        + _item("Issue", "String", rec.issue)
        + _item("Pages", "String", rec.pages)
        + f'\t<Item Name="LangList" Type="List">\n\t\t{language}\n\t</Item>\n'
        + _item("NlmUniqueID", "String", rec.nlm_unique_id)
        + _item("ISSN", "String", "")
        + _item("ESSN", "String", rec.issn)
        + f'\t<Item Name="PubTypeList" Type="List">\n{pub_types}\t</Item>\n'
        + _item("RecordStatus", "String", status)
        + _item("PubStatus", "String", rec.publication_status)
        + f'\t<Item Name="ArticleIds" Type="List">\n{article_ids}\t</Item>\n'
        + _item("DOI", "String", rec.doi)
        + f'\t<Item Name="History" Type="List">\n\t\t{_item("pubmed", "Date", entered).strip()}\n'
        + f"\t\t{_item('entrez', 'Date', entered).strip()}\n\t</Item>\n"
        + '\t<Item Name="References" Type="List"></Item>\n'
        + f'\t<Item Name="HasAbstract" Type="Integer">{1 if rec.abstract else 0}</Item>\n'
        + f'\t<Item Name="PmcRefCount" Type="Integer">{cited_by}</Item>\n'
        + _item("FullJournalName", "String", plain_text(rec.journal))
        + _item("ELocationID", "String", f"doi: {rec.doi}" if rec.doi else "")
        + _item("SO", "String", f"{rec.pub_date_text};{rec.volume}{issue}{pages}")
        + "</DocSum>\n"
    )


def _language_name(code: str) -> str:
    names = {v: k.title() for k, v in _LANGUAGES.items()}
    return names.get(code, code)


EINFO_DATABASES = (
    "pubmed",
    "protein",
    "nuccore",
    "ipg",
    "nucleotide",
    "structure",
    "genome",
    "books",
    "gene",
    "mesh",
    "nlmcatalog",
    "pmc",
)


def einfo_list_xml() -> str:
    names = "".join(f"\t<DbName>{name}</DbName>\n" for name in EINFO_DATABASES)
    return UTF8_DECLARATION + EINFO_DOCTYPE + f"<eInfoResult>\n<DbList>\n{names}</DbList>\n</eInfoResult>\n"


def einfo_pubmed_xml(count: int, last_update: str) -> str:
    links = "".join(
        f"\t\t<Link>\n\t\t\t<Name>{name}</Name>\n\t\t\t<Menu>{menu}</Menu>\n\t\t\t<Description>{menu}</Description>\n"
        f"\t\t\t<DbTo>pubmed</DbTo>\n\t\t</Link>\n"
        for name, menu in (
            ("pubmed_pubmed", "Similar articles"),
            ("pubmed_pubmed_citedin", "Cited in"),
            ("pubmed_pubmed_five", "Similar articles (top 5)"),
            ("pubmed_pubmed_refs", "References"),
            ("pubmed_pubmed_reviews", "Review articles"),
        )
    )
    return (
        UTF8_DECLARATION + EINFO_DOCTYPE + "<eInfoResult>\n<DbInfo>\n\t<DbName>pubmed</DbName>\n"
        "\t<MenuName>PubMed</MenuName>\n\t<Description>PubMed bibliographic record</Description>\n"
        "\t<DbBuild>Build-stand-in</DbBuild>\n"
        f"\t<Count>{count}</Count>\n\t<LastUpdate>{escape(last_update)}</LastUpdate>\n"
        f"\t<LinkList>\n{links}\t</LinkList>\n</DbInfo>\n</eInfoResult>\n"
    )


__all__ = [
    "Author",
    "DateLimit",
    "LinkSetAnswer",
    "PubMedWorld",
    "Record",
    "SearchResult",
    "elink_xml",
    "efetch_error_xml",
    "einfo_list_xml",
    "einfo_pubmed_xml",
    "epost_xml",
    "esearch_xml",
    "esummary_missing",
    "esummary_xml",
    "marked_text",
    "parse_query",
    "plain_text",
    "pubmed_articles_xml",
    "record",
    "root_error_xml",
    "words",
]
