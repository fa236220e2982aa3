"""Figure 4: `/il2 search`, `/il2 paper`, `/il2 recent` with 100,000 papers in the library.

    python benchmarks/commands_latency.py
    python benchmarks/commands_latency.py --papers 20000 --commands 100
    python benchmarks/commands_latency.py --database postgresql://postgres@127.0.0.1:54329/postgres

A real SQLite library (or, with --database, a new PostgreSQL database created on that server and dropped
afterwards) is filled with 100,000 invented papers (benchmarks/synthetic_library.py) through
`Library.save_papers` and `save_reasons`, in one transaction. Then:

- full-text search: `Library.search` called directly, a few hundred times over queries from very
  common ("IL-2", most of the library) to rare (an author's surname) and absent;
- ack latency: the Bolt app il2watch runs (`slack_app.build_app`) connected over Socket Mode to the
  Socket Mode stand-in, its Web API client pointed at the Slack stand-in. Each slash command is sent
  as an envelope and the stand-in times it from sending to the ack arriving on the socket; il2watch
  puts its whole reply in the ack for these three commands, so that is the time to the answer.
  Commands go one at a time.

Aims: ack p99 under 100 ms; full-text search p99 under 20 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import tempfile
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import harness
import synthetic_library

SEARCHES = (
    "IL-2",
    "interleukin-2",
    "regulatory T cells",
    "low-dose IL-2 lupus",
    '"low-dose IL-2"[tiab] AND (lupus OR SLE)',
    "nemvaleukin",
    "mutein OR variant",
    "melanoma",
    "Treg expansion type 1 diabetes",
    "graft-versus-host disease",
    "CD25",
    "pharmacokinetics",
    "immun*",
    "IL-15 superagonist NK cells",
    "capillary leak",
    "Front Immunol",
    "STAT5 phosphorylation",
    "xyzzy",
    "efavaleukin alfa ulcerative colitis",
    "half-life PEG",
)
RECENT = ("", "20", "7d", "50", "30d", "200")


def search_figures(
    db_path: Path | str, queries: list[str], rounds: int
) -> tuple[list[float], dict[str, list[float]], dict[str, int]]:
    from il2watch.library import Library

    times: list[float] = []
    by_query: dict[str, list[float]] = defaultdict(list)
    matches: dict[str, int] = {}
    with Library(db_path) as library:
        for query in queries:  # warm the page cache once, as a running worker's would be
            matches[query] = library.search(query)[1]
        for _ in range(rounds):
            for query in queries:
                started = time.perf_counter()
                library.search(query, limit=10)
                elapsed = time.perf_counter() - started
                times.append(elapsed)
                by_query[query].append(elapsed)
    return times, by_query, matches


def ack_figures(db_path: Path | str, directory: Path, texts: dict[str, list[str]]) -> dict[str, list[float]]:
    from il2watch.slack_app import build_app, start_socket_mode
    from il2watch.slack_client import make_client
    from tests.data.records import build_world
    from tests.stand_ins.eutils import EutilsStandIn
    from tests.stand_ins.slack_api import DEFAULT_APP_TOKEN, SlackStandIn
    from tests.stand_ins.socket_mode import SocketModeStandIn, slash_command_payload

    seconds: dict[str, list[float]] = defaultdict(list)
    with (
        SocketModeStandIn() as socket_mode,
        SlackStandIn(socket_mode_url=socket_mode.url) as slack,
        EutilsStandIn(build_world()) as ncbi,
    ):
        env = harness.il2watch_env(
            directory,
            ncbi.base_url,
            slack_api_url=slack.base_url,
            bot_token=slack.bot_token,
            SLACK_APP_TOKEN=DEFAULT_APP_TOKEN,
            IL2WATCH_DB=str(db_path),
            IL2WATCH_CHANNEL="C0GENERAL",
        )
        settings = harness.load(directory, env)
        app = build_app(settings, client=make_client(settings))
        handler = start_socket_mode(app, settings)
        try:
            socket_mode.wait_for_connections(1)
            for name, commands in texts.items():
                for text in commands:
                    url = slack.new_response_url(channel="C0GENERAL", user="UREADER1")
                    envelope = socket_mode.send_envelope(
                        "slash_commands",
                        slash_command_payload(
                            "/il2", text, user_id="UREADER1", channel_id="C0GENERAL", response_url=url
                        ),
                    )
                    ack = socket_mode.wait_for_ack(envelope, timeout=3.0)
                    if not (ack.payload or {}).get("blocks"):
                        raise SystemExit(f"/il2 {text} was acknowledged without an answer: {ack.message}")
                    seconds[name].append(ack.seconds)
        finally:
            socket_mode.drop_connections()
            handler.close()
    return seconds


@contextlib.contextmanager
def library_location(server: str, directory: str) -> Iterator[str]:
    """A SQLite file in ``directory``, or a new database on the PostgreSQL ``server``, dropped afterwards."""
    if not server:
        yield str(Path(directory) / "library.db")
        return
    import psycopg

    from il2watch.store.postgres import close_pools

    name = f"il2watch_bench_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"drop database if exists {name}")
        admin.execute(f"create database {name}")
    parts = urllib.parse.urlsplit(server)
    try:
        yield urllib.parse.urlunsplit(parts._replace(path="/" + name))
    finally:
        close_pools()
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"drop database if exists {name} with (force)")


def library_size(location: str) -> int:
    """Bytes the library takes: the SQLite file and its WAL, or the PostgreSQL database."""
    from il2watch.library import Library

    if location.startswith("postgresql://"):
        with Library(location) as library:
            library.execute("vacuum analyze")
            return int(library.execute("select pg_database_size(current_database())").fetchone()[0])
    path = Path(location)
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--commands", type=int, default=300, help="commands of each kind (default 300)")
    parser.add_argument("--database", default="", help="a PostgreSQL server's URL: benchmark PostgreSQL there")
    args = parser.parse_args(argv)
    harness.clear_proxies()
    backend = "PostgreSQL" if args.database else "SQLite"
    harness.header(f"Figure 4: commands with {args.papers:,} papers in the library ({backend})")
    rng = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="il2watch-bench-") as tmp, library_location(args.database, tmp) as db_path:
        directory = Path(tmp)
        filled = synthetic_library.fill_library(db_path, args.papers)
        size = library_size(db_path)
        print(
            f"   library: {args.papers:,} papers written in {filled:.1f} s ({args.papers / filled:,.0f} papers/s, "
            f"one transaction); {size / 1e6:.0f} MB on disk"
        )
        queries = list(SEARCHES) + synthetic_library.author_surnames(db_path, limit=5)
        rounds = max(1, round(args.commands / len(queries)))
        times, by_query, matches = search_figures(db_path, queries, rounds)
        print(f"   Library.search, {len(times)} calls ({len(queries)} queries x {rounds}), first page of 10:")
        print(
            f"     p50 {harness.ms(harness.percentile(times, 50))}, p99 {harness.ms(harness.percentile(times, 99))}, "
            f"max {harness.ms(max(times))}   (aim: p99 under 20 ms)"
        )
        print("     slowest queries (matches, p50, p99):")
        worst = sorted(by_query, key=lambda q: -harness.percentile(by_query[q], 99))[:6]
        for query in worst:
            print(
                f"       {query!r:<46} {matches[query]:>7,}  {harness.ms(harness.percentile(by_query[query], 50)):>9}"
                f"  {harness.ms(harness.percentile(by_query[query], 99)):>9}"
            )
        pmids = [str(30_000_000 + rng.randrange(args.papers)) for _ in range(args.commands)]
        texts = {
            "search": [f"search {queries[i % len(queries)]}" for i in range(args.commands)],
            "paper": [f"paper {pmid}" for pmid in pmids],
            "recent": [f"recent {RECENT[i % len(RECENT)]}".strip() for i in range(args.commands)],
        }
        acks = ack_figures(db_path, directory, texts)
    print(f"   ack latency through Bolt over Socket Mode, {args.commands} commands each, one at a time:")
    worst_p99 = 0.0
    for name, seconds in acks.items():
        p99 = harness.percentile(seconds, 99)
        worst_p99 = max(worst_p99, p99)
        print(
            f"     /il2 {name:<7} p50 {harness.ms(harness.percentile(seconds, 50)):>9}   p99 {harness.ms(p99):>9}   "
            f"max {harness.ms(max(seconds)):>9}"
        )
    print(
        f"   aim ack p99 under 100 ms: {'met' if worst_p99 < 0.100 else 'MISSED'}; "
        f"aim search p99 under 20 ms: {'met' if harness.percentile(times, 99) < 0.020 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
