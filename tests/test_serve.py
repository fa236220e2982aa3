"""il2watch serve: Slack's HTTP requests, signed with a real HMAC, against the app under waitress."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from il2watch.config import load_settings
from il2watch.library import Library
from il2watch.model import Paper, Reason
from tests.data.records import REVIEW_PMID, UNRELATED_PMID, build_world
from tests.stand_ins.eutils import EutilsStandIn
from tests.stand_ins.slack_api import DEFAULT_BOT_TOKEN, SlackStandIn
from tests.stand_ins.socket_mode import app_home_opened_payload, block_actions_payload, slash_command_payload
from tests.support import PROXY_VARIABLES, subprocess_env

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ADMIN, READER = "UADMIN01", "UREADER1"
CHANNEL = "C0GENERAL"
SLACK_DEADLINE = 3.0
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One il2watch serve for the module, on the Slack and NCBI stand-ins; tests keep to their own users and
    PMIDs so that none depends on another."""
    tmp_path = tmp_path_factory.mktemp("serve")
    with pytest.MonkeyPatch.context() as patch:
        for name in PROXY_VARIABLES:
            patch.delenv(name, raising=False)
        with SlackStandIn() as api, EutilsStandIn(build_world()) as ncbi_server:
            settings = load_settings(
                {
                    "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN,
                    "SLACK_SIGNING_SECRET": SECRET,
                    "IL2WATCH_SLACK_API_URL": api.base_url,
                    "IL2WATCH_EUTILS_URL": ncbi_server.base_url,
                    "IL2WATCH_NCBI_BACKOFF": "0.01",
                    "NCBI_EMAIL": "lab@example.org",
                    "IL2WATCH_DB": str(tmp_path / "lib.db"),
                    "IL2WATCH_ADMINS": ADMIN,
                    "IL2WATCH_CHANNEL": CHANNEL,
                },
                cwd=tmp_path,
            )
            with Library(settings.db_path) as library:
                library.save_papers(
                    [
                        Paper(
                            "40000001",
                            "Low-dose IL-2 expands regulatory T cells in lupus",
                            entry_date="2024-05-30",
                            pub_year=2024,
                        )
                    ]
                )
                library.save_reasons(
                    [("40000001", Reason("review", "cites"))], now="2024-06-01T00:00:00+00:00", run_id=None
                )
            port = free_port()
            env = subprocess_env(
                PYTHONPATH=str(REPO),
                SLACK_BOT_TOKEN=DEFAULT_BOT_TOKEN,
                SLACK_SIGNING_SECRET=SECRET,
                IL2WATCH_SLACK_API_URL=api.base_url,
                IL2WATCH_EUTILS_URL=ncbi_server.base_url,
                IL2WATCH_NCBI_BACKOFF="0.01",
                NCBI_EMAIL="lab@example.org",
                IL2WATCH_DB=str(tmp_path / "lib.db"),
                IL2WATCH_ADMINS=ADMIN,
                IL2WATCH_CHANNEL=CHANNEL,
                IL2WATCH_CONFIG=str(tmp_path / "none.toml"),
            )
            (tmp_path / "none.toml").write_text("", encoding="utf-8")
            log_path = tmp_path / "serve.log"
            with log_path.open("w", encoding="utf-8") as log_file:
                server = subprocess.Popen(
                    [sys.executable, "-m", "il2watch", "serve", "--port", str(port), "--host", "127.0.0.1"],
                    cwd=REPO,
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
                try:
                    wait_for_health(port, server)
                    yield api, settings, port, log_path
                finally:
                    server.send_signal(signal.SIGTERM)
                    server.wait(timeout=15)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_health(port: int, server: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "il2watch serve exited"
        try:
            if request(port, "GET", "/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("il2watch serve did not answer /healthz")


@pytest.fixture
def api(lab):
    return lab[0]


@pytest.fixture
def port(lab):
    return lab[2]


@pytest.fixture
def serve_log(lab):
    return lab[3]


@pytest.fixture
def library(lab):
    with Library(lab[1].db_path) as library:
        yield library


def signature(body: bytes, timestamp: str, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return "v0=" + digest


def request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    started = time.monotonic()
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data, time.monotonic() - started


def send(
    port: int,
    body: bytes,
    *,
    content_type: str,
    timestamp: str | None = None,
    secret: str = SECRET,
    extra: dict | None = None,
):
    timestamp = timestamp if timestamp is not None else str(int(time.time()))
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature(body, timestamp, secret),
        **(extra or {}),
    }
    return request(port, "POST", "/slack/events", body, headers)


def slash(port: int, api, text: str, *, user: str = READER, **options):
    url = api.new_response_url(channel=CHANNEL, user=user)
    body = urlencode(slash_command_payload("/il2", text, user_id=user, channel_id=CHANNEL, response_url=url)).encode()
    status, data, seconds = send(port, body, content_type="application/x-www-form-urlencoded", **options)
    return status, data, seconds, url


def interactive(port: int, payload: dict, **options):
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return send(port, body, content_type="application/x-www-form-urlencoded", **options)


def event(port: int, payload: dict, **options):
    return send(port, json.dumps(payload).encode(), content_type="application/json", **options)


# ---------------------------------------------------------------- health and routing


def test_healthz_answers_for_platforms(port):
    status, data, _ = request(port, "GET", "/healthz")
    assert status == 200 and json.loads(data)["ok"] is True
    assert request(port, "HEAD", "/healthz")[0] == 200
    assert request(port, "POST", "/healthz")[0] == 405
    assert request(port, "GET", "/slack/events")[0] == 405
    assert request(port, "GET", "/")[0] == 404


# ---------------------------------------------------------------- signed requests


def test_a_signed_command_is_answered_within_slacks_deadline(port, api):
    status, data, seconds, url = slash(port, api, "search lupus")
    assert status == 200 and seconds < SLACK_DEADLINE
    reply = json.loads(data)
    assert reply["response_type"] == "ephemeral" and "40000001" in json.dumps(reply["blocks"])


def test_a_slow_answer_follows_the_ack_through_the_response_url(port, api, library):
    status, data, seconds, url = slash(port, api, f"paper {REVIEW_PMID}")
    assert status == 200 and seconds < SLACK_DEADLINE and "Looking up PMID" in json.loads(data)["text"]
    (post,) = api.wait_for_response_posts(1, url=url)
    assert "Engineering IL-2" in json.dumps(post.body["blocks"])
    assert library.paper(REVIEW_PMID) is not None


@pytest.mark.parametrize(
    "forgery", ["wrong secret", "stale", "future", "garbled timestamp", "no signature", "tampered body"]
)
def test_forged_or_stale_requests_get_401_and_do_nothing(port, api, library, forgery):
    url = api.new_response_url(channel=CHANNEL, user=ADMIN)
    body = urlencode(
        slash_command_payload("/il2", "watch add 31234567", user_id=ADMIN, channel_id=CHANNEL, response_url=url)
    ).encode()
    now = int(time.time())
    timestamp, sign_with, sent, headers = str(now), SECRET, body, {}
    if forgery == "wrong secret":
        sign_with = "not-the-secret"
    elif forgery == "stale":
        timestamp = str(now - 301)
    elif forgery == "future":
        timestamp = str(now + 301)
    elif forgery == "tampered body":
        sent = body.replace(b"31234567", b"31234568")
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature(body, timestamp, sign_with),
    }
    if forgery == "garbled timestamp":
        headers["X-Slack-Request-Timestamp"] = "yesterday"
    if forgery == "no signature":
        del headers["X-Slack-Signature"]
    status, data, _ = request(port, "POST", "/slack/events", sent, headers)
    assert status == 401
    assert "pmid-31234567" not in [w.id for w in library.slack_watches()] and not library.outbox(kind="watch")
    assert api.response_posts(url) == []


def test_a_properly_signed_request_does_act(port, api, library):
    status, data, _, url = slash(port, api, f"watch add {UNRELATED_PMID}", user=ADMIN)
    assert status == 200 and f"Checking PMID {UNRELATED_PMID} with PubMed" in json.loads(data)["text"]
    (post,) = api.wait_for_response_posts(1, url=url)
    assert f"Now watching PMID {UNRELATED_PMID}" in post.body["text"]
    assert [w.id for w in library.slack_watches()] == [f"pmid-{UNRELATED_PMID}"]


def test_a_huge_body_is_refused_before_it_is_read(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: il2watch\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 2097152\r\n\r\n"
        )
        head = connection.recv(200)
    assert head.startswith(b"HTTP/1.1 413")


# ---------------------------------------------------------------- buttons, events, retries


def test_a_button_click_over_http(port, api, library):
    url = api.new_response_url(channel=CHANNEL, user="USAVER01", message_ts="1.000001")
    payload = block_actions_payload(
        "il2_save",
        "40000001",
        message={"ts": "1.000001", "blocks": []},
        user_id="USAVER01",
        channel_id=CHANNEL,
        response_url=url,
    )
    status, _, seconds = interactive(port, payload)
    assert status == 200 and seconds < SLACK_DEADLINE
    (post,) = api.wait_for_response_posts(1, url=url)
    assert "Saved PMID 40000001" in post.body["text"] and library.saved_by("USAVER01") == ["pmid:40000001"]


def test_app_home_over_http_and_slacks_retries_are_harmless(port, api):
    payload = app_home_opened_payload(READER)
    assert event(port, payload)[0] == 200
    view = None
    deadline = time.monotonic() + 3
    while view is None and time.monotonic() < deadline:
        view = api.home_view(READER)
        time.sleep(0.01)
    assert view and "Latest papers" in json.dumps(view["blocks"])
    assert event(port, payload, extra={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})[0] == 200
    time.sleep(0.1)  # long enough for a second publish to have arrived, were there one
    assert len([c for c in api.calls("views.publish") if c.params.get("user_id") == READER]) == 1


def test_slacks_url_verification_challenge(port):
    status, data, _ = event(port, {"type": "url_verification", "token": "t", "challenge": "il2-challenge"})
    assert status == 200 and json.loads(data)["challenge"] == "il2-challenge"


# ---------------------------------------------------------------- before authentication

NOW = str(int(time.time()))
UNSIGNED_BODIES = {
    "a lone brace": (b"{", "application/json"),
    "a form whose payload is a lone brace": (b"payload=%7B", "application/x-www-form-urlencoded"),
    "invalid UTF-8": (b"\xff\xfe\xfa command=/il2", "application/x-www-form-urlencoded"),
    "a JSON list": (b'[{"type": "url_verification"}]', "application/json"),
    "20,000-deep nesting": (b"[" * 20_000 + b"]" * 20_000, "application/json"),
    "20,000-deep nesting in a payload": (
        b"payload=" + b"%5B" * 20_000 + b"%5D" * 20_000,
        "application/x-www-form-urlencoded",
    ),
}


@pytest.mark.parametrize("what", list(UNSIGNED_BODIES))
def test_unsigned_bodies_are_refused_before_anything_reads_them(port, serve_log, what):
    body, content_type = UNSIGNED_BODIES[what]
    for signature in ({}, {"X-Slack-Signature": "v0=" + "0" * 64}, {"X-Slack-Signature": "v0=zz"}):
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": NOW, **signature}
        status, data, _ = request(port, "POST", "/slack/events", body, headers)
        assert status == 401 and json.loads(data) == {"error": "invalid request"}
    assert request(port, "GET", "/healthz")[0] == 200
    assert "Traceback" not in serve_log.read_text(encoding="utf-8")


@pytest.mark.parametrize("timestamp", ["9" * 5000, "\xb2", "١٧٠٠٠٠٠٠٠٠", " 1700000000", "1e9", "-1", ""])
def test_a_timestamp_that_is_not_ascii_digits_is_refused(port, serve_log, timestamp):
    body = urlencode(
        slash_command_payload("/il2", "help", user_id=READER, channel_id=CHANNEL, response_url="http://127.0.0.1:9/")
    ).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature(body, timestamp),  # even a correct signature over it does not help
    }
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("POST", "/slack/events")
    for name, value in headers.items():  # as raw bytes: "\xb2" arrives as the byte 0xB2, read as "²"
        try:
            connection.putheader(name, value.encode("latin-1"))
        except UnicodeEncodeError:
            connection.putheader(name, value.encode("utf-8"))
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    assert response.status == 401, response.read()
    connection.close()
    assert "Traceback" not in serve_log.read_text(encoding="utf-8")


def _clicked(**changes) -> tuple[bytes, str]:
    payload = block_actions_payload(
        "il2_save",
        "pmid:40000001",
        message={"ts": "1.000001", "blocks": []},
        user_id=READER,
        channel_id=CHANNEL,
        response_url="http://127.0.0.1:9/unused",
    )
    payload.update(changes)
    return urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"


WRONG_SHAPES = {
    "actions as strings": _clicked(actions=["il2_save", "il2_more"]),
    "actions as an object": _clicked(actions={"action_id": "il2_save", "value": "pmid:40000001"}),
    "a view_submission whose view is null": _clicked(type="view_submission", view=None),
    "an event that is a list": (
        json.dumps({**app_home_opened_payload("UREADER1"), "event": [{"type": "app_home_opened"}]}).encode(),
        "application/json",
    ),
}


@pytest.mark.parametrize("what", ["a lone brace", "a JSON list", "20,000-deep nesting", *WRONG_SHAPES])
def test_a_signed_body_bolt_cannot_read_is_refused_in_one_line(port, serve_log, what):
    body, content_type = UNSIGNED_BODIES.get(what) or WRONG_SHAPES[what]
    before = serve_log.read_text(encoding="utf-8")
    status, data, _ = send(port, body, content_type=content_type)
    assert status == 400 and json.loads(data) == {"error": "invalid request"}
    assert request(port, "GET", "/healthz")[0] == 200
    logged = serve_log.read_text(encoding="utf-8")
    assert "Traceback" not in logged
    (line,) = logged[len(before) :].splitlines()
    assert "refused a signed request" in line


def test_a_content_length_of_5000_digits_gets_400_and_the_server_serves_on(port, serve_log):
    """waitress reads Content-Length with int(), which refuses more than 4,300 digits: it closed the
    connection without an answer and logged the exception with its frames. Now 400, nothing processed."""
    before = serve_log.read_text(encoding="utf-8")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n{}"
        )
        answer = b"".join(iter(lambda: connection.recv(65536), b""))  # waitress closes after a 400
    assert answer.startswith(b"HTTP/1.1 400 Bad Request"), answer[:200]
    assert b"Content-Length is invalid" in answer
    assert request(port, "GET", "/healthz")[0] == 200
    logged = serve_log.read_text(encoding="utf-8")[len(before) :]
    assert "uncaptured" not in logged and "Traceback" not in logged and "ValueError" not in logged


def test_the_signature_is_checked_over_the_raw_bytes():
    from il2watch.web import signature_problem

    body, now = b"command=%2Fil2&text=help", 1_700_000_000.0
    good = signature(body, "1700000000")
    assert signature_problem(SECRET, "1700000000", good, body, now) == ""
    assert signature_problem(SECRET, "1700000000", good, body + b" ", now) == "the signature does not match"
    assert signature_problem(SECRET, "1700000000", good.upper(), body, now) == "no usable X-Slack-Signature"
    assert "five minutes" in signature_problem(SECRET, "1700000000", good, body, now + 301)
    assert signature_problem(SECRET, "1700000000", good, body, now + 299) == ""
    assert signature_problem(SECRET, "\xb2", good, body, now) == "no usable X-Slack-Request-Timestamp"
