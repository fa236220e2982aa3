"""Extractive TL;DR: one or two whole sentences from the abstract, at most 300 characters.

Structured abstracts say what they found in their conclusions, so the summary is the
conclusion's leading sentence, with the key result in front of it when both fit.
Unstructured abstracts are scored sentence by sentence: position (findings come late,
background early), cue phrases ("we show", "these results"), and overlap with the watched
paper's topic. Sentences keep their order in the abstract, so hedges ("these findings
suggest…") still follow what they refer to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ..markup import squash, to_plain
from ..model import Paper, Section
from .sentences import ends_sentence, split_sentences

SUMMARY_LIMIT = 300
# How much of an abstract is read for its summary, tags, trials and the language model. A long real
# abstract is a few thousand characters, so none comes near; a longer one (a broken or hostile source)
# is read up to here and the rest is not analysed (it is still stored, exported and shown in a thread
# as it is). Analysing this much takes a small fraction of a second, so one record cannot hold up a
# poll or Slack's 3-second ack.
ANALYSED_CHARACTERS = 20_000
# Asides dropped from one sentence to make it fit: real sentences need a few; a sentence that would
# need more (brackets nested hundreds deep) is not a summary, and each drop costs a pass over it.
MAX_ASIDES_DROPPED = 30
# The review's topic: engineered IL-2 for autoimmunity and cancer.
DEFAULT_TOPIC_TERMS = (
    "IL-2",
    "interleukin-2",
    "Treg",
    "regulatory T",
    "CD25",
    "CD122",
    "IL-2R",
    "mutein",
    "engineer",
    "immunotherapy",
    "autoimmun",
    "cancer",
    "tumour",
    "tumor",
    "effector",
    "CD8",
    "NK cell",
    "selectiv",
    "receptor",
    "low-dose",
    "agonist",
)

_CONCLUSION_LABEL = re.compile(r"conclu|interpret|significance|implication|summary|discussion", re.I)
_RESULT_LABEL = re.compile(r"result|finding|outcome", re.I)
_SKIPPED_LABEL = re.compile(r"registration|funding|keyword|abbreviation|copyright|disclosure|conflict", re.I)
_INLINE_LABEL = re.compile(r"^[A-Z][A-Z /&-]{2,40}:\s+")

_FINDING_CUES = re.compile(
    r"\b(?:we (?:show|found|find|demonstrate|report|identif(?:y|ied)|conclude|propose|reveal)|"
    r"(?:these|our) (?:results|findings|data|observations|studies)|in conclusion|taken together|"
    r"collectively|thus,|therefore,|this study (?:shows|demonstrates)|"
    r"(?:indicate|suggest|show|demonstrate|reveal|establish)s? that|provide[sd]? evidence|"
    r"support(?:s|ed)? (?:the|a|further)|is (?:a|an) (?:promising|candidate|potential)|"
    r"warrant|deserves?)",
    re.I,
)
_METHOD_CUES = re.compile(
    r"\b(?:we (?:performed|used|conducted|analy[sz]ed|examined|asked|tested|generated|measured|"
    r"compared|engineered|designed|treated|randomi[sz]ed|screened|reviewed|profiled|recorded|"
    r"built|developed|delivered|fused|linked|conjugated|transduced|expanded|vaccinated|pooled|"
    r"determined|mapped|tracked|identified genes)|were (?:randomi[sz]ed|enrolled|assigned|included)|"
    r"underwent randomi[sz]ation|a total of|received (?:a|an|subcutaneous|intravenous|daily|weekly|"
    r"low|high|oral|single|four|two|three)|in this (?:phase|study|trial|randomi[sz]ed))",
    re.I,
)
_BACKGROUND_CUES = re.compile(
    r"\b(?:remains?|little is known|(?:is|are) limited|is unclear|poorly understood|"
    r"controversial|has been|have been|was unknown|is unknown|however|is associated with|"
    r"is essential|are needed|is required for)\b",
    re.I,
)
_RESULT_SIGNS = re.compile(
    r"\d\s*%|\bp\s*[<=≤]|hazard ratio|odds ratio|\bHR\b|\bCI\b|response rate|"
    r"\b(?:increased|reduced|decreased|improved|expanded|prolonged|lower|higher|did not|was not|"
    r"were not|failed|superior|inferior|fold)\b",
    re.I,
)
_LEADING_CONNECTIVE = re.compile(
    r"^(?:thus|therefore|hence|in conclusion|in summary|to conclude|taken together|together|"
    r"collectively|overall|consequently),\s+",
    re.I,
)
# Openings that point back to a sentence the summary may leave out.
_ANAPHORA = re.compile(
    r"(?:it|its|this|they|their|these|those|such)\s+(?!results|findings|data|observations|studies)", re.I
)
_PARENTHETICAL = re.compile(r"\s?(?:\([^()]*\)|\[[^\[\]]*\])")


@dataclass(frozen=True)
class _Sentence:
    text: str
    index: int  # position in the whole abstract, for keeping order
    score: float


def analysed(sections: Iterable[Section]) -> list[Section]:
    """The sections as far as they are analysed: the first ``ANALYSED_CHARACTERS`` of their text."""
    out, budget = [], ANALYSED_CHARACTERS
    for section in sections:
        if budget <= 0:
            break
        out.append(section if len(section.text) <= budget else replace(section, text=section.text[:budget]))
        budget -= len(section.text)
    return out


def _plain_sections(paper: Paper) -> list[tuple[str, str]]:
    """(kind, plain text) per section; kind is 'conclusion', 'result' or ''."""
    out = []
    for section in analysed(paper.abstract):
        if section.label and _SKIPPED_LABEL.search(section.label):
            continue
        text = squash(to_plain(section.text))
        if not text:
            continue
        names = f"{section.category} {section.label}"
        kind = "conclusion" if _CONCLUSION_LABEL.search(names) else "result" if _RESULT_LABEL.search(names) else ""
        out.append((kind, text))
    return out


def _topic_overlap(sentence: str, topic_terms: Sequence[str]) -> int:
    lowered = sentence.casefold()
    return sum(term.casefold() in lowered for term in topic_terms)


def _score(sentence: str, index: int, count: int, topic_terms: Sequence[str]) -> float:
    score = 0.0
    if _FINDING_CUES.search(sentence):
        score += 3
    if _METHOD_CUES.search(sentence):
        score -= 1.5
    if _BACKGROUND_CUES.search(sentence):
        score -= 1.5
    if count > 2:
        if index == count - 1:
            score += 1.5
        elif index == count - 2:
            score += 0.5
        elif index == 0:  # an unstructured abstract opens with background
            score -= 2
    if _RESULT_SIGNS.search(sentence):
        score += 1
    score += min(_topic_overlap(sentence, topic_terms), 4) * 0.5
    if len(sentence) < 50:
        score -= 1
    if _ANAPHORA.match(sentence):
        score -= 1
    return score


def _result_score(sentence: str, leading: bool, topic_terms: Sequence[str]) -> float:
    score = 1.0 if _RESULT_SIGNS.search(sentence) else 0.0
    score += min(_topic_overlap(sentence, topic_terms), 3) * 0.5
    if _METHOD_CUES.search(sentence):
        score -= 2
    if _ANAPHORA.match(sentence):
        score -= 1
    if leading:  # results sections open with the primary outcome
        score += 0.5
    return score


def shorten(sentence: str, limit: int = SUMMARY_LIMIT) -> str:
    """A sentence within the limit without losing its ending: parenthetical asides go first
    (longest first, at most ``MAX_ASIDES_DROPPED``), then anything after a semicolon. May still be too long."""
    text = sentence
    for _ in range(MAX_ASIDES_DROPPED):
        if len(text) <= limit:
            break
        aside = max(_PARENTHETICAL.finditer(text), key=lambda m: len(m.group()), default=None)  # the first longest
        if aside is None:
            break
        text = text[: aside.start()] + text[aside.end() :]
        text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    if len(text) > limit and ";" in text:
        head = text.split(";", 1)[0].rstrip()
        if len(head) >= 40:
            text = head + "."
    return text


def _tidy_opening(text: str) -> str:
    stripped = _LEADING_CONNECTIVE.sub("", text)
    if stripped != text and stripped[:1].islower() and stripped[1:2].islower():
        stripped = stripped[0].upper() + stripped[1:]
    return stripped


def _finish(sentence: str) -> str:
    return sentence if ends_sentence(sentence) else sentence.rstrip(" ,;:") + "."


def _truncate(text: str, limit: int) -> str:
    """Last resort when no sentence fits: cut at a word boundary and say so with an ellipsis."""
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:")
    return cut + "…"


def _compose(main: _Sentence, extra: _Sentence | None) -> str:
    chosen = sorted([s for s in (main, extra) if s is not None], key=lambda s: s.index)
    parts = [_finish(s.text) for s in chosen]
    parts[0] = _tidy_opening(parts[0])
    return " ".join(parts)


def _fits(sentence: str, limit: int) -> str | None:
    text = sentence if len(sentence) <= limit else shorten(sentence, limit)
    text = _finish(text)
    return text if len(text) <= limit else None


def no_abstract_summary(paper: Paper) -> str:
    """Said plainly, with what the record is instead (PubMed named only for a record that came from it)."""
    missing = "No abstract in PubMed." if paper.pmid else "No abstract in the record."
    if paper.is_book:
        return f"{missing} Publication type: book chapter."
    types = [t for t in paper.pub_types if t != "Journal Article"] or list(paper.pub_types) or ["Journal Article"]
    return f"{missing} Publication type: {', '.join(types)}."[:SUMMARY_LIMIT]


def summarise(paper: Paper, topic_terms: Iterable[str] = DEFAULT_TOPIC_TERMS, *, limit: int = SUMMARY_LIMIT) -> str:
    """The TL;DR of a paper: whole sentences of its abstract, at most ``limit`` characters."""
    terms = tuple(topic_terms) or DEFAULT_TOPIC_TERMS
    sections = _plain_sections(paper)
    if not sections:
        return no_abstract_summary(paper)
    sentences: list[tuple[str, str]] = []  # (section kind, sentence)
    for kind, text in sections:
        for sentence in split_sentences(text):
            sentence = _INLINE_LABEL.sub("", sentence).strip()
            if sentence:
                sentences.append((kind, sentence))
    if not sentences:
        return no_abstract_summary(paper)

    count = len(sentences)
    conclusions = [(i, s) for i, (kind, s) in enumerate(sentences) if kind == "conclusion"]
    if conclusions:
        # The conclusion's first sentence usually states the finding; results give the evidence.
        first = conclusions[0][0]
        candidates = [_Sentence(s, i, _score(s, i, count, terms) + 1.5 * (i == first)) for i, s in conclusions]
        results = [(i, s) for i, (kind, s) in enumerate(sentences) if kind == "result"]
        supports = [_Sentence(s, i, _result_score(s, i == results[0][0], terms)) for i, s in results]
    else:
        candidates = [_Sentence(s, i, _score(s, i, count, terms)) for i, (_, s) in enumerate(sentences)]
        supports = [c for c in candidates if c.score >= 1.0]
    ranked = _fitting(candidates, limit)
    if not ranked:
        best = max(candidates, key=lambda c: (c.score, -c.index))
        return _truncate(_tidy_opening(best.text), limit)
    main = ranked[0]
    extra = next(
        (s for s in _fitting(supports, limit) if s.index != main.index and len(main.text) + 1 + len(s.text) <= limit),
        None,
    )
    return _compose(main, extra)


def _fitting(candidates: list[_Sentence], limit: int) -> list[_Sentence]:
    """Candidates that fit the limit (shortened if need be), best first."""
    out = []
    for candidate in sorted(candidates, key=lambda c: (-c.score, c.index)):
        fitted = _fits(candidate.text, limit)
        if fitted is not None:
            out.append(_Sentence(fitted, candidate.index, candidate.score))
    return out


def section_text(sections: Iterable[Section]) -> str:
    """An abstract as one plain-text block, labels kept, for models and keyword matching (as far as it is
    analysed)."""
    parts = []
    for section in analysed(sections):
        text = squash(to_plain(section.text))
        if text:
            parts.append(f"{section.label}: {text}" if section.label else text)
    return "\n".join(parts)
