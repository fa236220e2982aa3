"""Tags for a paper: is it about IL-2, which axis, which molecules, which trials, what kind of record.

Deciding "about IL-2" is not "mentions IL-2": immunology abstracts name IL-2 as an assay
read-out ("IFN-γ, TNF-α and IL-2 production"), a culture supplement, part of another
molecule's name ("interleukin-2-inducible T-cell kinase"), a biomarker ("soluble IL-2
receptor") or part of a shared receptor ("IL-2/IL-15Rβ"). Those mentions count for little; a
mention in the title or the author keywords, an IL-2 agent from the lexicon, IL-2 MeSH headings
and repeated mentions in the abstract count for a lot. Why the paper is in the library (it cites
the review, PubMed ranks it similar) and the channel's votes move the decision only when the text
already leans that way: citing a review in passing makes no paper an IL-2 paper.

The axis weighs the lexicon's cue phrases in the title, keywords, MeSH headings and abstract. A cue
that the text says is avoided ("without Treg expansion", "sparing NK cells") counts for nothing,
and a paper with real weight on both sides is on ``both`` axes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..followups import is_retracted, is_retraction_notice
from ..model import FLAGS, Paper, Reason
from .lexicon import Lexicon, Molecule, normalise

IL2_AXES = ("treg", "effector", "both", "biology")  # the axes of IL-2 papers; neighbour and other are not
IL2_THRESHOLD = 3.0  # evidence needed to call a paper IL-2 work
TEXT_FLOOR = 1.5  # text evidence below which no prior (reasons, votes) can make a paper IL-2 work
CITES_PRIOR = 1.0
SIMILAR_PRIOR = (10, 1.0), (50, 0.5)  # (best rank at most, prior)
QUERY_PRIOR = 0.5
RELEVANT_PRIOR, RELEVANT_PRIOR_CAP = 0.75, 1.5
NOT_RELEVANT_PRIOR, NOT_RELEVANT_PRIOR_CAP = 1.0, 2.0
BOTH_SHARE = 0.5  # the weaker side must carry at least this share of the stronger one
BOTH_FLOOR = 2.0  # and at least this much weight (a cue in the title), not counting named agents
TITLE_BIOLOGY_THERAPY = 3  # a mechanism title with no more words of treatment than this is biology

_IL2 = re.compile(r"(?<![A-Za-z0-9])(?:interleukin\s*\(IL\)\s*-?\s*|interleukin[-\s]?|IL[-\s]?)2(?![0-9])", re.I)
_CYTOKINE = r"(?:IFN|interferon|TNF|IL|interleukin|GM-CSF|TGF|granzyme|perforin|CD40L|CD107a|MIP|CCL\d|CXCL\d)"
_LIST_BEFORE = re.compile(_CYTOKINE + r"[^\s,;]*\s*(?:,|and|or|/)\s*(?:and\s+|or\s+)?$", re.I)
_LIST_AFTER = re.compile(r"^\s*(?:,|and\b|or\b|/)\s*" + _CYTOKINE, re.I)
# An assay read-out or culture supplement rather than the subject of the paper.
_READOUT_AFTER = re.compile(
    r"^(?:[-\s]?(?:production|secretion|release|producing|secreting|ELISpot|promoter reporter|reporter)"
    r"|\s*[+⁺])",
    re.I,
)
# A tool, or cells named by what they make, in titles too: "IL-2 reporter", "IL-2-producing CD4 T cells".
_TOOL_AFTER = re.compile(
    r"^[-\s]?(?:ELISpot|(?:promoter[-\s])?reporter|luciferase|producing|secreting|expressing)", re.I
)
_READOUT_BEFORE = re.compile(
    r"(?:produc(?:ing|ed|tion of)|secret(?:ing|ed|ion of)|release of|containing|presence of|transcription of)\s+$",
    re.I,
)
# A culture supplement, in the title too: "expanded with anti-CD3/CD28 beads and IL-2".
_SUPPLEMENT_BEFORE = re.compile(
    r"(?:supplemented with|expanded with|cultured (?:with|in)|maintained in|grown in)\s+(?:[\w/+-]+\s+){0,4}$",
    re.I,
)
_BIOMARKER_BEFORE = re.compile(r"soluble\s+$", re.I)  # soluble IL-2 receptor: a marker of activation
_INSTEAD_BEFORE = re.compile(r"(?:instead of|rather than|without|in place of)\s+$", re.I)  # IL-2 as the contrast
_INDUCIBLE = re.compile(r"^[-\s]?inducible", re.I)
_OTHER_SUFFIX = re.compile(r"^[A-Za-z]")
_RECEPTOR_OR_VARIANT = re.compile(r"^(?:[-\s]?R|v(?![A-Za-z]))", re.I)
# A cytokine other than IL-2 named outright: "IL-15", "interleukin 33", "interferon".
_OTHER_CYTOKINE = re.compile(
    r"(?<![A-Za-z0-9])(?:IL|interleukin)[-\s]?(?!2(?![0-9]))\d+|interferon|\bIFN|\bTNF|GM-CSF|\bTGF", re.I
)
# Words for an engineered cytokine aimed at the IL-2 receptor's parts, for titles that never say "IL-2":
# "a Treg-selective cytokine", "cytokine/antibody fusions expand regulatory T cells".
_AGENT_WORD = re.compile(r"\b(?:cytokines?|immunocytokines?|muteins?|superkines?)\b", re.I)
_RECEPTOR_TARGET = re.compile(
    r"regulatory (?:T|cells?)|\bTregs?\b|Treg-|Foxp3|CD25|CD122|not-alpha|non-alpha|beta-gamma|βγ", re.I
)
# A cue the text says is avoided: "without expanding Tregs", "sparing NK cells", "over regulatory T cells".
_AVOIDED = re.compile(
    r"(?:\bwithout|\bspar(?:e|es|ed|ing)|\bover|rather than|instead of|\bnot|\bno|\bminimal|\bavoid\w*|"
    r"\blimited|\bfewer|\bless)\s+(?:(?:\w+[-/]?){0,3}\s+)?$",
    re.I,
)
_NOTICE_TYPES = {"published erratum", "retraction of publication", "expression of concern"}
_NOTICE_TITLE = re.compile(
    r"^\s*(?:(?:notice of |a )?retraction(?: note| notice)?(?: to| of| for)?|erratum(?: to| for| in)?|errata|"
    r"corrigendum(?: to)?|correction(?: to| for)?|expression of concern(?: to| for)?|notice of concern)"
    r"(?=$|[\s:.,\"'“”‘’-])[\s:.,-]*",
    re.I,
)
_RETRACTED_TITLE = re.compile(r"^\s*(?:retracted(?: article)?|withdrawn)\s*[:.-]\s*", re.I)
_NOTICE_LINKS = ("RetractionOf", "ErratumFor", "ExpressionOfConcernFor")

_NCT = re.compile(r"(?<![A-Za-z0-9])NCT\s?(\d{8})(?![0-9])", re.I)
_EUDRACT = re.compile(r"(?<![\d-])(20\d{2}-\d{6}-\d{2})(?![\d]|-\d)")


# ---------------------------------------------------------------- what a record says


@dataclass(frozen=True)
class Record:
    """A paper's text as the taggers read it: plain, hyphens normalised, the notice wording removed."""

    title: str
    abstract: str
    keywords: tuple[str, ...] = ()
    mesh: tuple[str, ...] = ()  # headings with their qualifiers: "*Interleukin-2/therapeutic use"
    is_notice: bool = False  # an erratum, retraction or expression of concern about another paper

    @property
    def body(self) -> str:
        return f"{self.title}\n{self.abstract}"


def is_notice(paper: Paper, title: str = "") -> bool:
    """An erratum, a retraction notice or an expression of concern: a record about another paper."""
    if {t.casefold() for t in paper.pub_types} & _NOTICE_TYPES:
        return True
    return bool(_NOTICE_TITLE.match(title or paper.title))


def concerned_pmids(paper: Paper) -> tuple[str, ...]:
    """The PMIDs of the papers a notice is about, as PubMed links them."""
    return tuple(pmid for kind, pmid in paper.corrections if kind in _NOTICE_LINKS and pmid.strip().isdigit())


def read_record(paper: Paper, title: str, abstract: str) -> Record:
    """The record to tag, from a paper and its plain title and abstract.

    A notice is tagged by what it says about the paper it concerns: "Correction to: Low-dose IL-2 in
    lupus" is read as "Low-dose IL-2 in lupus"; a bare "Erratum." leaves nothing to read.
    """
    notice = is_notice(paper, title)
    if notice:
        title = _NOTICE_TITLE.sub("", title, count=1)
    title = _RETRACTED_TITLE.sub("", title, count=1).strip(" \"'“”‘’.")
    mesh = tuple(heading.strip() for heading in paper.mesh if heading.strip())  # "*" marks a major topic
    keywords = tuple(k.strip() for k in paper.keywords if k.strip())
    return Record(normalise(title), normalise(abstract), keywords, mesh, notice)


# ---------------------------------------------------------------- about IL-2 or not


@dataclass(frozen=True)
class Il2Evidence:
    """What a paper's record says about IL-2 being its subject, and how the library's facts lean."""

    in_title: bool  # the title names IL-2, its receptor or an IL-2 agent
    mentions: int  # substantive IL-2 mentions in the abstract
    passing: int  # mentions as a read-out, supplement, list item, biomarker or part of another name
    agents: tuple[Molecule, ...]  # IL-2 agents from the lexicon
    neighbour_in_title: bool
    neighbour_mentions: int  # neighbouring-cytokine cue phrases in the abstract
    in_keywords: bool = False  # an author keyword names IL-2, its receptor or an IL-2 agent
    mesh: float = 0.0  # weight of the IL-2 MeSH headings
    described: bool = False  # the title describes an engineered IL-2-receptor agonist without naming IL-2
    prior: float = 0.0  # from why the paper is in the library and the channel's votes

    @property
    def text_score(self) -> float:
        return (
            3.0 * self.in_title
            + 0.75 * min(self.mentions, 6)
            + 2.0 * bool(self.agents)
            + 0.25 * min(self.passing, 4)
            + 3.0 * self.in_keywords
            + self.mesh
            + 2.0 * self.described
        )

    @property
    def score(self) -> float:
        return self.text_score + (self.prior if self.text_score >= TEXT_FLOOR else min(self.prior, 0.0))


def _classify_mentions(text: str, *, readouts_count: bool) -> tuple[int, int]:
    """(substantive, passing) IL-2 mentions in one piece of plain text."""
    substantive = passing = 0
    for match in _IL2.finditer(text):
        before, after = text[max(0, match.start() - 40) : match.start()], text[match.end() : match.end() + 40]
        if _INDUCIBLE.match(after):
            passing += 1
        elif _OTHER_SUFFIX.match(after) and not _RECEPTOR_OR_VARIANT.match(after):
            continue  # another token that only starts like IL-2
        elif _LIST_BEFORE.search(before) or _LIST_AFTER.match(after) or _BIOMARKER_BEFORE.search(before):
            passing += 1
        elif _SUPPLEMENT_BEFORE.search(before) or _TOOL_AFTER.match(after) or _INSTEAD_BEFORE.search(before):
            passing += 1
        elif readouts_count and (_READOUT_AFTER.match(after) or _READOUT_BEFORE.search(before)):
            passing += 1
        else:
            substantive += 1
    return substantive, passing


def _mesh_weight(headings: Sequence[str]) -> float:
    """IL-2 MeSH headings: indexers add "Interleukin-2" for a mention, a qualifier such as
    "therapeutic use" or "analogs & derivatives" when IL-2 is what the paper does something with."""
    weight = 0.0
    for heading in headings:
        descriptor, _, qualifiers = heading.partition("/")
        if _classify_mentions(descriptor, readouts_count=False)[0]:
            weight += 0.75 + (0.75 if qualifiers.strip() and "metabolism" not in qualifiers else 0.0)
            weight += 1.5 if "*" in heading else 0.0  # a major topic of the paper
    return min(weight, 3.0)


def _describes_agonist(title: str) -> bool:
    """A title about an engineered cytokine aimed at CD25, CD122 or Tregs that names no other cytokine."""
    return bool(_AGENT_WORD.search(title) and _RECEPTOR_TARGET.search(title) and not _OTHER_CYTOKINE.search(title))


def il2_prior(reasons: Iterable[Reason] = (), feedback: tuple[int, int] = (0, 0)) -> float:
    """How much the library's facts raise (or the channel's votes lower) the odds of IL-2 work."""
    reasons = list(reasons)
    prior = CITES_PRIOR if any(r.kind == "cites" for r in reasons) else 0.0
    ranks = [r.rank for r in reasons if r.kind == "similar" and r.rank and r.rank > 0]
    if ranks:
        prior += next((points for rank, points in SIMILAR_PRIOR if min(ranks) <= rank), 0.0)
    if any(r.kind == "query" for r in reasons):
        prior += QUERY_PRIOR
    relevant, not_relevant = feedback
    prior += min(RELEVANT_PRIOR * max(relevant, 0), RELEVANT_PRIOR_CAP)
    prior -= min(NOT_RELEVANT_PRIOR * max(not_relevant, 0), NOT_RELEVANT_PRIOR_CAP)
    return prior


def il2_evidence(
    title: str, abstract: str, lexicon: Lexicon, *, record: Record | None = None, prior: float = 0.0
) -> Il2Evidence:
    """Weigh the IL-2 mentions of a plain-text title and abstract (and the record's keywords and MeSH)."""
    record = record or Record(normalise(title), normalise(abstract))
    title, abstract = record.title, record.abstract
    keywords = "\n".join(record.keywords)
    title_hits, title_passing = _classify_mentions(title, readouts_count=False)
    body_hits, body_passing = _classify_mentions(abstract, readouts_count=True)
    keyword_hits = sum(_classify_mentions(k, readouts_count=False)[0] for k in record.keywords)
    agents = tuple(m for m in lexicon.find(f"{title}\n{abstract}\n{keywords}") if m.kind == "il2")
    title_agents = [m for m in lexicon.find(title) if m.kind == "il2"]
    keyword_agents = [m for m in lexicon.find(keywords) if m.kind == "il2"]
    neighbour_title = lexicon.count_cues("neighbour", title) + sum(m.kind == "neighbour" for m in lexicon.find(title))
    return Il2Evidence(
        in_title=bool(title_hits or title_agents),
        mentions=body_hits,
        passing=title_passing + body_passing,
        agents=agents,
        neighbour_in_title=neighbour_title > 0,
        neighbour_mentions=lexicon.count_cues("neighbour", abstract),
        in_keywords=bool(keyword_hits or keyword_agents),
        mesh=_mesh_weight(record.mesh),
        described=not title_hits and _describes_agonist(title),
        prior=prior,
    )


def is_il2(evidence: Il2Evidence) -> bool:
    """About IL-2 itself: enough weight, and not a neighbouring cytokine's paper naming IL-2 on the side."""
    if evidence.score < IL2_THRESHOLD:
        return False
    if evidence.neighbour_in_title and not evidence.agents:
        # A title naming IL-15 (say) and IL-2: the abstract says which one the paper is about.
        return evidence.in_title and evidence.mentions >= evidence.neighbour_mentions
    return True


# ---------------------------------------------------------------- the axis


def _cue_weight(lexicon: Lexicon, axis: str, text: str) -> int:
    """Cue phrases of one axis in a text, leaving out the ones the text says are avoided."""
    return sum(
        1 for start in lexicon.cue_positions(axis, text) if not _AVOIDED.search(text[max(0, start - 60) : start])
    )


@dataclass(frozen=True)
class AxisWeights:
    """How much a record says for each side of the axis, for IL-2 biology, and of treatment."""

    treg_cues: float  # cue phrases alone (title, keywords and MeSH count more than the abstract)
    effector_cues: float
    treg_agents: int  # named agents that lean to each side
    effector_agents: int
    biology: float
    therapy: int  # words of treatment anywhere, and named agents
    title_biology: int  # what the title alone says: mechanism with no word of treatment is biology
    title_therapy: int

    @property
    def treg(self) -> float:
        return self.treg_cues + AGENT_WEIGHT * self.treg_agents

    @property
    def effector(self) -> float:
        return self.effector_cues + AGENT_WEIGHT * self.effector_agents


AGENT_WEIGHT = 4.0  # a named agent's leaning counts like a title cue and a bit more


def axis_weights(record: Record, evidence: Il2Evidence, lexicon: Lexicon) -> AxisWeights:
    """Weigh the cue phrases of each axis in every part of the record."""
    keywords, mesh = "\n".join(record.keywords), "\n".join(record.mesh)

    def cues(axis: str) -> float:
        return (
            3 * _cue_weight(lexicon, axis, record.title)
            + _cue_weight(lexicon, axis, record.abstract)
            + 2 * _cue_weight(lexicon, axis, keywords)
            + 1.5 * _cue_weight(lexicon, axis, mesh)
        )

    therapy = sum(lexicon.count_cues("therapy", text) for text in (record.body, keywords, mesh))
    return AxisWeights(
        treg_cues=cues("treg"),
        effector_cues=cues("effector"),
        treg_agents=sum(m.axis == "treg" for m in evidence.agents),
        effector_agents=sum(m.axis == "effector" for m in evidence.agents),
        biology=cues("biology"),
        therapy=therapy + len(evidence.agents),
        title_biology=_cue_weight(lexicon, "biology", record.title),
        title_therapy=lexicon.count_cues("therapy", record.title),
    )


def classify_axis(
    title: str, abstract: str, evidence: Il2Evidence, lexicon: Lexicon, *, record: Record | None = None
) -> str:
    """One of treg, effector, both, biology (IL-2 papers), neighbour or other."""
    record = record or Record(normalise(title), normalise(abstract))
    if not is_il2(evidence):
        neighbours = [m for m in lexicon.find(record.body) if m.kind == "neighbour"]
        neighbour_weight = (
            3 * lexicon.count_cues("neighbour", record.title) + evidence.neighbour_mentions + 3 * len(neighbours)
        )
        return "neighbour" if neighbour_weight >= 3 else "other"
    weights = axis_weights(record, evidence, lexicon)
    treg, effector = weights.treg, weights.effector
    direction = max(treg, effector)
    if direction == 0 or weights.therapy == 0:
        return "biology"  # no side, or no treatment in view
    if not evidence.agents and weights.biology > 2 * direction:
        return "biology"
    if (
        not evidence.agents
        and weights.title_biology
        and not weights.title_therapy
        and weights.therapy <= TITLE_BIOLOGY_THERAPY
    ):
        return "biology"
    weaker, stronger = sorted((weights.treg_cues, weights.effector_cues))
    balanced = weaker >= max(BOTH_FLOOR, BOTH_SHARE * stronger)  # in the text itself, not only by named agents
    if balanced and min(treg, effector) >= BOTH_SHARE * direction:
        return "both"
    return "treg" if treg > effector else "effector" if effector > treg else "both"


# ---------------------------------------------------------------- molecules, trials, record kinds


def find_molecules(text: str, lexicon: Lexicon) -> tuple[str, ...]:
    """Canonical names of the lexicon's molecules a text names, in order of first mention."""
    return tuple(m.name for m in lexicon.find(text))


def find_trials(text: str) -> tuple[str, ...]:
    """Clinical-trial registrations in a text: NCT numbers and EudraCT numbers, each once."""
    found: dict[str, None] = {}
    hits = [(m.start(), "NCT" + m.group(1)) for m in _NCT.finditer(text)]
    hits += [(m.start(), m.group(1)) for m in _EUDRACT.finditer(normalise(text))]
    for _, trial in sorted(hits):
        found.setdefault(trial.upper(), None)
    return tuple(found)


def trial_url(trial_id: str) -> str:
    """Where a registration can be read: ClinicalTrials.gov for NCT, the EU register for EudraCT."""
    trial_id = trial_id.strip()
    nct = _NCT.fullmatch(trial_id)
    if nct:
        return f"https://clinicaltrials.gov/study/NCT{nct.group(1)}"
    if _EUDRACT.fullmatch(trial_id):
        return f"https://www.clinicaltrialsregister.eu/ctr-search/search?query={trial_id}"
    raise ValueError(f"not an NCT or EudraCT number: {trial_id!r}")


def publication_flags(paper: Paper, title: str = "") -> tuple[str, ...]:
    """What kind of record this is, loudest first: retraction, erratum, preprint, clinical-trial, review."""
    types = {t.casefold() for t in paper.pub_types}
    title = (title or paper.title).strip().casefold()
    flags = set()
    if is_retracted(paper) or is_retraction_notice(paper):
        flags.add("retraction")
    if title.startswith(("retracted:", "retracted article", "retraction:", "retraction note", "retraction notice")):
        flags.add("retraction")
    if "published erratum" in types or title.startswith(("erratum", "correction to", "corrigendum", "correction:")):
        flags.add("erratum")
    if paper.is_preprint:
        flags.add("preprint")
    if any("trial" in t for t in types):  # "Clinical Trial, Phase II", "Randomized Controlled Trial"…
        flags.add("clinical-trial")
    if types & {"review", "systematic review", "meta-analysis", "scoping review"}:
        flags.add("review")
    return tuple(flag for flag in FLAGS if flag in flags)
