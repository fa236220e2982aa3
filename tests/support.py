"""What the tests and the benchmarks share, without pytest: environments and settings that point il2watch at
the stand-ins, and clients built as il2watch builds them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from il2watch.config import Settings
from il2watch.eutils import Eutils, RateLimiter, from_settings

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY", "all_proxy")


def ncbi_client(base_url: str, *, limiter: RateLimiter | None = None, sleep=None, **settings) -> Eutils:
    """An E-utilities client for ``base_url`` built as il2watch builds it, from Settings (``settings`` override)."""
    values = {"eutils_url": base_url, "ncbi_email": "lab@example.org", "ncbi_backoff": 0.01, **settings}
    options = {"sleep": sleep} if sleep is not None else {}
    return from_settings(Settings(**values), limiter=limiter or RateLimiter(3), **options)


def subprocess_env(**settings: str) -> dict[str, str]:
    """The environment for il2watch run as a subprocess: no proxies, no inherited il2watch/Slack settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in PROXY_VARIABLES and k != "DATABASE_URL" and not k.startswith(("IL2WATCH_", "SLACK_", "NCBI_"))
    }
    env.update(settings)
    return env


WATCHES_TOML = """
[[watch]]
id = "review"
pmid = "35217787"
label = "the review"

[[watch]]
id = "engineered-il2"
label = "engineered IL-2"
query = '{query}'
"""


def write_config(directory, query: str | None = None):
    from tests.data.records import ENGINEERED_IL2_QUERY

    path = directory / "il2watch.toml"
    path.write_text(WATCHES_TOML.format(query=query or ENGINEERED_IL2_QUERY), encoding="utf-8")
    return path


def library_env(database: str) -> dict[str, str]:
    """A PostgreSQL library is handed over as DATABASE_URL, the way platforms attach one; a file as IL2WATCH_DB."""
    return {"DATABASE_URL": database} if database.startswith("postgresql://") else {"IL2WATCH_DB": database}


def settings_env(tmp_path, ncbi_server, slack_server=None, database: str = "", **extra: str) -> dict[str, str]:
    """The settings a test run of il2watch uses: the stand-ins' URLs, a temp library, no waiting.

    ``database`` is the library (the tests' ``database`` fixture): by default a SQLite file in ``tmp_path``.
    """
    env = {
        "IL2WATCH_CONFIG": str(write_config(tmp_path)),
        **library_env(database or str(tmp_path / "library.db")),
        "IL2WATCH_EUTILS_URL": ncbi_server.base_url,
        "NCBI_EMAIL": "lab@example.org",
        # With a key NCBI allows 10 requests a second: tests wait less; the 3-a-second tests drop it.
        "NCBI_API_KEY": "stand-in-key",
        "IL2WATCH_NCBI_BACKOFF": "0.01",
        "IL2WATCH_QUERY_BASELINE_DAYS": "0",
        "IL2WATCH_POST_INTERVAL": "0",
        "IL2WATCH_SLACK_BACKOFF": "0.05",
        "IL2WATCH_JITTER": "0",
        # The other citation indexes are asked only by the tests that run their stand-ins.
        "IL2WATCH_SOURCES": "pubmed",
    }
    if slack_server is not None:
        env.update(
            {
                "SLACK_BOT_TOKEN": slack_server.bot_token,
                "IL2WATCH_SLACK_API_URL": slack_server.base_url,
                "IL2WATCH_CHANNEL": "il2-papers",
            }
        )
    env.update(extra)
    return env


def cpu_seconds_per_call(work: Callable[[Any], object], argument: Any) -> float:
    """CPU time of one ``work(argument)`` (not wall time: other processes on a loaded machine do not count),
    the best of three measurements, each repeating the call until it has taken at least 20 ms."""
    best = float("inf")
    for _ in range(3):
        runs, start = 0, time.process_time()
        while True:
            work(argument)
            runs += 1
            spent = time.process_time() - start
            if spent >= 0.02:
                break
        best = min(best, spent / runs)
    return best
