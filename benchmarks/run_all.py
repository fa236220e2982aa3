"""Run every benchmark, one after another, and print their figures: the numbers in docs/benchmarks.md.

    python benchmarks/run_all.py                  # all eight figures, about 12 minutes
    python benchmarks/run_all.py --skip memory    # leave out the long ones by name

Each benchmark runs in a process of its own, so that none inherits another's warm caches, threads
or memory; they run one at a time because timings on a shared machine mean little. Everything is
offline: the stand-ins listen on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import harness

BENCHMARKS = (
    ("poll_cost", "1. E-utilities requests per poll"),
    ("discovery_scale", "2. Discovery at scale under 3 requests a second"),
    ("parse_throughput", "3. Parse throughput"),
    ("commands_latency", "4. Commands with 100,000 papers"),
    ("slack_pacing", "5. Slack pacing"),
    ("memory", "6. Memory of `il2watch run`"),
    ("sources_poll", "7. One poll across four sources"),
    ("followup_cost", "8. What a follow-up check costs"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=[name for name, _ in BENCHMARKS],
        help="a benchmark to leave out (repeatable)",
    )
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parent
    print("il2watch benchmarks: python benchmarks/run_all.py" + "".join(f" --skip {s}" for s in args.skip))
    for line in harness.machine_lines():
        print(f"   {line}")
    failed = []
    started = time.monotonic()
    for name, title in BENCHMARKS:
        if name in args.skip:
            continue
        print(f"\n--- {title}: python benchmarks/{name}.py", flush=True)
        began = time.monotonic()
        code = subprocess.run([sys.executable, str(here / f"{name}.py")], cwd=harness.ROOT).returncode
        print(
            f"--- {name}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {time.monotonic() - began:.0f} s",
            flush=True,
        )
        if code != 0:
            failed.append(name)
    print(f"\nall done in {time.monotonic() - started:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
