"""A large library of invented papers, written the way a poll writes them, for the command benchmarks.

The papers are made from the vocabulary of the engineered-IL-2 field and of immunology at large, with
common words common and rare words rare, so full-text searches meet realistic match counts: a query for
"IL-2" matches most of the library, a molecule's name a few percent, an author's surname a handful.
Everything is drawn from one seeded generator: the same seed gives the same library.
"""

from __future__ import annotations

import random
import time
from datetime import date, timedelta
from pathlib import Path

import harness  # noqa: F401  (puts the checkout on sys.path)

from il2watch.library import Library
from il2watch.model import AXES, Author, Insight, Paper, Reason, Section

AGENTS = (
    "low-dose IL-2",
    "aldesleukin",
    "an IL-2 mutein",
    "a CD25-biased IL-2 mutein",
    "efavaleukin alfa",
    "rezpegaldesleukin",
    "nemvaleukin alfa",
    "bempegaldesleukin",
    "a not-alpha IL-2 variant",
    "an IL-2/anti-IL-2 antibody complex",
    "an IL-2 immunocytokine",
    "a PD-1-targeted IL-2 variant",
    "an IL-15 superagonist",
    "N-803",
    "an orthogonal IL-2",
    "IL-2 receptor beta agonists",
    "interleukin-2",
)
MOLECULES = {  # the canonical names the lexicon would give, for the insight columns
    "low-dose IL-2": "low-dose IL-2",
    "aldesleukin": "aldesleukin",
    "efavaleukin alfa": "efavaleukin alfa",
    "rezpegaldesleukin": "rezpegaldesleukin",
    "nemvaleukin alfa": "nemvaleukin alfa",
    "bempegaldesleukin": "bempegaldesleukin",
    "N-803": "nogapendekin alfa inbakicept",
}
SETTINGS = (
    "systemic lupus erythematosus",
    "type 1 diabetes",
    "rheumatoid arthritis",
    "graft-versus-host disease",
    "ulcerative colitis",
    "alopecia areata",
    "psoriasis",
    "melanoma",
    "renal cell carcinoma",
    "non-small cell lung cancer",
    "head and neck cancer",
    "ovarian cancer",
    "healthy volunteers",
    "mice",
    "non-human primates",
    "kidney transplantation",
    "multiple sclerosis",
    "Sjogren syndrome",
)
CELLS = (
    "regulatory T cells",
    "Tregs",
    "CD8+ T cells",
    "NK cells",
    "effector T cells",
    "memory T cells",
    "FOXP3+ cells",
    "CD4+ T cells",
    "tumour-infiltrating lymphocytes",
    "ILC2s",
)
FINDINGS = (
    "expanded {cells} without serious adverse events",
    "increased the ratio of {cells} to conventional T cells",
    "reduced disease activity at week 12",
    "did not improve progression-free survival",
    "was associated with capillary leak syndrome at higher doses",
    "selectively signalled through the intermediate-affinity receptor",
    "bound CD25 with reduced affinity",
    "prolonged half-life compared with aldesleukin",
    "induced STAT5 phosphorylation in {cells}",
)
# Words of abstracts, most common first; pseudo-words fill the long tail (see vocabulary()).
COMMON = (
    "patients",
    "cells",
    "treatment",
    "increased",
    "expression",
    "response",
    "study",
    "dose",
    "immune",
    "receptor",
    "signalling",
    "clinical",
    "cytokine",
    "levels",
    "activity",
    "model",
    "compared",
    "therapy",
    "significantly",
    "associated",
    "function",
    "effects",
    "results",
    "disease",
    "analysis",
    "data",
    "role",
    "mechanism",
    "induced",
    "reduced",
    "tolerance",
    "safety",
    "efficacy",
    "trial",
    "cohort",
    "baseline",
)
DOMAIN = (  # placed along the tail: from fairly common to rare
    "CD25",
    "STAT5",
    "CD122",
    "proliferation",
    "inflammation",
    "autoimmunity",
    "toxicity",
    "tumour",
    "phase",
    "placebo",
    "antibody",
    "biomarker",
    "apoptosis",
    "CD132",
    "IL-2R",
    "fusion",
    "JAK1",
    "IFN-gamma",
    "TNF",
    "half-life",
    "pharmacokinetics",
    "pharmacodynamics",
    "IL-10",
    "IL-7",
    "IL-21",
    "PEG",
    "randomised",
    "eosinophilia",
    "capillary",
    "leak",
    "vitiligo",
    "thymus",
    "lymphopenia",
    "hypotension",
    "FOXP3",
)
JOURNALS = (
    ("Frontiers in immunology", "Front Immunol"),
    ("Nature reviews. Immunology", "Nat Rev Immunol"),
    ("Journal of immunology (Baltimore, Md. : 1950)", "J Immunol"),
    ("Science translational medicine", "Sci Transl Med"),
    ("Journal for immunotherapy of cancer", "J Immunother Cancer"),
    ("Annals of the rheumatic diseases", "Ann Rheum Dis"),
    ("Cell reports", "Cell Rep"),
    ("Blood", "Blood"),
    ("Clinical cancer research", "Clin Cancer Res"),
    ("Diabetes", "Diabetes"),
    ("The Journal of clinical investigation", "J Clin Invest"),
    ("Immunity", "Immunity"),
)
SYLLABLES = (
    "an",
    "ber",
    "chen",
    "da",
    "el",
    "fer",
    "gar",
    "ha",
    "ito",
    "jo",
    "ka",
    "li",
    "mar",
    "no",
    "os",
    "pe",
    "qui",
    "ro",
    "san",
    "ta",
    "u",
    "vi",
    "wang",
    "xu",
    "ya",
    "zh",
    "ko",
    "ri",
    "mu",
    "se",
)
FIRST_ENTRY = date(2000, 1, 1)
LAST_ENTRY = date(2024, 6, 15)


def vocabulary(rng: random.Random, size: int = 4000) -> tuple[list[str], list[float]]:
    """Words and cumulative Zipf weights (rank ** -1): a few words in most abstracts, most words in few."""
    words = list(COMMON)
    tail: list[str] = []
    while len(tail) < size - len(COMMON) - len(DOMAIN):
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3, 3, 4))))
        if word not in tail:
            tail.append(word)
    step = max(1, len(tail) // len(DOMAIN))
    for index, word in enumerate(DOMAIN):  # DOMAIN[0] at rank ~40, the last ones deep in the tail
        tail.insert(index * step // 3 + index * index * step // (2 * len(DOMAIN)), word)
    words += tail
    total, cumulative = 0.0, []
    for rank in range(1, len(words) + 1):
        total += 1.0 / rank
        cumulative.append(total)
    return words, cumulative


def surname(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3)))).capitalize()


def make_paper(
    rng: random.Random, pmid: int, authors: list[Author], words: tuple[list[str], list[float]]
) -> tuple[Paper, Insight, Reason]:
    agent = rng.choice(AGENTS)
    setting = rng.choice(SETTINGS)
    cells = rng.choice(CELLS)
    title = f"{agent[0].upper()}{agent[1:]} in {setting}: {rng.choice(FINDINGS).format(cells=cells)}."
    sentences = [f"We studied {agent} in {setting}."]
    vocabulary_words, weights = words
    for _ in range(rng.randint(6, 10)):
        text = " ".join(rng.choices(vocabulary_words, cum_weights=weights, k=rng.randint(10, 20)))
        sentences.append(f"{text[0].upper()}{text[1:]} in {rng.choice(CELLS)}.")
    sentences.append(f"Treatment {rng.choice(FINDINGS).format(cells=rng.choice(CELLS))}.")
    journal, iso = rng.choice(JOURNALS)
    entry = FIRST_ENTRY + timedelta(days=rng.randrange((LAST_ENTRY - FIRST_ENTRY).days + 1))
    paper = Paper(
        pmid=str(pmid),
        title=title,
        abstract=(Section(" ".join(sentences)),),
        authors=tuple(rng.sample(authors, rng.randint(2, 8))),
        journal=journal,
        journal_iso=iso,
        pub_date=f"{entry.year} {entry.strftime('%b')}",
        pub_year=entry.year,
        entry_date=entry.isoformat(),
        doi=f"10.5555/bench.{pmid}",
        pub_types=("Journal Article",) if rng.random() > 0.15 else ("Journal Article", "Review"),
        language="eng",
    )
    axis = rng.choice(AXES)
    molecule = MOLECULES.get(agent)
    insight = Insight(
        summary=sentences[0],
        axis=axis,
        is_il2=axis in ("treg", "effector", "biology"),
        molecules=(molecule,) if molecule else (),
        flags=("review",) if "Review" in paper.pub_types else (),
        relevance=round(rng.uniform(0, 100), 1),
    )
    kind = rng.choices(("cites", "similar", "query"), weights=(5, 3, 2))[0]
    reason = (
        Reason("review", kind, score=rng.randint(10_000_000, 40_000_000), rank=rng.randint(1, 50))
        if kind == "similar"
        else Reason("review" if kind == "cites" else "engineered-il2", kind)
    )
    return paper, insight, reason


def fill_library(path: Path | str, count: int, *, seed: int = 7, batch: int = 5000) -> float:
    """Write ``count`` invented papers with their insights and reasons in one transaction; seconds taken."""
    rng = random.Random(seed)
    authors = [
        Author(last_name=surname(rng), fore_name="A", initials=rng.choice("ABCDEFGHJKLMNPRST")) for _ in range(3000)
    ]
    words = vocabulary(rng)
    started = time.perf_counter()
    with Library(path) as library, library.transaction():
        for first in range(0, count, batch):
            made = [make_paper(rng, 30_000_000 + i, authors, words) for i in range(first, min(count, first + batch))]
            library.save_papers(
                [p for p, _, _ in made], {p.pmid: ins for p, ins, _ in made}, now="2024-06-15T12:00:00+00:00"
            )
            library.save_reasons([(p.pmid, r) for p, _, r in made], now="2024-06-15T12:00:00+00:00", run_id=None)
    return time.perf_counter() - started


def author_surnames(path: Path | str, limit: int = 20) -> list[str]:
    """A few surnames that occur in the library, for author searches."""
    with Library(path) as library:
        rows = library.execute(
            "select authors_text from papers where cast(pmid as integer) % 997 = 0 order by pmid limit ?", [limit]
        ).fetchall()
        return [row[0].split(";")[0].split()[0] for row in rows]
