"""Slack delivery through the real slack_sdk client to the stand-in Slack: once each, whatever happens."""

from collections import Counter
from datetime import UTC, date

import pytest

from il2watch.library import Library
from il2watch.render import check_limits
from il2watch.service import PollError, bundle_digests, deliver_due, poll_once
from tests.conftest import BOTH_BACKENDS, lose_library
from tests.data import records as R
from tests.stand_ins.pubmed_world import record

TODAY = date.today()
CHANNEL = "C0PAPERS1"


def poll(settings):
    return poll_once(settings, out=lambda _: None)


def paper_posts(slack_server, channel=CHANNEL):
    return [m for m in slack_server.posts_with_metadata("il2watch_paper", channel)]


def posted_pmids(slack_server, channel=CHANNEL):
    pmids = [m.metadata["event_payload"]["pmid"] for m in paper_posts(slack_server, channel)]
    for digest in slack_server.posts_with_metadata("il2watch_digest", channel):
        pmids += digest.metadata["event_payload"]["pmids"]
    return pmids


def arrive(world, pmid, title="A new CD25-biased IL-2 mutein expands regulatory T cells", **extra):
    world.add(record(pmid, title=title, entry_date=TODAY, **extra))
    world.cite(pmid, R.REVIEW_PMID)


@BOTH_BACKENDS
def test_each_new_paper_is_posted_once_with_its_metadata(make_settings, slack_server, world):
    settings = make_settings(slack_server)
    report = poll(settings)
    assert report.delivery.posted == 5  # two baseline notes and the three most recent papers
    notes = slack_server.posts_with_metadata("il2watch_note", CHANNEL)
    assert len(notes) == 2 and "Started watching the review" in notes[0].text
    assert len(paper_posts(slack_server)) == 3

    arrive(world, "41000001")
    arrive(world, "41000002", title="Nemvaleukin alfa with pembrolizumab in solid tumors")
    poll(settings)
    poll(settings)
    counts = Counter(posted_pmids(slack_server))
    assert counts["41000001"] == 1 and counts["41000002"] == 1
    assert set(counts.values()) == {1}
    post = next(m for m in paper_posts(slack_server) if m.metadata["event_payload"]["pmid"] == "41000001")
    payload = post.metadata["event_payload"]
    assert payload["reasons"][0]["kind"] == "cites"
    assert payload["axis"] in ("treg", "effector", "biology", "neighbour", "other")
    assert isinstance(payload["molecules"], list) and "relevance" in payload
    assert payload["watermark"]["horizons"]["review"] == TODAY.isoformat()
    assert "https://pubmed.ncbi.nlm.nih.gov/41000001/" in post.text
    assert check_limits(post.blocks) == []
    with Library(settings.db_path) as library:
        assert library.count_outbox("due") == 0 and library.count_outbox("sending") == 0


@BOTH_BACKENDS
def test_slack_accepting_a_post_whose_answer_is_lost_does_not_double_it(make_settings, slack_server, world):
    settings = make_settings(slack_server)
    poll(settings)
    arrive(world, "41000001")
    slack_server.inject("accept_then_drop", method="chat.postMessage")
    poll(settings)
    assert Counter(posted_pmids(slack_server))["41000001"] == 1
    with Library(settings.db_path) as library:
        assert {r.state for r in library.outbox()} == {"sent"}


@pytest.mark.parametrize("fault", [500, 502, 503])
def test_server_errors_are_checked_then_retried(make_settings, slack_server, world, fault):
    settings = make_settings(slack_server)
    poll(settings)
    arrive(world, "41000001")
    slack_server.inject(fault, method="chat.postMessage")
    poll(settings)
    assert Counter(posted_pmids(slack_server))["41000001"] == 1


def test_rate_limits_wait_retry_after_and_lose_nothing(make_settings, slack_server, world):
    settings = make_settings(slack_server)
    poll(settings)
    arrive(world, "41000001")
    slack_server.inject(429, method="chat.postMessage", retry_after=1)
    poll(settings)
    assert Counter(posted_pmids(slack_server))["41000001"] == 1
    assert [r.status for r in slack_server.calls("chat.postMessage")][-2:] == [429, 200]


def test_persistent_rate_limiting_leaves_the_rest_due_for_the_next_poll(make_settings, slack_server, world):
    settings = make_settings(slack_server)
    poll(settings)
    arrive(world, "41000001")
    slack_server.inject(429, method="chat.postMessage", times=4, retry_after=0)
    report = poll(settings)
    assert report.delivery.still_due == 1 and "429" in " ".join(report.delivery.problems)
    poll(settings)
    assert Counter(posted_pmids(slack_server))["41000001"] == 1


@pytest.mark.parametrize(
    "code, line",
    [
        ("invalid_auth", "SLACK_BOT_TOKEN is not valid"),
        ("token_revoked", "revoked"),
        ("account_inactive", "inactive"),
        ("channel_not_found", "was not found"),
        ("is_archived", "is archived"),
    ],
)
def test_errors_only_a_person_can_fix_stop_delivery_with_one_line(make_settings, slack_server, world, code, line):
    settings = make_settings(slack_server)
    poll(settings)
    arrive(world, "41000001")
    slack_server.inject(code, method="chat.postMessage")
    with pytest.raises(PollError, match=line) as caught:
        poll(settings)
    assert "\n" not in str(caught.value)
    with Library(settings.db_path) as library:
        assert [r.state for r in library.outbox("due")] == ["due"]
    poll(settings)  # fixed: it goes out, once
    assert Counter(posted_pmids(slack_server))["41000001"] == 1


def test_the_bot_joins_a_public_channel_it_is_not_in(make_settings, slack_server):
    slack_server.add_channel("il2-public", channel_id="C0PUBLIC1", bot_is_member=False)
    settings = make_settings(slack_server, IL2WATCH_CHANNEL="il2-public")
    poll(settings)
    assert len(slack_server.calls("conversations.join")) == 1
    assert len(paper_posts(slack_server, "C0PUBLIC1")) == 3


def test_a_private_channel_without_the_bot_says_to_invite_it(make_settings, slack_server):
    slack_server.add_channel("il2-private", channel_id="G0PRIVATE", is_private=True, bot_is_member=False)
    settings = make_settings(slack_server, IL2WATCH_CHANNEL="G0PRIVATE")
    with pytest.raises(PollError, match="invite"):
        poll(settings)
    assert paper_posts(slack_server, "G0PRIVATE") == []


def test_a_message_slack_rejects_as_too_long_goes_out_as_plain_text(make_settings, slack_server, world):
    settings = make_settings(slack_server)
    poll(settings)
    arrive(world, "41000001")
    slack_server.inject("msg_too_long", method="chat.postMessage")
    poll(settings)
    [post] = [m for m in paper_posts(slack_server) if m.metadata["event_payload"]["pmid"] == "41000001"]
    assert "https://pubmed.ncbi.nlm.nih.gov/41000001/" in post.text


@BOTH_BACKENDS
def test_a_burst_goes_out_as_one_digest_with_the_rest_in_its_thread(make_settings, slack_server, world):
    settings = make_settings(slack_server, IL2WATCH_BURST="4")
    poll(settings)
    for n in range(8):
        arrive(world, str(41000100 + n), title=f"IL-2 mutein study number {n} in regulatory T cells")
    poll(settings)
    [digest] = slack_server.posts_with_metadata("il2watch_digest", CHANNEL)
    assert sorted(digest.metadata["event_payload"]["pmids"]) == [str(41000100 + n) for n in range(8)]
    replies = [m for m in slack_server.messages(CHANNEL) if m.thread_ts == digest.ts and m.ts != digest.ts]
    assert replies, "the rest of the digest goes in its thread"
    assert Counter(posted_pmids(slack_server))["41000100"] == 1


@BOTH_BACKENDS
def test_digest_mode_waits_for_the_digest_then_posts_once(make_settings, slack_server, world):
    from datetime import datetime

    settings = make_settings(slack_server, IL2WATCH_DELIVERY="digest")
    poll(settings)
    assert paper_posts(slack_server) == []  # even the baseline picks wait for the digest
    arrive(world, "41000001")
    poll(settings)
    with Library(settings.db_path) as library:
        assert bundle_digests(library, datetime.now(UTC)) == 1
    deliver_due(settings, out=lambda _: None)
    [digest] = slack_server.posts_with_metadata("il2watch_digest", CHANNEL)
    assert "41000001" in digest.metadata["event_payload"]["pmids"]
    with Library(settings.db_path) as library:
        assert bundle_digests(library, datetime.now(UTC)) == 0
    assert Counter(posted_pmids(slack_server))["41000001"] == 1


def test_a_watch_with_its_own_channel_posts_there(make_settings, slack_server, tmp_path):
    slack_server.add_channel("il2-cancer", channel_id="C0CANCER1")
    config = tmp_path / "own.toml"
    config.write_text(
        '[[watch]]\nid = "review"\npmid = "35217787"\nlabel = "the review"\nchannel = "il2-cancer"\n', encoding="utf-8"
    )
    settings = make_settings(slack_server, IL2WATCH_CONFIG=str(config))
    poll(settings)
    assert len(paper_posts(slack_server, "C0CANCER1")) == 3 and paper_posts(slack_server) == []


def test_the_abstract_can_follow_in_the_thread(make_settings, slack_server, world):
    settings = make_settings(slack_server, IL2WATCH_THREAD_ABSTRACT="true")
    poll(settings)
    posts = paper_posts(slack_server)
    threads = [m for m in slack_server.posts_with_metadata("il2watch_abstract", CHANNEL)]
    assert threads and all(m.thread_ts in {p.ts for p in posts} for m in threads)


@BOTH_BACKENDS
def test_a_lost_library_is_rebuilt_from_the_channel(make_settings, slack_server, world, database):
    settings = make_settings(slack_server)
    poll(settings)
    arrive(world, "41000001")
    poll(settings)
    before = Counter(posted_pmids(slack_server))
    lose_library(database)
    arrive(world, "41000002", title="Efavaleukin alfa in lupus: a phase 2 trial")
    poll(settings)
    after = Counter(posted_pmids(slack_server))
    assert set(after.values()) == {1}, "nothing posted twice"
    assert after["41000002"] == 1, "a paper that entered after the watermark is still posted"
    assert sum(after.values()) == sum(before.values()) + 1, "the old baseline is not flooded"
    assert len(slack_server.posts_with_metadata("il2watch_note", CHANNEL)) == 2, "no second baseline note"


def test_hostile_titles_reach_slack_escaped(make_settings, slack_server, world):
    settings = make_settings(slack_server)
    poll(settings)
    arrive(world, "41000001", title="<!channel> IL-2 & <https://evil.example|PubMed> <@U0HUMAN01> mutein")
    poll(settings)
    [post] = [m for m in paper_posts(slack_server) if m.metadata["event_payload"]["pmid"] == "41000001"]
    everything = post.text + repr(post.blocks)
    assert "<!channel>" not in everything and "<@U0HUMAN01>" not in everything
    assert "<https://evil.example" not in everything
    assert "&lt;!channel&gt;" in everything


def test_posts_are_paced(make_settings, slack_server, world):
    settings = make_settings(slack_server, IL2WATCH_POST_INTERVAL="0.3")
    poll(settings)
    times = [r.time for r in slack_server.calls("chat.postMessage")]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(gaps) == 4 and min(gaps) >= 0.25


def test_a_rebuild_from_watermarks_of_different_dates_restores_the_newest(make_settings, slack_server):
    from il2watch.rebuild import rebuild_from_channels
    from il2watch.service import all_watches
    from il2watch.slack_client import make_client
    from tests.stand_ins.slack_api import BOT_USER_ID

    settings = make_settings(slack_server)
    # what il2watch posted before the library was lost, oldest first; the newest date is not in the newest post
    for n, (review, query) in enumerate(
        [("2024-03-05", "2024-02-20"), ("2024-01-10", "2024-03-01"), ("2024-02-01", "")]
    ):
        horizons = {"review": review, **({"engineered-il2": query} if query else {})}
        slack_server.add_message(
            CHANNEL,
            f"paper {n}",
            user=BOT_USER_ID,
            metadata={
                "event_type": "il2watch_paper",
                "event_payload": {"pmid": str(42000000 + n), "key": f"k{n}", "watermark": {"horizons": horizons}},
            },
        )
    with Library(settings.db_path) as library:
        watches = all_watches(settings, library)
        report = rebuild_from_channels(library, make_client(settings), settings, watches)
        restored = {w.id: library.watch_state(w) for w in watches}
    assert report.horizons == {"review": "2024-03-05", "engineered-il2": "2024-03-01"}
    assert restored["review"].horizon == "2024-03-05" and restored["review"].restored
    assert restored["engineered-il2"].horizon == "2024-03-01"
