"""Europe PMC: works citing the watched papers, preprints included.

``MED/{pmid}/citations`` lists them page by page (``source`` says what each id is: ``MED`` a PMID,
``PMC`` a PMCID, ``PPR`` a preprint, ``PAT``/``ETH``/… patents, theses and other indexes). Papers with a
PMID come from PubMed's EFetch; preprints and PMC-only articles come whole from ``search`` with
``resultType=core``, many per request and one request per source, paged by ``cursorMark``; patents,
theses and the like are kept from their citation entry alone (they are never posted). A paper nobody
cites answers 404 with Europe PMC's own JSON body: that is zero citations. A 404 without it means the
base URL is wrong. No key; at most 10 requests a second (il2watch asks 5).

An odd entry or record (an id that is no id, text where a list belongs) is left out or read in part with
one warning naming it; only an answer that is no answer (HTML, half a document, no list) fails the watch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from il2watch.identity import Ids, doi_of, pmcid_of, pmid_of, ppr_of
from il2watch.ids import batches
from il2watch.model import Author, Paper, Section
from il2watch.sources.base import (
    Answer,
    Fields,
    Finding,
    Found,
    Given,
    Http,
    Kind,
    Oddities,
    Request,
    SourceError,
    SourceRecord,
    iso_date,
    json_host,
    marked_from_html,
    printed_date,
    read_json,
)

NAME, LABEL = "europepmc", "Europe PMC"
RATE = 5.0
PAGE = 1000  # Europe PMC's largest pageSize
MAX_PAGES = 50  # 50,000 citing works of one paper: far beyond any real one, a guard against a looping server
SEARCH_BATCH = 50  # ids per search request (keeps the URL short)
# The sources whose records come whole from ``search``: how each names its id.
WHOLE = {"PPR": "ppr", "PMC": "pmcid"}
# Europe PMC's sources that are not journal articles or preprints: kept in the library, never posted.
NOT_POSTED = {
    "PAT": "patent",
    "ETH": "thesis",
    "AGR": "agricultural record",
    "CBA": "Chinese abstract",
    "CTX": "CiteXplore record",
    "HIR": "NHS Evidence record",
    "NBK": "book",
}


def build(settings: Any, eutils: Any) -> EuropePmc:
    return EuropePmc(json_host(settings, NAME, "europepmc_url", RATE))


class EuropePmc:
    name, label = NAME, LABEL

    def __init__(self, http: Http, *, page_size: int = PAGE, max_pages: int = MAX_PAGES):
        self.http = http
        self.page_size, self.max_pages = page_size, max_pages

    def find(self, request: Request) -> Finding:
        finding = Finding(NAME)
        odd = Oddities(LABEL)
        for watch in request.watches:
            if not watch.pmid:
                continue
            try:
                entries = self.citations(watch.pmid)
            except SourceError as error:
                finding.failed[watch.id] = str(error)
                continue
            for entry in entries:
                found = found_from_citation(entry, watch.id, odd)
                if found is not None and found.ids.pmid != watch.pmid:
                    finding.found.append(found)
            finding.answered.append(watch.id)
        finding.warnings += odd.warnings()
        return finding

    def probe(self, pmid: str) -> str:
        """One request about a watched paper, for ``doctor``: how many works Europe PMC lists as citing it."""
        answer = self.http.get(
            f"MED/{pmid}/citations", [("format", "json"), ("page", "1"), ("pageSize", "1")], accept=(404,)
        )
        if answer.status == 404:
            nobody_cites(answer, pmid)
            return f"Europe PMC answers: no work cites PMID {pmid} yet"
        data = read_json(answer, f"Europe PMC citations of PMID {pmid}")
        count = data.get("hitCount") if isinstance(data, dict) else None
        if not isinstance(count, int) or isinstance(count, bool):
            raise SourceError("Europe PMC's answer has no hitCount; its format may have changed")
        return f"Europe PMC answers: {count:,} works cite PMID {pmid}"

    def citations(self, pmid: str) -> list[object]:
        """Every citation entry Europe PMC lists for PubMed record ``pmid``, all pages, as they came."""
        entries: list[object] = []
        what = f"Europe PMC citations of PMID {pmid}"
        for page in range(1, self.max_pages + 1):
            answer = self.http.get(
                f"MED/{pmid}/citations",
                [("format", "json"), ("page", str(page)), ("pageSize", str(self.page_size))],
                accept=(404,),
            )
            if answer.status == 404:
                nobody_cites(answer, pmid)
                return entries  # "no citations found": nobody cites it (or no more pages)
            data = read_json(answer, what)
            if not isinstance(data, dict):
                raise SourceError(f"{what}: the answer is not a JSON object")
            total = data.get("hitCount")
            if total is None:
                total = 0
            if not isinstance(total, int) or isinstance(total, bool):
                raise SourceError(f"{what}: hitCount is not a number")
            listing = data.get("citationList")
            if listing is not None and not isinstance(listing, dict):
                raise SourceError(f"{what}: citationList is not an object")
            listed = (listing or {}).get("citation")
            listed = [] if listed is None else listed
            if not isinstance(listed, list):
                raise SourceError(f"{what}: citationList is not a list")
            entries += listed
            if not listed or len(entries) >= total:
                return entries
        raise SourceError(f"Europe PMC kept sending pages of citations of PMID {pmid} past {self.max_pages}; stopped")

    def records(self, found: Sequence[Found]) -> Given:
        """Whole records of the preprints and PMC articles among ``found``, from ``search`` (``resultType=core``)."""
        wanted: dict[tuple[str, str], list[str]] = {}  # (source, its id) -> the watches that listed it
        for f in found:
            if f.ids.pmid:
                continue
            for source, kind in WHOLE.items():
                value = getattr(f.ids, kind)
                if value:
                    wanted.setdefault((source, value), []).append(f.watch)
                    break
        given = Given()
        odd = Oddities(LABEL)
        for source in sorted({source for source, _ in wanted}):
            listed = {value: watches for (s, value), watches in wanted.items() if s == source}
            ids = sorted(listed)
            for chunk in batches(ids, SEARCH_BATCH):
                asked = sorted({w for value in chunk for w in listed[value]})
                for result in self.search(source, chunk):
                    record = core_record(result, source, listed, asked, odd)
                    if record is not None:
                        given.records.append(record)
        given.warnings += odd.warnings()
        return given

    def search(self, source: str, ids: Sequence[str]) -> Iterator[object]:
        """Every ``resultType=core`` result for these ids of one Europe PMC source, through every cursor."""
        query = "(" + " OR ".join(f"EXT_ID:{value}" for value in ids) + f") AND SRC:{source}"
        cursor = "*"
        for _ in range(self.max_pages):
            answer = self.http.get(
                "search",
                [
                    ("query", query),
                    ("resultType", "core"),
                    ("format", "json"),
                    ("pageSize", str(min(len(ids), self.page_size))),
                    ("cursorMark", cursor),
                ],
            )
            data = Fields(read_json(answer, "Europe PMC search"))
            if data.odd:
                raise SourceError("Europe PMC search: the answer is not a JSON object")
            results = data.obj("resultList").items("result")
            yield from results
            following = data.text("nextCursorMark")
            if not results or not following or following == cursor:
                return
            cursor = following
        raise SourceError(f"Europe PMC kept sending pages of search results past {self.max_pages}; stopped")

    def preprint_results(self, pprs: Sequence[str]) -> list[dict[str, Any]]:
        """Europe PMC's whole records (``resultType=core``) of these preprints, as it sends them, many per
        request: what the follow-up check reads withdrawals and journal versions from."""
        results: list[dict[str, Any]] = []
        for chunk in batches(pprs, SEARCH_BATCH):
            results += [r for r in self.search("PPR", chunk) if isinstance(r, dict)]
        return results


def nobody_cites(answer: Answer, pmid: str) -> None:
    """A 404 with Europe PMC's own JSON body means nobody cites the paper; any other 404 is a wrong URL."""
    try:
        data = json.loads(answer.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        data = None
    if not is_own_answer(data):
        raise SourceError(
            f"Europe PMC answered 404 for the citations of PMID {pmid} without its own error body: "
            f"is IL2WATCH_EUROPEPMC_URL right?"
        )


def is_own_answer(data: object) -> bool:
    """Europe PMC's own JSON answer to "no citations" (a JSON object with its ``errCode``/``errMsg``, or a
    ``hitCount`` of 0), not a proxy's page or another service's error."""
    if not isinstance(data, dict):
        return False
    return "errCode" in data or "errMsg" in data or (data.get("hitCount") == 0 and "hitCount" in data)


def found_from_citation(entry: object, watch_id: str, odd: Oddities) -> Found | None:
    """A citation entry as a Found; None (noted in ``odd``) when its id is no id of the kind its source says."""
    fields = Fields(entry)
    source = fields.text("source").strip().upper()
    raw_id = fields.text("id").strip()
    named = f"{source}/{raw_id}" if source else raw_id
    if fields.odd and not raw_id:
        odd.add(watch_id, named, "not a citation entry that can be read (left out)")
        return None
    if source == "MED":
        ids, category = Ids(pmid=pmid_of(raw_id)), ""
    elif source == "PMC":
        ids, category = Ids(pmcid=pmcid_of(raw_id)), ""
    elif source == "PPR":
        ids, category = Ids(ppr=ppr_of(raw_id)), "preprint"
    elif source in NOT_POSTED:
        ids = Ids.of(epmc=named)
        if not ids:
            odd.add(watch_id, named, f"its id is no {NOT_POSTED[source]} id (left out)")
            return None
        odd.read_in_part(watch_id, named, fields)
        return Found(
            ids,
            watch_id,
            "cites",
            NAME,
            category=NOT_POSTED[source],
            record=Paper(
                pmid="",
                title=marked_from_html(fields.text("title")) or f"{source} {raw_id}",
                pub_year=_year(fields.text("pubYear")),
                pub_types=(NOT_POSTED[source],),
                journal=f"Europe PMC {source} {raw_id}",
            ),
        )
    else:
        odd.add(watch_id, named, "a source Europe PMC does not document (left out)")
        return None
    if not ids:
        odd.add(watch_id, named, f"its id is no {source} id (left out)")
        return None
    return Found(ids, watch_id, "cites", NAME, category=category)


def _year(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and 1800 <= int(text) <= 2200 else None


def core_record(
    result: object, source: str, listed: Mapping[str, Sequence[str]], asked: Sequence[str], odd: Oddities
) -> SourceRecord | None:
    """A ``resultType=core`` result of one Europe PMC source as a record, noted in ``odd`` for the watches
    that listed it (``listed``: its id -> watches; ``asked`` when its id cannot be read) when it can be read
    only in part; None (noted too) without a title or an id of its kind."""
    fields = Fields(result)
    ids = core_ids(fields)
    named = getattr(ids, WHOLE.get(source, "ppr"))
    paper = paper_from_core(fields)
    for watch_id in dict.fromkeys(listed.get(named, asked)):
        if paper is None or not named:
            odd.add(watch_id, named or fields.text("id"), "no title or id that can be read (left out)")
        else:
            odd.read_in_part(watch_id, named, fields)
    return SourceRecord(ids, paper) if paper is not None and named else None


def paper_from_core(result: Fields) -> Paper | None:
    """A Paper from a ``resultType=core`` search result (a preprint, a PMC article); None without a title.
    Fields of an unexpected type read as absent and are noted in ``result.odd``."""
    title = marked_from_html(result.text("title"))
    if not title:
        return None
    authors = []
    for author in result.obj("authorList").objs("author"):
        collective = author.text("collectiveName")
        last = author.text("lastName") or author.text("fullName")
        if collective:
            authors.append(Author(collective=collective))
        elif last:
            authors.append(Author(last_name=last, fore_name=author.text("firstName"), initials=author.text("initials")))
    abstract = marked_from_html(result.text("abstractText"))
    published = iso_date(result.text("firstPublicationDate"))
    types = tuple(t for t in result.obj("pubTypeList").texts("pubType") if t.strip())
    source = result.text("source").upper()
    journal = result.obj("journalInfo").obj("journal")
    server = result.obj("bookOrReportDetails").text("publisher")
    title_of_journal = journal.text("title") or server
    if source == "PPR" and not any(t.lower() == "preprint" for t in types):
        types = ("Preprint", *types)
    return Paper(
        pmid=pmid_of(result.text("pmid")),
        title=title,
        abstract=(Section(text=abstract),) if abstract else (),
        authors=tuple(a for a in authors if a.name),
        journal=title_of_journal,
        journal_iso=journal.text("isoabbreviation") or journal.text("medlineAbbreviation") or title_of_journal,
        pub_date=printed_date(published),
        pub_year=_year(result.text("pubYear")),
        pages=result.text("pageInfo")[:40],
        entry_date=iso_date(result.text("firstIndexDate")) or published,
        doi=doi_of(result.text("doi")),
        pmcid=pmcid_of(result.text("pmcid")) or (pmcid_of(result.text("id")) if source == "PMC" else ""),
        pub_types=types,
    )


def core_ids(result: Fields) -> Ids:
    """Every id a core search result carries."""
    source = result.text("source").upper()
    return Ids(
        pmid=pmid_of(result.text("pmid")),
        doi=doi_of(result.text("doi")),
        pmcid=pmcid_of(result.text("pmcid")) or (pmcid_of(result.text("id")) if source == "PMC" else ""),
        ppr=ppr_of(result.text("id")) if source == "PPR" else "",
    )


KIND = Kind(NAME, ("europepmc_url", "europepmc_refresh"), build)
