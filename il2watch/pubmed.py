"""The E-utilities calls il2watch makes, and ``Bio.Entrez`` parsing of their answers into records.

Every answer is parsed by ``Bio.Entrez.read`` (which validates it against NCBI's DTDs); anything it
cannot read whole — a truncated body, an HTML error page, an ``<ERROR>`` — raises ``PubMedError`` with
one line that says which request failed and why.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from Bio import Entrez

from il2watch.eutils import Eutils, EutilsError, batches
from il2watch.markup import squash, to_plain
from il2watch.model import Author, Paper, Section

EFETCH_BATCH = 200
ESEARCH_PAGE = 10_000


class PubMedError(Exception):
    """An E-utilities answer could not be used; the message is one line."""


@dataclass
class Links:
    """What ELink knows about one watched paper."""

    pmid: str
    cited_by: list[str] = field(default_factory=list)
    similar: list[tuple[str, int]] = field(default_factory=list)  # (pmid, score), most similar first
    found: bool = True  # False when NCBI does not know the PMID


def read_xml(data: bytes, what: str) -> Any:
    """Parse an E-utilities answer with Bio.Entrez, turning every way it can be broken into PubMedError."""
    head = data[:300].lstrip().lower()
    if not head:
        raise PubMedError(f"NCBI sent an empty answer to {what}")
    if head.startswith(b"<!doctype html") or head.startswith(b"<html"):
        title = re.search(rb"<title>(.*?)</title>", data[:2000], re.IGNORECASE | re.DOTALL)
        hint = f" ({squash(title.group(1).decode('utf-8', 'replace'))})" if title else ""
        raise PubMedError(f"NCBI sent an HTML page instead of XML for {what}{hint}")
    if b"<eFetchResult" in data[:500] or head.startswith(b"<error"):
        # EFetch reports bad requests in a document Biopython has no DTD for (it would try to download one)
        message = re.search(rb"<ERROR>(.*?)</ERROR>", data[:2000], re.IGNORECASE | re.DOTALL)
        detail = squash(message.group(1).decode("utf-8", "replace")) if message else "no detail"
        raise PubMedError(f"NCBI reported an error for {what}: {detail[:200]}")
    try:
        return Entrez.read(io.BytesIO(data), escape=True)
    except RuntimeError as error:  # an <ERROR> element
        raise PubMedError(f"NCBI reported an error for {what}: {squash(str(error))[:200]}") from None
    except Exception as error:  # Bio.Entrez raises several parser errors; all mean "not whole"
        raise PubMedError(
            f"NCBI's answer to {what} is not complete XML ({type(error).__name__}: {squash(str(error))[:120]})"
        ) from None


def _marked(value: Any) -> str:
    """Titles and abstracts stay marked text (escaped, inline tags kept) for the renderers to convert."""
    return squash(str(value)) if value is not None else ""


def _text(value: Any) -> str:
    """Every other field is plain text: Entrez's escapes undone, stray inline tags dropped."""
    return squash(to_plain(str(value))) if value is not None else ""


# ---------------------------------------------------------------- ELink


def _parse_linksets(parsed: Any, what: str) -> dict[str, dict[str, list[dict[str, str]]]]:
    """{queried pmid: {linkname: [links]}} from an ELink answer with one LinkSet per id."""
    result: dict[str, dict[str, list[dict[str, str]]]] = {}
    for linkset in parsed:
        ids = [str(i) for i in linkset.get("IdList", [])]
        if linkset.get("ERROR"):
            # NCBI flags ids it does not know inside the LinkSet; remember them as not found.
            for pmid in ids:
                result.setdefault(pmid, {})["__error__"] = []
            continue
        if len(ids) != 1:
            raise PubMedError(f"NCBI merged several ids into one LinkSet in {what}; expected one per id")
        links = result.setdefault(ids[0], {})
        for linkset_db in linkset.get("LinkSetDb", []):
            links[str(linkset_db.get("LinkName", ""))] = [
                {key: str(value) for key, value in link.items()} for link in linkset_db.get("Link", [])
            ]
    return result


def fetch_links(client: Eutils, pmids: Sequence[str]) -> dict[str, Links]:
    """Citing and similar papers of every watched PMID, in two requests whatever their number."""
    if not pmids:
        return {}
    ids = [("id", pmid) for pmid in pmids]
    base = [("dbfrom", "pubmed"), ("db", "pubmed")]
    similar = _parse_linksets(
        read_xml(
            client.call("elink", base + ids + [("linkname", "pubmed_pubmed"), ("cmd", "neighbor_score")]),
            "ELink similar articles",
        ),
        "ELink similar articles",
    )
    cited = _parse_linksets(
        read_xml(
            client.call("elink", base + ids + [("linkname", "pubmed_pubmed_citedin"), ("cmd", "neighbor")]),
            "ELink citing articles",
        ),
        "ELink citing articles",
    )
    result: dict[str, Links] = {}
    for pmid in pmids:
        if pmid not in similar or pmid not in cited:
            raise PubMedError(f"NCBI's ELink answer has no LinkSet for PMID {pmid}")
        if "__error__" in similar[pmid] or "__error__" in cited[pmid]:
            result[pmid] = Links(pmid, found=False)
            continue
        scored = []
        for link in similar[pmid].get("pubmed_pubmed", []):
            try:
                scored.append((link["Id"], int(link.get("Score", "0"))))
            except ValueError:
                raise PubMedError(f"NCBI sent a similarity score that is not a number for PMID {pmid}") from None
        result[pmid] = Links(
            pmid,
            cited_by=[link["Id"] for link in cited[pmid].get("pubmed_pubmed_citedin", [])],
            similar=[(other, score) for other, score in scored if other != pmid],
        )
    return result


# ---------------------------------------------------------------- ESearch


def search(
    client: Eutils,
    term: str,
    *,
    mindate: str = "",
    maxdate: str = "",
    datetype: str = "edat",
    page_size: int = ESEARCH_PAGE,
) -> list[str]:
    """Every PMID matching ``term`` (entry dates between ``mindate`` and ``maxdate``, YYYY/MM/DD), paging."""
    found: list[str] = []
    start = 0
    while True:
        params = [
            ("db", "pubmed"),
            ("term", term),
            ("retmax", str(page_size)),
            ("retstart", str(start)),
            ("sort", "pub_date"),
        ]
        if mindate or maxdate:
            params += [
                ("datetype", datetype),
                ("mindate", mindate or "1800/01/01"),
                ("maxdate", maxdate or "3000/12/31"),
            ]
        parsed = read_xml(client.call("esearch", params), "ESearch")
        if "Count" not in parsed:
            raise PubMedError("NCBI's ESearch answer has no Count; it may be an outage page")
        count = int(parsed["Count"])
        page = [str(pmid) for pmid in parsed.get("IdList", [])]
        found.extend(page)
        start += len(page)
        if not page or start >= count:
            break
    return list(dict.fromkeys(found))


# ---------------------------------------------------------------- EFetch


def fetch_papers(
    client: Eutils,
    pmids: Sequence[str],
    batch: int = EFETCH_BATCH,
    on_batch: Callable[[list[Paper]], None] | None = None,
) -> list[Paper]:
    """Full records for ``pmids``, ``batch`` ids per request (POSTed when long); unknown ids are absent.

    ``on_batch`` sees each batch as it is parsed: work done there fills the time the rate limit makes
    the next request wait anyway.
    """
    papers: list[Paper] = []
    for chunk in batches(list(dict.fromkeys(pmids)), batch):
        data = client.call("efetch", [("db", "pubmed"), ("retmode", "xml"), ("id", ",".join(chunk))])
        parsed = parse_articles(data, what=f"EFetch of {len(chunk)} records")
        if on_batch is not None:
            on_batch(parsed)
        papers.extend(parsed)
    return papers


def verify_pmids(client: Eutils, pmids: Sequence[str]) -> dict[str, str]:
    """{pmid: title} for the PMIDs PubMed knows (ESummary); the ones it does not know are absent."""
    if not pmids:
        return {}
    data = client.call("esummary", [("db", "pubmed"), ("id", ",".join(pmids))])
    parsed = read_xml_lenient(data, "ESummary")
    titles = {}
    for docsum in parsed:
        if not hasattr(docsum, "get") or docsum.get("ERROR"):
            continue  # an unknown id comes back as an ERROR in place of its DocSum
        titles[str(docsum.get("Id", ""))] = _text(docsum.get("Title", ""))
    return titles


def read_xml_lenient(data: bytes, what: str) -> Any:
    """Like read_xml, but per-record <ERROR> elements (unknown ids) are kept rather than fatal."""
    if not data.strip():
        raise PubMedError(f"NCBI sent an empty answer to {what}")
    try:
        return Entrez.read(io.BytesIO(data), escape=True, ignore_errors=True)
    except Exception as error:
        raise PubMedError(f"NCBI's answer to {what} is not complete XML ({type(error).__name__})") from None


def database_info(client: Eutils) -> dict[str, str]:
    """EInfo for PubMed: record count and last update, to show that NCBI answers."""
    parsed = read_xml(client.call("einfo", [("db", "pubmed")]), "EInfo")
    info = parsed.get("DbInfo", {})
    if isinstance(info, list):  # the 2019 einfo DTD makes DbInfo a list
        info = info[0] if info else {}
    return {"count": str(info.get("Count", "")), "last_update": str(info.get("LastUpdate", ""))}


# ---------------------------------------------------------------- parsing records

_MONTHS = {
    m: i
    for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)
}


def _date_parts(history: Iterable[Any], status: str) -> str:
    for date in history:
        if getattr(date, "attributes", {}).get("PubStatus") == status:
            try:
                return f"{int(date['Year']):04d}-{int(date['Month']):02d}-{int(date['Day']):02d}"
            except (KeyError, ValueError):
                return ""
    return ""


def _pub_date(pub_date: Any) -> tuple[str, int | None]:
    """('2022 Oct 12', 2022) from a PubDate, or the MedlineDate as printed ('2021 Nov-Dec', 2021)."""
    if not pub_date:
        return "", None
    if "MedlineDate" in pub_date:
        text = _text(pub_date["MedlineDate"])
        found = re.search(r"\b(1[89]\d\d|20\d\d)\b", text)
        return text, int(found.group(1)) if found else None
    year = _text(pub_date.get("Year", ""))
    month = _text(pub_date.get("Month", ""))
    if month.isdigit() and 1 <= int(month) <= 12:
        month = list(_MONTHS)[int(month) - 1].capitalize()
    parts = [p for p in (year, month, _text(pub_date.get("Day", ""))) if p]
    return " ".join(parts), int(year) if year.isdigit() else None


def _authors(author_list: Any) -> tuple[Author, ...]:
    authors = []
    for author in author_list or []:
        if "CollectiveName" in author:
            authors.append(Author(collective=_text(author["CollectiveName"])))
        else:
            authors.append(
                Author(
                    last_name=_text(author.get("LastName", "")),
                    fore_name=_text(author.get("ForeName", "")),
                    initials=_text(author.get("Initials", "")),
                )
            )
    return tuple(a for a in authors if a.name)


def _abstract(abstract: Any) -> tuple[Section, ...]:
    sections = []
    for part in (abstract or {}).get("AbstractText", []):
        attributes = getattr(part, "attributes", {})
        text = _marked(part)
        if text:
            sections.append(
                Section(
                    text=text,
                    label=_text(attributes.get("Label", "")),
                    category=_text(attributes.get("NlmCategory", "")),
                )
            )
    return tuple(sections)


def _article_ids(id_list: Any) -> dict[str, str]:
    return {str(getattr(i, "attributes", {}).get("IdType", "")): _text(i) for i in id_list or []}


# Notices that change how a paper should be read; "Cites" and "CommentIn" links are left out.
NOTICE_TYPES = {
    "RetractionIn",
    "RetractionOf",
    "ErratumIn",
    "ErratumFor",
    "ExpressionOfConcernIn",
    "ExpressionOfConcernFor",
    "CorrectedandRepublishedIn",
    "CorrectedandRepublishedFrom",
    "UpdateIn",
    "UpdateOf",
}


def _corrections(citation: Any) -> tuple[tuple[str, str], ...]:
    found = []
    for item in citation.get("CommentsCorrectionsList", []) or []:
        ref_type = str(getattr(item, "attributes", {}).get("RefType", ""))
        if ref_type in NOTICE_TYPES and item.get("PMID"):
            found.append((ref_type, _text(item["PMID"])))
    return tuple(found)


def _pages(article: Any) -> str:
    """MedlinePgn as printed, else StartPage-EndPage, else an electronic article number (pii)."""
    pagination = article.get("Pagination") or {}
    if pagination.get("MedlinePgn"):
        return _text(pagination["MedlinePgn"])
    start, end = _text(pagination.get("StartPage", "")), _text(pagination.get("EndPage", ""))
    if start:
        return f"{start}-{end}" if end and end != start else start
    return next(
        (_text(e) for e in article.get("ELocationID", []) if getattr(e, "attributes", {}).get("EIdType") == "pii"),
        "",
    )


def _paper_from_article(record: Any) -> Paper:
    citation = record["MedlineCitation"]
    article = citation["Article"]
    journal = article.get("Journal", {})
    journal_issue = journal.get("JournalIssue", {})
    pub_date, year = _pub_date(journal_issue.get("PubDate"))
    ids = _article_ids(record.get("PubmedData", {}).get("ArticleIdList"))
    doi = ids.get("doi", "")
    if not doi:
        doi = next(
            (_text(e) for e in article.get("ELocationID", []) if getattr(e, "attributes", {}).get("EIdType") == "doi"),
            "",
        )
    history = record.get("PubmedData", {}).get("History", [])
    return Paper(
        pmid=_text(citation["PMID"]),
        title=_marked(article.get("ArticleTitle", "")) or _marked(article.get("VernacularTitle", "")),
        abstract=_abstract(article.get("Abstract")),
        authors=_authors(article.get("AuthorList")),
        journal=_text(journal.get("Title", "")),
        journal_iso=_text(journal.get("ISOAbbreviation", "")),
        pub_date=pub_date,
        pub_year=year,
        volume=_text(journal_issue.get("Volume", "")),
        issue=_text(journal_issue.get("Issue", "")),
        pages=_pages(article),
        entry_date=_date_parts(history, "entrez") or _date_parts(history, "pubmed"),
        doi=doi,
        pmcid=ids.get("pmc", ""),
        pub_types=tuple(_text(t) for t in article.get("PublicationTypeList", [])),
        keywords=tuple(_text(k) for group in citation.get("KeywordList", []) for k in group),
        mesh=tuple(_text(h["DescriptorName"]) for h in citation.get("MeshHeadingList", []) if "DescriptorName" in h),
        language=", ".join(_text(lang) for lang in article.get("Language", [])),
        corrections=_corrections(citation),
    )


def _paper_from_book(record: Any) -> Paper:
    document = record["BookDocument"]
    book = document.get("Book", {})
    pub_date, year = _pub_date(book.get("PubDate"))
    ids = _article_ids(record.get("PubmedBookData", {}).get("ArticleIdList"))
    ids.update({k: v for k, v in _article_ids(document.get("ArticleIdList")).items() if k not in ids})
    history = record.get("PubmedBookData", {}).get("History", [])
    authors: tuple[Author, ...] = ()
    for author_list in document.get("AuthorList", []):
        authors += _authors(author_list)
    title = _marked(document.get("ArticleTitle", "")) or _marked(book.get("BookTitle", ""))
    return Paper(
        pmid=_text(document["PMID"]),
        title=title,
        abstract=_abstract(document.get("Abstract")),
        authors=authors,
        journal=_text(book.get("BookTitle", "")),
        journal_iso=_text(book.get("Publisher", {}).get("PublisherName", "")),
        pub_date=pub_date,
        pub_year=year,
        entry_date=_date_parts(history, "entrez") or _date_parts(history, "pubmed"),
        doi=ids.get("doi", ""),
        pmcid=ids.get("pmc", ""),
        pub_types=tuple(_text(t) for t in document.get("PublicationType", [])),
        keywords=tuple(_text(k) for group in document.get("KeywordList", []) for k in group),
        language=", ".join(_text(lang) for lang in document.get("Language", [])),
        is_book=True,
    )


# A record's reference list (often a hundred citations) is most of its bytes and il2watch never reads
# it; the DTD lets a <Reference> hold only Citation and ArticleIdList, so it can go before parsing.
_REFERENCES = re.compile(rb"<Reference>.*?</Reference>", re.DOTALL)


def parse_articles(data: bytes, what: str = "EFetch") -> list[Paper]:
    """Every PubmedArticle and PubmedBookArticle in an EFetch answer, as Papers."""
    parsed = read_xml(_REFERENCES.sub(b"", data), what)
    if not hasattr(parsed, "get") or ("PubmedArticle" not in parsed and "PubmedBookArticle" not in parsed):
        raise PubMedError(f"NCBI's answer to {what} is not a PubmedArticleSet")
    papers = []
    for record in parsed.get("PubmedArticle", []):
        try:
            papers.append(_paper_from_article(record))
        except (KeyError, TypeError) as error:
            raise PubMedError(f"a record in {what} lacks {error}; NCBI's format may have changed") from None
    for record in parsed.get("PubmedBookArticle", []):
        try:
            papers.append(_paper_from_book(record))
        except (KeyError, TypeError) as error:
            raise PubMedError(f"a book record in {what} lacks {error}; NCBI's format may have changed") from None
    return papers


__all__ = [
    "Links",
    "PubMedError",
    "EutilsError",
    "database_info",
    "fetch_links",
    "fetch_papers",
    "parse_articles",
    "read_xml",
    "search",
    "verify_pmids",
]
