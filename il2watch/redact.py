"""Secrets never leave il2watch: one place knows them, and ``scrub`` cleans every message that goes out.

Configured secrets (NCBI, OpenAlex and summariser keys, Slack tokens and signing secret, the password in
a database URL, user and password in any base URL) are remembered when settings load. ``scrub`` removes
them and anything shaped like one (Slack tokens, ``api_key=…`` in a URL, ``"api-key": "…"`` in a JSON
answer, a bearer header, credentials in a URL) from text bound for a log line, a stored row, a terminal
or a Slack message; ``scrub_all`` does the same to every string inside a message's JSON.
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from collections.abc import Iterable
from typing import Any, TextIO

MASK = "[redacted]"
MIN_SECRET = 4  # shorter values would mask ordinary words

_KEY_NAMES = r"api[_-]?key|key|token|access[_-]?token|auth[_-]?token|password|passwd|secret|client[_-]?secret"
# Credentials inside a URL: "scheme://user:pass@" or "scheme://user@"; a path that went through
# pathlib ("postgresql:/user:pass@host") has lost one slash, and is matched too.
_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*:/{1,2})([^/\s:@]*)(?::([^/\s@]*))?@", re.IGNORECASE)

# Shapes of secrets, redacted even when they were never configured here. Group 1 (when present) is kept.
_SHAPES = re.compile(
    r"xox[abposre]-[A-Za-z0-9-]+"
    r"|xapp-[A-Za-z0-9-]+"
    rf"|((?<![\w-])(?:{_KEY_NAMES})=)[^&\s\"']+"
    rf"|([\"'](?:{_KEY_NAMES})[\"']\s*:\s*[\"'])[^\"']*"
    r"|(authorization[\"']?\s*[:=]\s*[\"']?(?:bearer\s+|basic\s+)?)[^\s\"',]+"
    r"|((?-i:Bearer|Basic) )(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{8,}"
    r"|([a-z][a-z0-9+.-]*:/{1,2})[^/\s:@]*:[^/\s@]*@"
    r"|([a-z][a-z0-9+.-]*:/{1,2})[^/\s:@]+@",
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


def url_secrets(text: str) -> list[str]:
    """The users and passwords a URL (or any text holding URLs) carries, as written and decoded."""
    found = []
    for match in _USERINFO.finditer(text or ""):
        for value in match.group(2, 3):
            if value:
                found += [value, urllib.parse.unquote(value)]
    return found


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


def scrub_all(value: Any) -> Any:
    """``value`` (a message: dicts, lists, strings…) with every string in it scrubbed."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: scrub_all(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub_all(item) for item in value)
    return value


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


def snapshot() -> frozenset[str]:
    """For tests: what is remembered now, to ``restore`` after loading made-up settings (a generated
    "secret" such as "mode" would otherwise be masked in every later message of the process)."""
    with _lock:
        return frozenset(_known)


def restore(remembered: frozenset[str]) -> None:
    with _lock:
        _known.clear()
        _known.update(remembered)
