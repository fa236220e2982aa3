"""OpenAlex: works citing the watched papers, by DOI as much as by PMID. Only with ``OPENALEX_API_KEY``.

The watched paper's OpenAlex id is resolved once (``works/pmid:…``, a free singleton call) and kept;
then ``works?filter=cites:W…`` lists the citing works with cursor paging, 100 a page. Works with a PMID
are fetched from PubMed like any paper; works without one are stored from OpenAlex's own record (the
abstract rebuilt from ``abstract_inverted_index``). OpenAlex counts list calls against a daily budget,
so il2watch asks once a day by default (``IL2WATCH_OPENALEX_REFRESH``), sends ``mailto``, stops paging
at a cursor it was already given or after ``max_pages``, and resolves a kept id again (once a poll) when
its list comes back empty although OpenAlex listed citing works before: OpenAlex may have merged the
work into another id. Only OpenAlex's own JSON 404 means "no such work"; an HTML 404 is a wrong URL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from il2watch.identity import Ids, doi_of, openalex_of, pmcid_of, pmid_of
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
    iso_date,
    json_host,
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
DOI_BATCH = 50  # DOIs OR-ed in one ``filter=doi:a|b|…`` (OpenAlex takes up to 100 values in one filter)
FOLLOWUP_SELECT = "id,doi,type,is_retracted"  # all the follow-up check reads of a work


def memory_key(pmid: str) -> str:
    return f"openalex:pmid:{pmid}"


def build(settings: Any, eutils: Any) -> OpenAlex:
    http = json_host(settings, NAME, "openalex_url", RATE)
    return OpenAlex(http, api_key=settings.openalex_api_key, mailto=settings.ncbi_email)


class OpenAlex:
    name, label = NAME, LABEL

    def __init__(
        self, http: Http, *, api_key: str, mailto: str = "", per_page: int = PER_PAGE, max_pages: int = MAX_PAGES
    ):
        if not api_key:
            raise SourceError("OpenAlex requires an API key: set OPENALEX_API_KEY (free at openalex.org)")
        self.http = http
        self.per_page, self.max_pages = per_page, max_pages
        self._auth = [("api_key", api_key)] + ([("mailto", mailto)] if mailto else [])

    def find(self, request: Request) -> Finding:
        finding = Finding(NAME)
        odd = Oddities(LABEL)
        resolved_again = False  # at most once a poll
        for watch in request.watches:
            if not watch.pmid:
                continue
            try:
                kept = request.memory.get(memory_key(watch.pmid), "")
                work_id = kept or self.resolve(watch.pmid)
                if not work_id:
                    finding.failed[watch.id] = f"OpenAlex does not know PMID {watch.pmid} yet"
                    continue
                works = self.citing(work_id, watch.id, finding)
                if kept and not works and request.known_cites.get((NAME, watch.id)) and not resolved_again:
                    resolved_again = True
                    current = self.resolve(watch.pmid)
                    if current and current != work_id:  # merged into another work: list that one
                        work_id = current
                        works = self.citing(work_id, watch.id, finding)
            except SourceError as error:
                finding.failed[watch.id] = str(error)
                continue
            finding.memory[memory_key(watch.pmid)] = work_id
            for work in works:
                found = found_from_work(work, watch.id, odd)
                if found is not None and found.ids.pmid != watch.pmid:
                    finding.found.append(found)
            finding.answered.append(watch.id)
        finding.warnings += odd.warnings()
        return finding

    def probe(self, pmid: str) -> str:
        """One free singleton request, for ``doctor``: the key is accepted and the watched paper is known."""
        work_id = self.resolve(pmid)
        if not work_id:
            raise SourceError(f"OpenAlex accepts the key but does not know PMID {pmid} yet")
        return f"OpenAlex accepts OPENALEX_API_KEY and knows PMID {pmid} as {work_id}"

    def resolve(self, pmid: str) -> str:
        """The OpenAlex id of PubMed record ``pmid``; "" when OpenAlex says it has no such work."""
        answer = self.http.get(f"works/pmid:{pmid}", [("select", "id"), *self._auth], accept=(404,))
        if answer.status == 404:
            if not is_own_not_found(answer):
                raise SourceError(
                    f"OpenAlex answered 404 for works/pmid:{pmid} without its own JSON error: "
                    f"is IL2WATCH_OPENALEX_URL right?"
                )
            return ""
        data = Fields(read_json(answer, f"OpenAlex works/pmid:{pmid}"))
        work_id = openalex_of(data.text("id"))
        if not work_id:
            raise SourceError(f"OpenAlex works/pmid:{pmid}: the answer has no OpenAlex id")
        return work_id

    def citing(self, work_id: str, watch_id: str = "", finding: Finding | None = None) -> list[object]:
        """Every work OpenAlex lists as citing ``work_id``, through every cursor page, as they came. A
        cursor given twice ends the paging (with a warning in ``finding``): the server is going round."""
        works: list[object] = []
        cursor = "*"
        given: set[str] = {cursor}
        what = f"OpenAlex works citing {work_id}"
        for _ in range(self.max_pages):
            answer = self.http.get(
                "works",
                [
                    ("filter", f"cites:{work_id}"),
                    ("per_page", str(self.per_page)),
                    ("cursor", cursor),
                    ("select", SELECT),
                    *self._auth,
                ],
            )
            data = read_json(answer, what)
            results = data.get("results") if isinstance(data, dict) else None
            if not isinstance(results, list):
                raise SourceError(f"{what}: the answer has no `results` list")
            works += results
            following = Fields(data).obj("meta").text("next_cursor")
            if not results or not following:
                return works
            if following in given:
                if finding is not None:
                    finding.warnings.append(
                        (watch_id, f"{what}: OpenAlex sent a paging cursor again, stopped after {len(given)} pages")
                    )
                return works
            given.add(following)
            cursor = following
        raise SourceError(f"OpenAlex kept sending pages of works citing {work_id} past {self.max_pages}; stopped there")

    def works_by_doi(self, dois: Sequence[str]) -> list[dict[str, Any]]:
        """OpenAlex's works with these DOIs, ``DOI_BATCH`` to a list request, with only what the follow-up
        check reads (``is_retracted``, ``type``, ``doi``): one request for fifty posted papers. A DOI the
        filter syntax cannot carry (a comma or a pipe in it) is not asked about."""
        wanted = [doi for doi in dict.fromkeys(doi_of(d) for d in dois) if doi and not set(doi) & {",", "|"}]
        works: list[dict[str, Any]] = []
        for part in batches(wanted, DOI_BATCH):
            what = f"OpenAlex works by DOI ({len(part)} asked)"
            answer = self.http.get(
                "works",
                [
                    ("filter", "doi:" + "|".join(part)),
                    ("per_page", str(PER_PAGE)),
                    ("select", FOLLOWUP_SELECT),
                    *self._auth,
                ],
            )
            data = read_json(answer, what)
            results = data.get("results") if isinstance(data, dict) else None
            if not isinstance(results, list):
                raise SourceError(f"{what}: the answer has no `results` list")
            works += [work for work in results if isinstance(work, dict)]
        return works

    def records(self, found: Sequence[Found]) -> Given:
        return Given()  # OpenAlex gives whole records inline with the citing list


def is_own_not_found(answer: Answer) -> bool:
    """OpenAlex's own JSON 404 for a work it does not have (an object with its ``error``), not an HTML
    page from a proxy or another host."""
    try:
        data = json.loads(answer.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and isinstance(data.get("error"), str)


def work_ids(work: Fields) -> Ids:
    ids = work.obj("ids")
    return Ids(
        pmid=pmid_of(ids.text("pmid")),
        doi=doi_of(work.text("doi") or ids.text("doi")),
        pmcid=pmcid_of(ids.text("pmcid")),
        openalex=openalex_of(work.text("id") or ids.text("openalex")),
    )


def found_from_work(work: object, watch_id: str, odd: Oddities) -> Found | None:
    """A listed work as a Found: by PMID when it has one, else with its own record. Left out (noted in
    ``odd``) when it has no id that can be read, or neither a PMID nor a title."""
    fields = Fields(work)
    ids = work_ids(fields)
    named = ids.openalex or fields.text("id") or "(no id)"
    if not ids:
        odd.add(watch_id, named, "no id that can be read (left out)")
        return None
    kind = fields.text("type")
    record = None if ids.pmid else paper_from_work(fields)
    if not ids.pmid and record is None:
        odd.add(watch_id, named, "neither a PMID nor a title (left out)")
        return None
    if record is not None:
        odd.read_in_part(watch_id, named, fields)
    return Found(
        ids,
        watch_id,
        "cites",
        NAME,
        indexed=iso_date(fields.text("created_date")),
        record=record,
        category=kind,
    )


def abstract_from_index(work: Fields) -> str:
    """The abstract's text from OpenAlex's inverted index (word -> positions); "" when absent or odd."""
    index = work.obj("abstract_inverted_index")
    placed: dict[int, str] = {}
    for word, positions in index.data.items():
        if not isinstance(positions, list):
            work.odd.append("abstract_inverted_index")
            return ""
        for position in positions:
            if isinstance(position, int) and not isinstance(position, bool) and 0 <= position < MAX_ABSTRACT_WORDS:
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


def paper_from_work(work: Fields) -> Paper | None:
    """A Paper from an OpenAlex work; None without a title. Odd fields read as absent (noted in ``work.odd``)."""
    title = marked_from_html(work.text("title") or work.text("display_name"))
    if not title:
        return None
    names = []
    for authorship in work.objs("authorships"):
        name = (authorship.obj("author").text("display_name") or authorship.text("raw_author_name")).strip()
        if name:
            names.append(_author(name))
    venue = work.obj("primary_location").obj("source").text("display_name")
    published = iso_date(work.text("publication_date"))
    kind = work.text("type")
    types = ["Preprint"] if kind == "preprint" else ["Review"] if kind == "review" else ["Journal Article"]
    if work.value("is_retracted") is True:
        types.append("Retracted Publication")
    abstract = marked_from_html(abstract_from_index(work))
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
        entry_date=iso_date(work.text("created_date")) or published,
        doi=ids.doi,
        pmcid=ids.pmcid,
        pub_types=tuple(types),
    )


KIND = Kind(NAME, ("openalex_url", "openalex_api_key", "openalex_refresh"), build)
