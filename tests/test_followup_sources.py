"""Follow-ups on posted papers PubMed does not index: a preprint only Europe PMC lists, withdrawn later, and
the journal version it becomes (linked by Europe PMC, or recognised by its title and authors), against
the stand-ins of every index (tests/test_sources.py's lab)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

from il2watch.service import check_followups
from il2watch.sources.openalex import build as build_openalex
from tests.data import citations as C
from tests.data.records import REVIEW_PMID
from tests.stand_ins.openalex import DEFAULT_KEY
from tests.stand_ins.pubmed_world import Author, record
from tests.test_sources import (
    CHANNEL,
    LATER,
    MUCH_LATER,
    PREPRINT_EPMC_KEY,
    PREPRINT_LATER_KEY,
    PREPRINT_SHARED_KEY,
    key_of,
    lab,  # noqa: F401 (the fixture)
)

SAVER = "U0SAVER01"


def posted(lab):  # noqa: F811 (the fixture's name)
    lab.poll()
    C.add_new_citations(lab.literature)
    lab.poll(LATER)
    assert lab.papers_posted()[PREPRINT_EPMC_KEY] == 1
    return lab.post_of(PREPRINT_EPMC_KEY)


def followups(lab):  # noqa: F811
    return lab.slack.posts_with_metadata("il2watch_followup", CHANNEL)


def check(lab):  # noqa: F811
    return check_followups(lab.settings(), out=lambda _: None, now=MUCH_LATER)


def test_a_preprint_europe_pmc_marks_withdrawn_is_told_loudly_on_its_post(lab):  # noqa: F811
    post = posted(lab)
    with lab.library() as library:
        library.save_for(SAVER, PREPRINT_EPMC_KEY)
    assert check(lab).new == [], "nothing has happened to it yet"
    lab.literature.add_work(replace(C.PREPRINT_EPMC, withdrawn=True, retracted=True))  # OpenAlex says so too
    lab.epmc.clear_requests()

    report = check(lab)

    assert report.new == [f"withdrawn of DOI {C.PREPRINT_EPMC.doi}"]
    (reply,) = followups(lab)
    assert reply.thread_ts == post.ts and reply.reply_broadcast
    assert "🚨 *Withdrawn*" in json.dumps(reply.blocks, ensure_ascii=False)
    assert "🚨 *Withdrawn*" in post.blocks[0]["text"]["text"]
    assert post.metadata["event_payload"]["followups"][0]["paper"] == PREPRINT_EPMC_KEY
    assert len(lab.slack.posts_with_metadata("il2watch_followup_dm")) == 1
    searches = [r for r in lab.epmc.requests if r.path.endswith("search")]
    assert len(searches) == 1, "posted preprints are asked about fifty at a time"
    assert check(lab).new == [] and len(followups(lab)) == 1


def test_a_journal_version_of_a_preprint_only_europe_pmc_lists_is_recognised_and_not_posted(lab):  # noqa: F811
    post = posted(lab)
    journal = record(
        "39500011",
        title="A CD25-biased interleukin 2 mutein restores regulatory T-cells in a humanised lupus model.",
        journal_iso="Nat Commun",
        entry_date=date(2024, 7, 1),
        authors=[Author("Okafor", "Amara", "A"), Author("Ng", "Wei", "W"), Author("Tanaka", "Hiroshi", "H")],
    )
    lab.literature.world.add(journal)
    lab.literature.cite(journal.pmid, REVIEW_PMID)
    lab.poll(MUCH_LATER)
    assert lab.papers_posted()[f"pmid:{journal.pmid}"] == 0, "the journal version is not posted as a new paper"
    (reply,) = followups(lab)
    assert reply.thread_ts == post.ts and not reply.reply_broadcast
    assert "📰 *Published in Nat Commun, 2024*" in post.blocks[0]["text"]["text"]


def test_europe_pmc_linking_a_preprint_to_its_journal_version_is_told_once(lab):  # noqa: F811
    post = posted(lab)
    lab.literature.add_work(replace(C.PREPRINT_EPMC, journal_version="39500012"))
    report = check(lab)
    assert report.new == [f"published of DOI {C.PREPRINT_EPMC.doi}, notice PMID 39500012"]
    (reply,) = followups(lab)
    assert reply.thread_ts == post.ts
    assert "https://pubmed.ncbi.nlm.nih.gov/39500012/" in json.dumps(reply.blocks)
    with lab.library() as library:
        assert library.claimed("il2-papers", ["pmid:39500012"]) == {"pmid:39500012"}, "not posted when it comes"
    assert check(lab).new == []


def test_a_posted_preprint_that_gains_a_pmid_with_its_journal_version_linked_is_told_published_once(lab):  # noqa: F811
    """Discovery re-fetches the preprint once PubMed indexes it, and stores the record that already links its
    journal version: that is news, because the preprint was posted without it."""
    lab.poll()
    C.add_new_citations(lab.literature)
    lab.poll(LATER)
    post = lab.post_of(PREPRINT_LATER_KEY)
    journal = record(
        "39500021",
        title="Partial IL-2 agonists preserve stem-like CD8 T cells",
        journal_iso="Sci Immunol",
        entry_date=date(2024, 7, 3),
        corrections=[("UpdateOf", C.PREPRINT_LATER_PMID)],
    )
    lab.literature.world.add(journal)
    C.index_preprint_in_pubmed(lab.literature)
    lab.literature.world.amend(C.PREPRINT_LATER_PMID, corrections=[("UpdateIn", journal.pmid)])
    lab.poll(MUCH_LATER)
    with lab.library() as library:
        stored = library.paper(PREPRINT_LATER_KEY)
        assert stored is not None and ("UpdateIn", journal.pmid) in stored.corrections, "the stored record is fresh"

    report = check(lab)

    assert report.new == [f"published of DOI {C.PREPRINT_LATER.doi}, notice PMID {journal.pmid}"]
    (reply,) = followups(lab)
    assert reply.thread_ts == post.ts and not reply.reply_broadcast
    assert "📰 *Published" in json.dumps(reply.blocks, ensure_ascii=False)
    assert "📰 *Published" in post.blocks[0]["text"]["text"]
    assert check(lab).new == [] and len(followups(lab)) == 1


def test_a_paper_without_a_pmid_that_openalex_marks_retracted_is_told_loudly_once(lab):  # noqa: F811
    """Sources pubmed,openalex: Europe PMC is never asked; OpenAlex is asked about every posted paper without
    a PMID by DOI, fifty to a request, for the few fields the check reads."""
    sources = {"IL2WATCH_SOURCES": "pubmed,openalex"}
    lab.poll(**sources)
    C.add_new_citations(lab.literature)
    lab.poll(LATER, **sources)
    post = lab.post_of(PREPRINT_SHARED_KEY)
    settings = lab.settings(**sources)
    assert check_followups(settings, out=lambda _: None, now=MUCH_LATER).new == [], "nothing has happened yet"
    lab.literature.add_work(replace(C.PREPRINT_SHARED, retracted=True))
    lab.openalex.clear_requests()
    lab.epmc.clear_requests()

    report = check_followups(settings, out=lambda _: None, now=MUCH_LATER)

    assert report.new == [f"withdrawn of DOI {C.PREPRINT_SHARED.doi}"]
    (reply,) = followups(lab)
    assert reply.thread_ts == post.ts and reply.reply_broadcast
    assert "🚨 *Withdrawn*" in json.dumps(reply.blocks, ensure_ascii=False)
    assert "🚨 *Withdrawn*" in post.blocks[0]["text"]["text"]
    (asked,) = lab.openalex.requests
    assert asked.path == "works" and asked.params["select"] == ["id,doi,type,is_retracted"]
    assert asked.params["api_key"] == [DEFAULT_KEY] and asked.params["mailto"]
    dois = asked.params["filter"][0].removeprefix("doi:").split("|")
    assert sorted(dois) == sorted([C.PREPRINT_SHARED.doi, C.OPENALEX_ARTICLE.doi]), "every posted paper without a PMID"
    assert lab.epmc.requests == [], "Europe PMC is not among the sources"
    assert check_followups(settings, out=lambda _: None, now=MUCH_LATER).new == [] and len(followups(lab)) == 1


def test_openalex_is_asked_about_fifty_dois_a_request(lab):  # noqa: F811
    C.add_new_citations(lab.literature)
    dois = [f"10.5555/made-up.{n}" for n in range(119)] + [C.PREPRINT_SHARED.doi.upper()]
    works = build_openalex(lab.settings(), None).works_by_doi(dois)
    assert [w["doi"] for w in works] == [f"https://doi.org/{C.PREPRINT_SHARED.doi}"]
    asked = [len(r.params["filter"][0].split("|")) for r in lab.openalex.requests]
    assert asked == [50, 50, 20] and {r.status for r in lab.openalex.requests} == {200}


def test_an_odd_europe_pmc_record_is_one_line_and_pubmed_s_retraction_is_still_told_once(lab):  # noqa: F811
    """Europe PMC serves the posted preprint's record with a list where an object belongs and a text where
    a list belongs: that record is read without them, named in one line, and PubMed's part is recorded."""
    posted(lab)
    article = lab.post_of(key_of(C.ALL_FOUR_PMID))
    world = lab.literature.world
    world.add(
        record(
            "39990101",
            title=f"Retraction notice to: {world.get(C.ALL_FOUR_PMID).title}",
            entry_date=date(2024, 9, 1),
            pub_types=["Retraction of Publication"],
            corrections=[("RetractionOf", C.ALL_FOUR_PMID)],
            abstract=[],
        )
    )
    world.amend(C.ALL_FOUR_PMID, corrections=[("RetractionIn", "39990101")], pub_types=["Retracted Publication"])
    lab.epmc.reshaped[C.PREPRINT_EPMC.ppr] = {"commentCorrectionList": ["Retraction in"], "pubTypeList": "Preprint"}

    report = check(lab)

    assert report.status == "ok" and report.new == [f"retraction of PMID {C.ALL_FOUR_PMID}, notice PMID 39990101"]
    (reply,) = followups(lab)
    assert reply.thread_ts == article.ts and reply.reply_broadcast
    assert "🚨 *Retracted*" in json.dumps(reply.blocks, ensure_ascii=False)
    odd = [p for p in report.problems if "Europe PMC" in p]
    assert odd == [
        f"Europe PMC's record {C.PREPRINT_EPMC.ppr}: pubTypeList, commentCorrectionList of an unexpected type "
        "(read without them)"
    ]
    assert odd[0] in report.line()
    again = check(lab)
    assert again.new == [] and len(followups(lab)) == 1, "told once"
