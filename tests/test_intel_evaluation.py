"""The labelled evaluation set as a regression guard, and the one-command evaluation."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from il2watch.intel import SUMMARY_LIMIT
from il2watch.model import AXES

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("intel_evaluate", ROOT / "benchmarks" / "evaluate.py")
evaluate = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = evaluate  # dataclasses look their module up while the script loads
_spec.loader.exec_module(evaluate)


@pytest.fixture(scope="module")
def results():
    return evaluate.run(evaluate.load_records())


def test_the_set_is_large_enough_and_labelled_consistently():
    records = evaluate.load_records()
    assert len(records) >= 150
    assert len({r["pmid"] for r in records}) == len(records)
    assert {r["split"] for r in records} == {"dev", "heldout"}
    for record in records:
        labels = record["labels"]
        assert labels["axis"] in AXES
        assert labels["is_il2"] == (labels["axis"] in ("treg", "effector", "biology"))
    hard = {r["hard_negative"] for r in records if r["hard_negative"]}
    assert {"other interleukin", "author named like an IL-2 researcher", "IL-2 in passing"} <= hard


def test_every_insight_is_well_formed(results):
    for result in results:
        insight = result.insight
        assert insight.summary and len(insight.summary) <= SUMMARY_LIMIT
        assert insight.axis in AXES
        assert insight.is_il2 == (insight.axis in ("treg", "effector", "biology"))
        assert 0 <= insight.relevance <= 100


@pytest.mark.parametrize(("split", "floor"), [("dev", 0.95), ("heldout", 0.9)])
def test_decisions_stay_above_their_floor(results, split, floor):
    part = [r for r in results if r.record["split"] == split]
    il2 = evaluate.binary_scores((r.truth["is_il2"], r.insight.is_il2) for r in part)
    assert il2.precision >= floor and il2.recall >= floor
    axis_accuracy = sum(r.truth["axis"] == r.insight.axis for r in part) / len(part)
    assert axis_accuracy >= floor
    with_abstract = [r for r in part if r.has_abstract]
    assert sum(r.summary_ok for r in with_abstract) / len(with_abstract) >= 0.95


def test_hard_negatives_stay_out_of_il2(results):
    for result in results:
        if result.record["hard_negative"] in (
            "other interleukin",
            "author named like an IL-2 researcher",
            "IL-2 in passing",
        ):
            assert not result.insight.is_il2, result.record["title"]


def test_binary_scores():
    scores = evaluate.binary_scores([(True, True), (True, False), (False, True), (False, False), (True, True)])
    assert (scores.true_positive, scores.false_positive, scores.false_negative) == (2, 1, 1)
    assert scores.precision == pytest.approx(2 / 3) and scores.recall == pytest.approx(2 / 3)
    assert evaluate.binary_scores([]).precision == 1.0


def test_one_command_prints_the_figures():
    done = subprocess.run(
        [sys.executable, "benchmarks/evaluate.py"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert "## All records: " in done.stdout
    assert "| IL-2 / not IL-2 |" in done.stdout
    assert "end on a sentence boundary" in done.stdout
