"""What a poll posts, from what discovery found (``il2watch.planning.plan``, pure): baselines, restored watches,
claims, hold-back, bursts, digest mode, channels per watch, records that are never posted, sources added later
and the order of what is due. Each test builds its findings by hand and reads the outbox rows planned."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from il2watch.discovery import Findings, SourceBaseline, WatchFindings
from il2watch.library import WatchState
from il2watch.model import Insight, Paper, Reason, Watch
from il2watch.planning import Delivery, Policy, plan

LAB = "C0LAB"  # the default channel (IL2WATCH_CHANNEL)
OTHER = "C0OTHER"
REVIEW = Watch(id="review", pmid="35217787", label="the review")
QUERY = Watch(id="engineered-il2", query="engineered IL-2", label="engineered IL-2")
WATERMARK = {"at": "2026-03-10T12:00:00+00:00", "horizons": {"review": "2026-03-10"}}
POLICY = Policy(default_channel=LAB, mode="each", burst=10, baseline_posts=3, relevance_threshold=30.0, overlap_days=7)


def paper(pmid: str, entered: str = "2026-03-09", **fields: object) -> Paper:
    return Paper(pmid=pmid, title=f"Paper {pmid}", entry_date=entered, key=f"pmid:{pmid}", **fields)


def cites(watch: Watch = REVIEW, *sources: str) -> Reason:
    return Reason(watch.id, "cites", sources=sources or ("pubmed",))


def similar(watch: Watch = REVIEW, rank: int = 4) -> Reason:
    return Reason(watch.id, "similar", score=41234567, rank=rank, sources=("pubmed",))


def ongoing(watch: Watch, new: Mapping[str, list[Reason]], **state: object) -> WatchFindings:
    """A watch that has its baseline, with what this poll found new for it."""
    values: dict = {"baseline_at": "2026-01-05T09:00:00+00:00", "horizon": "2026-03-09", **state}
    return WatchFindings(WatchState(watch, **values), horizon="2026-03-10", new=dict(new))


def first(watch: Watch, new: Mapping[str, list[Reason]]) -> WatchFindings:
    """A watch polled for the first time."""
    return WatchFindings(WatchState(watch), horizon="2026-03-10", new=dict(new))


def restored(watch: Watch, new: Mapping[str, list[Reason]], horizon: str) -> WatchFindings:
    """A watch rebuilt from the channel after a lost library: its horizon from the newest watermark."""
    return WatchFindings(WatchState(watch, horizon=horizon, restored=True), horizon="2026-03-20", new=dict(new))


def planned(
    watches: Sequence[WatchFindings],
    papers: Sequence[Paper],
    *,
    relevance: Mapping[str, float] | None = None,
    claims: Mapping[str, set[str]] | None = None,
    baselines: Sequence[SourceBaseline] = (),
    **policy: object,
) -> list[Delivery]:
    """The outbox rows ``plan`` creates; every paper scores 50 unless ``relevance`` says otherwise."""
    relevance = relevance or {}
    claims = claims or {}
    insights = {p.key: Insight(summary="A summary.", relevance=relevance.get(p.key, 50.0)) for p in papers}

    def claimed(channel: str, keys: Sequence[str]) -> set[str]:
        return claims.get(channel, set()) & set(keys)

    return plan(
        Findings(watches=list(watches), papers={}, missing=set(), baselines=list(baselines)),
        papers={p.key: p for p in papers},
        insights=insights,
        claimed=claimed,
        policy=replace(POLICY, **policy),
        watermark=WATERMARK,
    )


def posts(deliveries: Sequence[Delivery], channel: str = LAB) -> list[str]:
    """The papers posted one by one to ``channel``, in the order planned."""
    return [d.papers[0] for d in deliveries if d.kind == "paper" and d.channel == channel]


def notes(deliveries: Sequence[Delivery]) -> list[Delivery]:
    return [d for d in deliveries if d.kind == "note"]


def reason_watches(delivery: Delivery, key: str = "") -> list[tuple[str, str]]:
    reasons = delivery.payload["reasons"][key] if key else delivery.payload["reasons"]
    return sorted((r["watch"], r["kind"]) for r in reasons)


# ---------------------------------------------------------------- a watch's first poll


def test_a_first_poll_posts_only_the_newest_baseline_posts_papers_and_one_note_with_the_counts():
    found = [paper("1", "2025-11-02"), paper("2", "2026-02-27"), paper("3", "2024-06-30"), paper("4", "2026-03-08")]
    found += [paper("5", "2026-01-15")]
    deliveries = planned([first(REVIEW, {p.key: [cites()] for p in found})], found, baseline_posts=3)

    assert sorted(posts(deliveries)) == ["pmid:2", "pmid:4", "pmid:5"]  # entered 2026-03-08, 02-27, 01-15
    [note] = notes(deliveries)
    assert note.channel == LAB and note.papers == ()
    assert note.payload["note"] == "baseline" and note.payload["watch"] == "review"
    assert (note.payload["found"], note.payload["posted"]) == (5, 3)
    assert len(deliveries) == 4


def test_a_first_poll_with_fewer_papers_than_baseline_posts_posts_them_all():
    found = [paper("1"), paper("2")]
    deliveries = planned([first(QUERY, {p.key: [Reason(QUERY.id, "query")] for p in found})], found)

    assert sorted(posts(deliveries)) == ["pmid:1", "pmid:2"]
    [note] = notes(deliveries)
    assert (note.payload["watch"], note.payload["found"], note.payload["posted"]) == ("engineered-il2", 2, 2)


def test_the_baseline_note_says_how_many_papers_are_posted_when_one_of_the_newest_is_held_back():
    weak = paper("9", "2026-03-09")  # the newest, but only similar and weak
    found = [paper("1", "2026-03-01"), paper("2", "2026-02-01"), paper("3", "2025-12-01")]
    new = {weak.key: [similar()], **{p.key: [cites()] for p in found}}
    deliveries = planned([first(REVIEW, new)], [weak, *found], relevance={weak.key: 5.0}, baseline_posts=3)

    [note] = notes(deliveries)  # rendered as "4 papers already cite it or are similar; posting the 3 most recent"
    assert note.payload["posted"] == len(posts(deliveries))


# ---------------------------------------------------------------- a watch rebuilt after a lost library


def test_a_restored_watch_posts_what_entered_after_its_horizon_less_the_overlap_and_no_second_baseline_note():
    # horizon 2026-03-10 less 7 days of overlap: papers entered before 2026-03-03 are baseline
    found = [paper("1", "2025-12-01"), paper("2", "2026-03-02"), paper("3", "2026-03-05"), paper("4", "2026-03-14")]
    deliveries = planned([restored(REVIEW, {p.key: [cites()] for p in found}, "2026-03-10")], found, overlap_days=7)

    assert sorted(posts(deliveries)) == ["pmid:3", "pmid:4"]
    assert notes(deliveries) == []


def test_a_restored_watch_posts_a_paper_entered_on_the_day_its_overlap_begins():
    on_the_day = paper("3", "2026-03-03")  # 2026-03-10 less 7 days: not before it, so not baseline
    deliveries = planned([restored(REVIEW, {on_the_day.key: [cites()]}, "2026-03-10")], [on_the_day], overlap_days=7)

    assert posts(deliveries) == ["pmid:3"]


# ---------------------------------------------------------------- claims


def test_a_paper_claimed_in_a_channel_is_not_planned_there_again_but_still_in_another_channel():
    elsewhere = replace(QUERY, channel=OTHER)
    a, b = paper("1"), paper("2")
    deliveries = planned(
        [
            ongoing(REVIEW, {a.key: [cites()], b.key: [cites()]}),
            ongoing(elsewhere, {a.key: [Reason(QUERY.id, "query")]}),
        ],
        [a, b],
        claims={LAB: {a.key}},
    )

    assert posts(deliveries, LAB) == ["pmid:2"]
    assert posts(deliveries, OTHER) == ["pmid:1"]


def test_a_first_poll_does_not_post_again_what_the_channel_already_has():
    found = [paper("1", "2026-03-09"), paper("2", "2026-03-08")]
    deliveries = planned([first(REVIEW, {p.key: [cites()] for p in found})], found, claims={LAB: {"pmid:1"}})

    assert posts(deliveries) == ["pmid:2"]


def test_digest_mode_does_not_plan_a_claimed_paper_either():
    a, b = paper("1"), paper("2")
    deliveries = planned(
        [ongoing(REVIEW, {a.key: [cites()], b.key: [cites()]})], [a, b], claims={LAB: {a.key}}, mode="digest"
    )

    assert [d.papers for d in deliveries] == [("pmid:2",)]


# ---------------------------------------------------------------- hold-back of weakly similar papers


def test_a_similar_only_paper_below_the_threshold_is_held_back():
    weak = paper("1")
    deliveries = planned([ongoing(REVIEW, {weak.key: [similar()]})], [weak], relevance={weak.key: 29.9})

    assert deliveries == []


def test_the_same_weak_paper_is_posted_when_it_also_cites_the_review():
    weak = paper("1")
    deliveries = planned([ongoing(REVIEW, {weak.key: [similar(), cites()]})], [weak], relevance={weak.key: 29.9})

    [post] = deliveries
    assert post.papers == ("pmid:1",) and reason_watches(post) == [("review", "cites"), ("review", "similar")]


def test_a_held_back_paper_is_posted_when_a_stronger_reason_comes_in_a_later_poll():
    weak = paper("1")
    # its similarity is known from an earlier poll; what is new now is that it cites the review
    deliveries = planned([ongoing(REVIEW, {weak.key: [cites()]})], [weak], relevance={weak.key: 5.0})

    assert posts(deliveries) == ["pmid:1"]


def test_a_weak_paper_another_watch_found_by_query_in_the_same_channel_is_posted():
    weak = paper("1")
    deliveries = planned(
        [ongoing(REVIEW, {weak.key: [similar()]}), ongoing(QUERY, {weak.key: [Reason(QUERY.id, "query")]})],
        [weak],
        relevance={weak.key: 5.0},
    )

    [post] = deliveries
    assert reason_watches(post) == [("engineered-il2", "query"), ("review", "similar")]


def test_a_similar_only_paper_scoring_exactly_the_threshold_is_posted():
    just = paper("1")
    deliveries = planned([ongoing(REVIEW, {just.key: [similar()]})], [just], relevance={just.key: 30.0})

    assert posts(deliveries) == ["pmid:1"]


# ---------------------------------------------------------------- bursts and digest mode


def test_more_than_burst_due_papers_in_one_channel_go_out_as_one_digest():
    found = [paper(str(n)) for n in range(1, 5)]
    deliveries = planned([ongoing(REVIEW, {p.key: [cites()] for p in found})], found, burst=3)

    [digest] = deliveries
    assert digest.kind == "digest" and digest.channel == LAB and digest.state == "due"
    assert sorted(digest.papers) == ["pmid:1", "pmid:2", "pmid:3", "pmid:4"]
    assert all(reason_watches(digest, p.key) == [("review", "cites")] for p in found)


def test_exactly_burst_due_papers_are_posted_one_by_one():
    found = [paper(str(n)) for n in range(1, 4)]
    deliveries = planned([ongoing(REVIEW, {p.key: [cites()] for p in found})], found, burst=3)

    assert sorted(posts(deliveries)) == ["pmid:1", "pmid:2", "pmid:3"] and len(deliveries) == 3
    assert all(d.state == "due" and d.payload["watermark"] == WATERMARK for d in deliveries)


def test_a_burst_is_counted_per_channel():
    mine = [paper(str(n)) for n in range(1, 5)]
    theirs = [paper(str(n)) for n in range(11, 14)]
    elsewhere = replace(QUERY, channel=OTHER)
    deliveries = planned(
        [
            ongoing(REVIEW, {p.key: [cites()] for p in mine}),
            ongoing(elsewhere, {p.key: [Reason(QUERY.id, "query")] for p in theirs}),
        ],
        [*mine, *theirs],
        burst=3,
    )

    assert [(d.kind, d.channel, len(d.papers)) for d in deliveries if d.kind == "digest"] == [("digest", LAB, 4)]
    assert sorted(posts(deliveries, OTHER)) == ["pmid:11", "pmid:12", "pmid:13"]


def test_a_burst_of_zero_never_makes_a_digest():
    found = [paper(str(n)) for n in range(1, 26)]
    deliveries = planned([ongoing(REVIEW, {p.key: [cites()] for p in found})], found, burst=0)

    assert len(posts(deliveries)) == 25 and len(deliveries) == 25


def test_a_held_back_paper_does_not_count_toward_a_burst():
    found = [paper(str(n)) for n in range(1, 4)]
    weak = paper("9")
    new = {weak.key: [similar()], **{p.key: [cites()] for p in found}}
    deliveries = planned([ongoing(REVIEW, new)], [weak, *found], relevance={weak.key: 1.0}, burst=3)

    assert sorted(posts(deliveries)) == ["pmid:1", "pmid:2", "pmid:3"] and len(deliveries) == 3


def test_digest_mode_plans_every_due_paper_as_a_waiting_row_for_the_digest():
    found = [paper(str(n)) for n in range(1, 15)]  # more than the burst: still one row each, waiting
    weak = paper("99")
    new = {weak.key: [similar()], **{p.key: [cites()] for p in found}}
    deliveries = planned([ongoing(REVIEW, new)], [weak, *found], relevance={weak.key: 1.0}, mode="digest", burst=3)

    assert {(d.kind, d.state, d.channel) for d in deliveries} == {("paper", "waiting", LAB)}
    assert sorted(d.papers for d in deliveries) == sorted((p.key,) for p in found)
    assert all(reason_watches(d) == [("review", "cites")] for d in deliveries)


# ---------------------------------------------------------------- channels per watch


def test_a_paper_two_watches_found_for_the_same_channel_is_planned_once_with_both_reasons():
    both = paper("1")
    deliveries = planned(
        [
            ongoing(REVIEW, {both.key: [cites(REVIEW, "pubmed", "icite")]}),
            ongoing(QUERY, {both.key: [Reason(QUERY.id, "query", sources=("pubmed",))]}),
        ],
        [both],
    )

    [post] = deliveries
    assert post.channel == LAB and post.papers == ("pmid:1",)
    assert reason_watches(post) == [("engineered-il2", "query"), ("review", "cites")]
    assert {r["watch"]: r["sources"] for r in post.payload["reasons"]} == {
        "review": ["pubmed", "icite"],
        "engineered-il2": ["pubmed"],
    }


def test_a_watch_with_its_own_channel_posts_there_and_the_others_post_to_the_default():
    both = paper("1")
    own = replace(QUERY, channel=OTHER)
    deliveries = planned(
        [ongoing(REVIEW, {both.key: [cites()]}), ongoing(own, {both.key: [Reason(QUERY.id, "query")]})], [both]
    )

    assert sorted((d.channel, d.papers) for d in deliveries) == [(LAB, ("pmid:1",)), (OTHER, ("pmid:1",))]
    by_channel = {d.channel: reason_watches(d) for d in deliveries}
    assert by_channel == {LAB: [("review", "cites")], OTHER: [("engineered-il2", "query")]}


def test_a_first_polls_baseline_note_goes_to_the_watchs_own_channel():
    own = replace(QUERY, channel=OTHER)
    found = [paper("1")]
    deliveries = planned([first(own, {"pmid:1": [Reason(QUERY.id, "query")]})], found)

    assert sorted((d.kind, d.channel) for d in deliveries) == [("note", OTHER), ("paper", OTHER)]


# ---------------------------------------------------------------- records that are never posted


def test_europe_pmc_patents_and_theses_are_never_planned():
    patent = Paper(pmid="", title="A patent", entry_date="2026-03-09", key="epmc:PAT/WO1", epmc="PAT/WO1")
    thesis = Paper(pmid="", title="A thesis", entry_date="2026-03-08", key="epmc:ETH/123456", epmc="ETH/123456")
    article = paper("1", "2026-01-01")
    new = {patent.key: [cites(REVIEW, "europepmc")], thesis.key: [cites(REVIEW, "europepmc")], article.key: [cites()]}

    for watch in (first(REVIEW, new), ongoing(REVIEW, new)):
        for mode in ("each", "digest"):
            deliveries = planned([watch], [patent, thesis, article], mode=mode, burst=1)
            assert all(not key.startswith("epmc:") for d in deliveries for key in d.papers)
            assert [d.papers for d in deliveries if d.papers] == [("pmid:1",)]


# ---------------------------------------------------------------- a source enabled later


def test_a_source_enabled_later_produces_one_note_per_watch_and_posts_nothing_it_revealed():
    own = replace(QUERY, channel=OTHER)
    quiet = {f"ppr:PPR{n}": [cites(REVIEW, "europepmc")] for n in range(1, 4)}
    review = WatchFindings(WatchState(REVIEW, baseline_at="2026-01-05"), horizon="2026-03-10", quiet=quiet)
    query = WatchFindings(
        WatchState(own, baseline_at="2026-01-05"),
        horizon="2026-03-10",
        quiet={"pmid:7": [Reason(QUERY.id, "query", sources=("europepmc",))]},
    )
    revealed = [Paper(pmid="", title=f"Preprint {n}", key=f"ppr:PPR{n}", ppr=f"PPR{n}") for n in range(1, 4)]
    deliveries = planned(
        [review, query],
        [*revealed, paper("7")],
        baselines=[SourceBaseline("europepmc", "review", 143, 12), SourceBaseline("europepmc", "engineered-il2", 5, 0)],
    )

    assert all(d.kind == "note" for d in deliveries)
    by_watch = {d.payload["watch"]: d for d in deliveries}
    assert len(deliveries) == 2 and set(by_watch) == {"review", "engineered-il2"}
    assert by_watch["review"].channel == LAB and by_watch["engineered-il2"].channel == OTHER
    note = by_watch["review"].payload
    assert (note["note"], note["source"], note["found"], note["preprints"]) == ("source_baseline", "europepmc", 143, 12)


def test_a_source_baseline_note_comes_beside_the_news_other_sources_brought():
    news = paper("1")
    review = WatchFindings(
        WatchState(REVIEW, baseline_at="2026-01-05"),
        horizon="2026-03-10",
        new={news.key: [cites()]},
        quiet={"ppr:PPR1": [cites(REVIEW, "openalex")]},
    )
    preprint = Paper(pmid="", title="Preprint", key="ppr:PPR1", ppr="PPR1")
    deliveries = planned([review], [news, preprint], baselines=[SourceBaseline("openalex", "review", 1, 1)])

    assert posts(deliveries) == ["pmid:1"]
    assert [d.payload["source"] for d in notes(deliveries)] == ["openalex"]


# ---------------------------------------------------------------- order


def test_due_papers_are_planned_most_relevant_first():
    scores = {"pmid:1": 12.0, "pmid:2": 88.0, "pmid:3": 47.5, "pmid:4": 63.0}
    found = [paper("1", "2026-03-09"), paper("2", "2026-03-01"), paper("3", "2026-03-05"), paper("4", "2026-02-20")]
    new = {p.key: [cites()] for p in found}
    expected = ["pmid:2", "pmid:4", "pmid:3", "pmid:1"]

    assert posts(planned([ongoing(REVIEW, new)], found, relevance=scores)) == expected
    [digest] = planned([ongoing(REVIEW, new)], found, relevance=scores, burst=2)
    assert list(digest.papers) == expected
    waiting = planned([ongoing(REVIEW, new)], found, relevance=scores, mode="digest")
    assert [d.papers[0] for d in waiting] == expected
