"""Slack misbehaving while il2watch posts, end to end: stand-in NCBI -> il2watch -> stand-in Slack.

Each test starts from a library with its baseline, lets a paper arrive and breaks Slack in one way during
the poll. What must hold whatever Slack does: the paper reaches the channel at most once; a refusal that only
a person can fix stops delivery with one line saying what to do and leaves the paper due; anything il2watch
cannot be sure of is checked against the channel before it posts again; the next poll delivers what is owed.
"""

from __future__ import annotations

import signal
import time

import pytest

from il2watch.service import PollError
from tests.test_reliability_support import baseline_library, one_line, open_lab

NEW = "41000001"
SLACK_TIMEOUT = 1  # slack_sdk takes whole seconds; "slow" answers come after SLOW_DELAY
SLOW_DELAY = 1.5


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    with baseline_library(tmp_path_factory.mktemp("baseline")) as path:
        yield path


@pytest.fixture
def lab(tmp_path, baseline):
    with open_lab(tmp_path, IL2WATCH_SLACK_TIMEOUT=str(SLACK_TIMEOUT)) as lab:
        lab.start_from(baseline)
        lab.arrive(NEW)
        yield lab


def outbox_states(lab) -> dict[str, str]:
    """The state of each paper's outbox row, by PMID."""
    return {pmids.strip('[]"'): state for _, state, kind, pmids, _ in lab.rows()["outbox"] if kind == "paper"}


def the_post(lab):
    [post] = [m for m in lab.slack.posts_with_metadata("il2watch_paper") if m.metadata["event_payload"]["pmid"] == NEW]
    return post


def assert_next_poll_delivers_once(lab):
    report = lab.poll()
    assert report.status == "ok" and report.delivery.still_due == 0
    assert lab.posted()[NEW] == 1
    assert outbox_states(lab)[NEW] == "sent"


# ---------------------------------------------------------------- chat.postMessage


@pytest.mark.parametrize("fault", [500, 502, 503, "accept_then_drop"])
def test_an_unknown_outcome_is_checked_against_the_channel_before_posting_again(lab, fault):
    lab.slack.inject(fault, method="chat.postMessage")
    report = lab.poll()
    assert report.status == "ok" and report.delivery.posted == 1
    assert lab.posted()[NEW] == 1
    assert outbox_states(lab)[NEW] == "sent"
    history_reads = [c for c in lab.slack.calls() if c.method == "conversations.history"]
    assert len(history_reads) == 2, "the pre-post check, then the check after the unknown outcome"


def test_a_timeout_after_slack_accepted_the_post_does_not_double_it(lab):
    lab.slack.inject("slow", method="chat.postMessage", delay=SLOW_DELAY)
    started = time.monotonic()
    report = lab.poll()
    assert time.monotonic() - started < SLOW_DELAY + 1, "il2watch gave up waiting after its timeout"
    assert report.delivery.posted == 1 and lab.posted()[NEW] == 1
    row_ts = next(ts for _, state, kind, pmids, ts in lab.rows()["outbox"] if NEW in pmids)
    assert row_ts == the_post(lab).ts, "the row points at the message Slack kept"
    assert_next_poll_delivers_once(lab)


def test_slack_failing_every_attempt_leaves_the_paper_sending_then_the_next_poll_settles_it(lab):
    lab.slack.inject(503, method="chat.postMessage", times=3)
    report = lab.poll()
    assert report.status == "ok" and report.delivery.still_due == 1
    assert "Slack did not confirm paper" in " ".join(report.delivery.problems)
    assert "1 still due" in report.line()
    assert lab.posted()[NEW] == 0 and outbox_states(lab)[NEW] == "sending"
    assert_next_poll_delivers_once(lab)


def test_rate_limits_wait_for_retry_after_then_post_once(lab):
    lab.slack.inject(429, method="chat.postMessage", retry_after=1)
    lab.poll()
    refused, accepted = lab.slack.calls("chat.postMessage")[-2:]
    assert (refused.status, accepted.status) == (429, 200)
    assert accepted.time - refused.time >= 1.0
    assert lab.posted()[NEW] == 1


def test_not_in_channel_joins_the_public_channel_and_posts_once(lab):
    lab.slack.inject("not_in_channel", method="chat.postMessage")
    lab.poll()
    assert len(lab.slack.calls("conversations.join")) == 1
    assert lab.posted()[NEW] == 1


def test_a_message_slack_finds_too_long_goes_out_once_as_plain_text(lab):
    lab.slack.inject("msg_too_long", method="chat.postMessage")
    report = lab.poll()
    assert report.delivery.posted == 1 and lab.posted()[NEW] == 1
    post = the_post(lab)
    assert not post.blocks and f"https://pubmed.ncbi.nlm.nih.gov/{NEW}/" in post.text


@pytest.mark.parametrize(
    "code, method, says",
    [
        (
            "invalid_auth",
            "chat.postMessage",
            "SLACK_BOT_TOKEN is not valid (invalid_auth): copy the Bot User OAuth Token again",
        ),
        ("invalid_auth", "conversations.history", "SLACK_BOT_TOKEN is not valid (invalid_auth)"),
        (
            "channel_not_found",
            "chat.postMessage",
            "channel il2-papers was not found (channel_not_found): check "
            "IL2WATCH_CHANNEL, or invite the bot to the private channel",
        ),
        ("channel_not_found", "conversations.list", "channel il2-papers was not found (channel_not_found)"),
        (
            "not_in_channel",
            "conversations.join",
            "the bot is not in channel il2-papers (not_in_channel): invite it with /invite @il2watch",
        ),
    ],
)
def test_a_refusal_only_a_person_can_fix_stops_delivery_with_one_line(lab, code, method, says):
    if method == "conversations.join":  # the bot is out of the channel and may not rejoin it
        lab.slack.inject("not_in_channel", method="chat.postMessage")
    lab.slack.inject(code, method=method)
    with pytest.raises(PollError) as failed:
        lab.poll()
    assert says in str(failed.value) and "\n" not in str(failed.value)
    assert lab.posted()[NEW] == 0
    # still owed: "due", or "sending" when the refusal came mid-post (the next poll checks the channel first)
    assert outbox_states(lab)[NEW] == ("sending" if method == "conversations.join" else "due")
    assert lab.runs()[-1]["status"] == "error"
    assert_next_poll_delivers_once(lab)


# ---------------------------------------------------------------- reading the channel


def test_a_channel_history_that_times_out_posts_nothing_there_this_time(lab):
    lab.slack.inject("slow", method="conversations.history", delay=SLOW_DELAY)
    report = lab.poll()
    assert "could not read il2-papers's history (TimeoutError); nothing posted there" in report.delivery.problems[0]
    assert lab.posted()[NEW] == 0 and outbox_states(lab)[NEW] == "due"
    assert_next_poll_delivers_once(lab)


def test_a_channel_history_answering_500_never_doubles_a_due_paper(lab):
    lab.slack.inject(500, method="conversations.history")
    lab.poll()
    lab.poll()
    assert lab.posted()[NEW] == 1


def test_a_refused_auth_test_on_a_lost_library_posts_nothing_and_rebuilds_next_time(lab):
    lab.poll()  # NEW is posted
    lab.db.unlink()  # the library is lost…
    lab.arrive("41000002")  # …while another paper arrives
    lab.slack.inject("invalid_auth", method="auth.test")
    with pytest.raises(PollError, match="SLACK_BOT_TOKEN is not valid"):
        lab.poll()
    assert lab.rows()["papers"] == set(), "nothing discovered before the channel has been read"
    lab.poll()
    counts = lab.posted()
    assert counts[NEW] == 1 and counts["41000002"] == 1


# ---------------------------------------------------------------- when the check itself fails (bugs)


# deliver.Deliverer.deliver() treats a history read that fails with anything but a fatal code (an HTTP 5xx
# arrives as SlackApiError with no code) as an empty channel, and posts rows in "sending" without the check.
def test_a_post_left_sending_by_a_crash_is_not_doubled_when_the_history_read_fails(lab):
    lab.slack.inject("slow", method="chat.postMessage", delay=30)  # Slack keeps the post, the answer never comes
    process = lab.popen("poll")
    deadline = time.monotonic() + 20
    while not lab.slack.posts_with_metadata("il2watch_paper") and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # the crash: the row stays "sending"
    process.wait(timeout=10)
    assert lab.posted()[NEW] == 1 and outbox_states(lab)[NEW] == "sending"
    lab.slack.clear_faults()
    lab.slack.inject(500, method="conversations.history")
    lab.poll()
    assert lab.posted()[NEW] == 1


# Deliverer._find returns "" (not found) when the history read after an unknown outcome fails, and
# _post_row then posts again.
@pytest.mark.parametrize("check_fails_with", [500, "slow"])
def test_a_lost_answer_is_not_doubled_when_the_check_after_it_fails(lab, check_fails_with):
    lab.slack.inject("slow", method="conversations.history", delay=0)  # the pre-post check reads normally
    lab.slack.inject(check_fails_with, method="conversations.history", delay=SLOW_DELAY)  # the check after fails
    lab.slack.inject("accept_then_drop", method="chat.postMessage")
    lab.poll()
    assert lab.posted()[NEW] == 1


# ---------------------------------------------------------------- what `il2watch poll` says


def test_il2watch_poll_rides_out_a_timeout_after_slack_accepted(lab):
    lab.slack.inject("slow", method="chat.postMessage", delay=SLOW_DELAY)
    finished = lab.cli("poll")
    assert finished.returncode == 0, finished.stderr
    assert "1 new paper(s), 1 stored, 1 queued, 1 posted" in finished.stdout
    assert "checking the channel before retrying" in finished.stdout  # the log says what happened
    assert lab.posted()[NEW] == 1


def test_il2watch_poll_says_in_one_line_what_to_do_about_a_bad_token(lab):
    failed = lab.cli("poll", env=lab.env(SLACK_BOT_TOKEN="xoxb-not-a-token"))
    assert failed.returncode == 1 and failed.stdout == ""
    assert one_line(failed.stderr) == (
        "il2watch: poll failed: SLACK_BOT_TOKEN is not valid (invalid_auth): copy the Bot User OAuth Token again"
    )
    assert lab.posted()[NEW] == 0 and outbox_states(lab)[NEW] == "due"
    recovered = lab.cli("poll")
    assert recovered.returncode == 0 and lab.posted()[NEW] == 1
