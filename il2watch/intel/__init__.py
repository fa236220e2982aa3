"""il2watch's domain intelligence: summaries, tags and relevance, as pure functions.

``analyse`` is the one call the rest of il2watch needs: a ``Paper`` and the reasons it was
found in, to an ``Insight`` (summary, axis, IL-2 or not, molecules, trials, flags, relevance
with its explanation). Nothing here touches the network unless the caller passes the
optional language-model summariser.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from ..markup import squash, to_plain
from ..model import Insight, Paper, Reason
from .lexicon import Lexicon, LexiconError, Molecule, load_lexicon
from .llm import ChatSummariser, Summariser, SummariserError, make_summariser, summary_with_fallback
from .relevance import Relevance, hold_back, score_relevance
from .sentences import ends_sentence, split_sentences
from .summary import DEFAULT_TOPIC_TERMS, SUMMARY_LIMIT, section_text, summarise
from .tags import (
    IL2_AXES,
    classify_axis,
    concerned_pmids,
    find_molecules,
    find_trials,
    il2_evidence,
    il2_prior,
    is_il2,
    is_notice,
    publication_flags,
    read_record,
    trial_url,
)

__all__ = [
    "DEFAULT_TOPIC_TERMS",
    "IL2_AXES",
    "SUMMARY_LIMIT",
    "ChatSummariser",
    "Lexicon",
    "LexiconError",
    "Molecule",
    "Relevance",
    "Summariser",
    "SummariserError",
    "analyse",
    "concerned_pmids",
    "default_lexicon",
    "ends_sentence",
    "find_molecules",
    "find_trials",
    "hold_back",
    "is_notice",
    "load_lexicon",
    "make_summariser",
    "publication_flags",
    "score_relevance",
    "split_sentences",
    "summarise",
    "trial_url",
]


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The packaged lexicon, read once."""
    return load_lexicon()


def analyse(
    paper: Paper,
    reasons: Iterable[Reason] = (),
    *,
    lexicon: Lexicon | None = None,
    feedback: tuple[int, int] = (0, 0),
    topic_terms: Iterable[str] = (),
    summariser: Summariser | None = None,
    concerned_axis: str = "",
) -> Insight:
    """Everything il2watch says about a paper.

    ``feedback`` is the channel's (Relevant, Not relevant) votes; ``topic_terms`` describe the
    watched paper's topic (empty: the review's); ``summariser`` is the optional language model;
    ``concerned_axis`` is the axis of the paper a notice (erratum, retraction) is about, when the
    library has that paper: the notice then takes it.
    """
    lexicon = default_lexicon() if lexicon is None else lexicon
    reasons = list(reasons)
    title = squash(to_plain(paper.title))
    abstract = section_text(paper.abstract)
    searchable = "\n".join([title, abstract, *paper.keywords])
    record = read_record(paper, title, abstract)
    evidence = il2_evidence(title, abstract, lexicon, record=record, prior=il2_prior(reasons, feedback))
    if record.is_notice and concerned_axis:
        axis = concerned_axis
        about_il2 = axis in IL2_AXES
    else:
        about_il2 = is_il2(evidence)
        axis = classify_axis(title, abstract, evidence, lexicon, record=record)
    molecules = find_molecules(f"{title}\n{abstract}", lexicon)
    extractive = summarise(paper, tuple(topic_terms) or DEFAULT_TOPIC_TERMS)
    summary = summary_with_fallback(summariser, paper, title, abstract, extractive)
    relevance = score_relevance(reasons, is_il2=about_il2, axis=axis, molecules=molecules, feedback=feedback)
    return Insight(
        summary=summary,
        axis=axis,
        is_il2=about_il2,
        molecules=molecules,
        trials=find_trials(searchable),
        flags=publication_flags(paper, title),
        relevance=relevance.score,
        relevance_why=relevance.why,
    )
