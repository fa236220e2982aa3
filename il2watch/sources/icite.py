"""NIH iCite (the NIH Open Citation Collection): which PubMed papers cite the watched papers.

One request asks about every watched PMID at once (``api/pubs?pmids=…``, up to 1,000 a request);
each record's ``cited_by`` lists citing PMIDs, whose records come from PubMed's EFetch like any paper.
iCite refreshes its citation data about monthly, so asking more than daily gains nothing
(``IL2WATCH_ICITE_REFRESH``). It publishes no rate limit: il2watch asks at most 3 requests a second.
"""

from __future__ import annotations

from collections.abc import Sequence

from il2watch.identity import Ids, pmid_of
from il2watch.model import Watch
from il2watch.sources.base import Finding, Found, Http, Request, SourceError, SourceRecord, read_json

NAME, LABEL = "icite", "iCite"
RATE = 3.0  # requests a second: iCite publishes no limit
BATCH = 1000  # PMIDs per request
FIELDS = "pmid,doi,cited_by"


class Icite:
    name, label = NAME, LABEL

    def __init__(self, http: Http):
        self.http = http

    def find(self, request: Request) -> Finding:
        finding = Finding(NAME)
        by_pmid: dict[str, list[Watch]] = {}
        for watch in request.watches:
            if watch.pmid:
                by_pmid.setdefault(watch.pmid, []).append(watch)
        pmids = list(by_pmid)
        for start in range(0, len(pmids), BATCH):
            chunk = pmids[start : start + BATCH]
            answer = self.http.get("api/pubs", [("pmids", ",".join(chunk)), ("fl", FIELDS)])
            for pmid, cited_by in parse_pubs(read_json(answer, "iCite api/pubs")).items():
                for watch in by_pmid.get(pmid, []):
                    finding.answered.append(watch.id)
                    finding.found += [Found(Ids(pmid=c), watch.id, "cites", NAME) for c in cited_by if c != pmid]
        for pmid, chosen in by_pmid.items():
            for watch in chosen:
                if watch.id not in finding.answered:
                    finding.failed[watch.id] = f"iCite does not know PMID {pmid} yet"
        return finding

    def probe(self, pmid: str) -> str:
        """One request about a watched paper, for ``doctor``: what iCite knows of it."""
        found = parse_pubs(read_json(self.http.get("api/pubs", [("pmids", pmid), ("fl", FIELDS)]), "iCite api/pubs"))
        if pmid not in found:
            raise SourceError(f"iCite answers but does not know PMID {pmid} yet")
        return f"iCite answers: {len(found[pmid]):,} papers cite PMID {pmid}"

    def records(self, found: Sequence[Found]) -> list[SourceRecord]:
        return []  # everything iCite lists has a PMID: PubMed has the records


def parse_pubs(data: object) -> dict[str, list[str]]:
    """{watched pmid: [citing pmids]} from an ``api/pubs`` answer; ids that are no PMIDs are dropped."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SourceError("iCite api/pubs: the answer has no `data` list; its format may have changed")
    result: dict[str, list[str]] = {}
    for item in data["data"]:
        if not isinstance(item, dict):
            continue
        pmid = pmid_of(item.get("pmid"))
        if not pmid:
            continue
        cited_by = item.get("cited_by") or []  # null in older records
        if not isinstance(cited_by, list):
            raise SourceError(f"iCite api/pubs: `cited_by` of PMID {pmid} is not a list")
        result[pmid] = list(dict.fromkeys(p for p in (pmid_of(c) for c in cited_by) if p))
    return result
