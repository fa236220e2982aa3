"""The HTTP transport to NCBI E-utilities: base URL, timeout, one shared rate limit, retries.

``Bio.Entrez`` builds its URLs from fixed strings, has no timeout and retries 429/5xx without a pause,
so il2watch sends the requests itself and leaves only the parsing to Biopython.
"""

from __future__ import annotations

import http.client
import logging
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from il2watch import redact

log = logging.getLogger("il2watch.eutils")

MAX_GET_URL = 2000  # NCBI asks for POST beyond about this length (and for more than 200 ids)
MAX_GET_IDS = 200
MAX_WAIT = 120.0  # never sleep longer than this for one retry, whatever Retry-After says
RETRYABLE_STATUSES = {429, 500, 502, 503, 504}


class EutilsError(Exception):
    """A request to E-utilities failed for good; the message is one line a person can act on (no secret in it)."""

    def __init__(self, message: str):
        super().__init__(redact.scrub(message))


class RateLimiter:
    """At most ``rate`` request starts in any ``period`` seconds, across every thread that shares it.

    A sliding window rather than a fixed interval lets a short poll send its requests at once, and
    the small margin on the period keeps network jitter from squeezing four arrivals into NCBI's second.
    """

    def __init__(
        self,
        rate: int,
        period: float = 1.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.rate, self.period = rate, period
        self._clock, self._sleep = clock, sleep
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until a request may start; return how long it waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._starts and now - self._starts[0] >= self.period:
                    self._starts.popleft()
                if len(self._starts) < self.rate:
                    self._starts.append(now)
                    return waited
                delay = self.period - (now - self._starts[0])
            self._sleep(delay)
            waited += delay


_shared_limiters: dict[int, RateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(rate: int) -> RateLimiter:
    """The process-wide limiter for ``rate`` requests a second: every client in the process shares it."""
    with _shared_lock:
        if rate not in _shared_limiters:
            _shared_limiters[rate] = RateLimiter(rate)
        return _shared_limiters[rate]


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)


def _retry_after(header: str | None) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date), if it has one."""
    if not header:
        return None
    header = header.strip()
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(header).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class Eutils:
    """A client for one E-utilities base URL; safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        *,
        tool: str = "il2watch",
        email: str = "",
        api_key: str = "",
        timeout: float = 60.0,
        attempts: int = 5,
        backoff: float = 2.0,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.tool, self.email, self.api_key = tool, email, api_key
        self.timeout, self.attempts, self.backoff = timeout, max(1, attempts), backoff
        self.limiter = limiter or shared_limiter(10 if api_key else 3)
        self._sleep = sleep
        self.stats = Stats()

    def call(self, endpoint: str, params: Iterable[tuple[str, str]] | dict[str, str]) -> bytes:
        """Send one E-utilities request (``endpoint`` like "esearch") and return the raw answer.

        Adds ``tool``, ``email`` and ``api_key``; goes by POST when the URL would be too long or carries
        more than 200 ids; retries 429, 5xx and connection errors with backoff, honouring Retry-After.
        """
        pairs = list(params.items() if isinstance(params, dict) else params)
        pairs.append(("tool", self.tool))
        if self.email:
            pairs.append(("email", self.email))
        if self.api_key:
            pairs.append(("api_key", self.api_key))
        query = urllib.parse.urlencode(pairs)
        url = f"{self.base_url}{endpoint}.fcgi"
        ids = sum(len(value.split(",")) for key, value in pairs if key == "id")
        use_post = ids > MAX_GET_IDS or len(url) + 1 + len(query) > MAX_GET_URL
        last_problem = ""
        for attempt in range(1, self.attempts + 1):
            self.limiter.acquire()
            self.stats.requests += 1
            self.stats.by_endpoint[endpoint] = self.stats.by_endpoint.get(endpoint, 0) + 1
            if use_post:
                request = urllib.request.Request(
                    url,
                    data=query.encode("ascii"),
                    method="POST",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
            else:
                request = urllib.request.Request(f"{url}?{query}", method="GET")
            request.add_header("User-Agent", f"{self.tool} (+https://pubmed.ncbi.nlm.nih.gov/35217787/)")
            wait: float | None = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return response.read()
            except urllib.error.HTTPError as error:
                status = error.code
                body = error.read(300).decode("utf-8", "replace").strip().replace("\n", " ")
                if status not in RETRYABLE_STATUSES:
                    raise EutilsError(
                        f"NCBI answered HTTP {status} to {endpoint}: {body[:160] or error.reason}"
                    ) from None
                last_problem = f"HTTP {status}"
                wait = _retry_after(error.headers.get("Retry-After"))
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
                reason = getattr(error, "reason", error)
                last_problem = f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
            if attempt == self.attempts:
                break
            if wait is None:
                wait = self.backoff * (2 ** (attempt - 1)) * (1 + random.random() * 0.25)
            wait = min(wait, MAX_WAIT)
            self.stats.retries += 1
            log.warning(
                "NCBI %s failed (%s); retry %d of %d in %.1fs", endpoint, last_problem, attempt, self.attempts - 1, wait
            )
            self._sleep(wait)
        raise EutilsError(
            f"NCBI {endpoint} failed after {self.attempts} attempts ({last_problem}); is {self.base_url} reachable?"
        )


def batches(items: Sequence[str], size: int) -> list[list[str]]:
    """Split ``items`` into lists of at most ``size``, in order."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
