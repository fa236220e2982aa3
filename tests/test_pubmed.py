"""The E-utilities transport and calls, against the stand-in NCBI over real HTTP."""

import time

import pytest

from il2watch import pubmed
from il2watch.eutils import RateLimiter
from il2watch.markup import to_plain
from il2watch.pubmed import PubMedError
from il2watch.transport import TransportError
from tests.data import records as R
from tests.stand_ins.eutils import max_requests_in_any_second
from tests.stand_ins.pubmed_world import record
from tests.support import ncbi_client


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
    with pytest.raises(TransportError, match=r"^NCBI esearch failed after 3 attempts \(HTTP 503\)"):
        pubmed.search(client, "mutein")


def test_client_errors_are_not_retried(ncbi_server):
    client = ncbi_client(ncbi_server.base_url)
    ncbi_server.inject(400, endpoint="esearch")
    with pytest.raises(TransportError, match="HTTP 400"):
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


def test_volume_issue_and_pages_are_read_for_citations(ncbi):
    papers = {p.pmid: p for p in pubmed.fetch_papers(ncbi, [R.REVIEW_PMID, R.TREG_MUTEIN_PMID])}
    review = papers[R.REVIEW_PMID]
    assert (review.volume, review.issue, review.pages) == ("22", "10", "614-628")
    electronic = papers[R.TREG_MUTEIN_PMID]
    assert electronic.volume == "14" and electronic.pages == "eabn4821"


def test_pages_fall_back_to_start_and_end_page_or_the_article_number():
    def article(pagination: str, elocation: str = "") -> bytes:
        return (
            '<?xml version="1.0"?><!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2024//EN" '
            '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_240101.dtd"><PubmedArticleSet><PubmedArticle>'
            '<MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">1</PMID><Article PubModel="Print">'
            "<Journal><JournalIssue><Volume>7</Volume><PubDate><Year>2020</Year></PubDate></JournalIssue>"
            f"<Title>J</Title></Journal><ArticleTitle>T</ArticleTitle>{pagination}{elocation}<Language>eng</Language>"
            '<PublicationTypeList><PublicationType UI="D016428">Journal Article</PublicationType>'
            "</PublicationTypeList></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>"
        ).encode()

    (ranged,) = pubmed.parse_articles(
        article("<Pagination><StartPage>5</StartPage><EndPage>9</EndPage></Pagination>")
    ).papers
    assert (ranged.volume, ranged.issue, ranged.pages) == ("7", "", "5-9")
    (numbered,) = pubmed.parse_articles(article("", '<ELocationID EIdType="pii" ValidYN="Y">e101</ELocationID>')).papers
    assert numbered.pages == "e101"


# ---------------------------------------------------------------- the shapes real records take


def shapes(world, ncbi):
    world.add(*R.real_shape_records())
    pmids = [rec.pmid for rec in R.real_shape_records()]
    return pubmed.fetch_records(ncbi, pmids)


def rendered(paper):
    """Everything a reader sees of a paper in Slack: the post and its abstract thread, as one text."""
    import json

    from il2watch.model import Insight
    from il2watch.render import render_abstract_thread, render_paper

    post = render_paper(paper, [], Insight(summary="s"), {})
    thread = render_abstract_thread(paper)
    return json.dumps([post.blocks, post.text] + [m.blocks for m in thread], ensure_ascii=False)


def test_mathml_in_an_abstract_reads_as_text_everywhere(world, ncbi):
    papers = {p.pmid: p for p in shapes(world, ncbi).papers}
    for pmid in (R.MATHML_PMID, R.DISPLAY_FORMULA_PMID):
        text = to_plain(" ".join(s.text for s in papers[pmid].abstract))
        assert "math" not in text and "<" not in text and "DispFormula" not in text
        assert "r² = 1/(1+τ)" in text
        seen = rendered(papers[pmid])
        assert "math" not in seen and "mml" not in seen and "r² = 1/(1+τ)" in seen
    assert "an affinity K₍d₎ of 4 nM" in to_plain(papers[R.MATHML_PMID].abstract[0].text)


def test_a_season_is_kept_in_the_publication_date(world, ncbi):
    papers = {p.pmid: p for p in shapes(world, ncbi).papers}
    assert (papers[R.SEASON_PMID].pub_date, papers[R.SEASON_PMID].pub_year) == ("2013 Winter", 2013)
    assert papers[R.SEASON_RANGE_PMID].pub_date == "2013 Jan-Mar"
    assert "2013 Winter" in rendered(papers[R.SEASON_PMID])


def test_scripts_read_cleanly_and_never_turn_slack_text_italic(world, ncbi):
    paper = {p.pmid: p for p in shapes(world, ncbi).papers}[R.SCRIPTS_PMID]
    seen = rendered(paper)
    assert "Binding K₍d₎ of a CD25-biased IL-2 and T₍reg₎ expansion" in seen
    assert "LEₘᵢₙ and k₍cat₎" in seen and "GeneReviews®" in seen and "CD4⁺CD25⁽hi⁾" in seen and "10³-fold" in seen
    assert "K_d" not in seen and "_min" not in seen and "^" not in seen


def test_author_suffixes_are_kept(world, ncbi):
    from il2watch.export import to_bibtex, to_ris

    paper = {p.pmid: p for p in shapes(world, ncbi).papers}[R.SUFFIX_PMID]
    assert [a.name for a in paper.authors] == ["Whitfield H Jr", "Whitfield H Sr", "Okafor D 3rd", "Lindqvist M"]
    assert "Whitfield H Jr" in rendered(paper)
    assert "Whitfield, Jr, Harold and Whitfield, Sr, Harold" in to_bibtex([paper])
    assert "AU  - Okafor, Daniel, 3rd" in to_ris([paper])


def test_a_record_the_parser_rejects_is_set_aside_by_pmid_and_the_batch_is_kept(world, ncbi):
    fetched = shapes(world, ncbi)
    assert {p.pmid for p in fetched.papers} == {r.pmid for r in R.real_shape_records()} - {
        R.UNKNOWN_ELEMENT_PMID,
        R.NO_ARTICLE_PMID,
    }
    assert fetched.unreadable == {
        R.UNKNOWN_ELEMENT_PMID: "NCBI's answer holds an element its DTD does not know (ArticleFlavour)",
        R.NO_ARTICLE_PMID: "the record lacks 'Article'; NCBI's format may have changed",
    }


def test_a_record_nobody_asked_for_is_not_returned(world, ncbi, ncbi_server):
    rewritten = world.get(R.REVIEW_PMID)
    import dataclasses

    ncbi_server.inject("stowaway", endpoint="efetch", record=dataclasses.replace(rewritten, title="Pwned review"))
    papers = pubmed.fetch_papers(ncbi, [R.TREG_MUTEIN_PMID])
    assert [p.pmid for p in papers] == [R.TREG_MUTEIN_PMID]


def test_ids_of_the_wrong_shape_never_leave_pubmed(world, ncbi):
    world.add(
        record(
            "39100009",
            title="Ids of every bad shape",
            doi="12}, x={y",
            pmcid="PMC12}, x={y",
            corrections=[("ErratumIn", "12}, x={y"), ("RetractionIn", "39100010")],
        )
    )
    [paper] = pubmed.fetch_papers(ncbi, ["39100009"])
    assert (paper.doi, paper.pmcid, paper.corrections) == ("", "", (("RetractionIn", "39100010"),))


def test_a_dtd_that_is_not_on_disk_fails_the_answer_at_once_and_names_it():
    data = (
        b'<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January '
        b'2099//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_990101.dtd">\n<PubmedArticleSet></PubmedArticleSet>\n'
    )
    started = time.monotonic()
    with pytest.raises(PubMedError) as failed:
        pubmed.parse_articles(data, what="EFetch")
    assert time.monotonic() - started < 1, "no download is tried"
    assert str(failed.value) == (
        "NCBI's answer to EFetch needs the DTD pubmed_990101.dtd, which is not on this machine; il2watch reads "
        "DTDs only from disk (upgrade biopython for NCBI's newer DTDs)"
    )


# ---------------------------------------------------------------- ESearch and ELink in their odd answers


@pytest.mark.parametrize("count", ["abc", "", "-1", "1e99"])
def test_a_count_that_is_not_a_number_gives_one_clear_line(ncbi, ncbi_server, count):
    ncbi_server.inject("count", endpoint="esearch", message=count)
    with pytest.raises(PubMedError) as failed:
        pubmed.esearch(ncbi, "mutein")
    assert str(failed.value) == f"NCBI's ESearch answer gives a Count that is not a number ({count!r})"


def test_a_similarity_score_out_of_range_fails_that_paper_alone(world, ncbi):
    world.set_similar(R.TREG_MUTEIN_PMID, [(R.MARKUP_PMID, 10**30)])
    links = pubmed.fetch_links(ncbi, [R.REVIEW_PMID, R.TREG_MUTEIN_PMID])
    assert links[R.TREG_MUTEIN_PMID].error.startswith(
        f"NCBI sent a similarity score that is not a usable number for PMID {R.TREG_MUTEIN_PMID} ('"
    )
    assert "000000000000" in links[R.TREG_MUTEIN_PMID].error
    assert links[R.REVIEW_PMID].error == "" and links[R.REVIEW_PMID].cited_by == list(R.REVIEW_CITED_BY)


def test_an_error_in_one_link_set_fails_that_pmid_alone(world, ncbi):
    world.withdraw(R.TREG_MUTEIN_PMID, message="ID 36104538 was merged into 36104539")
    links = pubmed.fetch_links(ncbi, [R.REVIEW_PMID, R.TREG_MUTEIN_PMID])
    assert links[R.TREG_MUTEIN_PMID].error == (
        "NCBI's ELink similar-articles answer reports for PMID 36104538: ID 36104538 was merged into 36104539 "
        "(deleted or merged?)"
    )
    assert links[R.REVIEW_PMID].cited_by == list(R.REVIEW_CITED_BY)


def test_a_link_set_without_an_idlist_is_named_as_such(world, ncbi_server, ncbi):
    ncbi_server.inject("error", endpoint="elink")  # a root ERROR: the whole request failed
    with pytest.raises(PubMedError, match="NCBI reported an error for ELink similar-articles"):
        pubmed.fetch_links(ncbi, [R.REVIEW_PMID])
    from il2watch.pubmed import _linksets

    parsed = pubmed.entrez_read(
        b'<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eLinkResult PUBLIC "-//NLM//DTD elink 20101123//EN" '
        b'"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20101123/elink.dtd">\n'
        b"<eLinkResult><LinkSet><DbFrom>pubmed</DbFrom></LinkSet></eLinkResult>",
        ignore_errors=True,
    )
    found, stray = _linksets(parsed, "ELink")
    assert found == {} and stray == "a LinkSet with no IdList"
    assert "merged several ids" not in stray


def test_search_stops_when_a_page_brings_nothing_new(world):
    from tests.stand_ins.eutils import EutilsStandIn

    world.generate_citing(R.REVIEW_PMID, 25, start_pmid=41_000_000)
    world.add_query("citing filler", [str(41_000_000 + i) for i in range(25)])
    with EutilsStandIn(world, ignore_retstart=True) as server:
        client = ncbi_client(server.base_url)
        with pytest.raises(PubMedError) as failed:
            pubmed.esearch(client, "citing filler", page_size=10)
        assert len(server.requests) == 2, "one page, and the page that repeated it"
    assert str(failed.value) == (
        "NCBI's ESearch sent the same ids again at retstart=10 (does the server ignore retstart?); "
        "stopped after 10 of 25"
    )


def test_search_stops_at_the_count_and_at_an_empty_page(world, ncbi, ncbi_server):
    world.generate_citing(R.REVIEW_PMID, 20, start_pmid=41_000_000)
    world.add_query("citing filler", [str(41_000_000 + i) for i in range(20)])
    assert len(pubmed.esearch(ncbi, "citing filler", page_size=10).pmids) == 20
    assert [r.params["retstart"] for r in ncbi_server.requests] == [["0"], ["10"]]


def test_a_search_past_9999_matches_splits_its_entry_date_window(world, ncbi, ncbi_server):
    from datetime import date, timedelta

    start = date(2024, 1, 1)
    pmids = world.generate_citing(
        R.REVIEW_PMID, 12_000, start_pmid=50_000_000, entry_dates=lambda i: start + timedelta(days=i % 150)
    )
    found = pubmed.esearch(ncbi, "synthetic study", mindate="2024/01/01", maxdate="2024/05/29", today=start)
    assert sorted(found.pmids) == sorted(pmids) and found.count == 12_000
    searches = [r for r in ncbi_server.requests if r.endpoint == "esearch"]
    assert all(int(r.params["retstart"][0]) <= 9998 for r in searches)
    windows = [(r.params["mindate"][0], r.params["maxdate"][0]) for r in searches[1:]]
    assert windows[0][0] == "2024/01/01" and windows[-1][1] == "2024/05/29" and len(searches) <= 5


def test_more_matches_on_one_day_than_pubmed_serves_is_refused_with_its_count(world, ncbi):
    from datetime import date

    world.generate_citing(R.REVIEW_PMID, 10_000, start_pmid=50_000_000, entry_dates=[date(2024, 3, 1)])
    with pytest.raises(PubMedError) as failed:
        pubmed.esearch(ncbi, "synthetic study", mindate="2024/03/01", maxdate="2024/03/01")
    assert str(failed.value) == (
        "PubMed has 10,000 matches for the query entered on 2024/03/01, more than il2watch can page through "
        "(PubMed serves 9,999 ids per search): narrow the query"
    )


def test_error_and_warning_lists_come_back_with_the_words(ncbi):
    found = pubmed.esearch(ncbi, "interleukin AND lupsu AND mutein[xyzfield]")
    assert found.pmids, "NCBI searched without the words it does not know"
    assert sorted(p.describe() for p in found.errors) == [
        "PubMed does not know “lupsu” and searched without it",
        "PubMed has no search field [xyzfield] and searched without it",
    ]
    checked = pubmed.check_query(ncbi, "lupsu")
    assert checked.count == 0 and [(p.kind, p.word) for p in checked.errors] == [("PhraseNotFound", "lupsu")]


def test_a_mathml_abstract_s_summary_and_search_read_as_text_and_find_it_by_its_words(world, ncbi, tmp_path):
    """The summary il2watch stores and `/il2 search` (the index and what the answer shows) see the formula's
    text, never MathML's tags: the paper is found by the words around and inside the formula, not by `mml`."""
    import json

    from il2watch import intel
    from il2watch.commands import Context, answer
    from il2watch.config import load_settings
    from il2watch.library import Library

    paper = {p.pmid: p for p in shapes(world, ncbi).papers}[R.MATHML_PMID]
    insight = intel.analyse(paper)
    assert "affinity K₍d₎ of 4 nM" in insight.summary and "r² = 1/(1+τ)" in insight.summary
    settings = load_settings({"IL2WATCH_DB": str(tmp_path / "library.db")}, cwd=tmp_path)
    with Library(settings.db_path) as library:
        library.save_papers([paper], {paper.pmid: insight})
        context = Context(library=library, settings=settings, insight_for=lambda p, reasons: intel.analyse(p, reasons))
        found = answer("search affinity signalling", context)
        seen = json.dumps([found.text, found.blocks], ensure_ascii=False)
        assert "1 paper match" in found.text and f"pmid:{R.MATHML_PMID}" in seen
        assert "mml" not in seen and "math" not in seen and "msub" not in seen and "alttext" not in seen
        shown = answer(f"paper {R.MATHML_PMID}", context)  # the stored summary, as `/il2 paper` shows it
        seen = json.dumps([shown.text, shown.blocks], ensure_ascii=False)
        assert "r² = 1/(1+τ)" in seen and "mml" not in seen and "math" not in seen and "msub" not in seen
        for tag_word in ("mml", "msub", "mfrac", "alttext"):
            assert library.search(tag_word, limit=5) == ([], 0), tag_word
        assert library.search("τ", limit=5)[1] == 1  # a character the formula holds is searchable text
