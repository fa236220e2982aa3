"""Discovery's merging of what several sources listed into papers (``il2watch.discovery``): one paper per
identity with every source on its reason, never two PMIDs in one paper, an OpenAlex id alone tying nothing,
final keys chosen once the records are in, and a paper the library already holds keeping its key. Works are
built by hand as each source's ``find`` describes them (``Found``); the library is a real SQLite file, and the
records of works without a PMID come inline (OpenAlex) or from the Europe PMC stand-in over HTTP."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date

import pytest

from il2watch.config import Settings
from il2watch.discovery import WatchFindings, _fetch, _Fetches, _merge, _reasons, _rekey
from il2watch.identity import Ids
from il2watch.library import Library
from il2watch.model import Paper, Reason, Watch
from il2watch.sources import Found, Source, make_source
from tests.stand_ins.europepmc import EuropePmcStandIn
from tests.stand_ins.literature import Literature, Work
from tests.stand_ins.pubmed_world import PubMedWorld
from tests.support import ncbi_client

REVIEW = Watch(id="review", pmid="35217787", label="the review")
TODAY = date(2026, 3, 10)
STAMP = "2026-03-10T12:00:00+00:00"
PREPRINT_DOI = "10.1101/2026.02.01.123456"
ARTICLE_DOI = "10.1038/s41590-026-01234-5"
PREPRINT = Work(
    key="preprint",
    title="IL-2 muteins that spare Tregs",
    doi=PREPRINT_DOI,
    ppr="PPR800001",
    doi_as_written=(("europepmc", PREPRINT_DOI.upper()),),  # Europe PMC's record writes it in capitals
)
UNUSED_NCBI = "http://127.0.0.1:9/"  # nothing merged here has a PMID: PubMed is never asked for a record


@pytest.fixture
def library(tmp_path) -> Iterator[Library]:
    with Library(tmp_path / "library.db") as opened:
        yield opened


@pytest.fixture
def europepmc() -> Iterator[Source]:
    """il2watch's Europe PMC source, answered by the stand-in, which holds one preprint (PPR800001, its DOI)."""
    literature = Literature(PubMedWorld())
    literature.add_work(PREPRINT)
    with EuropePmcStandIn(literature) as stand_in:
        settings = Settings(europepmc_url=stand_in.base_url, http_backoff=0.01)
        yield make_source(settings, "europepmc", ncbi_client(UNUSED_NCBI))


def listed(library: Library, found: Sequence[Found]) -> dict[str, list[Reason]]:
    """This poll's papers by key, each with its reasons (one per watch and kind, with every source)."""
    return {key: list(_reasons(paper).values()) for key, paper in _merge(library, found).items()}


def settled(
    library: Library, found: Sequence[Found], sources: Sequence[Source] = ()
) -> tuple[dict[str, Paper], WatchFindings]:
    """The papers under their final keys and the watch's findings once the records are in: merged by
    identity, new reasons told from known ones, the records fetched and keyed, the findings keyed again."""
    merged = _merge(library, found)
    wf = WatchFindings(library.watch_state(REVIEW), horizon=TODAY.isoformat())
    known = library.linked(REVIEW.id)
    for key, paper in merged.items():
        wf.linked[key] = list(_reasons(paper).values())
        fresh = [r for r in wf.linked[key] if (key, r.kind) not in known]
        if fresh:
            wf.new[key] = fresh
    wanted = {key: paper for key, paper in merged.items() if not paper.stored}
    with _Fetches(ncbi_client(UNUSED_NCBI)) as fetches:
        papers, _, _, _ = _fetch(library, sources, wanted, [wf], STAMP, TODAY, None, fetches)
    papers = _rekey(library, papers, [wf])
    return papers, wf


def sources(reasons: Sequence[Reason], kind: str = "cites") -> tuple[str, ...]:
    [reason] = [r for r in reasons if r.kind == kind]
    return reason.sources


def store(library: Library, paper: Paper, *reasons: Reason) -> None:
    library.save_papers([paper], now=STAMP)
    library.save_reasons([(paper.key, r) for r in reasons], now=STAMP, run_id=None)


def by_ppr(ppr: str = PREPRINT.ppr) -> Found:
    """Europe PMC's citation list names a preprint by its PPR id only; its record comes from ``records``."""
    return Found(Ids(ppr=ppr), "review", "cites", "europepmc", category="preprint")


def by_openalex(doi_url: str, openalex: str) -> Found:
    """OpenAlex names a work by its DOI (as a URL) and W id and gives its record inline."""
    ids = Ids.of(doi=doi_url, openalex=openalex)
    record = Paper(
        pmid="", title="IL-2 muteins that spare Tregs", doi=ids.doi, openalex=openalex, pub_types=("Preprint",)
    )
    return Found(ids, "review", "cites", "openalex", indexed="2026-02-03", record=record)


# ---------------------------------------------------------------- one paper per identity


def test_works_every_source_lists_under_shared_ids_are_one_paper_with_every_source_on_its_reason(library):
    found = [
        Found(Ids(pmid="40000001"), "review", "cites", "pubmed"),
        Found(Ids(pmid="40000001"), "review", "cites", "icite"),
        Found(Ids(pmcid="PMC11111111"), "review", "cites", "europepmc"),  # Europe PMC lists it by its PMCID
        Found(
            Ids(pmid="40000001", doi=ARTICLE_DOI, pmcid="PMC11111111", openalex="W4400000001"),
            "review",
            "cites",
            "openalex",
        ),
        Found(Ids(pmid="40000001"), "review", "similar", "pubmed", score=41234567, rank=4),
    ]
    papers = listed(library, found)

    assert list(papers) == ["pmid:40000001"]
    reasons = papers["pmid:40000001"]
    assert sources(reasons) == ("pubmed", "icite", "europepmc", "openalex")
    [alike] = [r for r in reasons if r.kind == "similar"]
    assert (alike.sources, alike.score, alike.rank) == (("pubmed",), 41234567, 4)


def test_two_pmids_are_two_papers_even_when_they_share_a_doi(library):
    found = [
        Found(Ids(pmid="40000001", doi=ARTICLE_DOI), "review", "cites", "openalex"),
        Found(Ids(pmid="40000002", doi=ARTICLE_DOI), "review", "cites", "openalex"),  # its erratum repeats the DOI
        Found(Ids(pmid="40000001"), "review", "cites", "pubmed"),
        Found(Ids(pmid="40000002"), "review", "cites", "icite"),
    ]
    papers = listed(library, found)

    assert sorted(papers) == ["pmid:40000001", "pmid:40000002"]
    assert sources(papers["pmid:40000001"]) == ("pubmed", "openalex")
    assert sources(papers["pmid:40000002"]) == ("icite", "openalex")


def test_a_new_pmid_sharing_a_stored_papers_doi_is_not_taken_for_it(library):
    store(library, Paper(pmid="40000001", title="The article", doi=ARTICLE_DOI, key="pmid:40000001"))
    papers = listed(library, [Found(Ids(pmid="40000002", doi=ARTICLE_DOI), "review", "cites", "openalex")])

    assert list(papers) == ["pmid:40000002"]


def test_an_openalex_id_alone_joins_nothing(library):
    # OpenAlex folds a preprint and its journal version into one work: two DOIs, one W id
    found = [
        Found(Ids(doi=PREPRINT_DOI, openalex="W4400000009"), "review", "cites", "openalex"),
        Found(Ids(doi=ARTICLE_DOI, openalex="W4400000009"), "review", "cites", "openalex"),
    ]
    papers = listed(library, found)

    assert sorted(papers) == [f"doi:{ARTICLE_DOI}", f"doi:{PREPRINT_DOI}"]


def test_an_openalex_id_does_not_give_a_work_with_another_doi_the_stored_papers_key(library):
    store(
        library,
        Paper(pmid="", title="The preprint", doi=PREPRINT_DOI, openalex="W4400000009", key=f"doi:{PREPRINT_DOI}"),
    )
    papers = listed(library, [Found(Ids(doi=ARTICLE_DOI, openalex="W4400000009"), "review", "cites", "openalex")])

    assert list(papers) == [f"doi:{ARTICLE_DOI}"]


# ---------------------------------------------------------------- final keys, once the records are in


def test_a_preprint_listed_by_its_ppr_id_whose_record_brings_a_doi_is_one_paper_under_the_doi(library, europepmc):
    openalex = by_openalex(f"https://doi.org/{PREPRINT_DOI}", "W4400000001")
    papers, wf = settled(library, [by_ppr(), openalex], [europepmc])

    key = f"doi:{PREPRINT_DOI}"
    assert list(papers) == [key] and list(wf.new) == [key] and list(wf.linked) == [key]
    paper = papers[key]
    assert (paper.key, paper.doi, paper.ppr, paper.openalex) == (key, PREPRINT_DOI, "PPR800001", "W4400000001")
    assert sorted(sources(wf.new[key])) == ["europepmc", "openalex"]


def test_a_preprint_only_europe_pmc_lists_takes_the_key_its_records_doi_makes(library, europepmc):
    papers, wf = settled(library, [by_ppr()], [europepmc])

    key = f"doi:{PREPRINT_DOI}"
    assert list(papers) == [key] and list(wf.new) == [key]
    assert (papers[key].ppr, papers[key].doi) == ("PPR800001", PREPRINT_DOI)  # the DOI as il2watch keys it
    assert sources(wf.new[key]) == ("europepmc",)


# ---------------------------------------------------------------- the library's keys


def test_a_paper_the_library_holds_by_its_doi_keeps_that_key_when_it_is_listed_with_a_pmid(library):
    store(library, Paper(pmid="", title="The preprint", doi=PREPRINT_DOI, key=f"doi:{PREPRINT_DOI}"))
    found = [
        Found(Ids(pmid="40000003"), "review", "cites", "icite"),
        Found(Ids(pmid="40000003", doi=PREPRINT_DOI, openalex="W4400000001"), "review", "cites", "openalex"),
    ]
    papers = listed(library, found)

    assert list(papers) == [f"doi:{PREPRINT_DOI}"]
    assert sources(papers[f"doi:{PREPRINT_DOI}"]) == ("icite", "openalex")


def test_a_paper_the_library_holds_keeps_its_key_whichever_of_its_ids_a_source_names(library):
    stored = Paper(pmid="", title="The preprint", doi=PREPRINT_DOI, ppr="PPR800001", key=f"doi:{PREPRINT_DOI}")
    store(library, stored)
    found = [
        by_ppr(),  # Europe PMC: the PPR id alone, which only the library ties to the DOI
        Found(Ids(pmid="40000003"), "review", "cites", "icite"),  # PubMed has indexed it meanwhile
        Found(Ids(pmid="40000003", doi=PREPRINT_DOI, openalex="W4400000001"), "review", "cites", "openalex"),
    ]
    papers = listed(library, found)

    assert list(papers) == [f"doi:{PREPRINT_DOI}"]
    assert sources(papers[f"doi:{PREPRINT_DOI}"]) == ("icite", "europepmc", "openalex")


PUBMED_VERSION = Paper(pmid="40000004", title="IL-2 muteins that spare Tregs", doi=PREPRINT_DOI, key="pmid:40000004")


def test_a_listing_whose_record_names_a_stored_paper_becomes_that_paper_and_no_news(library, europepmc):
    # PubMed indexed the preprint (same DOI) and the review's watch linked it; Europe PMC now lists its PPR id
    store(library, PUBMED_VERSION, Reason("review", "cites", sources=("pubmed",)))
    papers, wf = settled(library, [by_ppr()], [europepmc])

    assert wf.new == {}  # linked for this reason already: no second post
    assert list(wf.linked) == ["pmid:40000004"] and sources(wf.linked["pmid:40000004"]) == ("europepmc",)
    assert {p.key for p in papers.values()} <= {"pmid:40000004"}


def test_a_stored_pubmed_paper_keeps_its_pubmed_record_when_another_source_names_it(library, europepmc):
    store(library, PUBMED_VERSION, Reason("review", "cites", sources=("pubmed",)))
    papers, _ = settled(library, [by_ppr()], [europepmc])
    library.save_papers(papers.values(), now=STAMP)  # as the poll stores what discovery fetched

    kept = library.paper("pmid:40000004")
    assert kept is not None and kept.pmid == "40000004"
    assert library.paper("40000004") is not None
    assert replace(kept, ppr="") == PUBMED_VERSION  # PubMed's record, not the preprint record from Europe PMC
    assert kept.ppr == "PPR800001"  # with the id Europe PMC named it by
    assert library.find_key(Ids(ppr="PPR800001")) == "pmid:40000004"
