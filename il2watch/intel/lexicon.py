"""The molecule lexicon and axis cue phrases, loaded from TOML files users can extend.

The packaged default (``il2watch/defaults/lexicon.toml``) holds the molecules of the
engineered-IL-2 field; a user file (``config/lexicon.toml``) is merged on top of it. Terms are
matched case-insensitively on word boundaries, and a hyphen or space inside a term also
matches no separator at all, so "NKTR-214" finds "NKTR214", "NKTR 214" and "nktr-214".
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

KINDS = ("il2", "neighbour")
# The axis a molecule leans to; "" when it can go either way (e.g. aldesleukin by dose).
MOLECULE_AXES = ("treg", "effector", "biology", "neighbour", "")
CUE_AXES = ("treg", "effector", "biology", "neighbour", "therapy")

# Hyphen-like characters PubMed text uses; all are read as "-" before matching.
_HYPHENS = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2212\u00ad"), "-")
_EDGE_BEFORE = r"(?<![A-Za-z0-9])"
_EDGE_AFTER = r"(?![A-Za-z0-9])"
_SEPARATOR = r"[-\s]?"
_CODE_PIECES = re.compile(r"[A-Za-z]+|[0-9]+|[-\s]+|.", re.UNICODE)


class LexiconError(ValueError):
    """A lexicon file that cannot be used, with the file and entry named."""


def normalise(text: str) -> str:
    """Text as the matchers read it: every hyphen-like character turned into '-'."""
    return text.translate(_HYPHENS)


def term_pattern(term: str) -> str:
    """A regex for one term: separators optional, letter/digit runs may be joined or split.

    A trailing '*' makes the term a prefix ("autoimmun*" finds "autoimmunity").
    """
    prefix = term.endswith("*")
    pieces: list[str] = []
    previous = ""
    for piece in _CODE_PIECES.findall(normalise(term.rstrip("*").strip())):
        if piece.isspace() or set(piece) <= {"-", " "}:
            pieces.append(_SEPARATOR)
            previous = ""
            continue
        # A code name written "AMG592" should also find "AMG 592": allow a separator at each
        # letter/digit switch when the term itself has none.
        if previous and previous[-1].isalpha() != piece[0].isalpha() and pieces[-1] != _SEPARATOR:
            pieces.append(_SEPARATOR)
        pieces.append(re.escape(piece))
        previous = piece
    body = "".join(pieces)
    return _EDGE_BEFORE + body + (r"\w*" if prefix else _EDGE_AFTER)


def _alternation(terms: Iterable[str]) -> str:
    """Terms as one alternation behind a single word-edge look-behind: the same matches as one
    look-behind per term, but the regex engine tests the edge once per position instead of per term."""
    return "(?:" + "|".join(term_pattern(t)[len(_EDGE_BEFORE) :] for t in terms) + ")"


@dataclass(frozen=True)
class Molecule:
    """A named agent: its canonical name, the other ways papers write it, and where it leans."""

    name: str
    kind: str = "il2"  # "il2" (an IL-2 agent) or "neighbour" (a neighbouring cytokine's agent)
    axis: str = ""  # the axis it leans to, "" when it can go either way
    codes: tuple[str, ...] = ()  # development code names, e.g. "NKTR-214"
    synonyms: tuple[str, ...] = ()  # other names, brand names, descriptive names

    @property
    def terms(self) -> tuple[str, ...]:
        return (self.name, *self.codes, *self.synonyms)


@dataclass(frozen=True)
class Lexicon:
    """Molecules and cue phrases, with their compiled matchers."""

    molecules: tuple[Molecule, ...] = ()
    cues: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @cached_property
    def _molecule_matcher(self) -> tuple[re.Pattern[str], dict[str, Molecule]]:
        groups: dict[str, Molecule] = {}
        alternatives: list[str] = []
        for index, molecule in enumerate(self.molecules):
            # Longest terms first, so "low-dose IL-2" wins over a shorter overlapping term.
            terms = sorted(set(molecule.terms), key=len, reverse=True)
            name = f"m{index}"
            groups[name] = molecule
            alternatives.append(f"(?P<{name}>{_alternation(terms)})")
        pattern = _EDGE_BEFORE + "(?:" + "|".join(alternatives) + ")" if alternatives else r"(?!x)x"
        return re.compile(pattern, re.IGNORECASE), groups

    @cached_property
    def _cue_matchers(self) -> dict[str, re.Pattern[str]]:
        return {
            axis: re.compile(_EDGE_BEFORE + _alternation(terms), re.IGNORECASE)
            for axis, terms in self.cues.items()
            if terms
        }

    def find(self, text: str) -> tuple[Molecule, ...]:
        """The molecules a text names, each once, in order of first mention."""
        pattern, groups = self._molecule_matcher
        found: dict[str, Molecule] = {}
        for match in pattern.finditer(normalise(text)):
            molecule = groups[match.lastgroup or ""]
            found.setdefault(molecule.name, molecule)
        return tuple(found.values())

    def count_cues(self, axis: str, text: str) -> int:
        """How many times a text uses the cue phrases of one axis (or of "therapy")."""
        matcher = self._cue_matchers.get(axis)
        return len(matcher.findall(normalise(text))) if matcher else 0

    def cue_positions(self, axis: str, text: str) -> list[int]:
        """Where in a text (as ``normalise`` leaves it) the cue phrases of one axis start."""
        matcher = self._cue_matchers.get(axis)
        return [match.start() for match in matcher.finditer(normalise(text))] if matcher else []

    def molecule(self, name: str) -> Molecule | None:
        """The molecule with this canonical name, ignoring case."""
        wanted = name.casefold()
        return next((m for m in self.molecules if m.name.casefold() == wanted), None)


MAX_TERM = 200  # characters in one name, code, synonym or cue


def term_problem(term: str) -> str:
    """Why ``term`` cannot be matched safely ("" when it can): a term with no letters or digits ("*",
    "-") matches everywhere and would tag every paper; so would a two-letter prefix."""
    body = term[:-1] if term.endswith("*") else term
    letters = sum(character.isalnum() for character in body)
    if "*" in body:
        return "has a '*' inside it; only a trailing '*' (a prefix such as \"autoimmun*\") is understood"
    if any(not character.isprintable() for character in body):
        return "holds an invisible or control character"
    if len(term) > MAX_TERM:
        return f"is {len(term):,} characters long; a term is at most {MAX_TERM}"
    if letters < 2:
        return "has fewer than two letters or digits, so it would match in every paper"
    if term.endswith("*") and letters < 3:
        return "is a prefix of fewer than three letters or digits, so it would match in almost every paper"
    return ""


def _strings(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise LexiconError(f"{where}: expected a list of non-empty strings")
    terms = tuple(v.strip() for v in value)
    for term in terms:
        problem = term_problem(term)
        if problem:
            raise LexiconError(f"{where}: {term[:60]!r} {problem}")
    return terms


def _read(path: Path | str, text: str) -> tuple[list[Molecule], dict[str, tuple[str, ...]]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LexiconError(f"{path}: not valid TOML ({error})") from None
    except RecursionError:
        raise LexiconError(f"{path}: nests tables or arrays too deeply to read") from None
    unknown = set(data) - {"molecule", "cues"}
    if unknown:
        raise LexiconError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}")
    entries = data.get("molecule", [])
    if not isinstance(entries, list):
        raise LexiconError(f"{path}: molecules are [[molecule]] tables")
    molecules: list[Molecule] = []
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: molecule #{number}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise LexiconError(f"{where}: needs a name")
        where = f"{path}: molecule {entry['name'][:60]!r}"
        extra = set(entry) - {"name", "kind", "axis", "codes", "synonyms"}
        if extra:
            raise LexiconError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")
        kind, axis = entry.get("kind", "il2"), entry.get("axis", "")
        if kind not in KINDS:
            raise LexiconError(f"{where}: kind must be one of {', '.join(KINDS)}")
        if axis not in MOLECULE_AXES:
            raise LexiconError(f'{where}: axis must be one of treg, effector, biology, neighbour or ""')
        codes = _strings(entry.get("codes", []), f"{where} codes")
        synonyms = _strings(entry.get("synonyms", []), f"{where} synonyms")
        problem = term_problem(entry["name"].strip())
        if problem:
            raise LexiconError(f"{where}: the name {problem}")
        molecules.append(Molecule(name=entry["name"].strip(), kind=kind, axis=axis, codes=codes, synonyms=synonyms))
    cues_table = data.get("cues", {})
    if not isinstance(cues_table, dict) or set(cues_table) - set(CUE_AXES):
        raise LexiconError(f"{path}: [cues] keys must be among {', '.join(CUE_AXES)}")
    cues = {axis: _strings(terms, f"{path}: cues.{axis}") for axis, terms in cues_table.items()}
    return molecules, cues


def merge(base: Lexicon, molecules: Iterable[Molecule], cues: Mapping[str, Iterable[str]]) -> Lexicon:
    """A lexicon with entries added on top: a molecule with a known name gains the new codes and
    synonyms and takes the new kind and axis; cue phrases are added to their axis."""
    merged = {m.name.casefold(): m for m in base.molecules}
    for extra in molecules:
        key = extra.name.casefold()
        old = merged.get(key)
        if old is None:
            merged[key] = extra
        else:
            merged[key] = Molecule(
                name=old.name,
                kind=extra.kind,
                axis=extra.axis,
                codes=tuple(dict.fromkeys(old.codes + extra.codes)),
                synonyms=tuple(dict.fromkeys(old.synonyms + extra.synonyms)),
            )
    all_cues = {axis: tuple(terms) for axis, terms in base.cues.items()}
    for axis, terms in cues.items():
        all_cues[axis] = tuple(dict.fromkeys(all_cues.get(axis, ()) + tuple(terms)))
    return Lexicon(molecules=tuple(merged.values()), cues=all_cues)


def default_lexicon_text() -> str:
    return resources.files("il2watch").joinpath("defaults/lexicon.toml").read_text(encoding="utf-8")


def load_lexicon(extra_paths: Iterable[Path | str] = (), *, skip_missing: bool = False) -> Lexicon:
    """The packaged lexicon with each extra file merged on top, in order. Invalid files (and missing
    ones, unless ``skip_missing``) raise ``LexiconError`` naming the file and the entry."""
    molecules, cues = _read("il2watch/defaults/lexicon.toml", default_lexicon_text())
    lexicon = merge(Lexicon(), molecules, cues)
    for path in extra_paths:
        if skip_missing and not Path(path).is_file():
            continue
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise LexiconError(f"{path}: cannot read ({error.strerror or error})") from None
        except UnicodeDecodeError:
            raise LexiconError(f"{path}: not UTF-8 text; save it as UTF-8") from None
        molecules, cues = _read(path, text)
        lexicon = merge(lexicon, molecules, cues)
    return lexicon
