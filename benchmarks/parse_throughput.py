"""Figure 3: papers per second from EFetch XML into the library.

    python benchmarks/parse_throughput.py
    python benchmarks/parse_throughput.py --papers 4000

EFetch answers are written by the E-utilities stand-in's own XML writer (the PubmedArticleSet NCBI
sends, DOCTYPE included), 200 records per answer as il2watch asks for them, for three sets of records:
the synthetic records the scale tests use; the hand-written records of tests/data/records.py
(structured abstracts, inline markup, MeSH, books…) repeated under new PMIDs; and the same with 80
references and three times the authors each, the size of NCBI's recorded answers for modern papers
(the recordings in the project's shared fixtures run 9-44 KB a record). Each batch then goes through
what a poll does with it, timed stage by stage on one core:

- parse: `pubmed.parse_articles` (Bio.Entrez.read with NCBI's DTDs, then Paper records);
- analyse: `intel.analyse` with the packaged lexicon (summary, axis, molecules, relevance);
- store: `Library.save_papers` and `save_reasons` in one transaction (SQLite, FTS5 index kept by triggers).

NCBI sends il2watch at most 200 records per request at 3 requests a second (10 with a key), so at most
600 papers a second (2,000 with a key). Aim: far above that.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import harness

BATCH = 200
NCBI_CEILING = {"no key": 3 * BATCH, "API key": 10 * BATCH}


def synthetic_xml(n: int) -> list[bytes]:
    from tests.data.records import REVIEW_PMID, build_world
    from tests.stand_ins.pubmed_world import pubmed_articles_xml

    world = build_world()
    pmids = world.generate_citing(REVIEW_PMID, n, start_pmid=45_000_000)
    return [
        pubmed_articles_xml(world.article_xml(p) for p in pmids[i : i + BATCH]).encode("utf-8")
        for i in range(0, n, BATCH)
    ]


def handwritten_xml(n: int, *, references: int = 0, author_copies: int = 1) -> list[bytes]:
    """The test world's hand-written records, copied under new PMIDs until there are ``n``.

    ``references`` more cited papers and ``author_copies`` times the authors make records the size of
    NCBI's recorded answers for modern papers (10-40 KB, most of it the reference list).
    """
    from tests.data.records import build_world
    from tests.stand_ins.pubmed_world import PubMedWorld, pubmed_articles_xml

    source = build_world()
    originals = [source.get(p) for p in source.pmids()]
    world = PubMedWorld(originals)
    cited_pool = [p for p in source.pmids()]
    pmids = []
    for i in range(n):
        original = originals[i % len(originals)]
        pmid = str(46_000_000 + i)
        world.add(
            dataclasses.replace(
                original,
                pmid=pmid,
                doi=f"10.5555/bench.{pmid}" if original.doi else "",
                authors=tuple(original.authors) * author_copies,
            )
        )
        for cited in source.references(original.pmid):
            world.cite(pmid, cited)
        for k in range(references):
            world.cite(pmid, cited_pool[k % len(cited_pool)] if k < len(cited_pool) else str(30_000_000 + k))
        pmids.append(pmid)
    return [
        pubmed_articles_xml(world.article_xml(p) for p in pmids[i : i + BATCH]).encode("utf-8")
        for i in range(0, n, BATCH)
    ]


def run(name: str, batches: list[bytes], directory: Path) -> dict[str, float]:
    from il2watch import intel, pubmed
    from il2watch.library import Library
    from il2watch.model import Reason

    lexicon = intel.default_lexicon()
    reason = Reason("review", "cites")
    seconds = {"parse": 0.0, "analyse": 0.0, "store": 0.0}
    count = 0
    with Library(directory / f"{name}.db") as library:
        for data in batches:
            started = time.perf_counter()
            papers = pubmed.parse_articles(data, what="benchmark EFetch").papers
            parsed = time.perf_counter()
            insights = {p.pmid: intel.analyse(p, [reason], lexicon=lexicon) for p in papers}
            analysed = time.perf_counter()
            with library.transaction():
                library.save_papers(papers, insights, now="2024-06-15T12:00:00+00:00")
                library.save_reasons([(p.pmid, reason) for p in papers], now="2024-06-15T12:00:00+00:00", run_id=None)
            stored = time.perf_counter()
            seconds["parse"] += parsed - started
            seconds["analyse"] += analysed - parsed
            seconds["store"] += stored - analysed
            count += len(papers)
        assert library.count_papers() == count
    return {"papers": count, "bytes": sum(len(b) for b in batches), **seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=2000, help="papers per set (default 2,000)")
    args = parser.parse_args(argv)
    harness.header("Figure 3: papers per second from EFetch XML into the library")
    sets = {
        "synthetic": synthetic_xml(args.papers),
        "hand-written": handwritten_xml(args.papers),
        "NCBI-sized": handwritten_xml(args.papers, references=80, author_copies=3),
    }
    print(f"   {args.papers:,} papers per set, EFetch answers of {BATCH}; papers per second by stage (and per paper)")
    print(f"   {'records':<13} {'KB/paper':>8} {'parse':>16} {'analyse':>16} {'store':>16} {'end to end':>11}")
    slowest = float("inf")
    with tempfile.TemporaryDirectory(prefix="il2watch-bench-") as tmp:
        for name, batches in sets.items():
            result = run(name, batches, Path(tmp))
            n = result["papers"]
            total = result["parse"] + result["analyse"] + result["store"]
            cells = [f"{n / result[s]:>6,.0f} ({1000 * result[s] / n:.2f} ms)" for s in ("parse", "analyse", "store")]
            print(
                f"   {name:<13} {result['bytes'] / n / 1024:>8.1f} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16} "
                f"{n / total:>11,.0f}"
            )
            slowest = min(slowest, n / total)
    print(
        f"   what NCBI can send il2watch: {NCBI_CEILING['no key']:,} papers/s without a key, "
        f"{NCBI_CEILING['API key']:,}/s with one"
    )
    for label, ceiling in NCBI_CEILING.items():
        print(f"   end to end (slowest set) vs {label}: {slowest / ceiling:.2f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
