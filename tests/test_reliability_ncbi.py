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
NCBI_TIMEOUT = 0.5  # seconds; the stand-in's "slow" answers come after SLOW_DELAY
SLOW_DELAY = 1.0
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


SAYS = {
    429: "(HTTP 429)",
    500: "(HTTP 500)",
    502: "(HTTP 502)",
    503: "(HTTP 503)",
    "slow": f"(no answer for {NCBI_TIMEOUT:g} s: read timeout)",
    "reset": "(connection reset or closed without a whole answer: ",
    "truncate": "is not complete XML",
    "html": "sent an HTML page instead of XML",
    "error": "NCBI reported an error",
}
FAULTS = [*RETRYABLE, "truncate", "html", "error"]
WATCH_ASKED_BY = {"elink": "review", "esearch": "engineered-il2"}  # the watch each request serves


def patient(fault):
    """Settings for a poll that meets ``fault``: the short read timeout only where the fault is slowness,
    so that a loaded machine cannot turn a broken answer into a timeout that a retry then mends."""
    return {} if fault == "slow" else {"IL2WATCH_NCBI_TIMEOUT": "10"}


def says(fault, endpoint):
    retried = f"NCBI {endpoint} failed after {RETRIES} attempts " if fault in RETRYABLE else ""
    return retried + SAYS[fault]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_lasting_efetch_fault_fails_the_poll_with_one_line_and_changes_nothing(lab, fault):
    lab.arrive(NEW)
    before, posted_before = lab.rows(), lab.posted()
    inject(lab, fault, "efetch", times=RETRIES if fault in RETRYABLE else 1)
    with pytest.raises(PollError) as failed:
        lab.poll(**patient(fault))
    message = str(failed.value)
    assert says(fault, "efetch") in message and "\n" not in message
    assert lab.rows() == before, "a failed poll leaves the library exactly as it was"
    assert lab.posted() == posted_before, "and posts nothing"
    assert lab.runs()[-1] == {"id": 2, "status": "error", "error": message}
    assert lab.ncbi.pending_faults == []
    assert_recovers(lab)


def watch_rows(rows, watch):
    return {table: {row for row in rows[table] if row[0] == watch} for table in ("reasons", "watches")}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("endpoint", ["elink", "esearch"])
def test_a_lasting_fault_fails_the_watch_it_serves_alone_by_name(lab, fault, endpoint):
    failing = WATCH_ASKED_BY[endpoint]
    lab.arrive(NEW, title="An engineered IL-2 variant for lupus", query_match=True)  # both watches find it
    before = lab.rows()
    inject(lab, fault, endpoint, times=RETRIES if fault in RETRYABLE else 1)
    report = lab.poll(**patient(fault))
    assert report.status == "ok" and lab.runs()[-1]["status"] == "ok"
    (problem,) = report.problems
    assert problem.startswith(f"watch {failing} failed: ") and says(fault, endpoint) in problem
    assert "\n" not in problem and problem in report.line()
    assert lab.posted()[NEW] == 1, "the other watch found it and posted it"
    assert watch_rows(lab.rows(), failing) == watch_rows(before, failing), "the failed watch is left as it was"
    assert lab.ncbi.pending_faults == []
    again = lab.poll()
    assert again.problems == [] and lab.posted()[NEW] == 1
    assert (failing, f"pmid:{NEW}") in {(watch, pmid) for watch, pmid, _ in lab.rows()["reasons"]}


@pytest.mark.parametrize("fault", RETRYABLE)
@pytest.mark.parametrize("endpoint", ["elink", "esearch", "efetch"])
def test_a_passing_ncbi_fault_is_retried_within_the_poll(lab, fault, endpoint):
    lab.arrive(NEW)
    inject(lab, fault, endpoint)
    report = lab.poll(**patient(fault))
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


def assert_only_progress_changed(lab, before, failing):
    """Nothing was stored or posted; only the other watch moved on (and the problems were noted)."""
    after = lab.rows()
    for table in ("papers", "reasons", "outbox", "claims"):
        assert after[table] == before[table], table
    assert watch_rows(after, failing) == watch_rows(before, failing)


def test_an_empty_citing_list_during_an_outage_is_not_taken_as_news(lab):
    lab.arrive(NEW)
    before = lab.rows()
    lab.ncbi.inject("slow", endpoint="elink", delay=0)  # the similar-articles ELink answers normally…
    lab.ncbi.inject("empty", endpoint="elink")  # …the citing-articles one comes back empty
    report = lab.poll()
    (problem,) = report.problems
    assert re.match(
        r"watch review failed: NCBI returned no citing papers for the review .* treating it as an NCBI outage",
        problem,
    )
    assert_only_progress_changed(lab, before, "review")
    assert_recovers(lab)


def test_empty_links_on_both_elinks_during_an_outage_change_nothing(lab):
    lab.arrive(NEW)
    before = lab.rows()
    lab.ncbi.inject("empty", endpoint="elink", times=2)
    assert "treating it as an NCBI outage" in lab.poll().line()
    assert_only_progress_changed(lab, before, "review")
    assert_recovers(lab)


def test_an_empty_search_during_an_outage_is_not_taken_as_news(lab):
    lab.arrive("41000001", title="An engineered IL-2 variant for lupus", query_match=True)
    lab.poll()  # posted; a query match inside the next poll's look-back window
    lab.arrive("41000002", title="A second engineered IL-2 variant", query_match=True)
    before = lab.rows()
    lab.ncbi.inject("empty", endpoint="esearch")
    report = lab.poll()
    assert "watch engineered-il2 failed: NCBI's search for engineered IL-2 came back empty although 1 papers " in (
        report.line()
    )
    assert lab.posted()["41000002"] == 1, "the review's watch found it meanwhile"
    assert watch_rows(lab.rows(), "engineered-il2") == watch_rows(before, "engineered-il2")
    lab.poll()
    assert ("engineered-il2", "pmid:41000002") in {(watch, pmid) for watch, pmid, _ in lab.rows()["reasons"]}
    assert lab.posted()["41000002"] == 1


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


def test_il2watch_poll_says_what_ncbi_did_in_one_line(lab):
    lab.arrive(NEW)
    before = lab.rows()
    inject(lab, 503, "efetch", RETRIES)
    started = time.monotonic()
    failed = lab.cli("poll", env=lab.env(IL2WATCH_LOG_LEVEL="ERROR"))
    assert failed.returncode == 1 and failed.stdout == ""
    line = one_line(failed.stderr)
    assert line.startswith("il2watch: poll failed: ") and len(failed.stderr.strip().splitlines()) == 1
    assert re.search(r"NCBI efetch failed after 2 attempts \(HTTP 503\)", line), line
    assert time.monotonic() - started < 10, "il2watch gives up within its timeouts and retries, not never"
    assert lab.rows() == before
    recovered = lab.cli("poll")
    assert recovered.returncode == 0 and recovered.stdout.strip().endswith(("NCBI request", "NCBI requests"))
    assert "1 new paper," in recovered.stdout and lab.posted()[NEW] == 1


def test_il2watch_poll_names_a_watch_that_timed_out_and_goes_on(lab):
    lab.arrive(NEW)
    inject(lab, "slow", "esearch", RETRIES)
    done = lab.cli("poll", env=lab.env(IL2WATCH_LOG_LEVEL="ERROR"))
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.strip().endswith(
        f"; watch engineered-il2 failed: NCBI esearch failed after 2 attempts (no answer for {NCBI_TIMEOUT:g} s: "
        f"read timeout)"
    )
    assert "1 new paper," in done.stdout and lab.posted()[NEW] == 1


def test_il2watch_poll_against_an_unreachable_ncbi_fails_at_once(lab):
    started = time.monotonic()
    failed = lab.cli("poll", env=lab.env(IL2WATCH_EUTILS_URL="http://ncbi.invalid/entrez/eutils/"))
    assert failed.returncode == 1 and failed.stdout == ""
    assert one_line(failed.stderr) == (
        "il2watch: poll failed: NCBI cannot be reached: the name ncbi.invalid does not resolve (DNS); "
        "check the network, or IL2WATCH_EUTILS_URL"
    )
    assert len(failed.stderr.strip().splitlines()) == 1, "no retry warnings"
    assert time.monotonic() - started < 8
