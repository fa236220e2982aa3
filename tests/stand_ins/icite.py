"""A stand-in for NIH iCite (the NIH Open Citation Collection), answering from a ``Literature``.

``GET api/pubs?pmids=a,b&fl=…`` answers ``{"meta": {...}, "data": [...]}`` with one record per PMID
iCite knows (unknown PMIDs are simply absent), each with ``cited_by`` as integer PMIDs. Choices where
iCite's behaviour is not documented: more than 1,000 PMIDs in one request gets HTTP 400 with a JSON
error; ``cited_by`` is ``null`` for a paper nobody cites when ``null_when_uncited`` is set (older
records); ``provisional`` is "Yes"/"No" text. ``GET api/pubs/{pmid}`` answers the one record, 404 when
unknown. iCite publishes no rate limit; this one allows ``rate_limit`` requests a second per client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.stand_ins.json_api import Answer, JsonStandIn, NotFound, one
from tests.stand_ins.literature import Literature

MAX_PMIDS = 1000


class IciteStandIn(JsonStandIn):
    name = "icite"
    root = "/"
    rate_limit = 5

    def __init__(self, literature: Literature, **options: Any):
        self.literature = literature
        self.null_when_uncited = False
        super().__init__(**options)

    def _record(self, pmid: str, fields: list[str]) -> dict[str, Any] | None:
        rec = self.literature.record(pmid)
        if rec is None:
            return None
        cited_by = [int(key[5:]) for key in self.literature.citing(pmid, "icite") if key.startswith("pmid:")]
        full: dict[str, Any] = {
            "pmid": int(pmid),
            "year": rec.pub_year,
            "title": rec.title,
            "journal": rec.journal_iso,
            "doi": rec.doi,
            "citation_count": len(cited_by),
            "cited_by": cited_by if cited_by or not self.null_when_uncited else None,
            "references": [int(p) for p in self.literature.world.references(pmid)],
            "provisional": "No",
            "is_research_article": "Yes",
            "last_modified": "11/14/2026, 03:12:55",
        }
        return {key: full[key] for key in fields if key in full} if fields else full

    def route(self, method: str, path: str, params: Mapping[str, list[str]], headers: Mapping[str, str]) -> Answer:
        fields = [f for f in one(params, "fl").split(",") if f]
        if path == "api/pubs":
            pmids = [p.strip() for p in one(params, "pmids").split(",") if p.strip()]
            if len(pmids) > MAX_PMIDS:
                return Answer(400, {"error": f"Too many PMIDs: at most {MAX_PMIDS} per request"})
            if not all(p.isdigit() for p in pmids):
                return Answer(400, {"error": "pmids must be a comma-separated list of PubMed IDs"})
            data = [r for r in (self._record(p, fields) for p in pmids) if r is not None]
            meta = {"pmids": ",".join(pmids), "fl": ",".join(fields), "limit": len(pmids)}
            return Answer(200, {"meta": meta, "links": {}, "data": data})
        if path.startswith("api/pubs/"):
            found = self._record(path.rsplit("/", 1)[1], fields)
            if found is None:
                return Answer(404, {"error": "Not found"})
            return Answer(200, found)
        raise NotFound(path)

    def empty_answer(self, method: str, path: str, params: Mapping[str, list[str]]) -> Answer:
        """iCite as if its citation data were gone: the papers are there, ``cited_by`` is empty."""
        fields = [f for f in one(params, "fl").split(",") if f]
        pmids = [p for p in one(params, "pmids").split(",") if p]
        data = []
        for pmid in pmids:
            found = self._record(pmid, fields)
            if found is not None:
                found["cited_by"] = []
                data.append(found)
        return Answer(200, {"meta": {}, "links": {}, "data": data})
