"""The shapes of the ids a paper is known by, checked wherever an id enters il2watch from outside.

Each function takes any text and returns the id in its one normal form, or ``None`` when the text is
not such an id: PubMed and every citation source, buttons and ``/il2 watch add`` all go through here,
so that nothing shaped otherwise (``12}, x={y``) reaches a BibTeX key, a URL or a query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")

_PMID = re.compile(r"[1-9][0-9]{0,8}", re.ASCII)  # a positive whole number; PubMed's have eight digits today
_DOI = re.compile(r"10\.[0-9]{4,9}/[^\s\x00-\x1f\x7f]{1,290}", re.ASCII)
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
_PMCID = re.compile(r"PMC[1-9][0-9]{0,9}", re.ASCII)
_PPR = re.compile(r"PPR[1-9][0-9]{0,11}", re.ASCII)
_OPENALEX = re.compile(r"W[1-9][0-9]{0,14}", re.ASCII)
_OPENALEX_PREFIX = re.compile(r"^https?://(?:api\.)?openalex\.org/(?:works/)?", re.IGNORECASE)


def pmid(text: object) -> str | None:
    """'35217787' -> '35217787'; '0', '-5', '3.5', '035217787', '1e6' or anything else -> None."""
    value = str(text).strip() if text is not None else ""
    return value if _PMID.fullmatch(value) else None


def doi(text: object) -> str | None:
    """A DOI as written, without 'https://doi.org/' or 'doi:'; ``doi_key`` is the form to compare."""
    value = _DOI_PREFIX.sub("", str(text).strip() if text is not None else "").strip()
    return value if _DOI.fullmatch(value) else None


def doi_key(text: object) -> str | None:
    """The DOI lowercased: DOIs compare case-insensitively."""
    value = doi(text)
    return value.lower() if value else None


def pmcid(text: object) -> str | None:
    """'PMC1234567' (also 'pmc1234567') -> 'PMC1234567'."""
    value = str(text).strip().upper() if text is not None else ""
    return value if _PMCID.fullmatch(value) else None


def ppr(text: object) -> str | None:
    """A Europe PMC preprint id: 'PPR123456'."""
    value = str(text).strip().upper() if text is not None else ""
    return value if _PPR.fullmatch(value) else None


def openalex(text: object) -> str | None:
    """An OpenAlex work id, bare or as its URL: 'https://openalex.org/W4213' -> 'W4213'."""
    value = _OPENALEX_PREFIX.sub("", str(text).strip() if text is not None else "").upper()
    return value if _OPENALEX.fullmatch(value) else None


def pmids(values: Iterable[object]) -> tuple[list[str], list[str]]:
    """(the valid PMIDs in order, the values that were not PMIDs) from outside values."""
    good: list[str] = []
    bad: list[str] = []
    for value in values:
        checked = pmid(value)
        (good if checked else bad).append(checked or str(value))
    return good, bad


def batches(items: Sequence[T], size: int) -> list[list[T]]:
    """``items`` in lists of at most ``size``, in order: how ids go to a host (or a statement) many at once."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
