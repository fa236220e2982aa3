"""The optional summariser against a small chat-completions server on 127.0.0.1."""

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from il2watch import redact
from il2watch.config import Settings
from il2watch.intel import ChatSummariser, SummariserError, analyse, make_summariser, summarise
from il2watch.model import Paper, Section

PAPER = Paper(
    pmid="424242",
    title="Low-dose IL-2 in lupus",
    abstract=(
        Section("Tregs are low in SLE.", "BACKGROUND", "BACKGROUND"),
        Section("Low-dose IL-2 expanded Tregs 2-fold (p=0.01).", "RESULTS", "RESULTS"),
        Section("Low-dose IL-2 is safe and active in SLE.", "CONCLUSIONS", "CONCLUSIONS"),
    ),
)
EXTRACTIVE = summarise(PAPER)
MODEL_SUMMARY = "Low-dose IL-2 doubled Tregs and was safe in lupus."
API_KEY = "sk-test-secret"


class ChatServer:
    """Answers POST /v1/chat/completions the way the test tells it to.

    ``mode``: "good", "error" (HTTP 500), "garbage" (HTML), "no-choices", "slow" (waits for ``release``),
    "drip" (a good answer one byte every ``delay`` seconds), "ratelimited" (HTTP 429 with ``Retry-After:
    retry_after`` once, then good), "huge" (a good answer padded to ``size`` bytes), "bad-key" (HTTP 401
    with a body that echoes the key it was sent, as some compatible servers do), "moved" (HTTP 307 to
    ``location``).
    """

    def __init__(self):
        self.mode = "good"
        self.content: object = MODEL_SUMMARY
        self.requests: list[dict] = []
        self.release = threading.Event()
        self.delay, self.retry_after, self.size, self.location = 0.1, "0.3", 0, ""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                if server.mode == "slow":
                    server.release.wait(5)
                if server.mode == "error":
                    self.answer(500, b'{"error": "overloaded"}')
                    return
                if server.mode == "ratelimited":
                    server.mode = "good"
                    self.answer(
                        429, b'{"error": {"message": "Rate limit reached"}}', {"Retry-After": server.retry_after}
                    )
                    return
                if server.mode == "moved":
                    self.send_response(307)
                    self.send_header("Location", server.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if server.mode == "bad-key":
                    key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    message = {"error": {"message": f"Incorrect API key provided: {key}", "code": "invalid_api_key"}}
                    self.answer(401, json.dumps(message).encode())
                    return
                if server.mode == "garbage":
                    payload = b"<html>not json</html>"
                elif server.mode == "no-choices":
                    payload = json.dumps({"id": "x", "choices": []}).encode()
                else:
                    payload = json.dumps(
                        {"choices": [{"index": 0, "message": {"role": "assistant", "content": server.content}}]}
                    ).encode()
                if server.mode == "huge":
                    payload = payload[:-1] + b" " * max(0, server.size - len(payload)) + b"}"
                self.answer(200, payload)

            def answer(self, status: int, payload: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    if server.mode == "drip":
                        for byte in payload:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(server.delay)
                    else:
                        self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up waiting

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@pytest.fixture
def server(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    chat = ChatServer()
    chat.thread.start()
    yield chat
    chat.release.set()
    chat.httpd.shutdown()
    chat.httpd.server_close()


def summariser_for(server: ChatServer, **settings) -> ChatSummariser:
    """The summariser il2watch builds from its settings; two quick attempts unless told otherwise."""
    values = dict(http_timeout=2.0, http_attempts=2, http_backoff=0.01) | settings
    summariser = make_summariser(
        Settings(summariser_url=server.base_url, summariser_model="tiny-model", summariser_key=API_KEY, **values)
    )
    assert summariser is not None
    return summariser


def test_a_good_answer_is_used(server):
    insight = analyse(PAPER, summariser=summariser_for(server))
    assert insight.summary == MODEL_SUMMARY
    [request] = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert request["body"]["model"] == "tiny-model"
    user = request["body"]["messages"][-1]["content"]
    assert "Low-dose IL-2 in lupus" in user and "RESULTS: Low-dose IL-2 expanded Tregs" in user


def test_answer_is_tidied_to_plain_text(server):
    server.content = '  "Low-dose IL-2 doubled Tregs\n and was safe in lupus.\u202e"  '
    assert summariser_for(server)("t", "a") == MODEL_SUMMARY


@pytest.mark.parametrize(
    ("mode", "content", "asked"),
    [
        ("error", None, 2),  # a 500 is asked again (two attempts here), then given up
        ("garbage", None, 1),
        ("no-choices", None, 1),
        ("good", "", 1),
        ("good", "   ", 1),
        ("good", "x" * 301, 1),
        ("good", 42, 1),
    ],
)
def test_bad_answers_fall_back_to_the_extractive_summary_with_a_log_line(server, caplog, mode, content, asked):
    server.mode = mode
    if content is not None:
        server.content = content
    with caplog.at_level(logging.WARNING, logger="il2watch.intel"):
        insight = analyse(PAPER, summariser=summariser_for(server))
    assert insight.summary == EXTRACTIVE
    assert len(server.requests) == asked
    [record] = [r for r in caplog.records if r.name == "il2watch.intel"]
    assert "424242" in record.getMessage()
    assert API_KEY not in record.getMessage()


def test_a_timeout_falls_back_quickly(server, caplog):
    """IL2WATCH_HTTP_TIMEOUT is the summariser's read timeout, as its help says."""
    server.mode = "slow"
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="il2watch.intel"):
        insight = analyse(PAPER, summariser=summariser_for(server, http_timeout=0.2))
    assert time.monotonic() - started < 2
    assert insight.summary == EXTRACTIVE
    assert any("424242" in r.getMessage() and "read timeout" in r.getMessage() for r in caplog.records)


def test_an_answer_dripped_slowly_is_cut_at_the_request_deadline(server, caplog):
    """D2: one byte every 0.1 s never trips a 1 s read timeout; IL2WATCH_REQUEST_DEADLINE (1 s) ends it, at
    once and without a retry, and the extractive summary is used."""
    server.mode, server.delay = "drip", 0.1
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="il2watch.intel"):
        insight = analyse(PAPER, summariser=summariser_for(server, http_timeout=1.0, request_deadline=1.0))
    took = time.monotonic() - started
    assert insight.summary == EXTRACTIVE and 0.9 < took < 2.0, took
    assert len(server.requests) == 1
    [record] = [r for r in caplog.records if r.name == "il2watch.intel"]
    assert record.getMessage() == (
        "language-model summary unavailable for PMID 424242 (the summariser took more than 1 s to answer "
        "chat/completions: its body was still arriving (IL2WATCH_REQUEST_DEADLINE)); using the extractive summary"
    )


def test_a_429_is_waited_out_as_retry_after_says_then_the_answer_is_used(server):
    server.mode, server.retry_after = "ratelimited", "0.3"
    started = time.monotonic()
    insight = analyse(PAPER, summariser=summariser_for(server, http_backoff=5.0))
    assert insight.summary == MODEL_SUMMARY
    assert len(server.requests) == 2
    assert 0.3 <= time.monotonic() - started < 3  # Retry-After (0.3 s) won over the 5 s backoff


def test_an_answer_over_the_cap_falls_back_naming_the_setting(server, caplog):
    server.mode, server.size = "huge", 5_000
    with caplog.at_level(logging.WARNING, logger="il2watch.intel"):
        insight = analyse(PAPER, summariser=summariser_for(server, max_answer_mb=0.001))
    assert insight.summary == EXTRACTIVE
    [record] = [r for r in caplog.records if r.name == "il2watch.intel"]
    assert "the summariser answered more than 0.001 MB to chat/completions" in record.getMessage()
    assert "IL2WATCH_MAX_ANSWER_MB" in record.getMessage()
    server.size = 900  # the same answer under the cap is used
    assert analyse(PAPER, summariser=summariser_for(server, max_answer_mb=0.001)).summary == MODEL_SUMMARY


def test_a_server_that_echoes_the_key_never_gets_it_into_the_line(server, caplog):
    redact.restore(frozenset())  # only what the summariser itself knows protects the key here
    server.mode = "bad-key"
    with caplog.at_level(logging.WARNING, logger="il2watch.intel"):
        insight = analyse(PAPER, summariser=summariser_for(server))
    assert insight.summary == EXTRACTIVE
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {API_KEY}"
    [record] = [r for r in caplog.records if r.name == "il2watch.intel"]
    message = record.getMessage()
    assert "the summariser answered HTTP 401 to chat/completions" in message and "Incorrect API key" in message
    assert API_KEY not in message and "\n" not in message


def test_a_summariser_that_failed_for_good_is_not_asked_again_in_the_same_poll(server, caplog):
    """Once the transport gave up on the host, the next papers get the extractive summary at once, instead of
    waiting out every attempt again for each one."""
    server.mode = "error"
    summariser = summariser_for(server)
    with caplog.at_level(logging.WARNING, logger="il2watch.intel"):
        assert analyse(PAPER, summariser=summariser).summary == EXTRACTIVE
        assert analyse(PAPER, summariser=summariser).summary == EXTRACTIVE
    assert len(server.requests) == 2  # two attempts for the first paper, none for the second
    last = [r.getMessage() for r in caplog.records if r.name == "il2watch.intel"][-1]
    assert "not asked again in this poll: the summariser chat/completions failed after 2 attempts (HTTP 500)" in last
    server.mode = "good"
    assert analyse(PAPER, summariser=summariser_for(server)).summary == MODEL_SUMMARY  # the next poll asks


def test_an_answer_about_one_paper_does_not_stop_the_summariser_for_the_next(server):
    """An answer over the cap (or a 400 for one text) says nothing about the host: the next paper is asked."""
    server.mode, server.size = "huge", 5_000
    summariser = summariser_for(server, max_answer_mb=0.001)
    assert analyse(PAPER, summariser=summariser).summary == EXTRACTIVE
    server.mode = "good"
    assert analyse(PAPER, summariser=summariser).summary == MODEL_SUMMARY
    assert len(server.requests) == 2


def test_a_redirect_to_another_host_sends_the_key_nowhere_else(server, caplog):
    """D3 for the summariser: a 307 to another host is refused; that host receives nothing, the line names
    both hosts and no key."""
    elsewhere = ChatServer()
    elsewhere.thread.start()
    try:
        server.mode, server.location = "moved", elsewhere.base_url + "/chat/completions"
        with caplog.at_level(logging.WARNING, logger="il2watch.intel"):
            insight = analyse(PAPER, summariser=summariser_for(server))
        assert insight.summary == EXTRACTIVE
        assert len(server.requests) == 1 and elsewhere.requests == []
        here, there = server.base_url.removesuffix("/v1"), elsewhere.base_url.removesuffix("/v1")
        [record] = [r for r in caplog.records if r.name == "il2watch.intel"]
        assert f"the summariser redirected chat/completions from {here} to {there} (HTTP 307)" in record.getMessage()
        assert API_KEY not in record.getMessage()
    finally:
        elsewhere.httpd.shutdown()
        elsewhere.httpd.server_close()


def test_a_refused_connection_falls_back():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    summariser = make_summariser(Settings(summariser_url=f"http://127.0.0.1:{port}/v1", summariser_model="m"))
    assert summariser is not None
    with pytest.raises(SummariserError, match=f"^the summariser cannot be reached: 127.0.0.1:{port} refused"):
        summariser("t", "a")
    assert analyse(PAPER, summariser=summariser).summary == EXTRACTIVE


def test_any_callable_that_fails_falls_back():
    def broken(title: str, abstract: str) -> str:
        raise RuntimeError("boom")

    assert analyse(PAPER, summariser=broken).summary == EXTRACTIVE
    assert analyse(PAPER, summariser=lambda t, a: "fine summary.").summary == "fine summary."


def test_papers_without_abstract_never_reach_the_model(server):
    bare = Paper(pmid="1", title="An editorial", pub_types=("Editorial",))
    insight = analyse(bare, summariser=summariser_for(server))
    assert insight.summary == "No abstract in PubMed. Publication type: Editorial."
    assert server.requests == []


def test_off_unless_configured():
    assert make_summariser(Settings()) is None
    assert make_summariser(Settings(summariser_url="https://api.example/v1")) is None
    assert make_summariser(Settings(summariser_model="m")) is None
    summariser = make_summariser(
        Settings(summariser_url="https://api.example/v1/", summariser_model="m", summariser_key=API_KEY)
    )
    assert summariser is not None and summariser.url == "https://api.example/v1/chat/completions"
    assert API_KEY not in repr(summariser)
