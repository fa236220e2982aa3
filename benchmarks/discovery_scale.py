"""Figure 2: the first poll of a watch with 10,000 citing papers, under NCBI's 3-requests-a-second limit.

    python benchmarks/discovery_scale.py                  # 10,000 citing papers
    python benchmarks/discovery_scale.py --papers 2000

The E-utilities stand-in runs in a process of its own (so its XML writing does not compete with
il2watch for the GIL) and enforces 3 requests in any second for a client without an API key. il2watch's
`poll_once` runs here with NCBI_API_KEY unset and no Slack token: the first poll of a watch records
everything it finds as the baseline, stores it, and posts nothing (it prints the three newest instead).

The bound the limit sets: R requests at 3 in any one second can all have started no sooner than
ceil(R / 3) - 1 seconds after the first (the first three are free), which is (R - 3) / 3 when R is a
multiple of 3. Aim: the poll's wall time within 10% of that, and no second with more than 3 requests.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import harness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=10_000, help="synthetic papers citing the review")
    parser.add_argument(
        "--references",
        type=int,
        default=0,
        help="references per synthetic paper, for records the size of NCBI's (80 gives ~12 KB)",
    )
    args = parser.parse_args(argv)
    harness.clear_proxies()
    harness.header(
        f"Figure 2: first poll of a watch with {args.papers:,} citing papers, 3 requests/s"
        + (f", {args.references} references each" if args.references else "")
    )

    from il2watch.library import Library
    from il2watch.service import poll_once
    from tests.stand_ins.eutils import max_requests_in_any_second

    with (
        harness.StandInProcess(harness.review_world_citing, args.papers, 42_000_000, args.references) as ncbi,
        tempfile.TemporaryDirectory(prefix="il2watch-bench-") as tmp,
    ):
        directory = Path(tmp)
        settings = harness.load(directory, harness.il2watch_env(directory, ncbi.base_url))
        assert settings.ncbi_rate == 3 and not settings.slack_bot_token
        ncbi.clear()
        started = time.monotonic()
        report = poll_once(settings, out=lambda _: None)
        finished = time.monotonic()
        served = ncbi.stop()
        with Library(settings.db_path) as library:
            stored, linked = library.count_papers(), library.count_linked("review", "cites")

    requests = served.requests
    arrivals = sorted(r.time for r in requests)
    total = len(requests)
    bound = math.ceil(total / 3) - 1
    wall = finished - started
    by_endpoint = Counter(r.endpoint for r in requests)
    refused = sum(1 for r in requests if r.status == 429)
    print(
        f"   found {report.new:,} new papers ({linked:,} citing the review), stored {stored:,}, "
        f"posted 0 (baseline; no Slack token)"
    )
    print(
        f"   requests R = {total} ({', '.join(f'{n} {e}' for e, n in sorted(by_endpoint.items()))}); "
        f"il2watch counted {report.requests}"
    )
    print(f"   bound for R requests at 3/s: ceil(R/3) - 1 = {bound} s   [(R-3)/3 = {(total - 3) / 3:.2f} s]")
    print(f"   poll wall time: {wall:.2f} s = {wall / bound:.3f} x the bound ({100 * (wall / bound - 1):+.1f}%)")
    print(
        f"     before the first request: {arrivals[0] - started:.2f} s; first to last request: "
        f"{arrivals[-1] - arrivals[0]:.2f} s ({(arrivals[-1] - arrivals[0]) / bound:.3f} x the bound); "
        f"after the last request (its answer, parsing, analysis, storing): {finished - arrivals[-1]:.2f} s"
    )
    print(
        f"   most requests in any one second (stand-in log, sliding window): "
        f"{max_requests_in_any_second(requests)}; over the limit (rate_violations): {served.rate_violations}; "
        f"refused with 429: {refused}"
    )
    within = wall <= 1.10 * bound
    print(
        f"   aim within 10% of the bound: {'met' if within else 'MISSED'}; "
        f"aim no second over 3: {'met' if max_requests_in_any_second(requests) <= 3 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
