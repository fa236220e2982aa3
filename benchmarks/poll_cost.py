"""Figure 1: E-utilities requests per poll, beside the minimum the project sets.

    python benchmarks/poll_cost.py

Runs `poll_once` against the E-utilities stand-in (NCBI's 3-a-second limit, no key) and counts the
requests the stand-in received, by endpoint, for: a poll that finds nothing new, one that finds 50 new
papers, one that finds 450; first with the two watches il2watch ships with (the review and a query),
then with four watched papers and three queries, to show what grows with the number of watches.

The minimum, as the project defines it: 2 ELink for all watched papers together (one with
cmd=neighbor_score for similar articles and their scores, one for citing papers: no NCBI answer on
record shows one neighbor_score request returning both link sets), 1 ESearch per query watch, and
ceil(new / 200) EFetch for the new papers the library does not hold.
"""

from __future__ import annotations

import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

import harness

MANY_WATCHES = """
[[watch]]
id = "review"
pmid = "{review}"

[[watch]]
id = "treg-mutein"
pmid = "{treg}"

[[watch]]
id = "low-dose-sle"
pmid = "{sle}"

[[watch]]
id = "not-alpha"
pmid = "{not_alpha}"

[[watch]]
id = "engineered-il2"
query = '{query}'

[[watch]]
id = "low-dose"
query = '"low-dose"[tiab] AND lupus[tiab]'

[[watch]]
id = "il15"
query = 'IL-15[tiab]'
"""


def minimum(paper_watches: int, query_watches: int, to_fetch: int) -> int:
    return (2 if paper_watches else 0) + query_watches + math.ceil(to_fetch / 200)


def run_scenario(name: str, many: bool) -> list[tuple]:
    from il2watch.service import poll_once
    from tests.data import records as R
    from tests.data.records import build_world
    from tests.stand_ins.eutils import EutilsStandIn

    rows = []
    world = build_world()
    with tempfile.TemporaryDirectory(prefix="il2watch-bench-") as tmp, EutilsStandIn(world) as server:
        directory = Path(tmp)
        env = harness.il2watch_env(directory, server.base_url)
        if many:
            config = directory / "many.toml"
            config.write_text(
                MANY_WATCHES.format(
                    review=R.REVIEW_PMID,
                    treg=R.TREG_MUTEIN_PMID,
                    sle=R.LOW_DOSE_SLE_PMID,
                    not_alpha=R.NOT_ALPHA_CANCER_PMID,
                    query=R.ENGINEERED_IL2_QUERY,
                ),
                encoding="utf-8",
            )
            env["IL2WATCH_CONFIG"] = str(config)
        settings = harness.load(directory, env)
        paper_watches = sum(1 for w in settings.watches if w.pmid)
        query_watches = sum(1 for w in settings.watches if w.query)
        watches = f"{paper_watches} paper + {query_watches} query"

        def measured(label: str) -> None:
            server.clear_requests()
            report = poll_once(settings, out=lambda _: None)
            counts = Counter(r.endpoint for r in server.requests)
            rows.append(
                (
                    name,
                    watches,
                    label,
                    report.new,
                    report.stored,
                    counts["elink"],
                    counts["esearch"],
                    counts["efetch"],
                    sum(counts.values()),
                    minimum(paper_watches, query_watches, report.stored),
                )
            )

        measured("first poll (baseline)")
        measured("nothing new")
        world.generate_citing(R.REVIEW_PMID, 50, start_pmid=44_000_000)
        measured("50 new papers")
        measured("nothing new")
        world.generate_citing(R.REVIEW_PMID, 450, start_pmid=44_100_000)
        measured("450 new papers")
    return rows


def main() -> int:
    harness.clear_proxies()
    harness.header("Figure 1: E-utilities requests per poll")
    rows = run_scenario("shipped watches", many=False) + run_scenario("more watches", many=True)
    print("   minimum = 2 ELink (all watched papers) + 1 ESearch per query watch + ceil(fetched / 200) EFetch")
    print(
        f"   {'watches':<19} {'poll':<22} {'new':>5} {'fetched':>7} {'ELink':>5} {'ESearch':>7} "
        f"{'EFetch':>6} {'total':>5} {'minimum':>7}"
    )
    at_minimum = True
    for _name, watches, label, new, stored, elink, esearch, efetch, total, least in rows:
        print(
            f"   {watches:<19} {label:<22} {new:>5} {stored:>7} {elink:>5} {esearch:>7} {efetch:>6} "
            f"{total:>5} {least:>7}{'' if total == least else '  ABOVE THE MINIMUM'}"
        )
        at_minimum = at_minimum and total == least
    print(f"   every poll at the minimum: {'yes' if at_minimum else 'NO'}")
    print(
        "   (new = papers with a reason never recorded; fetched = those the library did not hold. "
        "The baseline's new papers include ones found by both watches, counted once.)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
