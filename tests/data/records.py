"""A small PubMed around the engineered-IL-2 review, written for il2watch's tests.

The review (PMID 35217787) is real and described by its citation facts; every other record
is invented in the style of PubMed records (their PMIDs, DOIs, PMC ids, titles, abstracts
and authors are made up), chosen so each shape il2watch must handle occurs once: Treg-
selective muteins, low-dose IL-2 in lupus, not-alpha IL-2 in cancer, IL-15, a structured
abstract, inline markup, a MedlineDate, no abstract, a collective author, non-ASCII names,
a book chapter, a retraction, an erratum, a preprint, a non-English article.
"""

from __future__ import annotations

from datetime import date

from tests.stand_ins.pubmed_world import Author, PubMedWorld, Record, record

WORLD_TODAY = date(2024, 6, 15)  # the world's "today": reldate limits count back from here

REVIEW_PMID = "35217787"
REFERENCE_PMID = "26314281"  # older paper the review cites
MEDLINE_DATE_PMID = "34846754"  # PubDate is a MedlineDate, "2021 Nov-Dec"; cited by the review
TREG_MUTEIN_PMID = "36104538"  # Treg-selective mutein; has an erratum
RETRACTED_PMID = "36221045"
ERRATUM_PMID = "36322910"
LOW_DOSE_SLE_PMID = "36598702"  # structured abstract ending in CONCLUSIONS; non-ASCII authors
NO_ABSTRACT_PMID = "36931456"  # a letter commenting on the review
IL15_PMID = "37138012"  # similar to the review, does not cite it
MARKUP_PMID = "37402213"  # <i>, <sup>, <sub> and & in title and abstract
NOT_ALPHA_CANCER_PMID = "37591166"  # not-alpha IL-2 in cancer; free full text in PMC
BOOK_PMID = "37603210"  # a StatPearls chapter (PubmedBookArticle)
RETRACTION_NOTICE_PMID = "37845510"
GERMAN_PMID = "37950012"  # language "ger", bracketed English title, VernacularTitle
COLLECTIVE_PMID = "38123456"  # a consortium among the authors
PREPRINT_PMID = "38496577"  # bioRxiv preprint
IMMUNOCOMPLEX_PMID = "38702233"  # IL-2/anti-IL-2 complexes review
UNRELATED_PMID = "38811102"  # nothing to do with IL-2: no links, no query match

# Papers citing the review, newest PMID first (ELink's order).
REVIEW_CITED_BY = (
    IMMUNOCOMPLEX_PMID,
    PREPRINT_PMID,
    COLLECTIVE_PMID,
    GERMAN_PMID,
    NOT_ALPHA_CANCER_PMID,
    MARKUP_PMID,
    NO_ABSTRACT_PMID,
    LOW_DOSE_SLE_PMID,
    RETRACTED_PMID,
    TREG_MUTEIN_PMID,
)
REVIEW_REFERENCES = (MEDLINE_DATE_PMID, REFERENCE_PMID)
REVIEW_SELF_SCORE = 88431209
# The review's similar articles with their scores, best first (ELink lists the review itself before them).
REVIEW_SIMILAR = (
    (TREG_MUTEIN_PMID, 41873520),
    (MARKUP_PMID, 39210466),
    (NOT_ALPHA_CANCER_PMID, 35517009),
    (LOW_DOSE_SLE_PMID, 33902871),
    (MEDLINE_DATE_PMID, 31880412),
    (IMMUNOCOMPLEX_PMID, 30155733),
    (IL15_PMID, 27640190),
    (COLLECTIVE_PMID, 25318007),
    (REFERENCE_PMID, 22960115),
    (GERMAN_PMID, 20417286),
    (PREPRINT_PMID, 18802451),
    (BOOK_PMID, 16120378),
)

ENGINEERED_IL2_QUERY = (
    '(engineered[tiab] OR mutein*[tiab] OR variant[tiab]) AND ("interleukin-2"[tiab] OR "IL-2"[tiab])'
)
ENGINEERED_IL2_MATCHES = (
    IMMUNOCOMPLEX_PMID,
    PREPRINT_PMID,
    COLLECTIVE_PMID,
    NOT_ALPHA_CANCER_PMID,
    MARKUP_PMID,
    RETRACTED_PMID,
    TREG_MUTEIN_PMID,
    REVIEW_PMID,
)
ENGINEERED_IL2_TRANSLATION = (
    '("engineered"[Title/Abstract] OR "mutein*"[Title/Abstract] OR "variant"[Title/Abstract]) AND '
    '("interleukin 2"[Title/Abstract] OR "il 2"[Title/Abstract])'
)

_MIAMI = "Department of Microbiology and Immunology, University of Miami Miller School of Medicine, Miami, FL, USA."


def _records() -> list[Record]:
    return [
        record(
            REVIEW_PMID,
            title="Engineering IL-2 for immunotherapy of autoimmunity and cancer.",
            abstract=[
                (
                    "",
                    "",
                    "Interleukin-2 (IL-2) drives the expansion of regulatory T cells as well as of effector "
                    "lymphocytes, which makes it both an attractive and a difficult drug. Here we discuss how "
                    "the subunits of the IL-2 receptor set the sensitivity of each cell type, why low doses "
                    "favour regulatory T cells, and how engineered IL-2 proteins, including muteins, antibody "
                    "complexes and fusion proteins, shift the balance towards tolerance in autoimmunity or "
                    "towards immunity in cancer. We consider the pharmacology and the clinical experience with "
                    "these agents and the questions that remain for their development.",
                )
            ],
            authors=[
                Author("Hernandez", "Rosmely", "R", affiliation=_MIAMI),
                Author("Põder", "Janika", "J", affiliation=_MIAMI),
                Author("LaPorte", "Kathryn M", "KM", affiliation=_MIAMI),
                Author("Malek", "Thomas R", "TR", affiliation=_MIAMI),
            ],
            journal="Nature reviews. Immunology",
            journal_iso="Nat Rev Immunol",
            issn="1474-1741",
            nlm_unique_id="101124169",
            country="England",
            volume="22",
            issue="10",
            pages="614-628",
            pub_year=2022,
            pub_month="Oct",
            entry_date=date(2022, 2, 26),
            doi="10.1038/s41577-022-00680-w",
            pub_types=["Journal Article", "Review", "Research Support, N.I.H., Extramural"],
            mesh=[
                "Animals",
                "Autoimmunity*",
                "Humans",
                "Immunotherapy*",
                "Interleukin-2*",
                "Neoplasms",
                "T-Lymphocytes, Regulatory",
            ],
            corrections=[("CommentIn", NO_ABSTRACT_PMID)],
        ),
        record(
            REFERENCE_PMID,
            title="Regulatory T cells depend on CD25 to sense IL-2 in lymphoid tissue niches.",
            abstract=[
                (
                    "",
                    "",
                    "Regulatory T cells in lymph nodes sit close to IL-2-producing T cells. Using reporter "
                    "mice we show that CD25 expression lets regulatory T cells capture IL-2 at low "
                    "concentrations, and that its loss reduces their numbers in lymphoid tissue.",
                )
            ],
            authors=[Author("Ferreira", "Lúcia", "L"), Author("Kimura", "Haruto", "H")],
            journal="The Journal of experimental medicine",
            journal_iso="J Exp Med",
            issn="1540-9538",
            nlm_unique_id="2985109R",
            country="United States",
            volume="212",
            issue="9",
            pages="1425-1437",
            pub_year=2015,
            pub_month="Aug",
            pub_day="24",
            entry_date=date(2015, 8, 28),
            doi="10.5555/standin.jem.2015.0142",
            mesh=["Animals", "Interleukin-2*", "Mice", "T-Lymphocytes, Regulatory"],
        ),
        record(
            MEDLINE_DATE_PMID,
            title="Signal strength and the division of labour between IL-2 receptor forms.",
            abstract=[
                (
                    "",
                    "",
                    "The intermediate- and high-affinity IL-2 receptors transmit signals of different "
                    "strength. We review how this difference shapes regulatory and effector T cell fates.",
                )
            ],
            authors=[Author("Nakamura", "Aiko", "A"), Author("Brennan", "Siobhán", "S")],
            journal="Current opinion in immunology",
            journal_iso="Curr Opin Immunol",
            issn="1879-0372",
            nlm_unique_id="8900118",
            country="England",
            volume="73",
            issue="",
            pages="45-53",
            medline_date="2021 Nov-Dec",
            pub_year=2021,
            pub_month="",
            entry_date=date(2021, 11, 30),
            doi="10.5555/standin.coi.2021.045",
            pub_types=["Journal Article", "Review"],
        ),
        record(
            TREG_MUTEIN_PMID,
            title="A CD25-biased interleukin-2 mutein expands regulatory T cells without activating NK cells "
            "in cynomolgus monkeys.",
            abstract=[
                (
                    "",
                    "",
                    "Low-dose IL-2 expands regulatory T cells but also activates NK cells and effector T "
                    "cells. We engineered an IL-2 mutein with reduced binding to the IL-2 receptor beta "
                    "chain and fused it to an Fc domain. In cynomolgus monkeys, weekly doses expanded "
                    "regulatory T cells fivefold without expanding NK cells or raising serum cytokines.",
                )
            ],
            authors=[
                Author("Okafor", "Chinedu N", "CN"),
                Author("Lindqvist", "Emma", "E"),
                Author("Ramírez-Soto", "Andrés", "A"),
                Author("Chen", "Yun", "Y"),
            ],
            journal="Science translational medicine",
            journal_iso="Sci Transl Med",
            issn="1946-6242",
            nlm_unique_id="101505086",
            country="United States",
            volume="14",
            issue="662",
            pages="eabn4821",
            pub_year=2022,
            pub_month="Sep",
            pub_day="14",
            entry_date=date(2022, 9, 15),
            doi="10.5555/standin.scitranslmed.abn4821",
            pub_types=["Journal Article", "Research Support, Non-U.S. Gov't"],
            keywords=["IL-2 mutein", "regulatory T cells", "non-human primates"],
            mesh=["Animals", "Interleukin-2*", "T-Lymphocytes, Regulatory"],
            corrections=[("ErratumIn", ERRATUM_PMID)],
        ),
        record(
            RETRACTED_PMID,
            title="Oral delivery of an engineered IL-2 mutein restores tolerance in murine colitis.",
            abstract=[
                (
                    "",
                    "",
                    "We packaged an engineered IL-2 mutein in gut-targeted nanoparticles. Oral dosing "
                    "expanded colonic regulatory T cells and reduced weight loss in two models of colitis.",
                )
            ],
            authors=[Author("Varga", "Zsófia", "Z"), Author("Ibrahim", "Omar", "O")],
            journal="Cell reports",
            journal_iso="Cell Rep",
            issn="2211-1247",
            nlm_unique_id="101573691",
            country="United States",
            volume="41",
            issue="2",
            pages="111475",
            pub_year=2022,
            pub_month="Oct",
            pub_day="11",
            entry_date=date(2022, 10, 12),
            doi="10.5555/standin.celrep.111475",
            pub_types=["Journal Article", "Retracted Publication"],
            corrections=[("RetractionIn", RETRACTION_NOTICE_PMID)],
        ),
        record(
            ERRATUM_PMID,
            title="Publisher Correction: A CD25-biased interleukin-2 mutein expands regulatory T cells without "
            "activating NK cells in cynomolgus monkeys.",
            abstract=[],
            authors=[Author("Okafor", "Chinedu N", "CN"), Author("Chen", "Yun", "Y")],
            journal="Science translational medicine",
            journal_iso="Sci Transl Med",
            issn="1946-6242",
            volume="14",
            issue="670",
            pages="eadf1190",
            pub_year=2022,
            pub_month="Nov",
            pub_day="2",
            entry_date=date(2022, 11, 2),
            doi="10.5555/standin.scitranslmed.adf1190",
            pub_types=["Published Erratum"],
            citation_status="PubMed-not-MEDLINE",
            corrections=[("ErratumFor", TREG_MUTEIN_PMID)],
        ),
        record(
            LOW_DOSE_SLE_PMID,
            title="Low-dose interleukin-2 in systemic lupus erythematosus: a randomised, double-blind, "
            "placebo-controlled trial.",
            abstract=[
                (
                    "BACKGROUND",
                    "BACKGROUND",
                    "Regulatory T cells are deficient in systemic lupus erythematosus (SLE). Low-dose IL-2 "
                    "expands them, but its clinical benefit has not been shown in a controlled trial.",
                ),
                (
                    "METHODS",
                    "METHODS",
                    "Adults with active SLE were randomly assigned to subcutaneous IL-2 (1 million IU) or "
                    "placebo on alternate days for 12 weeks, with standard care.",
                ),
                (
                    "RESULTS",
                    "RESULTS",
                    "Of 100 patients, 53 received IL-2. At week 24 the SRI-4 response rate was 65% with IL-2 "
                    "and 37% with placebo; regulatory T cells rose threefold. No serious infections occurred.",
                ),
                (
                    "CONCLUSIONS",
                    "CONCLUSIONS",
                    "Low-dose IL-2 was safe and improved disease activity in SLE, supporting larger trials.",
                ),
            ],
            authors=[
                Author("Þórsdóttir", "Guðrún", "G"),
                Author("Núñez", "María José", "MJ"),
                Author("Dubois", "Élodie", "É"),
                Author("Wójcik", "Łukasz", "Ł"),
            ],
            journal="Annals of the rheumatic diseases",
            journal_iso="Ann Rheum Dis",
            issn="1468-2060",
            nlm_unique_id="0372355",
            country="England",
            volume="82",
            issue="2",
            pages="243-252",
            pub_year=2023,
            pub_month="Feb",
            entry_date=date(2023, 1, 4),
            doi="10.5555/standin.ard.2022.223408",
            pub_types=["Journal Article", "Randomized Controlled Trial", "Clinical Trial, Phase II"],
            keywords=["interleukin-2", "lupus", "regulatory T cells"],
            mesh=["Humans", "Interleukin-2*", "Lupus Erythematosus, Systemic*", "Female", "Male"],
        ),
        record(
            NO_ABSTRACT_PMID,
            title="Low-dose IL-2 for autoimmunity: the dose is the drug.",
            abstract=[],
            authors=[Author("Haddad", "Rania", "R")],
            journal="Nature reviews. Immunology",
            journal_iso="Nat Rev Immunol",
            issn="1474-1741",
            nlm_unique_id="101124169",
            country="England",
            volume="23",
            issue="4",
            pages="262",
            pub_year=2023,
            pub_month="Apr",
            entry_date=date(2023, 3, 17),
            doi="10.5555/standin.nri.2023.0262",
            pub_types=["Letter", "Comment"],
            citation_status="PubMed-not-MEDLINE",
            corrections=[("CommentOn", REVIEW_PMID)],
        ),
        record(
            IL15_PMID,
            title="An IL-15 superagonist complex drives NK cell expansion without activating regulatory T cells.",
            abstract=[
                (
                    "",
                    "",
                    "IL-15 shares the beta and gamma chains of the IL-2 receptor but not CD25. A complex of "
                    "IL-15 with its receptor alpha chain expanded NK cells and memory CD8 T cells in mice "
                    "while leaving regulatory T cells unchanged.",
                )
            ],
            authors=[Author("Sato", "Kenji", "K"), Author("Petrović", "Ana", "A")],
            journal="Frontiers in immunology",
            journal_iso="Front Immunol",
            issn="1664-3224",
            nlm_unique_id="101560960",
            country="Switzerland",
            volume="14",
            issue="",
            pages="1152087",
            pub_year=2023,
            pub_month="Apr",
            pub_day="28",
            entry_date=date(2023, 5, 3),
            doi="10.5555/standin.fimmu.2023.1152087",
            pmcid="PMC10151234",
            pub_model="Electronic-eCollection",
            publication_status="epublish",
            keywords=["IL-15", "NK cells", "superagonist"],
        ),
        record(
            MARKUP_PMID,
            title="Selective expansion of Foxp3<sup>+</sup> regulatory T cells by an IL-2 mutein with reduced "
            "IL-2Rβγ<sub>c</sub> signalling in <i>Il2ra</i>-sufficient & <i>Il2ra</i>-haploinsufficient mice.",
            abstract=[
                (
                    "",
                    "",
                    "An IL-2 mutein with weakened IL-2Rβ binding (K<sub>D</sub> > 100 nM) expanded "
                    "CD4<sup>+</sup>CD25<sup>hi</sup>Foxp3<sup>+</sup> cells <i>in vivo</i> while "
                    "CD8<sup>+</sup> T cells did not respond (p < 0.01). STAT5 phosphorylation in "
                    "<i>Il2ra</i><sup>+/−</sup> regulatory T cells was halved.",
                )
            ],
            authors=[Author("O'Connell", "Brídín", "B"), Author("Yılmaz", "Deniz", "D")],
            journal="European journal of immunology",
            journal_iso="Eur J Immunol",
            issn="1521-4141",
            nlm_unique_id="1273201",
            country="Germany",
            volume="53",
            issue="9",
            pages="e2350412",
            pub_year=2023,
            pub_month="Sep",
            entry_date=date(2023, 7, 3),
            doi="10.5555/standin.eji.2350412",
            mesh=["Animals", "Interleukin-2*", "Mice"],
        ),
        record(
            NOT_ALPHA_CANCER_PMID,
            title="A not-alpha interleukin-2 variant with PD-1 blockade in advanced solid tumours: a phase 1 "
            "dose-escalation study.",
            abstract=[
                (
                    "",
                    "",
                    "Not-alpha IL-2 variants avoid CD25 and so spare regulatory T cells. In 38 patients with "
                    "advanced solid tumours, the variant with pembrolizumab expanded CD8 T cells and NK "
                    "cells; the objective response rate was 18% and capillary leak did not occur.",
                )
            ],
            authors=[Author("Adeyemi", "Folake", "F"), Author("Larsen", "Mikkel", "M"), Author("Gupta", "Ananya", "A")],
            journal="Nature medicine",
            journal_iso="Nat Med",
            issn="1546-170X",
            nlm_unique_id="9502015",
            country="United States",
            volume="29",
            issue="8",
            pages="2011-2020",
            pub_year=2023,
            pub_month="Aug",
            entry_date=date(2023, 8, 18),
            doi="10.5555/standin.natmed.2023.2011",
            pmcid="PMC10432217",
            pub_types=["Journal Article", "Clinical Trial, Phase I", "Research Support, Non-U.S. Gov't"],
            keywords=["IL-2", "CD122", "immunotherapy"],
            mesh=["Humans", "Interleukin-2*", "Neoplasms"],
        ),
        record(
            BOOK_PMID,
            title="Aldesleukin",
            abstract=[
                (
                    "",
                    "",
                    "Aldesleukin is a recombinant interleukin-2 used for metastatic renal cell carcinoma and "
                    "melanoma. This activity reviews its indications, dosing, capillary leak syndrome and "
                    "the monitoring needed during high-dose therapy.",
                )
            ],
            authors=[Author("Rahman", "Sadia", "S"), Author("Ortiz-Peña", "Luis", "L")],
            journal="StatPearls",
            publisher="StatPearls Publishing",
            publisher_location="Treasure Island (FL)",
            book_accession="NBK594120",
            is_book=True,
            issn="",
            volume="",
            issue="",
            pages="",
            pub_year=2024,
            pub_month="Jan",
            entry_date=date(2023, 8, 22),
            doi="",
            pub_types=["Review"],
            copyright="Copyright © 2024, StatPearls Publishing LLC.",
            citation_status="PubMed-not-MEDLINE",
        ),
        record(
            RETRACTION_NOTICE_PMID,
            title="Retraction Notice to: Oral delivery of an engineered IL-2 mutein restores tolerance in murine "
            "colitis.",
            abstract=[],
            authors=[],
            journal="Cell reports",
            journal_iso="Cell Rep",
            issn="2211-1247",
            volume="42",
            issue="10",
            pages="113190",
            pub_year=2023,
            pub_month="Oct",
            entry_date=date(2023, 10, 17),
            doi="10.5555/standin.celrep.113190",
            pub_types=["Retraction of Publication"],
            citation_status="PubMed-not-MEDLINE",
            corrections=[("RetractionOf", RETRACTED_PMID)],
        ),
        record(
            GERMAN_PMID,
            title="[Low-dose interleukin-2 therapy in autoimmune diseases].",
            vernacular_title="Niedrig dosierte Interleukin-2-Therapie bei Autoimmunerkrankungen.",
            abstract=[
                (
                    "",
                    "",
                    "Low-dose interleukin-2 expands regulatory T cells. This article summarises trials in "
                    "lupus, type 1 diabetes and graft-versus-host disease for rheumatologists in practice.",
                )
            ],
            authors=[Author("Müller", "Jürgen", "J"), Author("Schäfer", "Anke", "A")],
            journal="Zeitschrift fur Rheumatologie",
            journal_iso="Z Rheumatol",
            issn="1435-1250",
            nlm_unique_id="0414162",
            country="Germany",
            volume="82",
            issue="10",
            pages="850-858",
            pub_year=2023,
            pub_month="Dec",
            entry_date=date(2023, 11, 10),
            doi="10.5555/standin.zrheum.2023.850",
            language="ger",
            pub_types=["Journal Article", "Review", "English Abstract"],
        ),
        record(
            COLLECTIVE_PMID,
            title="Consensus recommendations for clinical trials of engineered interleukin-2 therapies in "
            "autoimmune disease.",
            abstract=[
                (
                    "",
                    "",
                    "An international panel agreed on outcome measures, dose-finding designs and regulatory "
                    "T cell assays for trials of IL-2 muteins and low-dose IL-2 in autoimmune disease.",
                )
            ],
            authors=[
                Author("Søndergaard", "Astrid", "A"),
                Author("Lindström", "Åsa", "Å"),
                Author(collective="IL-2 Therapeutics in Autoimmunity (ITA) Consortium"),
            ],
            journal="The Lancet. Rheumatology",
            journal_iso="Lancet Rheumatol",
            issn="2665-9913",
            nlm_unique_id="101765308",
            country="England",
            volume="6",
            issue="1",
            pages="e55-e64",
            pub_year=2024,
            pub_month="Jan",
            entry_date=date(2023, 12, 21),
            doi="10.5555/standin.lanrhe.2023.e55",
            pub_types=["Journal Article", "Review"],
        ),
        record(
            PREPRINT_PMID,
            title="An IL-2 mutein tethered to a CD25 nanobody expands human regulatory T cells in humanised mice.",
            abstract=[
                (
                    "",
                    "",
                    "Tethering an IL-2 mutein to a CD25-specific nanobody concentrated it on regulatory T "
                    "cells. In humanised mice it expanded human regulatory T cells and delayed xenogeneic "
                    "graft-versus-host disease.",
                )
            ],
            authors=[Author("Kovács", "Bence", "B"), Author("Mensah", "Akosua", "A")],
            journal="bioRxiv : the preprint server for biology",
            journal_iso="bioRxiv",
            issn="2692-8205",
            nlm_unique_id="101680187",
            country="United States",
            volume="",
            issue="",
            pages="2024.03.11.584512",
            pub_year=2024,
            pub_month="Mar",
            pub_day="14",
            entry_date=date(2024, 3, 19),
            doi="10.1101/2024.03.11.584512",
            pmcid="PMC10950123",
            pub_types=["Preprint"],
            pub_model="Electronic",
            publication_status="epublish",
            citation_status="PubMed-not-MEDLINE",
        ),
        record(
            IMMUNOCOMPLEX_PMID,
            title="IL-2/anti-IL-2 antibody complexes in autoimmunity and cancer: where do they stand?",
            abstract=[
                (
                    "",
                    "",
                    "Antibodies that bind IL-2 can steer it towards CD25 or away from it. We review "
                    "engineered complexes and single-chain fusions that favour regulatory T cells or "
                    "effector cells, and compare them with IL-2 muteins.",
                )
            ],
            authors=[Author("Zhang", "Wei", "W"), Author("Moreau", "Céline", "C")],
            journal="Journal of autoimmunity",
            journal_iso="J Autoimmun",
            issn="1095-9157",
            nlm_unique_id="8812164",
            country="England",
            volume="146",
            issue="",
            pages="103215",
            pub_year=2024,
            pub_month="Jun",
            entry_date=date(2024, 5, 4),
            doi="10.5555/standin.jaut.2024.103215",
            pub_types=["Journal Article", "Review"],
        ),
        record(
            UNRELATED_PMID,
            title="Sleep duration and mood in shift-working nurses: a cohort study.",
            abstract=[
                (
                    "",
                    "",
                    "We followed 412 nurses for a year. Shorter sleep after night shifts predicted lower "
                    "mood scores the next week.",
                )
            ],
            authors=[Author("Hughes", "Megan", "M")],
            journal="Sleep medicine",
            journal_iso="Sleep Med",
            issn="1878-5506",
            nlm_unique_id="100898759",
            country="Netherlands",
            volume="119",
            issue="",
            pages="210-217",
            pub_year=2024,
            pub_month="Jul",
            entry_date=date(2024, 5, 30),
            doi="10.5555/standin.sleep.2024.210",
            pub_types=["Journal Article", "Observational Study"],
        ),
    ]


def build_world(*, today: date = WORLD_TODAY) -> PubMedWorld:
    """The world above, with its citations, similar articles and the engineered-IL-2 query."""
    world = PubMedWorld(_records(), today=today)
    for citing in REVIEW_CITED_BY:
        world.cite(citing, REVIEW_PMID)
    for cited in REVIEW_REFERENCES:
        world.cite(REVIEW_PMID, cited)
    world.cite(MARKUP_PMID, TREG_MUTEIN_PMID)
    world.cite(IMMUNOCOMPLEX_PMID, LOW_DOSE_SLE_PMID)
    world.cite(IMMUNOCOMPLEX_PMID, NOT_ALPHA_CANCER_PMID)
    world.set_similar(REVIEW_PMID, REVIEW_SIMILAR, self_score=REVIEW_SELF_SCORE)
    world.set_similar(
        TREG_MUTEIN_PMID,
        [(MARKUP_PMID, 45110302), (REVIEW_PMID, 41873520), (PREPRINT_PMID, 38002211), (RETRACTED_PMID, 30112008)],
    )
    world.set_similar(
        LOW_DOSE_SLE_PMID, [(GERMAN_PMID, 52004417), (COLLECTIVE_PMID, 40110925), (REVIEW_PMID, 33902871)]
    )
    world.add_query(ENGINEERED_IL2_QUERY, ENGINEERED_IL2_MATCHES, translation=ENGINEERED_IL2_TRANSLATION)
    return world


# ---------------------------------------------------------------- shapes real PubMed records take
# Invented records in the shapes that 228 real records showed il2watch mishandling (issue 10). They are
# not in build_world(); a test adds the ones it needs with ``world.add(*real_shape_records())``.

MATHML_PMID = "39100001"  # MathML in the abstract (mml:math with msub, msup, mfrac, mo), as PubMed writes it
SEASON_PMID = "39100002"  # PubDate with <Season>Winter</Season>
SEASON_RANGE_PMID = "39100003"  # PubDate with <Season>Jan-Mar</Season>
SCRIPTS_PMID = "39100004"  # italics inside sub/sup; scripts without a Unicode form (LE_min, GeneReviews^®)
SUFFIX_PMID = "39100005"  # authors with Jr, Sr, 3rd
UNKNOWN_ELEMENT_PMID = "39100006"  # an element the DTD does not know: Bio.Entrez rejects the record
NO_ARTICLE_PMID = "39100007"  # a MedlineCitation without its <Article>
DISPLAY_FORMULA_PMID = "39100008"  # a DispFormula around MathML in the abstract

_MML = 'xmlns:mml="http://www.w3.org/1998/Math/MathML"'
_KD_MATH = (
    f'<mml:math {_MML} alttext="K_{{d}}" display="inline"><mml:msub><mml:mi>K</mml:mi>'
    "<mml:mi>d</mml:mi></mml:msub></mml:math>"
)
_RATIO_MATH = (
    f'<mml:math {_MML} display="inline"><mml:mrow><mml:msup><mml:mi>r</mml:mi><mml:mn>2</mml:mn></mml:msup>'
    "<mml:mo>=</mml:mo><mml:mfrac><mml:mn>1</mml:mn><mml:mrow><mml:mn>1</mml:mn><mml:mo>+</mml:mo>"
    "<mml:mi>τ</mml:mi></mml:mrow></mml:mfrac></mml:mrow></mml:math>"
)


def real_shape_records() -> list[Record]:
    """One record for each shape above, entered on WORLD_TODAY."""
    today = WORLD_TODAY
    return [
        record(
            MATHML_PMID,
            title="Affinity maturation of an IL-2 mutein for CD25.",
            abstract=[
                (
                    "",
                    "",
                    "The mutein bound CD25 with an affinity FORMULA_KD of 4 nM, and its signalling followed "
                    "FORMULA_RATIO across regulatory T cell doses.",
                )
            ],
            entry_date=today,
            replace_xml=(("FORMULA_KD", _KD_MATH), ("FORMULA_RATIO", _RATIO_MATH)),
        ),
        record(
            SEASON_PMID,
            title="Low-dose interleukin-2 in chronic graft-versus-host disease: a winter issue report.",
            pub_year=2013,
            pub_season="Winter",
            entry_date=today,
        ),
        record(
            SEASON_RANGE_PMID,
            title="Interleukin-2 receptor expression on NK cells: a quarterly report.",
            pub_year=2013,
            pub_season="Jan-Mar",
            entry_date=today,
        ),
        record(
            SCRIPTS_PMID,
            title="Binding K<sub><i>d</i></sub> of a CD25-biased IL-2 and T<sub>reg</sub> expansion.",
            abstract=[
                (
                    "",
                    "",
                    "Ligand efficiency LE<sub>min</sub> and k<sub>cat</sub> were measured; dosing followed "
                    "GeneReviews<sup>®</sup> and CD4<sup>+</sup>CD25<sup>hi</sup> cells rose 10<sup>3</sup>-fold.",
                )
            ],
            entry_date=today,
        ),
        record(
            SUFFIX_PMID,
            title="Interleukin-2 therapy across three generations of a clinical group.",
            authors=[
                Author("Whitfield", "Harold", "H", suffix="Jr"),
                Author("Whitfield", "Harold", "H", suffix="Sr"),
                Author("Okafor", "Daniel", "D", suffix="3rd"),
                Author("Lindqvist", "Maja", "M"),
            ],
            entry_date=today,
        ),
        record(
            UNKNOWN_ELEMENT_PMID,
            title="An IL-2 variant whose record carries an element the DTD does not know.",
            entry_date=today,
            replace_xml=(("<Language>", "<ArticleFlavour>new</ArticleFlavour><Language>"),),
        ),
        record(
            NO_ARTICLE_PMID,
            title="An IL-2 record that arrived without its Article.",
            entry_date=today,
            drop_elements=("Article",),
        ),
        record(
            DISPLAY_FORMULA_PMID,
            title="A displayed formula for IL-2 receptor occupancy.",
            abstract=[("", "", "Occupancy followed FORMULA_DISPLAY at steady state.")],
            entry_date=today,
            replace_xml=(("FORMULA_DISPLAY", f"<DispFormula>{_RATIO_MATH}</DispFormula>"),),
        ),
    ]
