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

_STOP = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)")
_DOTTED_INITIALS = re.compile(r"^(?:[A-Za-z]\.)+[A-Za-z]$")  # "U.S", "e.g", "a.m"
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_GREEK = re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]")
_LOWER_CODE = re.compile(r"[a-z]+[A-Z0-9]")  # mRNA, p53, iNKT, siRNA, eGFR
_ENDS = re.compile(r"[.!?][\"'”’)\]]*$")


def _protected(text: str) -> list[bool]:
    """Positions inside balanced (), [] or {}; unbalanced brackets protect nothing."""
    inside = [False] * len(text)
    stack: list[tuple[str, int]] = []
    for i, ch in enumerate(text):
        if ch in _OPENERS:
            stack.append((_OPENERS[ch], i))
        elif ch in _OPENERS.values():
            # Close the nearest matching opener; openers left open in between were stray.
            for depth in range(len(stack) - 1, -1, -1):
                if stack[depth][0] == ch:
                    start = stack[depth][1]
                    for j in range(start + 1, i):
                        inside[j] = True
                    del stack[depth:]
                    break
    return inside


def _can_start_sentence(rest: str) -> bool:
    if not rest:
        return False
    first = rest[0]
    if first.isupper() or first.isdigit() or first in "([{\"'“‘" or _GREEK.match(first):
        return True
    return bool(_LOWER_CODE.match(rest))


def _is_abbreviation(before: str, rest: str) -> bool:
    """Whether the word ending at this stop is an abbreviation rather than a sentence end."""
    words = before.split()
    if not words:
        return True
    word = words[-1].lstrip("([{\"'“‘").rstrip(".")
    lowered = word.lower()
    if lowered in ABBREVIATIONS or _DOTTED_INITIALS.match(word):
        return True
    return lowered in NUMBER_ABBREVIATIONS and rest[:1].isdigit()


def split_sentences(text: str) -> list[str]:
    """The sentences of a plain-text paragraph, whitespace squashed, in order."""
    text = squash(text)
    if not text:
        return []
    inside = _protected(text)
    sentences: list[str] = []
    start = 0
    for match in _STOP.finditer(text):
        if inside[match.start()]:
            continue
        rest = text[match.end() :].lstrip()
        if not _can_start_sentence(rest):
            continue
        if match.group().startswith(".") and _is_abbreviation(text[start : match.start()], rest):
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
