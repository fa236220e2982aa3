"""The iCite, Europe PMC and OpenAlex stand-ins answer in the shapes the real services document."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.data.citations import (
    ALL_FOUR_PMID,
    EPMC_ONLY_PMID,
    ICITE_ONLY_PMID,
    OPENALEX_ARTICLE,
    PATENT,
    PREPRINT_EPMC,
    PREPRINT_LATER,
    PREPRINT_LATER_PMID,
    PREPRINT_SHARED,
    add_new_citations,
    build_literature,
    index_preprint_in_pubmed,
)
from tests.data.records import REVIEW_CITED_BY, REVIEW_PMID, UNRELATED_PMID
from tests.stand_ins.europepmc import EuropePmcStandIn
from tests.stand_ins.icite import IciteStandIn
from tests.stand_ins.openalex import DEFAULT_KEY, OpenAlexStandIn


def get(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body)
        except ValueError:
            return error.code, body


@pytest.fixture
def literature():
    return build_literature()


def test_icite_lists_citing_pmids_and_leaves_unknown_ones_out(literature):
    add_new_citations(literature)
    with IciteStandIn(literature) as icite:
        status, body = get(f"{icite.base_url}api/pubs?pmids={REVIEW_PMID},99999999&fl=pmid,cited_by")
    assert status == 200
    assert [item["pmid"] for item in body["data"]] == [int(REVIEW_PMID)]
    cited_by = body["data"][0]["cited_by"]
    assert set(map(str, cited_by)) >= set(REVIEW_CITED_BY) | {ALL_FOUR_PMID, ICITE_ONLY_PMID}
    assert int(EPMC_ONLY_PMID) not in cited_by
    assert set(body["data"][0]) == {"pmid", "cited_by"}


def test_europepmc_lists_med_and_preprints_and_404s_its_own_way(literature):
    add_new_citations(literature)
    with EuropePmcStandIn(literature) as epmc:
        status, body = get(f"{epmc.base_url}MED/{REVIEW_PMID}/citations?format=json&page=1&pageSize=1000")
        assert status == 200
        entries = body["citationList"]["citation"]
        assert body["hitCount"] == len(entries)
        sources = {(e["source"], e["id"]) for e in entries}
        assert ("MED", EPMC_ONLY_PMID) in sources and ("PPR", PREPRINT_EPMC.ppr) in sources
        assert ("PAT", PATENT.europepmc_id) in sources and ("MED", ICITE_ONLY_PMID) not in sources
        status, page_two = get(f"{epmc.base_url}MED/{REVIEW_PMID}/citations?format=json&page=2&pageSize=5")
        assert status == 200 and len(page_two["citationList"]["citation"]) == 5
        status, none = get(f"{epmc.base_url}MED/{UNRELATED_PMID}/citations?format=json")
        assert status == 404 and none["errCode"] == 404 and none["hitCount"] == 0
        status, wrong = get(f"{epmc.base_url.replace('/rest/', '/nope/')}MED/{REVIEW_PMID}/citations?format=json")
        assert status == 404 and isinstance(wrong, bytes) and b"<html>" in wrong
        query = f"(EXT_ID:{PREPRINT_EPMC.ppr}%20OR%20EXT_ID:{PREPRINT_SHARED.ppr})%20AND%20SRC:PPR"
        status, found = get(f"{epmc.base_url}search?query={query}&resultType=core&format=json&pageSize=1&cursorMark=*")
        assert status == 200 and found["hitCount"] == 2
        first = found["resultList"]["result"][0]
        assert first["doi"] == "10.21203/RS.3.RS-5512345/V1" and first["pubTypeList"]["pubType"] == ["Preprint"]
        assert first["bookOrReportDetails"]["publisher"] == "Research Square"
        cursor = found["nextCursorMark"]
        status, last = get(
            f"{epmc.base_url}search?query={query}&resultType=core&format=json&pageSize=1&cursorMark={cursor}"
        )
        assert last["nextCursorMark"] == cursor  # the last page echoes its cursor


def test_openalex_needs_a_key_and_pages_by_cursor_to_an_empty_page(literature):
    add_new_citations(literature)
    with OpenAlexStandIn(literature) as openalex:
        status, refused = get(f"{openalex.base_url}works/pmid:{REVIEW_PMID}")
        assert status == 401
        status, review = get(f"{openalex.base_url}works/pmid:{REVIEW_PMID}?api_key={DEFAULT_KEY}&select=id")
        assert status == 200 and set(review) == {"id"} and review["id"].startswith("https://openalex.org/W")
        work_id = review["id"].rsplit("/", 1)[1]
        status, too_big = get(f"{openalex.base_url}works?filter=cites:{work_id}&per_page=200&api_key={DEFAULT_KEY}")
        assert status == 400
        cursor, works = "*", []
        while True:
            status, page = get(
                f"{openalex.base_url}works?filter=cites:{work_id}&per_page=4&cursor={cursor}&api_key={DEFAULT_KEY}"
            )
            assert status == 200
            works += page["results"]
            if page["meta"]["next_cursor"] is None:
                assert page["results"] == []
                break
            cursor = page["meta"]["next_cursor"]
    dois = {w["doi"] for w in works}
    assert f"https://doi.org/{OPENALEX_ARTICLE.doi}" in dois and f"https://doi.org/{PREPRINT_SHARED.doi}" in dois
    article = next(w for w in works if w["doi"] == f"https://doi.org/{OPENALEX_ARTICLE.doi}")
    assert "pmid" not in article["ids"] and article["abstract_inverted_index"]["IL-2"] == [2]
    assert any(w["ids"].get("pmid", "").endswith(ALL_FOUR_PMID) for w in works)


def test_a_preprint_indexed_by_pubmed_later_is_named_by_its_pmid(literature):
    add_new_citations(literature)
    index_preprint_in_pubmed(literature)
    assert f"pmid:{PREPRINT_LATER_PMID}" in literature.citing(REVIEW_PMID, "europepmc")
    assert PREPRINT_LATER.key not in literature.citing(REVIEW_PMID, "europepmc")
    assert PREPRINT_LATER_PMID in literature.world.citing(REVIEW_PMID)


def test_faults_and_the_rate_limit(literature):
    with IciteStandIn(literature, rate_window=10.0) as icite:
        icite.inject(503, retry_after=2)
        status, _ = get(f"{icite.base_url}api/pubs?pmids={REVIEW_PMID}")
        assert status == 503
        icite.inject("malformed")
        with urllib.request.urlopen(f"{icite.base_url}api/pubs?pmids={REVIEW_PMID}", timeout=5) as response:
            with pytest.raises(ValueError):
                json.loads(response.read())
        statuses = [get(f"{icite.base_url}api/pubs?pmids={REVIEW_PMID}")[0] for _ in range(6)]
        assert statuses.count(429) >= 1 and icite.rate_violations >= 1
