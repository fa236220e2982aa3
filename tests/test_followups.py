"""What counts as a follow-up, and which record is a preprint's journal version: the pure rules, and the
marks Europe PMC and OpenAlex put on records (read from their stand-ins' answers)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import replace
from datetime import date

import pytest

from il2watch.followups import (
    KINDS,
    PUBMED_FILTERS,
    Followup,
    europepmc_followups,
    europepmc_versions,
    followups_in,
    is_retracted,
    journal_version_of,
    new_followups,
    normalised_title,
    notices_in,
    openalex_followups,
    pubmed_versions,
    short_source,
)
from il2watch.model import Author, Paper
from tests.data.citations import PREPRINT_LATER, build_literature
from tests.stand_ins.europepmc import EuropePmcStandIn
from tests.stand_ins.literature import Work
from tests.stand_ins.openalex import DEFAULT_KEY, OpenAlexStandIn
from tests.stand_ins.pubmed_world import Author as RecordAuthor
from tests.stand_ins.pubmed_world import record

PREPRINT = Paper(
    pmid="38496577",
    title="An IL-2R<i>β</i>-biased mutein tethered to a CD25 nanobody expands human regulatory T cells.",
    authors=(Author("Kovács", "Bence", "B"), Author("Osei", "Kwame", "K"), Author("Mensah", "Akosua", "A")),
    journal="bioRxiv : the preprint server for biology",
    journal_iso="bioRxiv",
    pub_year=2024,
    entry_date="2024-03-19",
    doi="10.1101/2024.03.11.584512",
    pub_types=("Preprint",),
)
ARTICLE = Paper(
    pmid="39500001",
    title="An IL-2R beta biased mutein, tethered to a CD25 nanobody, expands human regulatory T-cells",
    authors=(Author("Kovacs", "Bence", "B"), Author("Mensah", "Akosua", "A")),
    journal="Cell reports",
    journal_iso="Cell Rep",
    pub_year=2025,
    entry_date="2025-09-02",
    doi="10.5555/celrep.2025.1",
    pub_types=("Journal Article",),
)


# ---------------------------------------------------------------- what PubMed says


def test_every_notice_link_and_the_retracted_type_are_follow_ups():
    paper = Paper(
        pmid="1",
        title="t",
        pub_types=("Journal Article", "Retracted Publication"),
        corrections=(
            ("RetractionIn", "11"),
            ("PartialRetractionIn", "12"),
            ("RetractedandRepublishedIn", "13"),
            ("ExpressionOfConcernIn", "14"),
            ("ErratumIn", "15"),
            ("CorrectedandRepublishedIn", "16"),
            ("UpdateIn", "17"),
            ("CommentIn", "18"),
            ("Cites", "19"),
        ),
    )
    found = {(f.kind, f.notice) for f in followups_in(paper, {("RetractionIn", "11"): "Cell Rep. 2027;1:2"})}
    assert found == {
        ("retraction", "pmid:11"),
        ("partial-retraction", "pmid:12"),
        ("retracted-republished", "pmid:13"),
        ("concern", "pmid:14"),
        ("erratum", "pmid:15"),
        ("corrected-republished", "pmid:16"),
        ("update", "pmid:17"),
    }
    assert followups_in(paper, {("RetractionIn", "11"): "Cell Rep. 2027;1:2"})[0].source == "Cell Rep. 2027;1:2"


def test_a_retracted_type_without_its_notice_is_one_retraction_and_so_is_its_notice_linked_later():
    marked = Paper(pmid="1", title="t", pub_types=("Retracted Publication",))
    (retraction,) = followups_in(marked)
    assert (retraction.kind, retraction.notice) == ("retraction", "")
    linked = replace(marked, corrections=(("RetractionIn", "9"),))
    assert new_followups(followups_in(linked), {("retraction", "")}) == []
    assert new_followups(followups_in(marked), {("retraction", "pmid:9")}) == []


@pytest.mark.parametrize(
    "link, kind, retracted",
    [
        ("PartialRetractionIn", "partial-retraction", False),
        ("RetractedandRepublishedIn", "retracted-republished", True),
        ("RetractionIn", "retraction", True),
    ],
)
def test_the_retracted_type_beside_a_linked_retraction_of_any_kind_is_that_one_follow_up(link, kind, retracted):
    """NLM types papers retracted in whole or in part "Retracted Publication": the link says which it was."""
    paper = Paper(
        pmid="1", title="t", pub_types=("Journal Article", "Retracted Publication"), corrections=((link, "9"),)
    )
    assert [(f.kind, f.notice) for f in followups_in(paper)] == [(kind, "pmid:9")]
    assert is_retracted(paper) is retracted


def test_an_expression_of_concern_then_a_retraction_are_each_told_and_a_second_erratum_too():
    known = {("concern", "pmid:5"), ("erratum", "pmid:6")}
    later = Paper(
        pmid="1",
        title="t",
        corrections=(("ExpressionOfConcernIn", "5"), ("RetractionIn", "7"), ("ErratumIn", "6"), ("ErratumIn", "8")),
    )
    assert {(f.kind, f.notice) for f in new_followups(followups_in(later), known)} == {
        ("retraction", "pmid:7"),
        ("erratum", "pmid:8"),
    }


def test_an_update_of_a_preprint_is_its_journal_version():
    preprint = replace(PREPRINT, corrections=(("UpdateIn", "39500001"),))
    assert [(f.kind, f.notice) for f in followups_in(preprint)] == [("published", "pmid:39500001")]
    assert followups_in(preprint)[0].paper == "pmid:38496577", "a follow-up names its paper by its key"
    article = replace(ARTICLE, corrections=(("UpdateIn", "39500002"),))
    assert [f.kind for f in followups_in(article)] == ["update"]


def test_a_notice_says_which_paper_it_is_about():
    notice = Paper(
        pmid="39999001",
        title="Retraction notice",
        journal_iso="J Immunol",
        pub_date="2027 Mar",
        volume="218",
        issue="3",
        pages="1-2",
        corrections=(("RetractionOf", "36598702"), ("CommentOn", "1")),
    )
    ((target, followup),) = notices_in(notice)
    assert target == "36598702"
    assert followup == Followup("pmid:36598702", "retraction", "pmid:39999001", "J Immunol. 2027 Mar;218(3):1-2")
    assert short_source(followup.source) == "J Immunol, 2027"


def test_the_same_follow_up_has_the_same_key_and_every_kind_is_known():
    assert Followup("1", "retraction", "2").key == Followup("1", "retraction", "2", "other source").key
    assert Followup("1", "retraction", "2").key != Followup("1", "erratum", "2").key
    assert all(KINDS[name].name == name for name in KINDS)
    assert {name for name, kind in KINDS.items() if kind.loud} == {
        "retraction",
        "withdrawn",
        "retracted-republished",
        "partial-retraction",
    }


def test_the_pubmed_filters_use_pubmeds_spelling_of_each():
    for name in (
        "hasretractionin",
        "haspartialretractionin",
        "haserratumin",
        "hasexpressionofconcernin",
        "hasupdatein",
        "hascorrectedrepublishedin",
        "hasretractedandrepublishedin",
        '"retracted publication"[pt]',
    ):
        assert name in PUBMED_FILTERS


# ---------------------------------------------------------------- a preprint's journal version


@pytest.mark.parametrize(
    "one, other",
    [
        ("IL-2Rβ signalling", "IL-2R beta signalling"),
        ("IL-2Rβ signalling", "IL-2Rbeta Signalling."),
        ("<i>In vivo</i> expansion of T<sub>reg</sub> cells", "In vivo expansion of Treg cells"),
        ("TNF-α and IFN-γ: a story", "TNF-alpha and IFN-gamma - a story"),
        ("Régulatory T cells", "regulatory T-cells"),
        ("µ-opioid receptors", "mu-opioid receptors"),
    ],
)
def test_titles_compare_without_case_punctuation_markup_accents_or_greek_spelling(one, other):
    assert normalised_title(one) == normalised_title(other)


def test_titles_that_differ_in_words_do_not_compare_equal():
    assert normalised_title("IL-2Rβ signalling") != normalised_title("IL-2Rγ signalling")
    assert normalised_title("IL-2 in lupus") != normalised_title("IL-2 in lupus nephritis")


def test_same_title_first_and_last_author_within_two_years_is_the_journal_version():
    assert journal_version_of(ARTICLE, PREPRINT) == "matched"


@pytest.mark.parametrize(
    "change",
    [
        {"authors": (Author("Kovacs", "Bence", "B"), Author("Okafor", "Chinedu", "C"))},  # another last author
        {"authors": (Author("Varga", "Zsófia", "Z"), Author("Mensah", "Akosua", "A"))},  # another first author
        {"authors": (Author("Kovacs", "Dora", "D"), Author("Mensah", "Akosua", "A"))},  # another initial
        {"entry_date": "2026-04-01", "pub_year": 2026},  # more than two years later
        {"title": "An IL-2R beta biased mutein expands human regulatory T cells in lupus"},
        {"pub_types": ("Preprint",)},  # another preprint, not a journal version
        {"authors": ()},
    ],
)
def test_anything_else_is_not_the_journal_version(change):
    assert journal_version_of(replace(ARTICLE, **change), PREPRINT) == ""


def test_a_link_either_way_makes_the_journal_version_whatever_its_title():
    renamed = replace(
        ARTICLE, title="Nanobody-tethered IL-2 for human Tregs", corrections=(("UpdateOf", PREPRINT.pmid),)
    )
    assert journal_version_of(renamed, PREPRINT) == "linked"
    assert pubmed_versions(renamed).preprints == {f"pmid:{PREPRINT.pmid}"}
    told = replace(PREPRINT, corrections=(("UpdateIn", ARTICLE.pmid),))
    assert journal_version_of(replace(ARTICLE, title="Another title"), told) == "linked"
    assert journal_version_of(replace(ARTICLE, title="Another title"), PREPRINT) == ""


def test_any_paper_will_do_a_preprint_without_a_pmid_linked_by_europe_pmc():
    preprint = replace(PREPRINT, pmid="", doi="10.1101/2024.06.25.600123")
    links = europepmc_versions(
        {
            "id": "PPR810003",
            "source": "PPR",
            "doi": "10.1101/2024.06.25.600123",
            "commentCorrectionList": {
                "commentCorrection": [{"id": "39500001", "source": "MED", "type": "Preprint of"}]
            },
        }
    )
    assert links.ids == {"doi:10.1101/2024.06.25.600123", "ppr:PPR810003"}
    assert links.published_as == {"pmid:39500001"}
    renamed = replace(ARTICLE, title="Another title")
    assert journal_version_of(renamed, preprint, preprint_links=links) == "linked"
    assert journal_version_of(renamed, preprint) == ""


# ---------------------------------------------------------------- Europe PMC and OpenAlex, from their stand-ins


def fetch_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def europepmc_core(server: EuropePmcStandIn, ext_id: str, source: str) -> dict:
    query = urllib.parse.urlencode(
        {"query": f"EXT_ID:{ext_id} AND SRC:{source}", "resultType": "core", "format": "json", "pageSize": "5"}
    )
    (result,) = fetch_json(f"{server.base_url}search?{query}")["resultList"]["result"]
    return result


WITHDRAWN = Work(
    key="withdrawn",
    title="A withdrawn IL-2 preprint",
    authors=(("Ana", "Costa"),),
    doi="10.1101/2024.07.01.000001",
    ppr="PPR820001",
    withdrawn=True,
    retracted=True,
)


def test_a_preprint_europe_pmc_marks_withdrawn_is_withdrawn_and_one_it_does_not_is_not():
    literature = build_literature()
    literature.add_work(WITHDRAWN)
    literature.add_work(PREPRINT_LATER)
    with EuropePmcStandIn(literature) as server:
        withdrawn = europepmc_core(server, "PPR820001", "PPR")
        standing = europepmc_core(server, PREPRINT_LATER.ppr, "PPR")
    assert [(f.kind, f.notice) for f in europepmc_followups(withdrawn, "ppr:PPR820001")] == [("withdrawn", "")]
    assert "Withdrawn" in europepmc_followups(withdrawn, "ppr:PPR820001")[0].source
    assert europepmc_followups(standing, f"ppr:{PREPRINT_LATER.ppr}") == []


def test_europe_pmc_links_a_preprint_and_its_journal_version_both_ways():
    literature = build_literature()
    literature.world.add(
        record(
            "39500001",
            title="Partial IL-2 agonists keep CD8 T cells stem-like",
            entry_date=date(2025, 1, 8),
            authors=[RecordAuthor("Raman", "Priya", "P"), RecordAuthor("Berg", "Jonas", "J")],
        )
    )
    literature.add_work(replace(PREPRINT_LATER, journal_version="39500001"))
    with EuropePmcStandIn(literature) as server:
        preprint = europepmc_core(server, PREPRINT_LATER.ppr, "PPR")
        article = europepmc_core(server, "39500001", "MED")
    assert europepmc_versions(preprint).published_as == {"pmid:39500001"}
    assert europepmc_versions(article).preprints == {f"ppr:{PREPRINT_LATER.ppr}"}
    assert europepmc_versions(article).ids == {"pmid:39500001", "doi:10.5555/standin.39500001"}


def test_openalex_is_retracted_is_a_retraction_or_for_a_preprint_a_withdrawal():
    literature = build_literature()
    literature.add_work(WITHDRAWN)
    literature.add_work(PREPRINT_LATER)
    with OpenAlexStandIn(literature) as server:
        works = {
            key: fetch_json(f"{server.base_url}works/doi:{doi}?api_key={DEFAULT_KEY}")
            for key, doi in (("withdrawn", WITHDRAWN.doi), ("standing", PREPRINT_LATER.doi))
        }
        retracted_article = fetch_json(f"{server.base_url}works/pmid:36221045?api_key={DEFAULT_KEY}")
    assert [f.kind for f in openalex_followups(works["withdrawn"], "doi:x")] == ["withdrawn"]
    assert openalex_followups(works["standing"], "doi:y") == []
    assert [f.kind for f in openalex_followups(retracted_article, "36221045")] == ["retraction"]
