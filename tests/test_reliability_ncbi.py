"""NCBI misbehaving during a poll, end to end: stand-in NCBI -> il2watch -> stand-in Slack and a real library.

Every test starts from a library with its baseline, lets a paper arrive in PubMed, breaks NCBI in one way
and polls. A fault NCBI recovers from within the poll's retries costs nothing; one that lasts fails the poll
with one line saying what NCBI did, leaves every row of the library as it was (nothing marked seen), posts
nothing, and the next poll posts the paper once.
"""

from __future__ import annotations

import logging
import re
import time

import pytest

from il2watch.service import PollError
from tests.test_reliability_support import baseline_library, one_line, open_lab

NEW = "41000001"
RETRIES = 2
NCBI_TIMEOUT = 0.2  # seconds; the stand-in's "slow" answers come after SLOW_DELAY
SLOW_DELAY = 0.4
RETRYABLE = (429, 500, 502, 503, "slow", "reset")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    with baseline_library(tmp_path_factory.mktemp("baseline")) as path:
        yield path


@pytest.fixture
def lab(tmp_path, baseline):
    with open_lab(tmp_path, IL2WATCH_NCBI_ATTEMPTS=str(RETRIES), IL2WATCH_NCBI_TIMEOUT=str(NCBI_TIMEOUT)) as lab:
        yield lab.start_from(baseline)


def inject(lab, fault, endpoint, times=1):
    lab.ncbi.inject(fault, endpoint=endpoint, times=times, delay=SLOW_DELAY)


def assert_recovers(lab, pmid=NEW):
    """The next poll, with NCBI well again, posts the paper exactly once and leaves nothing due."""
    report = lab.poll()
    assert report.status == "ok"
    assert lab.posted()[pmid] == 1
    assert {state for _, state, *_ in lab.rows()["outbox"]} == {"sent"}


PERSISTENT = [
    *[
        (fault, endpoint, f"NCBI {endpoint} failed after {RETRIES} attempts")
        for fault in RETRYABLE
        for endpoint in ("elink", "esearch", "efetch")
    ],
    *[
        (fault, endpoint, says)
        for fault, says in (
            ("truncate", "is not complete XML"),
            ("html", "sent an HTML page instead of XML"),
            ("error", "NCBI reported an error"),
        )
        for endpoint in ("elink", "esearch", "efetch")
    ],
]


@pytest.mark.parametrize("fault, endpoint, says", PERSISTENT, ids=[f"{f}-{e}" for f, e, _ in PERSISTENT])
def test_a_lasting_ncbi_fault_fails_the_poll_with_one_line_and_changes_nothing(lab, fault, endpoint, says):
    lab.arrive(NEW)
    before, posted_before = lab.rows(), lab.posted()
    inject(lab, fault, endpoint, times=RETRIES if fault in RETRYABLE else 1)
    with pytest.raises(PollError) as failed:
        lab.poll()
    message = str(failed.value)
    assert says in message and "\n" not in message
    if fault in (429, 500, 502, 503):
        assert f"(HTTP {fault})" in message
    if fault == "slow":
        assert "timed out" in message
    assert lab.rows() == before, "a failed poll leaves the library exactly as it was"
    assert lab.posted() == posted_before, "and posts nothing"
    assert lab.runs()[-1] == {"id": 2, "status": "error", "error": message}
    assert lab.ncbi.pending_faults == []
    assert_recovers(lab)


@pytest.mark.parametrize("fault", RETRYABLE)
@pytest.mark.parametrize("endpoint", ["elink", "esearch", "efetch"])
def test_a_passing_ncbi_fault_is_retried_within_the_poll(lab, fault, endpoint):
    lab.arrive(NEW)
    inject(lab, fault, endpoint)
    report = lab.poll()
    assert report.status == "ok" and report.requests == 5  # two ELinks, an ESearch, an EFetch, and the retry
    assert lab.posted()[NEW] == 1


def test_ncbi_retry_after_is_waited_for(lab):
    lab.arrive(NEW)
    lab.ncbi.inject(429, endpoint="efetch", retry_after=0.4)
    lab.poll()
    refused, answered = [r for r in lab.ncbi.requests if r.endpoint == "efetch"][-2:]
    assert refused.status == 429 and answered.status == 200
    assert answered.time - refused.time >= 0.4
    assert lab.posted()[NEW] == 1


# ---------------------------------------------------------------- empty answers: an outage, not news


def test_an_empty_citing_list_during_an_outage_is_not_taken_as_news(lab):
    lab.arrive(NEW)
    before = lab.rows()
    lab.ncbi.inject("slow", endpoint="elink", delay=0)  # the similar-articles ELink answers normally…
    lab.ncbi.inject("empty", endpoint="elink")  # …the citing-articles one comes back empty
    with pytest.raises(
        PollError,
        match=r"NCBI returned no citing papers for the review .* treating it as an "
        r"NCBI outage",
    ):
        lab.poll()
    assert lab.rows() == before
    assert_recovers(lab)


def test_empty_links_on_both_elinks_during_an_outage_change_nothing(lab):
    lab.arrive(NEW)
    before = lab.rows()
    lab.ncbi.inject("empty", endpoint="elink", times=2)
    with pytest.raises(PollError, match="treating it as an NCBI outage"):
        lab.poll()
    assert lab.rows() == before
    assert_recovers(lab)


def test_an_empty_search_during_an_outage_is_not_taken_as_news(lab):
    lab.arrive("41000001", title="An engineered IL-2 variant for lupus", query_match=True)
    lab.poll()  # posted; a query match inside the next poll's look-back window
    lab.arrive("41000002", title="A second engineered IL-2 variant", query_match=True)
    before = lab.rows()
    lab.ncbi.inject("empty", endpoint="esearch")
    with pytest.raises(PollError, match="came back empty although 1 papers it found before fall in the window"):
        lab.poll()
    assert lab.rows() == before, "the paper ELink found meanwhile is not marked seen either"
    assert_recovers(lab, "41000002")


def test_records_efetch_does_not_return_stay_unseen_and_the_log_says_so(lab, caplog):
    lab.arrive(NEW)
    before = lab.rows()
    lab.ncbi.inject("empty", endpoint="efetch")
    with caplog.at_level(logging.WARNING, logger="il2watch.discovery"):
        report = lab.poll()
    assert report.status == "ok" and report.new == 0
    assert f"NCBI returned no record for 1 PMID(s) ({NEW}); they stay unseen" in caplog.text
    assert lab.rows()["reasons"] == before["reasons"], "not linked, so asked for again next poll"
    assert_recovers(lab)


# Discovery only recognises an outage by comparing with links it knew. On a watch's first poll it knows none,
# so empty ELink answers become the review's baseline ("no papers cite it or are similar yet"): the next poll
# then finds its citing and similar papers "new" and posts the back catalogue. The fix proposed in the report:
# a watched paper with no links at all on its first poll keeps its baseline for a poll where PubMed has them.
def test_an_outage_during_a_watchs_first_poll_does_not_become_its_baseline(tmp_path):
    with open_lab(tmp_path) as lab:
        lab.ncbi.inject("empty", endpoint="elink", times=2)
        try:
            lab.poll()
        except PollError:
            pass  # failing the first poll would do; recording an empty baseline would not
        lab.poll()
        notes = lab.slack.posts_with_metadata("il2watch_note")
        review_notes = [n.text for n in notes if "Started watching the review" in n.text]
        assert len(review_notes) == 1 and "no papers cite it or are similar yet" not in review_notes[0]
        assert lab.slack.posts_with_metadata("il2watch_digest") == []
        assert sum(lab.posted().values()) <= 2 * 3, "at most each watch's three newest, as baselines post"


# ---------------------------------------------------------------- what `il2watch poll` says


@pytest.mark.parametrize(
    "fault, endpoint, times, says",
    [
        (
            "slow",
            "esearch",
            2,
            r"NCBI esearch failed after 2 attempts \(TimeoutError: timed out\); is http://\S+ "
            r"reachable\?",
        ),
        (503, "efetch", 2, r"NCBI efetch failed after 2 attempts \(HTTP 503\)"),
        ("empty", "elink", 2, r"treating it as an NCBI outage and trying again next poll"),
    ],
    ids=["timeout", "503", "outage"],
)
def test_il2watch_poll_says_what_ncbi_did_in_one_line(lab, fault, endpoint, times, says):
    lab.arrive(NEW)
    before = lab.rows()
    inject(lab, fault, endpoint, times)
    started = time.monotonic()
    failed = lab.cli("poll", env=lab.env(IL2WATCH_LOG_LEVEL="ERROR"))
    assert failed.returncode == 1 and failed.stdout == ""
    line = one_line(failed.stderr)
    assert line.startswith("il2watch: poll failed: ") and len(failed.stderr.strip().splitlines()) == 1
    assert re.search(says, line), line
    assert time.monotonic() - started < 10, "il2watch gives up within its timeouts and retries, not never"
    assert lab.rows() == before
    recovered = lab.cli("poll")
    assert recovered.returncode == 0 and recovered.stdout.strip().endswith("NCBI request(s)")
    assert "1 new paper(s)" in recovered.stdout and lab.posted()[NEW] == 1
