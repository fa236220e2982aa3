"""Every paper that cites the review, from every index: PubMed, iCite, Europe PMC and OpenAlex, one post each.

il2watch runs against stand-ins of all four (and of Slack) answering from one model of the literature
(tests/data/citations.py): citing papers split across the indexes, preprints, DOIs in other cases, a
preprint PubMed indexes later, a patent. Tests assert on what Slack received and what the library holds.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from il2watch.config import load_settings
from il2watch.library import Library
from il2watch.model import Watch
from il2watch.service import PollError, poll_once
from il2watch.sources import Request
from tests.conftest import BOTH_BACKENDS
from tests.data import citations as C
from tests.data.records import REVIEW_CITED_BY, REVIEW_PMID, UNRELATED_PMID
from tests.stand_ins.europepmc import EuropePmcStandIn
from tests.stand_ins.eutils import EutilsStandIn
from tests.stand_ins.icite import IciteStandIn
from tests.stand_ins.literature import Work
from tests.stand_ins.openalex import DEFAULT_KEY, OpenAlexStandIn
from tests.stand_ins.pubmed_world import record as pubmed_record
from tests.stand_ins.slack_api import SlackStandIn
from tests.support import settings_env

CHANNEL = "C0PAPERS1"
LATER = datetime(2024, 6, 28, 9, 0, tzinfo=UTC)
MUCH_LATER = datetime(2024, 7, 5, 9, 0, tzinfo=UTC)
EVERY_SOURCE = "pubmed,icite,europepmc,openalex"


class Lab:
    """The four indexes, Slack and a library, with il2watch's settings pointing at them."""

    def __init__(self, tmp_path, literature, ncbi, icite, epmc, openalex, slack, database=""):
        self.tmp_path, self.literature, self.database = tmp_path, literature, database or str(tmp_path / "library.db")
        self.ncbi, self.icite, self.epmc, self.openalex, self.slack = ncbi, icite, epmc, openalex, slack

    def settings(self, **extra: str):
        env = settings_env(
            self.tmp_path,
            self.ncbi,
            self.slack,
            self.database,
            IL2WATCH_SOURCES=EVERY_SOURCE,
            IL2WATCH_ICITE_URL=self.icite.base_url,
            IL2WATCH_EUROPEPMC_URL=self.epmc.base_url,
            IL2WATCH_OPENALEX_URL=self.openalex.base_url,
            OPENALEX_API_KEY=DEFAULT_KEY,
            IL2WATCH_ICITE_REFRESH="0",
            IL2WATCH_OPENALEX_REFRESH="0",
            IL2WATCH_HTTP_BACKOFF="0.01",
            IL2WATCH_HTTP_ATTEMPTS="2",
            IL2WATCH_BURST="0",
        )
        env.update(extra)
        return load_settings(env, self.tmp_path)

    def poll(self, now: datetime = LATER, **extra: str):
        return poll_once(self.settings(**extra), out=lambda _: None, now=now)

    def papers_posted(self) -> Counter:
        """How often each paper (by its identity) was posted, in posts and digests."""
        seen: Counter = Counter()
        for message in self.slack.posts_with_metadata("il2watch_paper", CHANNEL):
            payload = message.metadata["event_payload"]
            seen[payload.get("paper") or f"pmid:{payload['pmid']}"] += 1  # posts made before identities: a PMID
        for message in self.slack.posts_with_metadata("il2watch_digest", CHANNEL):
            for key in message.metadata["event_payload"].get("papers", []):
                seen[key] += 1
        return seen

    def post_of(self, key: str):
        (message,) = [
            m
            for m in self.slack.posts_with_metadata("il2watch_paper", CHANNEL)
            if m.metadata["event_payload"]["paper"] == key
        ]
        return message

    def library(self) -> Library:
        return Library(self.database)


@pytest.fixture
def lab(tmp_path, database):
    literature = C.build_literature()
    with (
        EutilsStandIn(literature.world) as ncbi,
        IciteStandIn(literature) as icite,
        EuropePmcStandIn(literature) as epmc,
        OpenAlexStandIn(literature) as openalex,
        SlackStandIn() as slack,
    ):
        slack.add_channel("il2-papers", channel_id=CHANNEL)
        yield Lab(tmp_path, literature, ncbi, icite, epmc, openalex, slack, database)


def key_of(pmid: str) -> str:
    return f"pmid:{pmid}"


PREPRINT_EPMC_KEY = f"doi:{C.PREPRINT_EPMC.doi}"
PREPRINT_SHARED_KEY = f"doi:{C.PREPRINT_SHARED.doi}"
PREPRINT_LATER_KEY = f"doi:{C.PREPRINT_LATER.doi}"
OPENALEX_ARTICLE_KEY = f"doi:{C.OPENALEX_ARTICLE.doi}"
PATENT_KEY = f"epmc:PAT/{C.PATENT.europepmc_id}"
PMC_ONLY_KEY = f"pmcid:{C.PMC_ONLY.europepmc_id}"
NEW_CITING = {key_of(p) for p in C.NEW_PMIDS} | {
    PREPRINT_EPMC_KEY,
    PREPRINT_SHARED_KEY,
    PREPRINT_LATER_KEY,
    OPENALEX_ARTICLE_KEY,
    PMC_ONLY_KEY,
}


@BOTH_BACKENDS
def test_every_citing_paper_of_every_index_is_posted_once_with_all_its_sources(lab):
    lab.poll()  # the baseline: every index knows the review's ten citing papers already
    baseline = lab.papers_posted()
    C.add_new_citations(lab.literature)
    report = lab.poll()
    posted = lab.papers_posted() - baseline
    assert set(posted) == NEW_CITING and set(posted.values()) == {1}, posted
    assert PATENT_KEY not in lab.papers_posted()  # kept in the library, not posted
    with lab.library() as library:
        assert library.paper(PATENT_KEY) is not None
        assert library.sources_of(key_of(C.ALL_FOUR_PMID)) == ["pubmed", "icite", "europepmc", "openalex"]
        assert library.sources_of(key_of(C.ICITE_ONLY_PMID)) == ["icite"]
        assert library.sources_of(PREPRINT_SHARED_KEY) == ["europepmc", "openalex"]
    all_four = lab.post_of(key_of(C.ALL_FOUR_PMID))
    assert "Cites the review · PubMed, iCite, Europe PMC, OpenAlex" in json.dumps(all_four.blocks, ensure_ascii=False)
    shared = lab.post_of(PREPRINT_SHARED_KEY)
    payload = shared.metadata["event_payload"]
    assert payload["doi"] == C.PREPRINT_SHARED.doi and payload["ppr"] == C.PREPRINT_SHARED.ppr
    assert "pmid" not in payload and payload["openalex"].startswith("W")
    assert "Preprint · Research Square" in json.dumps(shared.blocks, ensure_ascii=False)
    assert f"https://doi.org/{C.PREPRINT_SHARED.doi}" in json.dumps(shared.blocks, ensure_ascii=False)
    epmc_only = lab.post_of(PREPRINT_EPMC_KEY).metadata["event_payload"]
    assert epmc_only["doi"] == C.PREPRINT_EPMC.doi  # Europe PMC wrote it in upper case
    # Europe PMC: the citations, then one search for its preprints and one for its PMC article
    assert report.other_requests == {"iCite": 1, "Europe PMC": 3, "OpenAlex": 2}  # the OpenAlex id is kept
    assert lab.icite.rate_violations == lab.epmc.rate_violations == lab.openalex.rate_violations == 0
    assert lab.ncbi.rate_violations == 0


@BOTH_BACKENDS
def test_a_second_poll_posts_nothing_again_and_a_later_listing_adds_its_source(lab):
    lab.poll()
    C.add_new_citations(lab.literature)
    lab.poll()
    before = lab.papers_posted()
    lab.literature.cite(C.ICITE_ONLY_PMID, REVIEW_PMID, ("europepmc",))  # Europe PMC catches up
    lab.poll(now=MUCH_LATER)
    assert lab.papers_posted() == before
    with lab.library() as library:
        assert library.sources_of(key_of(C.ICITE_ONLY_PMID)) == ["icite", "europepmc"]


@BOTH_BACKENDS
def test_a_preprint_that_pubmed_indexes_later_is_not_posted_twice(lab):
    lab.poll()
    C.add_new_citations(lab.literature)
    lab.poll()
    assert lab.papers_posted()[PREPRINT_LATER_KEY] == 1
    C.index_preprint_in_pubmed(lab.literature)
    lab.poll(now=MUCH_LATER)
    posted = lab.papers_posted()
    assert posted[PREPRINT_LATER_KEY] == 1 and key_of(C.PREPRINT_LATER_PMID) not in posted
    with lab.library() as library:
        paper = library.paper(key_of(C.PREPRINT_LATER_PMID))
        assert paper is not None and paper.key == PREPRINT_LATER_KEY and paper.pmid == C.PREPRINT_LATER_PMID
        assert library.sources_of(PREPRINT_LATER_KEY) == ["europepmc", "pubmed", "icite"]


INDEXED_FIRST_PMID = "39400002"  # a bioRxiv preprint PubMed indexed before Europe PMC listed it
INDEXED_FIRST = Work(
    key="preprint-indexed-first",
    title="IL-2 complexes expand regulatory T cells in aged mice",
    doi="10.1101/2024.06.10.598765",
    ppr="PPR880002",
    server="bioRxiv",
)


def test_a_stored_pubmed_paper_that_europe_pmc_lists_later_by_its_ppr_id_keeps_its_pubmed_record(lab):
    lab.poll()
    lab.literature.world.add(
        pubmed_record(
            INDEXED_FIRST_PMID,
            title="IL-2 complexes expand regulatory T cells in aged mice.",
            entry_date="2024-06-20",
            doi=INDEXED_FIRST.doi,
            journal="bioRxiv : the preprint server for biology",
            journal_iso="bioRxiv",
            pub_types=["Preprint"],
        )
    )
    lab.literature.cite(INDEXED_FIRST_PMID, REVIEW_PMID, ("pubmed",))
    lab.poll()
    key = key_of(INDEXED_FIRST_PMID)
    assert lab.papers_posted()[key] == 1
    lab.literature.add_work(INDEXED_FIRST)  # Europe PMC's record of the preprint: no PMID, the same DOI
    lab.literature.cite(INDEXED_FIRST.key, REVIEW_PMID, ("europepmc",))
    lab.poll(now=MUCH_LATER)
    posted = lab.papers_posted()
    assert posted[key] == 1 and sum(posted.values()) == len(posted), posted  # nothing posted twice
    with lab.library() as library:
        paper = library.paper(key)
        assert paper is not None and paper.pmid == INDEXED_FIRST_PMID and paper.key == key
        assert paper.title == "IL-2 complexes expand regulatory T cells in aged mice."  # PubMed's, not Europe PMC's
        assert paper.journal == "bioRxiv : the preprint server for biology"
        assert paper.ppr == INDEXED_FIRST.ppr
        assert library.paper(f"ppr:{INDEXED_FIRST.ppr}") == paper
        assert library.sources_of(key) == ["pubmed", "europepmc"]


# Each index beyond PubMed: its stand-in, the path its citing list is asked on, and what only it lists.
ONLY = {
    "icite": ("iCite", "api/pubs", {key_of(C.ICITE_ONLY_PMID)}),
    "europepmc": (
        "Europe PMC",
        "citations",
        {key_of(C.EPMC_ONLY_PMID), PREPRINT_EPMC_KEY, PREPRINT_LATER_KEY, PMC_ONLY_KEY},
    ),
    "openalex": ("OpenAlex", "works", {key_of(C.OPENALEX_ONLY_PMID), OPENALEX_ARTICLE_KEY}),
}


def stand_in_of(lab, source: str):
    return {"icite": lab.icite, "europepmc": lab.epmc, "openalex": lab.openalex}[source]


@pytest.mark.parametrize("source", sorted(ONLY))
@pytest.mark.parametrize("fault", ["down", 503, "html", "malformed", "empty"])
def test_one_source_failing_loses_and_doubles_nothing_and_is_named(lab, source, fault):
    label, path, only = ONLY[source]
    stand_in = stand_in_of(lab, source)
    lab.poll()
    C.add_new_citations(lab.literature)
    if fault == "down":
        stand_in.down = True
    else:
        stand_in.inject(fault, path_contains=path, times=5)
    report = lab.poll()
    posted = lab.papers_posted()
    assert not only & set(posted), f"{label}'s papers wait for {label}"
    assert (NEW_CITING - only) <= set(posted) and set(posted.values()) == {1}
    assert f"failed: {label}: " in report.line() and report.status == "ok"
    with lab.library() as library:
        status = library.source_status(source)
        assert status["status"] in ("failed", "partial") and status["error"]
        assert library.count_linked("review", "cites", source=source) == len(REVIEW_CITED_BY)
    stand_in.down = False
    stand_in.clear_faults()
    lab.poll(now=MUCH_LATER)  # the source answers again: its papers now, once each
    again = lab.papers_posted()
    assert set(again) >= NEW_CITING and set(again.values()) == {1}


def test_europe_pmc_s_records_failing_set_aside_only_its_own_works_named_once(lab):
    lab.poll()
    C.add_new_citations(lab.literature)
    lab.epmc.inject(503, path_contains="search", times=20)  # every record search, every retry
    report = lab.poll()
    posted = lab.papers_posted()
    own = {PREPRINT_EPMC_KEY, PREPRINT_LATER_KEY, PMC_ONLY_KEY}  # works without a PMID only Europe PMC has
    assert not own & set(posted), "no record: not stored, asked for again next poll"
    assert (NEW_CITING - own) <= set(posted) and set(posted.values()) == {1}  # OpenAlex's record serves the shared one
    assert report.status == "ok"
    assert report.line().count("its records could not be fetched") == 1, report.line()
    with lab.library() as library:
        assert all(library.paper(key) is None for key in own)
    lab.epmc.clear_faults()
    lab.poll(now=MUCH_LATER)
    again = lab.papers_posted()
    assert set(again) >= NEW_CITING and set(again.values()) == {1}


@pytest.mark.parametrize("source", sorted(ONLY))
def test_a_429_with_retry_after_is_waited_out_and_the_source_s_papers_come_in_the_same_poll(lab, source):
    label, path, only = ONLY[source]
    stand_in = stand_in_of(lab, source)
    lab.poll()
    C.add_new_citations(lab.literature)
    stand_in.clear_requests()
    stand_in.inject(429, path_contains=path, retry_after=0.4)
    report = lab.poll()
    assert only <= set(lab.papers_posted()) and f"{label}: " not in report.line()
    refused, *_, retried = [r for r in stand_in.requests if path in r.path]
    assert refused.status == 429 and retried.status == 200
    assert retried.time - refused.time >= 0.35, "Retry-After was not honoured"


def test_a_wrong_base_url_is_a_failure_not_a_paper_nobody_cites(lab):
    lab.poll()
    report = lab.poll(now=MUCH_LATER, IL2WATCH_EUROPEPMC_URL=lab.epmc.base_url.replace("/rest/", "/rst/"))
    assert "is IL2WATCH_EUROPEPMC_URL right" in report.line()
    with lab.library() as library:
        assert library.source_status("europepmc")["status"] in ("failed", "partial")


def test_openalex_without_its_key_says_so_and_the_rest_goes_on(lab):
    lab.poll()
    C.add_new_citations(lab.literature)
    lab.openalex.keys = {"another-key"}
    report = lab.poll()
    assert "OpenAlex" in report.line() and "401" in report.line()
    assert key_of(C.ALL_FOUR_PMID) in lab.papers_posted()


@BOTH_BACKENDS
def test_a_source_added_later_posts_one_note_not_a_flood(lab):
    lab.poll(IL2WATCH_SOURCES="pubmed")
    posted = lab.papers_posted()
    lab.literature.world.add(*[])  # nothing new in PubMed
    C.add_new_citations(lab.literature)
    report = lab.poll(IL2WATCH_SOURCES="pubmed,europepmc")
    new = lab.papers_posted() - posted
    assert set(new) == {key_of(C.ALL_FOUR_PMID)}, new  # PubMed's own news is still news
    (note,) = [
        m
        for m in lab.slack.posts_with_metadata("il2watch_note", CHANNEL)
        if m.metadata["event_payload"].get("kind") == "source_baseline"
    ]
    assert note.metadata["event_payload"]["source"] == "europepmc"
    assert "Europe PMC found" in note.text and "preprint" in note.text and "cites" in note.text
    with lab.library() as library:
        assert library.paper(PREPRINT_EPMC_KEY) is not None  # recorded
    assert report.status == "ok"
    lab.literature.cite(C.ICITE_ONLY_PMID, REVIEW_PMID, ("europepmc",))
    lab.poll(now=MUCH_LATER, IL2WATCH_SOURCES="pubmed,europepmc")
    assert lab.papers_posted()[key_of(C.ICITE_ONLY_PMID)] == 1  # from then on, what it finds is new


def test_a_lost_library_is_rebuilt_from_the_channel_and_floods_nothing(lab):
    lab.poll()
    C.add_new_citations(lab.literature)
    lab.poll()
    before = lab.papers_posted()
    (lab.tmp_path / "library.db").unlink()
    for suffix in ("-wal", "-shm"):
        (lab.tmp_path / f"library.db{suffix}").unlink(missing_ok=True)
    lab.poll(now=MUCH_LATER)
    assert lab.papers_posted() == before


def test_posts_made_before_identities_are_recognised(lab, tmp_path):
    lab.poll()
    with sqlite3.connect(tmp_path / "library.db") as conn:  # the claims of an old library, bare PMIDs
        assert conn.execute("select count(*) from claims where paper like 'pmid:%'").fetchone()[0] >= 3
    before = lab.papers_posted()
    for message in lab.slack.posts_with_metadata("il2watch_paper", CHANNEL):  # as posts made before
        payload = message.metadata["event_payload"]
        message.metadata["event_payload"] = {"pmid": payload["pmid"], "key": payload["key"]}
    (tmp_path / "library.db").unlink()
    lab.poll(now=MUCH_LATER)
    assert lab.papers_posted() == before


def test_poll_against_the_sources_takes_about_as_long_as_the_slowest(lab):
    lab.poll()
    C.add_new_citations(lab.literature)
    # each host's first answer of the poll takes 0.8 s: asked one after another, these four answers alone
    # take 3.2 s; asked at once, about 0.8 s, and the rest of the poll well under a second more
    delay = 0.8
    lab.ncbi.inject("slow", "elink", delay=delay)
    lab.icite.inject("slow", path_contains="api/pubs", delay=delay)
    lab.epmc.inject("slow", path_contains="citations", delay=delay)
    lab.openalex.inject("slow", path_contains="works", delay=delay)
    started = time.monotonic()
    lab.poll()
    elapsed = time.monotonic() - started
    assert not lab.ncbi.pending_faults and not (lab.icite.pending_faults or lab.epmc.pending_faults)
    assert not lab.openalex.pending_faults, "every host answered slowly once"
    assert elapsed < 2.2, f"the sources were asked one after another ({elapsed:.1f} s)"


def test_records_are_fetched_while_a_slow_source_is_still_answering(lab):
    lab.poll()
    C.add_new_citations(lab.literature)
    # OpenAlex's first answer and NCBI's first EFetch each take 1 s. Fetching records only once every source
    # has answered puts one after the other (2 s at least); fetching the PMIDs the first answers name while
    # OpenAlex is still answering overlaps them: about 1 s, and the rest of the poll well under a second more
    delay = 1.0
    lab.openalex.inject("slow", path_contains="works", delay=delay)
    lab.ncbi.inject("slow", "efetch", delay=delay)
    started = time.monotonic()
    lab.poll()
    elapsed = time.monotonic() - started
    assert not lab.ncbi.pending_faults and not lab.openalex.pending_faults, "both answered slowly once"
    assert set(lab.papers_posted()) >= NEW_CITING
    assert elapsed < 2 * delay - 0.1, f"the records waited for the slowest source ({elapsed:.1f} s)"


@BOTH_BACKENDS
def test_paper_and_cites_commands_read_every_identity(lab):
    from il2watch.commands import Context, answer
    from il2watch.service import all_watches, insight_maker

    lab.poll()
    C.add_new_citations(lab.literature)
    lab.poll()
    settings = lab.settings()
    with lab.library() as library:
        ctx = Context(
            library=library,
            settings=settings,
            insight_for=insight_maker(settings, library, summariser=False),
            user_id="U0READER1",
            channel_id=CHANNEL,
            watches=tuple(all_watches(settings, library)),
            now=lambda: LATER,
        )
        for text in (
            f"paper {C.PREPRINT_SHARED.ppr}",
            f"paper https://doi.org/{C.PREPRINT_SHARED.doi.upper()}",
            f"paper doi:{C.PREPRINT_SHARED.doi}",
        ):
            reply = answer(text, ctx)
            shown = json.dumps(reply.blocks, ensure_ascii=False)
            assert reply.deferred is None and "Orthogonal IL-2 receptor pairs" in shown, text
            assert "Listed by Europe PMC, OpenAlex" in shown
        cites = json.dumps(answer("cites 30", ctx).blocks, ensure_ascii=False)
        assert "Orthogonal IL-2 receptor pairs" in cites and "Europe PMC, OpenAlex" in cites


def test_a_preprint_exports_as_unpublished_work(lab):
    from il2watch.export import to_bibtex, to_ris

    lab.poll()
    C.add_new_citations(lab.literature)
    lab.poll()
    with lab.library() as library:
        preprint = library.paper(PREPRINT_SHARED_KEY)
    assert preprint is not None
    bibtex, ris = to_bibtex([preprint]), to_ris([preprint])
    assert bibtex.startswith("@misc{doi10.21203.rs.3.rs.5600001.v1,") and C.PREPRINT_SHARED.doi in bibtex
    assert "TY  - UNPB" in ris and f"DO  - {C.PREPRINT_SHARED.doi}" in ris


def test_a_failing_pubmed_efetch_fails_the_poll_and_marks_nothing_seen(lab):
    lab.poll()
    C.add_new_citations(lab.literature)
    lab.ncbi.inject(503, "efetch", times=5)  # every attempt of one poll
    with pytest.raises(PollError):
        lab.poll()
    lab.poll(now=MUCH_LATER)
    posted = lab.papers_posted()
    assert set(posted) >= NEW_CITING and set(posted.values()) == {1}


def test_status_shows_each_source_s_health_and_last_answer(lab):
    from il2watch.commands import format_status_text, status_facts

    lab.poll()
    C.add_new_citations(lab.literature)
    lab.openalex.down = True
    lab.poll()
    settings = lab.settings()
    with lab.library() as library:
        text = format_status_text(status_facts(library, settings, LATER))
    lines = {line.split(":")[0]: line for line in text.splitlines() if line.startswith("Source ")}
    assert set(lines) == {"Source PubMed", "Source iCite", "Source Europe PMC", "Source OpenAlex"}
    assert lines["Source iCite"].startswith("Source iCite: ok, ") and "works listed" in lines["Source iCite"]
    assert "failing" in lines["Source OpenAlex"] and "503" in lines["Source OpenAlex"]
    assert "last answered" in lines["Source OpenAlex"]


def test_status_names_a_refresh_interval_and_a_source_not_asked_yet(lab):
    from il2watch.commands import format_status_text, status_facts

    lab.poll(IL2WATCH_SOURCES="pubmed")
    settings = lab.settings(IL2WATCH_ICITE_REFRESH="1d")
    with lab.library() as library:
        text = format_status_text(status_facts(library, settings, LATER))
    assert "Source iCite: not asked yet" in text


def test_a_source_is_asked_no_more_often_than_its_refresh_interval(lab):
    lab.poll(IL2WATCH_ICITE_REFRESH="1d")
    lab.icite.clear_requests()
    lab.poll(now=LATER.replace(hour=12), IL2WATCH_ICITE_REFRESH="1d")
    assert lab.icite.requests == []
    lab.poll(now=MUCH_LATER, IL2WATCH_ICITE_REFRESH="1d")
    assert len(lab.icite.requests) == 1


def test_doctor_asks_every_source_once_and_checks_the_openalex_key(lab):
    from il2watch.doctor import run_checks

    lab.poll()
    lines = [check.line() for check in run_checks(lab.settings())]
    assert any(line.startswith("✓ iCite answers: 10 papers cite PMID 35217787") for line in lines), lines
    assert any(line.startswith("✓ Europe PMC answers: 10 works cite PMID 35217787") for line in lines)
    assert any(line.startswith("✓ OpenAlex accepts OPENALEX_API_KEY") for line in lines)
    lab.openalex.keys = {"another"}
    lab.epmc.down = True
    lines = [check.line() for check in run_checks(lab.settings())]
    assert any(line.startswith("✗ OpenAlex at ") and "401" in line for line in lines), lines
    assert any(line.startswith("✗ Europe PMC at ") and "503" in line for line in lines)


# ---------------------------------------------------------------- asking one source directly, over HTTP


def host_for(lab, stand_in, label: str, rate: float):
    """A transport Host for one stand-in, built as il2watch builds every source's."""
    from il2watch.sources import user_agent
    from il2watch.transport import host_from_settings

    settings = lab.settings()
    return host_from_settings(
        settings, name=label, base_url=stand_in.base_url, rate=rate, headers={"User-Agent": user_agent(settings)}
    )


def the_review() -> Request:
    return Request(watches=(Watch(id="review", pmid=REVIEW_PMID, label="the review"),))


def extra_preprints(lab, count: int, *, first: int = 820001, indexed: date = date(2024, 6, 20)) -> list[Work]:
    """``count`` more preprints only Europe PMC lists as citing the review."""
    made = []
    for number in range(first, first + count):
        work = lab.literature.add_work(
            Work(
                key=f"extra-{number}",
                title=f"Interleukin-2 preprint number {number}",
                authors=(("Ana", "Costa"),),
                doi=f"10.1101/2024.06.20.{number}",
                ppr=f"PPR{number}",
                first_indexed=indexed,
                created=indexed,
            )
        )
        lab.literature.cite(work.key, REVIEW_PMID, ("europepmc",))
        made.append(work)
    return made


def test_europe_pmc_citations_and_search_results_are_read_through_every_page(lab):
    from il2watch.sources import europepmc

    C.add_new_citations(lab.literature)
    extra_preprints(lab, 2)
    source = europepmc.EuropePmc(host_for(lab, lab.epmc, "Europe PMC", europepmc.RATE), page_size=3)
    finding = source.find(the_review())
    listed = lab.literature.citing(REVIEW_PMID, "europepmc")
    assert len(listed) == 20 and len(finding.found) == 20 and finding.answered == ["review"]
    pages = [(r.param("page"), r.param("pageSize")) for r in lab.epmc.requests if "citations" in r.path]
    assert pages == [(str(n), "3") for n in range(1, 8)]  # 3 a page, 20 entries: 7 pages
    given = source.records(finding.found)
    pprs = {record.ids.ppr for record in given.records if record.ids.ppr}
    assert pprs == {C.PREPRINT_EPMC.ppr, C.PREPRINT_SHARED.ppr, C.PREPRINT_LATER.ppr, "PPR820001", "PPR820002"}
    assert {record.ids.pmcid for record in given.records if not record.ids.ppr} == {C.PMC_ONLY.europepmc_id}
    cursors = [r.param("cursorMark") for r in lab.epmc.requests if r.path == "search" and "SRC:PPR" in r.param("query")]
    assert cursors == ["*", "AoE3"] and given.warnings == []


def test_openalex_paging_stops_at_a_cursor_it_was_given_before_and_at_its_page_cap(lab):
    from il2watch.sources import openalex

    C.add_new_citations(lab.literature)
    host = host_for(lab, lab.openalex, "OpenAlex", openalex.RATE)
    request = replace(
        the_review(), memory={openalex.memory_key(REVIEW_PMID): lab.literature.openalex_of_pmid(REVIEW_PMID)}
    )
    lab.openalex.repeat_cursor = True
    finding = openalex.OpenAlex(host, api_key=DEFAULT_KEY, per_page=3).find(request)
    lists = [r for r in lab.openalex.requests if r.path == "works"]
    assert len(lists) == 2, "the cursor it was given again ends the paging"
    assert finding.answered == ["review"] and len(finding.found) == 6
    assert any("sent a paging cursor again, stopped after 2 pages" in text for _, text in finding.warnings)
    lab.openalex.repeat_cursor = False
    lab.openalex.clear_requests()
    capped = openalex.OpenAlex(host, api_key=DEFAULT_KEY, per_page=3, max_pages=2).find(request)
    assert "past 2" in capped.failed["review"] and capped.answered == []
    assert len([r for r in lab.openalex.requests if r.path == "works"]) == 2


def test_openalex_s_own_404_means_no_such_work_and_any_other_404_is_a_wrong_url(lab):
    from il2watch.sources import SourceError, openalex

    source = openalex.OpenAlex(host_for(lab, lab.openalex, "OpenAlex", openalex.RATE), api_key=DEFAULT_KEY)
    assert source.resolve("99999999") == ""  # OpenAlex's JSON: no such work
    with pytest.raises(SourceError, match="accepts the key but does not know PMID 99999999"):
        source.probe("99999999")
    lab.openalex.inject(404, path_contains="works/pmid:", body=b"<html><body>Not Found</body></html>")
    with pytest.raises(SourceError, match="without its own JSON error: is IL2WATCH_OPENALEX_URL right"):
        source.resolve(REVIEW_PMID)


# ---------------------------------------------------------------- what each fix shows in a poll


def test_europe_pmc_s_pmc_only_article_is_stored_from_its_own_record_and_posted_once(lab):
    lab.poll()
    C.add_new_citations(lab.literature)
    report = lab.poll()
    assert lab.papers_posted()[PMC_ONLY_KEY] == 1 and "no record" not in report.line()
    post = json.dumps(lab.post_of(PMC_ONLY_KEY).blocks, ensure_ascii=False)
    assert C.PMC_ONLY.title in post and "Mucosal Immunology Reports" in post
    with lab.library() as library:
        paper = library.paper(PMC_ONLY_KEY)
        assert paper is not None and paper.pmcid == C.PMC_ONLY.europepmc_id and not paper.pmid
        assert paper.journal == "Mucosal Immunology Reports" and paper.entry_date == "2024-06-17"
        assert [a.last_name for a in paper.authors] == ["Moreau", "Novak"]
        assert library.sources_of(PMC_ONLY_KEY) == ["europepmc"]
    queries = [r.param("query") for r in lab.epmc.requests if r.path == "search"]
    assert f"(EXT_ID:{C.PMC_ONLY.europepmc_id}) AND SRC:PMC" in queries
    lab.epmc.clear_requests()
    lab.poll(now=MUCH_LATER)
    assert not [r for r in lab.epmc.requests if r.path == "search"], "stored: its record is not asked again"
    assert lab.papers_posted()[PMC_ONLY_KEY] == 1


@pytest.mark.parametrize("fault", ["empty", "down"])
def test_a_failed_or_outage_answer_is_no_refresh_the_source_is_asked_again_next_poll(lab, fault):
    daily = {"IL2WATCH_ICITE_REFRESH": "1d"}
    lab.poll(**daily)
    C.add_new_citations(lab.literature)
    if fault == "down":
        lab.icite.down = True
    else:
        lab.icite.inject("empty", path_contains="api/pubs")
    day_later = LATER + timedelta(days=1, minutes=1)
    report = lab.poll(now=day_later, **daily)
    assert "failed: iCite: " in report.line() and key_of(C.ICITE_ONLY_PMID) not in lab.papers_posted()
    lab.icite.down = False
    lab.icite.clear_requests()
    lab.poll(now=day_later + timedelta(hours=1), **daily)
    assert len(lab.icite.requests) == 1, "the outage served nothing: iCite is asked again at the next poll"
    assert lab.papers_posted()[key_of(C.ICITE_ONLY_PMID)] == 1
    lab.icite.clear_requests()
    lab.poll(now=day_later + timedelta(hours=2), **daily)
    assert lab.icite.requests == [], "it answered: now its refresh interval holds"


def test_a_wrong_openalex_url_is_a_failure_of_openalex_in_the_poll_status_and_doctor(lab):
    from il2watch.commands import format_status_text, status_facts
    from il2watch.doctor import run_checks

    wrong = {"IL2WATCH_OPENALEX_URL": lab.openalex.base_url + "v9/"}
    report = lab.poll(**wrong)  # a new library: the review's OpenAlex id is not known yet
    assert "failed: OpenAlex: OpenAlex answered 404" in report.line() and "IL2WATCH_OPENALEX_URL right" in report.line()
    assert "does not know PMID" not in report.line()
    with lab.library() as library:
        text = format_status_text(status_facts(library, lab.settings(**wrong), LATER))
    (line,) = [line for line in text.splitlines() if line.startswith("Source OpenAlex:")]
    assert "IL2WATCH_OPENALEX_URL right" in line and not line.startswith("Source OpenAlex: ok")
    checks = [check.line() for check in run_checks(lab.settings(**wrong))]
    (doctor,) = [line for line in checks if "OpenAlex" in line]
    assert doctor.startswith("✗ OpenAlex at ") and "IL2WATCH_OPENALEX_URL right" in doctor
    assert "accepts" not in doctor


def test_a_watched_paper_merged_into_another_openalex_id_is_resolved_again_once_a_poll(lab):
    from il2watch.sources.openalex import memory_key

    lab.poll()
    lab.literature.merge_openalex(REVIEW_PMID, "W4999999999")
    C.add_new_citations(lab.literature)
    lab.openalex.clear_requests()
    report = lab.poll()
    assert {key_of(C.OPENALEX_ONLY_PMID), OPENALEX_ARTICLE_KEY} <= set(lab.papers_posted())
    assert "OpenAlex: " not in report.line()
    resolved = [r.path for r in lab.openalex.requests if r.path.startswith("works/")]
    assert resolved == [f"works/pmid:{REVIEW_PMID}"]
    with lab.library() as library:
        assert library.source_memory()[memory_key(REVIEW_PMID)] == "W4999999999"
    lab.openalex.clear_requests()
    lab.openalex.inject("empty", path_contains="works", times=10)  # an outage now: one more look, no more
    report = lab.poll(now=MUCH_LATER)
    assert "failed: OpenAlex: " in report.line()
    assert len([r for r in lab.openalex.requests if r.path.startswith("works/")]) == 1


@pytest.mark.parametrize("openalex_first", [False, True])
def test_a_paper_without_a_pmid_enters_on_the_earliest_date_any_source_first_indexed_it(lab, openalex_first):
    lab.poll()
    C.add_new_citations(lab.literature)
    if openalex_first:  # OpenAlex created its record before Europe PMC indexed the preprint
        lab.literature.add_work(replace(lab.literature.work(C.PREPRINT_SHARED.key), created=date(2024, 6, 20)))
    lab.poll()
    with lab.library() as library:
        shared = library.paper(PREPRINT_SHARED_KEY)
        assert shared is not None and shared.entry_date == ("2024-06-20" if openalex_first else "2024-06-22")
        assert library.paper(PREPRINT_EPMC_KEY).entry_date == "2024-06-19"  # Europe PMC's firstIndexDate
        assert library.paper(OPENALEX_ARTICLE_KEY).entry_date == "2024-06-24"  # OpenAlex's created_date


# ---------------------------------------------------------------- odd records from any source (D9)

HOSTILE = (None, "", "a string", 0, -1, 1.5, True, [], ["x"], [1, 2], {}, {"x": 1}, [{"x": None}], "<b>x</b>")


def _paths(value, prefix=()):
    """Every place in a JSON value: its keys all the way down, the first two items of each list."""
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value[:2]):
            yield from _paths(inner, (*prefix, index))


def hostile_shapes(record):
    """The record with each of its places, in turn, holding each hostile value: (where, the record)."""
    for path in _paths(record):
        for value in HOSTILE:
            changed = json.loads(json.dumps(record))
            if not path:
                yield path, value
                continue
            target = changed
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
            yield path, changed


def assert_well_typed(paper) -> None:
    """What il2watch stores and renders: text where text belongs, every id one of its kind."""
    from il2watch.identity import parse_token

    assert isinstance(paper.title, str) and paper.title
    for name in ("pmid", "journal", "journal_iso", "pub_date", "pages", "entry_date", "doi", "pmcid"):
        assert isinstance(getattr(paper, name), str), name
    assert paper.pub_year is None or (isinstance(paper.pub_year, int) and not isinstance(paper.pub_year, bool))
    assert all(isinstance(t, str) for t in paper.pub_types)
    assert all(isinstance(a.name, str) for a in paper.authors)
    assert all(isinstance(s.text, str) for s in paper.abstract)
    for token in paper.ids.tokens():
        parsed = parse_token(token)
        assert parsed is not None and f"{parsed[0]}:{parsed[1]}" == token, token


def get_json(url: str):
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_hostile_europe_pmc_records_are_dropped_or_degraded_with_one_warning_never_raised(lab):
    from il2watch.sources.base import Oddities
    from il2watch.sources.europepmc import core_record, found_from_citation

    C.add_new_citations(lab.literature)
    base = lab.epmc.base_url
    entries = get_json(f"{base}MED/{REVIEW_PMID}/citations?format=json&page=1&pageSize=1000")["citationList"]
    records = [
        (
            source,
            get_json(f"{base}search?query=(EXT_ID:{value})%20AND%20SRC:{source}&resultType=core&format=json")[
                "resultList"
            ]["result"][0],
        )
        for source, value in (("PPR", C.PREPRINT_SHARED.ppr), ("PMC", C.PMC_ONLY.europepmc_id))
    ]
    shapes = 0
    for source, record in records:
        for where, shape in hostile_shapes(record):
            odd = Oddities("Europe PMC")
            got = core_record(shape, source, {}, ["review"], odd)
            warnings = odd.warnings()
            assert len(warnings) <= 1, (where, shape)
            assert all(text.startswith("record ") for _, text in warnings)
            if got is None:
                assert len(warnings) == 1, (where, shape)
            else:
                assert_well_typed(got.paper)
            shapes += 1
    for entry in entries["citation"][:4]:
        for where, shape in hostile_shapes(entry):
            odd = Oddities("Europe PMC")
            found = found_from_citation(shape, "review", odd)
            assert len(odd.warnings()) <= 1, (where, shape)
            if found is None:
                assert len(odd.warnings()) == 1, (where, shape)
            else:
                assert found.ids and all(t.split(":", 1)[1] for t in found.ids.tokens())
            shapes += 1
    assert shapes > 500


def test_hostile_openalex_works_and_icite_pubs_are_dropped_or_degraded_never_raised(lab):
    from il2watch.sources.base import Oddities
    from il2watch.sources.icite import parse_pubs
    from il2watch.sources.openalex import SELECT, found_from_work

    C.add_new_citations(lab.literature)
    work_id = lab.literature.openalex_of_pmid(REVIEW_PMID)
    listing = get_json(
        f"{lab.openalex.base_url}works?filter=cites:{work_id}&per_page=100&select={SELECT}&api_key={DEFAULT_KEY}"
    )
    works = [w for w in listing["results"] if w["doi"] == f"https://doi.org/{C.OPENALEX_ARTICLE.doi}"]
    works += [next(w for w in listing["results"] if w["ids"].get("pmid"))]
    shapes = 0
    for work in works:
        for where, shape in hostile_shapes(work):
            odd = Oddities("OpenAlex")
            found = found_from_work(shape, "review", odd)
            warnings = odd.warnings()
            assert len(warnings) <= 1 and all(text.startswith("record ") for _, text in warnings)
            if found is None:
                assert len(warnings) == 1, (where, shape)
            elif found.record is not None:
                assert_well_typed(found.record)
            shapes += 1
    pub = get_json(f"{lab.icite.base_url}api/pubs?pmids={REVIEW_PMID}&fl=pmid,doi,cited_by")["data"][0]
    for where, shape in hostile_shapes(pub):
        pubs = parse_pubs({"data": [shape]})
        for pmid, cited_by in pubs.cited_by.items():
            assert pmid.isdigit() and all(c.isdigit() and not c.startswith("0") for c in cited_by), (where, shape)
        read = set(pubs.cited_by) | set(pubs.unreadable)
        assert read <= {REVIEW_PMID} and (read or pubs.strangers), (where, shape)
        shapes += 1
    assert shapes > 400


def hostile_search(body):
    results = body["resultList"]["result"]
    for result in results:
        if result["id"] == C.PREPRINT_EPMC.ppr:
            result["authorList"] = "Okafor A, Vogt L, Tanaka H"  # text where a list belongs
            result["pubTypeList"] = {"pubType": "Preprint"}
        if result["id"] == C.PREPRINT_LATER.ppr:
            result["title"] = ["not", "a", "title"]
    results.append({"id": 7, "source": ["PPR"]})
    return body


def hostile_citations(body):
    body["citationList"]["citation"] += ["not an entry", {"id": "abc", "source": "MED"}, {"id": 1.5, "source": "PPR"}]
    body["hitCount"] += 3
    return body


def hostile_works(body):
    for work in body.get("results") or []:
        if work.get("doi") == f"https://doi.org/{C.OPENALEX_ARTICLE.doi}":
            work["authorships"] = "Marta Nowak, Ahmed Hassan"
            work["primary_location"] = []
    if "results" in body:
        body["results"] += [{"id": 5, "doi": {"x": 1}}, {"id": "https://openalex.org/W123", "title": None}, "a work?"]
    return body


def hostile_pubs(body):
    for item in body["data"]:
        item["cited_by"] = [*item["cited_by"], "x", None, 1.5, True, -5, [1], "0"]
    body["data"] += [{"pmid": "abc", "cited_by": "1,2"}, "not a record"]
    return body


def test_odd_records_from_every_source_degrade_or_drop_alone_and_no_bad_id_is_stored(lab):
    from il2watch.identity import parse_token

    lab.poll()
    C.add_new_citations(lab.literature)
    lab.epmc.alter("search", hostile_search)
    lab.epmc.alter("citations", hostile_citations)
    lab.openalex.alter("works", hostile_works)
    lab.icite.alter("api/pubs", hostile_pubs)
    report = lab.poll()
    line = report.line()
    assert report.status == "ok", line
    posted = lab.papers_posted()
    assert (NEW_CITING - {PREPRINT_LATER_KEY}) <= set(posted) and set(posted.values()) == {1}
    assert PREPRINT_LATER_KEY not in posted  # no title that can be read: left out, asked for again
    article_id = lab.literature.work(C.OPENALEX_ARTICLE.key).openalex
    for said in (
        f"Europe PMC: record {C.PREPRINT_EPMC.ppr}: authorList, pubTypeList.pubType of an unexpected type",
        f"Europe PMC: record {C.PREPRINT_LATER.ppr}: no title or id that can be read (left out)",
        "Europe PMC: record MED/abc: its id is no MED id (left out)",
        "Europe PMC: record PPR/1.5: its id is no PPR id (left out)",
        f"OpenAlex: record {article_id}: authorships, primary_location of an unexpected type (kept without them)",
        "OpenAlex: record 5: no id that can be read (left out)",
        "iCite: record PMID 35217787: cited_by lists 7 ids that are no PMIDs",
    ):
        assert said in line, said
    with lab.library() as library:
        tokens = [row[0] for row in library.db.execute("select token from paper_ids")]
        assert tokens and all(parse_token(t) is not None and ":".join(parse_token(t)) == t for t in tokens)
        keys = [row[0] for row in library.db.execute("select paper from papers")]
        assert all(parse_token(k) is not None for k in keys) and "pmid:0" not in keys
        preprint = library.paper(PREPRINT_EPMC_KEY)
        assert preprint is not None and preprint.authors == () and preprint.is_preprint
        article = library.paper(OPENALEX_ARTICLE_KEY)
        assert article is not None and article.authors == () and article.journal == ""
        assert article.abstract and "stroma-targeted IL-2" in article.abstract[0].text
    for stand_in in (lab.epmc, lab.openalex, lab.icite):
        stand_in.clear_faults()
    lab.poll(now=MUCH_LATER)
    assert lab.papers_posted()[PREPRINT_LATER_KEY] == 1 and set(lab.papers_posted().values()) == {1}


# ---------------------------------------------------------------- a lost library after a source was added later (D10)


def lose_the_library(lab) -> None:
    for suffix in ("", "-wal", "-shm"):
        (lab.tmp_path / f"library.db{suffix}").unlink(missing_ok=True)


def the_source_baseline_note(lab):
    (note,) = [
        m
        for m in lab.slack.posts_with_metadata("il2watch_note", CHANNEL)
        if m.metadata["event_payload"].get("kind") == "source_baseline"
    ]
    return note.metadata["event_payload"]


def test_a_lost_library_after_a_source_was_added_later_floods_nothing(lab):
    both = {"IL2WATCH_SOURCES": "pubmed,europepmc"}
    lab.poll(IL2WATCH_SOURCES="pubmed")
    C.add_new_citations(lab.literature)
    lab.poll(**both)
    before = lab.papers_posted()
    notes = len(lab.slack.posts_with_metadata("il2watch_note", CHANNEL))
    note = the_source_baseline_note(lab)
    recorded = {
        key_of(C.ICITE_EPMC_PMID),
        key_of(C.EPMC_ONLY_PMID),
        PREPRINT_EPMC_KEY,
        PREPRINT_SHARED_KEY,
        PREPRINT_LATER_KEY,
        PMC_ONLY_KEY,
        PATENT_KEY,
    }
    assert set(note["papers"]) == recorded and note["found"] == len(recorded) and "entered_by" not in note
    lose_the_library(lab)
    lab.literature.cite(C.ICITE_ONLY_PMID, REVIEW_PMID, ("europepmc",))  # Europe PMC's news meanwhile
    report = lab.poll(now=MUCH_LATER, **both)
    assert lab.papers_posted() - before == Counter({key_of(C.ICITE_ONLY_PMID): 1}), report.line()
    with lab.library() as library:
        assert all(library.paper(key) is not None for key in recorded)  # recorded again, quietly
    assert len(lab.slack.posts_with_metadata("il2watch_note", CHANNEL)) == notes, "no note after the rebuild"


def test_a_note_for_more_papers_than_its_metadata_holds_names_the_newest_and_dates_the_rest(lab):
    from il2watch.discovery import NOTE_IDS_BUDGET

    both = {"IL2WATCH_SOURCES": "pubmed,europepmc"}
    lab.poll(IL2WATCH_SOURCES="pubmed")
    C.add_new_citations(lab.literature)
    older = extra_preprints(lab, 75, first=830001, indexed=date(2024, 6, 23))
    newer = extra_preprints(lab, 75, first=840001, indexed=date(2024, 6, 25))
    lab.poll(**both)
    note = the_source_baseline_note(lab)
    assert note["found"] == 157 and note["preprints"] == 153  # the 150, and Europe PMC's seven of the world
    assert len(json.dumps(note["papers"])) <= NOTE_IDS_BUDGET and 100 <= len(note["papers"]) < 150
    assert {f"doi:{w.doi}" for w in newer} <= set(note["papers"]), "the newest are named"
    assert note["entered_by"] == "2024-06-23"  # every paper not named entered by then
    lose_the_library(lab)
    (fresh,) = extra_preprints(lab, 1, first=850001, indexed=date(2024, 6, 27))
    lab.literature.cite(C.ICITE_ONLY_PMID, REVIEW_PMID, ("europepmc",))  # entered 2024-06-22
    lab.poll(now=MUCH_LATER, **both)
    posted = lab.papers_posted()
    assert not {f"doi:{w.doi}" for w in older + newer} & set(posted), "nothing the note stood for is posted"
    assert posted[f"doi:{fresh.doi}"] == 1  # news from Europe PMC after its baseline is posted
    # the price of the date: a paper Europe PMC first lists after the loss and that entered by the note's
    # date is recorded, not posted
    assert key_of(C.ICITE_ONLY_PMID) not in posted
    with lab.library() as library:
        assert library.paper(key_of(C.ICITE_ONLY_PMID)) is not None


# ---------------------------------------------------------------- what nothing protected before


def test_europe_pmc_s_own_no_citations_404_is_zero_and_any_other_404_is_a_failure(lab):
    from il2watch.library import Library

    with Library(lab.tmp_path / "library.db") as library:  # a second watch, on a paper nobody cites
        library.add_watch(Watch(id="unrelated", pmid=UNRELATED_PMID, source="slack"), added_by="U0ADMIN01")
    report = lab.poll()
    assert "Europe PMC: " not in report.line()  # its own 404: nobody cites it, no failure
    assert any(r.status == 404 and UNRELATED_PMID in r.path for r in lab.epmc.requests)
    with lab.library() as library:
        assert library.source_status("europepmc")["status"] == "ok"
    lab.epmc.inject(404, path_contains=f"MED/{REVIEW_PMID}/citations")  # a 404 that is not Europe PMC's own
    report = lab.poll(now=MUCH_LATER)
    assert "watch review failed: Europe PMC: Europe PMC answered 404" in report.line()
    assert "is IL2WATCH_EUROPEPMC_URL right?" in report.line() and "watch unrelated failed" not in report.line()
    own = lab.epmc.none_body(REVIEW_PMID)  # its own body for the review, which it listed papers for before
    lab.epmc.inject(404, path_contains=f"MED/{REVIEW_PMID}/citations", body=own)
    report = lab.poll(now=MUCH_LATER + timedelta(hours=1))
    assert "treating it as an Europe PMC outage" in report.line() and "IL2WATCH_EUROPEPMC_URL" not in report.line()


def test_the_other_indexes_are_told_who_asks(lab):
    lab.poll()
    for stand_in in (lab.icite, lab.epmc, lab.openalex):
        agents = {r.headers.get("user-agent", "") for r in stand_in.requests}
        assert agents and all("il2watch" in a and "mailto:lab@example.org" in a for a in agents), agents
    assert all(r.param("mailto") == "lab@example.org" and r.param("api_key") for r in lab.openalex.requests)


def test_an_openalex_work_without_a_pmid_keeps_its_rebuilt_abstract_in_the_library_and_the_post(lab):
    lab.poll()
    C.add_new_citations(lab.literature)
    lab.poll(IL2WATCH_THREAD_ABSTRACT="1")
    with lab.library() as library:
        article = library.paper(OPENALEX_ARTICLE_KEY)
    assert article is not None and article.abstract[0].text == C.OPENALEX_ARTICLE.abstract
    post = lab.post_of(OPENALEX_ARTICLE_KEY)
    shown = json.dumps(post.blocks, ensure_ascii=False) + json.dumps(
        [reply.blocks for reply in post.replies], ensure_ascii=False
    )
    assert "Disease control was seen in 9." in shown and "Journal of Imaginary Immunology" in shown


def test_a_preprint_is_found_by_search_tagged_and_its_buttons_work(lab):
    from il2watch.commands import Context, answer
    from il2watch.commands.buttons import SAVE, known_paper, save_reply
    from il2watch.service import all_watches, insight_maker

    lab.poll()
    C.add_new_citations(lab.literature)
    lab.poll()
    post = lab.post_of(PREPRINT_SHARED_KEY)
    shown = json.dumps(post.blocks, ensure_ascii=False)
    assert "orthogonal IL-2" in shown  # its tags
    values = {
        element["action_id"]: element.get("value")
        for block in post.blocks
        if block.get("type") == "actions"
        for element in block["elements"]
    }
    assert values[SAVE] == PREPRINT_SHARED_KEY and set(values.values()) == {PREPRINT_SHARED_KEY}
    settings = lab.settings()
    with lab.library() as library:
        ctx = Context(
            library=library,
            settings=settings,
            insight_for=insight_maker(settings, library, summariser=False),
            user_id="U0READER1",
            channel_id=CHANNEL,
            watches=tuple(all_watches(settings, library)),
            now=lambda: LATER,
        )
        found = json.dumps(answer("search orthogonal receptor pairs", ctx).blocks, ensure_ascii=False)
        assert "Orthogonal IL-2 receptor pairs" in found
        key = known_paper(library, values[SAVE])
        assert key == PREPRINT_SHARED_KEY
        assert "Saved" in save_reply(ctx, key).text and library.saved_by("U0READER1") == [PREPRINT_SHARED_KEY]
        assert library.set_feedback(key, "U0READER1", 1) == (1, 0)


def test_a_digest_names_every_paper_by_its_identity(lab):
    lab.poll()
    C.add_new_citations(lab.literature)
    lab.poll(IL2WATCH_BURST="3")
    (digest,) = lab.slack.posts_with_metadata("il2watch_digest", CHANNEL)
    assert set(digest.metadata["event_payload"]["papers"]) == NEW_CITING


def test_a_lost_answer_for_a_preprint_post_is_found_in_the_channel_by_its_identity(lab):
    lab.poll()
    C.add_new_citations(lab.literature)
    lab.slack.inject("slow", method="conversations.history", delay=0)  # the check before posting reads
    lab.slack.inject(500, method="conversations.history")  # the check after the lost answer fails
    lab.slack.inject("accept_then_drop", method="chat.postMessage", when=lambda p: "receptor pairs" in str(p))
    lab.poll()
    assert lab.papers_posted()[PREPRINT_SHARED_KEY] == 1

    def state_of_its_row() -> str:
        with lab.library() as library:
            (row,) = [r for r in library.db.execute("select state, papers from outbox") if PREPRINT_SHARED_KEY in r[1]]
        return row[0]

    assert state_of_its_row() == "sending"  # posted, but il2watch could not learn it
    lab.slack.clear_faults()
    report = lab.poll(now=MUCH_LATER)  # the check before posting finds it in the channel by its identity
    assert lab.papers_posted()[PREPRINT_SHARED_KEY] == 1 and "1 already in Slack" in report.line()
    assert state_of_its_row() == "sent"


@pytest.mark.parametrize("ref", [f"doi:{C.PREPRINT_SHARED.doi.upper()}", C.PREPRINT_SHARED.ppr])
def test_il2watch_show_reads_a_preprint_by_its_doi_or_ppr_id(lab, ref, capsys):
    import argparse

    from il2watch.cli import cmd_show

    lab.poll()
    C.add_new_citations(lab.literature)
    lab.poll()
    assert cmd_show(lab.settings(), argparse.Namespace(paper=ref)) == 0
    shown = capsys.readouterr().out
    assert "Orthogonal IL-2 receptor pairs" in shown and f"https://doi.org/{C.PREPRINT_SHARED.doi}" in shown
    assert "Preprint · Research Square" in shown


def test_every_source_module_is_known_wherever_a_source_must_be():
    from il2watch.config import OPTIONS_BY_ATTR
    from il2watch.model import SOURCES
    from il2watch.sources import KINDS

    assert list(KINDS) == list(SOURCES), "each source module declares KIND, and model.SOURCES names its label"
    for name, kind in KINDS.items():
        assert kind.label == SOURCES[name] and kind.settings and all(s in OPTIONS_BY_ATTR for s in kind.settings)
        assert f"{name}_refresh" in kind.settings, "Settings.refresh_of reads <name>_refresh"
