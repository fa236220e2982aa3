"""Papers as files a reference manager imports: BibTeX, RIS and CSV, built from the library's records.

Each carries what a reference manager needs to cite a paper without looking it up again: authors,
title, the journal as reference managers spell it (the NLM title in title case without its place
qualifier, "Nature Reviews Immunology") with its ISO abbreviation in a field of its own, year and
month, volume, issue, pages, DOI, PMID, PMCID, abstract and keywords. Titles are PubMed marked text,
turned into plain Unicode first; each format then escapes what its own syntax would misread, so a
title with braces, a percent sign or a leading '=' arrives as written.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence

from il2watch.markup import squash, to_plain
from il2watch.model import Author, Paper

FORMATS = {"bibtex": "bib", "ris": "ris", "csv": "csv"}
ALIASES = {"bib": "bibtex", "bibtex": "bibtex", "ris": "ris", "csv": "csv"}
CSV_COLUMNS = (
    "pmid",
    "title",
    "authors",
    "journal",
    "journal_abbreviation",
    "year",
    "month",
    "volume",
    "issue",
    "pages",
    "doi",
    "pmcid",
    "url",
    "publication_types",
    "keywords",
    "abstract",
    "followups",
)
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_BIBTEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "%": r"\%",
    "&": r"\&",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_BIBTEX_ESCAPE = re.compile("|".join(re.escape(ch) for ch in _BIBTEX_SPECIAL))
# Words a title-cased journal name keeps in lower case (unless they come first).
_SMALL_WORDS = {"a", "an", "and", "as", "at", "by", "de", "der", "des", "du", "et", "for", "in", "la", "le"}
_SMALL_WORDS |= {"of", "on", "or", "the", "to", "und", "with"}
_PLACE = re.compile(r"\s*\([^()]*\)\s*$")  # "(Baltimore, Md. : 1950)", "(London, England)"
_TRAILING_ACRONYM = re.compile(r"\s+:\s+[A-Z0-9]{2,8}$")  # "Cancer immunology, immunotherapy : CII"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _one_line(text: str) -> str:
    return squash(_CONTROL.sub(" ", text))


def plain_title(paper: Paper) -> str:
    return _one_line(to_plain(paper.title)).rstrip() or "(untitled)"


def _year(paper: Paper) -> str:
    if paper.pub_year:
        return str(paper.pub_year)
    match = re.match(r"\d{4}", paper.pub_date)
    return match.group(0) if match else ""


def month_number(paper: Paper) -> int | None:
    """The publication month (the first of a range such as "Nov-Dec"), 1-12, or None."""
    match = re.search(r"\b(" + "|".join(MONTHS) + r")", paper.pub_date, re.IGNORECASE)
    return MONTHS.index(match.group(1).lower()) + 1 if match else None


def _title_case_word(word: str, first: bool) -> str:
    if not first and word.lower() in _SMALL_WORDS:
        return word.lower()
    if any(ch.isupper() for ch in word[1:]) or not word[:1].isalpha():
        return word  # JCI, eLife, mAbs, iScience, 3D keep their own spelling
    return "-".join(part[:1].upper() + part[1:] for part in word.split("-"))


def journal_title(paper: Paper) -> str:
    """The journal as reference managers expect it: NLM's title without its place qualifier, in title
    case, its parts joined ("Nature reviews. Immunology" -> "Nature Reviews Immunology")."""
    title = _one_line(paper.journal or paper.journal_iso)
    title = _TRAILING_ACRONYM.sub("", _PLACE.sub("", title))
    title = re.sub(r"\.\s+", " ", title).rstrip(". ")
    words = title.split(" ")
    return " ".join(_title_case_word(word, index == 0) for index, word in enumerate(words) if word)


def page_range(paper: Paper) -> tuple[str, str]:
    """(first page, last page), with MEDLINE's shortened last page written out ("113-25" -> 113, 125)."""
    pages = _one_line(paper.pages)
    first, _, last = pages.partition("-")
    first, last = first.strip(), last.strip()
    if first.isdigit() and last.isdigit() and len(last) < len(first):
        last = first[: len(first) - len(last)] + last
    return first, last


def abstract_text(paper: Paper) -> str:
    """The abstract in plain text on one line, structured sections keeping their labels."""
    parts = []
    for section in paper.abstract:
        text = _one_line(to_plain(section.text))
        if text:
            parts.append(f"{_one_line(section.label).upper()}: {text}" if section.label else text)
    return " ".join(parts)


def _keywords(paper: Paper) -> list[str]:
    return [k for k in (_one_line(to_plain(k)) for k in paper.keywords) if k]


# ---------------------------------------------------------------- BibTeX


def bibtex_escape(text: str) -> str:
    return _BIBTEX_ESCAPE.sub(lambda m: _BIBTEX_SPECIAL[m.group(0)], _one_line(text))


def bibtex_verbatim(text: str) -> str:
    """DOIs and URLs are read verbatim by biblatex: only what would unbalance the entry is encoded."""
    return _one_line(text).replace("\\", "%5C").replace("{", "%7B").replace("}", "%7D")


def _bibtex_author(author: Author) -> str:
    if author.collective:
        return "{" + bibtex_escape(author.collective) + "}"  # braces keep a group's name in one piece
    last, fore = bibtex_escape(author.last_name), bibtex_escape(author.fore_name or author.initials)
    if author.suffix:  # BibTeX's "Last, Jr, First"
        return f"{last}, {bibtex_escape(author.suffix)}, {fore}" if fore else f"{last}, {bibtex_escape(author.suffix)},"
    return f"{last}, {fore}" if fore else last


def citation_key(paper: Paper) -> str:
    """A BibTeX key from the paper's best id ("pmid35217787", "doi10.1101.2026.10.30.123456", "PPR123"):
    letters, digits and dots only, so nothing from outside can break the entry."""
    kind, _, value = paper.identity.partition(":")
    return re.sub(r"[^A-Za-z0-9.]+", ".", f"{kind if kind in ('pmid', 'doi') else ''}{value}").strip(".")[:80]


def _bibtex_kind(paper: Paper) -> str:
    if paper.is_book:
        return "incollection"
    return "misc" if paper.is_preprint else "article"


Notes = Mapping[str, str]  # paper key -> what happened to it since ("Retracted (retraction notice …)")


def to_bibtex(papers: Iterable[Paper], notes: Notes | None = None) -> str:
    entries = []
    for paper in papers:
        kind = _bibtex_kind(paper)
        first, last = page_range(paper)
        month = month_number(paper)
        fields = [
            ("author", " and ".join(_bibtex_author(a) for a in paper.authors)),
            ("title", "{" + bibtex_escape(plain_title(paper)) + "}"),  # inner braces keep the capitals
            (
                {"incollection": "booktitle", "misc": "howpublished"}.get(kind, "journal"),
                bibtex_escape(journal_title(paper)),
            ),
            ("shortjournal", "" if paper.is_book else bibtex_escape(paper.journal_iso)),  # biblatex's field
            ("year", _year(paper)),
            ("month", MONTHS[month - 1] if month else ""),
            ("volume", bibtex_escape(paper.volume)),
            ("number", bibtex_escape(paper.issue)),
            ("pages", bibtex_escape(f"{first}--{last}" if last else first)),
            ("doi", bibtex_verbatim(paper.doi)),
            ("pmid", paper.pmid),
            ("eprint", bibtex_escape(paper.ppr)),
            ("pmcid", bibtex_escape(paper.pmcid)),
            ("url", bibtex_verbatim(paper.url)),
            ("keywords", bibtex_escape(", ".join(_keywords(paper)))),
            ("abstract", bibtex_escape(abstract_text(paper))),
            ("note", bibtex_escape(_one_line((notes or {}).get(paper.identity, "")))),
        ]
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
        entries.append(f"@{kind}{{{citation_key(paper)},\n{body}\n}}\n")
    return "\n".join(entries)


# ---------------------------------------------------------------- RIS


def _ris_author(author: Author) -> str:
    if author.collective:
        return _one_line(author.collective)
    fore = author.fore_name or author.initials
    name = f"{author.last_name}, {fore}" if fore else author.last_name
    return _one_line(f"{name}, {author.suffix}" if author.suffix else name)  # RIS: "Last, First, Suffix"


def to_ris(papers: Iterable[Paper], notes: Notes | None = None) -> str:
    records = []
    for paper in papers:
        first, last = page_range(paper)
        month = month_number(paper)
        year = _year(paper)
        lines = [("TY", "CHAP" if paper.is_book else "UNPB" if paper.is_preprint else "JOUR")]
        lines += [("AU", _ris_author(a)) for a in paper.authors]
        lines += [
            ("TI", plain_title(paper)),
            ("T2", journal_title(paper)),
            ("J2", _one_line(paper.journal_iso)),
            ("PY", year),
            ("DA", f"{year}/{month:02d}//" if year and month else ""),
            ("VL", _one_line(paper.volume)),
            ("IS", _one_line(paper.issue)),
            ("SP", first),
            ("EP", last),
            ("DO", _one_line(paper.doi)),
            ("AN", paper.pmid),
            ("C2", _one_line(paper.pmcid)),  # where EndNote and PubMed's own RIS put the PMCID
            ("UR", paper.url),
            ("DB", "PubMed" if paper.pmid else "Europe PMC" if paper.ppr else ""),
        ]
        lines += [("KW", keyword) for keyword in _keywords(paper)]
        lines += [("AB", abstract_text(paper)), ("N1", _one_line((notes or {}).get(paper.identity, ""))), ("ER", "")]
        records.append("".join(f"{tag}  - {value}\r\n" for tag, value in lines if value or tag == "ER"))
    return "\r\n".join(records)


# ---------------------------------------------------------------- CSV


def csv_cell(text: str) -> str:
    """One line; a cell a spreadsheet would run as a formula (= + - @, a tab or a carriage return first)
    gets a leading apostrophe so it stays text."""
    flattened = _one_line(text)
    risky = text[:1] in _FORMULA_START or flattened[:1] in _FORMULA_START
    return "'" + flattened if risky and flattened else flattened


def to_csv(papers: Iterable[Paper], notes: Notes | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for paper in papers:
        first, last = page_range(paper)
        month = month_number(paper)
        writer.writerow(
            [
                csv_cell(value)
                for value in (
                    paper.pmid,
                    plain_title(paper),
                    "; ".join(a.name for a in paper.authors),
                    journal_title(paper),
                    paper.journal_iso,
                    _year(paper),
                    MONTHS[month - 1].capitalize() if month else "",
                    paper.volume,
                    paper.issue,
                    f"{first}-{last}" if last else first,
                    paper.doi,
                    paper.pmcid,
                    paper.url,
                    "; ".join(paper.pub_types),
                    "; ".join(_keywords(paper)),
                    abstract_text(paper),
                    (notes or {}).get(paper.identity, ""),
                )
            ]
        )
    return out.getvalue()


def export(papers: Sequence[Paper], fmt: str, notes: Notes | None = None) -> str:
    """The papers in ``fmt`` (bibtex, ris or csv); ``notes`` says what happened to some since they were
    posted (a retraction, an erratum, a journal version), in each format's note field."""
    return {"bibtex": to_bibtex, "ris": to_ris, "csv": to_csv}[fmt](papers, notes)
