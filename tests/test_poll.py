"""Discovery and storage: `poll_once` against the stand-in NCBI, into a real SQLite library."""

import dataclasses
from datetime import date

import pytest

from il2watch.library import Library
from il2watch.service import PollError, poll_once
from tests.conftest import BOTH_BACKENDS
from tests.data import records as R
from tests.stand_ins.eutils import max_requests_in_any_second
from tests.stand_ins.pubmed_world import record

TODAY = date.today()


def endpoints(server):
    return [r.endpoint for r in server.requests]


def poll(settings, printed=None):
    return poll_once(settings, out=(printed.append if printed is not None else lambda _: None))


def linked(settings):
    with Library(settings.db_path) as library:
        rows = library.db.execute("select watch, pmid, kind from reasons").fetchall()
    return {tuple(row) for row in rows}


@BOTH_BACKENDS
def test_first_poll_records_the_baseline_with_every_reason_and_shows_three(make_settings, ncbi_server):
    settings = make_settings()
    printed = []
    report = poll(settings, printed)
    reasons = linked(settings)
    assert {pmid for _, pmid, kind in reasons if kind == "cites"} == set(R.REVIEW_CITED_BY)
    assert {pmid for _, pmid, kind in reasons if kind == "similar"} == {p for p, _ in R.REVIEW_SIMILAR}
    query_hits = {pmid for watch, pmid, kind in reasons if kind == "query"}
    assert query_hits == set(R.ENGINEERED_IL2_MATCHES) - {R.REVIEW_PMID} or query_hits == set(R.ENGINEERED_IL2_MATCHES)
    # a paper found three ways keeps all three reasons
    assert {kind for _, pmid, kind in reasons if pmid == R.NOT_ALPHA_CANCER_PMID} == {"cites", "similar", "query"}
    assert R.REVIEW_PMID not in {pmid for _, pmid, kind in reasons if kind != "query"}
    with Library(settings.db_path) as library:
        assert library.count_papers() == len({pmid for _, pmid, _ in reasons})
        notes = library.outbox(kind="note")
        posts = library.outbox(kind="paper")
    assert len(notes) == 2 and len(posts) == 3
    assert report.new == len({pmid for _, pmid, _ in reasons})
    # no Slack token: the notes and the posts are printed, and nothing is marked delivered
    assert report.printed == 5 and any("Started watching the review" in text for text in printed)
    assert all(row.state == "due" for row in posts)
    # the cost: two ELinks for the watched paper, one ESearch for the query, one EFetch for the new papers
    assert sorted(endpoints(ncbi_server)) == ["efetch", "elink", "elink", "esearch"]


@BOTH_BACKENDS
def test_second_poll_stores_exactly_the_new_papers_with_all_their_reasons(make_settings, ncbi_server, world):
    settings = make_settings()
    poll(settings)
    before = linked(settings)
    ncbi_server.clear_requests()

    world.add(record("41000001", title="A CD122-biased IL-2 mutein variant in melanoma", entry_date=TODAY))
    world.cite("41000001", R.REVIEW_PMID)
    world.add_query(R.ENGINEERED_IL2_QUERY, list(R.ENGINEERED_IL2_MATCHES) + ["41000001"])
    world.add(record("41000002", title="Similar but not citing", entry_date=TODAY))
    world.set_similar(R.REVIEW_PMID, [("41000002", 45_000_000), *R.REVIEW_SIMILAR], self_score=R.REVIEW_SELF_SCORE)
    world.cite(R.IL15_PMID, R.REVIEW_PMID)  # an older paper that newly cites the review

    report = poll(settings)
    added = linked(settings) - before
    assert {(pmid, kind) for _, pmid, kind in added} == {
        ("41000001", "cites"),
        ("41000001", "query"),
        ("41000002", "similar"),
        (R.IL15_PMID, "cites"),
    }
    assert report.new == 3 and report.stored == 2  # IL15 was stored already: not fetched again
    assert sorted(endpoints(ncbi_server)) == ["efetch", "elink", "elink", "esearch"]
    efetch = next(r for r in ncbi_server.requests if r.endpoint == "efetch")
    assert sorted(efetch.params["id"][0].split(",")) == ["41000001", "41000002"]
    with Library(settings.db_path) as library:
        due = {row.pmids[0] for row in library.outbox("due", kind="paper")}
    assert {"41000001", R.IL15_PMID} <= due


@BOTH_BACKENDS
def test_a_poll_that_finds_nothing_costs_two_elinks_and_one_esearch(make_settings, ncbi_server):
    settings = make_settings()
    poll(settings)
    ncbi_server.clear_requests()
    report = poll(settings)
    assert report.new == 0
    assert sorted(endpoints(ncbi_server)) == ["elink", "elink", "esearch"]


@BOTH_BACKENDS
def test_query_polls_overlap_the_last_window(make_settings, ncbi_server):
    settings = make_settings()
    poll(settings)
    ncbi_server.clear_requests()
    poll(settings)
    search = next(r for r in ncbi_server.requests if r.endpoint == "esearch")
    start = date.fromisoformat(search.params["mindate"][0].replace("/", "-"))
    assert (TODAY - start).days == settings.overlap_days
    assert search.params["datetype"] == ["edat"]


def test_never_more_than_three_requests_in_a_second(make_settings, ncbi_server, world):
    settings = make_settings(NCBI_API_KEY="")
    assert settings.ncbi_rate == 3
    world.generate_citing(R.REVIEW_PMID, 700, start_pmid=42_000_000)
    poll(settings)
    poll(settings)
    assert max_requests_in_any_second(ncbi_server.requests) <= 3
    assert ncbi_server.rate_violations == 0
    assert all(
        r.params.get("tool") == ["il2watch"]
        and r.params.get("email") == ["lab@example.org"]
        and "api_key" not in r.params
        for r in ncbi_server.requests
    )


def test_with_an_api_key_never_more_than_ten_a_second(make_settings, ncbi_server, world):
    settings = make_settings()
    world.generate_citing(R.REVIEW_PMID, 2500, start_pmid=43_000_000)
    poll(settings)
    assert max_requests_in_any_second(ncbi_server.requests) <= 10
    assert ncbi_server.rate_violations == 0
    assert all(r.params.get("api_key") == ["stand-in-key"] for r in ncbi_server.requests)


@BOTH_BACKENDS
def test_a_paper_only_looked_up_is_not_seen_by_any_watch(make_settings, ncbi_server, world):
    from il2watch import pubmed
    from il2watch.service import make_eutils

    settings = make_settings()
    poll(settings)
    world.add(record("41000003", title="Looked up before it cited the review", entry_date=TODAY))
    with Library(settings.db_path) as library:
        library.save_papers(pubmed.fetch_papers(make_eutils(settings), ["41000003"]))
    world.cite("41000003", R.REVIEW_PMID)
    report = poll(settings)
    assert report.new == 1
    assert ("review", "41000003", "cites") in linked(settings)


@pytest.mark.parametrize(
    "fault, endpoint, message",
    [
        ("truncate", "efetch", "not complete XML"),
        ("html", "efetch", "HTML page instead of XML"),
        ("error", "esearch", "NCBI reported an error"),
        ("html", "elink", "HTML page instead of XML"),
    ],
)
def test_a_broken_answer_fails_the_poll_and_marks_nothing_seen(make_settings, ncbi_server, fault, endpoint, message):
    settings = make_settings()
    ncbi_server.inject(fault, endpoint=endpoint)
    with pytest.raises(PollError, match=message):
        poll(settings)
    assert linked(settings) == set()
    with Library(settings.db_path) as library:
        assert library.count_papers() == 0 and library.outbox() == []
        run = library.last_run()
        assert run["status"] == "error" and message.split()[0] in run["error"]
        assert library.integrity_ok()
    poll(settings)  # the next poll finds everything
    assert {pmid for _, pmid, kind in linked(settings) if kind == "cites"} == set(R.REVIEW_CITED_BY)


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_transient_statuses_are_retried_within_the_poll(make_settings, ncbi_server, status):
    settings = make_settings()
    ncbi_server.inject(status, endpoint="elink")
    ncbi_server.inject(status, endpoint="efetch")
    report = poll(settings)
    assert report.status == "ok" and report.new > 0


@BOTH_BACKENDS
def test_an_empty_elink_during_an_outage_is_not_news(make_settings, ncbi_server):
    settings = make_settings()
    poll(settings)
    before = linked(settings)
    ncbi_server.inject("empty", endpoint="elink", times=2)
    with pytest.raises(PollError, match="treating it as an NCBI outage"):
        poll(settings)
    assert linked(settings) == before


@BOTH_BACKENDS
def test_an_empty_search_during_an_outage_is_not_news(make_settings, ncbi_server, world):
    settings = make_settings()
    for pmid in R.ENGINEERED_IL2_MATCHES:  # entered this week, so the overlap window must see them again
        world.add(dataclasses.replace(world.get(pmid), entry_date=TODAY))
    poll(settings)
    ncbi_server.inject("empty", endpoint="esearch")
    with pytest.raises(PollError, match="came back empty"):
        poll(settings)


def test_an_unknown_watched_pmid_is_named(make_settings, ncbi_server, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[[watch]]\nid = "typo"\npmid = "99999999"\n', encoding="utf-8")
    settings = make_settings(IL2WATCH_CONFIG=str(config))
    report = poll(settings)  # an id with no links looks like a paper nobody cites yet
    assert report.new == 0


def test_unreachable_ncbi_says_so(make_settings):
    settings = make_settings(IL2WATCH_EUTILS_URL="http://127.0.0.1:9/entrez/eutils/", IL2WATCH_NCBI_ATTEMPTS="2")
    with pytest.raises(PollError, match=r"NCBI elink failed after 2 attempts .* reachable\?"):
        poll(settings)
