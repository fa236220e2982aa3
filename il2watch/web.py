"""``il2watch serve``: Slack's HTTP requests at /slack/events through waitress, and /healthz for platforms.

Every request's signature is checked here, over the raw bytes, before anything reads or parses the body:
a body of at most ``MAX_BODY`` bytes, a timestamp of ASCII digits within five minutes of now, and
``v0=HMAC-SHA256(signing secret, "v0:<timestamp>:<body>")`` compared in constant time. Anything else gets
401 and one log line; only a signed request reaches Bolt (which checks the signature again), and only when
its payload has the shape Slack's have (``shape_problem``): else 400 and one line, never Bolt's 500 and
traceback.
``serve`` only answers Slack; polling stays with ``il2watch run``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.types import StartResponse

import waitress
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.request.internals import parse_body
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError

from il2watch.config import ConfigError, Settings, describe_missing

log = logging.getLogger("il2watch.web")

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
DEFAULT_PORT = 3000
MAX_BODY = 1 << 20  # Slack's payloads are a few kilobytes
REPLAY_WINDOW = 300  # seconds: Slack's rule for how old (or how far ahead) a signed request may be
_DIGITS = re.compile(r"[0-9]{1,12}", re.ASCII)  # str.isdigit() also takes "²" and "٣"
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}", re.ASCII)

WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def read_port(text: str) -> int:
    """A TCP port from text: ASCII digits from 1 to 65535; ValueError saying so otherwise."""
    text = text.strip()
    if not (_DIGITS.fullmatch(text) and 1 <= int(text) <= 65535):
        raise ValueError(f"must be a port number from 1 to 65535, not {text[:20]!r}")
    return int(text)


def signature_problem(secret: str, timestamp: str, signature: str, body: bytes, now: float) -> str:
    """Why a request is not Slack's ("" when it is): checked over the raw bytes, nothing parsed."""
    if not _DIGITS.fullmatch(timestamp):
        return "no usable X-Slack-Request-Timestamp"
    if abs(now - int(timestamp)) > REPLAY_WINDOW:
        return "X-Slack-Request-Timestamp is more than five minutes from now"
    if not _SIGNATURE.fullmatch(signature):
        return "no usable X-Slack-Signature"
    expected = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest("v0=" + expected, signature):
        return "the signature does not match"
    return ""


def shape_problem(body: str, content_type: str) -> str:
    """Why a signed body is not shaped as Slack's payloads are ("" when it may be one), read as Bolt reads it.

    Bolt indexes what it routes on (``actions[0]``, ``view["id"]``, ``event["type"]``) before any listener
    runs, and answers anything else with HTTP 500 and a traceback: a payload is an object, ``actions`` a
    list of objects, ``view`` an object (always in a ``view_submission`` or ``view_closed``), ``event`` an
    object."""
    try:
        payload = parse_body(body, content_type)
    except (ValueError, RecursionError):
        return "its body is not JSON or a form Slack sends"
    if not isinstance(payload, dict):
        return "its payload is not an object"
    actions = payload.get("actions")
    if "actions" in payload and not (isinstance(actions, list) and all(isinstance(a, dict) for a in actions)):
        return "its actions are not a list of objects"
    view = payload.get("view")
    if (view is not None or payload.get("type") in ("view_submission", "view_closed")) and not isinstance(view, dict):
        return "its view is not an object"
    if "event" in payload and not isinstance(payload["event"], dict):
        return "its event is not an object"
    return ""


def _plain(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """The request body, or None when it is larger than ``MAX_BODY`` (waitress refuses most such bodies first)."""
    length_text = str(environ.get("CONTENT_LENGTH") or "0")
    if not (length_text.isascii() and length_text.isdigit()) or int(length_text) > MAX_BODY:
        return None
    stream = environ.get("wsgi.input")
    return stream.read(int(length_text)) if stream is not None and int(length_text) else b""


def make_wsgi_app(app: App, signing_secret: str, clock: Callable[[], float] = time.time) -> WsgiApp:
    """WSGI: POST /slack/events, once its signature is verified, to Bolt; GET /healthz answered here; else 404."""
    slack = SlackRequestHandler(app, path=EVENTS_PATH)

    def wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path == HEALTH_PATH:
            if method not in ("GET", "HEAD"):
                return _plain(start_response, "405 Method Not Allowed", {"ok": False})
            return _plain(start_response, "200 OK", {"ok": True, "service": "il2watch"})
        if path != EVENTS_PATH:
            return _plain(start_response, "404 Not Found", {"ok": False, "error": "not found"})
        if method != "POST":
            return _plain(start_response, "405 Method Not Allowed", {"ok": False})
        body = _read_body(environ)
        if body is None:
            return _plain(start_response, "413 Request Entity Too Large", {"error": "request too large"})
        problem = signature_problem(
            signing_secret,
            str(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")),
            str(environ.get("HTTP_X_SLACK_SIGNATURE", "")),
            body,
            clock(),
        )
        if problem:
            log.info("refused a request to %s from %s: %s", EVENTS_PATH, environ.get("REMOTE_ADDR", "?"), problem)
            return _plain(start_response, "401 Unauthorized", {"error": "invalid request"})
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            log.warning("refused a signed request whose body is not UTF-8")
            return _plain(start_response, "400 Bad Request", {"error": "invalid request"})
        shape = shape_problem(text, str(environ.get("CONTENT_TYPE", "")))
        if shape:
            log.warning("refused a signed request Slack would not send: %s", shape)
            return _plain(start_response, "400 Bad Request", {"error": "invalid request"})
        environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        try:
            return slack(environ, start_response)
        except (ValueError, TypeError, AttributeError, KeyError, RecursionError) as error:
            # Signed, yet not a payload Bolt can read (Slack never sends one): say so in one line.
            log.warning("refused a signed request Bolt cannot read (%s)", type(error).__name__)
            return _plain(start_response, "400 Bad Request", {"error": "invalid request"})

    return wsgi


class _RequestParser(HTTPRequestParser):
    """waitress's request parser, with one more request it refuses as it refuses a malformed one (400).

    waitress reads Content-Length with ``int()``, which refuses more than 4,300 digits (Python's guard
    against slow conversions) with a ValueError that waitress does not catch: the connection closed without
    an answer and an "uncaptured python exception" logged with its frames, before il2watch saw the request."""

    def parse_header(self, header_plus: bytes) -> None:
        try:
            super().parse_header(header_plus)
        except ValueError:
            raise ParsingError("Content-Length is invalid") from None


class _Channel(HTTPChannel):
    parser_class = _RequestParser


def create_server(settings: Settings, port: int, *, host: str = "0.0.0.0", app: App | None = None) -> Any:
    """A waitress server for the app, bound but not yet running (``run()`` serves, ``close()`` stops)."""
    if not settings.slack_signing_secret:
        raise ConfigError(describe_missing("slack_signing_secret", "il2watch serve verifies every request with it"))
    if app is None:
        from il2watch.slack_app import build_app

        app = build_app(settings)
    listeners: dict[int, Any] = {}  # what waitress listens and serves on, filled by create_server
    try:
        server = waitress.create_server(
            make_wsgi_app(app, settings.slack_signing_secret),
            map=listeners,
            host=host,
            port=port,
            threads=8,
            ident="il2watch",
            max_request_body_size=MAX_BODY,
            clear_untrusted_proxy_headers=True,
        )
    except ValueError:  # waitress's "Invalid host/port specified": the host does not resolve to an address
        raise ConfigError(
            f"--host {host[:80]!r} is not an address or a name this machine can listen on; "
            "use an IP address such as 0.0.0.0 (every interface) or 127.0.0.1"
        ) from None
    for listener in listeners.values():  # each listening socket makes its connections' channels
        listener.channel_class = _Channel
    return server


def serve(settings: Settings, port: int, *, host: str = "0.0.0.0") -> None:
    """Serve until SIGTERM or SIGINT."""
    server = create_server(settings, port, host=host)
    log.info("answering Slack at http://%s:%s%s (health: %s)", host, server.effective_port, EVENTS_PATH, HEALTH_PATH)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.run()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        server.close()


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Answer Slack's commands, buttons and App Home over HTTP at /slack/events (HTTP mode; polling stays
    with `il2watch run`)."""
    port = getattr(args, "port", None)
    if port is None:
        raw = os.environ.get("PORT", "")
        try:
            port = read_port(raw) if raw.strip() else DEFAULT_PORT
        except ValueError as error:
            print(f"il2watch: PORT (from the environment) {error}", file=sys.stderr)
            return 2
    host = getattr(args, "host", None) or "0.0.0.0"
    try:
        serve(settings, port, host=host)
    except ConfigError as error:
        print(f"il2watch: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"il2watch: cannot listen on {host}:{port}: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0
