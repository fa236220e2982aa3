"""Figure 6: resident memory of `il2watch run` after 10 and after 1,000 polls against the stand-ins.

    python benchmarks/memory.py                 # 1,000 polls, about six minutes
    python benchmarks/memory.py --polls 200     # a shorter run

The worker is a real subprocess (`python -m il2watch run`) polling the E-utilities stand-in on a
fractional-second schedule (jitter 0) with NCBI's 10-a-second key limit, posting to the Slack stand-in
and connected to the Socket Mode stand-in. So that the run is not only empty polls, a new paper citing
the review arrives every 25 polls (and is posted), and a slash command is sent every 10 polls. Polls are
counted in the library's runs table; VmRSS is read from /proc/<pid>/status.

Aim: no growth beyond noise, and under 150 MB.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import harness

CHECKPOINTS = (10, 100, 250, 500, 750, 1000)
NEW_PAPER_EVERY = 25
COMMAND_EVERY = 10
COMMANDS = ("search IL-2 mutein", "recent", "paper 36104538", "status", "cites")


MEMORY_FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak) and what the resident pages are (anonymous, files, shared memory), in KiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in MEMORY_FIELDS:
            found[name] = int(value.split()[0])
    return found


def finished_polls(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("select count(*) from runs where kind = 'poll' and finished_at is not null").fetchone()[
                0
            ]
    except sqlite3.OperationalError:  # not created yet
        return 0


def slope_per_100(points: list[tuple[int, int]]) -> float:
    """Least-squares growth of RSS in KiB per 100 polls."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return 100 * sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=1000)
    parser.add_argument("--schedule", default="0.35s", help="IL2WATCH_SCHEDULE for the worker (default 0.35s)")
    parser.add_argument(
        "--traffic",
        choices=("both", "papers", "commands", "none"),
        default="both",
        help="what happens besides polling: arriving papers, slash commands, both (default), none",
    )
    args = parser.parse_args(argv)
    harness.clear_proxies()
    harness.header("Figure 6: memory of `il2watch run`")

    from tests.data.records import REVIEW_PMID, build_world
    from tests.stand_ins.eutils import EutilsStandIn
    from tests.stand_ins.pubmed_world import record
    from tests.stand_ins.slack_api import DEFAULT_APP_TOKEN, SlackStandIn
    from tests.stand_ins.socket_mode import SocketModeStandIn, slash_command_payload

    checkpoints = sorted({c for c in CHECKPOINTS if c <= args.polls} | {args.polls})
    world = build_world()
    with (
        tempfile.TemporaryDirectory(prefix="il2watch-bench-") as tmp,
        EutilsStandIn(world) as ncbi,
        SocketModeStandIn() as socket_mode,
        SlackStandIn(socket_mode_url=socket_mode.url) as slack,
    ):
        directory = Path(tmp)
        slack.add_channel("il2-papers", channel_id="C0PAPERS1")
        settings_env = harness.il2watch_env(
            directory,
            ncbi.base_url,
            slack_api_url=slack.base_url,
            bot_token=slack.bot_token,
            SLACK_APP_TOKEN=DEFAULT_APP_TOKEN,
            NCBI_API_KEY="stand-in-key",
            IL2WATCH_SCHEDULE=args.schedule,
            IL2WATCH_POST_INTERVAL="0",
            IL2WATCH_LOG_LEVEL="INFO",
        )
        log_path = directory / "worker.log"
        db_path = directory / "library.db"
        with log_path.open("ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "il2watch", "run"],
                cwd=harness.ROOT,
                env=harness.subprocess_env(settings_env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started = time.monotonic()
        samples: list[tuple[int, int]] = []
        at_checkpoint: dict[int, dict[str, int]] = {}
        papers_added = commands_sent = 0
        ack_failures = 0
        next_sample = 0
        try:
            socket_mode.wait_for_connections(1, timeout=30)
            while True:
                if worker.poll() is not None:
                    raise SystemExit(f"the worker exited ({worker.returncode}):\n{log_path.read_text()[-3000:]}")
                polls = finished_polls(db_path)
                if polls >= next_sample:  # one sample every 10 polls
                    samples.append((next_sample, rss_kib(worker.pid)["VmRSS"]))
                    next_sample = (polls // 10 + 1) * 10
                for mark in checkpoints:
                    if polls >= mark and mark not in at_checkpoint:
                        at_checkpoint[mark] = {"polls": polls, **rss_kib(worker.pid)}
                if polls >= args.polls:
                    break
                if args.traffic in ("both", "papers") and polls // NEW_PAPER_EVERY > papers_added:
                    papers_added += 1
                    pmid = str(47_000_000 + papers_added)
                    world.add(
                        record(pmid, title=f"An engineered IL-2 mutein, report {papers_added}", entry_date=date.today())
                    )
                    world.cite(pmid, REVIEW_PMID)
                if args.traffic in ("both", "commands") and polls // COMMAND_EVERY > commands_sent:
                    text = COMMANDS[commands_sent % len(COMMANDS)]
                    commands_sent += 1
                    url = slack.new_response_url(channel="C0PAPERS1", user="UREADER1")
                    envelope = socket_mode.send_envelope(
                        "slash_commands",
                        slash_command_payload(
                            "/il2", text, user_id="UREADER1", channel_id="C0PAPERS1", response_url=url
                        ),
                    )
                    try:
                        socket_mode.wait_for_ack(envelope, timeout=3.0)
                    except TimeoutError:
                        ack_failures += 1
                time.sleep(0.05)
            elapsed = time.monotonic() - started
            final = rss_kib(worker.pid)
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=20)
        log_text = log_path.read_text(errors="replace")

    print(
        f"   worker: python -m il2watch run, IL2WATCH_SCHEDULE={args.schedule}, jitter 0, NCBI key (10/s), "
        f"Socket Mode on"
    )
    print(
        f"   {args.polls} polls in {elapsed:.0f} s; {papers_added} papers arrived and were posted "
        f"({len(slack.posts_with_metadata('il2watch_paper'))} paper posts in all, baseline included); "
        f"{commands_sent} slash commands ({ack_failures} not acknowledged in 3 s)"
    )
    print(f"   polls that failed: {log_text.count('poll failed')}; worker exit code after SIGTERM: {code}")
    print("   polls    VmRSS      of which: anonymous   files   shared memory")
    for mark in checkpoints:
        sample = at_checkpoint[mark]
        print(
            f"   {mark:>5}   {sample['VmRSS'] / 1024:6.1f} MiB            {sample['RssAnon'] / 1024:6.1f}  "
            f"{sample['RssFile'] / 1024:6.1f}  {sample['RssShmem'] / 1024:6.1f}   (read at {sample['polls']} polls)"
        )
    every = [f"{r / 1024:.1f}" for p, r in samples if p % 100 == 0 and p]
    print(f"   VmRSS every 100 polls (MiB): {' '.join(every)}")
    first, last = at_checkpoint[checkpoints[0]], at_checkpoint[checkpoints[-1]]
    steady = [(p, r) for p, r in samples if p >= min(100, args.polls // 2)]
    spread = max(r for _, r in steady) - min(r for _, r in steady)
    print(
        f"   growth from {checkpoints[0]} to {checkpoints[-1]} polls: "
        f"{(last['VmRSS'] - first['VmRSS']) / 1024:+.1f} MiB"
    )
    print(
        f"   trend from poll {steady[0][0]} on ({len(steady)} samples, least squares): "
        f"{slope_per_100(steady):+.0f} KiB per 100 polls; spread of those samples {spread / 1024:.1f} MiB"
    )
    print(f"   peak (VmHWM): {final['VmHWM'] / 1024:.1f} MiB")
    ok = final["VmHWM"] < 150 * 1024
    print(f"   aim under 150 MB: {'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
