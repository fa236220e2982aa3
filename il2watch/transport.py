"""One HTTP transport for every host il2watch asks: NCBI, the citation sources, the optional summariser.

A ``Host`` is one base URL with its rules: a rate limit shared by every thread of the process, a read
timeout and a total deadline for each answer, a cap on the bytes read of one answer, and retries with
exponential backoff on 429, 5xx, connection resets and timeouts (``Retry-After`` honoured), all the waits
of one request within a budget (``IL2WATCH_RETRY_BUDGET``). What cannot get better by waiting fails at once:
a name that does not resolve, a refused connection, an answer too large or too slow, any other status, and a
``Retry-After`` asking for longer than ``MAX_WAIT`` or than the budget has left (a source whose daily quota
is spent says hours: waiting would hold up every other source's news, so it is asked again next poll).
Every failure is one ``TransportError`` line naming the host, with no secret in it (API keys in parameters,
``user:pass@`` in the base URL).

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
from typing import Any

from il2watch import redact

log = logging.getLogger("il2watch.transport")

HOMEPAGE = "https://pubmed.ncbi.nlm.nih.gov/35217787/"  # named in every User-Agent, so a host knows who asks
MAX_WAIT = 120.0  # the longest wait before one retry: a Retry-After asking more fails the request (Slack: capped)
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5  # redirects followed within one host, all inside the one deadline
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
    again now is pointless), ``status`` (a status not accepted; ``status`` holds it), ``throttled`` (a
    ``Retry-After`` longer than il2watch waits; ``status`` holds the 429 or 5xx), ``timeout``, ``deadline``,
    ``too-large``, ``connection`` or ``tls``.
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
    """What one host was asked, counted under a lock: a poll's threads share a host (PubMed's questions and
    the records lane both ask NCBI), and ``+=`` from two threads can lose a count."""

    requests: int = 0  # HTTP exchanges, retries included
    retries: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def asked(self, path: str) -> None:
        with self._lock:
            self.by_path[path] = self.by_path.get(path, 0) + 1

    def retried(self) -> None:
        with self._lock:
            self.retries += 1

    def exchanged(self, hops: int) -> None:
        with self._lock:
            self.requests += hops + 1


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


# ---------------------------------------------------------------- one exchange, bounded in time and size


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL, without any user or password: what a redirect may not leave."""
    parts = urllib.parse.urlsplit(url)
    hostname = (parts.hostname or "").lower()
    if ":" in hostname:
        hostname = f"[{hostname}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return f"{parts.scheme.lower()}://{hostname}" + (f":{port}" if port else "")


class Exchange:
    """One request and its answer within a deadline and a cap: the connection, redirects within the same
    host, the status line, the headers and the body.

    The read timeout bounds each wait for data; the deadline bounds the whole exchange, however slowly a
    server drips its status line, its headers or its body: a timer shuts the exchange's sockets when it
    passes, and whatever the reader was doing then ends as one ``deadline`` TransportError that says how far
    the answer had come. Redirects (301, 302, 303, 307, 308) are followed up to ``MAX_REDIRECTS`` times, only
    to the same scheme, host and port, so that credentials (Basic authentication, a bearer token, a key in
    the query) never reach another host; a redirect elsewhere is one line naming both hosts. ``read`` keeps
    at most ``max_bytes`` of a body. Used as a context manager; the Host and the Slack client both use it.
    """

    def __init__(
        self,
        *,
        name: str,
        what: str,
        timeout: float,
        deadline: float,
        max_bytes: int,
        limiter: RateLimiter | None = None,
        context: ssl.SSLContext | None = None,
        proxies: Mapping[str, str] | None = None,
    ):
        self.name, self.what = name, what
        self.timeout, self.deadline, self.max_bytes = timeout, deadline, int(max_bytes)
        self.url = ""
        self.hops = 0  # redirects followed
        self.stage = "the connection was still being made"
        self._limiter, self._granted = limiter, 0.0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._expired = self._over = False
        self._timer: threading.Timer | None = None
        handlers: list[urllib.request.BaseHandler] = [
            _HTTPHandler(self),
            _HTTPSHandler(self, context),
            _NoRedirects(),
        ]
        if proxies is not None:
            handlers.insert(0, urllib.request.ProxyHandler(dict(proxies)))
        self._opener = urllib.request.build_opener(*handlers)

    def __enter__(self) -> Exchange:
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._over = True
        if self._timer is not None:
            self._timer.cancel()
        for sock in self._sockets:
            sock.close()
        if self._expired:  # whatever the reader saw (EOF, a reset, a half header) was the deadline's doing
            raise self.too_slow() from None

    def _expire(self) -> None:
        with self._lock:
            if self._over:
                return
            self._expired = True
            for sock in self._sockets:
                _shut(sock)

    def _advance(self, stage: str) -> None:
        """The answer came this far; once the deadline has passed, what it had reached then is what is said."""
        with self._lock:
            if not self._expired:
                self.stage = stage

    def connected(self, sock: socket.socket) -> None:
        """A connection was made for this exchange: the request leaves now; the deadline may shut it."""
        with self._lock:
            self._sockets.append(sock)
            if self._expired:
                _shut(sock)
        self._advance("its status line and headers were still arriving")
        if self._limiter is not None:
            self._limiter.sent(self._granted)

    # ------------------------------------------------------------ the request

    def open(self, request: urllib.request.Request) -> tuple[int, Any]:
        """Send ``request`` and follow redirects within its host: (status, response) of the last answer."""
        for hop in range(MAX_REDIRECTS + 1):
            self.url, self.hops = request.full_url, hop
            if self._limiter is not None:  # a redirect is one more request to the same host
                self._granted, _ = self._limiter.grant()
            if self._timer is None:  # the deadline counts from the moment the request may leave
                self._timer = threading.Timer(self.deadline, self._expire)
                self._timer.daemon = True
                self._timer.start()
            try:
                response = self._opener.open(request, timeout=min(self.timeout, self.deadline))
                status = response.status
            except urllib.error.HTTPError as error:
                response, status = error, error.code
            if status not in REDIRECTS:
                self._advance("its body was still arriving")
                return status, response
            with response:
                request = self._redirected(request, status, response.headers.get("Location"))
            self._advance("the connection was still being made (after a redirect)")
        raise TransportError(
            f"{self.name} redirected {self.what} more than {MAX_REDIRECTS} times (last to "
            f"{_shown_url(self.url)}); set the base URL to where the answer is",
            host=self.name,
            kind="redirect",
        )

    def _redirected(self, request: urllib.request.Request, status: int, location: str | None) -> urllib.request.Request:
        """The request again, to where a redirect points, if it stays on the same host; else one line."""
        if not location or not location.strip():
            raise TransportError(
                f"{self.name} answered HTTP {status} to {self.what} without saying where to (no Location header)",
                host=self.name,
                kind="redirect",
                status=status,
            )
        target = urllib.parse.urlsplit(urllib.parse.urljoin(request.full_url, location.strip()))
        target = target._replace(netloc=target.netloc.rpartition("@")[2], fragment="")  # never a user:pass from outside
        here, there = origin(request.full_url), origin(urllib.parse.urlunsplit(target))
        if here != there:
            raise TransportError(
                f"{self.name} redirected {self.what} from {here} to {there} (HTTP {status}); il2watch follows "
                f"redirects within {here} only, so that its requests and credentials reach no other host: if "
                f"{there} is meant, set the base URL to it",
                host=self.name,
                kind="redirect",
                status=status,
            )
        method = request.get_method()
        if method == "POST" and status in (301, 302, 303):
            raise TransportError(
                f"{self.name} answered the POST of {self.what} with HTTP {status}, pointing to "
                f"{_shown_url(urllib.parse.urlunsplit(target))}; il2watch does not send a POST again as a GET: set "
                f"the base URL to the new address",
                host=self.name,
                kind="redirect",
                status=status,
            )
        return urllib.request.Request(
            urllib.parse.urlunsplit(target), data=request.data, method=method, headers=dict(request.header_items())
        )

    # ------------------------------------------------------------ the answer

    def read(self, response: Any, limit: int | None = None) -> bytes:
        """The body, at most the cap (an error page: its first ``limit`` bytes, all a message needs)."""
        cap = self.max_bytes if limit is None else limit
        length = response.headers.get("Content-Length")
        if limit is None and length and length.isdigit() and int(length) > cap:
            raise self.too_large()
        parts: list[bytes] = []
        size = 0
        while True:
            chunk = response.read1(CHUNK) if hasattr(response, "read1") else response.read(CHUNK)
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            parts.append(chunk)
            if size > cap:
                if limit is not None:
                    return b"".join(parts)[:cap]
                raise self.too_large()

    def too_large(self) -> TransportError:
        return TransportError(
            f"{self.name} answered more than {_mb(self.max_bytes)} to {self.what}; il2watch reads at most that much "
            f"of one answer (IL2WATCH_MAX_ANSWER_MB)",
            host=self.name,
            kind="too-large",
        )

    def too_slow(self) -> TransportError:
        return TransportError(
            f"{self.name} took more than {self.deadline:g} s to answer {self.what}: {self.stage} "
            f"(IL2WATCH_REQUEST_DEADLINE)",
            host=self.name,
            kind="deadline",
        )


def _shut(sock: socket.socket) -> None:
    """End every read and write on ``sock`` now, from any thread (the plain socket's shutdown, also for TLS:
    SSLSocket's own would unwrap it under the reader's feet)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing is waiting on it


def _shown_url(url: str) -> str:
    """A URL as messages show it: secret parameters masked, no user or password."""
    parts = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = urllib.parse.urlencode([(k, redact.MASK if k.lower() in SECRET_PARAMS else v) for k, v in pairs], safe="[]")
    return redact.scrub(urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query=query)))


class _HTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, exchange: Exchange, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._exchange = exchange

    def connect(self) -> None:
        super().connect()
        self._exchange.connected(self.sock)


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, exchange: Exchange, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._exchange = exchange

    def connect(self) -> None:
        super().connect()
        self._exchange.connected(self.sock)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, exchange: Exchange):
        super().__init__()
        self._exchange = exchange

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPConnection, req, exchange=self._exchange)  # type: ignore[arg-type]


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, exchange: Exchange, context: ssl.SSLContext | None):
        super().__init__(context=context)
        self._exchange, self._tls = exchange, context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPSConnection, req, context=self._tls, exchange=self._exchange)  # type: ignore[arg-type]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would follow any redirect anywhere with every header; Exchange decides instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


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
        wait_budget: float,
        headers: Mapping[str, str] | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        hint: str = "",
    ):
        parts = urllib.parse.urlsplit(base_url if base_url.endswith("/") else base_url + "/")
        self.headers: dict[str, str] = dict(headers or {})
        for header, value in self.headers.items():
            if header.lower() == "authorization":  # "Bearer sk-…": the credential is a secret wherever it goes
                redact.remember([value, value.partition(" ")[2]])
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
        self.wait_budget = max(0.0, wait_budget)  # seconds of waiting between retries one request may spend
        self.limiter = limiter or shared_limiter(self.netloc, rate)
        self.hint = hint
        self._sleep = sleep
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
        json_body: Any = None,
        accept: Collection[int] = (),
        what: str = "",
    ) -> Answer:
        """POST ``params`` form-encoded to ``path``, or ``json_body`` as JSON (a chat-completions request)."""
        return self._request("POST", path, params, json_body=json_body, accept=accept, what=what)

    def _request(
        self,
        method: str,
        path: str,
        params: Iterable[tuple[str, str]] | Mapping[str, str],
        *,
        json_body: Any = None,
        accept: Collection[int],
        what: str,
    ) -> Answer:
        pairs = [(str(k), str(v)) for k, v in (params.items() if isinstance(params, Mapping) else params)]
        redact.remember(value for key, value in pairs if key.lower() in SECRET_PARAMS)
        query = urllib.parse.urlencode(pairs)
        headers = {"User-Agent": "il2watch", **self.headers}
        url = self.base_url + path.lstrip("/")
        data: bytes | None = None
        if method == "GET":
            url += "?" + query if query else ""
        elif json_body is not None:
            data, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        else:
            data, headers["Content-Type"] = query.encode("ascii"), "application/x-www-form-urlencoded"
        what = what or path
        last: _Retry | None = None
        waited, spent, attempt = 0.0, "", 0
        for attempt in range(1, self.attempts + 1):
            self.stats.asked(path)
            try:
                return self._exchange(urllib.request.Request(url, data, headers, method=method), accept, what)
            except _Retry as failure:
                last = failure
            if attempt == self.attempts:
                break
            left = self.wait_budget - waited
            if last.wait is not None:
                if last.wait > min(MAX_WAIT, left):
                    raise self._asks_too_long(last, last.wait, waited)
                wait = last.wait
            elif left <= 0 < self.backoff:
                spent = f"; it waited {_seconds(waited)} s between them, all IL2WATCH_RETRY_BUDGET allows"
                break
            else:
                wait = min(self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 4), MAX_WAIT, left)
            waited += wait
            self.stats.retried()
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
        tries = f"after {attempt} attempts " if attempt > 1 else ""
        raise TransportError(
            f"{self.name} {what} failed {tries}({last.problem}){spent}",
            host=self.name,
            kind=last.kind,
            status=last.status,
        )

    def _asks_too_long(self, last: _Retry, seconds: float, waited: float) -> TransportError:
        """A Retry-After longer than il2watch waits: fail now, so that one host holds up no poll."""
        over_budget = (
            f" after {_seconds(waited)} s of waiting for this request (IL2WATCH_RETRY_BUDGET is "
            f"{_seconds(self.wait_budget)} s)"
            if seconds <= MAX_WAIT
            else ""
        )
        return TransportError(
            f"{self.name} asks il2watch to wait {_seconds(seconds)} s ({last.problem}){over_budget}; "
            f"asked again next poll",
            host=self.name,
            kind="throttled",
            status=last.status,
        )

    def _exchange(self, request: urllib.request.Request, accept: Collection[int], what: str) -> Answer:
        """One HTTP exchange: an Answer, a _Retry, or a TransportError for what waiting cannot mend."""
        exchange = Exchange(
            name=self.name,
            what=what,
            timeout=self.timeout,
            deadline=self.deadline,
            max_bytes=self.max_bytes,
            limiter=self.limiter,
        )
        try:
            with exchange:
                status, response = exchange.open(request)
                with response:
                    if status in RETRYABLE_STATUSES and status not in accept:
                        exchange.read(response, limit=4096)
                        wait = retry_after(response.headers.get("Retry-After"))
                        raise _Retry(f"HTTP {status}", wait, "status", status)
                    if not 200 <= status < 300 and status not in accept:
                        body = exchange.read(response, limit=4096)
                        detail = excerpt(body) or str(getattr(response, "reason", "") or "")
                        raise TransportError(
                            f"{self.name} answered HTTP {status} to {what}" + (f": {detail}" if detail else ""),
                            host=self.name,
                            kind="status",
                            status=status,
                        )
                    body = exchange.read(response)
                    return Answer(status, _headers(response.headers), body, _shown_url(exchange.url))
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
            self.stats.exchanged(exchange.hops)

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


def _seconds(value: float) -> str:
    """Seconds as a message shows them: whole from 10 s up (3600), else as given (1.5)."""
    return f"{value:.0f}" if value >= 10 else f"{value:g}"


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
        wait_budget=settings.retry_budget,
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
