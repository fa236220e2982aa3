"""A stand-in for the OpenAlex API (``https://api.openalex.org/``), answering from a ``Literature``.

- An API key is required (``api_key=``, as OpenAlex has required since February 2026): a request
  without one of ``keys`` gets HTTP 401 with OpenAlex's JSON error. The rate limit counts per key.
- ``works/pmid:{pmid}``, ``works/doi:{doi}`` and ``works/W…``: one work, 404 with OpenAlex's JSON error
  (``{"error": …, "message": …}``, as the API's error handler writes it) when unknown; a path it does not
  serve gets an HTML 404, as a wrong base URL does. ``Literature.merge_openalex`` moves a work to a new id.
- ``works?filter=cites:W…&per_page=N&cursor=…&select=…``: the works citing W, ``per_page`` 1–100 (more is
  HTTP 400, as OpenAlex answers), cursor paging from ``*``. As OpenAlex documents it, paging ends with a
  page whose ``results`` are empty and whose ``next_cursor`` is null (``repeat_cursor`` breaks that: each
  page after the first names its own cursor again). ``select`` keeps only the fields named.
- ``works?filter=doi:a|b|…&select=…``: the works with any of those DOIs (at most 100 values, as OpenAlex
  allows; more is HTTP 400), on one page.
- A work's ``doi`` is a DOI URL in lower case, ``ids.pmid`` a PubMed URL when it has one, its abstract an
  ``abstract_inverted_index`` (word → positions), ``is_retracted`` a boolean.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from tests.stand_ins.json_api import Answer, JsonStandIn, NotFound, one
from tests.stand_ins.literature import Literature, words_of
from tests.stand_ins.pubmed_world import plain_text

MAX_PER_PAGE = 100
MAX_OR_VALUES = 100  # values OR-ed with | in one filter
DEFAULT_KEY = "openalex-stand-in-key"


def inverted_index(text: str) -> dict[str, list[int]] | None:
    words = words_of(text)
    if not words:
        return None
    index: dict[str, list[int]] = {}
    for position, word in enumerate(words):
        index.setdefault(word, []).append(position)
    return index


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str) -> int | None:
    if cursor == "*":
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except ValueError:
        return None
    match = re.fullmatch(r"offset:(\d+)", text)
    return int(match.group(1)) if match else None


class OpenAlexStandIn(JsonStandIn):
    name = "openalex"
    root = "/"
    rate_limit = 10

    def __init__(self, literature: Literature, *, keys: tuple[str, ...] = (DEFAULT_KEY,), **options: Any):
        self.literature = literature
        self.keys = set(keys)
        self.repeat_cursor = False  # a broken server: every page after the first names its own cursor again
        super().__init__(**options)

    def client_key(self, params: Mapping[str, list[str]], address: str) -> str:
        return one(params, "api_key") or address

    def error_body(self, status: int) -> Any:
        messages = {429: "Rate limit exceeded", 401: "API key required", 503: "Service unavailable"}
        return {"error": messages.get(status, "Error"), "message": messages.get(status, "Error")}

    # -- works as OpenAlex writes them

    def _work(self, key: str) -> dict[str, Any]:
        ids = self.literature.ids_of(key)
        openalex = ids["openalex"]
        rec = self.literature.record(ids["pmid"]) if ids["pmid"] else None
        work = None if key.startswith("pmid:") else self.literature.work(key)
        doi = (work.doi_in("openalex") if work else (rec.doi if rec else "")) or ""
        doi_url = (
            doi if doi.lower().startswith("https://doi.org/") else (f"https://doi.org/{doi.lower()}" if doi else None)
        )
        if rec is not None and work is None:
            title = plain_text(rec.title)
            abstract = " ".join(text for _, _, text in rec.abstract)
            names = [f"{a.fore} {a.last}".strip() or a.collective for a in rec.authors]
            published, created = rec.pub_date.isoformat(), rec.entry_date.isoformat()
            kind = "review" if "Review" in rec.pub_types else "article"
            venue, venue_type = rec.journal, "journal"
            retracted = "Retracted Publication" in rec.pub_types
        else:
            assert work is not None
            title, abstract = plain_text(work.title), work.abstract
            names = [f"{first} {last}".strip() for first, last in work.authors]
            published, created = work.published.isoformat(), work.created.isoformat()
            kind, venue = work.kind, work.server
            venue_type = "repository" if work.kind == "preprint" else "journal"
            retracted = work.retracted
        id_block: dict[str, Any] = {"openalex": f"https://openalex.org/{openalex}"}
        if doi_url:
            id_block["doi"] = doi_url
        if ids["pmid"]:
            id_block["pmid"] = f"https://pubmed.ncbi.nlm.nih.gov/{ids['pmid']}"
        if ids["pmcid"]:
            id_block["pmcid"] = f"https://www.ncbi.nlm.nih.gov/pmc/articles/{ids['pmcid']}"
        last = len(names) - 1
        return {
            "id": f"https://openalex.org/{openalex}",
            "doi": doi_url,
            "ids": id_block,
            "title": title,
            "display_name": title,
            "publication_date": published,
            "publication_year": int(published[:4]),
            "created_date": created,
            "type": kind,
            "is_retracted": retracted,
            "primary_location": {"source": {"display_name": venue, "type": venue_type} if venue else None},
            "authorships": [
                {
                    "author_position": "first" if i == 0 else "last" if i == last else "middle",
                    "author": {"display_name": name},
                    "raw_author_name": name,
                }
                for i, name in enumerate(names)
            ],
            "abstract_inverted_index": inverted_index(abstract),
            "cited_by_count": 0,
        }

    @staticmethod
    def _select(work: dict[str, Any], params: Mapping[str, list[str]]) -> dict[str, Any]:
        fields = [f.strip() for f in one(params, "select").split(",") if f.strip()]
        return {k: v for k, v in work.items() if k in fields} if fields else work

    def _key_of(self, ref: str) -> str | None:
        if ref.startswith("pmid:"):
            pmid = ref[5:]
            return f"pmid:{pmid}" if self.literature.record(pmid) is not None else None
        if ref.startswith("doi:"):
            doi = ref[4:].lower().removeprefix("https://doi.org/")
            for pmid in self.literature.world.pmids():
                rec = self.literature.record(pmid)
                if rec is not None and rec.doi.lower() == doi:
                    return f"pmid:{pmid}"
            work = next((w for w in self.literature.works() if w.doi.lower() == doi), None)
            return (f"pmid:{work.pmid}" if work.pmid else work.key) if work else None
        if re.fullmatch(r"W\d+", ref):
            return self.literature.key_of_openalex(ref)
        return None

    def route(self, method: str, path: str, params: Mapping[str, list[str]], headers: Mapping[str, str]) -> Answer:
        if one(params, "api_key") not in self.keys:
            return Answer(401, {"error": "Unauthorized", "message": "A valid API key is required: add api_key="})
        if path.startswith("works/"):
            key = self._key_of(path[len("works/") :])
            if key is None:
                return Answer(404, {"error": "Not found", "message": f"{path} does not exist"})
            return Answer(200, self._select(self._work(key), params))
        if path == "works":
            return self._list(params)
        raise NotFound(path)

    def _list(self, params: Mapping[str, list[str]]) -> Answer:
        if one(params, "filter").startswith("doi:"):
            return self._by_doi(params)
        match = re.fullmatch(r"cites:(W\d+)", one(params, "filter"))
        if not match:
            return Answer(400, {"error": "Invalid query parameters", "message": "this stand-in serves filter=cites:W…"})
        try:
            per_page = int(one(params, "per_page", one(params, "per-page", "25")))
        except ValueError:
            per_page = 0
        if not 1 <= per_page <= MAX_PER_PAGE:
            return Answer(
                400, {"error": "Invalid query parameters", "message": f"per_page must be between 1 and {MAX_PER_PAGE}"}
            )
        cited = self.literature.key_of_openalex(match.group(1))
        keys = self.literature.citing(cited[5:], "openalex") if cited and cited.startswith("pmid:") else []
        offset = _offset(one(params, "cursor", "*"))
        if offset is None:
            return Answer(400, {"error": "Invalid query parameters", "message": "cursor is not valid"})
        page = keys[offset : offset + per_page]
        following = _cursor(offset + per_page) if page else None
        if page and self.repeat_cursor and offset:
            following = one(params, "cursor")
        meta = {
            "count": len(keys),
            "db_response_time_ms": 3,
            "page": None,
            "per_page": per_page,
            "next_cursor": following,
            "groups_count": None,
        }
        return Answer(
            200, {"meta": meta, "results": [self._select(self._work(k), params) for k in page], "group_by": []}
        )

    def _by_doi(self, params: Mapping[str, list[str]]) -> Answer:
        """``filter=doi:a|b|…``: the works with any of these DOIs (bare or as DOI URLs), one page."""
        dois = [d.strip() for d in one(params, "filter")[len("doi:") :].split("|") if d.strip()]
        if len(dois) > MAX_OR_VALUES:
            message = f"Maximum number of values exceeded for doi. Decrease values to {MAX_OR_VALUES} or below."
            return Answer(400, {"error": "Invalid query parameters", "message": message})
        keys = list(dict.fromkeys(k for k in (self._key_of(f"doi:{d}") for d in dois) if k is not None))
        meta = {"count": len(keys), "db_response_time_ms": 2, "page": 1, "per_page": MAX_PER_PAGE, "groups_count": None}
        return Answer(
            200, {"meta": meta, "results": [self._select(self._work(k), params) for k in keys], "group_by": []}
        )

    def empty_answer(self, method: str, path: str, params: Mapping[str, list[str]]) -> Answer:
        if path.startswith("works/"):
            return Answer(404, {"error": "Not found", "message": f"{path} does not exist"})
        meta = {"count": 0, "page": None, "per_page": 100, "next_cursor": None}
        return Answer(200, {"meta": meta, "results": [], "group_by": []})
