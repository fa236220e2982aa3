"""Evaluate il2watch's domain intelligence on the labelled set in tests/data/evaluation.jsonl.

    python benchmarks/evaluate.py            # the figures in docs/evaluation.md
    python benchmarks/evaluate.py --misses   # and every wrong decision, to read

Prints, for the development split, the held-out split and both: precision and recall of the
IL-2 / not-IL-2 decision and of each axis tag, how the hard negatives fared, and the share of
summaries that fit 300 characters and end on a sentence boundary. Uses only the packaged
lexicon (not config/lexicon.toml), so the figures do not depend on local edits.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from il2watch.intel import SUMMARY_LIMIT, analyse, ends_sentence, summarise  # noqa: E402
from il2watch.model import AXES, Author, Insight, Paper, Section  # noqa: E402

DATA = ROOT / "tests" / "data" / "evaluation.jsonl"
SPLITS = ("dev", "heldout")
STRESS_LIMIT = 120  # a tighter limit than posts use, to exercise shortening on this set's sentences


def load_records(path: Path = DATA) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def to_paper(record: dict) -> Paper:
    return Paper(
        pmid=record["pmid"],
        title=record["title"],
        abstract=tuple(Section(s["text"], s.get("label", ""), s.get("category", "")) for s in record["abstract"]),
        authors=tuple(Author(**a) for a in record.get("authors", [])),
        pub_types=tuple(record.get("pub_types", ())),
    )


@dataclass(frozen=True)
class Scores:
    true_positive: int
    false_positive: int
    false_negative: int

    @property
    def precision(self) -> float:
        predicted = self.true_positive + self.false_positive
        return self.true_positive / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        actual = self.true_positive + self.false_negative
        return self.true_positive / actual if actual else 1.0

    @property
    def support(self) -> int:
        return self.true_positive + self.false_negative


def binary_scores(pairs: Iterable[tuple[bool, bool]]) -> Scores:
    """(truth, prediction) pairs to counts for the positive class."""
    counts = Counter(pairs)
    return Scores(counts[(True, True)], counts[(False, True)], counts[(True, False)])


@dataclass(frozen=True)
class Result:
    record: dict
    insight: Insight

    @property
    def truth(self) -> dict:
        return self.record["labels"]

    @property
    def has_abstract(self) -> bool:
        return bool(self.record["abstract"])

    @property
    def summary_ok(self) -> bool:
        summary = self.insight.summary
        return len(summary) <= SUMMARY_LIMIT and ends_sentence(summary)


def run(records: Sequence[dict]) -> list[Result]:
    return [Result(record, analyse(to_paper(record))) for record in records]


def report(results: Sequence[Result], name: str) -> list[str]:
    lines = [f"## {name}: {len(results)} records", ""]
    il2 = binary_scores((r.truth["is_il2"], r.insight.is_il2) for r in results)
    lines += [
        "| decision | support | precision | recall |",
        "| --- | ---: | ---: | ---: |",
        f"| IL-2 / not IL-2 | {il2.support} | {il2.precision:.3f} | {il2.recall:.3f} |",
    ]
    for axis in AXES:
        scores = binary_scores((r.truth["axis"] == axis, r.insight.axis == axis) for r in results)
        lines.append(f"| axis {axis} | {scores.support} | {scores.precision:.3f} | {scores.recall:.3f} |")
    correct_axis = sum(r.truth["axis"] == r.insight.axis for r in results)
    lines += ["", f"Axis accuracy: {correct_axis}/{len(results)} = {correct_axis / len(results):.3f}", ""]

    hard = [r for r in results if r.record.get("hard_negative")]
    if hard:
        lines.append("| hard negative | records | kept out of IL-2 |")
        lines.append("| --- | ---: | ---: |")
        for kind in sorted({r.record["hard_negative"] for r in hard}):
            group = [r for r in hard if r.record["hard_negative"] == kind]
            kept = sum(not r.insight.is_il2 for r in group)
            lines.append(f"| {kind} | {len(group)} | {kept} |")
        lines.append("")

    with_abstract = [r for r in results if r.has_abstract]
    fit = sum(len(r.insight.summary) <= SUMMARY_LIMIT for r in with_abstract)
    boundary = sum(ends_sentence(r.insight.summary) for r in with_abstract)
    both = sum(r.summary_ok for r in with_abstract)
    count = len(with_abstract)
    lines += [
        f"Summaries of the {count} records with an abstract: {fit}/{count} fit {SUMMARY_LIMIT} characters, "
        f"{boundary}/{count} end on a sentence boundary, {both}/{count} = {both / count:.3f} do both.",
        "",
    ]
    stressed = [summarise(to_paper(r.record), limit=STRESS_LIMIT) for r in with_abstract]
    stress_ok = sum(len(s) <= STRESS_LIMIT and ends_sentence(s) for s in stressed)
    lines += [
        f"Stress test at {STRESS_LIMIT} characters: {stress_ok}/{count} = {stress_ok / count:.3f} fit and end on "
        f"a sentence boundary; {sum(s.endswith('…') for s in stressed)} cut with an ellipsis.",
        "",
    ]
    return lines


def misses(results: Sequence[Result]) -> list[str]:
    lines = ["## Misses", ""]
    for r in results:
        wrong = []
        if r.truth["is_il2"] != r.insight.is_il2:
            wrong.append(f"is_il2 {r.truth['is_il2']} -> {r.insight.is_il2}")
        if r.truth["axis"] != r.insight.axis:
            wrong.append(f"axis {r.truth['axis']} -> {r.insight.axis}")
        if r.has_abstract and not r.summary_ok:
            wrong.append(f"summary ({len(r.insight.summary)} chars): {r.insight.summary}")
        if wrong:
            lines.append(f"- {r.record['pmid']} [{r.record['split']}] {r.record['title']}")
            lines += [f"    {w}" for w in wrong]
    return lines + [""]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="labelled JSON Lines file")
    parser.add_argument("--misses", action="store_true", help="also list every wrong decision")
    parser.add_argument("--split", choices=SPLITS, help="only this split (tune on dev, never on heldout)")
    args = parser.parse_args(argv)
    records = load_records(args.data)
    if args.split:
        records = [r for r in records if r["split"] == args.split]
    results = run(records)
    out: list[str] = []
    for split in SPLITS:
        if split in {r.record["split"] for r in results}:
            out += report([r for r in results if r.record["split"] == split], f"Split {split}")
    if not args.split:
        out += report(results, "All records")
    if args.misses:
        out += misses(results)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
