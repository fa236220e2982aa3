"""One HTTP transport for every host il2watch asks: NCBI, the citation sources, the optional summariser.

A ``Host`` is one base URL with its rules: a rate limit shared by every thread of the process, a read
timeout and a total deadline for each answer, a cap on the bytes read of one answer, and retries with
exponential backoff on 429, 5xx, connection resets and timeouts (``Retry-After`` honoured, capped at
``MAX_WAIT``). What cannot get better by waiting fails at once: a name that does not resolve, a refused
connection, an answer too large or too slow, any other status. Every failure is one ``TransportError``
line naming the host, with no secret in it (API keys in parameters, ``user:pass@`` in the base URL).

This is the only retry loop for HTTP in il2watch; the E-utilities client (``il2watch.eutils``) and the
sources are thin layers over it.
"""

from __future__ import annotations

import base64
import errno
import http.client
import json
import logging
import math
import os
import random
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any

from il2watch import redact

log = logging.getLogger("il2watch.transport")

HOMEPAGE = "https://pubmed.ncbi.nlm.nih.gov/35217787/"  # named in every User-Agent, so a host knows who asks
MAX_WAIT = 120.0  # never sleep longer than this before a retry, whatever Retry-After says (Slack uses it too)
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
MARGIN = 1.05  # the limiter's window is this much longer than a second, so network jitter cannot bunch requests
SECRET_PARAMS = frozenset({"api_key", "apikey", "api-key", "key", "token", "access_token"})
EXCERPT = 160  # characters of an error body quoted in a message
CHUNK = 64 * 1024
PROXY_VARIABLES = {
    "https": ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"),
    "http": ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"),
}


class TransportError(Exception):
    """A request failed for good. The message is one scrubbed line that names the host.

    ``kind`` says how: ``unreachable`` (the name does not resolve, the connection is refused: asking
    again now is pointless), ``status`` (a status not accepted; ``status`` holds it), ``timeout``,
    ``deadline``, ``too-large``, ``connection`` or ``tls``.
    """

    def __init__(self, message: str, *, host: str = "", kind: str = "failed", status: int | None = None):
        super().__init__(redact.scrub(" ".join(message.split())))
        self.host, self.kind, self.status = host, kind, status


@dataclass
class Answer:
    """What a host answered: status, headers, the whole body (at most the cap), and the URL without secrets."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    def text(self) -> str:
        charset = "utf-8"
        match = re.search(r"charset=([\w.-]+)", self.headers.get("Content-Type", ""), re.IGNORECASE)
        if match:
            charset = match.group(1)
        try:
            return self.body.decode(charset, "replace")
        except LookupError:
            return self.body.decode("utf-8", "replace")

    def json(self, host: str = "") -> Any:
        """The body as JSON; a body that is not JSON is a TransportError saying so."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            where = f"{host} " if host else ""
            raise TransportError(
                f"{where}answered something that is not JSON ({excerpt(self.body)}) from {self.url}",
                host=host,
                kind="content",
                status=self.status,
            ) from None


# ---------------------------------------------------------------- the rate limit


class RateLimiter:
    """At most ``count`` request starts in any ``period`` seconds, across every thread that shares it.

    A sliding window rather than a fixed interval lets a short poll send its requests at once; the
    period is a little longer than the host's own window (``MARGIN``) so that network jitter never
    lands one request too many inside the host's second.
    """

    def __init__(
        self,
        count: int,
        period: float = MARGIN,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.count, self.period = max(1, int(count)), period
        self._clock, self._sleep = clock, sleep
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()

    @classmethod
    def per_second(cls, rate: float, **kwargs: Any) -> RateLimiter:
        """``rate`` requests a second (0.5 is one every two seconds), with the margin on the window."""
        count = max(1, math.floor(rate))
        return cls(count, count / rate * MARGIN, **kwargs)

    @property
    def rate(self) -> float:
        return self.count / self.period * MARGIN

    def sent(self, granted: float) -> None:
        """The request granted at ``granted`` only left now (a slow connect, a busy machine): count it from
        now, so that the host never sees more than ``count`` arrivals in its window however late one left."""
        with self._lock:
            now = self._clock()
            if now > granted and granted in self._starts:
                self._starts.remove(granted)
                self._starts.append(now)
                self._starts = deque(sorted(self._starts))

    def acquire(self) -> float:
        """Block until a request may start; return how long it waited."""
        return self.grant()[1]

    def grant(self) -> tuple[float, float]:
        """Block until a request may start; (the moment it was let through, how long it waited)."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._starts and now - self._starts[0] >= self.period - 1e-9:  # float sums fall just short
                    self._starts.popleft()
                if len(self._starts) < self.count:
                    self._starts.append(now)
                    return now, waited
                delay = self.period - (now - self._starts[0])
            self._sleep(delay)
            waited += delay


_limiters: dict[str, RateLimiter] = {}
_limiters_lock = threading.Lock()


def shared_limiter(key: str, rate: float) -> RateLimiter:
    """The process's limiter for one host (``key`` is its netloc): every client of that host shares it.

    Asked again with another rate (the settings changed), the host gets a limiter at the new rate.
    """
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None or not math.isclose(limiter.rate, rate):
            limiter = _limiters[key] = RateLimiter.per_second(rate)
        return limiter


# ---------------------------------------------------------------- small pure helpers


@dataclass
class Stats:
    requests: int = 0  # HTTP exchanges, retries included
    retries: int = 0
    by_path: dict[str, int] = field(default_factory=dict)


def retry_after(header: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number or an HTTP date); None when it is missing or garbage."""
    if not header:
        return None
    text = header.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(text).timestamp() - now()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def excerpt(body: bytes, limit: int = EXCERPT) -> str:
    """A short, scrubbed, one-line taste of an answer: an HTML page's title, else its first characters."""
    text = body[:4096].decode("utf-8", "replace")
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title:
        text = title.group(1)
    elif re.match(r"\s*<(!doctype|html)", text, re.IGNORECASE):
        text = re.sub(r"<[^>]*>", " ", text)
    text = " ".join(text.split())
    text = redact.scrub(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mb(size: int) -> str:
    return f"{size / 1_000_000:g} MB"


def _proxy_note(scheme: str) -> str:
    set_ = [name for name in PROXY_VARIABLES.get(scheme, ()) if os.environ.get(name)]
    if not set_:
        return ""
    shown = {name: redact.scrub(os.environ[name]) for name in set_}
    listed = ", ".join(f"{name}={value}" for name, value in shown.items())
    return f"; the proxy setting {listed} is in effect: check it too"


# ---------------------------------------------------------------- connections whose reads the deadline bounds


class _Opened(list[socket.socket]):
    """The sockets one exchange opened (so the deadline can shorten their timeouts), and a hook for the
    moment the connection is made: the request leaves right after it."""

    def __init__(self, on_connect: Callable[[], None]):
        super().__init__()
        self.on_connect = on_connect


class _HTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, opened: _Opened, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._opened = opened

    def connect(self) -> None:
        super().connect()
        self._opened.append(self.sock)
        self._opened.on_connect()


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, opened: _Opened, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._opened = opened

    def connect(self) -> None:
        super().connect()
        self._opened.append(self.sock)
        self._opened.on_connect()


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, opened: _Opened):
        super().__init__()
        self._opened = opened

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPConnection, req, opened=self._opened)  # type: ignore[arg-type]


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, opened: _Opened):
        super().__init__()
        self._opened = opened

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        context = self._context  # type: ignore[attr-defined]
        return self.do_open(_HTTPSConnection, req, context=context, opened=self._opened)  # type: ignore[arg-type]


class _Retry(Exception):
    """One attempt failed in a way that waiting may mend; ``problem`` says how."""

    def __init__(self, problem: str, wait: float | None = None, kind: str = "failed", status: int | None = None):
        super().__init__(problem)
        self.problem, self.wait, self.kind, self.status = problem, wait, kind, status


# ---------------------------------------------------------------- the host


class Host:
    """One base URL and how to ask it; safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        rate: float,
        timeout: float,
        deadline: float,
        max_bytes: int,
        attempts: int,
        backoff: float,
        headers: Mapping[str, str] | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        hint: str = "",
    ):
        parts = urllib.parse.urlsplit(base_url if base_url.endswith("/") else base_url + "/")
        self.headers: dict[str, str] = dict(headers or {})
        if parts.username or parts.password:
            user = urllib.parse.unquote(parts.username or "")
            password = urllib.parse.unquote(parts.password or "")
            redact.remember([user, password, *redact.url_secrets(base_url)])
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            self.headers.setdefault("Authorization", f"Basic {token}")
            parts = parts._replace(netloc=(parts.hostname or "") + (f":{parts.port}" if parts.port else ""))
        self.base_url = urllib.parse.urlunsplit(parts)  # never holds user:pass
        self.netloc, self.scheme = parts.netloc, parts.scheme
        self.name, self.rate = name, rate
        self.timeout, self.deadline, self.max_bytes = timeout, deadline, int(max_bytes)
        self.attempts, self.backoff = max(1, int(attempts)), backoff
        self.limiter = limiter or shared_limiter(self.netloc, rate)
        self.hint = hint
        self._sleep, self._clock = sleep, clock
        self.stats = Stats()

    # ------------------------------------------------------------ requests

    def get(
        self,
        path: str,
        params: Iterable[tuple[str, str]] | Mapping[str, str] = (),
        *,
        accept: Collection[int] = (),
        what: str = "",
    ) -> Answer:
        """GET ``path`` (relative to the base URL) with ``params`` as the query string."""
        return self._request("GET", path, params, accept=accept, what=what)

    def post(
        self,
        path: str,
        params: Iterable[tuple[str, str]] | Mapping[str, str] = (),
        *,
        accept: Collection[int] = (),
        what: str = "",
    ) -> Answer:
        """POST ``params`` form-encoded to ``path``."""
        return self._request("POST", path, params, accept=accept, what=what)

    def _request(
        self,
        method: str,
        path: str,
        params: Iterable[tuple[str, str]] | Mapping[str, str],
        *,
        accept: Collection[int],
        what: str,
    ) -> Answer:
        pairs = [(str(k), str(v)) for k, v in (params.items() if isinstance(params, Mapping) else params)]
        redact.remember(value for key, value in pairs if key.lower() in SECRET_PARAMS)
        query = urllib.parse.urlencode(pairs)
        url = self.base_url + path.lstrip("/")
        shown = url + ("?" + self._shown_query(pairs) if pairs and method == "GET" else "")
        what = what or path
        last: _Retry | None = None
        for attempt in range(1, self.attempts + 1):
            granted, _ = self.limiter.grant()
            self.stats.requests += 1
            self.stats.by_path[path] = self.stats.by_path.get(path, 0) + 1
            try:
                return self._exchange(method, url, query, shown, accept, what, partial(self.limiter.sent, granted))
            except _Retry as failure:
                last = failure
            if attempt == self.attempts:
                break
            wait = last.wait if last.wait is not None else self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 4)
            wait = min(wait, MAX_WAIT)
            self.stats.retries += 1
            log.warning(
                "%s %s failed (%s); retry %d of %d in %.1fs",
                self.name,
                what,
                last.problem,
                attempt,
                self.attempts - 1,
                wait,
            )
            self._sleep(wait)
        assert last is not None
        tries = f"after {self.attempts} attempts " if self.attempts > 1 else ""
        raise TransportError(
            f"{self.name} {what} failed {tries}({last.problem})", host=self.name, kind=last.kind, status=last.status
        )

    def _shown_query(self, pairs: list[tuple[str, str]]) -> str:
        return urllib.parse.urlencode(
            [(k, redact.MASK if k.lower() in SECRET_PARAMS else v) for k, v in pairs], safe="[]"
        )

    def _exchange(
        self,
        method: str,
        url: str,
        query: str,
        shown: str,
        accept: Collection[int],
        what: str,
        on_connect: Callable[[], None],
    ) -> Answer:
        """One HTTP exchange: an Answer, a _Retry, or a TransportError for what waiting cannot mend."""
        headers = {"User-Agent": "il2watch", **self.headers}
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            request = urllib.request.Request(url, data=query.encode("ascii"), method="POST", headers=headers)
        else:
            request = urllib.request.Request(url + ("?" + query if query else ""), method="GET", headers=headers)
        opened = _Opened(on_connect)
        opener = urllib.request.build_opener(_HTTPHandler(opened), _HTTPSHandler(opened))
        started = self._clock()
        try:
            try:
                response = opener.open(request, timeout=min(self.timeout, self.deadline))
                status = response.status
            except urllib.error.HTTPError as error:
                response, status = error, error.code
            with response:
                if status in RETRYABLE_STATUSES and status not in accept:
                    self._read(response, opened, started, what, limit=4096)
                    raise _Retry(f"HTTP {status}", retry_after(response.headers.get("Retry-After")), "status", status)
                if not 200 <= status < 300 and status not in accept:
                    body = self._read(response, opened, started, what, limit=4096)
                    detail = excerpt(body) or str(getattr(response, "reason", "") or "")
                    raise TransportError(
                        f"{self.name} answered HTTP {status} to {what}" + (f": {detail}" if detail else ""),
                        host=self.name,
                        kind="status",
                        status=status,
                    )
                body = self._read(response, opened, started, what)
                return Answer(status, _headers(response.headers), body, redact.scrub(shown))
        except urllib.error.URLError as error:
            raise self._connection_failure(error.reason, what) from None
        except TimeoutError:
            raise _Retry(f"no answer for {self.timeout:g} s: read timeout", kind="timeout") from None
        except (ConnectionError, http.client.HTTPException) as error:
            raise _Retry(
                f"connection reset or closed without a whole answer: {_describe(error)}", kind="connection"
            ) from None
        except ssl.SSLError as error:
            raise TransportError(
                f"{self.name} at {self.netloc}: the TLS connection failed ({error.reason or error})",
                host=self.name,
                kind="tls",
            ) from None
        finally:
            for sock in opened:
                sock.close()

    def _read(
        self,
        response: Any,
        opened: list[socket.socket],
        started: float,
        what: str,
        limit: int | None = None,
    ) -> bytes:
        """The body, read in pieces so that the deadline bounds every wait and the cap every byte."""
        cap = self.max_bytes if limit is None else limit
        length = response.headers.get("Content-Length")
        if limit is None and length and length.isdigit() and int(length) > cap:
            raise self._too_large(what)
        parts: list[bytes] = []
        size = 0
        while True:
            remaining = self.deadline - (self._clock() - started)
            if remaining <= 0:
                raise self._too_slow(what)
            for sock in opened:
                sock.settimeout(min(self.timeout, remaining))
            try:
                chunk = response.read1(CHUNK) if hasattr(response, "read1") else response.read(CHUNK)
            except TimeoutError:
                if self._clock() - started >= self.deadline:
                    raise self._too_slow(what) from None
                raise
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            if size > cap:
                if limit is not None:  # an error page: its start is all a message needs
                    parts.append(chunk)
                    return b"".join(parts)[:cap]
                raise self._too_large(what)
            parts.append(chunk)

    def _too_large(self, what: str) -> TransportError:
        return TransportError(
            f"{self.name} answered more than {_mb(self.max_bytes)} to {what}; il2watch reads at most that much of "
            f"one answer (IL2WATCH_MAX_ANSWER_MB)",
            host=self.name,
            kind="too-large",
        )

    def _too_slow(self, what: str) -> TransportError:
        return TransportError(
            f"{self.name} took more than {self.deadline:g} s to answer {what} (the answer arrived too slowly; "
            f"IL2WATCH_REQUEST_DEADLINE)",
            host=self.name,
            kind="deadline",
        )

    def _connection_failure(self, reason: Any, what: str) -> Exception:
        """What a failed connection means: unreachable (fail at once), a timeout (retry), or a reset (retry)."""
        proxy = _proxy_note(self.scheme)
        hint = f"; {self.hint}" if self.hint else ""
        if isinstance(reason, socket.gaierror):
            return TransportError(
                f"{self.name} cannot be reached: the name {self.netloc.rsplit(':', 1)[0]} does not resolve "
                f"(DNS){hint}{proxy}",
                host=self.name,
                kind="unreachable",
            )
        if isinstance(reason, ConnectionRefusedError) or (
            isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
        ):
            refused = isinstance(reason, ConnectionRefusedError)
            how = "refused the connection" if refused else "is out of the network's reach"
            return TransportError(
                f"{self.name} cannot be reached: {self.netloc} {how}{hint}{proxy}", host=self.name, kind="unreachable"
            )
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return _Retry(f"no connection within {self.timeout:g} s: connect timeout", kind="timeout")
        if isinstance(reason, ssl.SSLError):
            return TransportError(
                f"{self.name} at {self.netloc}: the TLS connection failed ({getattr(reason, 'reason', '') or reason})",
                host=self.name,
                kind="tls",
            )
        if isinstance(reason, (ConnectionError, http.client.HTTPException, OSError)):
            return _Retry(f"connection reset or closed without a whole answer: {_describe(reason)}", kind="connection")
        return TransportError(f"{self.name} {what} failed: {reason}", host=self.name)


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _headers(message: Message | Mapping[str, str]) -> dict[str, str]:
    return {str(k): str(v) for k, v in message.items()}


def host_from_settings(
    settings: Any,
    *,
    name: str,
    base_url: str,
    rate: float,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    attempts: int | None = None,
    backoff: float | None = None,
    hint: str = "",
    limiter: RateLimiter | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Host:
    """A Host with the rules the settings give every host (``network.*``); NCBI passes its own three."""
    return Host(
        base_url,
        name=name,
        rate=rate,
        timeout=settings.http_timeout if timeout is None else timeout,
        deadline=settings.request_deadline,
        max_bytes=int(settings.max_answer_mb * 1_000_000),
        attempts=settings.http_attempts if attempts is None else attempts,
        backoff=settings.http_backoff if backoff is None else backoff,
        headers=headers,
        limiter=limiter,
        sleep=sleep,
        hint=hint,
    )


__all__ = [
    "MAX_WAIT",
    "Answer",
    "Host",
    "RateLimiter",
    "Stats",
    "TransportError",
    "excerpt",
    "host_from_settings",
    "retry_after",
    "shared_limiter",
]
