"""What the JSON stand-ins (iCite, Europe PMC, OpenAlex) share: a real HTTP server on 127.0.0.1, a log of
every request, a per-client rate limit that answers 429 with ``Retry-After``, and injectable faults.

Faults queue up and are used in the order injected: an HTTP status (with an optional ``Retry-After`` and
body), "html" (200 with an HTML page, as a captive portal or a proxy error sends), "malformed" (200 with
JSON cut in half), "reset" (the connection closed unanswered), "slow" (the answer after ``delay`` seconds),
"drip" (the answer a few bytes at a time, ``delay`` seconds apart) and "empty" (the index's own "nothing
here" answer). ``down = True`` makes every request fail with 503 until it is set back. An injected status
answers a generic JSON error (not the index's own answer) unless ``body`` is given.

``alter(path_contains, change)`` reshapes the service's own JSON answers before they are sent (a test
writes hostile record shapes into real answers with it), and ``latency`` makes every answer wait, as a
distant host's would.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

JSON = "application/json;charset=UTF-8"
NAMED_FAULTS = ("html", "malformed", "reset", "slow", "drip", "empty")


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    time: float
    method: str
    path: str  # decoded, without the query string, relative to the server's root
    params: dict[str, list[str]]
    headers: dict[str, str]
    status: int  # sent; 0 when the connection was reset unanswered
    fault: str = ""

    def param(self, name: str, default: str = "") -> str:
        values = self.params.get(name)
        return values[0] if values else default


@dataclass
class Answer:
    status: int
    body: Any  # a JSON-able value, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON


@dataclass
class _Fault:
    kind: int | str
    path_contains: str
    remaining: int
    retry_after: str | None
    delay: float
    body: Any


class NotFound(Exception):
    """The path names nothing this stand-in serves: a plain 404, as a wrong base URL gets."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    stand_in: JsonStandIn


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's naming)
        self.server.stand_in._handle(self, "GET")

    def do_POST(self) -> None:  # noqa: N802
        self.server.stand_in._handle(self, "POST")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: requests are kept in ``JsonStandIn.requests``."""


class JsonStandIn(ABC):
    """A JSON API on 127.0.0.1; subclasses answer in ``route``. A context manager; runs until ``close()``."""

    name = "stand-in"
    root = "/"  # the path prefix of the real service's base URL
    rate_limit = 10  # requests per ``rate_window`` seconds per client before 429

    def __init__(
        self, *, rate_window: float = 1.0, enforce_rate_limit: bool = True, clock: Callable[[], float] = time.monotonic
    ):
        self.rate_window = rate_window
        self.enforce_rate_limit = enforce_rate_limit
        self.clock = clock
        self.rate_violations = 0
        self.down = False
        self.latency = 0.0  # seconds every answer waits, as a distant host's would (benchmarks set it)
        self._alterations: list[tuple[str, Callable[[Any], Any]]] = []
        self._lock = threading.Lock()
        self._log: list[Request] = []
        self._faults: list[_Fault] = []
        self._served: dict[str, deque[float]] = {}
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.stand_in = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name=f"{self.name}-stand-in", daemon=True
        )
        self._thread.start()

    # -- what tests use

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.root}"

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def inject(
        self,
        fault: int | str,
        *,
        path_contains: str = "",
        times: int = 1,
        retry_after: float | str | None = None,
        delay: float = 1.0,
        body: Any = None,
    ) -> None:
        """Make the next ``times`` requests (whose path contains ``path_contains``) fail in one way."""
        if isinstance(fault, int):
            if not 400 <= fault <= 599:
                raise ValueError(f"an injected status must be 4xx or 5xx, not {fault}")
        elif fault not in NAMED_FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected a status or one of {NAMED_FAULTS}")
        after = (
            None
            if retry_after is None
            else (f"{retry_after:g}" if isinstance(retry_after, float | int) else str(retry_after))
        )
        with self._lock:
            self._faults.append(_Fault(fault, path_contains, times, after, delay, body))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._alterations.clear()

    def alter(self, path_contains: str, change: Callable[[Any], Any]) -> None:
        """Pass the JSON body of every answer whose path contains ``path_contains`` (a copy) through
        ``change`` and send what it returns, until ``clear_faults``."""
        with self._lock:
            self._alterations.append((path_contains, change))

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> JsonStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what subclasses write

    @abstractmethod
    def route(self, method: str, path: str, params: Mapping[str, list[str]], headers: Mapping[str, str]) -> Answer:
        """The answer to one request; raise ``NotFound`` for a path the service does not have."""

    def empty_answer(self, method: str, path: str, params: Mapping[str, list[str]]) -> Answer:
        """The index's own answer when it knows nothing (the "empty" fault)."""
        return Answer(200, {})

    def error_body(self, status: int) -> Any:
        """What this service sends with an error status."""
        return {"error": {429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "Error"), "status": status}

    def client_key(self, params: Mapping[str, list[str]], address: str) -> str:
        """Who the rate limit counts: the client's address unless the service counts by key."""
        return address

    # -- handling

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path_contains in path:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _admit(self, who: str, now: float) -> bool:
        with self._lock:
            served = self._served.setdefault(who, deque())
            while served and served[0] <= now - self.rate_window:
                served.popleft()
            if len(served) + 1 > self.rate_limit:
                self.rate_violations += 1
                if self.enforce_rate_limit:
                    return False
            served.append(now)
            return True

    def _handle(self, handler: _Handler, method: str) -> None:
        arrived = self.clock()
        split = urlsplit(handler.path)
        params = parse_qs(split.query, keep_blank_values=True)
        if method == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            form = handler.rfile.read(length).decode("utf-8", "replace") if length else ""
            for key, values in parse_qs(form, keep_blank_values=True).items():
                params.setdefault(key, []).extend(values)
        path = unquote(split.path)
        path = path[len(self.root) :] if path.startswith(self.root) else "\0" + path  # outside the root: 404
        headers = {k.lower(): v for k, v in handler.headers.items()}

        def log(status: int, fault: str = "") -> None:
            with self._lock:
                self._log.append(Request(arrived, method, path, params, headers, status, fault))

        if not self._admit(self.client_key(params, handler.client_address[0]), arrived):
            log(429, "rate-limit")
            self._send(handler, Answer(429, self.error_body(429), {"Retry-After": "1"}))
            return
        if self.down:
            log(503, "down")
            self._send(handler, Answer(503, self.error_body(503)))
            return
        fault = self._take_fault(path)
        if fault is not None:
            self._faulty(handler, fault, method, path, params, headers, log)
            return
        answer = self._altered(path, self._route(method, path, params, headers))
        if self.latency:
            time.sleep(self.latency)
        log(answer.status)
        self._send(handler, answer)

    def _altered(self, path: str, answer: Answer) -> Answer:
        with self._lock:
            changes = [change for contains, change in self._alterations if contains in path]
        if not changes or isinstance(answer.body, bytes):
            return answer
        body = json.loads(json.dumps(answer.body))
        for change in changes:
            body = change(body)
        return Answer(answer.status, body, answer.headers, answer.content_type)

    def _route(self, method: str, path: str, params: Mapping[str, list[str]], headers: Mapping[str, str]) -> Answer:
        try:
            return self.route(method, path, params, headers)
        except NotFound:
            return Answer(
                404,
                b"<html><head><title>404 Not Found</title></head><body>Not Found</body></html>",
                content_type="text/html",
            )

    def _faulty(
        self,
        handler: _Handler,
        fault: _Fault,
        method: str,
        path: str,
        params: Mapping[str, list[str]],
        headers: Mapping[str, str],
        log: Callable[..., None],
    ) -> None:
        kind = fault.kind
        name = str(kind)
        if isinstance(kind, int):
            log(kind, name)
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            body = fault.body if fault.body is not None else self.error_body(kind)
            self._send(handler, Answer(kind, body, extra))
        elif kind == "html":
            log(200, name)
            page = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body>Back soon.</body></html>"
            self._send(handler, Answer(200, page, content_type="text/html; charset=UTF-8"))
        elif kind == "malformed":
            answer = self._route(method, path, params, headers)
            data = _encode(answer.body)
            log(200, name)
            self._send(handler, Answer(200, data[: max(1, len(data) // 2)]))
        elif kind == "reset":
            log(0, name)
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.close_connection = True
            handler.connection.close()
        elif kind == "slow":
            time.sleep(fault.delay)
            answer = self._route(method, path, params, headers)
            log(answer.status, name)
            self._send(handler, answer)
        elif kind == "drip":
            answer = self._route(method, path, params, headers)
            log(answer.status, name)
            self._send(handler, answer, drip=fault.delay)
        elif kind == "empty":
            answer = self.empty_answer(method, path, params)
            log(answer.status, name)
            self._send(handler, answer)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, answer: Answer, *, drip: float = 0.0) -> None:
        data = _encode(answer.body)
        try:
            handler.send_response(answer.status)
            handler.send_header("Content-Type", answer.content_type)
            handler.send_header("Content-Length", str(len(data)))
            for key, value in answer.headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            if drip:
                for start in range(0, len(data), 16):
                    handler.wfile.write(data[start : start + 16])
                    handler.wfile.flush()
                    time.sleep(drip)
            else:
                handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True


def _encode(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def one(params: Mapping[str, list[str]], name: str, default: str = "") -> str:
    values = params.get(name)
    return values[0] if values else default
