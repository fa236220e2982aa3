"""The optional summariser against a small chat-completions server on 127.0.0.1."""

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

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
    """Answers POST /v1/chat/completions the way the test tells it to."""

    def __init__(self):
        self.mode = "good"
        self.content: object = MODEL_SUMMARY
        self.requests: list[dict] = []
        self.release = threading.Event()
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
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b'{"error": "overloaded"}')
                    return
                if server.mode == "garbage":
                    payload = b"<html>not json</html>"
                elif server.mode == "no-choices":
                    payload = json.dumps({"id": "x", "choices": []}).encode()
                else:
                    payload = json.dumps(
                        {"choices": [{"index": 0, "message": {"role": "assistant", "content": server.content}}]}
                    ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
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


def summariser_for(server: ChatServer, timeout: float = 2.0) -> ChatSummariser:
    return ChatSummariser(base_url=server.base_url, model="tiny-model", api_key=API_KEY, timeout=timeout)


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
    ("mode", "content"),
    [
        ("error", None),
        ("garbage", None),
        ("no-choices", None),
        ("good", ""),
        ("good", "   "),
        ("good", "x" * 301),
        ("good", 42),
    ],
)
def test_bad_answers_fall_back_to_the_extractive_summary_with_a_log_line(server, caplog, mode, content):
    server.mode = mode
    if content is not None:
        server.content = content
    with caplog.at_level(logging.WARNING, logger="il2watch.intel"):
        insight = analyse(PAPER, summariser=summariser_for(server))
    assert insight.summary == EXTRACTIVE
    assert len(server.requests) == 1
    [record] = [r for r in caplog.records if r.name == "il2watch.intel"]
    assert "424242" in record.getMessage()
    assert API_KEY not in record.getMessage()


def test_a_timeout_falls_back_quickly(server, caplog):
    server.mode = "slow"
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="il2watch.intel"):
        insight = analyse(PAPER, summariser=summariser_for(server, timeout=0.2))
    assert time.monotonic() - started < 2
    assert insight.summary == EXTRACTIVE
    assert any("424242" in r.getMessage() for r in caplog.records)


def test_a_refused_connection_falls_back():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    summariser = ChatSummariser(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout=1)
    with pytest.raises(SummariserError):
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
    assert make_summariser() is None
    assert make_summariser(base_url="https://api.example/v1") is None
    assert make_summariser(model="m") is None
    summariser = make_summariser(base_url="https://api.example/v1/", model="m", api_key=API_KEY, timeout=5)
    assert summariser.url == "https://api.example/v1/chat/completions"
    assert API_KEY not in repr(summariser)
