"""Hostile paper content (tests/data/hostile.py) through stand-in NCBI -> il2watch -> stand-in Slack, and /il2.

The stand-in Slack refuses blocks that break Block Kit's limits, as Slack does, so every post arriving with
its blocks is itself the check on limits; on top of that, every text object and fallback text that reached
Slack is read back: the only ``<…>`` in it are links il2watch made to the places it links to, no ``&`` that
is not an escape, no character that hides or reorders text. The same holds for /il2's answers (signed
requests to ``il2watch serve``, answers through the response URL), the App Home and a property-based sweep
of the renderer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import http.client
import json
import re
import threading
import time
from datetime import date
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from il2watch import intel, render
from il2watch.markup import to_plain
from il2watch.model import Author, Paper, Reason, Section, Watch
from il2watch.slack_app import build_app
from il2watch.web import create_server
from tests.data import records as R
from tests.data.hostile import EVERYTHING, NEVER_RAW, hostile_records, hostile_words, unparseable_record
from tests.stand_ins.slack_api import block_kit_errors
from tests.stand_ins.socket_mode import app_home_opened_payload, block_actions_payload, slash_command_payload
from tests.support import PROXY_VARIABLES
from tests.test_reliability_support import CHANNEL, baseline_library, open_lab

TODAY = date.today()
HOSTILE = [rec.pmid for rec in hostile_records(TODAY)]
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
READER = "UREADER1"

# The links il2watch itself writes: to PubMed, DOI, PMC and trial registries, percent-encoded, with a label.
OUR_LINK = re.compile(
    r"<https://(?:pubmed\.ncbi\.nlm\.nih\.gov|doi\.org|www\.ncbi\.nlm\.nih\.gov/pmc|"
    r"clinicaltrials\.gov|www\.clinicaltrialsregister\.eu)/[^\s<>|\"]*\|([^<>]*)>"
)
OUR_MENTION = re.compile(r"<@U[A-Z0-9]{2,20}>")  # "Shared by <@user>": the user who pressed the button
ESCAPE = re.compile(r"&(?!amp;|lt;|gt;)")
HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]")


def texts(blocks) -> list[str]:
    """Every string Slack renders from these blocks (text objects, fields, elements, button labels)."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
                found.append(node["text"])
            for key, value in node.items():
                if key not in ("value", "action_id", "block_id", "url"):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks or [])
    return found


def assert_safe(text: str, blocks=None, *, max_blocks: int = 50) -> None:
    """Nothing unescaped, nothing hidden, nothing past Block Kit's limits."""
    assert block_kit_errors(blocks or [], max_blocks=max_blocks) == [] and render.check_limits(blocks or []) == []
    for shown in [text, *texts(blocks)]:
        rest = OUR_MENTION.sub("", OUR_LINK.sub(lambda link: link.group(1), shown))  # a link's label is checked too
        assert "<" not in rest and ">" not in rest, shown[:500]
        assert not ESCAPE.search(rest), shown[:500]
        assert not HIDDEN.search(shown), shown[:500]
        assert not any(raw in shown for raw in NEVER_RAW)
    for block in blocks or []:
        for element in [block.get("text"), *(block.get("elements") or []), *(block.get("fields") or [])]:
            if isinstance(element, dict) and element.get("type") == "mrkdwn":
                assert element.get("verbatim") is True, "a bare @channel in outside text stays text"


def arrive_hostile(lab, first_pmid: int = 42_100_001) -> None:
    for rec in hostile_records(TODAY, first_pmid):
        lab.world.add(rec)
        lab.world.cite(rec.pmid, R.REVIEW_PMID)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        for name in PROXY_VARIABLES:
            patch.delenv(name, raising=False)
        with baseline_library(tmp_path_factory.mktemp("baseline")) as path:
            yield path


@pytest.fixture(scope="module")
def polled(tmp_path_factory, baseline):
    """One lab for the module: the hostile papers arrive and are polled in once, each posted on its own with
    its abstract in the thread; `il2watch serve` answers /il2 from the same library. Tests only read it, or
    add what they alone look at (a look-up, a shared answer)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in PROXY_VARIABLES:
            patch.delenv(name, raising=False)
        with open_lab(
            tmp_path_factory.mktemp("hostile"),
            IL2WATCH_BURST="0",
            IL2WATCH_THREAD_ABSTRACT="true",
            SLACK_SIGNING_SECRET=SECRET,
        ) as lab:
            lab.start_from(baseline)
            arrive_hostile(lab)
            report = lab.poll()
            settings = lab.settings()
            server = create_server(settings, 0, host="127.0.0.1", app=build_app(settings))
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            yield lab, report, server.effective_port
            server.close()
            thread.join(timeout=5)


def paper_posts(lab) -> dict:
    return {m.metadata["event_payload"]["pmid"]: m for m in lab.slack.posts_with_metadata("il2watch_paper")}


# ---------------------------------------------------------------- posts


def test_hostile_papers_are_each_posted_once_escaped_and_within_limits(polled):
    lab, report, _ = polled
    assert report.status == "ok" and report.delivery.failed == 0 and report.delivery.still_due == 0
    assert [lab.posted()[pmid] for pmid in HOSTILE] == [1] * len(HOSTILE)
    posts = paper_posts(lab)
    assert all(posts[pmid].blocks for pmid in HOSTILE), "Slack took the blocks: no post fell back to plain text"
    messages = lab.channel_messages()
    replies = [m for m in messages if m.thread_ts and m.ts != m.thread_ts]
    assert {m.thread_ts for m in replies} >= {posts[pmid].ts for pmid in HOSTILE if pmid != HOSTILE[6]}
    for message in messages:
        assert_safe(message.text, message.blocks)
    for call in lab.slack.calls("chat.postMessage"):
        assert "link_names" not in call.params and call.params.get("parse") in (None, "none")
    # the content did arrive, escaped: the checks above are not passing on empty posts
    assert "&lt;!channel&gt;" in posts[HOSTILE[0]].text
    assert "白细胞介素-2" in json.dumps(posts[HOSTILE[4]].blocks, ensure_ascii=False)
    huge = posts[HOSTILE[5]]
    assert len(huge.text) <= 1000 and "…" in huge.text
    assert f"https://pubmed.ncbi.nlm.nih.gov/{HOSTILE[6]}/" in posts[HOSTILE[6]].text  # nothing visible but the link
    assert {state for _, state, *_ in lab.rows()["outbox"]} == {"sent"}


def test_hostile_papers_in_a_digest_are_escaped_and_within_limits(tmp_path, baseline):
    with open_lab(tmp_path, IL2WATCH_BURST="3") as lab:
        lab.start_from(baseline)
        arrive_hostile(lab)
        report = lab.poll()
        assert report.delivery.failed == 0
        [digest] = lab.slack.posts_with_metadata("il2watch_digest")
        assert set(HOSTILE) <= set(digest.metadata["event_payload"]["pmids"])
        for message in lab.channel_messages():
            assert_safe(message.text, message.blocks)


# Bio.Entrez.read(escape=True) HTML-escapes every field, but il2watch.model keeps only titles and abstracts as
# marked (escaped) text; pubmed.py stores authors, journals and DOIs still escaped, so render escapes them a
# second time: "O'Brien & Sons" reaches Slack as "O'Brien &amp;amp; Sons" (and reads "O'Brien &amp; Sons"),
# and a DOI with < or > (every SICI DOI) links to doi.org/…%26lt;… instead of …%3C….
def test_names_journals_and_dois_read_in_slack_as_pubmed_has_them(polled):
    lab, _, _ = polled
    posts = paper_posts(lab)
    byline = posts[HOSTILE[2]].blocks[0]["text"]["text"].split("\n")[1]
    assert byline.startswith("O'Brien &amp; &lt;b&gt;Sons&lt;/b&gt; AB · Clin Exp Immunol &amp; &lt;u&gt; · ")
    assert "<https://doi.org/10.1002/(SICI)1097-4636(199812)43:4%3C387::AID-JBM5%3E3.0.CO;2-B|DOI>" in json.dumps(
        posts[HOSTILE[1]].blocks
    )


def test_a_record_that_is_not_valid_xml_is_set_aside_by_its_pmid_and_the_others_are_posted(tmp_path, baseline):
    from datetime import UTC, datetime, timedelta

    from il2watch.library import Library
    from il2watch.service import poll_once

    with open_lab(tmp_path) as lab:
        lab.start_from(baseline)
        lab.arrive("41000001")
        bad = unparseable_record("41000002", TODAY)
        lab.world.add(bad)
        lab.world.cite(bad.pmid, R.REVIEW_PMID)
        report = lab.poll()
        assert report.status == "ok" and lab.posted()["41000001"] == 1 and "41000002" not in lab.posted()
        assert "PubMed's record for PMID 41000002 cannot be read (NCBI's answer is not complete XML" in report.line()
        with Library(lab.db) as library:
            (row,) = library.unreadable()
            assert (row["pmid"], row["attempts"]) == ("41000002", 1)
            assert not library.db.execute("select 1 from reasons where paper = ?", ["pmid:41000002"]).fetchone()

        def poll_at(hours: float):
            settings = lab.settings()
            moment = datetime.now(UTC) + timedelta(hours=hours)
            return poll_once(settings, out=lambda _: None, eutils=lab.eutils(settings), now=moment)

        lab.ncbi.clear_requests()
        poll_at(1)  # an hour later the record is not asked for again
        assert [r for r in lab.ncbi.requests if r.endpoint == "efetch"] == []
        lab.world.add(dataclasses.replace(bad, title="IL-2 mutein, corrected"))
        poll_at(7)  # past its next try, NCBI has corrected it: stored and posted once
        assert lab.posted()["41000001"] == 1 and lab.posted()["41000002"] == 1
        with Library(lab.db) as library:
            assert library.unreadable() == []


def test_a_record_that_stays_unreadable_is_asked_for_every_six_hours_four_times_then_once_a_day(tmp_path, baseline):
    """library.UNREADABLE_RETRY: a few times a day at most, then once a day, so a broken record costs NCBI little."""
    from datetime import UTC, datetime, timedelta

    from il2watch.library import Library
    from il2watch.service import poll_once

    with open_lab(tmp_path) as lab:
        lab.start_from(baseline)
        bad = unparseable_record("41000002", TODAY)
        lab.world.add(bad)
        lab.world.cite(bad.pmid, R.REVIEW_PMID)
        start = datetime.now(UTC)

        def asked_at(hours: float) -> bool:
            """Poll ``hours`` after the first failure; whether EFetch was asked for the broken record."""
            lab.ncbi.clear_requests()
            settings = lab.settings()
            poll_once(settings, out=lambda _: None, eutils=lab.eutils(settings), now=start + timedelta(hours=hours))
            fetched = [r for r in lab.ncbi.requests if r.endpoint == "efetch"]
            return any(bad.pmid in ",".join(r.params.get("id", [])).split(",") for r in fetched)

        assert asked_at(0)  # the first failure
        assert [asked_at(h) for h in (5, 7, 13, 19)] == [False, True, True, True]  # every 6 h: attempts 2, 3, 4
        with Library(lab.db) as library:
            (row,) = library.unreadable()
            assert row["attempts"] == 4 and row["next_try"] == (start + timedelta(hours=19 + 24)).isoformat(
                timespec="seconds"
            )
        assert [asked_at(h) for h in (26, 37, 44)] == [False, False, True]  # after four: once a day
        with Library(lab.db) as library:
            assert library.unreadable()[0]["attempts"] == 5


# ---------------------------------------------------------------- /il2 and the App Home over HTTP


def _signed(port: int, body: bytes, content_type: str) -> tuple[int, bytes]:
    timestamp = str(int(time.time()))
    signature = "v0=" + hmac.new(SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(
        "POST",
        "/slack/events",
        body=body,
        headers={"Content-Type": content_type, "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature},
    )
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def slash(lab, port: int, text: str) -> tuple[dict, str]:
    url = lab.slack.new_response_url(channel=CHANNEL, user=READER)
    body = urlencode(slash_command_payload("/il2", text, user_id=READER, channel_id=CHANNEL, response_url=url)).encode()
    status, data = _signed(port, body, "application/x-www-form-urlencoded")
    assert status == 200
    return json.loads(data), url


def test_il2_paper_answers_about_hostile_papers_are_escaped_and_within_limits(polled):
    lab, _, port = polled
    for pmid in HOSTILE:
        reply, _ = slash(lab, port, f"paper {pmid}")
        assert reply["response_type"] == "ephemeral" and f"pubmed.ncbi.nlm.nih.gov/{pmid}/" in json.dumps(reply)
        assert_safe(reply["text"], reply["blocks"])
    reply, url = slash(lab, port, f"paper {HOSTILE[0]}")
    share = next(e for b in reply["blocks"] for e in b.get("elements", []) if e.get("action_id") == "il2_share")
    payload = block_actions_payload(
        "il2_share",
        share["value"],
        message={"ts": "1.000001", "blocks": []},
        user_id=READER,
        channel_id=CHANNEL,
        response_url=url,
    )
    assert (
        _signed(port, urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded")[0]
        == 200
    )
    (posted,) = lab.slack.wait_for_response_posts(1, url=url)  # Slack took it: the stand-in checks the blocks
    assert posted.body["response_type"] == "in_channel"
    assert_safe(posted.body["text"], posted.body["blocks"])


def test_a_hostile_paper_looked_up_in_pubmed_is_answered_safely(polled):
    lab, _, port = polled
    outsider = hostile_records(TODAY, first_pmid=42_200_001)[7]  # in PubMed, not in the library
    lab.world.add(outsider)
    reply, url = slash(lab, port, f"paper {outsider.pmid}")
    assert "Looking up" in reply["text"]
    (answer,) = lab.slack.wait_for_response_posts(1, url=url)
    assert "looked up in PubMed" in json.dumps(answer.body["blocks"])
    assert_safe(answer.body["text"], answer.body["blocks"])


@pytest.mark.parametrize("words", hostile_words())
def test_searching_for_hostile_words_answers_safely(polled, words):
    lab, _, port = polled
    for text in (f"search {words}", f"tag {words}", "recent 20", "cites 20"):
        reply, _ = slash(lab, port, text)
        assert_safe(reply["text"], reply["blocks"])


def test_the_app_home_lists_hostile_papers_safely(polled):
    lab, _, port = polled
    assert _signed(port, json.dumps(app_home_opened_payload(READER)).encode(), "application/json")[0] == 200
    deadline = time.monotonic() + 5
    while lab.slack.home_view(READER) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    view = lab.slack.home_view(READER)  # published: the stand-in took its blocks
    assert view is not None and HOSTILE[0] in json.dumps(view["blocks"])
    assert_safe("", view["blocks"], max_blocks=100)


# ---------------------------------------------------------------- any text at all


LEXICON = intel.load_lexicon([])
WATCHES = {"review": Watch("review", pmid=R.REVIEW_PMID, label="the review")}
anything = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)
hostile_text = st.lists(st.one_of(anything, st.sampled_from(EVERYTHING)), max_size=8).map(" ".join)


def marked(text: str) -> str:
    """Text as PubMed's marked text holds it: HTML-escaped, with PubMed's inline tags possibly around it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@hsettings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=hostile_text,
    abstract=st.lists(st.tuples(hostile_text, hostile_text), max_size=4),
    names=st.lists(hostile_text, max_size=5),
    journal=hostile_text,
    doi=hostile_text,
    tag=st.sampled_from(["", "i", "b", "sup", "sub"]),
)
def test_any_text_in_any_field_renders_safely(title, abstract, names, journal, doi, tag):
    wrapped = f"<{tag}>{marked(title)}</{tag}>" if tag else marked(title)
    paper = Paper(
        pmid="42100001",
        title=wrapped,
        abstract=tuple(Section(marked(t), label) for t, label in abstract),
        authors=tuple(Author(name, "", "X") for name in names),
        journal=journal,
        journal_iso=journal[:40],
        doi=doi,
        entry_date=TODAY.isoformat(),
    )
    reasons = [Reason("review", "cites")]
    insight = intel.analyse(paper, reasons, lexicon=LEXICON, feedback=(0, 0))
    post = render.render_paper(paper, reasons, insight, WATCHES, key="k")
    assert_safe(post.text, post.blocks)
    for reply in render.render_abstract_thread(paper):
        assert_safe(reply.text, reply.blocks)
    digest, thread = render.render_digest([(paper, reasons, insight)] * 20, WATCHES, title=to_plain(wrapped)[:80])
    for message in (digest, *thread):
        assert_safe(message.text, message.blocks)
