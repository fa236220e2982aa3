"""Tags for a paper: is it about IL-2, which axis, which molecules, which trials, what kind of record.

Deciding "about IL-2" is not "mentions IL-2": immunology abstracts name IL-2 as an assay
read-out ("IFN-γ, TNF-α and IL-2 production"), a culture supplement, part of another
molecule's name ("interleukin-2-inducible T-cell kinase") or of a shared receptor
("IL-2/IL-15Rβ"). Those mentions count for little; a mention in the title, an IL-2 agent
from the lexicon, or repeated mentions in the abstract count for a lot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..model import Paper
from .lexicon import Lexicon, Molecule, normalise

FLAG_ORDER = ("retraction", "erratum", "preprint", "clinical-trial", "review")
# How posts and replies name the tags; a retraction is meant to be impossible to miss.
AXIS_LABELS = {
    "treg": "Treg-directed / autoimmunity",
    "effector": "effector-directed / cancer",
    "biology": "IL-2 biology and structure",
    "neighbour": "neighbouring cytokine",
    "other": "other",
}
FLAG_LABELS = {
    "retraction": "⚠️ RETRACTED",
    "erratum": "erratum",
    "preprint": "preprint (not peer reviewed)",
    "clinical-trial": "clinical trial",
    "review": "review",
}

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
_READOUT_BEFORE = re.compile(
    r"(?:produc(?:ing|ed|tion of)|secret(?:ing|ed|ion of)|release of|containing|presence of|"
    r"supplemented with|transcription of|expanded with|cultured (?:with|in)|maintained in)\s+$",
    re.I,
)
_INDUCIBLE = re.compile(r"^[-\s]?inducible", re.I)
_OTHER_SUFFIX = re.compile(r"^[A-Za-z]")
_RECEPTOR_OR_VARIANT = re.compile(r"^(?:[-\s]?R|v(?![A-Za-z]))", re.I)

_NCT = re.compile(r"(?<![A-Za-z0-9])NCT\s?(\d{8})(?![0-9])", re.I)
_EUDRACT = re.compile(r"(?<![\d-])(20\d{2}-\d{6}-\d{2})(?![\d]|-\d)")


@dataclass(frozen=True)
class Il2Evidence:
    """What a paper's text says about IL-2 being its subject."""

    in_title: bool  # the title names IL-2, its receptor or an IL-2 agent
    mentions: int  # substantive IL-2 mentions in the abstract
    passing: int  # mentions as a read-out, supplement, list item or part of another name
    agents: tuple[Molecule, ...]  # IL-2 agents from the lexicon
    neighbour_in_title: bool
    neighbour_mentions: int  # neighbouring-cytokine cue phrases in the abstract

    @property
    def score(self) -> float:
        return (
            3.0 * self.in_title + 0.75 * min(self.mentions, 6) + 2.0 * bool(self.agents) + 0.25 * min(self.passing, 4)
        )


def _classify_mentions(text: str, *, readouts_count: bool) -> tuple[int, int]:
    """(substantive, passing) IL-2 mentions in one piece of plain text."""
    substantive = passing = 0
    for match in _IL2.finditer(text):
        before, after = text[max(0, match.start() - 40) : match.start()], text[match.end() : match.end() + 40]
        if _INDUCIBLE.match(after):
            passing += 1
        elif _OTHER_SUFFIX.match(after) and not _RECEPTOR_OR_VARIANT.match(after):
            continue  # another token that only starts like IL-2
        elif _LIST_BEFORE.search(before) or _LIST_AFTER.match(after):
            passing += 1
        elif readouts_count and (_READOUT_AFTER.match(after) or _READOUT_BEFORE.search(before)):
            passing += 1
        else:
            substantive += 1
    return substantive, passing


def il2_evidence(title: str, abstract: str, lexicon: Lexicon) -> Il2Evidence:
    """Weigh the IL-2 mentions of a plain-text title and abstract."""
    title, abstract = normalise(title), normalise(abstract)
    title_hits, title_passing = _classify_mentions(title, readouts_count=False)
    body_hits, body_passing = _classify_mentions(abstract, readouts_count=True)
    agents = tuple(m for m in lexicon.find(f"{title}\n{abstract}") if m.kind == "il2")
    title_agents = [m for m in lexicon.find(title) if m.kind == "il2"]
    neighbour_title = lexicon.count_cues("neighbour", title) + sum(m.kind == "neighbour" for m in lexicon.find(title))
    return Il2Evidence(
        in_title=bool(title_hits or title_agents),
        mentions=body_hits,
        passing=title_passing + body_passing,
        agents=agents,
        neighbour_in_title=neighbour_title > 0,
        neighbour_mentions=lexicon.count_cues("neighbour", abstract),
    )


def is_il2(evidence: Il2Evidence) -> bool:
    """About IL-2 itself: enough weight, and not a neighbouring cytokine's paper naming IL-2 on the side."""
    if evidence.score < 3.0:
        return False
    if evidence.neighbour_in_title and not evidence.agents:
        # A title naming IL-15 (say) and IL-2: the abstract says which one the paper is about.
        return evidence.in_title and evidence.mentions >= evidence.neighbour_mentions
    return True


def classify_axis(title: str, abstract: str, evidence: Il2Evidence, lexicon: Lexicon) -> str:
    """One of treg, effector, biology (IL-2 papers), neighbour or other."""
    title, abstract = normalise(title), normalise(abstract)
    if not is_il2(evidence):
        neighbours = [m for m in lexicon.find(f"{title}\n{abstract}") if m.kind == "neighbour"]
        neighbour_weight = (
            3 * lexicon.count_cues("neighbour", title) + evidence.neighbour_mentions + 3 * len(neighbours)
        )
        return "neighbour" if neighbour_weight >= 3 else "other"

    def weight(axis: str) -> int:
        leaning = sum(m.axis == axis for m in evidence.agents)
        return 3 * lexicon.count_cues(axis, title) + lexicon.count_cues(axis, abstract) + 4 * leaning

    treg, effector, biology = weight("treg"), weight("effector"), weight("biology")
    direction = max(treg, effector)
    therapy = lexicon.count_cues("therapy", f"{title}\n{abstract}") + len(evidence.agents)
    if direction == 0 or therapy == 0:
        return "biology"
    if not evidence.agents and biology > 2 * direction:
        return "biology"
    return "treg" if treg > effector else "effector" if effector > treg else "biology"


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
    notices = {kind.casefold() for kind, _ in paper.corrections}
    flags = set()
    if types & {"retracted publication", "retraction of publication"} or "retractionin" in notices:
        flags.add("retraction")
    if title.startswith(("retracted:", "retracted article", "retraction:", "retraction note", "retraction notice")):
        flags.add("retraction")
    if "published erratum" in types or title.startswith(("erratum", "correction to", "corrigendum", "correction:")):
        flags.add("erratum")
    if "preprint" in types or paper.journal.casefold() in {"biorxiv", "medrxiv", "research square"}:
        flags.add("preprint")
    if any("trial" in t for t in types):  # "Clinical Trial, Phase II", "Randomized Controlled Trial"…
        flags.add("clinical-trial")
    if types & {"review", "systematic review", "meta-analysis", "scoping review"}:
        flags.add("review")
    return tuple(flag for flag in FLAG_ORDER if flag in flags)
