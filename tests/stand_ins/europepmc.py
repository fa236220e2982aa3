"""A stand-in for the Europe PMC REST API (``…/europepmc/webservices/rest/``), answering from a ``Literature``.

- ``MED/{pmid}/citations?format=json&page=N&pageSize=M``: the works Europe PMC lists as citing a PubMed
  record, ``page`` from 1 and ``pageSize`` up to 1,000, newest first. PubMed papers are listed as
  ``{"id": pmid, "source": "MED"}``, preprints as ``{"id": "PPR…", "source": "PPR"}``, articles only PMC
  holds as ``{"id": "PMC…", "source": "PMC"}``, patents and theses under their own sources. Nobody citing
  it: HTTP 404 with Europe PMC's own JSON body (``version``, ``hitCount: 0``, ``errCode``, ``errMsg``, as
  the shared notes describe it; ``none_body``) — which is zero citations, not a failure. Any path this
  stand-in does not serve gets a plain HTML 404, as a wrong base URL does, and an injected status answers
  a generic JSON error unless the test gives Europe PMC's own body.
- ``search?query=…&resultType=core&format=json&pageSize=…&cursorMark=…``: whole records. The query
  understood is the one il2watch sends, ``(EXT_ID:A OR EXT_ID:B) AND SRC:PPR`` (or ``SRC:PMC``,
  ``SRC:MED``); paging by ``cursorMark`` from ``*``; the last page's ``nextCursorMark`` repeats the cursor
  it was asked with (Europe PMC echoes it rather than sending null).
- A withdrawn preprint carries "retracted publication" among its types and a "Retraction in" entry in its
  ``commentCorrectionList``; a preprint and the journal article it became are linked there ("Preprint of"
  on the preprint, "Preprint in" on the article).
- Only ``format=json`` is served here; anything else gets HTTP 400.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tests.stand_ins.json_api import Answer, JsonStandIn, NotFound, one
from tests.stand_ins.literature import Literature, Work
from tests.stand_ins.pubmed_world import Record, plain_text

VERSION = "6.9"
MAX_PAGE = 1000


def _author_string(names: list[str]) -> str:
    return ", ".join(names) + ("." if names else "")


class EuropePmcStandIn(JsonStandIn):
    name = "europepmc"
    root = "/europepmc/webservices/rest/"
    rate_limit = 10

    def __init__(self, literature: Literature, **options: Any):
        self.literature = literature
        self.reshaped: dict[str, dict[str, Any]] = {}  # id -> fields served in place of its own (an odd record)
        super().__init__(**options)

    # -- citations

    def _entry(self, key: str) -> dict[str, Any]:
        if key.startswith("pmid:"):
            rec = self.literature.record(key[5:])
            if rec is None:
                return {"id": key[5:], "source": "MED", "title": "", "pubYear": 0}
            return {
                "id": rec.pmid,
                "source": "MED",
                "citationType": "research-article; journal article",
                "title": plain_text(rec.title),
                "authorString": _author_string([a.short_name for a in rec.authors]),
                "journalAbbreviation": rec.journal_iso,
                "pubYear": rec.pub_year,
                "volume": rec.volume,
                "issue": rec.issue,
                "pageInfo": rec.pages,
                "citedByCount": 0,
            }
        work = self.literature.work(key)
        if work.pmid:  # Europe PMC ingests PubMed: a preprint PubMed indexed is listed under its PMID
            return self._entry(f"pmid:{work.pmid}")
        source = work.europepmc_source
        return {
            "id": work.ppr if source == "PPR" else (work.europepmc_id or work.key),
            "source": source,
            "citationType": "preprint" if source == "PPR" else source.lower(),
            "title": plain_text(work.title),
            "authorString": _author_string([f"{last} {first[:1]}" for first, last in work.authors]),
            "pubYear": work.published.year,
            "citedByCount": 0,
        }

    def _citations(self, pmid: str, params: Mapping[str, list[str]]) -> Answer:
        try:
            page = int(one(params, "page", "1"))
            size = int(one(params, "pageSize", "25"))
        except ValueError:
            return Answer(400, {"version": VERSION, "errCode": 400, "errMsg": "page and pageSize must be numbers"})
        if page < 1 or not 1 <= size <= MAX_PAGE:
            return Answer(
                400,
                {
                    "version": VERSION,
                    "errCode": 400,
                    "errMsg": f"page starts at 1; pageSize is between 1 and {MAX_PAGE}",
                },
            )
        keys = self.literature.citing(pmid, "europepmc")
        request = {"id": pmid, "source": "MED", "offSet": (page - 1) * size, "pageSize": size, "sort": ""}
        if not keys:
            return self._none(pmid, request)
        chosen = keys[(page - 1) * size : page * size]
        return Answer(
            200,
            {
                "version": VERSION,
                "hitCount": len(keys),
                "request": request,
                "citationList": {"citation": [self._entry(k) for k in chosen]},
            },
        )

    @staticmethod
    def none_body(pmid: str, request: dict[str, Any] | None = None) -> dict[str, Any]:
        """Europe PMC's own body with its 404 for a paper nobody cites."""
        return {
            "version": VERSION,
            "hitCount": 0,
            "request": request or {"id": pmid, "source": "MED"},
            "errCode": 404,
            "errMsg": f"No citations found for the given ID: MED/{pmid}",
        }

    def _none(self, pmid: str, request: dict[str, Any]) -> Answer:
        return Answer(404, self.none_body(pmid, request))

    # -- search with resultType=core

    def _core(self, work: Work) -> dict[str, Any]:
        names = [
            {"fullName": f"{last} {first[:1]}", "firstName": first, "lastName": last, "initials": first[:1]}
            for first, last in work.authors
        ]
        result: dict[str, Any] = {
            "id": work.ppr or work.europepmc_id or work.key,
            "source": work.europepmc_source,
            "doi": work.doi_in("europepmc"),
            "title": work.title,
            "authorString": _author_string([n["fullName"] for n in names]),
            "authorList": {"author": names},
            "abstractText": work.abstract,
            "pubYear": str(work.published.year),
            "firstPublicationDate": work.published.isoformat(),
            "firstIndexDate": work.first_indexed.isoformat(),
            "bookOrReportDetails": {"publisher": work.server},
            "pubTypeList": {"pubType": ["Preprint"] if work.europepmc_source == "PPR" else [work.kind]},
        }
        if work.europepmc_source == "PMC":  # an article only PMC holds: a journal, no publisher block
            del result["bookOrReportDetails"]
            result["pmcid"] = work.europepmc_id
            result["journalInfo"] = {"journal": {"title": work.server, "isoabbreviation": work.server}}
            result["pubTypeList"] = {"pubType": ["research-article", "Journal Article"]}
        if work.withdrawn:
            result["pubTypeList"]["pubType"].append("retracted publication")
            result["commentCorrectionList"] = {
                "commentCorrection": [
                    {
                        "id": work.ppr,
                        "source": "PPR",
                        "type": "Retraction in",
                        "note": "Withdrawn by the authors",
                        "orderIn": 1,
                    }
                ]
            }
        if work.journal_version:  # Europe PMC links a preprint to the journal article it became
            links = result.setdefault("commentCorrectionList", {"commentCorrection": []})["commentCorrection"]
            links.append(
                {
                    "id": work.journal_version,
                    "source": "MED",
                    "type": "Preprint of",
                    "note": "Link created based on a title-first author match",
                    "orderIn": 10001,
                }
            )
        return result

    def _core_of_record(self, rec: Record) -> dict[str, Any]:
        names = [
            {"fullName": a.short_name, "firstName": a.fore, "lastName": a.last, "initials": a.initials}
            for a in rec.authors
        ]
        result: dict[str, Any] = {
            "id": rec.pmid,
            "source": "MED",
            "pmid": rec.pmid,
            "doi": rec.doi,
            "title": plain_text(rec.title),
            "authorString": _author_string([n["fullName"] for n in names]),
            "authorList": {"author": names},
            "abstractText": " ".join(text for _, _, text in rec.abstract),
            "pubYear": str(rec.pub_year),
            "firstIndexDate": rec.entry_date.isoformat(),
            "journalInfo": {"journal": {"title": rec.journal}},
            "pubTypeList": {"pubType": list(rec.pub_types)},
        }
        preprint = self.literature.preprint_of(rec.pmid)
        if preprint is not None and preprint.ppr:  # …and the journal article to its preprint
            entry = {"id": preprint.ppr, "source": "PPR", "type": "Preprint in", "orderIn": 10002}
            result["commentCorrectionList"] = {"commentCorrection": [{**entry, "note": "CrossRef Pre-print loader"}]}
        return result

    def _search(self, params: Mapping[str, list[str]]) -> Answer:
        query = one(params, "query")
        wanted = re.findall(r"EXT_ID:\"?([A-Za-z0-9.]+)\"?", query)
        sources = set(re.findall(r"SRC:\"?([A-Za-z]{3})\"?", query)) or {"PPR", "MED"}
        if one(params, "resultType", "lite") != "core":
            return Answer(400, {"version": VERSION, "errCode": 400, "errMsg": "this stand-in serves resultType=core"})
        results: list[dict[str, Any]] = []
        for ext_id in wanted:
            if "PPR" in sources and ext_id.upper().startswith("PPR"):
                work = self.literature.by_ppr(ext_id.upper())
                if work is not None:
                    results.append({**self._core(work), **self.reshaped.get(ext_id.upper(), {})})
            elif "PMC" in sources and ext_id.upper().startswith("PMC"):
                work = self.literature.by_europepmc_id("PMC", ext_id.upper())
                if work is not None:
                    results.append(self._core(work))
            elif "MED" in sources and ext_id.isdigit():
                rec = self.literature.record(ext_id)
                if rec is not None:
                    results.append(self._core_of_record(rec))
        try:
            size = int(one(params, "pageSize", "25"))
        except ValueError:
            size = 0
        if not 1 <= size <= MAX_PAGE:
            return Answer(400, {"version": VERSION, "errCode": 400, "errMsg": f"pageSize is 1 to {MAX_PAGE}"})
        cursor = one(params, "cursorMark", "*")
        start = 0 if cursor == "*" else int(cursor[3:]) if cursor.startswith("AoE") and cursor[3:].isdigit() else -1
        if start < 0:
            return Answer(400, {"version": VERSION, "errCode": 400, "errMsg": f"invalid cursorMark {cursor}"})
        page = results[start : start + size]
        following = f"AoE{start + size}" if start + size < len(results) else cursor
        return Answer(
            200,
            {
                "version": VERSION,
                "hitCount": len(results),
                "nextCursorMark": following,
                "request": {"queryString": query, "resultType": "core", "cursorMark": cursor, "pageSize": size},
                "resultList": {"result": page},
            },
        )

    def route(self, method: str, path: str, params: Mapping[str, list[str]], headers: Mapping[str, str]) -> Answer:
        if one(params, "format", "xml") != "json":
            return Answer(400, {"version": VERSION, "errCode": 400, "errMsg": "this stand-in serves format=json"})
        match = re.fullmatch(r"MED/(\d+)/citations(?:/\d+/\d+/json)?", path)
        if match:
            return self._citations(match.group(1), params)
        if path == "search":
            return self._search(params)
        raise NotFound(path)

    def empty_answer(self, method: str, path: str, params: Mapping[str, list[str]]) -> Answer:
        match = re.fullmatch(r"MED/(\d+)/citations", path)
        if match:
            return self._none(match.group(1), {"id": match.group(1), "source": "MED"})
        return Answer(200, {"version": VERSION, "hitCount": 0, "resultList": {"result": []}})
