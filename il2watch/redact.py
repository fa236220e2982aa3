"""Secrets never leave il2watch: one place knows them, and ``scrub`` cleans every message that goes out.

Configured secrets (NCBI, OpenAlex and summariser keys, Slack tokens and signing secret, the password in
``DATABASE_URL``, user and password in any base URL) are remembered when settings load. ``scrub`` removes
them and anything shaped like one (Slack tokens, ``api_key=…`` in a URL, a bearer header, credentials in
a URL) from text bound for a log line, a stored row, a terminal or a Slack message.
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from collections.abc import Iterable
from typing import Any, TextIO

MASK = "[redacted]"
MIN_SECRET = 4  # shorter values would mask ordinary words

# Shapes of secrets, redacted even when they were never configured here. Group 1 (when present) is kept.
_SHAPES = re.compile(
    r"xox[abposre]-[A-Za-z0-9-]+"
    r"|xapp-[A-Za-z0-9-]+"
    r"|((?<![\w-])(?:api_key|apikey|api-key|key|token|access_token|password|secret)=)[^&\s\"']+"
    r"|(\"(?:api_key|apikey|token|password|secret)\"\s*:\s*\")[^\"]*"
    r"|((?:Bearer|Basic) )[A-Za-z0-9._~+/=-]+"
    r"|(://)[^/\s:@]*:[^/\s@]*@"
    r"|(://)[^/\s:@]+@",
    re.IGNORECASE,
)

_known: set[str] = set()
_lock = threading.Lock()


def remember(secrets: Iterable[str]) -> None:
    """Add values to what ``scrub`` removes (empty and very short values are ignored)."""
    with _lock:
        for secret in secrets:
            secret = (secret or "").strip()
            if len(secret) >= MIN_SECRET:
                _known.add(secret)
                _known.add(urllib.parse.quote(secret, safe=""))  # as it appears inside a URL


def url_secrets(url: str) -> list[str]:
    """The user and password a URL carries (``https://user:pass@host/``), if any."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError:
        return []
    found = [parts.username or "", parts.password or ""]
    return [urllib.parse.unquote(value) for value in found if value] + [value for value in found if value]


def scrub(text: str) -> str:
    """``text`` with every known secret and anything shaped like a secret replaced by [redacted]."""
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return _SHAPES.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    kept = next((group for group in match.groups() if group), "")
    return kept + MASK + ("@" if match.group(0).endswith("@") else "")


class ScrubbedStream:
    """A text stream that scrubs what is written to it: every print of the command line goes through here."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(scrub(text))

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding…
        return getattr(self._stream, name)


def forget_all() -> None:
    """For tests: start again with nothing remembered."""
    with _lock:
        _known.clear()
