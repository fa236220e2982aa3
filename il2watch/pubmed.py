"""The E-utilities calls il2watch makes, and ``Bio.Entrez`` parsing of their answers into records.

Every answer is parsed by Biopython's Entrez parser, which validates it against NCBI's DTDs; il2watch
lets it read DTDs only from disk (the ones Biopython ships), never from the network, so a DTD host that
hangs cannot hang a poll. Anything the parser cannot read whole — a truncated body, an HTML error page,
an ``<ERROR>``, a DTD that is not on disk — raises ``PubMedError`` with one line that says which request
failed and why. Parts of an answer that concern one paper fail alone: an ``<ERROR>`` in one ELink link
set, one EFetch record the parser rejects. Every id is checked for its shape (``il2watch.ids``).
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from Bio.Entrez.Parser import DataHandler, ValidationError

from il2watch import ids
from il2watch.eutils import Eutils
from il2watch.followups import LINKS_IN, LINKS_OF
from il2watch.ids import batches
from il2watch.markup import squash, to_plain
from il2watch.model import Author, Paper, Section

log = logging.getLogger("il2watch.pubmed")

EFETCH_BATCH = 200
ESEARCH_PAGE = 10_000
ESEARCH_LIMIT = 9_999  # PubMed serves the first 9,999 ids of a search, even through the history server
WINDOW_TARGET = 5_000  # an over-full date window is cut into parts of about this many matches
MAX_WINDOWS = 200  # a search is never cut into more date windows than this
EARLIEST = date(1800, 1, 1)  # the start of an open entry-date window
MAX_SCORE = 2**63 - 1  # a similarity score must fit SQLite's integer


class PubMedError(Exception):
    """An E-utilities answer could not be used; the message is one line."""


# ---------------------------------------------------------------- parsing, with DTDs from disk only


class _DTDMissing(Exception):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class _LocalDTDs(DataHandler):
    """Biopython's Entrez parser, reading DTDs and schemas only from the files Biopython ships.

    Its own handler downloads a DTD it lacks from NCBI with no timeout; here a missing one fails
    the answer at once instead.
    """

    def open_dtd_file(self, filename: str) -> Any:
        handle = super().open_dtd_file(filename)
        if handle is None:
            raise _DTDMissing(filename)
        return handle

    def open_xsd_file(self, filename: str) -> Any:
        handle = super().open_xsd_file(filename)
        if handle is None:
            raise _DTDMissing(filename)
        return handle


def entrez_read(data: bytes, *, ignore_errors: bool = False) -> Any:
    """``Bio.Entrez.read(data, escape=True)``, with DTDs read from disk only."""
    return _LocalDTDs(True, True, ignore_errors).read(io.BytesIO(data))


def _parse(data: bytes, what: str, *, ignore_errors: bool = False) -> Any:
    try:
        return entrez_read(data, ignore_errors=ignore_errors)
    except _DTDMissing as missing:
        raise PubMedError(
            f"NCBI's answer to {what} needs the DTD {missing.name}, which is not on this machine; il2watch "
            f"reads DTDs only from disk (upgrade biopython for NCBI's newer DTDs)"
        ) from None
    except RuntimeError as error:  # an <ERROR> element
        raise PubMedError(f"NCBI reported an error for {what}: {squash(str(error))[:200]}") from None
    except ValidationError as error:
        raise PubMedError(
            f"NCBI's answer to {what} holds an element its DTD does not know ({str(error.name)[:60]})"
        ) from None
    except Exception as error:  # Bio.Entrez raises several parser errors; all mean "not whole"
        raise PubMedError(
            f"NCBI's answer to {what} is not complete XML ({type(error).__name__}: {squash(str(error))[:120]})"
        ) from None


def read_xml(data: bytes, what: str, *, ignore_errors: bool = False) -> Any:
    """Parse an E-utilities answer, turning every way it can be broken into PubMedError."""
    head = data[:300].lstrip().lower()
    if not head:
        raise PubMedError(f"NCBI sent an empty answer to {what}")
    if head.startswith(b"<!doctype html") or head.startswith(b"<html"):
        title = re.search(rb"<title>(.*?)</title>", data[:2000], re.IGNORECASE | re.DOTALL)
        hint = f" ({squash(title.group(1).decode('utf-8', 'replace'))[:120]})" if title else ""
        raise PubMedError(f"NCBI sent an HTML page instead of XML for {what}{hint}")
    if b"<eFetchResult" in data[:500] or head.startswith(b"<error"):
        # EFetch reports bad requests in a document Biopython has no DTD for
        message = re.search(rb"<ERROR>(.*?)</ERROR>", data[:2000], re.IGNORECASE | re.DOTALL)
        detail = squash(message.group(1).decode("utf-8", "replace")) if message else "no detail"
        raise PubMedError(f"NCBI reported an error for {what}: {detail[:200]}")
    return _parse(data, what, ignore_errors=ignore_errors)


def _marked(value: Any) -> str:
    """Titles and abstracts stay marked text (escaped, inline tags kept) for the renderers to convert."""
    return squash(str(value)) if value is not None else ""


def _text(value: Any) -> str:
    """Every other field is plain text: Entrez's escapes undone, stray inline tags dropped."""
    return squash(to_plain(str(value))) if value is not None else ""


def _valid_pmids(values: Iterable[Any], what: str) -> list[str]:
    """The PMIDs among ``values``; anything else is left out, and the log says so."""
    good, bad = ids.pmids(values)
    if bad:
        log.warning(
            "NCBI's %s carried %d id(s) that are not PMIDs (%s); left out", what, len(bad), ", ".join(bad[:3])[:80]
        )
    return good


# ---------------------------------------------------------------- ELink


@dataclass
class Links:
    """What ELink knows about one watched paper; ``error`` says why it knows nothing, when it cannot."""

    pmid: str
    cited_by: list[str] = field(default_factory=list)
    similar: list[tuple[str, int]] = field(default_factory=list)  # (pmid, score), most similar first
    error: str = ""

    @property
    def empty(self) -> bool:
        return not self.cited_by and not self.similar


def _linksets(parsed: Any, what: str) -> tuple[dict[str, dict[str, Any]], str]:
    """({queried pmid: its LinkSet}, a note on link sets that name no single id) from an ELink answer."""
    if not isinstance(parsed, list):
        raise PubMedError(f"NCBI's answer to {what} is not an ELink result")
    whole = [str(item) for item in parsed if isinstance(item, str)]
    if whole:  # an ERROR at the root: the whole request failed
        raise PubMedError(f"NCBI reported an error for {what}: {squash(whole[0])[:200]}")
    found: dict[str, dict[str, Any]] = {}
    stray: list[str] = []
    for linkset in parsed:
        listed = [str(i) for i in linkset.get("IdList", [])]
        if len(listed) == 1:
            found[listed[0]] = linkset
        elif not listed:
            stray.append("a LinkSet with no IdList")
        else:
            stray.append(f"one LinkSet for {len(listed)} ids ({', '.join(listed[:3])})")
    return found, "; ".join(stray)


def _links_of(linkset: dict[str, Any], linkname: str) -> list[dict[str, str]]:
    for linkset_db in linkset.get("LinkSetDb", []):
        if str(linkset_db.get("LinkName", "")) == linkname:
            return [{key: str(value) for key, value in link.items()} for link in linkset_db.get("Link", [])]
    return []


def _linkset_error(linkset: dict[str, Any] | None, pmid: str, what: str, stray: str) -> str:
    if linkset is None:
        note = f" (it held {stray})" if stray else ""
        return f"NCBI's {what} answer has no LinkSet for PMID {pmid}{note}"
    errors = [squash(str(e)) for e in linkset.get("ERROR", []) or []]
    if errors:
        return f"NCBI's {what} answer reports for PMID {pmid}: {errors[0][:160]} (deleted or merged?)"
    return ""


def _score(link: dict[str, str], pmid: str) -> int:
    text = link.get("Score", "0").strip()
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_SCORE:
        raise PubMedError(f"NCBI sent a similarity score that is not a usable number for PMID {pmid} ({text[:24]!r})")
    return int(text)


def fetch_links(client: Eutils, pmids: Sequence[str]) -> dict[str, Links]:
    """Citing and similar papers of every watched PMID, in two requests whatever their number.

    A request that fails raises; a link set that fails (an ``<ERROR>`` for a deleted PMID, a score out
    of range) comes back as that PMID's ``error`` while the others are read.
    """
    if not pmids:
        return {}
    asked = [("id", pmid) for pmid in pmids]
    base = [("dbfrom", "pubmed"), ("db", "pubmed")]
    answers = {}
    for name, linkname, cmd in (
        ("ELink similar-articles", "pubmed_pubmed", "neighbor_score"),
        ("ELink citing-articles", "pubmed_pubmed_citedin", "neighbor"),
    ):
        data = client.call("elink", base + asked + [("linkname", linkname), ("cmd", cmd)])
        answers[linkname] = (name, *_linksets(read_xml(data, name, ignore_errors=True), name))
    result: dict[str, Links] = {}
    for pmid in pmids:
        links = Links(pmid)
        try:
            for name, linksets, stray in answers.values():
                problem = _linkset_error(linksets.get(pmid), pmid, name, stray)
                if problem:
                    raise PubMedError(problem)
            similar_set = answers["pubmed_pubmed"][1][pmid]
            cited_set = answers["pubmed_pubmed_citedin"][1][pmid]
            scored = [(link.get("Id", ""), _score(link, pmid)) for link in _links_of(similar_set, "pubmed_pubmed")]
            good = set(_valid_pmids([other for other, _ in scored], "ELink similar-articles answer"))
            links.similar = [(other, score) for other, score in scored if other in good and other != pmid]
            cited = [link.get("Id", "") for link in _links_of(cited_set, "pubmed_pubmed_citedin")]
            links.cited_by = _valid_pmids(cited, "ELink citing-articles answer")
        except PubMedError as error:
            links = Links(pmid, error=str(error))
        result[pmid] = links
    return result


# ---------------------------------------------------------------- ESearch

_FATAL_PROBLEMS = ("PhraseNotFound", "FieldNotFound")


@dataclass(frozen=True)
class QueryProblem:
    """A word of a query that PubMed could not use, from ESearch's ErrorList or WarningList."""

    kind: str  # PhraseNotFound, FieldNotFound (errors); PhraseIgnored, QuotedPhraseNotFound, OutputMessage
    word: str

    @property
    def fatal(self) -> bool:
        """An ErrorList entry: PubMed searched without that word, so the query means something else."""
        return self.kind in _FATAL_PROBLEMS

    def describe(self) -> str:
        word = squash(self.word)[:80]
        return {
            "PhraseNotFound": f"PubMed does not know “{word}” and searched without it",
            "FieldNotFound": f"PubMed has no search field [{word}] and searched without it",
            "PhraseIgnored": f"PubMed ignored “{word}”",
            "QuotedPhraseNotFound": f"PubMed found the quoted phrase “{word}” nowhere",
        }.get(self.kind, f"PubMed said: {word}")


@dataclass(frozen=True)
class Search:
    """What ESearch answered for a term: the PMIDs, how many match, and the words it could not use."""

    pmids: list[str]
    count: int
    problems: tuple[QueryProblem, ...] = ()

    @property
    def errors(self) -> tuple[QueryProblem, ...]:
        return tuple(p for p in self.problems if p.fatal)


def _count(parsed: Any, what: str) -> int:
    if not hasattr(parsed, "get") or "Count" not in parsed:
        raise PubMedError(f"NCBI's {what} answer has no Count; it may be an outage page")
    text = str(parsed["Count"]).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 15:
        raise PubMedError(f"NCBI's {what} answer gives a Count that is not a number ({text[:24]!r})")
    return int(text)


_PROBLEM_ORDER = ("PhraseNotFound", "FieldNotFound", "QuotedPhraseNotFound", "PhraseIgnored", "OutputMessage")


def _query_problems(parsed: Any) -> list[QueryProblem]:
    found = []
    for group in ("ErrorList", "WarningList"):
        listed = parsed.get(group) or {}
        for kind in sorted(listed, key=lambda k: (_PROBLEM_ORDER + (k,)).index(k)):
            for word in listed[kind] or []:
                if kind == "OutputMessage" and str(word).strip() == "No items found.":
                    continue  # the note on an empty answer, not a problem with a word
                found.append(QueryProblem(str(kind), _text(word)))
    return found


def _esearch_page(
    client: Eutils, term: str, *, start: int, size: int, window: tuple[date, date] | None, datetype: str
) -> tuple[int, list[str], list[QueryProblem]]:
    params = [("db", "pubmed"), ("term", term), ("retmax", str(size)), ("retstart", str(start)), ("sort", "pub_date")]
    if window is not None:
        params += [("datetype", datetype), ("mindate", f"{window[0]:%Y/%m/%d}"), ("maxdate", f"{window[1]:%Y/%m/%d}")]
    parsed = read_xml(client.call("esearch", params), "ESearch")
    return _count(parsed, "ESearch"), _valid_pmids(parsed.get("IdList", []), "ESearch answer"), _query_problems(parsed)


def _date(text: str, fallback: date) -> date:
    if not text:
        return fallback
    parts = [int(p) for p in re.split(r"[/\-.]", text.strip()) if p.isdigit()]
    try:
        return date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
    except (IndexError, ValueError):
        raise PubMedError(f"{text!r} is not a date for an ESearch window") from None


def _windows(lo: date, hi: date, count: int) -> list[tuple[date, date]]:
    """Consecutive entry-date windows covering lo..hi, about WINDOW_TARGET matches each if spread evenly."""
    days = (hi - lo).days + 1
    parts = min(days, max(2, math.ceil(count / WINDOW_TARGET)))
    edges = [lo + timedelta(days=days * i // parts) for i in range(parts)] + [hi + timedelta(days=1)]
    return [(edges[i], edges[i + 1] - timedelta(days=1)) for i in range(parts) if edges[i] < edges[i + 1]]


def esearch(
    client: Eutils,
    term: str,
    *,
    mindate: str = "",
    maxdate: str = "",
    datetype: str = "edat",
    page_size: int = ESEARCH_PAGE,
    today: date | None = None,
) -> Search:
    """Every PMID matching ``term`` (entry dates between ``mindate`` and ``maxdate``, YYYY/MM/DD).

    PubMed serves only the first 9,999 ids of a search, so a window with more matches is cut into
    shorter entry-date windows until each has fewer; paging stops when the count is reached or a page
    is empty, and a page that brings nothing new (a server ignoring ``retstart``) fails the search.
    """
    top = today or date.today()
    found: dict[str, None] = {}
    problems: dict[QueryProblem, None] = {}
    windows: list[tuple[date, date] | None] = [None]
    if mindate or maxdate:
        windows = [(_date(mindate, EARLIEST), _date(maxdate, max(top, _date(mindate, EARLIEST))))]
    total = 0
    asked_windows = 0
    while windows:
        window = windows.pop(0)
        asked_windows += 1
        count, page, said = _esearch_page(client, term, start=0, size=page_size, window=window, datetype=datetype)
        problems.update(dict.fromkeys(said))
        if count > ESEARCH_LIMIT:
            lo, hi = window or (EARLIEST, top)
            if lo >= hi or asked_windows + len(windows) >= MAX_WINDOWS:
                span = f"entered on {lo:%Y/%m/%d}" if lo >= hi else f"entered {lo:%Y/%m/%d}–{hi:%Y/%m/%d}"
                raise PubMedError(
                    f"PubMed has {count:,} matches for the query {span}, more than il2watch can page through "
                    f"(PubMed serves 9,999 ids per search): narrow the query"
                )
            windows[:0] = _windows(lo, hi, count)
            continue
        total += count
        seen_here: set[str] = set()
        start = 0
        while page:
            fresh = [pmid for pmid in page if pmid not in seen_here]
            if not fresh:
                raise PubMedError(
                    f"NCBI's ESearch sent the same ids again at retstart={start} (does the server ignore "
                    f"retstart?); stopped after {len(seen_here):,} of {count:,}"
                )
            seen_here.update(fresh)
            found.update(dict.fromkeys(fresh))
            start += len(page)
            if start >= count:
                break
            count, page, said = _esearch_page(
                client, term, start=start, size=page_size, window=window, datetype=datetype
            )
            problems.update(dict.fromkeys(said))
    return Search(list(found), total, tuple(problems))


def search(client: Eutils, term: str, **window: Any) -> list[str]:
    """The PMIDs ``esearch`` finds, for callers that need nothing else (a DOI look-up)."""
    return esearch(client, term, **window).pmids


def check_query(client: Eutils, term: str) -> Search:
    """How many papers ``term`` matches in all of PubMed and the words PubMed cannot use: one request."""
    parsed = read_xml(
        client.call("esearch", [("db", "pubmed"), ("term", term), ("retmax", "0")]), "ESearch of the query"
    )
    return Search([], _count(parsed, "ESearch"), tuple(_query_problems(parsed)))


# ---------------------------------------------------------------- EFetch


@dataclass
class Fetched:
    """The records EFetch returned, and the PMIDs whose records could not be read (with why)."""

    papers: list[Paper] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)


def fetch_records(
    client: Eutils,
    pmids: Sequence[str],
    batch: int = EFETCH_BATCH,
    on_batch: Callable[[list[Paper]], None] | None = None,
) -> Fetched:
    """Full records for ``pmids``, ``batch`` ids per request (POSTed when long); unknown ids are absent.

    Only records that were asked for are kept. ``on_batch`` sees each batch as it is parsed: work done
    there fills the time the rate limit makes the next request wait anyway.
    """
    fetched = Fetched()
    for chunk in batches(list(dict.fromkeys(pmids)), batch):
        data = client.call("efetch", [("db", "pubmed"), ("retmode", "xml"), ("id", ",".join(chunk))])
        articles = parse_articles(data, what=f"EFetch of {len(chunk)} records")
        wanted = set(chunk)
        stowaways = sorted({p.pmid for p in articles.papers if p.pmid not in wanted})
        if stowaways:
            log.warning(
                "NCBI's EFetch answer carried record(s) nobody asked for (PMID %s); not stored",
                ", ".join(stowaways[:5]),
            )
        papers = [p for p in articles.papers if p.pmid in wanted]
        fetched.unreadable.update({k: v for k, v in articles.unreadable.items() if k in wanted})
        if on_batch is not None:
            on_batch(papers)
        fetched.papers.extend(papers)
    return fetched


def fetch_papers(client: Eutils, pmids: Sequence[str], **options: Any) -> list[Paper]:
    """The records ``fetch_records`` reads; when the only ones asked for cannot be read, a PubMedError says so."""
    fetched = fetch_records(client, pmids, **options)
    if fetched.unreadable and not fetched.papers:
        pmid, why = next(iter(fetched.unreadable.items()))
        raise PubMedError(f"PubMed's record for PMID {pmid} cannot be read: {why}")
    return fetched.papers


def verify_pmids(client: Eutils, pmids: Sequence[str]) -> dict[str, str]:
    """{pmid: title} for the PMIDs PubMed knows (ESummary); the ones it does not know are absent."""
    pmids = [p for p in pmids if ids.pmid(p)]
    if not pmids:
        return {}
    data = client.call("esummary", [("db", "pubmed"), ("id", ",".join(pmids))])
    parsed = read_xml(data, "ESummary", ignore_errors=True)
    titles = {}
    for docsum in parsed if isinstance(parsed, list) else []:
        if not hasattr(docsum, "get") or docsum.get("ERROR"):
            continue  # an unknown id comes back as an ERROR in place of its DocSum
        pmid = ids.pmid(docsum.get("Id", ""))
        if pmid in pmids:
            titles[pmid] = _text(docsum.get("Title", ""))
    return titles


def database_info(client: Eutils) -> dict[str, str]:
    """EInfo for PubMed: record count and last update, to show that NCBI answers."""
    parsed = read_xml(client.call("einfo", [("db", "pubmed")]), "EInfo")
    info = parsed.get("DbInfo", {})
    if isinstance(info, list):  # the 2019 einfo DTD makes DbInfo a list
        info = info[0] if info else {}
    return {"count": str(info.get("Count", "")), "last_update": str(info.get("LastUpdate", ""))}


# ---------------------------------------------------------------- the history server: EPost, ESearch on #1, EFetch


@dataclass(frozen=True)
class Session:
    """An id list kept on NCBI's history server: its ``WebEnv`` and ``query_key``."""

    webenv: str
    query_key: str


@dataclass(frozen=True)
class HistorySearch:
    """What an ESearch over a posted id list found: how many, which, and where the result is kept."""

    count: int
    pmids: list[str]
    session: Session


def _session(parsed: Any, what: str) -> Session:
    webenv = _text(parsed.get("WebEnv", "")) if hasattr(parsed, "get") else ""
    key = _text(parsed.get("QueryKey", "")) if hasattr(parsed, "get") else ""
    if not webenv or not key.isdigit():
        raise PubMedError(f"NCBI's {what} answer has no WebEnv and QueryKey (the history server may be down)")
    return Session(webenv, key)


def epost(client: Eutils, pmids: Sequence[str]) -> Session:
    """Keep ``pmids`` on the history server (one request, POSTed when long)."""
    data = client.call("epost", [("db", "pubmed"), ("id", ",".join(pmids))])
    return _session(read_xml(data, "EPost"), "EPost")


def search_history(client: Eutils, session: Session, within: str) -> HistorySearch:
    """ESearch the posted list for the records that also match ``within`` (``#1 AND (within)``), keeping the
    result on the history server too (``usehistory=y``): one request."""
    params = [
        ("db", "pubmed"),
        ("term", f"#{session.query_key} AND ({within})"),
        ("WebEnv", session.webenv),
        ("usehistory", "y"),
        ("retmax", str(ESEARCH_PAGE)),
    ]
    parsed = read_xml(client.call("esearch", params), "ESearch on the history server")
    count = _count(parsed, "ESearch")
    pmids = _valid_pmids(parsed.get("IdList", []), "ESearch answer")
    return HistorySearch(count, pmids, _session(parsed, "ESearch") if count else session)


def fetch_history(client: Eutils, found: HistorySearch) -> Articles:
    """The records of an ESearch result kept on the history server, in one EFetch, with where each one's
    notices appeared (``Articles.sources``). Records nobody asked for are left out."""
    params = [
        ("db", "pubmed"),
        ("retmode", "xml"),
        ("WebEnv", found.session.webenv),
        ("query_key", found.session.query_key),
        ("retstart", "0"),
        ("retmax", str(max(found.count, 1))),
    ]
    data = client.call("efetch", params)
    articles = parse_articles(data, what=f"EFetch of {found.count} records")
    wanted = set(found.pmids)
    articles.papers = [p for p in articles.papers if p.pmid in wanted]
    return articles


# ---------------------------------------------------------------- parsing records

_MONTHS = {
    m: i
    for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)
}


def _date_parts(history: Iterable[Any], status: str) -> str:
    for stamp in history:
        if getattr(stamp, "attributes", {}).get("PubStatus") == status:
            try:
                return date(int(stamp["Year"]), int(stamp["Month"]), int(stamp["Day"])).isoformat()
            except (KeyError, ValueError, OverflowError):
                return ""
    return ""


def _pub_date(pub_date: Any) -> tuple[str, int | None]:
    """('2022 Oct 12', 2022) from a PubDate ('2013 Winter' with a Season), or the MedlineDate as printed."""
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
    season = _text(pub_date.get("Season", ""))  # "Winter", "Jan-Mar": kept as printed, like a MedlineDate
    parts = [p for p in (year, month, _text(pub_date.get("Day", "")), season) if p]
    return " ".join(parts), int(year) if year.isascii() and year.isdigit() else None


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
                    suffix=_text(author.get("Suffix", "")),
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
    """{"doi": …, "pmc": …} with each id checked for its shape; an id of the wrong shape is left out."""
    found = {str(getattr(i, "attributes", {}).get("IdType", "")): _text(i) for i in id_list or []}
    checks = {"doi": ids.doi, "pmc": ids.pmcid, "pubmed": ids.pmid}
    return {kind: checked for kind, value in found.items() if (checked := checks.get(kind, str)(value))}


# The CommentsCorrections links il2watch keeps on a record: the notices about it and those it is.
NOTICE_TYPES = frozenset(LINKS_IN) | frozenset(LINKS_OF)

Sources = dict[tuple[str, str], str]  # (RefType, notice PMID) -> RefSource ("J Immunol. 2027 Mar;218(3):1-2")


def _links(citation: Any) -> list[tuple[str, str, str]]:
    """A record's notice links, (RefType, PMID, RefSource): where each notice appeared, as PubMed cites it."""
    found = []
    for item in citation.get("CommentsCorrectionsList", []) or []:
        ref_type = str(getattr(item, "attributes", {}).get("RefType", ""))
        pmid = ids.pmid(_text(item.get("PMID", "")))
        if ref_type in NOTICE_TYPES and pmid:
            found.append((ref_type, pmid, _text(item.get("RefSource", ""))[:300]))
    return found


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


def _checked_pmid(value: Any) -> str:
    pmid = ids.pmid(_text(value))
    if pmid is None:
        raise ValueError(f"its PMID {_text(value)[:20]!r} is not a PubMed ID")
    return pmid


def _paper_from_article(record: Any) -> Paper:
    citation = record["MedlineCitation"]
    article = citation["Article"]
    journal = article.get("Journal", {})
    journal_issue = journal.get("JournalIssue", {})
    pub_date, year = _pub_date(journal_issue.get("PubDate"))
    known = _article_ids(record.get("PubmedData", {}).get("ArticleIdList"))
    doi = known.get("doi", "")
    if not doi:
        located = (ids.doi(_text(e)) for e in article.get("ELocationID", []) if e.attributes.get("EIdType") == "doi")
        doi = next((d for d in located if d), "")
    history = record.get("PubmedData", {}).get("History", [])
    return Paper(
        pmid=_checked_pmid(citation["PMID"]),
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
        pmcid=known.get("pmc", ""),
        pub_types=tuple(_text(t) for t in article.get("PublicationTypeList", [])),
        keywords=tuple(_text(k) for group in citation.get("KeywordList", []) for k in group),
        mesh=tuple(_text(h["DescriptorName"]) for h in citation.get("MeshHeadingList", []) if "DescriptorName" in h),
        language=", ".join(_text(lang) for lang in article.get("Language", [])),
        corrections=tuple((ref_type, pmid) for ref_type, pmid, _ in _links(citation)),
    )


def _paper_from_book(record: Any) -> Paper:
    document = record["BookDocument"]
    book = document.get("Book", {})
    pub_date, year = _pub_date(book.get("PubDate"))
    known = _article_ids(record.get("PubmedBookData", {}).get("ArticleIdList"))
    known.update({k: v for k, v in _article_ids(document.get("ArticleIdList")).items() if k not in known})
    history = record.get("PubmedBookData", {}).get("History", [])
    authors: tuple[Author, ...] = ()
    for author_list in document.get("AuthorList", []):
        authors += _authors(author_list)
    title = _marked(document.get("ArticleTitle", "")) or _marked(book.get("BookTitle", ""))
    return Paper(
        pmid=_checked_pmid(document["PMID"]),
        title=title,
        abstract=_abstract(document.get("Abstract")),
        authors=authors,
        journal=_text(book.get("BookTitle", "")),
        journal_iso=_text(book.get("Publisher", {}).get("PublisherName", "")),
        pub_date=pub_date,
        pub_year=year,
        entry_date=_date_parts(history, "entrez") or _date_parts(history, "pubmed"),
        doi=known.get("doi", ""),
        pmcid=known.get("pmc", ""),
        pub_types=tuple(_text(t) for t in document.get("PublicationType", [])),
        keywords=tuple(_text(k) for group in document.get("KeywordList", []) for k in group),
        language=", ".join(_text(lang) for lang in document.get("Language", [])),
        is_book=True,
    )


# A record's reference list (often a hundred citations) is most of its bytes and il2watch never reads
# it; the DTD lets a <Reference> hold only Citation and ArticleIdList, so it can go before parsing.
_REFERENCES = re.compile(rb"<Reference>.*?</Reference>", re.DOTALL)
_RECORD = re.compile(rb"<(PubmedArticle|PubmedBookArticle)>.*?</\1>", re.DOTALL)
_RECORD_PMID = re.compile(rb"<PMID[^>]*>\s*([^<]{1,40}?)\s*</PMID>")
_SET_START = re.compile(rb"<PubmedArticleSet>")


@dataclass
class Articles:
    """The records of one EFetch answer that could be read, and the PMIDs of those that could not (why)."""

    papers: list[Paper] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    sources: dict[str, Sources] = field(default_factory=dict)  # pmid -> where its notices appeared


def _record_pmid(chunk: bytes) -> str:
    found = _RECORD_PMID.search(chunk)
    return found.group(1).decode("utf-8", "replace") if found else "(no PMID)"


def _papers_of(parsed: Any, what: str, into: Articles) -> None:
    if not hasattr(parsed, "get") or ("PubmedArticle" not in parsed and "PubmedBookArticle" not in parsed):
        raise PubMedError(f"NCBI's answer to {what} is not a PubmedArticleSet")
    for key, convert in (("PubmedArticle", _paper_from_article), ("PubmedBookArticle", _paper_from_book)):
        for record in parsed.get(key, []):
            try:
                paper = convert(record)
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                root = record.get("MedlineCitation") or record.get("BookDocument") or {}
                pmid = _text(root.get("PMID", "")) if hasattr(root, "get") else ""
                missing = f"lacks {error}" if isinstance(error, KeyError) else str(error)
                into.unreadable[pmid or "(no PMID)"] = f"the record {missing}; NCBI's format may have changed"
                continue
            into.papers.append(paper)
            if paper.corrections:  # where its notices appeared, read from the same parse
                citation = record["MedlineCitation"]
                into.sources[paper.pmid] = {(ref_type, pmid): source for ref_type, pmid, source in _links(citation)}


def parse_articles(data: bytes, what: str = "EFetch") -> Articles:
    """Every PubmedArticle and PubmedBookArticle in an EFetch answer, as Papers.

    A complete answer that the parser rejects as a whole (one record with an element the DTD does not
    know, a character XML forbids) is read again record by record, so that one bad record is set aside
    by its PMID and the others are kept. An incomplete answer (cut off in transit) fails whole.
    """
    data = _REFERENCES.sub(b"", data)
    articles = Articles()
    try:
        parsed = read_xml(data, what)
    except PubMedError:
        start = _SET_START.search(data[:4000])
        if start is None or not data.rstrip().endswith(b"</PubmedArticleSet>") or not _RECORD.search(data):
            raise
        head = data[: start.end()]
        for chunk in _RECORD.finditer(data):
            pmid = _record_pmid(chunk.group(0))
            try:
                _papers_of(read_xml(head + chunk.group(0) + b"</PubmedArticleSet>", what), what, articles)
            except PubMedError as error:
                articles.unreadable[pmid] = str(error).replace(f" to {what}", "").replace(f" for {what}", "")
        return articles
    _papers_of(parsed, what, articles)
    return articles


__all__ = [
    "Articles",
    "Eutils",
    "Fetched",
    "Links",
    "PubMedError",
    "QueryProblem",
    "HistorySearch",
    "Search",
    "Session",
    "check_query",
    "database_info",
    "entrez_read",
    "epost",
    "esearch",
    "fetch_links",
    "fetch_papers",
    "fetch_history",
    "fetch_records",
    "parse_articles",
    "read_xml",
    "search",
    "search_history",
    "verify_pmids",
]
