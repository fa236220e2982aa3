"""Figure 8: what a follow-up check costs, in E-utilities requests, for libraries of every size.

    python benchmarks/followup_cost.py

Builds libraries of N posted papers (N from 14 to 25,000: the papers are claimed as posted in the
library, and the E-utilities stand-in holds records for those some follow-up has reached) and runs
``check_followups`` against the stand-in (NCBI's 3-a-second limit, no key; Slack's stand-in receives
what is told). It counts the requests the stand-in received by endpoint, on a day when one paper is
retracted and on the day after, when nothing is new (the papers with old errata still match the filters:
a hit is not news), and on a library where no posted paper ever had a follow-up.

The aim, from issue 14: at most three requests per chunk of 10,000 posted PMIDs (EPost, ESearch on #1,
EFetch of the hits), two when no posted paper matches.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import harness

CHUNK = 10_000


def run(posted: int, *, with_notices: bool) -> list[tuple[str, Counter[str], float, str]]:
    from il2watch.config import load_settings
    from il2watch.ids import batches
    from il2watch.library import Library
    from il2watch.service import check_followups, poll_once
    from tests.data import records as R
    from tests.data.records import build_world
    from tests.stand_ins.eutils import EutilsStandIn
    from tests.stand_ins.pubmed_world import record
    from tests.stand_ins.slack_api import SlackStandIn

    world = build_world()
    lines = []
    with tempfile.TemporaryDirectory() as folder, EutilsStandIn(world) as ncbi, SlackStandIn() as slack:
        slack.add_channel("il2-papers", channel_id="C0PAPERS1")
        env = harness.il2watch_env(
            Path(folder),
            ncbi.base_url,
            slack_api_url=slack.base_url,
            bot_token=slack.bot_token,
            IL2WATCH_BASELINE_POSTS="20" if with_notices else "0",
            IL2WATCH_BURST="0",
            IL2WATCH_POST_INTERVAL="0",
        )
        settings = load_settings(env, Path(folder))
        poll_once(settings, out=lambda _: None)
        with Library(settings.db_path) as library:
            have = len(library.posted_papers())
            extra = [str(30_000_000 + n) for n in range(max(posted - have, 0))]
            with library.transaction():
                for part in batches(extra, 500):
                    library.enqueue(
                        key=f"old-{part[0]}", channel="il2-papers", kind="digest", papers=part, payload={}, state="sent"
                    )
            total = len(library.posted_papers())
        days = [("a quiet day", None), ("a retraction", R.LOW_DOSE_SLE_PMID), ("the day after", None)]
        if not with_notices:
            days = [("a quiet day", None)]
        for label, retracted in days:
            if retracted:
                world.add(
                    record(
                        "39990001",
                        title="Retraction notice",
                        pub_types=["Retraction of Publication"],
                        corrections=[("RetractionOf", retracted)],
                    )
                )
                world.amend(retracted, corrections=[("RetractionIn", "39990001")], pub_types=["Retracted Publication"])
            ncbi.clear_requests()
            started = time.monotonic()
            report = check_followups(settings, out=lambda _: None)
            took = time.monotonic() - started
            counts = Counter(r.endpoint for r in ncbi.requests)
            summary = f"{total:,} posted, {report.hits} hit(s), {len(report.new)} new"
            lines.append((label, counts, took, summary))
    return lines


def main() -> int:
    harness.clear_proxies()
    harness.header("8. What a follow-up check costs")
    print(
        f"   {'library':34} {'day':14} {'EPost':>5} {'ESearch':>7} {'EFetch':>6} {'total':>5} "
        f"{'bound':>5} {'seconds':>7}"
    )
    within = True
    for posted, with_notices in (
        (14, True),
        (1_000, True),
        (10_000, True),
        (10_001, True),
        (25_000, True),
        (10_000, False),
    ):
        for label, counts, took, summary in run(posted, with_notices=with_notices):
            chunks = math.ceil(int(summary.split(" ")[0].replace(",", "")) / CHUNK)
            bound = 2 * chunks + (chunks if " 0 hit" not in summary else 0)
            total = sum(counts.values())
            within = within and total <= bound
            print(
                f"   {summary:34} {label:14} {counts['epost']:>5} {counts['esearch']:>7} {counts['efetch']:>6} "
                f"{total:>5} {bound:>5} {took:>7.2f}"
            )
    print(f"   every check within its bound: {'yes' if within else 'NO'}")
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
