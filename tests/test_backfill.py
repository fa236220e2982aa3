"""Backfill from the command line's function: the limit checked, the burst digest honoured, off-topic papers
held back unless asked for, nothing posted twice. Against the NCBI and Slack stand-ins, with a real library."""

from collections import Counter

import pytest

from il2watch.library import Library
from il2watch.service import PollError, backfill, poll_once
from tests.data import records as R


def quietly(*_args) -> None:
    return None


def posted_pmids(slack_server) -> list[str]:
    """Every PMID the channel has had, as a post or inside a digest (top message and thread)."""
    pmids = [m.metadata["event_payload"]["pmid"] for m in slack_server.posts_with_metadata("il2watch_paper")]
    for digest in slack_server.posts_with_metadata("il2watch_digest"):
        pmids += digest.metadata["event_payload"]["pmids"]
    return pmids


@pytest.mark.parametrize("limit", [-1, 0, 201])
def test_a_limit_out_of_range_is_refused_with_one_line(make_settings, slack_server, limit):
    settings = make_settings(slack_server)
    poll_once(settings, out=quietly)
    before = posted_pmids(slack_server)
    with pytest.raises(PollError, match=r"whole number from 1 to 200, not -?\d+$"):
        backfill(settings, "review", limit, progress=quietly)
    assert posted_pmids(slack_server) == before


def test_more_than_the_burst_size_goes_out_as_one_digest_without_the_held_back(make_settings, slack_server):
    settings = make_settings(slack_server, IL2WATCH_BURST="5")
    poll_once(settings, out=quietly)
    baseline = posted_pmids(slack_server)
    report = backfill(settings, "review", 15, progress=quietly)
    (digest,) = slack_server.posts_with_metadata("il2watch_digest")
    in_digest = digest.metadata["event_payload"]["pmids"]
    assert len(in_digest) > 5 and not set(in_digest) & set(baseline)
    assert R.IL15_PMID not in in_digest  # only "similar", and about IL-15: held back as off-topic
    assert "as one digest" in report.chosen and "held back as off-topic skipped" in report.chosen
    assert report.posted >= 1 and not report.problems
    entries = [m for m in slack_server.messages(settings.channel) if m.is_reply and m.blocks]
    assert entries and all("il2_relevant-" in str(m.blocks) for m in entries)  # the rest, in the thread, with buttons

    held = backfill(settings, "review", 15, progress=quietly, include_held=True)
    assert R.IL15_PMID in posted_pmids(slack_server) and "held back" not in held.chosen
    assert set(Counter(posted_pmids(slack_server)).values()) == {1}  # nothing twice
    with Library(settings.db_path) as library:
        assert not [row for row in library.outbox("due", "sending")]


def test_within_the_burst_size_each_paper_is_its_own_post(make_settings, slack_server):
    settings = make_settings(slack_server, IL2WATCH_BURST="10")
    poll_once(settings, out=quietly)
    shown = []
    report = backfill(settings, "review", 4, progress=lambda done, total: shown.append((done, total)))
    assert report.posted == 4 and shown[0] == (0, 4) and shown[-1] == (4, 4)
    assert slack_server.posts_with_metadata("il2watch_digest") == []
    rest = backfill(settings, "review", 200, progress=quietly, include_held=True)
    again = backfill(settings, "review", 200, progress=quietly, include_held=True)
    assert rest.posted >= 1 and again.posted == 0
    assert "the channel has had every paper it found" in again.chosen
    assert set(Counter(posted_pmids(slack_server)).values()) == {1}
    with pytest.raises(PollError, match="no watch 'nope'"):
        backfill(settings, "nope", 5, progress=quietly)


def test_the_first_message_a_lab_sees_names_the_backfill_command_as_configured(make_settings, slack_server):
    settings = make_settings(slack_server, IL2WATCH_COMMAND="/lit")
    poll_once(settings, out=quietly)
    notes = [m.text for m in slack_server.posts_with_metadata("il2watch_note")]
    (review,) = [text for text in notes if text.startswith("Started watching the review")]
    assert "Admins can post more with `/lit backfill review [N]`." in review
    assert "/il2" not in " ".join(notes)
