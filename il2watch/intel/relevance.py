"""A paper's relevance, 0-100, from the evidence il2watch holds, with one line per contribution.

The evidence: the paper cites the watched paper; PubMed ranks it similar (a near rank counts
more than a far one); it matches a watched query; the lexicon says it is about IL-2 or a
neighbouring cytokine and names known molecules; the channel voted Relevant / Not relevant.
Weights are round numbers so the explanation can be read and checked by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..markup import counted
from ..model import Insight, Reason

CITES = 35.0
SIMILAR_TOP = 25.0  # rank 1; halves by rank 11, a third by rank 21
SIMILAR_UNRANKED = 8.0
QUERY = 15.0
QUERY_CAP = 25.0
ABOUT_IL2 = 25.0
ABOUT_NEIGHBOUR = 10.0
PER_MOLECULE = 4.0
MOLECULE_CAP = 12.0
PER_RELEVANT_VOTE = 8.0
RELEVANT_CAP = 24.0
PER_NOT_RELEVANT_VOTE = 12.0
NOT_RELEVANT_CAP = 36.0


@dataclass(frozen=True)
class Relevance:
    score: float  # 0-100
    why: tuple[str, ...]  # "+35 cites the watched paper (watch review)", …


def _similar_points(reason: Reason) -> float:
    if reason.rank is None or reason.rank < 1:
        return SIMILAR_UNRANKED
    return SIMILAR_TOP / (1 + (reason.rank - 1) / 10)


def _points(value: float) -> str:
    return f"{value:+.1f}".rstrip("0").rstrip(".")


def score_relevance(
    reasons: Iterable[Reason],
    *,
    is_il2: bool,
    axis: str,
    molecules: Sequence[str] = (),
    feedback: tuple[int, int] = (0, 0),
) -> Relevance:
    """Add up the evidence; the total is clamped to 0-100 and rounded to one decimal."""
    reasons = list(reasons)
    parts: list[tuple[float, str]] = []
    cited = sorted({r.watch for r in reasons if r.kind == "cites"})
    if cited:
        parts.append((CITES, f"cites the watched paper (watch {', '.join(cited)})"))
    similar = [r for r in reasons if r.kind == "similar"]
    if similar:
        best = max(similar, key=_similar_points)
        detail = f"#{best.rank} of its similar articles" if best.rank and best.rank > 0 else "unranked"
        parts.append((_similar_points(best), f"PubMed lists it as similar ({detail}, watch {best.watch})"))
    queries = sorted({r.watch for r in reasons if r.kind == "query"})
    if queries:
        points = min(QUERY * len(queries), QUERY_CAP)
        parts.append((points, f"matches watched quer{'ies' if len(queries) > 1 else 'y'} {', '.join(queries)}"))
    if is_il2:
        parts.append((ABOUT_IL2, f"about IL-2 ({axis} axis)"))
    elif axis == "neighbour":
        parts.append((ABOUT_NEIGHBOUR, "about a neighbouring cytokine"))
    if molecules:
        points = min(PER_MOLECULE * len(molecules), MOLECULE_CAP)
        parts.append((points, f"names {', '.join(molecules)}"))
    relevant, not_relevant = feedback
    if relevant > 0:
        votes = f"{counted(relevant, 'Relevant vote')}"
        parts.append((min(PER_RELEVANT_VOTE * relevant, RELEVANT_CAP), votes))
    if not_relevant > 0:
        votes = counted(not_relevant, "Not relevant vote")
        parts.append((-min(PER_NOT_RELEVANT_VOTE * not_relevant, NOT_RELEVANT_CAP), votes))
    total = round(min(max(sum(points for points, _ in parts), 0.0), 100.0), 1)
    why = tuple(f"{_points(points)} {text}" for points, text in parts)
    return Relevance(score=total, why=why)


def hold_back(insight: Insight, reasons: Iterable[Reason], threshold: float) -> bool:
    """Whether to keep a weakly related paper out of the channel: only when every reason is
    "similar" and the relevance is below the threshold."""
    kinds = {r.kind for r in reasons}
    return kinds == {"similar"} and insight.relevance < threshold
