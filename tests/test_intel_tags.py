import pytest

from il2watch.intel import (
    IL2_AXES,
    analyse,
    concerned_pmids,
    default_lexicon,
    find_trials,
    publication_flags,
    trial_url,
)
from il2watch.intel.tags import il2_evidence, is_il2
from il2watch.model import AXES, AXIS_LABELS, FLAG_LABELS, FLAGS, Author, Paper, Reason, Section


def paper(title: str, *abstract: str, pub_types=("Journal Article",), **fields) -> Paper:
    return Paper(
        pmid="1", title=title, abstract=tuple(Section(text) for text in abstract), pub_types=pub_types, **fields
    )


# ---- IL-2 or not ---------------------------------------------------------------------------------


def test_title_naming_il2_makes_an_il2_paper():
    insight = analyse(paper("Interleukin-2 signalling in T cells", "T cells were studied in mice."))
    assert insight.is_il2 is True


def test_il2_agent_in_the_title_is_enough():
    insight = analyse(paper("NKTR-214 in solid tumours: a phase 1 study", "Patients received it with anti-PD-1."))
    assert insight.is_il2 is True
    assert insight.axis == "effector"


def test_il2_agent_named_once_in_passing_is_not():
    text = "Patients with melanoma previously treated with high-dose IL-2 received tebentafusp. Survival improved."
    insight = analyse(paper("Tebentafusp in uveal melanoma", text))
    assert insight.is_il2 is False
    assert insight.molecules == ("high-dose IL-2",)


@pytest.mark.parametrize(
    ("title", "abstract"),
    [
        # other interleukins: IL-21, IL-23, IL-12 share the prefix, not the cytokine
        ("IL-21 drives germinal centres", "IL-21 and IL-21R signalling via STAT3. IL-22 and IL-23 were unchanged."),
        (
            "Risankizumab blocks IL-23 in Crohn's disease",
            "Interleukin 23 inhibition induced remission. IL-12 was spared.",
        ),
        # IL-2 as an assay read-out, a supplement, a list item
        (
            "Checkpoint blockade in liver cancer",
            "CD8 T cells producing IFN-γ, TNF-α and IL-2 increased. Cells were maintained in medium containing IL-2. "
            "IL-2 production and IL-2 secretion were measured with an IL-2 ELISpot.",
        ),
        # a kinase named after IL-2
        (
            "Inhibiting interleukin-2-inducible T-cell kinase in lymphoma",
            "ITK (IL-2-inducible kinase) inhibition killed cells.",
        ),
        # the shared receptor in an IL-15 paper
        ("IL-15 trans-presentation", "IL-15 acts on cells expressing IL-2/IL-15Rβ and γc. IL-15Rα presents IL-15."),
    ],
)
def test_hard_negatives_are_not_il2(title, abstract):
    assert analyse(paper(title, abstract)).is_il2 is False


def test_author_named_like_an_il2_researcher_changes_nothing():
    authors = (Author("Malek", "Thomas", "TR"), Author("Hernandez", "Rosa", "R"))
    insight = analyse(
        paper("Pancreatic duct stones", "Lithotripsy cleared stones in 78%."),
    )
    with_authors = analyse(paper("Pancreatic duct stones", "Lithotripsy cleared stones in 78%.", authors=authors))
    assert with_authors == insight
    assert with_authors.is_il2 is False and with_authors.axis == "other"


def test_repeated_substantive_mentions_in_the_abstract_count():
    text = (
        "We engineered IL-2. The IL-2 variant bound IL-2Rβ. IL-2 signalling expanded CD8 T cells in tumours. "
        "IL-2 did so."
    )
    assert analyse(paper("A new cytokine variant", text)).is_il2 is True
    assert analyse(paper("A new cytokine variant", "We engineered IL-2 once.")).is_il2 is False


def test_evidence_separates_passing_from_substantive_mentions():
    evidence = il2_evidence("T cell assays", "IFN-γ and IL-2 release. IL-2 binds CD25.", default_lexicon())
    assert (evidence.in_title, evidence.mentions, evidence.passing) == (False, 1, 1)
    assert not is_il2(evidence)


def test_il2_and_a_neighbour_in_the_title_the_abstract_decides():
    il15 = paper(
        "IL-15 rather than IL-2 sustains NK cells",
        "IL-15 from stroma kept NK cells. IL-15 loss killed them. IL-15 again.",
    )
    il2 = paper(
        "IL-2 rather than IL-15 sustains Tregs", "IL-2 from T cells kept Tregs. IL-2 loss killed them. IL-2 again."
    )
    assert analyse(il15).is_il2 is False and analyse(il15).axis == "neighbour"
    assert analyse(il2).is_il2 is True


# ---- Axis ----------------------------------------------------------------------------------------


def test_axis_treg():
    insight = analyse(
        paper("Low-dose IL-2 in lupus", "Low-dose IL-2 expanded regulatory T cells in patients with SLE.")
    )
    assert (insight.axis, insight.is_il2) == ("treg", True)


def test_axis_effector():
    text = "The IL-2 variant expanded CD8 T cells and NK cells and shrank tumours in patients."
    insight = analyse(paper("A CD122-biased IL-2 for melanoma", text))
    assert (insight.axis, insight.is_il2) == ("effector", True)


def test_axis_biology_when_no_treatment_is_involved():
    insight = analyse(
        paper("Crystal structure of the IL-2 receptor", "IL-2 binds IL-2Rα, IL-2Rβ and γc; the structure shows how.")
    )
    assert (insight.axis, insight.is_il2) == ("biology", True)


def test_treg_words_without_treatment_are_biology():
    insight = analyse(
        paper("Tregs consume IL-2", "Regulatory T cells lacking CD25 failed to capture IL-2 and Foxp3 fell in mice.")
    )
    assert insight.axis == "biology"


def test_axis_neighbour():
    insight = analyse(paper("N-803 in bladder cancer", "The IL-15 superagonist N-803 gave complete responses."))
    assert (insight.axis, insight.is_il2) == ("neighbour", False)
    assert insight.molecules == ("nogapendekin alfa inbakicept",)


def test_axis_other():
    insight = analyse(paper("Empagliflozin in heart failure", "Cardiovascular death fell with empagliflozin."))
    assert (insight.axis, insight.is_il2) == ("other", False)


def test_molecule_leaning_outweighs_stray_cues():
    # A Treg-directed mutein tested in a transplant paper that also mentions tumours in passing.
    text = "Efavaleukin alfa was given to patients. Tumour incidence was unchanged."
    assert analyse(paper("Efavaleukin alfa after transplantation", text)).axis == "treg"


# ---- Molecules and trials ------------------------------------------------------------------------


def test_molecules_are_canonical_names_from_title_and_abstract():
    insight = analyse(paper("THOR-707 versus NKTR-214", "ALKS 4230 was not studied; bempegaldesleukin was."))
    assert insight.molecules == ("SAR444245", "bempegaldesleukin", "nemvaleukin alfa")


def test_trials_are_found_normalised_and_deduplicated():
    text = "Registered at ClinicalTrials.gov (NCT03635983; nct 03635983) and EudraCT 2017-002385-32. See NCT0363598."
    assert find_trials(text) == ("NCT03635983", "2017-002385-32")


def test_eu_ct_numbers_and_dates_are_not_eudract():
    assert find_trials("EU CT 2023-503456-12-00 on 2021-01-01 and 12017-002385-32") == ()


def test_trials_land_in_the_insight():
    insight = analyse(paper("Low-dose IL-2 trial", "Patients got low-dose IL-2 (NCT01937468)."))
    assert insight.trials == ("NCT01937468",)


def test_trial_urls():
    assert trial_url("NCT01937468") == "https://clinicaltrials.gov/study/NCT01937468"
    assert trial_url("2017-002385-32") == "https://www.clinicaltrialsregister.eu/ctr-search/search?query=2017-002385-32"
    with pytest.raises(ValueError):
        trial_url("ISRCTN12345678")


# ---- Publication type flags ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"pub_types": ("Journal Article", "Review")}, ("review",)),
        ({"pub_types": ("Systematic Review",)}, ("review",)),
        ({"pub_types": ("Journal Article", "Clinical Trial, Phase II")}, ("clinical-trial",)),
        ({"pub_types": ("Randomized Controlled Trial",)}, ("clinical-trial",)),
        ({"pub_types": ("Preprint",)}, ("preprint",)),
        ({"pub_types": ("Journal Article",), "journal": "bioRxiv"}, ("preprint",)),
        ({"pub_types": ("Published Erratum",)}, ("erratum",)),
        ({"pub_types": ("Journal Article",), "title": "Correction to: IL-2 in lupus"}, ("erratum",)),
        ({"pub_types": ("Journal Article", "Retracted Publication")}, ("retraction",)),
        ({"pub_types": ("Retraction of Publication",)}, ("retraction",)),
        ({"pub_types": ("Journal Article",), "corrections": (("RetractionIn", "123"),)}, ("retraction",)),
        ({"pub_types": ("Journal Article",), "title": "RETRACTED: IL-2 cures all"}, ("retraction",)),
        ({"pub_types": ("Journal Article",), "corrections": (("ErratumIn", "9"),)}, ()),
        ({"pub_types": ("Journal Article", "Comment")}, ()),
    ],
)
def test_publication_flags(fields, expected):
    fields = {"title": "A paper", **fields}
    assert publication_flags(Paper(pmid="1", **fields)) == expected


def test_retraction_is_flagged_first_so_it_is_shown_loudest():
    retracted = Paper(pmid="1", title="x", pub_types=("Review", "Clinical Trial", "Retracted Publication", "Preprint"))
    assert publication_flags(retracted) == ("retraction", "preprint", "clinical-trial", "review")


def test_every_axis_and_flag_has_one_label():
    assert set(AXIS_LABELS) == set(AXES)
    assert set(FLAG_LABELS) == set(FLAGS)


# ---- Every signal a record carries ---------------------------------------------------------------

CITES = Reason("review", "cites")


def test_citing_the_review_raises_the_prior_but_never_decides_alone():
    fusion = paper("Engineered cytokine/antibody fusions expand regulatory T cells and protect from autoimmune disease")
    assert analyse(fusion).is_il2 is False  # a title that never says IL-2, no other evidence
    cited = analyse(fusion, [CITES])
    assert (cited.is_il2, cited.axis) == (True, "treg")
    in_passing = paper("Anti-PD-1 therapy in advanced melanoma: five-year survival")
    assert analyse(in_passing, [CITES]).is_il2 is False
    other_cytokine = paper("An engineered IL-33 cytokine expands regulatory T cells in colitis")
    assert analyse(other_cytokine, [CITES]).is_il2 is False


def test_similarity_rank_and_votes_move_a_borderline_paper():
    borderline = paper(
        "A cytokine variant for CAR T cells", "IL-2 was engineered. The IL-2 variant bound CD122. IL-2 signalled."
    )
    assert analyse(borderline).is_il2 is False
    assert analyse(borderline, [Reason("review", "similar", 31_000_000, 3)]).is_il2 is True
    assert analyse(borderline, feedback=(2, 0)).is_il2 is True
    clear = paper("Low-dose IL-2 in lupus", "Low-dose IL-2 expanded Tregs in SLE. IL-2 was safe.")
    assert analyse(clear, feedback=(0, 5)).is_il2 is True  # votes do not overrule a clear text
    assert analyse(borderline, [Reason("review", "similar", 1, 3)], feedback=(0, 2)).is_il2 is False


def test_author_keywords_and_mesh_headings_count():
    title = "Selective expansion of Foxp3+ regulatory cells by an engineered protein prevents arthritis"
    assert analyse(paper(title)).is_il2 is False
    assert analyse(paper(title, keywords=("IL-2", "arthritis"))).axis == "treg"
    mesh = ("Humans", "*Interleukin-2/therapeutic use", "Arthritis, Rheumatoid/drug therapy")
    assert analyse(paper(title, mesh=mesh)).is_il2 is True
    headings = analyse(paper("A cytokine for tumours", mesh=("*Interleukin-2/analogs & derivatives", "Neoplasms")))
    assert (headings.is_il2, headings.axis) == (True, "effector")


@pytest.mark.parametrize(
    "title",
    [
        "IL-2 delivered to PD-1+ T cells enhances antitumor immunity",
        "A CD122-biased IL-2 agonist drives tumor regression",
        "Engineered IL-2 cytokines for cancer immunotherapies",
        "PD-1-cis IL-2R agonism yields better effectors from stem-like CD8+ T cells",
        "Intratumoral IL-2 with radiotherapy induces abscopal responses",
    ],
)
def test_effector_wording_in_titles_alone(title):
    assert analyse(paper(title)).axis == "effector"


def test_a_paper_on_both_axes_says_so():
    review = paper("Engineering IL-2 for immunotherapy of autoimmunity and cancer", pub_types=("Review",))
    assert (analyse(review).axis, analyse(review).is_il2) == ("both", True)
    study = paper(
        "A tunable IL-2 platform yields Treg-biased and effector-biased variants",
        "The CD25-biased variant prevented colitis and the CD122-biased variant controlled melanoma in mice.",
    )
    assert analyse(study).axis == "both"


def test_a_side_the_paper_says_it_avoids_does_not_count():
    effector = paper(
        "A not-alpha IL-2 expands tumour-specific CD8 T cells without expanding regulatory T cells",
        "The variant spared Tregs and expanded CD8 T cells in melanoma-bearing mice.",
    )
    assert analyse(effector).axis == "effector"
    treg = paper(
        "A Treg-selective IL-2 mutein in lupus without activating NK cells or CD8 T cells",
        "Patients with SLE received the mutein; Tregs rose threefold.",
    )
    assert analyse(treg).axis == "treg"


def test_mechanism_titles_stay_biology_when_treg_words_abound():
    insight = analyse(
        paper(
            "Loss of IL-2Rα causes autoimmunity through failure of Treg homeostasis",
            "Mice deficient in Il2ra develop autoimmunity. CD25-deficient Tregs were outcompeted. Restoring STAT5 "
            "rescued Treg numbers.",
        )
    )
    assert insight.axis == "biology"


# ---- Notices -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "pub_types", "axis"),
    [
        ("Correction to: A CD122-biased IL-2 agonist drives tumor regression.", ("Published Erratum",), "effector"),
        ("Retraction Note: Low-dose IL-2 expands regulatory T cells in lupus.", ("Retraction of Publication",), "treg"),
        ('Retraction notice to "IL-15 superagonist expands NK cells in melanoma"', ("Journal Article",), "neighbour"),
        ("Erratum.", ("Published Erratum",), "other"),
        ("Notice of retraction.", ("Retraction of Publication",), "other"),
    ],
)
def test_a_notice_takes_the_axis_of_the_paper_it_concerns(title, pub_types, axis):
    insight = analyse(paper(title, pub_types=pub_types))
    assert insight.axis == axis and insight.is_il2 == (axis in IL2_AXES)


def test_a_notice_takes_the_stored_axis_of_the_paper_it_concerns_when_known():
    notice = paper("Erratum.", pub_types=("Published Erratum",), corrections=(("ErratumFor", "123"),))
    assert concerned_pmids(notice) == ("123",)
    insight = analyse(notice, concerned_axis="both")
    assert (insight.axis, insight.is_il2) == ("both", True)
    ordinary = paper("Low-dose IL-2 in lupus", "Tregs rose in SLE with low-dose IL-2.")
    assert analyse(ordinary, concerned_axis="effector").axis == "treg"  # only notices take it


def test_a_notice_takes_the_axis_the_library_stored_for_its_paper(tmp_path):
    from il2watch.config import load_settings
    from il2watch.library import Library
    from il2watch.model import Insight
    from il2watch.service import insight_maker

    settings = load_settings({"IL2WATCH_DB": str(tmp_path / "lib.db")}, cwd=tmp_path)
    with Library(settings.db_path) as library:
        concerned = Paper(pmid="111", title="A paper")
        library.save_papers([concerned], {"111": Insight("s", axis="effector", is_il2=True)})
        erratum = Paper(
            pmid="112", title="Erratum.", pub_types=("Published Erratum",), corrections=(("ErratumFor", "111"),)
        )
        insight = insight_maker(settings, library, summariser=False)(erratum, [])
    assert (insight.axis, insight.is_il2) == ("effector", True)
