"""Evaluate il2watch's tags and summaries on the tuning set and on the blind test set.

    python benchmarks/evaluate.py                  # both sets: the figures in docs/evaluation.md
    python benchmarks/evaluate.py --set tuning     # the tuning set only
    python benchmarks/evaluate.py --set tuning --misses   # and every wrong decision on it, to read

For each set: precision and recall of the IL-2 / not-IL-2 decision and of each axis class, axis
accuracy, the confusion matrix, the same for the short records (title only, or title and at most two
sentences), how the hard negatives fared, and how many summaries fit. The blind test set
(tests/data/evaluation_test.jsonl) is only ever scored as a whole: no option lists its records.
Uses only the packaged lexicon (not config/lexicon.toml), so local edits do not move the figures.
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

from il2watch.intel import IL2_AXES, SUMMARY_LIMIT, analyse, ends_sentence, split_sentences, summarise  # noqa: E402
from il2watch.model import AXES, Author, Insight, Paper, Reason, Section  # noqa: E402

DATA = ROOT / "tests" / "data"
SETS = {"tuning": DATA / "evaluation.jsonl", "test": DATA / "evaluation_test.jsonl"}
REVIEW_WATCH = "review"
SHORT_SENTENCES = 2  # "title only or title plus two sentences"
STRESS_LIMIT = 120  # a tighter limit than posts use, to exercise shortening on these sentences


def load_records(path: Path = SETS["tuning"]) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _section(part: dict | str) -> Section:
    if isinstance(part, str):
        return Section(part)
    return Section(str(part.get("text", "")), str(part.get("label") or ""), str(part.get("category") or ""))


def _author(author: dict | str) -> Author:
    if isinstance(author, str):
        return Author(collective=author)
    fields = ("last_name", "fore_name", "initials", "collective")
    return Author(**{name: str(author.get(name) or "") for name in fields})


def to_paper(record: dict) -> Paper:
    """A labelled record as the Paper PubMed parsing would give (abstract sections or plain strings)."""
    abstract = record.get("abstract") or ()
    return Paper(
        pmid=str(record["pmid"]),
        title=str(record["title"]),
        abstract=tuple(_section(part) for part in ([abstract] if isinstance(abstract, str) else abstract)),
        authors=tuple(_author(a) for a in record.get("authors") or ()),
        pub_types=tuple(str(t) for t in record.get("pub_types") or ()),
        keywords=tuple(str(k) for k in record.get("keywords") or ()),
        mesh=tuple(str(m) for m in record.get("mesh") or ()),
    )


def reasons_of(record: dict) -> list[Reason]:
    """Why the record would be in the library: citing the review is the one reason the sets record."""
    return [Reason(REVIEW_WATCH, "cites")] if record.get("cites_review") else []


def truth_axis(record: dict) -> str:
    return record["labels"]["axis"]


def truth_il2(record: dict) -> bool:
    labels = record["labels"]
    return bool(labels["is_il2"]) if "is_il2" in labels else labels["axis"] in IL2_AXES


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
    def axis(self) -> str:
        return truth_axis(self.record)

    @property
    def is_il2(self) -> bool:
        return truth_il2(self.record)

    @property
    def has_abstract(self) -> bool:
        return any(section.text.strip() for section in to_paper(self.record).abstract)

    @property
    def is_short(self) -> bool:
        """Title only, or a title and at most two sentences: how new records often arrive."""
        text = " ".join(section.text for section in to_paper(self.record).abstract)
        return len(split_sentences(text)) <= SHORT_SENTENCES

    @property
    def summary_ok(self) -> bool:
        summary = self.insight.summary
        return len(summary) <= SUMMARY_LIMIT and ends_sentence(summary)


def run(records: Sequence[dict]) -> list[Result]:
    return [Result(record, analyse(to_paper(record), reasons_of(record))) for record in records]


def axis_accuracy(results: Sequence[Result]) -> float:
    return sum(r.axis == r.insight.axis for r in results) / len(results) if results else 1.0


def confusion(results: Sequence[Result]) -> list[str]:
    """Rows: the label; columns: what il2watch said."""
    counts = Counter((r.axis, r.insight.axis) for r in results)
    lines = ["| label \\ tagged | " + " | ".join(AXES) + " |", "| --- |" + " ---: |" * len(AXES)]
    for truth in AXES:
        lines.append(f"| {truth} | " + " | ".join(str(counts[(truth, said)]) for said in AXES) + " |")
    return lines


def decisions(results: Sequence[Result]) -> list[str]:
    il2 = binary_scores((r.is_il2, r.insight.is_il2) for r in results)
    lines = [
        "| decision | support | precision | recall |",
        "| --- | ---: | ---: | ---: |",
        f"| IL-2 / not IL-2 | {il2.support} | {il2.precision:.3f} | {il2.recall:.3f} |",
    ]
    for axis in AXES:
        scores = binary_scores((r.axis == axis, r.insight.axis == axis) for r in results)
        lines.append(f"| axis {axis} | {scores.support} | {scores.precision:.3f} | {scores.recall:.3f} |")
    correct = sum(r.axis == r.insight.axis for r in results)
    return lines + ["", f"Axis accuracy: {correct}/{len(results)} = {axis_accuracy(results):.3f}", ""]


def report(results: Sequence[Result], name: str) -> list[str]:
    lines = [f"## {name}: {len(results)} records", ""]
    lines += decisions(results)
    lines += ["Confusion matrix:", ""] + confusion(results) + [""]
    short = [r for r in results if r.is_short]
    if short:
        lines += [f"### {name}, short records (title only or at most {SHORT_SENTENCES} sentences): {len(short)}", ""]
        lines += decisions(short)

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
    count = len(with_abstract)
    if count:
        fit = sum(len(r.insight.summary) <= SUMMARY_LIMIT for r in with_abstract)
        boundary = sum(ends_sentence(r.insight.summary) for r in with_abstract)
        both = sum(r.summary_ok for r in with_abstract)
        lines += [
            f"Summaries of the {count} records with an abstract: {fit}/{count} fit {SUMMARY_LIMIT} characters, "
            f"{boundary}/{count} end on a sentence boundary, {both}/{count} = {both / count:.3f} do both.",
            "",
        ]
        stressed = [summarise(to_paper(r.record), limit=STRESS_LIMIT) for r in with_abstract]
        stress_ok = sum(len(s) <= STRESS_LIMIT and ends_sentence(s) for s in stressed)
        lines += [
            f"Stress test at {STRESS_LIMIT} characters: {stress_ok}/{count} = {stress_ok / count:.3f} fit and end "
            f"on a sentence boundary; {sum(s.endswith('…') for s in stressed)} cut with an ellipsis.",
            "",
        ]
    return lines


def misses(results: Sequence[Result]) -> list[str]:
    lines = ["## Misses", ""]
    for r in results:
        wrong = []
        if r.is_il2 != r.insight.is_il2:
            wrong.append(f"is_il2 {r.is_il2} -> {r.insight.is_il2}")
        if r.axis != r.insight.axis:
            wrong.append(f"axis {r.axis} -> {r.insight.axis}")
        if r.has_abstract and not r.summary_ok:
            wrong.append(f"summary ({len(r.insight.summary)} chars): {r.insight.summary}")
        if wrong:
            lines.append(f"- {r.record['pmid']} [{r.record.get('split', '')}] {r.record['title']}")
            lines += [f"    {w}" for w in wrong]
    return lines + [""]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--set", choices=("tuning", "test", "both"), default="both", help="which labelled set")
    parser.add_argument("--misses", action="store_true", help="list every wrong decision (tuning set only)")
    args = parser.parse_args(argv)
    if args.misses and args.set != "tuning":
        parser.error("--misses reads the tuning set only (--set tuning): the test set stays unread")
    out: list[str] = []
    for name in ("tuning", "test"):
        if args.set in (name, "both"):
            results = run(load_records(SETS[name]))
            out += report(results, f"{name.capitalize()} set")
            if args.misses:
                out += misses(results)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
