"""Discovery and storage: `poll_once` against the stand-in NCBI, into a real SQLite library."""

import dataclasses
import time
from datetime import date

import pytest

from il2watch.library import Library
from il2watch.service import PollError, poll_once
from tests.conftest import BOTH_BACKENDS
from tests.data import records as R
from tests.stand_ins.eutils import max_requests_in_any_second
from tests.stand_ins.pubmed_world import record
from tests.test_reliability_support import integrity

TODAY = date.today()


def endpoints(server):
    return [r.endpoint for r in server.requests]


def poll(settings, printed=None):
    return poll_once(settings, out=(printed.append if printed is not None else lambda _: None))


def linked(settings):
    with Library(settings.db_path) as library:
        rows = library.db.execute("select watch, replace(paper, 'pmid:', ''), kind from reasons").fetchall()
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
        due = {row.papers[0].removeprefix("pmid:") for row in library.outbox("due", kind="paper")}
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
    "fault, message",
    [("truncate", "not complete XML"), ("html", "HTML page instead of XML"), ("error", "NCBI reported an error")],
)
def test_a_broken_efetch_answer_fails_the_poll_and_marks_nothing_seen(make_settings, ncbi_server, fault, message):
    settings = make_settings()
    ncbi_server.inject(fault, endpoint="efetch")
    with pytest.raises(PollError, match=message):
        poll(settings)
    assert linked(settings) == set()
    with Library(settings.db_path) as library:
        assert library.count_papers() == 0 and library.outbox() == []
        run = library.last_run()
        assert run["status"] == "error" and message.split()[0] in run["error"]
        assert integrity(settings.db_path) == "ok"
    poll(settings)  # the next poll finds everything
    assert {pmid for _, pmid, kind in linked(settings) if kind == "cites"} == set(R.REVIEW_CITED_BY)


@BOTH_BACKENDS
@pytest.mark.parametrize(
    "fault, endpoint, failing, working, message",
    [
        ("error", "esearch", "engineered-il2", "review", "NCBI reported an error for ESearch"),
        ("truncate", "esearch", "engineered-il2", "review", "not complete XML"),
        ("html", "elink", "review", "engineered-il2", "HTML page instead of XML"),
    ],
)
def test_a_broken_answer_fails_that_watch_alone_by_name(
    make_settings, ncbi_server, fault, endpoint, failing, working, message
):
    settings = make_settings()
    ncbi_server.inject(fault, endpoint=endpoint)
    report = poll(settings)
    assert report.status == "ok"
    assert f"watch {failing} failed: " in report.line() and message in report.line()
    assert {watch for watch, _, _ in linked(settings)} == {working}, "the other watch went on"
    with Library(settings.db_path) as library:
        assert library.watch_state(settings.watch(failing)).horizon == "", "the failed watch keeps its place"
        assert library.watch_state(settings.watch(working)).baseline_at
        assert {row.payload.get("watch") for row in library.outbox(kind="note")} == {working}
    assert poll(settings).problems == []  # the next poll serves it
    assert {watch for watch, _, _ in linked(settings)} == {"review", "engineered-il2"}


@BOTH_BACKENDS
def test_every_watch_failing_fails_the_poll_naming_each(make_settings, ncbi_server):
    settings = make_settings()
    ncbi_server.inject("html", endpoint="elink")
    ncbi_server.inject("error", endpoint="esearch")
    with pytest.raises(PollError) as failed:
        poll(settings)
    assert "watch review failed: " in str(failed.value) and "watch engineered-il2 failed: " in str(failed.value)
    assert linked(settings) == set()


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
    report = poll(settings)
    assert report.problems == [
        f"watch review failed: NCBI returned no citing papers for the review (PMID {R.REVIEW_PMID}) though "
        f"{len(R.REVIEW_CITED_BY)} were known; treating it as an NCBI outage and trying again next poll"
    ]
    assert linked(settings) == before


@BOTH_BACKENDS
def test_an_empty_similar_articles_answer_where_some_were_known_is_an_outage(make_settings, ncbi_server):
    settings = make_settings()
    poll(settings)
    before = linked(settings)
    ncbi_server.inject("empty", endpoint="elink")  # the similar-articles ELink comes first, and comes back empty
    report = poll(settings)
    assert report.problems == [
        f"watch review failed: NCBI returned no similar articles for the review (PMID {R.REVIEW_PMID}) though "
        f"{len(R.REVIEW_SIMILAR)} were known; treating it as an NCBI outage and trying again next poll"
    ]
    assert linked(settings) == before


@BOTH_BACKENDS
def test_an_empty_search_during_an_outage_is_not_news(make_settings, ncbi_server, world):
    settings = make_settings()
    for pmid in R.ENGINEERED_IL2_MATCHES:  # entered this week, so the overlap window must see them again
        world.add(dataclasses.replace(world.get(pmid), entry_date=TODAY))
    poll(settings)
    before = linked(settings)
    ncbi_server.inject("empty", endpoint="esearch")
    report = poll(settings)
    (problem,) = report.problems
    assert problem.startswith("watch engineered-il2 failed: NCBI's search for engineered IL-2 came back empty")
    assert linked(settings) == before


@BOTH_BACKENDS
def test_an_unknown_watched_pmid_is_named(make_settings, ncbi_server, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(
        '[[watch]]\nid = "typo"\npmid = "99999999"\n\n[[watch]]\nid = "review"\npmid = "35217787"\n',
        encoding="utf-8",
    )
    settings = make_settings(IL2WATCH_CONFIG=str(config))
    report = poll(settings)  # no links at all looks like a paper nobody cites yet, until ESummary is asked
    assert report.problems == ["watch typo failed: PMID 99999999 is not in PubMed; fix or remove the watch"]
    assert "watch typo failed: PMID 99999999 is not in PubMed" in report.line()
    assert report.new > 0, "the review's watch went on"
    with Library(settings.db_path) as library:
        assert library.watch_state(settings.watch("typo")).baseline_at == ""


@BOTH_BACKENDS
def test_a_deleted_watched_pmid_fails_that_watch_alone_naming_the_pmid(make_settings, ncbi_server, world, tmp_path):
    world.add(record("31000001", title="A paper later withdrawn", entry_date="2020-01-01"))
    world.cite(R.TREG_MUTEIN_PMID, "31000001")
    world.withdraw("31000001", message="ID 31000001 was deleted")
    config = tmp_path / "two.toml"
    config.write_text(
        '[[watch]]\nid = "gone"\npmid = "31000001"\n\n[[watch]]\nid = "review"\npmid = "35217787"\n',
        encoding="utf-8",
    )
    report = poll(make_settings(IL2WATCH_CONFIG=str(config)))
    assert report.status == "ok"
    (problem,) = report.problems
    assert problem.startswith("watch gone failed: ") and "PMID 31000001" in problem and "was deleted" in problem
    assert {pmid for _, pmid, kind in linked(make_settings()) if kind == "cites"} == set(R.REVIEW_CITED_BY)


def test_unreachable_ncbi_fails_at_once_with_one_line(make_settings, ncbi_server):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = make_settings(IL2WATCH_EUTILS_URL=f"http://127.0.0.1:{port}/entrez/eutils/", IL2WATCH_NCBI_BACKOFF="5")
    started = time.monotonic()
    with pytest.raises(PollError) as failed:
        poll(settings)
    assert time.monotonic() - started < 2, "no retries, no backoff"
    assert str(failed.value) == (
        f"NCBI cannot be reached: 127.0.0.1:{port} refused the connection; check the network, or IL2WATCH_EUTILS_URL"
    )


@BOTH_BACKENDS
def test_a_query_watch_after_a_long_downtime_asks_from_its_last_horizon_less_the_overlap(
    make_settings, ncbi_server, world
):
    """Not from today less the overlap: papers that entered PubMed during the downtime would be lost."""
    settings = make_settings()
    poll(settings)
    with Library(settings.db_path) as library:
        library.set_watch_progress(settings.watch("engineered-il2"), horizon="2024-01-10")
    world.add(record("41000009", title="An engineered IL-2 mutein in lupus", entry_date="2024-02-20"))
    world.add_query(R.ENGINEERED_IL2_QUERY, list(R.ENGINEERED_IL2_MATCHES) + ["41000009"])
    ncbi_server.clear_requests()
    report = poll(settings)
    search = next(r for r in ncbi_server.requests if r.endpoint == "esearch")
    assert search.params["mindate"] == [f"2024/01/{10 - settings.overlap_days:02d}"]
    assert report.new == 1 and ("engineered-il2", "41000009", "query") in linked(settings)


@BOTH_BACKENDS
def test_words_pubmed_cannot_use_are_named_in_the_poll_line_and_in_status(make_settings, ncbi_server, tmp_path):
    from il2watch.commands.status import format_status_text, status_facts

    config = tmp_path / "typo.toml"
    config.write_text(
        '[[watch]]\nid = "tregs"\nquery = "interleukin AND lupsu AND regulatory[xyzfield]"\n', encoding="utf-8"
    )
    settings = make_settings(IL2WATCH_CONFIG=str(config))
    report = poll(settings)
    assert report.status == "ok" and report.new > 0, "NCBI searched without them, and so did the watch"
    warnings = [
        "watch tregs warning: PubMed does not know “lupsu” and searched without it",
        "watch tregs warning: PubMed has no search field [xyzfield] and searched without it",
    ]
    assert report.problems == warnings and report.line().endswith("; " + "; ".join(warnings))
    with Library(settings.db_path) as library:
        text = format_status_text(status_facts(library, settings))
    assert [line for line in text.splitlines() if line.startswith("Watch problem: ")] == [
        f"Watch problem: {w}" for w in warnings
    ]


@BOTH_BACKENDS
def test_a_similarity_score_of_ten_to_the_thirty_fails_that_watch_with_one_line(make_settings, ncbi_server, world):
    world.set_similar(R.REVIEW_PMID, [(R.IL15_PMID, 10**30)])
    report = poll(make_settings())
    (problem,) = report.problems
    assert problem.startswith("watch review failed: NCBI sent a similarity score that is not a usable number")
    assert report.status == "ok" and {w for w, _, _ in linked(make_settings())} == {"engineered-il2"}


@pytest.mark.parametrize("count", ["abc", ""])
def test_an_esearch_count_that_is_not_a_number_fails_that_watch_with_one_line(make_settings, ncbi_server, count):
    ncbi_server.inject("count", endpoint="esearch", message=count)
    report = poll(make_settings())
    assert report.problems == [
        f"watch engineered-il2 failed: NCBI's ESearch answer gives a Count that is not a number ({count!r})"
    ]


@BOTH_BACKENDS
def test_a_record_the_parser_rejects_is_reported_by_pmid_and_the_rest_is_stored(make_settings, ncbi_server, world):
    from il2watch.commands.status import format_status_text, status_facts

    settings = make_settings()
    poll(settings)
    world.add(*R.real_shape_records())
    for rec in R.real_shape_records():
        world.cite(rec.pmid, R.REVIEW_PMID)
    report = poll(settings)
    assert report.stored == len(R.real_shape_records()) - 2
    assert [p.split(" cannot be read")[0] for p in report.problems] == [
        f"PubMed's record for PMID {R.UNKNOWN_ELEMENT_PMID}",
        f"PubMed's record for PMID {R.NO_ARTICLE_PMID}",
    ]
    with Library(settings.db_path) as library:
        assert {row["pmid"] for row in library.unreadable()} == {R.UNKNOWN_ELEMENT_PMID, R.NO_ARTICLE_PMID}
        text = format_status_text(status_facts(library, settings))
    assert f"Unreadable PubMed record: PMID {R.NO_ARTICLE_PMID}: the record lacks 'Article'" in text


@BOTH_BACKENDS
def test_a_record_nobody_asked_for_is_not_stored(make_settings, ncbi_server, world):
    """A mirror that slips a rewritten copy of the review into an EFetch answer changes nothing."""
    settings = make_settings()
    poll(settings)
    with Library(settings.db_path) as library:
        review_before = library.paper(R.REVIEW_PMID)
    assert review_before is not None
    world.add(record("41000005", title="A new IL-2 mutein paper", entry_date=TODAY))
    world.cite("41000005", R.REVIEW_PMID)
    forged = dataclasses.replace(world.get(R.REVIEW_PMID), title="Rewritten by a mirror")
    ncbi_server.inject("stowaway", endpoint="efetch", record=forged)
    report = poll(settings)
    assert report.stored == 1
    with Library(settings.db_path) as library:
        assert library.paper(R.REVIEW_PMID) == review_before
        assert library.paper("41000005") is not None


NOT_PMIDS = ["12}, x={y", "0", "035217787"]  # a BibTeX key's breakout, no PubMed ID, the review's PMID zero-padded


def test_ids_that_are_not_pmids_in_esearch_and_elink_answers_are_left_out_and_named(make_settings, ncbi_server, caplog):
    """A mirror writes raw ids into ESearch's IdList and into both ELinks' link lists, beside a good PMID of
    a paper nothing else links: the good one is stored with each reason, no bad one under any, and the log
    names each answer that carried them."""
    settings = make_settings()
    ncbi_server.inject("ids", endpoint="esearch", ids=[*NOT_PMIDS, R.UNRELATED_PMID])
    ncbi_server.inject("ids", endpoint="elink", times=2, ids=[*NOT_PMIDS, R.UNRELATED_PMID])

    report = poll(settings)

    assert report.status == "ok" and ncbi_server.pending_faults == []
    reasons = linked(settings)
    assert {kind for _, pmid, kind in reasons if pmid == R.UNRELATED_PMID} == {"query", "similar", "cites"}
    assert not {pmid for _, pmid, _ in reasons} & set(NOT_PMIDS)
    with Library(settings.db_path) as library:
        assert library.paper(R.UNRELATED_PMID) is not None
        stored = {key for (key,) in library.db.execute("select paper from papers").fetchall()}
    assert not [key for key in stored if any(bad in key for bad in ("}", "={", "pmid:0"))], stored
    asked = [i for r in ncbi_server.requests if r.endpoint == "efetch" for v in r.params["id"] for i in v.split(",")]
    fragments = {part.strip() for bad in NOT_PMIDS for part in bad.split(",")}  # as a comma-joined id= reads
    assert R.UNRELATED_PMID in asked and not {i.strip() for i in asked} & fragments, "EFetch is never asked for them"
    assert "stay unseen" not in caplog.text, "nor are they left to be asked for again next poll"
    for answer in ("ESearch answer", "ELink similar-articles answer", "ELink citing-articles answer"):
        assert f"NCBI's {answer} carried 3 id(s) that are not PMIDs (12}}, x={{y, 0, 035217787); left out" in (
            caplog.text
        ), answer
