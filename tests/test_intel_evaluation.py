"""The labelled sets as a regression guard, and the one-command evaluation.

The tuning set is what the rules were adjusted on; its floors are high. The blind test set is only
ever scored as a whole, never listed: its floors sit a little below the figures of its first run,
published in docs/evaluation.md.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from il2watch.intel import IL2_AXES, SUMMARY_LIMIT
from il2watch.model import AXES

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("intel_evaluate", ROOT / "benchmarks" / "evaluate.py")
evaluate = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = evaluate  # dataclasses look their module up while the script loads
_spec.loader.exec_module(evaluate)


@pytest.fixture(scope="module")
def tuning():
    return evaluate.run(evaluate.load_records(evaluate.SETS["tuning"]))


def test_the_tuning_set_is_large_varied_and_labelled_consistently():
    records = evaluate.load_records(evaluate.SETS["tuning"])
    assert len(records) >= 300
    assert len({r["pmid"] for r in records}) == len(records)
    for record in records:
        labels = record["labels"]
        assert labels["axis"] in AXES
        assert labels["is_il2"] == (labels["axis"] in IL2_AXES)
        assert isinstance(record["keywords"], list) and isinstance(record["mesh"], list)
        assert isinstance(record["cites_review"], bool)
    assert {r["labels"]["axis"] for r in records} == set(AXES)
    hard = {r["hard_negative"] for r in records if r["hard_negative"]}
    assert {"other interleukin", "author named like an IL-2 researcher", "IL-2 in passing"} <= hard
    results = evaluate.run(records)
    assert sum(r.is_short for r in results) >= len(records) / 3  # title only or title and two sentences
    assert sum(bool(r["mesh"]) for r in records) >= 10 and sum(bool(r["keywords"]) for r in records) >= 10
    assert sum(r["cites_review"] for r in records) >= 20


def test_every_insight_is_well_formed(tuning):
    for result in tuning:
        insight = result.insight
        assert insight.summary and len(insight.summary) <= SUMMARY_LIMIT
        assert insight.axis in AXES
        assert insight.is_il2 == (insight.axis in IL2_AXES)
        assert 0 <= insight.relevance <= 100


def test_tuning_decisions_stay_above_their_floor(tuning):
    il2 = evaluate.binary_scores((r.is_il2, r.insight.is_il2) for r in tuning)
    assert il2.precision >= 0.97 and il2.recall >= 0.97
    assert evaluate.axis_accuracy(tuning) >= 0.95
    short = [r for r in tuning if r.is_short]
    assert evaluate.axis_accuracy(short) >= 0.93
    with_abstract = [r for r in tuning if r.has_abstract]
    assert sum(r.summary_ok for r in with_abstract) / len(with_abstract) >= 0.95


def test_hard_negatives_stay_out_of_il2(tuning):
    for result in tuning:
        if result.record["hard_negative"] in ("other interleukin", "author named like an IL-2 researcher"):
            assert not result.insight.is_il2, result.record["title"]


def test_binary_scores():
    scores = evaluate.binary_scores([(True, True), (True, False), (False, True), (False, False), (True, True)])
    assert (scores.true_positive, scores.false_positive, scores.false_negative) == (2, 1, 1)
    assert scores.precision == pytest.approx(2 / 3) and scores.recall == pytest.approx(2 / 3)
    assert evaluate.binary_scores([]).precision == 1.0


def test_misses_are_listed_for_the_tuning_set_only():
    with pytest.raises(SystemExit):
        evaluate.main(["--set", "test", "--misses"])
    with pytest.raises(SystemExit):
        evaluate.main(["--misses"])


@pytest.fixture(scope="module")
def blind():
    """The test set, scored as a whole (its records are never listed)."""
    return evaluate.run(evaluate.load_records(evaluate.SETS["test"]))


def test_the_blind_test_set_stays_near_its_first_run(blind):
    # First run, commit c4ccabb (docs/evaluation.md): IL-2 P 0.957 R 0.985, axis 0.937; short records
    # IL-2 P 0.898 R 0.978, axis 0.893. The floors sit a little below.
    assert len(blind) == 223
    il2 = evaluate.binary_scores((r.is_il2, r.insight.is_il2) for r in blind)
    assert il2.precision >= 0.94 and il2.recall >= 0.97
    assert evaluate.axis_accuracy(blind) >= 0.92
    short = [r for r in blind if r.is_short]
    short_il2 = evaluate.binary_scores((r.is_il2, r.insight.is_il2) for r in short)
    assert short_il2.precision >= 0.87 and short_il2.recall >= 0.95
    assert evaluate.axis_accuracy(short) >= 0.87


def test_one_command_prints_both_sets():
    done = subprocess.run(
        [sys.executable, "benchmarks/evaluate.py"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert "## Tuning set: " in done.stdout and "## Test set: 223 records" in done.stdout
    assert done.stdout.count("| label \\ tagged |") == 2 and "| IL-2 / not IL-2 |" in done.stdout
    assert "end on a sentence boundary" in done.stdout
    assert "## Misses" not in done.stdout
