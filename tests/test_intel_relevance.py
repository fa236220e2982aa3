from il2watch.intel import analyse, hold_back, score_relevance
from il2watch.model import Insight, Paper, Reason, Section

CITES = Reason("review", "cites")
QUERY = Reason("lab-query", "query")


def similar(rank: int | None, score: int | None = None, watch: str = "review") -> Reason:
    return Reason(watch, "similar", score=score, rank=rank)


def relevance(reasons=(), *, is_il2=False, axis="other", molecules=(), feedback=(0, 0)) -> float:
    return score_relevance(reasons, is_il2=is_il2, axis=axis, molecules=molecules, feedback=feedback).score


def test_evidence_orders_papers_the_way_a_reader_would():
    ranked = [
        relevance([CITES, similar(1)], is_il2=True, axis="treg", molecules=("efavaleukin alfa",)),
        relevance([CITES], is_il2=True, axis="treg"),
        relevance([similar(1)], is_il2=True, axis="effector"),
        relevance([QUERY], is_il2=True, axis="biology"),
        relevance([similar(3)], axis="neighbour"),
        relevance([similar(2)]),
        relevance([similar(80)]),
    ]
    assert ranked == sorted(ranked, reverse=True)
    assert len(set(ranked)) == len(ranked)


def test_nearer_similar_rank_scores_higher_and_unranked_gets_a_floor():
    assert relevance([similar(1)]) == 25
    assert relevance([similar(11)]) == 12.5
    assert relevance([similar(1)]) > relevance([similar(5)]) > relevance([similar(50)]) > 0
    assert relevance([similar(None, score=123)]) == 8


def test_best_similar_reason_counts_once():
    assert relevance([similar(30, watch="a"), similar(1, watch="b")]) == relevance([similar(1)])


def test_feedback_moves_the_score_both_ways_within_caps():
    base = relevance([similar(1)], is_il2=True, axis="treg")
    assert relevance([similar(1)], is_il2=True, axis="treg", feedback=(1, 0)) == base + 8
    assert relevance([similar(1)], is_il2=True, axis="treg", feedback=(10, 0)) == base + 24
    assert relevance([similar(1)], is_il2=True, axis="treg", feedback=(0, 1)) == base - 12
    assert relevance([similar(1)], is_il2=True, axis="treg", feedback=(0, 10)) == base - 36
    assert relevance([similar(50)], feedback=(0, 1)) == 0  # clamped at 0
    # A channel that voted a weak paper Relevant lifts it above a stronger paper it voted down.
    weak_liked = relevance([similar(40)], feedback=(3, 0))
    strong_disliked = relevance([similar(1)], is_il2=True, axis="treg", feedback=(0, 2))
    assert weak_liked > strong_disliked


def test_score_is_clamped_to_100():
    everything = [CITES, similar(1), QUERY, Reason("q2", "query")]
    assert relevance(everything, is_il2=True, axis="treg", molecules=("a", "b", "c", "d"), feedback=(9, 0)) == 100


def test_explanation_has_one_line_per_contribution():
    result = score_relevance(
        [CITES, similar(2, score=31_000_000), QUERY],
        is_il2=True,
        axis="effector",
        molecules=("bempegaldesleukin", "nemvaleukin alfa"),
        feedback=(1, 1),
    )
    assert result.why == (
        "+35 cites the watched paper (watch review)",
        "+22.7 PubMed lists it as similar (#2 of its similar articles, watch review)",
        "+15 matches watched query lab-query",
        "+25 about IL-2 (effector axis)",
        "+8 names bempegaldesleukin, nemvaleukin alfa",
        "+8 1 Relevant vote",
        "-12 1 Not relevant vote",
    )
    assert 35 + 22.7 + 15 + 25 + 8 + 8 - 12 > 100
    assert result.score == 100


def test_analyse_carries_the_score_and_its_explanation():
    paper = Paper(
        pmid="1", title="Low-dose IL-2 in lupus", abstract=(Section("Low-dose IL-2 expanded Tregs in SLE patients."),)
    )
    insight = analyse(paper, [CITES], feedback=(2, 0))
    assert insight.relevance == 35 + 25 + 4 + 16
    assert insight.relevance_why[0] == "+35 cites the watched paper (watch review)"
    assert "+16 2 Relevant votes" in insight.relevance_why


def insight(relevance_score: float) -> Insight:
    return Insight(summary="s", relevance=relevance_score)


def test_hold_back_only_weak_papers_found_only_as_similar():
    assert hold_back(insight(10), [similar(40)], threshold=30) is True
    assert hold_back(insight(10), [similar(40), similar(2, watch="other")], threshold=30) is True
    assert hold_back(insight(30), [similar(40)], threshold=30) is False  # at the threshold: shown
    assert hold_back(insight(10), [similar(40), CITES], threshold=30) is False
    assert hold_back(insight(10), [QUERY], threshold=30) is False
    assert hold_back(insight(10), [], threshold=30) is False
    assert hold_back(insight(99), [similar(1)], threshold=0) is False
