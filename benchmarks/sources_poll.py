"""7. One poll across all four sources: wall time against the slowest host's own bound.

500 new papers cite the review, spread over the indexes as real coverage spreads them: 125 that every
index lists, 125 PubMed records only iCite and Europe PMC list, 125 bioRxiv preprints only Europe PMC
lists (their records come from Europe PMC's search), 125 works without a PMID only OpenAlex lists.
Every host answers after a fixed latency (``--latency``, 0.25 s, as a distant host would) and il2watch
paces each at its own rate (NCBI 3/s without a key, iCite 3/s, Europe PMC 5/s, OpenAlex 10/s).

For each host the script counts the requests the poll sent and computes that host's own bound: the time
those requests take at the host's rate, each waiting for its answer (the poll's requests to one host go
one after another). A poll that asks the hosts at once takes about as long as the slowest host's bound;
one that asks them one after another takes their sum. Printed: both, and the wall time.

    python benchmarks/sources_poll.py [--papers 500] [--latency 0.25]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import harness

from il2watch.config import load_settings
from il2watch.service import poll_once
from tests.data.citations import build_literature
from tests.data.records import REVIEW_PMID, WORLD_TODAY
from tests.stand_ins.europepmc import EuropePmcStandIn
from tests.stand_ins.eutils import EutilsStandIn
from tests.stand_ins.icite import IciteStandIn
from tests.stand_ins.literature import Work
from tests.stand_ins.openalex import DEFAULT_KEY, OpenAlexStandIn
from tests.stand_ins.pubmed_world import Author, record
from tests.stand_ins.slack_api import SlackStandIn

RATES = {"NCBI": 3.0, "iCite": 3.0, "Europe PMC": 5.0, "OpenAlex": 10.0}
MARGIN = 1.05  # il2watch's limiter window is this much longer than a second


def add_citing_papers(literature, count: int) -> Counter:
    """``count`` new citing papers in four equal groups; returns how many each group has."""
    day = WORLD_TODAY + timedelta(days=5)
    groups: Counter = Counter()
    for n in range(count):
        group = n % 4
        title = f"Engineered interleukin-2 variant {n} for regulatory T cells in autoimmunity"
        if group in (0, 1):
            pmid = str(45_000_000 + n)
            literature.world.add(record(pmid, title=title, entry_date=day, authors=[Author("Ito", "Ken", "K")]))
            indexes = ("pubmed", "icite", "europepmc", "openalex") if group == 0 else ("icite", "europepmc")
            literature.cite(pmid, REVIEW_PMID, indexes)
        else:
            key = f"bench-{n}"
            literature.add_work(
                Work(
                    key=key,
                    title=title,
                    abstract="An engineered IL-2 expanded Tregs. Mice were protected.",
                    authors=(("Ken", "Ito"), ("Ana", "Lima")),
                    doi=f"10.1101/2024.07.{n:05d}",
                    ppr=f"PPR9{n:05d}" if group == 2 else "",
                    kind="preprint" if group == 2 else "article",
                    europepmc_source="PPR" if group == 2 else "",
                    server="bioRxiv" if group == 2 else "J Imag Immunol",
                )
            )
            literature.cite(key, REVIEW_PMID, ("europepmc",) if group == 2 else ("openalex",))
        groups[("every index", "iCite + Europe PMC", "Europe PMC preprints", "OpenAlex only")[group]] += 1
    return groups


def host_bound(requests: int, rate: float, latency: float) -> float:
    """The least time ``requests`` to one host take, sent one after another, each waiting ``latency`` for its
    answer, at most ``rate`` starting in any 1.05 s."""
    if requests == 0:
        return 0.0
    return max(requests * latency, (math.ceil(requests / rate) - 1) * MARGIN + latency)


def run(papers: int, latency: float) -> tuple[float, dict[str, int], str, Counter, int, dict]:
    """One baseline poll, then ``papers`` new citing papers and the timed poll: (wall, requests by host,
    the poll's line, the groups, requests over a host's limit, when each host was asked what)."""
    literature = build_literature()
    with (
        tempfile.TemporaryDirectory() as folder,
        EutilsStandIn(literature.world) as ncbi,
        IciteStandIn(literature) as icite,
        EuropePmcStandIn(literature) as epmc,
        OpenAlexStandIn(literature) as openalex,
        SlackStandIn() as slack,
    ):
        slack.add_channel("il2-papers", channel_id="C0PAPERS1")
        directory = Path(folder)
        env = harness.il2watch_env(
            directory,
            ncbi.base_url,
            slack_api_url=slack.base_url,
            bot_token=slack.bot_token,
            IL2WATCH_CHANNEL="il2-papers",
            IL2WATCH_SOURCES="pubmed,icite,europepmc,openalex",
            IL2WATCH_ICITE_URL=icite.base_url,
            IL2WATCH_EUROPEPMC_URL=epmc.base_url,
            IL2WATCH_OPENALEX_URL=openalex.base_url,
            OPENALEX_API_KEY=DEFAULT_KEY,
            IL2WATCH_ICITE_REFRESH="0",
            IL2WATCH_OPENALEX_REFRESH="0",
            IL2WATCH_BURST="10",
            IL2WATCH_POST_INTERVAL="0",
        )
        settings = load_settings(env, directory)
        first = datetime(2024, 6, 16, 9, tzinfo=UTC)
        poll_once(settings, out=lambda _: None, now=first)  # the baseline
        groups = add_citing_papers(literature, papers)
        for host in (icite, epmc, openalex):
            host.latency = latency
            host.clear_requests()
        ncbi.clear_requests()
        if latency:
            ncbi.inject("slow", times=10_000, delay=latency)  # every NCBI answer waits as long
        started = time.perf_counter()
        began = time.monotonic()  # the stand-ins stamp requests with the monotonic clock
        report = poll_once(settings, out=lambda _: None, now=first + timedelta(days=10))
        wall = time.perf_counter() - started
        timeline = {
            "NCBI": [(r.time - began, r.endpoint) for r in ncbi.requests],
            "iCite": [(r.time - began, r.path.rsplit("/", 1)[-1]) for r in icite.requests],
            "Europe PMC": [(r.time - began, r.path.rsplit("/", 1)[-1]) for r in epmc.requests],
            "OpenAlex": [(r.time - began, r.path.split("/")[-1] or "works") for r in openalex.requests],
        }
        counts = {
            "NCBI": len(ncbi.requests),
            "iCite": len(icite.requests),
            "Europe PMC": len(epmc.requests),
            "OpenAlex": len(openalex.requests),
        }
        violations = ncbi.rate_violations + icite.rate_violations + epmc.rate_violations + openalex.rate_violations
    return wall, counts, report.line(), groups, violations, timeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.25)
    args = parser.parse_args(argv)
    harness.clear_proxies()
    harness.header("7. One poll across PubMed, iCite, Europe PMC and OpenAlex")
    local = run(args.papers, 0.0)[0]
    wall, counts, line, groups, violations, timeline = run(args.papers, args.latency)
    print(f"   new citing papers: {args.papers} ({', '.join(f'{n} {g}' for g, n in groups.items())})")
    print(f"   poll: {line}")
    print(f"   latency per answer: {args.latency:.2f} s")
    print(f"   {'host':<11} {'rate/s':>6} {'requests':>8} {'own bound':>10}")
    bounds = {}
    for host, count in counts.items():
        bounds[host] = host_bound(count, RATES[host], args.latency)
        print(f"   {host:<11} {RATES[host]:>6.0f} {count:>8} {bounds[host]:>9.2f}s")
    slowest = max(bounds, key=lambda h: bounds[h])
    print(
        f"   slowest host: {slowest}, {bounds[slowest]:.2f} s; all hosts one after another: "
        f"{sum(bounds.values()):.2f} s"
    )
    print(f"   the same poll with answers at once (parsing, analysing, storing, one Slack digest): {local:.2f} s")
    waited = wall - local
    print(
        f"   wall time of the poll: {wall:.2f} s, of which waiting for hosts {waited:.2f} s = "
        f"{waited / bounds[slowest]:.2f} x the slowest host's bound ({waited / sum(bounds.values()):.2f} x the sum)"
    )
    print(f"   requests over a host's rate limit: {violations}")
    print("   when each request was sent, seconds after the poll began:")
    for host, sent in timeline.items():
        print(f"   {host:<11} " + ", ".join(f"{what} {at:.2f}" for at, what in sent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
