"""The words people type and the other ways papers write them: for search and for ``/il2 tag``.

Every molecule in the lexicon brings all its names and codes ("bempeg" finds "bempegaldesleukin" and
"NKTR-214"); a short list of the field's own terms adds the rest ("treg" finds "regulatory T cells",
"IL-2" finds "interleukin-2" and, through the aldesleukin entry, "aldesleukin" and "Proleukin").
Words are compared without case, hyphens or spaces, and a plural "s" is forgiven.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .lexicon import Lexicon, LexiconError, Molecule, load_lexicon

log = logging.getLogger("il2watch.intel")

# (terms, names of lexicon molecules whose names and codes join them)
FIELD_TERMS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("IL-2", "IL2", "interleukin-2", "interleukin 2"), ("aldesleukin",)),
    (("Treg", "Tregs", "regulatory T cell", "regulatory T cells", "T regulatory cell", "Treg cell"), ()),
    (("CD25", "IL-2Rα", "IL-2Ralpha", "IL-2 receptor alpha", "IL2RA"), ()),
    (("CD122", "IL-2Rβ", "IL-2Rbeta", "IL-2 receptor beta", "IL2RB"), ()),
    (("NK cell", "NK cells", "natural killer cell", "natural killer cells"), ()),
    (("GVHD", "graft-versus-host disease", "graft-versus-host"), ()),
    (("SLE", "systemic lupus erythematosus"), ()),
    (("T1D", "type 1 diabetes"), ()),
    (("CAR T", "CAR-T", "chimeric antigen receptor T cell", "chimeric antigen receptor T cells"), ()),
    (("RCC", "renal cell carcinoma"), ()),
    (("low-dose IL-2", "low-dose interleukin-2", "LD-IL-2"), ("low-dose IL-2",)),
)
LONGEST = 5  # words in the longest term looked up as one


def word_key(text: str) -> str:
    """How terms are compared: no case, no hyphens or spaces, Greek letters as typed either way."""
    key = re.sub(r"[\s\-‐-―_]+", "", text.casefold()).replace("α", "alpha").replace("β", "beta")
    return key[:-1] if len(key) > 3 and key.endswith("s") and not key.endswith("ss") else key


_CODE = re.compile(r"[A-Z][A-Z0-9]*[-\s](\d+)")  # "NKTR-214", "AMG 592", "IL-2"


def _spellings(term: str) -> tuple[str, ...]:
    """A code name as papers write it, "NKTR-214" and "NKTR214" (the index reads "NKTR 214" as the first)."""
    if _CODE.fullmatch(term):
        return term, re.sub(r"[-\s]", "", term)
    return (term,)


@dataclass(frozen=True)
class Group:
    """Terms that mean the same, and further terms a search for them also finds (not the other way
    round: "IL-2" finds "aldesleukin", "aldesleukin" does not find every IL-2 paper)."""

    terms: tuple[str, ...]
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class Synonyms:
    """The groups, and each molecule by every way of writing it."""

    groups: tuple[Group, ...] = ()
    molecules: dict[str, Molecule] = field(default_factory=dict)  # word_key(term) -> molecule

    def expand(self, words: str) -> tuple[str, ...]:
        """Every way of writing ``words`` (itself first), or () when il2watch knows no other."""
        key = word_key(words)
        for group in self.groups:
            if key in {word_key(term) for term in group.terms}:
                # "IL2" and "IL-2" are one key here but different words to the search index: keep both
                others = [term for term in (*group.terms, *group.also) if term.casefold() != words.casefold()]
                return tuple(dict.fromkeys([words, *others]))
        return ()

    def molecule_matches(self, text: str, names: Iterable[str] = ()) -> list[Molecule]:
        """The molecules ``text`` names by any of their names or codes, or, failing that, those one of
        whose names starts with it; ``names`` (canonical names, e.g. those in the library) join the search."""
        key = word_key(text)
        if not key:
            return []
        extra = {word_key(name): Molecule(name=name) for name in names if word_key(name) not in self.molecules}
        everything = {**self.molecules, **extra}
        if key in everything:
            return [everything[key]]
        found: dict[str, Molecule] = {}
        for term, molecule in everything.items():
            if term.startswith(key):
                found.setdefault(molecule.name.casefold(), molecule)
        return list(found.values())


def _all_spellings(molecule: Molecule) -> tuple[str, ...]:
    return tuple(dict.fromkeys(spelling for term in molecule.terms for spelling in _spellings(term)))


def synonyms_from(lexicon: Lexicon) -> Synonyms:
    """The field's terms first, then the lexicon's molecules, each with all its names, as groups."""
    groups: list[Group] = []
    for terms, joined in FIELD_TERMS:
        also = [s for name in joined if (m := lexicon.molecule(name)) is not None for s in _all_spellings(m)]
        groups.append(Group(terms, tuple(dict.fromkeys(also))))
    molecules: dict[str, Molecule] = {}
    for molecule in lexicon.molecules:
        spellings = _all_spellings(molecule)
        groups.append(Group(spellings))
        for term in spellings:
            molecules.setdefault(word_key(term), molecule)
    return Synonyms(tuple(groups), molecules)


@lru_cache(maxsize=8)
def synonyms_for(paths: Sequence[Path | str] = ()) -> Synonyms:
    """Synonyms from the packaged lexicon and the user's files (those that exist). A broken user file
    is reported by every poll; search then uses the packaged lexicon alone."""
    try:
        return synonyms_from(load_lexicon([p for p in paths if Path(p).is_file()]))
    except LexiconError as error:
        log.warning("search uses the packaged lexicon only: %s", error)
        return synonyms_from(load_lexicon())
