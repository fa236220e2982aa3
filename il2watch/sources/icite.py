"""NIH iCite (the NIH Open Citation Collection): which PubMed papers cite the watched papers.

One request asks about every watched PMID at once (``api/pubs?pmids=…``, up to 1,000 a request);
each record's ``cited_by`` lists citing PMIDs, whose records come from PubMed's EFetch like any paper.
iCite refreshes its citation data about monthly, so asking more than daily gains nothing
(``IL2WATCH_ICITE_REFRESH``). It publishes no rate limit: il2watch asks at most 3 requests a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from il2watch import ids
from il2watch.identity import Ids, pmid_of
from il2watch.ids import batches
from il2watch.model import Watch
from il2watch.sources.base import (
    Fields,
    Finding,
    Found,
    Given,
    Http,
    Kind,
    Oddities,
    Request,
    SourceError,
    json_host,
    read_json,
    shown,
)

NAME, LABEL = "icite", "iCite"
RATE = 3.0  # requests a second: iCite publishes no limit
BATCH = 1000  # PMIDs per request
FIELDS = "pmid,doi,cited_by"


def build(settings: Any, eutils: Any) -> Icite:
    return Icite(json_host(settings, NAME, "icite_url", RATE))


class Icite:
    name, label = NAME, LABEL

    def __init__(self, http: Http):
        self.http = http

    def find(self, request: Request) -> Finding:
        finding = Finding(NAME)
        odd = Oddities(LABEL)
        by_pmid: dict[str, list[Watch]] = {}
        for watch in request.watches:
            if watch.pmid:
                by_pmid.setdefault(watch.pmid, []).append(watch)
        pmids = list(by_pmid)
        unreadable: dict[str, str] = {}
        for chunk in batches(pmids, BATCH):
            answer = self.http.get("api/pubs", [("pmids", ",".join(chunk)), ("fl", FIELDS)])
            pubs = parse_pubs(read_json(answer, "iCite api/pubs"))
            unreadable.update(pubs.unreadable)
            for pmid, cited_by in pubs.cited_by.items():
                for watch in by_pmid.get(pmid, []):
                    finding.answered.append(watch.id)
                    finding.found += [Found(Ids(pmid=c), watch.id, "cites", NAME) for c in cited_by if c != pmid]
                    if pubs.left_out.get(pmid):
                        odd.add(watch.id, f"PMID {pmid}", f"cited_by lists {pubs.left_out[pmid]} (left out)")
            for shown_id in pubs.strangers:
                odd.add(by_pmid[chunk[0]][0].id, shown_id, "no PMID that can be read (left out)")
        for pmid, chosen in by_pmid.items():
            for watch in chosen:
                if watch.id in finding.answered:
                    continue
                finding.failed[watch.id] = unreadable.get(pmid) or f"iCite does not know PMID {pmid} yet"
        finding.warnings += odd.warnings()
        return finding

    def probe(self, pmid: str) -> str:
        """One request about a watched paper, for ``doctor``: what iCite knows of it."""
        pubs = parse_pubs(read_json(self.http.get("api/pubs", [("pmids", pmid), ("fl", FIELDS)]), "iCite api/pubs"))
        if pmid in pubs.unreadable:
            raise SourceError(pubs.unreadable[pmid])
        if pmid not in pubs.cited_by:
            raise SourceError(f"iCite answers but does not know PMID {pmid} yet")
        return f"iCite answers: {len(pubs.cited_by[pmid]):,} papers cite PMID {pmid}"

    def records(self, found: Sequence[Found]) -> Given:
        return Given()  # everything iCite lists has a PMID: PubMed has the records


@dataclass
class Pubs:
    """An ``api/pubs`` answer as read: the citing PMIDs of each record, what was odd about it."""

    cited_by: dict[str, list[str]] = field(default_factory=dict)  # watched pmid -> citing pmids
    left_out: dict[str, str] = field(default_factory=dict)  # pmid -> "2 ids that are no PMIDs ('x', …)"
    unreadable: dict[str, str] = field(default_factory=dict)  # pmid -> why its record could not be read
    strangers: list[str] = field(default_factory=list)  # records without a PMID that can be read


def parse_pubs(data: object) -> Pubs:
    """What an ``api/pubs`` answer says. Ids that are no PMIDs are left out (and counted); a record whose
    ``cited_by`` is not a list cannot be read (that watch is set aside at iCite this poll); only an
    answer without a ``data`` list fails iCite as a whole."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SourceError("iCite api/pubs: the answer has no `data` list; its format may have changed")
    pubs = Pubs()
    for item in data["data"]:
        record = Fields(item)
        pmid = pmid_of(record.text("pmid"))
        if not pmid:
            pubs.strangers.append(shown(record.text("pmid") or "(no pmid)"))
            continue
        cited_by = record.value("cited_by")
        if cited_by is None:  # null in older records
            cited_by = []
        if not isinstance(cited_by, list):
            pubs.unreadable[pmid] = (
                f"iCite's record of PMID {pmid} has `cited_by` of an unexpected type "
                f"({type(cited_by).__name__}), set aside this poll"
            )
            continue
        good, bad = ids.pmids(c for c in cited_by if not isinstance(c, bool | list | dict))
        bad += [shown(c) for c in cited_by if isinstance(c, bool | list | dict)]
        pubs.cited_by[pmid] = list(dict.fromkeys(good))
        if bad:
            sample = ", ".join(repr(shown(b, 20)) for b in bad[:3])
            pubs.left_out[pmid] = f"{len(bad)} ids that are no PMIDs ({sample}{', …' if len(bad) > 3 else ''})"
    return pubs


KIND = Kind(NAME, ("icite_url", "icite_refresh"), build)
