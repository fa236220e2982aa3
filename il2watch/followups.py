"""What happened to a paper after il2watch posted it: retractions, errata, expressions of concern, new
versions, and the journal version of a preprint. Pure: records in, follow-ups out.

A follow-up is (paper, kind, notice): the paper it is about (its key in the library), what happened, and the
record that says so (the notice's key; "" when only a publication type says so). PubMed says it in a
record's CommentsCorrectionsList (``RetractionIn`` …) and publication types ("Retracted Publication"); the
notice's own record says it the other way round (``RetractionOf`` …). Europe PMC says it in a record's
``commentCorrectionList`` and ``pubTypeList``, OpenAlex with ``is_retracted``. A preprint's journal version
is named by a link (PubMed ``UpdateIn``/``UpdateOf``, Europe PMC ``Preprint of``/``Preprint in``), or, where
no record links them, recognised by the same title and the same first and last author within two years.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from il2watch.fields import Fields
from il2watch.identity import Ids, doi_of, pmcid_of, pmid_of, ppr_of
from il2watch.markup import to_plain
from il2watch.model import Author, Paper

# The PubMed search that selects, among posted papers, the ones any follow-up has reached. PubMed's spelling
# of the retracted-and-republished filter is ``hasretractedandrepublishedin`` (its Comment Correction Type
# filters; the corrected-and-republished one has no "and").
PUBMED_FILTERS = (
    "hasretractionin OR haspartialretractionin OR haserratumin OR hasexpressionofconcernin OR hasupdatein "
    'OR hascorrectedrepublishedin OR hasretractedandrepublishedin OR "retracted publication"[pt]'
)
EPOST_CHUNK = 10_000  # posted PMIDs per EPost: NCBI's history server takes this many at once
TWO_YEARS = 731  # days between a preprint and its journal version, at most


@dataclass(frozen=True)
class Kind:
    """One kind of follow-up and how il2watch tells it."""

    name: str
    label: str  # "Retracted", "Correction published"
    emoji: str
    noun: str  # what the notice is: "retraction notice", "erratum"
    loud: bool = False  # the thread reply is broadcast to the channel
    savers: bool = False  # the people who saved the paper get a direct message
    retracted: bool = False  # the paper should no longer be relied on


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("retraction", "Retracted", "🚨", "retraction notice", loud=True, savers=True, retracted=True),
        Kind("withdrawn", "Withdrawn", "🚨", "withdrawal notice", loud=True, savers=True, retracted=True),
        Kind(
            "retracted-republished",
            "Retracted and republished",
            "🚨",
            "republished version",
            loud=True,
            savers=True,
            retracted=True,
        ),
        Kind("partial-retraction", "Partially retracted", "🚨", "partial retraction notice", loud=True, savers=True),
        Kind("concern", "Expression of concern", "⚠️", "expression of concern", savers=True),
        Kind("erratum", "Correction published", "📝", "erratum"),
        Kind("corrected-republished", "Corrected and republished", "📝", "corrected version"),
        Kind("update", "Updated version published", "🔄", "updated version"),
        Kind("published", "Published", "📰", "journal version"),
    )
}
ORDER = tuple(KINDS)  # loudest first: the order banners list them in

# What PubMed's CommentsCorrections links mean to il2watch, as follow-up kinds (``followups.KINDS``): the
# RefType on the paper a notice is about, and on the notice itself (the other way round). Other links
# ("Cites", "CommentIn") are left out of every record.
LINKS_IN = {
    "RetractionIn": "retraction",
    "PartialRetractionIn": "partial-retraction",
    "RetractedandRepublishedIn": "retracted-republished",
    "ExpressionOfConcernIn": "concern",
    "ErratumIn": "erratum",
    "CorrectedandRepublishedIn": "corrected-republished",
    "UpdateIn": "update",
}
LINKS_OF = {
    "RetractionOf": "retraction",
    "PartialRetractionOf": "partial-retraction",
    "RetractedandRepublishedFrom": "retracted-republished",
    "ExpressionOfConcernFor": "concern",
    "ErratumFor": "erratum",
    "CorrectedandRepublishedFrom": "corrected-republished",
    "UpdateOf": "update",
}

# The linked follow-ups that say how a paper PubMed types "Retracted Publication" was retracted.
RETRACTION_LINKS = frozenset({"retraction", "partial-retraction", "retracted-republished"})
# Europe PMC's commentCorrection types on the paper a notice is about.
EUROPEPMC_TYPES = {
    "retraction in": "retraction",
    "partial retraction in": "partial-retraction",
    "retracted and republished in": "retracted-republished",
    "expression of concern in": "concern",
    "erratum in": "erratum",
    "corrected and republished in": "corrected-republished",
    "update in": "update",
    "withdrawal in": "withdrawn",
}


# ---------------------------------------------------------------- which paper


def paper_key(paper: Paper) -> str:
    """The key the library knows ``paper`` by ("pmid:36261022", "doi:10.1101/…"), or the one it would get;
    every follow-up names its paper and its notice this way."""
    return paper.identity


def pmid_key(pmid: str) -> str:
    """The paper PubMed knows as ``pmid``, as a link in a PubMed record names it: "pmid:…" (the library
    resolves it to the paper's own key when that is another id, ``followup_check.key_of``)."""
    return f"pmid:{pmid}"


def key_pmid(key: str) -> str:
    """The PMID a key names ("pmid:36261022" -> "36261022"; a bare PMID too), or "" for any other key."""
    kind, _, value = key.partition(":")
    return pmid_of(value) if kind == "pmid" else pmid_of(key)


# ---------------------------------------------------------------- follow-ups


@dataclass(frozen=True)
class Followup:
    """One thing that happened to a paper, told once."""

    paper: str  # the key of the paper it is about
    kind: str  # a name in KINDS
    notice: str = ""  # the key of the record that says so; "" when only a publication type does
    source: str = ""  # where the notice appeared, as PubMed cites it ("J Immunol. 2027 Mar;218(3):1-2")

    @property
    def key(self) -> str:
        """The same follow-up has the same key wherever and however often it is found."""
        digest = hashlib.sha1(f"{self.paper}\n{self.kind}\n{self.notice}".encode()).hexdigest()
        return "fu-" + digest[:20]

    @property
    def about(self) -> Kind:
        return KINDS[self.kind]


def followups_in(paper: Paper, sources: Mapping[tuple[str, str], str] | None = None) -> list[Followup]:
    """Every follow-up a PubMed record carries: its CommentsCorrections links to notices about it, and the
    publication type "Retracted Publication" when no retraction notice (whole, partial or republished) is
    linked. On a preprint, an
    ``UpdateIn`` names its journal version. ``sources`` gives each link's RefSource."""
    sources = sources or {}
    preprint = paper.is_preprint
    found: dict[tuple[str, str], Followup] = {}
    for ref_type, pmid in paper.corrections:
        kind = LINKS_IN.get(ref_type)
        if kind is None:
            continue
        if kind == "update" and preprint:
            kind = "published"
        found.setdefault(
            (kind, pmid), Followup(paper_key(paper), kind, pmid_key(pmid), sources.get((ref_type, pmid), ""))
        )
    types = {t.casefold() for t in paper.pub_types}
    # NLM gives the type to papers retracted in whole or in part: a linked retraction of any kind says which.
    if "retracted publication" in types and not any(kind in RETRACTION_LINKS for kind, _ in found):
        found[("retraction", "")] = Followup(paper_key(paper), "retraction")
    return list(found.values())


def is_retracted(paper: Paper) -> bool:
    """Whether the paper should no longer be relied on, as its own record says: the one decision the post's
    banner, the digest, the lists' flag and the follow-up check all read."""
    return any(f.about.retracted for f in followups_in(paper))


def is_retraction_notice(paper: Paper) -> bool:
    """Whether the record is itself a notice retracting another paper (in whole or in part)."""
    types = {t.casefold() for t in paper.pub_types}
    return "retraction of publication" in types or any("retract" in f.kind for _, f in notices_in(paper))


def new_followups(found: Iterable[Followup], known: Iterable[tuple[str, str]]) -> list[Followup]:
    """The follow-ups among ``found`` that are not ``known`` ((kind, notice) pairs told or seen before).

    A kind known without its notice (only a publication type said so) and the same kind with its notice are
    one follow-up, whichever came first: a retraction is told once when its notice is linked later.
    """
    seen = set(known)
    new = []
    for followup in found:
        pair = (followup.kind, followup.notice)
        same_kind = {notice for kind, notice in seen if kind == followup.kind}
        if pair in seen or (same_kind and (not followup.notice or "" in same_kind)):
            continue
        seen.add(pair)
        new.append(followup)
    return new


def citation_of(paper: Paper) -> str:
    """A record cited as PubMed cites it in a RefSource: "Cell Rep. 2027 Jan;41(3):111478"."""
    journal = paper.journal_iso or paper.journal
    numbers = paper.volume + (f"({paper.issue})" if paper.issue else "") + (f":{paper.pages}" if paper.pages else "")
    when = paper.pub_date or (str(paper.pub_year) if paper.pub_year else "")
    return ". ".join(p for p in (journal, ";".join(p for p in (when, numbers) if p)) if p)


def notices_in(notice: Paper) -> list[tuple[str, Followup]]:
    """What a notice's own record says about other papers: (the PMID it is about, the follow-up it is).
    A journal article's ``UpdateOf`` names the preprint it was published from (an update of any other
    paper stays an update: the caller knows whether the target is a preprint)."""
    found = []
    for ref_type, pmid in notice.corrections:
        kind = LINKS_OF.get(ref_type)
        if kind is not None:
            found.append((pmid, Followup(pmid_key(pmid), kind, paper_key(notice), citation_of(notice))))
    return found


def as_published(followup: Followup, target: Paper) -> Followup:
    """An update of a preprint is its journal version."""
    if followup.kind == "update" and target.is_preprint:
        return Followup(followup.paper, "published", followup.notice, followup.source)
    return followup


def short_source(source: str) -> str:
    """ "J Immunol, 2027" from PubMed's "J Immunol. 2027 Mar;218(3):1-2"; the text itself when it is not so."""
    match = re.match(r"\s*(.+?)\.\s+((?:19|20)\d\d)\b", source)
    if match:
        return f"{match.group(1).strip()}, {match.group(2)}"
    return source.strip()


# ---------------------------------------------------------------- Europe PMC and OpenAlex


def europepmc_followups(result: object, paper: str, *, odd: list[str] | None = None) -> list[Followup]:
    """The follow-ups a Europe PMC record (``resultType=core``) carries about ``paper``: its
    ``commentCorrectionList`` entries, and "retracted publication" among its publication types. On a
    preprint a retraction is a withdrawal (Europe PMC marks both alike; a note may say "Withdrawn").
    A field of an unexpected type reads as absent and is named in ``odd``."""
    record = Fields(result, odd=odd)
    types = {t.casefold() for t in record.obj("pubTypeList").texts("pubType")}
    preprint = "preprint" in types or record.text("source").upper() == "PPR"
    own = europepmc_versions(result, odd=[]).ids  # its oddities are this reading's own
    found: dict[tuple[str, str], Followup] = {}
    for entry in record.obj("commentCorrectionList").objs("commentCorrection"):
        kind = EUROPEPMC_TYPES.get(entry.text("type").strip().casefold())
        if kind is None:
            continue
        note = entry.text("note")
        if kind == "retraction" and (preprint or "withdraw" in note.casefold()):
            kind = "withdrawn"
        if kind == "update" and preprint:
            kind = "published"
        notice = europepmc_token(entry)
        if not notice.startswith(("pmid:", "ppr:")):  # a notice is named when it is a PubMed record or a preprint
            notice = ""
        if notice == paper or notice in own:  # a withdrawal entry may name the preprint itself
            notice = ""
        found.setdefault((kind, notice), Followup(paper, kind, notice, note.strip()[:300]))
    if types & {"retracted publication", "withdrawn publication"} and not any(
        kind in ("retraction", "withdrawn") for kind, _ in found
    ):
        kind = "withdrawn" if preprint else "retraction"
        found[(kind, "")] = Followup(paper, kind)
    return list(found.values())


def openalex_followups(work: Mapping[str, Any], paper: str) -> list[Followup]:
    """OpenAlex's one mark: ``is_retracted`` (true for retracted articles and withdrawn preprints alike)."""
    if work.get("is_retracted") is not True:
        return []
    return [Followup(paper, "withdrawn" if str(work.get("type") or "") == "preprint" else "retraction")]


# ---------------------------------------------------------------- a preprint's journal version


@dataclass(frozen=True)
class Versions:
    """What one record says about its other versions, as id tokens ("pmid:…", "doi:…", "ppr:…")."""

    ids: frozenset[str]  # the record's own ids
    published_as: frozenset[str] = frozenset()  # a preprint's journal version(s)
    preprints: frozenset[str] = frozenset()  # a journal article's preprint(s)


def paper_ids(paper: Paper) -> frozenset[str]:
    return frozenset(paper.ids.tokens())


def pubmed_versions(paper: Paper) -> Versions:
    """A PubMed record's links to its other versions: ``UpdateIn`` on a preprint names its journal version,
    ``UpdateOf`` on a journal article the preprint it came from."""
    tokens = [(kind, f"pmid:{pmid}") for kind, pmid in paper.corrections if pmid_of(pmid)]
    preprint = paper.is_preprint
    return Versions(
        paper_ids(paper),
        frozenset(t for kind, t in tokens if kind == "UpdateIn" and preprint),
        frozenset(t for kind, t in tokens if kind == "UpdateOf" and not preprint),
    )


def europepmc_versions(result: object, *, odd: list[str] | None = None) -> Versions:
    """A Europe PMC record's links to its other versions: "Preprint of" on a preprint names its journal
    version; "Preprint in" on a journal article names its preprint. A field of an unexpected type reads as
    absent and is named in ``odd``."""
    record = Fields(result, odd=odd)
    source = record.text("source").upper()
    own = Ids.of(
        pmid=record.text("pmid") or (record.text("id") if source == "MED" else ""),
        doi=record.text("doi"),
        pmcid=record.text("pmcid"),
        ppr=record.text("id") if source == "PPR" else "",
    )
    published, preprints = set(), set()
    for entry in record.obj("commentCorrectionList").objs("commentCorrection"):
        kind = entry.text("type").strip().casefold()
        token = europepmc_token(entry)
        if token and kind == "preprint of":
            published.add(token)
        elif token and kind == "preprint in":
            preprints.add(token)
    return Versions(frozenset(own.tokens()), frozenset(published), frozenset(preprints))


def europepmc_token(entry: Fields) -> str:
    """The id token of a record Europe PMC names by ``source`` and ``id`` (by ``doi`` for other sources):
    "pmid:…", "ppr:…", "pmcid:…" or "doi:…"; "" when it names none."""
    source = entry.text("source").upper()
    if source == "MED":
        return f"pmid:{pmid_of(entry.text('id'))}" if pmid_of(entry.text("id")) else ""
    if source == "PPR":
        return f"ppr:{ppr_of(entry.text('id'))}" if ppr_of(entry.text("id")) else ""
    if source == "PMC":
        return f"pmcid:{pmcid_of(entry.text('id'))}" if pmcid_of(entry.text("id")) else ""
    doi = doi_of(entry.text("doi"))
    return f"doi:{doi}" if doi else ""


GREEK = {
    "α": "alpha",
    "β": "beta",
    "γ": "gamma",
    "δ": "delta",
    "ε": "epsilon",
    "ϵ": "epsilon",
    "ζ": "zeta",
    "η": "eta",
    "θ": "theta",
    "ϑ": "theta",
    "ι": "iota",
    "κ": "kappa",
    "λ": "lambda",
    "μ": "mu",
    "ν": "nu",
    "ξ": "xi",
    "ο": "omicron",
    "π": "pi",
    "ρ": "rho",
    "σ": "sigma",
    "ς": "sigma",
    "τ": "tau",
    "υ": "upsilon",
    "φ": "phi",
    "ϕ": "phi",
    "χ": "chi",
    "ψ": "psi",
    "ω": "omega",
}
_NOT_LETTER_OR_DIGIT = re.compile(r"[^a-z0-9]+")


def normalised_title(title: str) -> str:
    """A title as it compares: PubMed's markup dropped, accents and case ignored, Greek letters spelled out
    ("IL-2Rβ" and "IL-2R beta" read the same), and nothing but letters and digits kept."""
    text = unicodedata.normalize("NFKD", to_plain(title)).casefold()
    text = "".join(GREEK.get(ch, ch) for ch in text if not unicodedata.combining(ch))
    return _NOT_LETTER_OR_DIGIT.sub("", text)


def _name(text: str) -> str:
    return _NOT_LETTER_OR_DIGIT.sub(
        "", unicodedata.normalize("NFKD", text).casefold().encode("ascii", "ignore").decode()
    )


def same_author(one: Author, other: Author) -> bool:
    """The same person as citations name them: the same last name, and the same first initial when both
    records give one (or the same group)."""
    if one.collective or other.collective:
        return bool(one.collective and other.collective) and _name(one.collective) == _name(other.collective)
    if not one.last_name or _name(one.last_name) != _name(other.last_name):
        return False
    first, second = (_name(a.initials or a.fore_name)[:1] for a in (one, other))
    return not first or not second or first == second


def _day(paper: Paper) -> date | None:
    try:
        return date.fromisoformat(paper.entry_date[:10])
    except ValueError:
        return date(paper.pub_year, 7, 1) if paper.pub_year else None


def within_two_years(one: Paper, other: Paper) -> bool:
    first, second = _day(one), _day(other)
    return first is not None and second is not None and abs((first - second).days) <= TWO_YEARS


def journal_version_of(
    article: Paper,
    preprint: Paper,
    *,
    article_links: Versions | None = None,
    preprint_links: Versions | None = None,
) -> str:
    """Whether ``article`` is the journal version of ``preprint``: "linked" when either record says so,
    "matched" when no record links them but the titles, the first and the last authors are the same and
    they appeared within two years of each other; "" when it is not. Any two records will do, from any
    source: pass what Europe PMC says as ``…_links`` where PubMed's links are not all there is."""
    if article.is_preprint or not preprint.is_preprint:
        return ""
    article_links = article_links or pubmed_versions(article)
    preprint_links = preprint_links or pubmed_versions(preprint)
    if article_links.preprints & preprint_links.ids or preprint_links.published_as & article_links.ids:
        return "linked"
    if not article.authors or not preprint.authors or not within_two_years(article, preprint):
        return ""
    title = normalised_title(article.title)
    if not title or title != normalised_title(preprint.title):
        return ""
    ends = (article.authors[0], article.authors[-1]), (preprint.authors[0], preprint.authors[-1])
    return "matched" if same_author(ends[0][0], ends[1][0]) and same_author(ends[0][1], ends[1][1]) else ""
