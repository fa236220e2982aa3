"""What the benchmarks share: the checkout on sys.path, settings pointed at the stand-ins, machine facts.

Every benchmark runs il2watch's real code against the stand-ins in tests/stand_ins over 127.0.0.1, with
real SQLite files in a temporary folder; nothing here replaces a collaborator.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from tests.support import PROXY_VARIABLES, write_config  # noqa: E402  (after the sys.path line above)
from tests.support import subprocess_env as _test_subprocess_env  # noqa: E402


def clear_proxies() -> None:
    """slack_sdk and urllib read proxy variables; the stand-ins are on 127.0.0.1 and must be reached directly."""
    for name in PROXY_VARIABLES:
        os.environ.pop(name, None)


# ---------------------------------------------------------------- the machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_lines() -> list[str]:
    """uname -a, CPU model, cores, Python: what a figure needs beside it to mean anything."""
    u = os.uname()
    return [
        f"uname -a: {u.sysname} {u.nodename} {u.release} {u.version} {u.machine}",
        f"CPU: {cpu_model()}, {os.cpu_count()} core(s)",
        f"Python: {platform.python_version()} ({sys.executable})",
        f"date: {datetime.now(UTC).isoformat(timespec='seconds')}",
    ]


def header(title: str) -> None:
    print(f"== {title}")
    for line in machine_lines():
        print(f"   {line}")


# ---------------------------------------------------------------- settings


def il2watch_env(
    directory: Path, eutils_url: str, *, slack_api_url: str = "", bot_token: str = "", **extra: str
) -> dict[str, str]:
    """Settings for a benchmark run: the stand-ins' URLs, a library in ``directory``, NCBI's 3/s limit (no key)."""
    env = {
        "IL2WATCH_CONFIG": str(write_config(directory)),
        "IL2WATCH_DB": str(directory / "library.db"),
        "IL2WATCH_EUTILS_URL": eutils_url,
        "NCBI_EMAIL": "lab@example.org",
        "IL2WATCH_QUERY_BASELINE_DAYS": "0",
        "IL2WATCH_JITTER": "0",
    }
    if slack_api_url:
        env.update(
            {"SLACK_BOT_TOKEN": bot_token, "IL2WATCH_SLACK_API_URL": slack_api_url, "IL2WATCH_CHANNEL": "il2-papers"}
        )
    env.update(extra)
    return env


def load(directory: Path, env: dict[str, str]):
    from il2watch.config import load_settings

    return load_settings(env, directory)


def subprocess_env(settings_env: dict[str, str]) -> dict[str, str]:
    """The environment of an il2watch subprocess: no proxies, no il2watch/Slack/NCBI settings but these."""
    return _test_subprocess_env(PYTHONPATH=str(ROOT), **settings_env)


# ---------------------------------------------------------------- statistics


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# ---------------------------------------------------------------- the E-utilities stand-in in its own process


@dataclass(frozen=True)
class Served:
    """What the stand-in saw, sent back from its process: its request log and the requests over the limit."""

    requests: list[Any]  # tests.stand_ins.eutils.LoggedRequest
    rate_violations: int


def _serve(conn: Connection, build: Callable[..., Any], args: tuple) -> None:
    from tests.stand_ins.eutils import EutilsStandIn

    world = build(*args)
    with EutilsStandIn(world) as server:
        conn.send(server.base_url)
        while True:
            command, payload = conn.recv()
            if command == "world":  # call a method of the world: ("generate_citing", args)
                name, call_args = payload
                conn.send(getattr(world, name)(*call_args))
            elif command == "log":
                conn.send(Served(server.requests, server.rate_violations))
            elif command == "clear":
                server.clear_requests()
                server.rate_violations = 0
                conn.send(None)
            elif command == "stop":
                conn.send(Served(server.requests, server.rate_violations))
                return


class StandInProcess:
    """The E-utilities stand-in serving ``build(*args)`` from a separate process.

    In the benchmark's own process the server's XML writing would compete for the GIL with il2watch's
    parsing, which NCBI's servers never do; in a process of its own it only competes for a core.
    ``build`` must be a module-level function (it is sent to a spawned process).
    """

    def __init__(self, build: Callable[..., Any], *args: Any):
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, build, args), daemon=True)
        self._process.start()
        self.base_url: str = self._conn.recv()

    def world(self, method: str, *args: Any) -> Any:
        self._conn.send(("world", (method, args)))
        return self._conn.recv()

    def log(self) -> Served:
        self._conn.send(("log", None))
        return self._conn.recv()

    def clear(self) -> None:
        self._conn.send(("clear", None))
        self._conn.recv()

    def stop(self) -> Served:
        self._conn.send(("stop", None))
        served = self._conn.recv()
        self._process.join(timeout=10)
        return served

    def __enter__(self) -> StandInProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process.is_alive():
            try:
                self.stop()
            except (EOFError, OSError):
                self._process.kill()


def review_world():
    """The test world of tests/data/records.py: the review, its citing and similar papers, the IL-2 query."""
    from tests.data.records import build_world

    return build_world()


def review_world_citing(n: int, start_pmid: int, references: int = 0):
    """The test world with ``n`` more synthetic papers citing the review, all entered on the world's today.

    With ``references``, each new paper also cites that many others, so its EFetch record carries a
    reference list the size of a modern paper's (the synthetic records are otherwise about 2.5 KB).
    """
    from tests.data.records import REVIEW_PMID, build_world

    world = build_world()
    known = world.pmids()
    for pmid in world.generate_citing(REVIEW_PMID, n, start_pmid=start_pmid):
        for k in range(references):
            world.cite(pmid, known[k] if k < len(known) else str(30_000_000 + k))
    return world
