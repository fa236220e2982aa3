"""Papers citing the review as four indexes see them: PubMed, iCite, Europe PMC and OpenAlex.

Built on the PubMed world of ``tests/data/records.py``. At first every index knows the review's ten
citing papers (PubMed's ``citedin`` included). ``add_new_citations`` then brings what a lab would see
over the next weeks, split across the indexes the way real coverage differs: a paper in all four, papers
that only iCite or only Europe PMC or only OpenAlex lists, a Research Square preprint only Europe PMC
lists (its DOI in upper case there), a preprint both Europe PMC and OpenAlex list (OpenAlex writes its DOI
as a URL), a bioRxiv preprint that PubMed indexes later (``index_preprint_in_pubmed``), a journal article
PubMed lacks, an article only PMC holds (Europe PMC lists it by PMCID), and a patent. All records are
invented; their DOIs and ids are made up.
"""

from __future__ import annotations

from datetime import date

from tests.data.records import REVIEW_CITED_BY, REVIEW_PMID, build_world
from tests.stand_ins.literature import Literature, Work
from tests.stand_ins.pubmed_world import Author, record

ALL_FOUR_PMID = "39300001"
ICITE_EPMC_PMID = "39300002"
ICITE_ONLY_PMID = "39300003"
EPMC_ONLY_PMID = "39300004"
OPENALEX_ONLY_PMID = "39300005"
PREPRINT_LATER_PMID = "39400001"  # the PMID PubMed gives the bioRxiv preprint later

NEW_PMIDS = (ALL_FOUR_PMID, ICITE_EPMC_PMID, ICITE_ONLY_PMID, EPMC_ONLY_PMID, OPENALEX_ONLY_PMID)

PREPRINT_EPMC = Work(
    key="preprint-epmc",
    title="A CD25-biased interleukin-2 mutein restores regulatory T cells in a humanised lupus model",
    abstract="<h4>Background</h4>Regulatory T cells fail in lupus. <h4>Results</h4>A CD25-biased IL-2 mutein "
    "expanded FOXP3<sup>+</sup> regulatory T cells and reduced proteinuria in humanised mice.",
    authors=(("Amara", "Okafor"), ("Lena", "Vogt"), ("Hiroshi", "Tanaka")),
    doi="10.21203/rs.3.rs-5512345/v1",
    ppr="PPR810001",
    server="Research Square",
    published=date(2024, 6, 18),
    first_indexed=date(2024, 6, 19),
    created=date(2024, 6, 19),
    doi_as_written=(("europepmc", "10.21203/RS.3.RS-5512345/V1"),),
)
PREPRINT_SHARED = Work(
    key="preprint-shared",
    title="Orthogonal IL-2 receptor pairs for CAR T cells in solid tumours",
    abstract="Orthogonal IL-2 and IL-2Rβ pairs let engineered T cells expand without systemic toxicity. "
    "In mice with solid tumours, orthogonal IL-2 drove tumour regression.",
    authors=(("Sofia", "Marquez"), ("Daniel", "Kim")),
    doi="10.21203/rs.3.rs-5600001/v1",
    ppr="PPR810002",
    server="Research Square",
    published=date(2024, 6, 21),
    first_indexed=date(2024, 6, 22),
    created=date(2024, 6, 23),
    doi_as_written=(
        ("europepmc", "10.21203/RS.3.RS-5600001/V1"),
        ("openalex", "https://doi.org/10.21203/rs.3.rs-5600001/v1"),
    ),
)
PREPRINT_LATER = Work(
    key="preprint-later",
    title="Partial IL-2 agonists preserve stem-like CD8 T cells during adoptive transfer",
    abstract="Partial agonists of the IL-2 receptor kept CD8 T cells stem-like. Transferred cells controlled "
    "tumours for longer.",
    authors=(("Priya", "Raman"), ("Jonas", "Berg")),
    doi="10.1101/2024.06.25.600123",
    ppr="PPR810003",
    server="bioRxiv",
    published=date(2024, 6, 25),
    first_indexed=date(2024, 6, 26),
    created=date(2024, 6, 26),
)
OPENALEX_ARTICLE = Work(
    key="openalex-article",
    title="Interleukin-2 immunocytokines targeted to the tumour stroma: a phase I experience",
    abstract="A stroma-targeted IL-2 immunocytokine was given to 24 patients. Disease control was seen in 9.",
    authors=(("Marta", "Nowak"), ("Ahmed", "Hassan"), ("Claire", "Dubois")),
    doi="10.9999/jimm.2024.0042",
    kind="article",
    server="Journal of Imaginary Immunology",
    europepmc_source="",
    published=date(2024, 6, 10),
    first_indexed=date(2024, 6, 24),
    created=date(2024, 6, 24),
)
PMC_ONLY = Work(
    key="pmc-only",
    title="Interleukin-2 signalling in tissue-resident memory T cells of the human gut",
    abstract="Tissue-resident memory T cells in the gut respond to low-dose IL-2. CD25 is induced within hours.",
    authors=(("Ines", "Moreau"), ("Tomas", "Novak")),
    europepmc_source="PMC",
    europepmc_id="PMC9876543",
    kind="article",
    server="Mucosal Immunology Reports",
    published=date(2024, 6, 14),
    first_indexed=date(2024, 6, 17),
)
PATENT = Work(
    key="patent",
    title="IL-2 muteins with reduced CD122 binding and methods of use",
    authors=(("Grace", "Lee"),),
    europepmc_source="PAT",
    europepmc_id="WO2024123456",
    kind="patent",
    server="WIPO",
    published=date(2024, 6, 13),
    first_indexed=date(2024, 6, 20),
)
NEW_WORKS = (PREPRINT_EPMC, PREPRINT_SHARED, PREPRINT_LATER, OPENALEX_ARTICLE, PMC_ONLY, PATENT)

_NEW_RECORDS = {
    ALL_FOUR_PMID: (
        "Low-dose IL-2 in alopecia areata: a randomised trial",
        "2024-06-20",
        ("pubmed", "icite", "europepmc", "openalex"),
    ),
    ICITE_EPMC_PMID: (
        "Efavaleukin alfa and regulatory T cells in ulcerative colitis",
        "2024-06-21",
        ("icite", "europepmc", "openalex"),
    ),
    ICITE_ONLY_PMID: ("CD122-biased IL-2 with PD-1 blockade in melanoma", "2024-06-22", ("icite",)),
    EPMC_ONLY_PMID: ("Structure of an IL-2 partial agonist bound to its receptor", "2024-06-23", ("europepmc",)),
    OPENALEX_ONLY_PMID: ("Nemvaleukin alfa in platinum-resistant ovarian cancer", "2024-06-24", ("openalex",)),
}


def build_literature() -> Literature:
    """The PubMed world, with every index knowing the review's ten citing papers."""
    literature = Literature(build_world())
    for pmid in REVIEW_CITED_BY:
        literature.cite(pmid, REVIEW_PMID)
    return literature


def add_new_citations(literature: Literature) -> None:
    """What arrives after the first poll: new citing papers, split across the indexes."""
    for pmid, (title, entered, indexes) in _NEW_RECORDS.items():
        literature.world.add(
            record(
                pmid, title=title, entry_date=entered, authors=[Author("Ng", "Wei", "W"), Author("Costa", "Ana", "A")]
            )
        )
        literature.cite(pmid, REVIEW_PMID, indexes)
    for work in NEW_WORKS:
        literature.add_work(work)
    literature.cite(PREPRINT_EPMC.key, REVIEW_PMID, ("europepmc",))
    literature.cite(PREPRINT_SHARED.key, REVIEW_PMID, ("europepmc", "openalex"))
    literature.cite(PREPRINT_LATER.key, REVIEW_PMID, ("europepmc",))
    literature.cite(OPENALEX_ARTICLE.key, REVIEW_PMID, ("openalex",))
    literature.cite(PMC_ONLY.key, REVIEW_PMID, ("europepmc",))
    literature.cite(PATENT.key, REVIEW_PMID, ("europepmc",))


def index_preprint_in_pubmed(literature: Literature) -> None:
    """PubMed indexes the bioRxiv preprint (same DOI, a PMID now); PubMed and iCite list it as citing."""
    literature.index_in_pubmed(
        PREPRINT_LATER.key,
        PREPRINT_LATER_PMID,
        record(
            PREPRINT_LATER_PMID,
            title=PREPRINT_LATER.title,
            entry_date="2024-07-02",
            doi=PREPRINT_LATER.doi,
            journal="bioRxiv : the preprint server for biology",
            journal_iso="bioRxiv",
            pub_types=["Preprint"],
            authors=[Author("Raman", "Priya", "P"), Author("Berg", "Jonas", "J")],
        ),
    )
    literature.cite(PREPRINT_LATER_PMID, REVIEW_PMID, ("pubmed", "icite", "europepmc"))
