"""/il2, the buttons and the App Home through Bolt and Socket Mode, against the Slack and NCBI stand-ins."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from il2watch import pubmed
from il2watch.config import load_settings
from il2watch.library import Library
from il2watch.model import Paper, Reason
from il2watch.render import check_limits, render_paper
from il2watch.service import make_eutils
from il2watch.slack_app import build_app, insight_maker, start_socket_mode
from il2watch.slack_client import make_client
from tests.data.records import (
    IL15_PMID,
    LOW_DOSE_SLE_PMID,
    MARKUP_PMID,
    NO_ABSTRACT_PMID,
    NOT_ALPHA_CANCER_PMID,
    REVIEW_CITED_BY,
    REVIEW_PMID,
    REVIEW_SIMILAR,
    TREG_MUTEIN_PMID,
    UNRELATED_PMID,
    build_world,
)
from tests.stand_ins.eutils import EutilsStandIn
from tests.stand_ins.slack_api import (
    DEFAULT_APP_TOKEN,
    DEFAULT_BOT_TOKEN,
    RESPONSE_URL,
    SlackStandIn,
    block_kit_errors,
)
from tests.stand_ins.socket_mode import (
    SocketModeStandIn,
    app_home_opened_payload,
    block_actions_payload,
    slash_command_payload,
)
from tests.support import PROXY_VARIABLES

DEADLINE = 2.0  # IL2WATCH_REQUEST_DEADLINE for the app: every Slack call the listeners make ends within it

ADMIN, READER, OTHER = "UADMIN01", "UREADER1", "UOTHER01"
CHANNEL = "C0GENERAL"
SLACK_DEADLINE = 3.0  # seconds Slack waits for an ack


def wait_until(condition, timeout: float = 3.0):
    """The condition's value once it is truthy; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One app connected over Socket Mode for the whole module (connecting and closing cost a second each);
    tests keep to their own papers, users and response URLs so that none depends on another."""
    tmp_path = tmp_path_factory.mktemp("lab")
    with pytest.MonkeyPatch.context() as patch:
        for name in PROXY_VARIABLES:
            patch.delenv(name, raising=False)
        with (
            SocketModeStandIn() as socket_mode,
            SlackStandIn(socket_mode_url=socket_mode.url) as api,
            EutilsStandIn(build_world()) as ncbi_server,
        ):
            settings = load_settings(
                {
                    "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN,
                    "SLACK_APP_TOKEN": DEFAULT_APP_TOKEN,
                    "IL2WATCH_SLACK_API_URL": api.base_url,
                    "IL2WATCH_EUTILS_URL": ncbi_server.base_url,
                    "IL2WATCH_NCBI_ATTEMPTS": "2",
                    "IL2WATCH_NCBI_BACKOFF": "0.01",
                    "IL2WATCH_DB": str(tmp_path / "lib.db"),
                    "IL2WATCH_ADMINS": ADMIN,
                    "IL2WATCH_CHANNEL": CHANNEL,
                    "IL2WATCH_POST_INTERVAL": "0",
                    "IL2WATCH_REQUEST_DEADLINE": str(DEADLINE),
                    "NCBI_EMAIL": "lab@example.org",
                },
                cwd=tmp_path,
            )
            fill_library(settings, make_eutils(settings))
            app = build_app(settings, now=lambda: datetime(2024, 6, 15, 12, tzinfo=UTC))
            handler = start_socket_mode(app, settings)
            socket_mode.wait_for_connections(1)
            yield api, socket_mode, settings
            socket_mode.drop_connections()  # the client's blocking read returns now, not after its 3 s timeout
            handler.close()


def fill_library(settings, eutils) -> None:
    """The papers citing the review and three similar to it, as a poll would have stored them (13 in all)."""
    reasons = {pmid: Reason("review", "cites") for pmid in REVIEW_CITED_BY}
    reasons.update(
        {
            pmid: Reason("review", "similar", score, rank)
            for rank, (pmid, score) in enumerate(REVIEW_SIMILAR, start=1)
            if pmid not in reasons and pmid != IL15_PMID
        }
    )
    with Library(settings.db_path) as library:
        papers = pubmed.fetch_papers(eutils, list(reasons))
        insight_for = insight_maker(settings, library, summariser=False)
        library.save_papers(papers, {p.pmid: insight_for(p, [reasons[p.pmid]]) for p in papers})
        library.save_reasons([(p.pmid, reasons[p.pmid]) for p in papers], now="2024-06-01T00:00:00+00:00", run_id=None)


@pytest.fixture
def connected(lab):
    api, socket_mode, _ = lab
    return api, socket_mode


@pytest.fixture
def settings(lab):
    return lab[2]


@pytest.fixture
def library(settings):
    with Library(settings.db_path) as library:
        yield library


def command(api, socket_mode, text, *, user=READER, channel=CHANNEL):
    """Send /il2 <text> over the socket; the ack (checked for Slack's deadline) and its response_url."""
    url = api.new_response_url(channel=channel, user=user)
    envelope = socket_mode.send_envelope(
        "slash_commands", slash_command_payload("/il2", text, user_id=user, channel_id=channel, response_url=url)
    )
    ack = socket_mode.wait_for_ack(envelope, timeout=SLACK_DEADLINE)
    assert ack.seconds < SLACK_DEADLINE
    return ack, url


def click(api, socket_mode, action_id, value, *, message, user=READER, channel=CHANNEL, ephemeral=False):
    url = api.new_response_url(channel=channel, user=user, message_ts=message.get("ts"))
    payload = block_actions_payload(
        action_id, value, message=message, user_id=user, channel_id=channel, response_url=url
    )
    payload["container"]["is_ephemeral"] = ephemeral
    envelope = socket_mode.send_envelope("interactive", payload)
    ack = socket_mode.wait_for_ack(envelope, timeout=SLACK_DEADLINE)
    assert ack.seconds < SLACK_DEADLINE
    return url, payload


def button(blocks, action_id):
    for block in blocks:
        for element in block.get("elements", []) + ([block["accessory"]] if "accessory" in block else []):
            if element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no {action_id} button")


# ---------------------------------------------------------------- commands


def test_a_command_is_answered_in_the_ack_from_the_library(connected):
    api, socket_mode = connected
    ack, url = command(api, socket_mode, "search lupus")
    assert ack.payload["response_type"] == "ephemeral"
    body = json.dumps(ack.payload["blocks"])
    assert LOW_DOSE_SLE_PMID in body and "il2_share" in body
    assert api.response_posts(url) == []  # nothing follows a cheap answer


def test_every_kind_of_bad_input_is_acked_quickly_and_safely(connected):
    api, socket_mode = connected
    for text in (
        "",
        "frobnicate",
        "x" * 4000,
        "paper <!channel>",
        'search "unbalanced',
        "tag \u202e🧬",
        "<@U123|boss> <https://evil.example|click>",
    ):
        ack, _ = command(api, socket_mode, text)
        reply = json.dumps(ack.payload)
        assert ack.payload["text"] and "<!channel>" not in reply and "evil.example|" not in reply


def test_a_paper_not_in_the_library_is_looked_up_after_the_ack(connected, library):
    api, socket_mode = connected
    ack, url = command(api, socket_mode, f"paper https://pubmed.ncbi.nlm.nih.gov/{UNRELATED_PMID}/")
    assert "Looking up PMID" in ack.payload["text"]
    (post,) = api.wait_for_response_posts(1, url=url)
    assert "looked up in PubMed" in json.dumps(post.body["blocks"])
    assert post.body["response_type"] == "ephemeral"
    assert wait_until(lambda: library.paper(UNRELATED_PMID)) is not None


def test_a_redelivered_command_is_answered_once(connected):
    api, socket_mode = connected
    url = api.new_response_url(channel=CHANNEL, user=READER)
    payload = slash_command_payload(
        "/il2", f"paper {REVIEW_PMID}", user_id=READER, channel_id=CHANNEL, response_url=url
    )
    first = socket_mode.wait_for_ack(socket_mode.send_envelope("slash_commands", payload))
    second = socket_mode.wait_for_ack(socket_mode.send_envelope("slash_commands", payload))
    assert "Looking up" in first.payload["text"] and not (second.payload or {}).get("text")
    api.wait_for_response_posts(1, url=url)
    time.sleep(0.2)  # long enough for a second look-up to have answered, were there one
    assert len(api.response_posts(url)) == 1


def test_export_is_sent_to_the_person_who_asked_in_a_direct_message(connected):
    api, socket_mode = connected
    ack, url = command(api, socket_mode, "export ris search lupus", user="UEXPORT1")
    assert "Exporting 2 papers as ris" in ack.payload["text"]
    (post,) = api.wait_for_response_posts(1, url=url)
    assert "Sent you il2watch-search-lupus-2024-06-15.ris" in post.body["text"]
    (opened,) = [c for c in api.calls("conversations.open") if c.params.get("users") == "UEXPORT1"]
    dm = api.channel("DEXPORT1")
    (uploaded,) = [f for f in api.files() if f.name == "il2watch-search-lupus-2024-06-15.ris"]
    assert uploaded.channel == dm.id and f"AN  - {LOW_DOSE_SLE_PMID}" in uploaded.content.decode("utf-8")
    assert [m for m in api.messages(dm.id) if m.files] and not [f for f in api.files() if f.channel == CHANNEL]
    assert {"files.getUploadURLExternal", "files.completeUploadExternal"} <= {c.method for c in api.calls()}
    assert not api.calls("files.upload")  # the retired method


def test_export_share_uploads_it_for_everyone_in_the_channel(connected):
    api, socket_mode = connected
    _, url = command(api, socket_mode, "export csv tag treg share", user="USHARE01")
    (post,) = api.wait_for_response_posts(1, url=url)
    assert "here for everyone" in post.body["text"]
    (uploaded,) = [f for f in api.files() if f.name.startswith("il2watch-tag-treg")]
    assert uploaded.channel == CHANNEL and not [
        c for c in api.calls("conversations.open") if "USHARE01" in str(c.params)
    ]


def test_export_without_the_direct_message_scope_says_what_to_do(connected):
    api, socket_mode = connected
    api.inject("missing_scope", method="conversations.open")
    _, url = command(api, socket_mode, "export bibtex cites", user="UNOSCOPE")
    (post,) = api.wait_for_response_posts(1, url=url)
    assert "could not open a direct message" in post.body["text"] and "`share`" in post.body["text"]


def test_export_where_the_bot_is_not_a_member_explains_itself(connected):
    api, socket_mode = connected
    api.add_channel("private-lab", is_private=True, bot_is_member=False, channel_id="G0PRIVATE")
    _, url = command(api, socket_mode, "export csv share", channel="G0PRIVATE")
    (post,) = api.wait_for_response_posts(1, url=url)
    assert "could not upload" in post.body["text"] and not [f for f in api.files() if f.channel == "G0PRIVATE"]


def test_admin_watch_add_is_stored_and_announced_and_others_are_refused(connected, library):
    api, socket_mode = connected
    ack, _ = command(api, socket_mode, f"watch add {UNRELATED_PMID}", user=READER)
    assert "only for il2watch's admins" in ack.payload["text"] and library.slack_watches() == []
    ack, url = command(api, socket_mode, f"watch add {UNRELATED_PMID}", user=ADMIN)
    assert f"Checking PMID {UNRELATED_PMID} with PubMed" in ack.payload["text"]
    (post,) = api.wait_for_response_posts(1, url=url)
    assert f"Now watching PMID {UNRELATED_PMID}" in post.body["text"]
    assert [w.id for w in library.slack_watches()] == [f"pmid-{UNRELATED_PMID}"]
    assert [r.payload["action"] for r in library.outbox(kind="watch")] == ["added"]


def test_status_through_socket_mode(connected, library):
    api, socket_mode = connected
    ack, _ = command(api, socket_mode, "status")
    assert f"*Library:* {library.count_papers()} papers" in json.dumps(ack.payload["blocks"], ensure_ascii=False)


# ---------------------------------------------------------------- buttons


def post_paper(api, settings, library, pmid):
    """Post a paper as the deliverer would, and return the channel's copy of it."""
    paper = library.paper(pmid)
    reasons = [s.reason for s in library.reasons_for(pmid)]
    insight = insight_maker(settings, library, summariser=False)(paper, reasons)
    message = render_paper(paper, reasons, insight, {w.id: w for w in settings.watches})
    response = make_client(settings).chat_postMessage(channel=CHANNEL, **message.as_kwargs())
    return api.message(CHANNEL, response["ts"])


def as_history(message) -> dict:
    return message.to_slack()


def test_the_listeners_own_slack_calls_keep_the_request_deadline(connected, settings, library, caplog):
    # Bolt hands listeners a plain WebClient of its own; il2watch's listeners use their bounded one, so a
    # Slack answer dripped for half a minute costs a click or an App Home the deadline, not the half minute.
    api, socket_mode = connected
    voted = {TREG_MUTEIN_PMID, MARKUP_PMID, NO_ABSTRACT_PMID, LOW_DOSE_SLE_PMID, REVIEW_CITED_BY[1]}
    pmid = next(p for p in reversed(REVIEW_CITED_BY) if p not in voted)  # no other test votes on it
    posted = post_paper(api, settings, library, pmid)
    api.inject("drip", "chat.update", delay=0.5)
    started = time.monotonic()
    click(api, socket_mode, "il2_relevant", f"pmid:{pmid}", message=as_history(posted), user="UDRIP001")
    wait_until(lambda: "could not show the new counts" in caplog.text, timeout=DEADLINE + 5)
    assert time.monotonic() - started < DEADLINE + 3
    assert f"more than {DEADLINE:g} s" in caplog.text and "Traceback" not in caplog.text

    api.inject("drip", "views.publish", delay=0.5)
    started = time.monotonic()
    socket_mode.send_envelope("events_api", app_home_opened_payload("UDRIP002"))
    wait_until(lambda: "could not publish the App Home" in caplog.text, timeout=DEADLINE + 5)
    assert time.monotonic() - started < DEADLINE + 3


def unusable_click(api, socket_mode, user: str, response_url: str) -> None:
    """A click whose value il2watch did not make: acked, then answered through the response_url."""
    payload = block_actions_payload(
        "il2_save",
        "x",
        message={"ts": "1.000009", "blocks": []},
        user_id=user,
        channel_id=CHANNEL,
        response_url=response_url,
    )
    payload["actions"][0]["value"] = None
    ack = socket_mode.wait_for_ack(socket_mode.send_envelope("interactive", payload), timeout=SLACK_DEADLINE)
    assert ack.seconds < SLACK_DEADLINE


def respond_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "could not answer through the response_url" in r.getMessage()]


def test_a_reply_to_a_response_url_whose_answer_is_dripped_is_cut_at_the_deadline(connected, caplog):
    """respond() goes through il2watch's transport too: Slack keeps the reply and drips its "ok" for about
    ten seconds; the listener gives up at IL2WATCH_REQUEST_DEADLINE with one warning line."""
    api, socket_mode = connected
    url = api.new_response_url(channel=CHANNEL, user="URESP001")
    api.inject("drip", RESPONSE_URL, delay=0.6)
    started = time.monotonic()
    unusable_click(api, socket_mode, "URESP001", url)
    wait_until(lambda: respond_lines(caplog), timeout=DEADLINE + 5)
    assert time.monotonic() - started < DEADLINE + 3
    (post,) = api.response_posts(url)  # Slack took the reply; only its answer was lost
    assert post.body["text"].startswith("That button does not carry a value il2watch made")
    assert respond_lines(caplog) == [
        f"could not answer through the response_url: Slack took more than {DEADLINE:g} s to answer the reply to a "
        "response_url: its status line and headers were still arriving (IL2WATCH_REQUEST_DEADLINE)"
    ]
    assert "Traceback" not in caplog.text


class _Redirector(BaseHTTPRequestHandler):
    """Answers every request with a 302 to ``target`` (a response_url on another host)."""

    target = ""

    def do_POST(self) -> None:  # noqa: N802
        self.send_response(302)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_response_url_redirecting_to_another_host_sends_nothing_there(connected, caplog):
    """urllib (Bolt's respond) would follow the 302 to the other host as a GET; il2watch refuses in one line."""
    api, socket_mode = connected
    target = api.new_response_url(channel=CHANNEL, user="URESP002")
    redirector = ThreadingHTTPServer(("127.0.0.1", 0), type("Redirector", (_Redirector,), {"target": target}))
    threading.Thread(target=redirector.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        here = f"http://127.0.0.1:{redirector.server_address[1]}"
        unusable_click(api, socket_mode, "URESP002", f"{here}/commands/moved")
        wait_until(lambda: respond_lines(caplog), timeout=DEADLINE + 5)
        assert respond_lines(caplog) == [
            f"could not answer through the response_url: Slack redirected the reply to a response_url from {here} "
            f"to {api.url} (HTTP 302); il2watch follows redirects within {here} only, so that its requests and "
            f"credentials reach no other host: if {api.url} is meant, set the base URL to it"
        ]
        assert api.response_posts(target) == []
    finally:
        redirector.shutdown()
        redirector.server_close()


def test_feedback_is_stored_per_user_and_counted_on_the_post(connected, settings, library):
    api, socket_mode = connected
    posted = post_paper(api, settings, library, TREG_MUTEIN_PMID)
    metadata = posted.metadata
    key = f"pmid:{TREG_MUTEIN_PMID}"  # what the post's buttons carry: the paper's identity
    click(api, socket_mode, "il2_relevant", key, message=as_history(posted), user=READER)
    wait_until(lambda: "Relevant (1)" in json.dumps(api.message(CHANNEL, posted.ts).blocks))
    click(api, socket_mode, "il2_relevant", key, message=as_history(posted), user=READER)
    click(api, socket_mode, "il2_not_relevant", key, message=as_history(posted), user=OTHER)
    wait_until(lambda: "Not relevant (1)" in json.dumps(api.message(CHANNEL, posted.ts).blocks))
    assert library.feedback(TREG_MUTEIN_PMID) == (1, 1)
    after = api.message(CHANNEL, posted.ts)
    assert "Relevant (1)" in json.dumps(after.blocks) and after.metadata == metadata


def test_feedback_changes_a_users_vote_rather_than_adding_one(connected, settings, library):
    api, socket_mode = connected
    posted = post_paper(api, settings, library, MARKUP_PMID)
    click(api, socket_mode, "il2_relevant", f"pmid:{MARKUP_PMID}", message=as_history(posted))
    wait_until(lambda: library.feedback(MARKUP_PMID) == (1, 0))
    click(api, socket_mode, "il2_not_relevant", f"pmid:{MARKUP_PMID}", message=as_history(posted))
    wait_until(lambda: "Not relevant (1)" in json.dumps(api.message(CHANNEL, posted.ts).blocks))
    assert library.feedback(MARKUP_PMID) == (0, 1)
    assert '"👍 Relevant"' in json.dumps(api.message(CHANNEL, posted.ts).blocks, ensure_ascii=False)


def test_feedback_on_an_ephemeral_answer_replaces_it(connected, library):
    api, socket_mode = connected
    ack, _ = command(api, socket_mode, f"paper {NOT_ALPHA_CANCER_PMID}", user="UEPHEM01")
    url, _ = click(
        api,
        socket_mode,
        "il2_relevant",
        NOT_ALPHA_CANCER_PMID,
        user="UEPHEM01",
        message={"ts": "1.000001", "blocks": ack.payload["blocks"]},
        ephemeral=True,
    )
    (post,) = api.wait_for_response_posts(1, url=url)
    assert post.body["replace_original"] is True and "Relevant (1)" in json.dumps(post.body["blocks"])


def test_buttons_on_posts_made_before_identities_still_count(connected, settings, library):
    """Posts made before papers had identities carry a bare PMID in their buttons: clicks on them count."""
    api, socket_mode = connected
    posted = post_paper(api, settings, library, NO_ABSTRACT_PMID)
    old = as_history(posted)
    old["blocks"] = json.loads(json.dumps(old["blocks"]).replace(f'"pmid:{NO_ABSTRACT_PMID}"', f'"{NO_ABSTRACT_PMID}"'))
    api.message(CHANNEL, posted.ts).blocks = old["blocks"]
    click(api, socket_mode, "il2_relevant", NO_ABSTRACT_PMID, message=old, user=READER)
    wait_until(lambda: "Relevant (1)" in json.dumps(api.message(CHANNEL, posted.ts).blocks))
    assert library.feedback(f"pmid:{NO_ABSTRACT_PMID}") == (1, 0)


def test_save_keeps_a_personal_reading_list(connected, settings, library):
    api, socket_mode = connected
    posted = post_paper(api, settings, library, LOW_DOSE_SLE_PMID)
    url, _ = click(api, socket_mode, "il2_save", f"pmid:{LOW_DOSE_SLE_PMID}", message=as_history(posted))
    (post,) = api.wait_for_response_posts(1, url=url)
    assert "Saved PMID" in post.body["text"] and post.body["response_type"] == "ephemeral"
    assert library.saved_by(READER) == [f"pmid:{LOW_DOSE_SLE_PMID}"] and library.saved_by(OTHER) == []
    ack, _ = command(api, socket_mode, "saved")
    assert LOW_DOSE_SLE_PMID in json.dumps(ack.payload["blocks"])


def test_unsave_takes_a_paper_off_the_reading_list(connected, settings, library):
    api, socket_mode = connected
    posted = post_paper(api, settings, library, MARKUP_PMID)
    url, _ = click(api, socket_mode, "il2_save", f"pmid:{MARKUP_PMID}", message=as_history(posted), user="UUNSAVE1")
    (saved,) = api.wait_for_response_posts(1, url=url)
    assert button(saved.body["blocks"], "il2_unsave")["value"] == f"pmid:{MARKUP_PMID}"
    ack, _ = command(api, socket_mode, "saved", user="UUNSAVE1")
    unsave = button(ack.payload["blocks"], "il2_unsave-1")
    url, _ = click(
        api,
        socket_mode,
        unsave["action_id"],
        unsave["value"],
        user="UUNSAVE1",
        message={"ts": "1.000009", "blocks": ack.payload["blocks"]},
        ephemeral=True,
    )
    (post,) = api.wait_for_response_posts(1, url=url)
    assert f"Removed PMID {MARKUP_PMID}" in post.body["text"] and library.saved_by("UUNSAVE1") == []
    ack, _ = command(api, socket_mode, "saved", user="UUNSAVE1")
    assert "reading list is empty" in ack.payload["text"]


def test_digest_entries_have_working_feedback_and_save_buttons(connected, settings, library):
    from il2watch.render import render_digest

    api, socket_mode = connected
    pmids = [LOW_DOSE_SLE_PMID, NOT_ALPHA_CANCER_PMID]
    insight_for = insight_maker(settings, library, summariser=False)
    items = []
    for pmid in pmids:
        paper, reasons = library.paper(pmid), [s.reason for s in library.reasons_for(pmid)]
        items.append((paper, reasons, insight_for(paper, reasons)))
    top, _ = render_digest(items, {w.id: w for w in settings.watches}, title="Digest")
    response = make_client(settings).chat_postMessage(channel=CHANNEL, **top.as_kwargs())
    posted = api.message(CHANNEL, response["ts"])
    second = button(posted.blocks, "il2_relevant-2")
    assert second["value"] == f"pmid:{NOT_ALPHA_CANCER_PMID}"
    before = library.feedback(NOT_ALPHA_CANCER_PMID)[0]
    click(api, socket_mode, "il2_relevant-2", second["value"], message=as_history(posted), user="UDIGEST1")
    counted = f"👍 Relevant ({before + 1})"
    wait_until(lambda: button(api.message(CHANNEL, posted.ts).blocks, "il2_relevant-2")["text"]["text"] == counted)
    assert library.feedback(NOT_ALPHA_CANCER_PMID)[0] == before + 1
    first = button(api.message(CHANNEL, posted.ts).blocks, "il2_relevant-1")["text"]["text"]
    assert first == button(posted.blocks, "il2_relevant-1")["text"]["text"]  # the other entry keeps its own count
    url, _ = click(
        api, socket_mode, "il2_save-1", f"pmid:{LOW_DOSE_SLE_PMID}", message=as_history(posted), user="UDIGEST1"
    )
    (saved,) = api.wait_for_response_posts(1, url=url)
    assert "Saved PMID" in saved.body["text"] and library.saved_by("UDIGEST1") == [f"pmid:{LOW_DOSE_SLE_PMID}"]


def test_a_button_for_an_unknown_paper_is_refused_politely(connected, settings, library):
    api, socket_mode = connected
    posted = post_paper(api, settings, library, LOW_DOSE_SLE_PMID)
    url, _ = click(api, socket_mode, "il2_relevant", "99999999", message=as_history(posted))
    (post,) = api.wait_for_response_posts(1, url=url)
    assert "not in il2watch's library" in post.body["text"] and library.feedback("99999999") == (0, 0)


def test_more_shows_the_next_page_in_place_and_share_posts_for_everyone(connected, library):
    api, socket_mode = connected
    ack, _ = command(api, socket_mode, "recent 12")
    first_page = ack.payload["blocks"]
    more = button(first_page, "il2_more")
    url, _ = click(
        api, socket_mode, "il2_more", more["value"], message={"ts": "1.000002", "blocks": first_page}, ephemeral=True
    )
    (post,) = api.wait_for_response_posts(1, url=url)
    assert post.body["replace_original"] is True and "showing 11–12" in post.body["text"]
    share = button(first_page, "il2_share")
    url, _ = click(
        api, socket_mode, "il2_share", share["value"], message={"ts": "1.000003", "blocks": first_page}, ephemeral=True
    )
    (post,) = api.wait_for_response_posts(1, url=url)
    assert post.body["response_type"] == "in_channel" and post.body["replace_original"] is False
    (shared,) = [m for m in api.messages(CHANNEL) if "Shared by" in json.dumps(m.blocks)]
    assert "showing 1–10" in shared.text and "il2_share" not in json.dumps(shared.blocks)


def test_details_shows_a_listed_paper(connected):
    api, socket_mode = connected
    ack, _ = command(api, socket_mode, "cites 3")
    details = button(ack.payload["blocks"], "il2_details")
    url, _ = click(
        api,
        socket_mode,
        "il2_details",
        details["value"],
        message={"ts": "1.000004", "blocks": ack.payload["blocks"]},
        ephemeral=True,
    )
    (post,) = api.wait_for_response_posts(1, url=url)
    assert "Found by" in json.dumps(post.body["blocks"])


# Papers known by one id and hardly anything else, as Europe PMC and OpenAlex list them (issue 11, D11): a
# patent by its Europe PMC id, a preprint, a work OpenAlex alone knows, and the rest by their one id.
SPARSE_PAPERS = {
    "epmc:PAT/WO2024123456": (
        Paper(pmid="", title="IL-2 muteins with reduced CD122 binding", epmc="PAT/WO2024123456", pub_types=("patent",)),
        "https://europepmc.org/article/PAT/WO2024123456",
    ),
    "ppr:PPR900001": (
        Paper(pmid="", title="A preprint", ppr="PPR900001"),
        "https://europepmc.org/article/PPR/PPR900001",
    ),
    "openalex:W4390000001": (Paper(pmid="", title="", openalex="W4390000001"), "https://openalex.org/W4390000001"),
    "doi:10.5555/sparse.1": (Paper(pmid="", title="", doi="10.5555/sparse.1"), "https://doi.org/10.5555/sparse.1"),
    "pmcid:PMC9900001": (
        Paper(pmid="", title="", pmcid="PMC9900001"),
        "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC9900001/",
    ),
    "pmid:41990001": (Paper(pmid="41990001", title=""), "https://pubmed.ncbi.nlm.nih.gov/41990001/"),
}


@pytest.mark.parametrize("token", list(SPARSE_PAPERS))
def test_il2_paper_about_a_paper_known_by_one_id_answers_valid_blocks_with_a_link_to_it(connected, library, token):
    api, socket_mode = connected
    paper, page = SPARSE_PAPERS[token]
    library.save_papers([paper])
    ack, url = command(api, socket_mode, f"paper {token}")
    blocks = ack.payload["blocks"]
    assert block_kit_errors(blocks) == [] and check_limits(blocks) == []
    assert not [b for b in blocks if b["type"] in ("context", "actions") and not b.get("elements")]
    links = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"] if f"<{page}|" in e["text"]]
    assert links, f"a context line links to {page}"
    assert button(blocks, "il2_save")["value"] == token
    assert api.response_posts(url) == []  # answered in the ack, not degraded to plain text later


# ---------------------------------------------------------------- App Home


def test_app_home_shows_status_and_the_latest_papers(connected, library):
    api, socket_mode = connected
    payload = app_home_opened_payload("UHOME001")
    ack = socket_mode.wait_for_ack(socket_mode.send_envelope("events_api", payload), timeout=SLACK_DEADLINE)
    assert ack.seconds < SLACK_DEADLINE
    view = wait_until(lambda: api.home_view("UHOME001"))
    text = json.dumps(view["blocks"], ensure_ascii=False)
    assert "Latest papers" in text and f"*Library:* {library.count_papers()} papers" in text
    assert REVIEW_CITED_BY[0] in text
    assert not check_limits(view["blocks"])
    socket_mode.wait_for_ack(socket_mode.send_envelope("events_api", payload, retry_attempt=1))
    time.sleep(0.1)  # long enough for a second publish to have arrived, were there one
    publishes = [c for c in api.calls("views.publish") if c.params.get("user_id") == "UHOME001"]
    assert len(publishes) == 1  # Slack's retry of the same event is not handled twice


# ---------------------------------------------------------------- poll now


def test_poll_now_polls_pubmed_and_posts_to_the_channel(connected, library):
    api, socket_mode = connected
    ack, url = command(api, socket_mode, "poll", user=ADMIN)
    assert "Polling PubMed now" in ack.payload["text"]
    (post,) = api.wait_for_response_posts(1, url=url, timeout=15)
    assert post.body["text"].startswith("poll ok")
    assert library.last_run("poll")["status"] == "ok"
    assert api.posts_with_metadata("il2watch_note", CHANNEL) or api.posts_with_metadata("il2watch_paper", CHANNEL)


# ---------------------------------------------------------------- the app manifest


def test_the_manifest_declares_what_the_app_uses():
    from pathlib import Path

    from il2watch.config import OPTIONS_BY_ATTR
    from il2watch.doctor import NEEDED_SCOPES

    text = (Path(__file__).parent.parent / "config" / "slack-manifest.yml").read_text(encoding="utf-8")
    live = "\n".join(line.split("#")[0].rstrip() for line in text.splitlines())  # comments do not count
    scopes = set(re.findall(r"^      - ([a-z:.]+)$", live, re.MULTILINE))
    assert set(NEEDED_SCOPES) <= scopes
    assert f"    - command: {OPTIONS_BY_ATTR['command'].default}\n" in live
    for line in (
        "    home_tab_enabled: true",
        "      - app_home_opened",
        "  interactivity:\n    is_enabled: true",
        "  socket_mode_enabled: true",
    ):
        assert line in live


# ---------------------------------------------------------------- failures


def test_an_unreadable_library_gets_a_sentence_not_a_traceback(settings, tmp_path):
    from urllib.parse import urlencode

    from slack_bolt.request import BoltRequest

    broken = tmp_path / "not-a-database.db"
    broken.write_bytes(b"this is not SQLite" * 100)
    app = build_app(settings, library_path=broken)
    body = urlencode(
        slash_command_payload(
            "/il2", "search lupus", user_id=READER, channel_id=CHANNEL, response_url="http://127.0.0.1:9/unused"
        )
    )
    response = app.dispatch(BoltRequest(body=body, mode="socket_mode"))
    assert response.status == 200
    reply = json.loads(response.body)
    assert reply["text"].startswith("Sorry, il2watch's library could not answer that: the library")
    assert "not a readable SQLite database" in reply["text"] and "Traceback" not in reply["text"]


# ---------------------------------------------------------------- clicks that cannot be used


def test_a_click_with_no_user_stores_nothing_and_says_so(connected, settings, library):
    api, socket_mode = connected
    pmid = REVIEW_CITED_BY[1]  # no other test votes on it or saves it
    posted = post_paper(api, settings, library, pmid)
    before = library.feedback(pmid)
    for action_id in ("il2_relevant", "il2_save"):
        for user in (None, {"id": ""}, {"id": ["U1"]}, "UREADER1"):
            url = api.new_response_url(channel=CHANNEL, message_ts=posted.ts)
            payload = block_actions_payload(
                action_id, pmid, message=as_history(posted), user_id=READER, channel_id=CHANNEL, response_url=url
            )
            if user is None:
                del payload["user"]
            else:
                payload["user"] = user
            ack = socket_mode.wait_for_ack(socket_mode.send_envelope("interactive", payload), timeout=SLACK_DEADLINE)
            assert ack.seconds < SLACK_DEADLINE
            (post,) = api.wait_for_response_posts(1, url=url)
            assert post.body["text"].startswith("I could not tell who pressed that button, so nothing was recorded")
    assert library.feedback(pmid) == before
    assert library.db.execute("select count(*) from feedback where user = ''").fetchone()[0] == 0
    assert (
        library.saved_by("") == []
        and library.db.execute("select count(*) from saved where user = ''").fetchone()[0] == 0
    )


@pytest.mark.parametrize("value", [[LOW_DOSE_SLE_PMID], {"pmid": LOW_DOSE_SLE_PMID}, 40000001, None, "9" * 3000])
def test_a_button_value_that_is_not_text_is_refused_after_the_ack(connected, library, value):
    api, socket_mode = connected
    for action_id in ("il2_relevant", "il2_save", "il2_details", "il2_more", "il2_share"):
        user = "UVALUE01"
        url = api.new_response_url(channel=CHANNEL, user=user)
        payload = block_actions_payload(
            action_id, "x", message={"ts": "1.000009", "blocks": []}, user_id=user, channel_id=CHANNEL, response_url=url
        )
        payload["actions"][0]["value"] = value
        ack = socket_mode.wait_for_ack(socket_mode.send_envelope("interactive", payload), timeout=SLACK_DEADLINE)
        assert ack.seconds < SLACK_DEADLINE
        (post,) = api.wait_for_response_posts(1, url=url)
        assert post.body["text"] == "That button does not carry a value il2watch made, so nothing was changed.", (
            action_id
        )
    assert library.saved_by("UVALUE01") == []
    assert library.db.execute("select count(*) from feedback where user = 'UVALUE01'").fetchone()[0] == 0


# ---------------------------------------------------------------- who is an admin


def test_with_no_admins_set_nobody_is_an_admin(lab, tmp_path):
    from urllib.parse import urlencode

    from slack_bolt.request import BoltRequest

    api, _, configured = lab
    assert configured.admins == (ADMIN,)
    settings = configured.with_overrides(admins=(), db_path=tmp_path / "no-admins.db")
    app = build_app(settings)
    for user in (ADMIN, READER, "", "U0IL2BOT"):
        for text in ("poll", "watch add 31234567", "watch add engineered IL-2 lupus", "watch remove review"):
            body = urlencode(
                slash_command_payload(
                    "/il2", text, user_id=user, channel_id=CHANNEL, response_url=api.new_response_url(channel=CHANNEL)
                )
            )
            reply = json.loads(app.dispatch(BoltRequest(body=body, mode="socket_mode")).body)
            command = " ".join(text.split()[:2]) if text.startswith("watch") else text.split()[0]
            assert reply["text"].startswith(f"Sorry, `/il2 {command}` is only for il2watch's admins"), reply
            assert "No admins are set (IL2WATCH_ADMINS)" in reply["text"]
    with Library(settings.db_path) as library:
        assert library.slack_watches() == [] and library.last_run("poll") is None
        assert library.outbox() == []


def test_a_lexicon_that_would_tag_every_paper_is_refused_when_the_app_starts(settings, tmp_path):
    from il2watch.config import ConfigError

    lexicon = tmp_path / "lexicon.toml"
    lexicon.write_text('[[molecule]]\nname = "GI-101"\ncodes = ["-"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        build_app(settings.with_overrides(lexicon_paths=(lexicon,)))
    assert str(refused.value) == (
        f"lexicon: {lexicon}: molecule 'GI-101' codes: '-' has fewer than two letters or digits, "
        "so it would match in every paper"
    )
