"""The E-utilities stand-in, exercised through real HTTP and parsed by Bio.Entrez as il2watch will."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from Bio import Entrez
from Bio.Entrez.Parser import CorruptedXMLError, NotXMLError
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.data import records as R
from tests.stand_ins.eutils import EutilsStandIn, LoggedRequest, max_requests_in_any_second
from tests.stand_ins.pubmed_world import PubMedWorld, marked_text, plain_text, record

ROOT = Path(__file__).resolve().parent.parent
# Talk to 127.0.0.1 directly even if the environment names a proxy.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ManualClock:
    """A clock the test moves by hand, so rate-limit windows need no waiting."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def world() -> PubMedWorld:
    return R.build_world()


@pytest.fixture
def server(world: PubMedWorld):
    with EutilsStandIn(world, enforce_rate_limit=False) as stand_in:
        yield stand_in


def url(stand_in: EutilsStandIn, endpoint: str, **params: object) -> str:
    return f"{stand_in.base_url}{endpoint}.fcgi?" + urllib.parse.urlencode(params, doseq=True)


def get(stand_in: EutilsStandIn, endpoint: str, timeout: float = 5, **params: object):
    return OPENER.open(url(stand_in, endpoint, **params), timeout=timeout)


def post(stand_in: EutilsStandIn, endpoint: str, **params: object):
    body = urllib.parse.urlencode(params, doseq=True).encode()
    return OPENER.open(f"{stand_in.base_url}{endpoint}.fcgi", data=body, timeout=5)


def read(stand_in: EutilsStandIn, endpoint: str, **params: object):
    return Entrez.read(get(stand_in, endpoint, **params))


def link_ids(link_set_db) -> list[str]:
    return [link["Id"] for link in link_set_db["Link"]]


def link_set(answer, name: str):
    (found,) = [db for db in answer["LinkSetDb"] if db["LinkName"] == name]
    return found


# ---------------------------------------------------------------------------- ELink


def test_elink_without_linkname_answers_every_link_set_in_one_linkset(server):
    (answer,) = read(server, "elink", dbfrom="pubmed", db="pubmed", id=R.REVIEW_PMID, cmd="neighbor")
    names = [db["LinkName"] for db in answer["LinkSetDb"]]
    assert names[:2] == ["pubmed_pubmed", "pubmed_pubmed_citedin"]
    assert "pubmed_pubmed_refs" in names
    similar = link_ids(link_set(answer, "pubmed_pubmed"))
    assert similar[0] == R.REVIEW_PMID  # the article itself comes first
    assert similar[1:] == [pmid for pmid, _ in R.REVIEW_SIMILAR]
    assert link_ids(link_set(answer, "pubmed_pubmed_citedin")) == list(R.REVIEW_CITED_BY)
    assert link_ids(link_set(answer, "pubmed_pubmed_refs")) == list(R.REVIEW_REFERENCES)
    assert "Score" not in answer["LinkSetDb"][0]["Link"][0]


def test_neighbor_score_puts_string_scores_after_ids_with_the_article_itself_highest(server):
    (answer,) = read(server, "elink", dbfrom="pubmed", id=R.REVIEW_PMID, cmd="neighbor_score", linkname="pubmed_pubmed")
    links = answer["LinkSetDb"][0]["Link"]
    assert links[0] == {"Id": R.REVIEW_PMID, "Score": str(R.REVIEW_SELF_SCORE)}
    assert [(link["Id"], link["Score"]) for link in links[1:]] == [(p, str(s)) for p, s in R.REVIEW_SIMILAR]
    assert all(isinstance(link["Score"], str) for link in links)
    scores = [int(link["Score"]) for link in links]
    assert scores == sorted(scores, reverse=True)


def test_repeated_ids_give_one_linkset_each_and_comma_ids_one_merged_linkset(server):
    separate = read(
        server, "elink", dbfrom="pubmed", id=[R.REVIEW_PMID, R.TREG_MUTEIN_PMID], linkname="pubmed_pubmed_citedin"
    )
    assert [s["IdList"] for s in separate] == [[R.REVIEW_PMID], [R.TREG_MUTEIN_PMID]]
    assert link_ids(separate[0]["LinkSetDb"][0]) == list(R.REVIEW_CITED_BY)
    assert link_ids(separate[1]["LinkSetDb"][0]) == [R.MARKUP_PMID]

    merged = read(
        server, "elink", dbfrom="pubmed", id=f"{R.REVIEW_PMID},{R.TREG_MUTEIN_PMID}", linkname="pubmed_pubmed_citedin"
    )
    assert len(merged) == 1
    assert merged[0]["IdList"] == [R.REVIEW_PMID, R.TREG_MUTEIN_PMID]
    citing = link_ids(merged[0]["LinkSetDb"][0])
    assert set(citing) == set(R.REVIEW_CITED_BY) | {R.MARKUP_PMID}
    assert citing == sorted(citing, key=int, reverse=True)


def test_ids_without_links_and_unknown_ids_get_a_linkset_without_linksetdb(server):
    answers = read(server, "elink", dbfrom="pubmed", id=[R.UNRELATED_PMID, "99999999"])
    assert [a["IdList"] for a in answers] == [[R.UNRELATED_PMID], ["99999999"]]
    assert [a["LinkSetDb"] for a in answers] == [[], []]


def test_non_numeric_id_gets_an_error_inside_its_linkset(server):
    with pytest.raises(RuntimeError, match="Invalid uid abc"):
        read(server, "elink", dbfrom="pubmed", id="abc")
    answers = Entrez.read(get(server, "elink", dbfrom="pubmed", id=["abc", R.REVIEW_PMID]), ignore_errors=True)
    assert answers[0]["ERROR"] and answers[1]["LinkSetDb"]


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (
            {"datetype": "edat", "mindate": "2023/06", "maxdate": "2023/12"},
            [R.COLLECTIVE_PMID, R.GERMAN_PMID, R.NOT_ALPHA_CANCER_PMID, R.MARKUP_PMID],
        ),
        (
            {"datetype": "edat", "mindate": "2024/03/19", "maxdate": "2024/05/04"},
            [R.IMMUNOCOMPLEX_PMID, R.PREPRINT_PMID],
        ),
        (
            {"datetype": "pdat", "mindate": "2024", "maxdate": "2024"},
            [R.IMMUNOCOMPLEX_PMID, R.PREPRINT_PMID, R.COLLECTIVE_PMID],
        ),
        ({"datetype": "edat", "reldate": "60"}, [R.IMMUNOCOMPLEX_PMID]),  # the world's today is 2024-06-15
    ],
)
def test_elink_date_limits_restrict_the_linked_ids(server, limits, expected):
    (answer,) = read(server, "elink", dbfrom="pubmed", id=R.REVIEW_PMID, linkname="pubmed_pubmed_citedin", **limits)
    assert link_ids(answer["LinkSetDb"][0]) == expected


def test_elink_date_limit_reorders_similar_articles_newest_first(server):
    (answer,) = read(
        server,
        "elink",
        dbfrom="pubmed",
        id=R.REVIEW_PMID,
        linkname="pubmed_pubmed",
        cmd="neighbor_score",
        datetype="edat",
        mindate="2023",
        maxdate="2024",
    )
    links = answer["LinkSetDb"][0]["Link"]
    assert [link["Id"] for link in links] == [
        R.IMMUNOCOMPLEX_PMID,
        R.PREPRINT_PMID,
        R.COLLECTIVE_PMID,
        R.GERMAN_PMID,
        R.BOOK_PMID,
        R.NOT_ALPHA_CANCER_PMID,
        R.MARKUP_PMID,
        R.IL15_PMID,
        R.LOW_DOSE_SLE_PMID,
    ]
    assert dict((link["Id"], link["Score"]) for link in links)[R.MARKUP_PMID] == "39210466"


def test_elink_term_filters_linked_ids(server):
    (answer,) = read(server, "elink", dbfrom="pubmed", id=R.REVIEW_PMID, linkname="pubmed_pubmed_citedin", term="lupus")
    assert link_ids(answer["LinkSetDb"][0]) == [R.GERMAN_PMID, R.LOW_DOSE_SLE_PMID]


def test_elink_malformed_date_is_an_error_answer(server):
    with pytest.raises(RuntimeError, match="Invalid date"):
        read(server, "elink", dbfrom="pubmed", id=R.REVIEW_PMID, mindate="last week", datetype="edat")


def test_elink_ncheck_and_neighbor_history_shapes(server):
    (check,) = read(server, "elink", dbfrom="pubmed", id=f"{R.REVIEW_PMID},{R.UNRELATED_PMID}", cmd="ncheck")
    assert [(i, i.attributes["HasNeighbor"]) for i in check["IdCheckList"]["Id"]] == [
        (R.REVIEW_PMID, "Y"),
        (R.UNRELATED_PMID, "N"),
    ]
    (history,) = read(
        server, "elink", dbfrom="pubmed", id=R.REVIEW_PMID, cmd="neighbor_history", linkname="pubmed_pubmed_citedin"
    )
    (entry,) = history["LinkSetDbHistory"]
    fetched = Entrez.read(
        get(
            server,
            "efetch",
            db="pubmed",
            retmode="xml",
            WebEnv=history["WebEnv"],
            query_key=entry["QueryKey"],
            retmax=3,
        )
    )
    assert [str(a["MedlineCitation"]["PMID"]) for a in fetched["PubmedArticle"]] == list(R.REVIEW_CITED_BY[:3])


def test_papers_arriving_between_polls_appear_in_the_next_answer(server, world):
    def citing() -> list[str]:
        (answer,) = read(server, "elink", dbfrom="pubmed", id=R.REVIEW_PMID, linkname="pubmed_pubmed_citedin")
        return link_ids(answer["LinkSetDb"][0])

    assert citing() == list(R.REVIEW_CITED_BY)
    world.add(record("39100001", title="IL-2 muteins in alopecia areata.", entry_date="2024-06-14"))
    world.cite("39100001", R.REVIEW_PMID)
    assert citing() == ["39100001", *R.REVIEW_CITED_BY]


# ---------------------------------------------------------------------------- ESearch


def test_registered_query_returns_its_matches_newest_entry_first(server):
    answer = read(server, "esearch", db="pubmed", term=R.ENGINEERED_IL2_QUERY)
    assert answer["Count"] == str(len(R.ENGINEERED_IL2_MATCHES))
    assert answer["IdList"] == list(R.ENGINEERED_IL2_MATCHES)
    assert answer["RetMax"] == str(len(R.ENGINEERED_IL2_MATCHES)) and answer["RetStart"] == "0"
    assert answer["QueryTranslation"] == R.ENGINEERED_IL2_TRANSLATION
    assert answer["TranslationSet"] == []


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        (
            "lupus[tiab] OR colitis[tiab]",
            {R.LOW_DOSE_SLE_PMID, R.GERMAN_PMID, R.RETRACTED_PMID, R.RETRACTION_NOTICE_PMID},
        ),
        ('(regulatory T cells) AND "humanised mice"', {R.PREPRINT_PMID}),
        ("NK cells AND (IL-15 OR superagonist)", {R.IL15_PMID}),
        ("Lupus Erythematosus, Systemic[mh]", {R.LOW_DOSE_SLE_PMID}),
        ("preprint[pt]", {R.PREPRINT_PMID}),
        ("Põder J[au]", {R.REVIEW_PMID}),
        ("interleukin-2 NOT lupus AND 2024[dp]", {R.COLLECTIVE_PMID, R.BOOK_PMID}),  # IL-2 is not interleukin-2 here
        (
            "il-2 mutein*[tiab] AND 2023/01/01:2023/12/31[edat]",
            {R.MARKUP_PMID, R.RETRACTION_NOTICE_PMID, R.COLLECTIVE_PMID},
        ),
    ],
)
def test_unregistered_terms_match_words_and_phrases(server, term, expected):
    answer = read(server, "esearch", db="pubmed", term=term, retmax=100)
    assert set(answer["IdList"]) == expected
    assert answer["Count"] == str(len(expected))


def test_term_whose_words_occur_nowhere_reports_phrase_not_found(server):
    answer = read(server, "esearch", db="pubmed", term="abcXYZ")
    assert answer["Count"] == "0" and answer["IdList"] == []
    assert answer["ErrorList"]["PhraseNotFound"] == ["abcXYZ"]
    assert answer["WarningList"]["OutputMessage"] == ["No items found."]


def test_term_with_known_words_but_no_match_is_just_count_zero(server):
    answer = read(server, "esearch", db="pubmed", term="lupus colitis")
    assert answer["Count"] == "0"
    assert "ErrorList" not in answer and "WarningList" not in answer


def test_esearch_pages_with_retstart_and_retmax_and_defaults_to_twenty(server, world):
    world.generate_citing(R.REVIEW_PMID, 45, 40_000_000, entry_dates=lambda i: date(2024, 6, 1 + i % 14))
    first = read(server, "esearch", db="pubmed", term="synthetic study")
    assert (first["Count"], first["RetMax"], len(first["IdList"])) == ("45", "20", 20)
    everything = read(server, "esearch", db="pubmed", term="synthetic study", retmax=100)["IdList"]
    page = read(server, "esearch", db="pubmed", term="synthetic study", retstart=40, retmax=10)
    assert page["IdList"] == everything[40:] and page["RetMax"] == "5" and page["RetStart"] == "40"
    entry_dates = [world.get(p).entry_date for p in everything]
    assert entry_dates == sorted(entry_dates, reverse=True)


def test_esearch_date_parameters_and_sort(server):
    answer = read(server, "esearch", db="pubmed", term="interleukin-2", datetype="edat", reldate="365")
    assert answer["IdList"] == [R.COLLECTIVE_PMID, R.GERMAN_PMID, R.BOOK_PMID, R.NOT_ALPHA_CANCER_PMID]
    assert answer["QueryTranslation"].endswith("AND 2023/06/16:2024/06/15[Date - Entry]")
    by_pub_date = read(
        server, "esearch", db="pubmed", term="interleukin-2", datetype="edat", reldate="365", sort="pub date"
    )
    assert by_pub_date["IdList"] == [R.COLLECTIVE_PMID, R.BOOK_PMID, R.GERMAN_PMID, R.NOT_ALPHA_CANCER_PMID]
    count_only = read(server, "esearch", db="pubmed", term="interleukin-2", rettype="count")
    assert set(count_only) == {"Count"}


def test_esearch_refuses_retstart_beyond_pubmeds_cap(server):
    with pytest.raises(RuntimeError, match="cannot be larger than 9998"):
        read(server, "esearch", db="pubmed", term="interleukin-2", retstart=10_000)


def test_usehistory_chains_into_efetch_pages(server):
    search = read(server, "esearch", db="pubmed", term=R.ENGINEERED_IL2_QUERY, usehistory="y", retmax=0)
    assert search["QueryKey"] == "1" and search["WebEnv"].startswith("MCID_")
    page = Entrez.read(
        get(
            server,
            "efetch",
            db="pubmed",
            retmode="xml",
            WebEnv=search["WebEnv"],
            query_key=search["QueryKey"],
            retstart=2,
            retmax=3,
        )
    )
    assert [str(a["MedlineCitation"]["PMID"]) for a in page["PubmedArticle"]] == list(R.ENGINEERED_IL2_MATCHES[2:5])
    again = read(server, "esearch", db="pubmed", term="lupus", usehistory="y", WebEnv=search["WebEnv"])
    assert (again["WebEnv"], again["QueryKey"]) == (search["WebEnv"], "2")


HYPOTHESIS_WORLD = R.build_world()


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60) | st.text(alphabet='()[]":*ANDORT 2/ab', max_size=40)
)
def test_search_never_raises_whatever_the_term(term):
    result = HYPOTHESIS_WORLD.search(term)
    assert isinstance(result.pmids, list)


# ---------------------------------------------------------------------------- EFetch


def test_efetch_keeps_the_order_asked_and_omits_unknown_ids(server):
    ids = [R.LOW_DOSE_SLE_PMID, "11111111", R.REVIEW_PMID, R.BOOK_PMID, R.MARKUP_PMID]
    body = get(server, "efetch", db="pubmed", retmode="xml", id=",".join(ids)).read()
    root = ET.fromstring(body)
    order = [el.findtext("MedlineCitation/PMID") or el.findtext("BookDocument/PMID") for el in root]
    assert order == [R.LOW_DOSE_SLE_PMID, R.REVIEW_PMID, R.BOOK_PMID, R.MARKUP_PMID]
    assert b'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN"' in body


def test_efetch_accepts_repeated_ids_and_only_unknown_ids_give_an_empty_set(server):
    answer = read(server, "efetch", db="pubmed", retmode="xml", id=[R.REVIEW_PMID, R.IL15_PMID])
    assert [str(a["MedlineCitation"]["PMID"]) for a in answer["PubmedArticle"]] == [R.REVIEW_PMID, R.IL15_PMID]
    empty = read(server, "efetch", db="pubmed", retmode="xml", id="11111111")
    assert empty == {"PubmedArticle": [], "PubmedBookArticle": []}


def test_the_review_parses_with_its_citation_facts(server):
    (article,) = read(server, "efetch", db="pubmed", retmode="xml", id=R.REVIEW_PMID)["PubmedArticle"]
    citation = article["MedlineCitation"]["Article"]
    assert citation["ArticleTitle"] == "Engineering IL-2 for immunotherapy of autoimmunity and cancer."
    assert citation["Journal"]["ISOAbbreviation"] == "Nat Rev Immunol"
    assert [(a["LastName"], a["Initials"]) for a in citation["AuthorList"]] == [
        ("Hernandez", "R"),
        ("Põder", "J"),
        ("LaPorte", "KM"),
        ("Malek", "TR"),
    ]
    ids = {str(i.attributes["IdType"]): str(i) for i in article["PubmedData"]["ArticleIdList"]}
    assert ids["doi"] == "10.1038/s41577-022-00680-w"
    history = {d.attributes["PubStatus"]: d for d in article["PubmedData"]["History"]}
    assert {k: history["entrez"][k] for k in ("Year", "Month", "Day", "Hour", "Minute")} == {
        "Year": "2022",
        "Month": "2",
        "Day": "26",
        "Hour": "6",
        "Minute": "0",
    }
    assert history["pubmed"]["Day"] == "26"
    references = [str(r["ArticleIdList"][0]) for r in article["PubmedData"]["ReferenceList"][0]["Reference"]]
    assert references == list(R.REVIEW_REFERENCES)


def test_inline_markup_arrives_as_marked_text(server, world):
    (article,) = Entrez.read(get(server, "efetch", db="pubmed", retmode="xml", id=R.MARKUP_PMID), escape=True)[
        "PubmedArticle"
    ]
    citation = article["MedlineCitation"]["Article"]
    source = world.get(R.MARKUP_PMID)
    assert citation["ArticleTitle"] == marked_text(source.title)
    assert "Foxp3<sup>+</sup>" in citation["ArticleTitle"] and "&amp; <i>Il2ra</i>" in citation["ArticleTitle"]
    (abstract,) = citation["Abstract"]["AbstractText"]
    assert "K<sub>D</sub> &gt; 100 nM" in abstract and "(p &lt; 0.01)" in abstract and "<i>in vivo</i>" in abstract
    assert plain_text(source.title).startswith("Selective expansion of Foxp3+ regulatory T cells")


def test_structured_abstract_keeps_labels_and_categories(server):
    (article,) = read(server, "efetch", db="pubmed", retmode="xml", id=R.LOW_DOSE_SLE_PMID)["PubmedArticle"]
    sections = article["MedlineCitation"]["Article"]["Abstract"]["AbstractText"]
    assert [(s.attributes["Label"], s.attributes["NlmCategory"]) for s in sections][-1] == (
        "CONCLUSIONS",
        "CONCLUSIONS",
    )
    assert len(sections) == 4
    names = [a["LastName"] for a in article["MedlineCitation"]["Article"]["AuthorList"]]
    assert names == ["Þórsdóttir", "Núñez", "Dubois", "Wójcik"]


def test_medline_date_no_abstract_collective_author_and_language(server):
    answer = read(
        server,
        "efetch",
        db="pubmed",
        retmode="xml",
        id=f"{R.MEDLINE_DATE_PMID},{R.NO_ABSTRACT_PMID},{R.COLLECTIVE_PMID},{R.GERMAN_PMID}",
    )
    medline_date, no_abstract, collective, german = (a["MedlineCitation"]["Article"] for a in answer["PubmedArticle"])
    assert medline_date["Journal"]["JournalIssue"]["PubDate"] == {"MedlineDate": "2021 Nov-Dec"}
    assert "Abstract" not in no_abstract
    assert collective["AuthorList"][2]["CollectiveName"] == "IL-2 Therapeutics in Autoimmunity (ITA) Consortium"
    assert german["Language"] == ["ger"]
    assert german["VernacularTitle"] == "Niedrig dosierte Interleukin-2-Therapie bei Autoimmunerkrankungen."


def test_book_article_parses_as_pubmed_book_article(server):
    answer = read(server, "efetch", db="pubmed", retmode="xml", id=R.BOOK_PMID)
    assert answer["PubmedArticle"] == []
    (book,) = answer["PubmedBookArticle"]
    document = book["BookDocument"]
    assert document["PMID"] == R.BOOK_PMID and document["ArticleTitle"] == "Aldesleukin"
    assert document["Book"]["BookTitle"] == "StatPearls"
    assert document["Book"]["Publisher"]["PublisherName"] == "StatPearls Publishing"
    assert document["Abstract"]["CopyrightInformation"].startswith("Copyright ©")
    assert {d.attributes["PubStatus"] for d in book["PubmedBookData"]["History"]} == {"pubmed", "entrez"}


def test_retraction_and_erratum_links(server):
    answer = read(
        server,
        "efetch",
        db="pubmed",
        retmode="xml",
        id=f"{R.RETRACTED_PMID},{R.RETRACTION_NOTICE_PMID},{R.TREG_MUTEIN_PMID}",
    )
    retracted, notice, treg = (a["MedlineCitation"] for a in answer["PubmedArticle"])
    assert "Retracted Publication" in retracted["Article"]["PublicationTypeList"]
    (link,) = retracted["CommentsCorrectionsList"]
    assert (link.attributes["RefType"], link["PMID"]) == ("RetractionIn", R.RETRACTION_NOTICE_PMID)
    assert link["RefSource"] == "Cell Rep. 2023 Oct;42(10):113190"
    assert notice["CommentsCorrectionsList"][0].attributes["RefType"] == "RetractionOf"
    assert treg["CommentsCorrectionsList"][0]["PMID"] == R.ERRATUM_PMID


def test_corrected_and_withdrawn_records_are_served_as_they_are_now(server, world):
    def retraction_source() -> str:
        (article,) = read(server, "efetch", db="pubmed", retmode="xml", id=R.RETRACTED_PMID)["PubmedArticle"]
        return article["MedlineCitation"]["CommentsCorrectionsList"][0]["RefSource"]

    assert retraction_source() == "Cell Rep. 2023 Oct;42(10):113190"
    world.add(replace(world.get(R.RETRACTION_NOTICE_PMID), volume="43"))
    assert retraction_source() == "Cell Rep. 2023 Oct;43(10):113190"
    world.remove(R.RETRACTION_NOTICE_PMID)
    assert retraction_source() == f"PMID {R.RETRACTION_NOTICE_PMID}"
    assert read(server, "efetch", db="pubmed", retmode="xml", id=R.RETRACTION_NOTICE_PMID)["PubmedArticle"] == []


def test_long_get_is_refused_with_414_but_the_same_post_is_answered(server, world):
    ids = world.generate_citing(R.REVIEW_PMID, 600, 40_000_000)
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(server, "efetch", db="pubmed", retmode="xml", id=",".join(ids))
    assert refused.value.code == 414
    body = post(server, "efetch", db="pubmed", retmode="xml", id=",".join(ids)).read()
    assert body.count(b"<PubmedArticle>") == 600
    assert [(r.method, r.status) for r in server.requests] == [("GET", 414), ("POST", 200)]


def test_url_limit_is_configurable(world):
    with EutilsStandIn(world, enforce_rate_limit=False, max_url_length=100) as stand_in:
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(stand_in, "esearch", db="pubmed", term="x" * 100)
        assert refused.value.code == 414


def test_ten_thousand_citing_records_fetch_quickly_in_batches_of_200(server, world):
    ids = world.generate_citing(R.REVIEW_PMID, 10_000, 40_000_000, entry_dates=[date(2024, 6, 1), date(2024, 6, 2)])
    started = time.perf_counter()
    fetched = 0
    for start in range(0, len(ids), 200):
        fetched += (
            post(server, "efetch", db="pubmed", retmode="xml", id=",".join(ids[start : start + 200]))
            .read()
            .count(b"<PubmedArticle>")
        )
    assert fetched == 10_000
    assert time.perf_counter() - started < 10
    batch = Entrez.read(post(server, "efetch", db="pubmed", retmode="xml", id=",".join(ids[:200])))
    assert len(batch["PubmedArticle"]) == 200


# ---------------------------------------------------------------------------- EPost, ESummary, EInfo


def test_epost_then_esummary_and_efetch_through_the_webenv(server):
    posted = Entrez.read(post(server, "epost", db="pubmed", id=",".join(R.REVIEW_CITED_BY) + ",abc"))
    assert posted["QueryKey"] == "1" and posted["WebEnv"].startswith("MCID_")
    assert posted["InvalidIdList"] == ["abc"]
    summaries = read(server, "esummary", db="pubmed", WebEnv=posted["WebEnv"], query_key="1", retmax=2)
    assert [s["Id"] for s in summaries] == list(R.REVIEW_CITED_BY[:2])


def test_esearch_over_a_posted_list_with_the_comment_correction_filters(server, world):
    """What il2watch's follow-up check sends: EPost, then ``#1 AND (hasretractionin OR …)`` on that WebEnv
    with usehistory=y, then EFetch of the result by its own query key."""
    posted = Entrez.read(post(server, "epost", db="pubmed", id=",".join(R.REVIEW_CITED_BY)))
    term = '#1 AND (hasretractionin OR haserratumin OR hasretractedandrepublishedin OR "retracted publication"[pt])'
    found = read(server, "esearch", db="pubmed", term=term, WebEnv=posted["WebEnv"], usehistory="y", retmax=100)
    assert sorted(found["IdList"]) == sorted([R.RETRACTED_PMID, R.TREG_MUTEIN_PMID]) and found["QueryKey"] == "2"
    assert found["WebEnv"] == posted["WebEnv"]
    only = read(server, "esearch", db="pubmed", term="#1 AND haserratumin", WebEnv=posted["WebEnv"])
    assert only["IdList"] == [R.TREG_MUTEIN_PMID]
    fetched = Entrez.read(
        get(server, "efetch", db="pubmed", retmode="xml", WebEnv=posted["WebEnv"], query_key="2", retmax=10)
    )
    assert {str(a["MedlineCitation"]["PMID"]) for a in fetched["PubmedArticle"]} == set(found["IdList"])
    # outside the posted list the filter finds the erratum's other paper too, and nothing about #2 is lost
    assert read(server, "esearch", db="pubmed", term="hasretractionin")["IdList"] == [R.RETRACTED_PMID]
    with pytest.raises(RuntimeError, match="Cannot retrieve history data. query_key: 1"):
        read(server, "esearch", db="pubmed", term="#1 AND haserratumin", WebEnv="MCID_nosuchsession")


def test_a_record_amended_between_phases_gains_its_notices_and_types(server, world):
    world.amend(
        R.LOW_DOSE_SLE_PMID,
        corrections=[("RetractedandRepublishedIn", "39990009")],
        pub_types=["Retracted Publication"],
    )
    (article,) = read(server, "efetch", db="pubmed", retmode="xml", id=R.LOW_DOSE_SLE_PMID)["PubmedArticle"]
    links = article["MedlineCitation"]["CommentsCorrectionsList"]
    assert [(c.attributes["RefType"], str(c["PMID"])) for c in links] == [("RetractedandRepublishedIn", "39990009")]
    assert "Retracted Publication" in article["MedlineCitation"]["Article"]["PublicationTypeList"]
    assert read(server, "esearch", db="pubmed", term="hasretractedandrepublishedin")["IdList"] == [R.LOW_DOSE_SLE_PMID]


def test_esummary_docsum_and_the_error_for_an_unknown_id(server):
    (summary,) = read(server, "esummary", db="pubmed", id=R.REVIEW_PMID)
    assert summary["AuthorList"] == ["Hernandez R", "Põder J", "LaPorte KM", "Malek TR"]
    assert summary["Source"] == "Nat Rev Immunol" and summary["PubDate"] == "2022 Oct"
    assert summary["SO"] == "2022 Oct;22(10):614-628" and summary["DOI"] == "10.1038/s41577-022-00680-w"
    assert int(summary["PmcRefCount"]) == len(R.REVIEW_CITED_BY)
    with pytest.raises(RuntimeError, match="UID=11111111: cannot get document summary"):
        read(server, "esummary", db="pubmed", id=f"{R.REVIEW_PMID},11111111")
    mixed = Entrez.read(get(server, "esummary", db="pubmed", id=f"{R.REVIEW_PMID},11111111"), ignore_errors=True)
    assert [s["Id"] for s in mixed if "Id" in s] == [R.REVIEW_PMID]


def test_einfo_lists_databases_and_describes_pubmed(server, world):
    assert "pubmed" in read(server, "einfo")["DbList"]
    (info,) = read(server, "einfo", db="pubmed")["DbInfo"]
    assert info["DbName"] == "pubmed" and info["Count"] == str(len(world))
    assert info["LastUpdate"] == "2024/05/30 06:00"
    with pytest.raises(RuntimeError, match="Invalid DB name"):
        read(server, "einfo", db="nosuchdb")


def test_json_is_refused_loudly(server):
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(server, "esearch", db="pubmed", term="lupus", retmode="json")
    assert refused.value.code == 400


def test_endpoints_are_found_under_any_prefix_and_unknown_files_are_404(server):
    host = server.base_url.split("/entrez/")[0]
    answer = Entrez.read(OPENER.open(f"{host}/some/other/prefix/esearch.fcgi?db=pubmed&term=lupus", timeout=5))
    assert answer["Count"] == "2"
    with pytest.raises(urllib.error.HTTPError) as missing:
        OPENER.open(f"{host}/entrez/eutils/ecitmatch.cgi", timeout=5)
    assert missing.value.code == 404


# ---------------------------------------------------------------------------- faults


@pytest.mark.parametrize("status", [500, 502, 503])
def test_injected_server_errors_carry_html(server, status):
    server.inject(status, "esearch")
    with pytest.raises(urllib.error.HTTPError) as failed:
        get(server, "esearch", db="pubmed", term="lupus")
    assert failed.value.code == status
    assert failed.value.headers["Content-Type"].startswith("text/html")
    assert read(server, "esearch", db="pubmed", term="lupus")["Count"] == "2"  # consumed: the next one is normal


def test_injected_429_has_ncbis_json_and_optional_retry_after(server):
    server.inject(429, retry_after=2)
    with pytest.raises(urllib.error.HTTPError) as limited:
        get(server, "elink", dbfrom="pubmed", id=R.REVIEW_PMID)
    assert limited.value.code == 429
    assert limited.value.headers["Retry-After"] == "2"
    assert json.loads(limited.value.read())["error"] == "API rate limit exceeded"
    server.inject(429)
    with pytest.raises(urllib.error.HTTPError) as limited_with_key:
        get(server, "esearch", db="pubmed", term="lupus", api_key="KEY")
    assert "Retry-After" not in limited_with_key.value.headers
    assert json.loads(limited_with_key.value.read()) == {
        "error": "API rate limit exceeded",
        "api-key": "KEY",
        "count": "11",
        "limit": "10",
    }


def test_truncated_answer_is_a_200_that_does_not_parse(server):
    server.inject("truncate", "efetch")
    answer = get(server, "efetch", db="pubmed", retmode="xml", id=R.REVIEW_PMID)
    assert answer.status == 200
    with pytest.raises(CorruptedXMLError):
        Entrez.read(answer)


def test_html_answer_is_a_200_that_is_not_xml(server):
    server.inject("html")
    answer = get(server, "esearch", db="pubmed", term="lupus")
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/html")
    with pytest.raises(NotXMLError):
        Entrez.read(answer)


def test_slow_answer_outlasts_a_short_timeout_but_arrives(server):
    server.inject("slow", delay=0.3)
    with pytest.raises(TimeoutError):
        get(server, "esearch", timeout=0.05, db="pubmed", term="lupus")
    server.inject("slow", delay=0.05)
    started = time.perf_counter()
    assert read(server, "esearch", db="pubmed", term="lupus")["Count"] == "2"
    assert time.perf_counter() - started >= 0.05


def test_reset_closes_the_connection_without_an_answer(server):
    server.inject("reset")
    with pytest.raises((ConnectionError, urllib.error.URLError, http.client.HTTPException)):
        get(server, "esearch", db="pubmed", term="lupus").read()
    assert server.requests[-1].status == 0 and server.requests[-1].fault == "reset"


def test_empty_answers_are_well_formed_and_hold_nothing(server):
    server.inject("empty", times=3)
    (link_answer,) = read(server, "elink", dbfrom="pubmed", id=R.REVIEW_PMID)
    assert link_answer["IdList"] == [R.REVIEW_PMID] and link_answer["LinkSetDb"] == []
    search = read(server, "esearch", db="pubmed", term="lupus")
    assert search["Count"] == "0" and "ErrorList" not in search
    assert read(server, "efetch", db="pubmed", retmode="xml", id=R.REVIEW_PMID) == {
        "PubmedArticle": [],
        "PubmedBookArticle": [],
    }


def test_error_answers_put_error_inside_the_usual_root(server):
    server.inject("error", "elink", message="Unable to obtain query #1")
    with pytest.raises(RuntimeError, match="Unable to obtain query #1"):
        read(server, "elink", dbfrom="pubmed", id=R.REVIEW_PMID)
    server.inject("error", "esearch")
    with pytest.raises(RuntimeError, match="Search Backend failed"):
        read(server, "esearch", db="pubmed", term="lupus")
    server.inject("error", "efetch", message="Empty id list - nothing todo")
    body = get(server, "efetch", db="pubmed", retmode="xml", id=R.REVIEW_PMID).read()
    assert b'<!DOCTYPE eEfetchResult PUBLIC "-//NLM//DTD efetch 20131226//EN"' in body
    root = ET.fromstring(body)
    assert root.tag == "eFetchResult" and root.findtext("ERROR") == "Empty id list - nothing todo"


def test_faults_are_used_in_order_by_endpoint_and_logged(server):
    server.inject(500, "esearch")
    server.inject("empty", times=2)
    assert server.pending_faults == [(500, "esearch", 1), ("empty", None, 2)]
    (link_answer,) = read(server, "elink", dbfrom="pubmed", id=R.REVIEW_PMID)  # skips the esearch-only fault
    assert link_answer["LinkSetDb"] == []
    with pytest.raises(urllib.error.HTTPError):
        get(server, "esearch", db="pubmed", term="lupus")
    assert read(server, "esearch", db="pubmed", term="lupus")["Count"] == "0"
    assert read(server, "esearch", db="pubmed", term="lupus")["Count"] == "2"
    assert server.pending_faults == []
    assert [(r.endpoint, r.status, r.fault) for r in server.requests] == [
        ("elink", 200, "empty"),
        ("esearch", 500, "500"),
        ("esearch", 200, "empty"),
        ("esearch", 200, ""),
    ]


def test_inject_rejects_unknown_faults_and_endpoints(server):
    with pytest.raises(ValueError):
        server.inject("explode")
    with pytest.raises(ValueError):
        server.inject(500, "ecitmatch")
    with pytest.raises(ValueError):
        server.inject(200)


# ---------------------------------------------------------------------------- rate limit and log


def test_fourth_request_in_a_second_gets_ncbis_429(world):
    clock = ManualClock()
    with EutilsStandIn(world, clock=clock) as stand_in:
        for _ in range(3):
            read(stand_in, "einfo")
        with pytest.raises(urllib.error.HTTPError) as limited:
            get(stand_in, "einfo")
        assert limited.value.code == 429
        assert json.loads(limited.value.read()) == {
            "error": "API rate limit exceeded",
            "api-key": "127.0.0.1",
            "count": "4",
            "limit": "3",
        }
        assert stand_in.rate_violations == 1
        clock.advance(1.0)
        assert read(stand_in, "einfo")["DbList"]
        assert [r.status for r in stand_in.requests] == [200, 200, 200, 429, 200]


def test_api_key_allows_ten_per_second(world):
    clock = ManualClock()
    with EutilsStandIn(world, clock=clock) as stand_in:
        for _ in range(10):
            read(stand_in, "einfo", api_key="KEY")
        with pytest.raises(urllib.error.HTTPError) as limited:
            get(stand_in, "einfo", api_key="KEY")
        assert json.loads(limited.value.read())["limit"] == "10"
        clock.advance(0.5)
        with pytest.raises(urllib.error.HTTPError):
            get(stand_in, "einfo", api_key="KEY")
        assert stand_in.rate_violations == 2


def test_rate_limit_can_be_switched_off_and_still_counts_violations(world):
    with EutilsStandIn(world, clock=ManualClock(), enforce_rate_limit=False) as stand_in:
        statuses = [get(stand_in, "einfo").status for _ in range(5)]
        assert statuses == [200] * 5
        assert stand_in.rate_violations == 2


def test_request_log_keeps_params_and_times(world):
    clock = ManualClock()
    with EutilsStandIn(world, clock=clock, enforce_rate_limit=False) as stand_in:
        get(stand_in, "esearch", db="pubmed", term="lupus", tool="il2watch", email="lab@example.org", api_key="K")
        clock.advance(0.4)
        post(stand_in, "efetch", db="pubmed", id=R.REVIEW_PMID, tool="il2watch")
        first, second = stand_in.requests
    assert (first.endpoint, first.method, first.status, first.time) == ("esearch", "GET", 200, 1000.0)
    assert first.params == {
        "db": ["pubmed"],
        "term": ["lupus"],
        "tool": ["il2watch"],
        "email": ["lab@example.org"],
        "api_key": ["K"],
    }
    assert (second.endpoint, second.method, second.time) == ("efetch", "POST", 1000.4)
    assert second.params["id"] == [R.REVIEW_PMID]


def test_max_requests_in_any_second_slides_its_window():
    def entries(*times: float) -> list[LoggedRequest]:
        return [LoggedRequest(t, "esearch", "GET", {}, 200) for t in times]

    assert max_requests_in_any_second([]) == 0
    assert max_requests_in_any_second(entries(0.0, 0.34, 0.67, 1.0, 1.34)) == 3
    assert max_requests_in_any_second(entries(0.0, 0.9, 0.95, 0.99, 5.0)) == 4
    assert max_requests_in_any_second(entries(0.0, 1.0, 2.0, 3.0)) == 1


def test_world_changes_while_requests_run_concurrently(server, world):
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            for _ in range(10):
                (answer,) = read(server, "elink", dbfrom="pubmed", id=R.REVIEW_PMID, linkname="pubmed_pubmed_citedin")
                ids = link_ids(answer["LinkSetDb"][0])
                assert ids == sorted(ids, key=int, reverse=True)
        except BaseException as error:  # noqa: BLE001 (reported to the test thread)
            errors.append(error)

    pollers = [threading.Thread(target=poll) for _ in range(3)]
    for thread in pollers:
        thread.start()
    for batch in range(5):
        world.generate_citing(R.REVIEW_PMID, 100, 41_000_000 + batch * 100)
    for thread in pollers:
        thread.join()
    assert errors == []
    assert len(world.citing(R.REVIEW_PMID)) == len(R.REVIEW_CITED_BY) + 500


# ---------------------------------------------------------------------------- command line


def test_module_serves_the_records_world_until_interrupted():
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.stand_ins.eutils", "--port", "0"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/entrez/eutils/")
        answer = Entrez.read(OPENER.open(base_url + "esummary.fcgi?db=pubmed&id=" + R.REVIEW_PMID, timeout=5))
        assert answer[0]["Title"] == "Engineering IL-2 for immunotherapy of autoimmunity and cancer."
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0
