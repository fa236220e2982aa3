"""``il2watch serve``: Slack's HTTP requests at /slack/events through waitress, and /healthz for platforms.

Bolt verifies every request's signature with SLACK_SIGNING_SECRET: a forged one, or one older than five
minutes, gets 401 and reaches no listener. ``serve`` only answers Slack; polling stays with ``il2watch run``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.types import StartResponse

import waitress
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from il2watch.config import ConfigError, Settings, describe_missing

log = logging.getLogger("il2watch.web")

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
DEFAULT_PORT = 3000
MAX_BODY = 1 << 20  # Slack's payloads are a few kilobytes

WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _plain(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def make_wsgi_app(app: App) -> WsgiApp:
    """WSGI: POST /slack/events to Bolt, GET /healthz answered here, anything else 404."""
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
        # Bolt turns the timestamp into an int before checking it; anything but digits is refused here.
        if not environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "").isdigit():
            return _plain(start_response, "401 Unauthorized", {"error": "invalid request"})
        return slack(environ, start_response)

    return wsgi


def create_server(settings: Settings, port: int, *, host: str = "0.0.0.0", app: App | None = None) -> Any:
    """A waitress server for the app, bound but not yet running (``run()`` serves, ``close()`` stops)."""
    if not settings.slack_signing_secret:
        raise ConfigError(describe_missing("slack_signing_secret", "il2watch serve verifies every request with it"))
    if app is None:
        from il2watch.slack_app import build_app

        app = build_app(settings)
    return waitress.create_server(
        make_wsgi_app(app),
        host=host,
        port=port,
        threads=8,
        ident="il2watch",
        max_request_body_size=MAX_BODY,
        clear_untrusted_proxy_headers=True,
    )


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
        if raw and not raw.isdigit():
            print(f"il2watch: PORT must be a port number, not {raw[:20]!r}", file=sys.stderr)
            return 2
        port = int(raw) if raw else DEFAULT_PORT
    try:
        serve(settings, port, host=getattr(args, "host", None) or "0.0.0.0")
    except ConfigError as error:
        print(f"il2watch: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"il2watch: cannot listen on port {port}: {error.strerror}", file=sys.stderr)
        return 1
    return 0
