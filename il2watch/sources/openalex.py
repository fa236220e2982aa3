"""OpenAlex: works citing the watched papers, by DOI as much as by PMID. Only with ``OPENALEX_API_KEY``.

The watched paper's OpenAlex id is resolved once (``works/pmid:…``, a free singleton call) and kept;
then ``works?filter=cites:W…`` lists the citing works with cursor paging, 100 a page. Works with a PMID
are fetched from PubMed like any paper; works without one are stored from OpenAlex's own record (the
abstract rebuilt from ``abstract_inverted_index``). OpenAlex counts list calls against a daily budget,
so il2watch asks once a day by default (``IL2WATCH_OPENALEX_REFRESH``) and sends ``mailto``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from il2watch.identity import Ids, doi_of, openalex_of, pmcid_of, pmid_of
from il2watch.model import Author, Paper, Section
from il2watch.sources.base import (
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

NAME, LABEL = "openalex", "OpenAlex"
RATE = 10.0
PER_PAGE = 100  # OpenAlex's largest page
MAX_PAGES = 200  # 20,000 citing works of one paper: a guard against a server that never ends
SELECT = (
    "id,doi,ids,title,publication_date,created_date,type,primary_location,authorships,"
    "abstract_inverted_index,is_retracted"
)
MAX_ABSTRACT_WORDS = 5000


def memory_key(pmid: str) -> str:
    return f"openalex:pmid:{pmid}"


class OpenAlex:
    name, label = NAME, LABEL

    def __init__(self, http: Http, *, api_key: str, mailto: str = ""):
        if not api_key:
            raise SourceError("OpenAlex requires an API key: set OPENALEX_API_KEY (free at openalex.org)")
        self.http = http
        self._auth = [("api_key", api_key)] + ([("mailto", mailto)] if mailto else [])

    def find(self, request: Request) -> Finding:
        finding = Finding(NAME)
        for watch in request.watches:
            if not watch.pmid:
                continue
            work_id = request.memory.get(memory_key(watch.pmid)) or self.resolve(watch.pmid)
            if not work_id:
                finding.failed[watch.id] = f"OpenAlex does not know PMID {watch.pmid} yet"
                continue
            finding.memory[memory_key(watch.pmid)] = work_id
            for work in self.citing(work_id):
                found = found_from_work(work, watch.id)
                if found is not None and found.ids.pmid != watch.pmid:
                    finding.found.append(found)
            finding.answered.append(watch.id)
        return finding

    def probe(self, pmid: str) -> str:
        """One free singleton request, for ``doctor``: the key is accepted and the watched paper is known."""
        work_id = self.resolve(pmid)
        if not work_id:
            raise SourceError(f"OpenAlex accepts the key but does not know PMID {pmid} yet")
        return f"OpenAlex accepts OPENALEX_API_KEY and knows PMID {pmid} as {work_id}"

    def resolve(self, pmid: str) -> str:
        """The OpenAlex id of PubMed record ``pmid``; "" when OpenAlex does not know it."""
        answer = self.http.get(f"works/pmid:{pmid}", [("select", "id"), *self._auth], accept=(404,))
        if answer.status == 404:
            return ""
        data = read_json(answer, f"OpenAlex works/pmid:{pmid}")
        work_id = openalex_of(data.get("id")) if isinstance(data, dict) else ""
        if not work_id:
            raise SourceError(f"OpenAlex works/pmid:{pmid}: the answer has no OpenAlex id")
        return work_id

    def citing(self, work_id: str) -> list[dict[str, Any]]:
        """Every work OpenAlex lists as citing ``work_id``, through every cursor page."""
        works: list[dict[str, Any]] = []
        cursor = "*"
        for _ in range(MAX_PAGES):
            answer = self.http.get(
                "works",
                [
                    ("filter", f"cites:{work_id}"),
                    ("per_page", str(PER_PAGE)),
                    ("cursor", cursor),
                    ("select", SELECT),
                    *self._auth,
                ],
            )
            data = read_json(answer, f"OpenAlex works citing {work_id}")
            if not isinstance(data, dict) or not isinstance(data.get("results"), list):
                raise SourceError(f"OpenAlex works citing {work_id}: the answer has no `results` list")
            works += [w for w in data["results"] if isinstance(w, dict)]
            following = (data.get("meta") or {}).get("next_cursor")
            if not data["results"] or not following:
                return works
            cursor = str(following)
        raise SourceError(f"OpenAlex kept sending pages of works citing {work_id} past {MAX_PAGES}; stopped there")

    def records(self, found: Sequence[Found]) -> list[SourceRecord]:
        return []  # OpenAlex gives whole records inline with the citing list


def work_ids(work: Mapping[str, Any]) -> Ids:
    ids = work.get("ids") if isinstance(work.get("ids"), dict) else {}
    assert isinstance(ids, dict)
    return Ids(
        pmid=pmid_of(ids.get("pmid")),
        doi=doi_of(work.get("doi") or ids.get("doi")),
        pmcid=pmcid_of(ids.get("pmcid")),
        openalex=openalex_of(work.get("id") or ids.get("openalex")),
    )


def found_from_work(work: Mapping[str, Any], watch_id: str) -> Found | None:
    ids = work_ids(work)
    if not ids:
        return None
    kind = str(work.get("type") or "")
    record = None if ids.pmid else paper_from_work(work)
    if not ids.pmid and record is None:
        return None
    return Found(
        ids,
        watch_id,
        "cites",
        NAME,
        indexed=iso_date(work.get("created_date")),
        record=record,
        category="preprint" if kind == "preprint" else kind,
    )


def abstract_from_index(index: object) -> str:
    """The abstract's text from OpenAlex's inverted index (word -> positions); "" when absent or odd."""
    if not isinstance(index, dict):
        return ""
    placed: dict[int, str] = {}
    for word, positions in index.items():
        if not isinstance(positions, list):
            return ""
        for position in positions:
            if isinstance(position, int) and 0 <= position < MAX_ABSTRACT_WORDS:
                placed[position] = str(word)
    return " ".join(placed[i] for i in sorted(placed))


def _author(name: str) -> Author:
    """'Maria del Carmen Ruiz' -> last name 'Ruiz', fore name the rest (OpenAlex gives display names)."""
    parts = name.split()
    if len(parts) == 1:
        return Author(last_name=parts[0])
    fore = " ".join(parts[:-1])
    initials = "".join(p[0] for p in parts[:-1] if p[:1].isalpha()).upper()
    return Author(last_name=parts[-1], fore_name=fore, initials=initials)


def paper_from_work(work: Mapping[str, Any]) -> Paper | None:
    title = marked_from_html(work.get("title") or work.get("display_name"))
    if not title:
        return None
    names = []
    for authorship in work.get("authorships") or []:
        if isinstance(authorship, dict):
            author = authorship.get("author") if isinstance(authorship.get("author"), dict) else {}
            assert isinstance(author, dict)
            name = str(author.get("display_name") or authorship.get("raw_author_name") or "").strip()
            if name:
                names.append(_author(name))
    location = work.get("primary_location") if isinstance(work.get("primary_location"), dict) else {}
    assert isinstance(location, dict)
    venue_data = location.get("source") if isinstance(location.get("source"), dict) else {}
    assert isinstance(venue_data, dict)
    venue = str(venue_data.get("display_name") or "")
    published = iso_date(work.get("publication_date"))
    kind = str(work.get("type") or "")
    types = ["Preprint"] if kind == "preprint" else ["Review"] if kind == "review" else ["Journal Article"]
    if work.get("is_retracted") is True:
        types.append("Retracted Publication")
    abstract = marked_from_html(abstract_from_index(work.get("abstract_inverted_index")))
    ids = work_ids(work)
    return Paper(
        pmid="",
        title=title,
        abstract=(Section(text=abstract),) if abstract else (),
        authors=tuple(names),
        journal=venue,
        journal_iso=venue,
        pub_date=printed_date(published),
        pub_year=int(published[:4]) if published else None,
        entry_date=iso_date(work.get("created_date")) or published,
        doi=ids.doi,
        pmcid=ids.pmcid,
        pub_types=tuple(types),
    )
