"""One paper, however many identities: PMID, DOI, PMCID, Europe PMC ``PPR`` id and OpenAlex ``W`` id.

Records from different sources that share a PMID, DOI, PMCID or PPR id are one paper. An OpenAlex id
alone never ties two DOIs together: OpenAlex sometimes folds a preprint and its journal version into
one work, and telling those apart is the follow-up checker's job. DOIs compare case-insensitively,
without ``https://doi.org/`` or ``doi:``.

A paper's *key* ("pmid:36261022", "doi:10.1101/2026.10.30.123456", …) is chosen once, from the best id
it had when il2watch first stored it, and never changes: a preprint stored by DOI keeps its key when
PubMed indexes it later and it gains a PMID. Every id it has ever had finds it.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace

from il2watch import ids

KINDS = ("pmid", "doi", "pmcid", "ppr", "epmc", "openalex")  # in the order a key is chosen from
STRONG = ("pmid", "doi", "pmcid", "ppr", "epmc")  # ids that make two records one paper

_EPMC = re.compile(r"[A-Z]{3}/[A-Za-z0-9][A-Za-z0-9./-]{0,59}", re.ASCII)
_PUBMED_URL = re.compile(
    r"^https?://(?:www\.)?(?:pubmed\.ncbi\.nlm\.nih\.gov|ncbi\.nlm\.nih\.gov/pubmed)/(\d+)/?$", re.IGNORECASE
)
_PMC_URL = re.compile(
    r"^https?://(?:www\.)?(?:ncbi\.nlm\.nih\.gov/pmc/articles|pmc\.ncbi\.nlm\.nih\.gov/articles)"
    r"/(PMC\d+)/?$",
    re.IGNORECASE,
)


def pmid_of(text: object) -> str:
    """A PMID ("36261022") from "36261022", 36261022 or a PubMed URL; "" if none."""
    value = str(text or "").strip()
    match = _PUBMED_URL.match(value)
    return ids.pmid(match.group(1) if match else value) or ""


def doi_of(text: object) -> str:
    """A DOI lower-cased without its URL or ``doi:`` prefix ("10.1038/s41577-022-00680-w"); "" if none."""
    value = str(text or "").strip()
    return ids.doi_key(urllib.parse.unquote(value) if "%" in value else value) or ""


def pmcid_of(text: object) -> str:
    value = str(text or "").strip()
    match = _PMC_URL.match(value)
    value = match.group(1) if match else value
    return ids.pmcid("PMC" + value if value.isdigit() else value) or ""


def ppr_of(text: object) -> str:
    return ids.ppr(text) or ""


def openalex_of(text: object) -> str:
    return ids.openalex(text) or ""


def epmc_of(text: object) -> str:
    """A Europe PMC record that is no article or preprint (a patent, a thesis): "PAT/EP1234567"."""
    value = str(text or "").strip()
    return value if _EPMC.fullmatch(value) else ""


_NORMALISE = {
    "pmid": pmid_of,
    "doi": doi_of,
    "pmcid": pmcid_of,
    "ppr": ppr_of,
    "epmc": epmc_of,
    "openalex": openalex_of,
}


@dataclass(frozen=True)
class Ids:
    """The ids one record carries, each normalised (or "" when it has none of that kind)."""

    pmid: str = ""
    doi: str = ""
    pmcid: str = ""
    ppr: str = ""
    epmc: str = ""  # Europe PMC's own id of a patent, thesis or other non-article record: "PAT/EP1234567"
    openalex: str = ""

    @classmethod
    def of(cls, **raw: object) -> Ids:
        """Ids from raw text in any accepted spelling; values that are no id of their kind are dropped."""
        unknown = set(raw) - set(KINDS)
        if unknown:
            raise TypeError(f"unknown id kinds: {', '.join(sorted(unknown))}")
        return cls(**{kind: _NORMALISE[kind](value) for kind, value in raw.items()})

    def pairs(self) -> Iterator[tuple[str, str]]:
        """(kind, value) for every id present, best first."""
        for item in fields(self):
            value = getattr(self, item.name)
            if value:
                yield item.name, value

    def strong(self) -> list[str]:
        """The ids that make two records one paper, as "kind:value" tokens."""
        return [f"{kind}:{value}" for kind, value in self.pairs() if kind in STRONG]

    def tokens(self) -> list[str]:
        """Every id as a "kind:value" token (what message metadata and the ids table carry)."""
        return [f"{kind}:{value}" for kind, value in self.pairs()]

    def key(self) -> str:
        """The best id as a paper key: PMID, else DOI, else PMCID, else PPR, else OpenAlex id."""
        tokens = self.tokens()
        if not tokens:
            raise ValueError("a paper needs at least one id")
        return tokens[0]

    def merged(self, other: Ids) -> Ids:
        """These ids with the other's filling the kinds these lack (never overwriting one)."""
        return replace(self, **{kind: value for kind, value in other.pairs() if not getattr(self, kind)})

    def __bool__(self) -> bool:
        return any(True for _ in self.pairs())


def parse_token(token: str) -> tuple[str, str] | None:
    """("doi", "10.1/x") from "doi:10.1/x"; None when it is no id token."""
    kind, _, value = str(token).partition(":")
    if kind not in _NORMALISE:
        return None
    normal = _NORMALISE[kind](value)
    return (kind, normal) if normal else None


def parse_reference(text: str) -> Ids | None:
    """The paper a person names: a PMID, a DOI or DOI URL, a PMCID, a PPR id, a PubMed, PMC or OpenAlex URL,
    or a "kind:value" token. None when ``text`` is none of these."""
    value = text.strip().strip("<>")
    if not value or len(value) > 400:
        return None
    token = parse_token(value)
    if token is not None:
        return Ids(**{token[0]: token[1]})
    for kind in ("pmid", "pmcid", "ppr", "openalex", "doi"):
        normal = _NORMALISE[kind](value)
        if normal:
            return Ids(**{kind: normal})
    return None


def group_by_identity(items: Iterable[Ids]) -> list[list[int]]:
    """Indexes of ``items`` grouped so that records sharing a strong id (transitively) are one group.

    Two records with different PMIDs are never one paper, whatever else they share: PubMed keeps them
    apart (an erratum that repeats its paper's DOI), and so does il2watch."""
    items = list(items)
    parent = list(range(len(items)))
    pmid_of_root = {i: item.pmid for i, item in enumerate(items)}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for index, item in enumerate(items):
        for token in item.strong():
            if token not in owner:
                owner[token] = index
                continue
            mine, theirs = root(index), root(owner[token])
            if mine == theirs or (
                pmid_of_root[mine] and pmid_of_root[theirs] and pmid_of_root[mine] != pmid_of_root[theirs]
            ):
                continue
            parent[mine] = theirs
            pmid_of_root[theirs] = pmid_of_root[theirs] or pmid_of_root[mine]
    groups: dict[int, list[int]] = {}
    for index in range(len(items)):
        groups.setdefault(root(index), []).append(index)
    return list(groups.values())


LABELS = {
    "pmid": "PMID",
    "doi": "DOI",
    "pmcid": "PMCID",
    "ppr": "Europe PMC",
    "epmc": "Europe PMC",
    "openalex": "OpenAlex",
}


# Where a reader opens a paper by each kind of id: the page pattern and the characters left unquoted.
_READER_URLS = {
    "pmid": ("https://pubmed.ncbi.nlm.nih.gov/{}/", ""),
    "doi": ("https://doi.org/{}", "/:;()"),
    "pmcid": ("https://www.ncbi.nlm.nih.gov/pmc/articles/{}/", ""),
    "ppr": ("https://europepmc.org/article/PPR/{}", ""),
    "epmc": ("https://europepmc.org/article/{}", "/"),
    "openalex": ("https://openalex.org/{}", ""),
}


def reader_url(kind: str, value: str) -> str:
    """The page of one id ("" for none): PubMed for a PMID, doi.org for a DOI, PMC, Europe PMC, OpenAlex."""
    pattern, safe = _READER_URLS[kind]
    value = value.strip()
    return pattern.format(urllib.parse.quote(value, safe=safe)) if value else ""


def describe_key(key: str) -> str:
    """How a person reads a paper key: "PMID 36261022", "DOI 10.1101/…", "Europe PMC PPR123"."""
    if key.isdigit():
        return f"PMID {key}"
    kind, _, value = key.partition(":")
    return f"{LABELS[kind]} {value}" if kind in LABELS and value else key


def ids_from_tokens(tokens: Iterable[str]) -> Ids:
    """Ids from "kind:value" tokens (the first of each kind wins); tokens that are no ids are dropped."""
    found: dict[str, str] = {}
    for token in tokens:
        parsed = parse_token(token)
        if parsed is not None:
            found.setdefault(*parsed)
    return Ids(**found)
