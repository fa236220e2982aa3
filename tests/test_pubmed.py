"""The E-utilities transport and calls, against the stand-in NCBI over real HTTP."""

import time

import pytest

from il2watch import pubmed
from il2watch.eutils import EutilsError, RateLimiter
from il2watch.markup import to_plain
from il2watch.pubmed import PubMedError
from tests.conftest import ncbi_client
from tests.data import records as R
from tests.stand_ins.eutils import max_requests_in_any_second
from tests.stand_ins.pubmed_world import record


def test_links_come_from_two_requests_with_scores_and_without_the_watched_paper(ncbi, ncbi_server):
    links = pubmed.fetch_links(ncbi, [R.REVIEW_PMID])[R.REVIEW_PMID]
    assert links.cited_by == list(R.REVIEW_CITED_BY)
    assert links.similar == [(pmid, score) for pmid, score in R.REVIEW_SIMILAR]
    assert R.REVIEW_PMID not in [pmid for pmid, _ in links.similar]
    elinks = [r for r in ncbi_server.requests if r.endpoint == "elink"]
    assert len(elinks) == 2
    assert {r.params["cmd"][0] for r in elinks} == {"neighbor_score", "neighbor"}


def test_several_watched_papers_still_cost_two_requests(ncbi, ncbi_server):
    found = pubmed.fetch_links(ncbi, [R.REVIEW_PMID, R.TREG_MUTEIN_PMID, R.UNRELATED_PMID])
    assert set(found) == {R.REVIEW_PMID, R.TREG_MUTEIN_PMID, R.UNRELATED_PMID}
    assert found[R.UNRELATED_PMID].cited_by == [] and found[R.UNRELATED_PMID].similar == []
    assert len(ncbi_server.requests) == 2
    assert all(r.params["id"] == [R.REVIEW_PMID, R.TREG_MUTEIN_PMID, R.UNRELATED_PMID] for r in ncbi_server.requests)


def test_every_request_carries_tool_and_email_and_the_api_key(ncbi_server):
    client = ncbi_client(ncbi_server.base_url, ncbi_api_key="k123", limiter=RateLimiter(10))
    pubmed.fetch_links(client, [R.REVIEW_PMID])
    pubmed.search(client, "mutein")
    pubmed.fetch_papers(client, [R.TREG_MUTEIN_PMID])
    for request in ncbi_server.requests:
        assert request.params["tool"] == ["il2watch"]
        assert request.params["email"] == ["lab@example.org"]
        assert request.params["api_key"] == ["k123"]


def test_records_parse_into_papers_whatever_their_shape(ncbi):
    papers = {
        p.pmid: p
        for p in pubmed.fetch_papers(
            ncbi,
            [
                R.MARKUP_PMID,
                R.MEDLINE_DATE_PMID,
                R.NO_ABSTRACT_PMID,
                R.COLLECTIVE_PMID,
                R.LOW_DOSE_SLE_PMID,
                R.BOOK_PMID,
                R.RETRACTED_PMID,
                R.NOT_ALPHA_CANCER_PMID,
                R.REVIEW_PMID,
            ],
        )
    }
    assert len(papers) == 9
    markup = papers[R.MARKUP_PMID]
    assert "<i>" in markup.title or "<sup>" in markup.title or "<sub>" in markup.title
    assert "<" not in to_plain(markup.title)
    assert papers[R.MEDLINE_DATE_PMID].pub_date == "2021 Nov-Dec"
    assert papers[R.MEDLINE_DATE_PMID].pub_year == 2021
    assert papers[R.NO_ABSTRACT_PMID].abstract == ()
    assert any(a.collective for a in papers[R.COLLECTIVE_PMID].authors)
    sle = papers[R.LOW_DOSE_SLE_PMID]
    assert sle.abstract[-1].label == "CONCLUSIONS"
    assert any(not a.name.isascii() for a in sle.authors)
    assert papers[R.BOOK_PMID].is_book
    assert (
        papers[R.RETRACTED_PMID].pub_types
        and any("Retract" in t for t in papers[R.RETRACTED_PMID].pub_types)
        or any(kind == "RetractionIn" for kind, _ in papers[R.RETRACTED_PMID].corrections)
    )
    assert papers[R.NOT_ALPHA_CANCER_PMID].pmcid.startswith("PMC")
    review = papers[R.REVIEW_PMID]
    assert review.doi == "10.1038/s41577-022-00680-w"
    assert review.journal_iso == "Nat Rev Immunol" and review.entry_date == "2022-02-26"
    assert [a.name for a in review.authors][:2] == ["Hernandez R", "Põder J"]


def test_unknown_ids_are_absent_not_errors(ncbi):
    assert [p.pmid for p in pubmed.fetch_papers(ncbi, ["1", R.REVIEW_PMID])] == [R.REVIEW_PMID]
    assert list(pubmed.verify_pmids(ncbi, [R.REVIEW_PMID, "99999999"])) == [R.REVIEW_PMID]


def test_more_than_200_ids_go_in_batches_by_post(world, ncbi_server):
    pmids = world.generate_citing(R.REVIEW_PMID, 450, start_pmid=40_000_000)
    client = ncbi_client(ncbi_server.base_url)
    papers = pubmed.fetch_papers(client, pmids)
    assert sorted(p.pmid for p in papers) == sorted(pmids)
    efetches = [r for r in ncbi_server.requests if r.endpoint == "efetch"]
    assert len(efetches) == 3  # 200 + 200 + 50
    assert [r.method for r in efetches] == ["POST", "POST", "GET"]
    assert ncbi_server.rate_violations == 0


def test_search_pages_past_the_page_size_and_sends_the_date_window(world, ncbi_server, ncbi):
    world.generate_citing(R.REVIEW_PMID, 25, start_pmid=41_000_000)
    world.add_query("citing filler", [str(41_000_000 + i) for i in range(25)])
    found = pubmed.search(ncbi, "citing filler", mindate="2020/01/01", page_size=10)
    assert len(found) == 25
    searches = [r for r in ncbi_server.requests if r.endpoint == "esearch"]
    assert [r.params["retstart"] for r in searches] == [["0"], ["10"], ["20"]]
    assert searches[0].params["datetype"] == ["edat"] and searches[0].params["mindate"] == ["2020/01/01"]


def test_an_empty_search_with_error_list_is_an_answer(ncbi):
    assert pubmed.search(ncbi, "zzzxxqqq") == []


def test_the_rate_never_exceeds_three_per_second(ncbi_server):
    client = ncbi_client(ncbi_server.base_url)
    started = time.monotonic()
    for _ in range(7):
        pubmed.search(client, "mutein")
    assert time.monotonic() - started >= 2.0  # seven requests at 3/s cannot take less
    assert max_requests_in_any_second(ncbi_server.requests) <= 3
    assert ncbi_server.rate_violations == 0


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_retryable_statuses_are_retried(ncbi, ncbi_server, status):
    ncbi_server.inject(status, endpoint="esearch", times=2)
    assert pubmed.search(ncbi, "mutein")
    assert [r.status for r in ncbi_server.requests] == [status, status, 200]


def test_retry_after_is_honoured(ncbi_server):
    slept = []
    client = ncbi_client(ncbi_server.base_url, ncbi_backoff=5.0, sleep=slept.append)
    ncbi_server.inject(429, endpoint="esearch", retry_after=2)
    pubmed.search(client, "mutein")
    assert slept == [2.0]


def test_connection_resets_and_slow_answers_are_retried(ncbi_server):
    client = ncbi_client(ncbi_server.base_url, ncbi_timeout=0.5)
    ncbi_server.inject("reset", endpoint="esearch")
    ncbi_server.inject("slow", endpoint="esearch", delay=1.5)
    assert pubmed.search(client, "mutein")
    assert len([r for r in ncbi_server.requests if r.endpoint == "esearch"]) >= 2


def test_giving_up_says_what_failed(ncbi_server):
    client = ncbi_client(ncbi_server.base_url, ncbi_attempts=3)
    ncbi_server.inject(503, endpoint="esearch", times=3)
    with pytest.raises(EutilsError, match=r"^NCBI esearch failed after 3 attempts \(HTTP 503\)"):
        pubmed.search(client, "mutein")


def test_client_errors_are_not_retried(ncbi_server):
    client = ncbi_client(ncbi_server.base_url)
    ncbi_server.inject(400, endpoint="esearch")
    with pytest.raises(EutilsError, match="HTTP 400"):
        pubmed.search(client, "mutein")
    assert len(ncbi_server.requests) == 1


@pytest.mark.parametrize(
    "fault, message",
    [
        ("truncate", "not complete XML"),
        ("html", "HTML page instead of XML"),
        ("error", "NCBI reported an error"),
    ],
)
def test_broken_answers_fail_with_one_line(ncbi, ncbi_server, fault, message):
    ncbi_server.inject(fault, endpoint="efetch")
    with pytest.raises(PubMedError, match=message) as caught:
        pubmed.fetch_papers(ncbi, [R.REVIEW_PMID])
    assert "\n" not in str(caught.value)


def test_unknown_watched_pmid_is_reported_by_esummary(ncbi):
    assert pubmed.verify_pmids(ncbi, ["99999999"]) == {}


def test_database_info_answers(ncbi, world):
    info = pubmed.database_info(ncbi)
    assert int(info["count"]) == len(world)


def test_parse_of_a_new_record_added_while_serving(world, ncbi):
    world.add(record("41234567", title="A <i>new</i> CD25-biased IL-2 mutein", entry_date="2024-06-14"))
    [paper] = pubmed.fetch_papers(ncbi, ["41234567"])
    assert paper.title == "A <i>new</i> CD25-biased IL-2 mutein"
    assert paper.entry_date == "2024-06-14"


def test_reference_lists_are_dropped_before_parsing_without_changing_the_record(ncbi, world):
    import io

    from Bio import Entrez

    from il2watch.pubmed import _paper_from_article

    raw = ncbi.call("efetch", [("db", "pubmed"), ("retmode", "xml"), ("id", R.TREG_MUTEIN_PMID)])
    assert b"<Reference>" in raw  # it cites the review, so its record lists references
    [fast] = pubmed.parse_articles(raw).papers
    [whole] = [_paper_from_article(r) for r in Entrez.read(io.BytesIO(raw), escape=True)["PubmedArticle"]]
    assert fast == whole
