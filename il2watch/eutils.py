"""The E-utilities client: NCBI's own rules on top of ``il2watch.transport``.

``Bio.Entrez`` builds its URLs from fixed strings, has no timeout and retries 429/5xx without a pause,
so il2watch sends the requests itself (through the one transport every host shares) and leaves only
the parsing to Biopython. NCBI asks for ``tool`` and ``email`` on every request, ``api_key`` when
there is one, at most 3 requests a second (10 with a key), and POST for long id lists.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from il2watch.transport import HOMEPAGE, Host, RateLimiter, Stats, host_from_settings

MAX_GET_URL = 2000  # NCBI asks for POST beyond about this length (and for more than 200 ids)
MAX_GET_IDS = 200


class Eutils:
    """E-utilities at one base URL; safe to share between threads."""

    def __init__(self, host: Host, *, tool: str, email: str, api_key: str):
        self.host = host
        self.tool, self.email, self.api_key = tool, email, api_key

    @property
    def stats(self) -> Stats:
        return self.host.stats

    @property
    def base_url(self) -> str:
        return self.host.base_url

    def call(self, endpoint: str, params: Iterable[tuple[str, str]] | Mapping[str, str]) -> bytes:
        """Send one E-utilities request (``endpoint`` like "esearch") and return the raw answer.

        Adds ``tool``, ``email`` and ``api_key``; goes by POST when the URL would be too long or carries
        more than 200 ids.
        """
        pairs = list(params.items() if isinstance(params, Mapping) else params)
        pairs.append(("tool", self.tool))
        if self.email:
            pairs.append(("email", self.email))
        if self.api_key:
            pairs.append(("api_key", self.api_key))
        path = f"{endpoint}.fcgi"
        ids = sum(len(value.split(",")) for key, value in pairs if key == "id")
        length = len(self.host.base_url) + len(path) + 1 + len(urllib.parse.urlencode(pairs))
        send = self.host.post if ids > MAX_GET_IDS or length > MAX_GET_URL else self.host.get
        return send(path, pairs, what=endpoint).body


def from_settings(
    settings: Any, *, limiter: RateLimiter | None = None, sleep: Callable[[float], None] = time.sleep
) -> Eutils:
    """The client the settings describe: NCBI's base URL, rate (3/s, or 10/s with a key), timeout and retries."""
    host = host_from_settings(
        settings,
        name="NCBI",
        base_url=settings.eutils_url,
        rate=settings.ncbi_rate,
        headers={"User-Agent": f"{settings.ncbi_tool} (+{HOMEPAGE})"},
        timeout=settings.ncbi_timeout,
        attempts=settings.ncbi_attempts,
        backoff=settings.ncbi_backoff,
        hint="check the network, or IL2WATCH_EUTILS_URL",
        limiter=limiter,
        sleep=sleep,
    )
    return Eutils(host, tool=settings.ncbi_tool, email=settings.ncbi_email, api_key=settings.ncbi_api_key)


__all__ = ["Eutils", "RateLimiter", "from_settings"]
