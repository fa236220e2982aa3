"""Papers as files a reference manager imports: BibTeX, RIS and CSV, built from the library's records.

Titles are PubMed marked text, turned into plain Unicode first; each format then escapes what its own
syntax would misread, so a title with braces, a percent sign or a leading '=' arrives as written.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

from il2watch.markup import squash, to_plain
from il2watch.model import Author, Paper

FORMATS = {"bibtex": "bib", "ris": "ris", "csv": "csv"}
ALIASES = {"bib": "bibtex", "bibtex": "bibtex", "ris": "ris", "csv": "csv"}
CSV_COLUMNS = ("pmid", "title", "authors", "journal", "year", "doi", "url", "pmcid", "publication_types")

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


def _one_line(text: str) -> str:
    return squash(_CONTROL.sub(" ", text))


def plain_title(paper: Paper) -> str:
    return _one_line(to_plain(paper.title)).rstrip() or "(untitled)"


def _year(paper: Paper) -> str:
    if paper.pub_year:
        return str(paper.pub_year)
    match = re.match(r"\d{4}", paper.pub_date)
    return match.group(0) if match else ""


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


def to_bibtex(papers: Iterable[Paper]) -> str:
    entries = []
    for paper in papers:
        fields = [
            ("author", " and ".join(_bibtex_author(a) for a in paper.authors)),
            ("title", "{" + bibtex_escape(plain_title(paper)) + "}"),  # inner braces keep the capitals
            ("booktitle" if paper.is_book else "journal", bibtex_escape(paper.journal or paper.journal_iso)),
            ("year", _year(paper)),
            ("doi", bibtex_verbatim(paper.doi)),
            ("pmid", paper.pmid),
            ("pmcid", paper.pmcid),
            ("url", bibtex_verbatim(paper.url)),
        ]
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
        kind = "incollection" if paper.is_book else "article"
        entries.append(f"@{kind}{{pmid{paper.pmid},\n{body}\n}}\n")
    return "\n".join(entries)


# ---------------------------------------------------------------- RIS


def _ris_author(author: Author) -> str:
    if author.collective:
        return _one_line(author.collective)
    fore = author.fore_name or author.initials
    name = f"{author.last_name}, {fore}" if fore else author.last_name
    return _one_line(f"{name}, {author.suffix}" if author.suffix else name)  # RIS: "Last, First, Suffix"


def to_ris(papers: Iterable[Paper]) -> str:
    records = []
    for paper in papers:
        lines = [("TY", "CHAP" if paper.is_book else "JOUR")]
        lines += [("AU", _ris_author(a)) for a in paper.authors]
        lines += [
            ("TI", plain_title(paper)),
            ("T2", _one_line(paper.journal)),
            ("J2", _one_line(paper.journal_iso)),
            ("PY", _year(paper)),
            ("DO", _one_line(paper.doi)),
            ("AN", paper.pmid),
            ("UR", paper.url),
            ("DB", "PubMed"),
            ("ER", ""),
        ]
        records.append("".join(f"{tag}  - {value}\r\n" for tag, value in lines if value or tag == "ER"))
    return "\r\n".join(records)


# ---------------------------------------------------------------- CSV


def _cell(text: str) -> str:
    """Spreadsheets run a cell starting with = + - @ as a formula; a leading apostrophe keeps it text."""
    text = _one_line(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def to_csv(papers: Iterable[Paper]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for paper in papers:
        writer.writerow(
            [
                _cell(value)
                for value in (
                    paper.pmid,
                    plain_title(paper),
                    "; ".join(a.name for a in paper.authors),
                    paper.journal or paper.journal_iso,
                    _year(paper),
                    paper.doi,
                    paper.url,
                    paper.pmcid,
                    "; ".join(paper.pub_types),
                )
            ]
        )
    return out.getvalue()


def export(papers: Sequence[Paper], fmt: str) -> str:
    """The papers in ``fmt`` (bibtex, ris or csv)."""
    return {"bibtex": to_bibtex, "ris": to_ris, "csv": to_csv}[fmt](papers)
