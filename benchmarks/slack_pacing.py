"""Figure 5: 100 new papers posted to Slack one by one, at Slack's pace, with no 429.

    python benchmarks/slack_pacing.py              # 100 papers, about two minutes
    python benchmarks/slack_pacing.py --papers 20

The Slack stand-in limits chat.postMessage per channel as Slack does (about one a second, bursts of
three: `set_post_rate_limit(1.0, burst=3)`) and answers 429 with Retry-After beyond it. il2watch runs
with its default pacing (IL2WATCH_POST_INTERVAL 1.1 s) and IL2WATCH_BURST=0, so that 100 papers
arriving at once are posted individually rather than as one digest. A first poll records the baseline
(and posts its note and three papers); then 100 papers citing the review arrive and `poll_once` posts
them. The figures come from the stand-in's request log.

Aim: zero 429s, about one post a second.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import harness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100)
    args = parser.parse_args(argv)
    harness.clear_proxies()
    harness.header(f"Figure 5: Slack pacing, {args.papers} new papers")

    from il2watch.service import poll_once
    from tests.data.records import REVIEW_PMID, build_world
    from tests.stand_ins.eutils import EutilsStandIn
    from tests.stand_ins.slack_api import SlackStandIn

    world = build_world()
    with (
        tempfile.TemporaryDirectory(prefix="il2watch-bench-") as tmp,
        EutilsStandIn(world) as ncbi,
        SlackStandIn() as slack,
    ):
        directory = Path(tmp)
        slack.add_channel("il2-papers", channel_id="C0PAPERS1")
        slack.set_post_rate_limit(1.0, burst=3)
        settings = harness.load(
            directory,
            harness.il2watch_env(
                directory,
                ncbi.base_url,
                slack_api_url=slack.base_url,
                bot_token=slack.bot_token,
                NCBI_API_KEY="stand-in-key",
                IL2WATCH_BURST="0",
            ),
        )
        assert settings.post_interval == 1.1 and settings.burst == 0
        baseline = poll_once(settings, out=lambda _: None)
        new = set(world.generate_citing(REVIEW_PMID, args.papers, start_pmid=48_000_000))
        before = len(slack.calls())
        limited_before = slack.rate_limited_count
        started = time.time()
        report = poll_once(settings, out=lambda _: None)
        finished = time.time()
        posts = [c for c in slack.calls()[before:] if c.method == "chat.postMessage"]
        accepted = [c for c in posts if c.status == 200 and c.error is None]
        refused = [c for c in posts if c.status == 429 or c.error == "ratelimited"]
        posted = [m.metadata["event_payload"]["pmid"] for m in slack.posts_with_metadata("il2watch_paper")]
        limited = slack.rate_limited_count - limited_before

    times = [c.time for c in accepted]
    gaps = [b - a for a, b in zip(times, times[1:])]
    span = times[-1] - times[0]
    print(
        f"   baseline poll posted {baseline.delivery.posted} (a note per watch and the three newest papers); "
        f"then {args.papers} papers arrived"
    )
    print(
        f"   second poll: {report.delivery.posted} posted, {report.delivery.still_due} still due; "
        f"the new papers in the channel: {len(set(posted) & new)} of {len(new)}, each once: "
        f"{len([p for p in posted if p in new]) == len(new)}"
    )
    print(
        f"   chat.postMessage calls: {len(posts)}; answered 429 by the stand-in: {limited} (in the log: {len(refused)})"
    )
    print(
        f"   first to last post: {span:.1f} s for {len(accepted)} posts = {(len(accepted) - 1) / span:.3f} posts/s; "
        f"gap between posts min {min(gaps):.3f} s, median {harness.percentile(gaps, 50):.3f} s, "
        f"max {max(gaps):.3f} s"
    )
    print(f"   the whole poll (discovery, storing, posting): {finished - started:.1f} s")
    ok = limited == 0 and len(set(posted) & new) == len(new)
    print(f"   aim zero 429s and about one post a second: {'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
