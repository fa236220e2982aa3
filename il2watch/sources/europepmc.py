"""Europe PMC: works citing the watched papers, preprints included.

``MED/{pmid}/citations`` lists them page by page (``source`` says what each id is: ``MED`` a PMID,
``PMC`` a PMCID, ``PPR`` a preprint, ``PAT``/``ETH``/… patents, theses and other indexes). Papers with a
PMID come from PubMed's EFetch; preprints and other records come whole from ``search`` with
``resultType=core``, many per request. A paper nobody cites answers 404 with Europe PMC's own JSON body:
that is zero citations. A 404 without it means the base URL is wrong. No key; at most 10 requests a
second (il2watch asks 5).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from il2watch.identity import Ids, doi_of, pmcid_of, pmid_of, ppr_of
from il2watch.model import Author, Paper, Section
from il2watch.sources.base import (
    Answer,
    Finding,
    Found,
    Http,
    Request,
    SourceError,
    SourceRecord,
    iso_date,
    marked_from_html,
    printed_date,
    read_json,
)

NAME, LABEL = "europepmc", "Europe PMC"
RATE = 5.0
PAGE = 1000  # Europe PMC's largest pageSize
MAX_PAGES = 50  # 50,000 citing works of one paper: far beyond any real one, a guard against a looping server
SEARCH_BATCH = 50  # preprint ids per search request (keeps the URL short)
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


class EuropePmc:
    name, label = NAME, LABEL

    def __init__(self, http: Http):
        self.http = http

    def find(self, request: Request) -> Finding:
        finding = Finding(NAME)
        for watch in request.watches:
            if not watch.pmid:
                continue
            for entry in self.citations(watch.pmid):
                found = found_from_citation(entry, watch.id)
                if found is not None and found.ids.pmid != watch.pmid:
                    finding.found.append(found)
            finding.answered.append(watch.id)
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
        if not isinstance(count, int):
            raise SourceError("Europe PMC's answer has no hitCount; its format may have changed")
        return f"Europe PMC answers: {count:,} works cite PMID {pmid}"

    def citations(self, pmid: str) -> list[dict[str, Any]]:
        """Every citation entry Europe PMC lists for PubMed record ``pmid``, all pages."""
        entries: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            answer = self.http.get(
                f"MED/{pmid}/citations",
                [("format", "json"), ("page", str(page)), ("pageSize", str(PAGE))],
                accept=(404,),
            )
            if answer.status == 404:
                nobody_cites(answer, pmid)
                return entries  # "no citations found": nobody cites it (or no more pages)
            data = read_json(answer, f"Europe PMC citations of PMID {pmid}")
            if not isinstance(data, dict):
                raise SourceError(f"Europe PMC citations of PMID {pmid}: the answer is not a JSON object")
            try:
                total = int(data.get("hitCount") or 0)
            except (TypeError, ValueError):
                raise SourceError(f"Europe PMC citations of PMID {pmid}: hitCount is not a number") from None
            listed = (data.get("citationList") or {}).get("citation") or []
            if not isinstance(listed, list):
                raise SourceError(f"Europe PMC citations of PMID {pmid}: citationList is not a list")
            entries += [e for e in listed if isinstance(e, dict)]
            if not listed or len(entries) >= total:
                return entries
        raise SourceError(f"Europe PMC kept sending pages of citations of PMID {pmid} past {MAX_PAGES}; stopped there")

    def records(self, found: Sequence[Found]) -> list[SourceRecord]:
        """Whole records of the preprints among ``found``, from ``search`` with ``resultType=core``."""
        wanted = sorted({f.ids.ppr for f in found if f.ids.ppr and not f.ids.pmid})
        papers: list[SourceRecord] = []
        for start in range(0, len(wanted), SEARCH_BATCH):
            chunk = wanted[start : start + SEARCH_BATCH]
            query = "(" + " OR ".join(f"EXT_ID:{ppr}" for ppr in chunk) + ") AND SRC:PPR"
            cursor = "*"
            for _ in range(MAX_PAGES):
                answer = self.http.get(
                    "search",
                    [
                        ("query", query),
                        ("resultType", "core"),
                        ("format", "json"),
                        ("pageSize", str(len(chunk))),
                        ("cursorMark", cursor),
                    ],
                )
                data = read_json(answer, "Europe PMC search")
                results = ((data.get("resultList") or {}).get("result") or []) if isinstance(data, dict) else []
                for result in results:
                    paper = paper_from_core(result) if isinstance(result, dict) else None
                    if paper is not None:
                        papers.append(SourceRecord(core_ids(result), paper))
                following = str(data.get("nextCursorMark") or "") if isinstance(data, dict) else ""
                if not results or not following or following == cursor:
                    break
                cursor = following
        return papers


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
    """Europe PMC's own JSON error (what it sends with 404 for "no citations"), not a proxy's page."""
    return isinstance(data, dict) and ("errCode" in data or "hitCount" in data) and "version" in data


def found_from_citation(entry: Mapping[str, Any], watch_id: str) -> Found | None:
    """A citation entry as a Found; None when its id is no id of the kind its source says."""
    source = str(entry.get("source") or "").upper()
    raw_id = entry.get("id")
    if source == "MED":
        ids = Ids(pmid=pmid_of(raw_id))
        category = ""
    elif source == "PMC":
        ids = Ids(pmcid=pmcid_of(raw_id))
        category = ""
    elif source == "PPR":
        ids = Ids(ppr=ppr_of(raw_id))
        category = "preprint"
    elif source in NOT_POSTED:
        ids = Ids.of(epmc=f"{source}/{str(raw_id or '').strip()}")
        if not ids:
            return None
        text = ids.epmc.split("/", 1)[1]
        return Found(
            ids,
            watch_id,
            "cites",
            NAME,
            category=NOT_POSTED[source],
            record=Paper(
                pmid="",
                title=marked_from_html(entry.get("title")) or f"{source} {text}",
                pub_year=_year(entry.get("pubYear")),
                pub_types=(NOT_POSTED[source],),
                journal=f"Europe PMC {source} {text}",
            ),
        )
    else:
        return None
    if not ids:
        return None
    return Found(ids, watch_id, "cites", NAME, category=category)


def _year(value: object) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and 1800 <= int(text) <= 2200 else None


def paper_from_core(result: Mapping[str, Any]) -> Paper | None:
    """A Paper from a ``resultType=core`` search result (a preprint, typically)."""
    title = marked_from_html(result.get("title"))
    if not title:
        return None
    authors = []
    for author in (result.get("authorList") or {}).get("author") or []:
        if isinstance(author, dict):
            if author.get("collectiveName"):
                authors.append(Author(collective=str(author["collectiveName"])))
            elif author.get("lastName") or author.get("fullName"):
                authors.append(
                    Author(
                        last_name=str(author.get("lastName") or author.get("fullName")),
                        fore_name=str(author.get("firstName") or ""),
                        initials=str(author.get("initials") or ""),
                    )
                )
    abstract = marked_from_html(result.get("abstractText"))
    published = iso_date(result.get("firstPublicationDate"))
    types = tuple(str(t) for t in ((result.get("pubTypeList") or {}).get("pubType") or []) if str(t).strip())
    source = str(result.get("source") or "").upper()
    server = str((result.get("bookOrReportDetails") or {}).get("publisher") or "")
    if source == "PPR" and not any(t.lower() == "preprint" for t in types):
        types = ("Preprint", *types)
    return Paper(
        pmid=pmid_of(result.get("pmid")),
        title=title,
        abstract=(Section(text=abstract),) if abstract else (),
        authors=tuple(a for a in authors if a.name),
        journal=server,
        journal_iso=server,
        pub_date=printed_date(published),
        pub_year=_year(result.get("pubYear")),
        entry_date=iso_date(result.get("firstIndexDate")) or published,
        doi=doi_of(result.get("doi")),
        pmcid=pmcid_of(result.get("pmcid")),
        pub_types=types,
    )


def core_ids(result: Mapping[str, Any]) -> Ids:
    """Every id a core search result carries."""
    return Ids(
        pmid=pmid_of(result.get("pmid")),
        doi=doi_of(result.get("doi")),
        pmcid=pmcid_of(result.get("pmcid")),
        ppr=ppr_of(result.get("id")) if str(result.get("source") or "").upper() == "PPR" else "",
    )
