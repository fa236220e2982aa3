"""Sentence splitting that survives biomedical abstracts.

A full stop in an abstract is often not the end of a sentence: "et al.", "e.g.", "vs.",
"Fig. 2", "approx. 30%", "P=0.046", "E. coli". A sentence can also begin with a Greek letter
("γδ T cells…") or a lower-case gene name ("mRNA levels…"). The splitter only cuts where a
stop is followed by space and something that can start a sentence, never inside balanced
parentheses or brackets, and never after a known abbreviation.
"""

from __future__ import annotations

import re

from ..markup import squash

# Words that end in a full stop without ending the sentence (compared lower-case, no dot).
ABBREVIATIONS = frozenset(
    {
        "al",
        "e.g",
        "i.e",
        "eg",
        "ie",
        "vs",
        "v",
        "cf",
        "ca",
        "approx",
        "fig",
        "figs",
        "ref",
        "refs",
        "resp",
        "incl",
        "viz",
        "dr",
        "prof",
        "sp",
        "spp",
        "subsp",
        "var",
        "ed",
        "eds",
        "vol",
        "suppl",
        "eq",
        "eqs",
        "ext",
        "dept",
        "univ",
        "st",
        "mt",
        "jr",
        "sr",
    }
)
# Abbreviations that only hold when a number follows ("No. 5", "p. 12"), since "no." and
# "p." can also end a sentence.
NUMBER_ABBREVIATIONS = frozenset({"no", "nos", "p", "pp", "n"})

# A run of stops (and the quotes or brackets closing it) before a space. The run is taken whole and
# never given back, and only from its first character, so a text of a million dots costs one pass.
_STOP = re.compile(r"(?<![.!?])[.!?]++[\"'”’)\]]*+(?= )")
_DOTTED_INITIALS = re.compile(r"^(?:[A-Za-z]\.)+[A-Za-z]$")  # "U.S", "e.g", "a.m"
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {closer: opener for opener, closer in _OPENERS.items()}
_BRACKET = re.compile(r"[()\[\]{}]")
_GREEK = re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]")
_LOWER_CODE = re.compile(r"[a-z]+[A-Z0-9]")  # mRNA, p53, iNKT, siRNA, eGFR
_ENDS = re.compile(r"[.!?][\"'”’)\]]*$")


def _protected(text: str) -> list[tuple[int, int]]:
    """The stretches inside balanced (), [] or {}, as sorted, disjoint (start, end) index ranges;
    unbalanced brackets protect nothing.

    A closer closes the nearest opener of its kind; openers left open in between were stray. Each
    bracket is pushed and popped once and each stretch swallows the ones nested in it once, so the
    work is linear in the text's length however deep or broken the brackets are.
    """
    stack: list[tuple[str, int]] = []  # open brackets, innermost last
    open_of_kind = {opener: 0 for opener in _OPENERS}  # how many of each kind are on the stack
    stretches: list[tuple[int, int]] = []
    for bracket in _BRACKET.finditer(text):
        i, ch = bracket.start(), bracket.group()
        if ch in _OPENERS:
            stack.append((ch, i))
            open_of_kind[ch] += 1
        elif open_of_kind[_CLOSERS[ch]]:
            while True:
                opener, start = stack.pop()
                open_of_kind[opener] -= 1
                if opener == _CLOSERS[ch]:
                    break
            while stretches and stretches[-1][0] > start:  # nested in this one
                stretches.pop()
            if start + 1 < i:
                stretches.append((start + 1, i))
    return stretches


def _can_start_sentence(text: str, at: int) -> bool:
    """Whether what follows position ``at`` can begin a sentence."""
    if at >= len(text):
        return False
    first = text[at]
    if first.isupper() or first.isdigit() or first in "([{\"'“‘" or _GREEK.match(first):
        return True
    return bool(_LOWER_CODE.match(text, at))


def _last_word(text: str, start: int, end: int) -> str:
    """The last word of ``text[start:end]``: once squashed, words are separated by single spaces."""
    if end > start and text[end - 1] == " ":
        end -= 1
    return text[max(text.rfind(" ", start, end) + 1, start) : end]


def _is_abbreviation(word: str, next_char: str) -> bool:
    """Whether the word ending at this stop is an abbreviation rather than a sentence end."""
    if not word:
        return True
    word = word.lstrip("([{\"'“‘").rstrip(".")
    lowered = word.lower()
    if lowered in ABBREVIATIONS or _DOTTED_INITIALS.match(word):
        return True
    return lowered in NUMBER_ABBREVIATIONS and next_char.isdigit()


def split_sentences(text: str) -> list[str]:
    """The sentences of a plain-text paragraph, whitespace squashed, in order.

    Linear in the text's length: every stop is judged by the word before it and the character after
    it, never by copying what comes before or after.
    """
    text = squash(text)
    if not text:
        return []
    stretches = iter(_protected(text))
    stretch = next(stretches, None)
    sentences: list[str] = []
    start = 0
    for match in _STOP.finditer(text):
        stop = match.start()
        while stretch is not None and stretch[1] <= stop:
            stretch = next(stretches, None)
        if stretch is not None and stretch[0] <= stop:
            continue  # inside brackets
        after = match.end() + 1  # squashed: one space, then the next word
        if not _can_start_sentence(text, after):
            continue
        if match.group().startswith(".") and _is_abbreviation(_last_word(text, start, stop), text[after]):
            continue
        sentences.append(text[start : match.end()].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def ends_sentence(text: str) -> bool:
    """True when text ends on a sentence boundary: a stop, maybe followed by a closing quote or bracket."""
    return bool(_ENDS.search(text.rstrip()))
