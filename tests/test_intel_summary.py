from hypothesis import given, settings
from hypothesis import strategies as st

from il2watch.intel import SUMMARY_LIMIT, ends_sentence, summarise
from il2watch.intel.summary import shorten
from il2watch.model import Paper, Section


def structured(*sections: tuple[str, str], **fields) -> Paper:
    return Paper(pmid="1", title="T", abstract=tuple(Section(text, label, label) for label, text in sections), **fields)


def unstructured(text: str) -> Paper:
    return Paper(pmid="1", title="T", abstract=(Section(text),))


CONCLUSION = "Low-dose IL-2 was well tolerated and improved disease activity in SLE."
KEY_RESULT = "The SRI-4 response rate was 55.1% with IL-2 vs. 30.6% with placebo (p=0.015)."


def test_structured_abstract_gives_key_result_then_conclusion():
    paper = structured(
        ("BACKGROUND", "Regulatory T cells are deficient in lupus."),
        ("METHODS", "Patients were randomised to IL-2 or placebo for 12 weeks."),
        (
            "RESULTS",
            f"Of 100 randomised patients, 97 completed treatment. {KEY_RESULT} Injection-site reactions were common.",
        ),
        ("CONCLUSIONS", f"{CONCLUSION} These results justify a phase 3 trial."),
        ("TRIAL REGISTRATION", "ClinicalTrials.gov NCT02955615."),
    )
    assert summarise(paper) == f"{KEY_RESULT} {CONCLUSION}"


def test_structured_abstract_keeps_the_conclusion_alone_when_the_result_does_not_fit():
    long_result = "Responses were seen in " + ", ".join(f"site {n}" for n in range(60)) + "."
    paper = structured(("RESULTS", long_result), ("CONCLUSIONS", CONCLUSION))
    assert summarise(paper) == CONCLUSION


def test_nlm_categories_are_read_when_labels_differ():
    paper = Paper(
        pmid="1",
        title="T",
        abstract=(
            Section("Tregs matter.", "INTRODUCTION", "BACKGROUND"),
            Section("Tregs rose 3-fold with IL-2 (p<0.01).", "FINDINGS", "RESULTS"),
            Section("IL-2 expands Tregs in people.", "INTERPRETATION", "CONCLUSIONS"),
        ),
    )
    assert summarise(paper) == "Tregs rose 3-fold with IL-2 (p<0.01). IL-2 expands Tregs in people."


def test_unstructured_abstract_prefers_findings_over_background_and_methods():
    paper = unstructured(
        "Interleukin-2 is a pleiotropic cytokine that has been studied for decades. "
        "We engineered a mutein with reduced CD122 binding and tested it in mice. "
        "The mutein expanded Tregs 5-fold without activating NK cells. "
        "These findings suggest that CD122-attenuated muteins can treat autoimmune disease."
    )
    assert summarise(paper) == (
        "The mutein expanded Tregs 5-fold without activating NK cells. "
        "These findings suggest that CD122-attenuated muteins can treat autoimmune disease."
    )


def test_topic_terms_steer_the_choice_between_equal_sentences():
    paper = unstructured(
        "Kidney outcomes were measured throughout the follow-up period in both groups. "
        "Hepatic outcomes were measured throughout the follow-up period in both groups."
    )
    kidney = summarise(paper, ["kidney"], limit=90)
    hepatic = summarise(paper, ["hepatic"], limit=90)
    assert kidney.startswith("Kidney outcomes") and "Hepatic" not in kidney
    assert hepatic.startswith("Hepatic outcomes") and "Kidney" not in hepatic


def test_leading_connective_is_dropped_from_the_first_sentence():
    paper = unstructured("Mice were treated with IL-2 for a week. Therefore, low-dose IL-2 protects mice from colitis.")
    assert summarise(paper).startswith("Low-dose IL-2 protects mice from colitis.")


def test_marked_text_becomes_plain_unicode():
    paper = structured(("CONCLUSIONS", "CD4<sup>+</sup> Tregs rose <i>in vivo</i> (p &lt; 0.05)."))
    assert summarise(paper) == "CD4⁺ Tregs rose in vivo (p < 0.05)."


def test_no_abstract_says_so_and_shows_the_publication_type():
    editorial = Paper(pmid="1", title="T", pub_types=("Journal Article", "Editorial"))
    assert summarise(editorial) == "No abstract in PubMed. Publication type: Editorial."
    plain = Paper(pmid="1", title="T", pub_types=("Journal Article",))
    assert summarise(plain) == "No abstract in PubMed. Publication type: Journal Article."
    book = Paper(pmid="1", title="T", is_book=True)
    assert summarise(book) == "No abstract in PubMed. Publication type: book chapter."
    only_registration = structured(("TRIAL REGISTRATION", "NCT01234567."), pub_types=("Letter",))
    assert summarise(only_registration) == "No abstract in PubMed. Publication type: Letter."
    patent = Paper(pmid="", epmc="PAT/WO2024123456", title="IL-2 muteins", pub_types=("Patent",))
    assert summarise(patent) == "No abstract in the record. Publication type: Patent.", "PubMed never had it"


def test_shorten_drops_asides_longest_first_and_keeps_the_ending():
    sentence = (
        "Overall survival was not improved (hazard ratio 1.04; 95% confidence interval 0.80 to 1.35; P=0.77) "
        "in the combination group (n = 391)."
    )
    assert shorten(sentence, limit=80) == "Overall survival was not improved in the combination group (n = 391)."
    assert shorten(sentence, limit=60) == "Overall survival was not improved in the combination group."


def test_shorten_falls_back_to_the_clause_before_a_semicolon():
    sentence = "Tregs rose in every patient who received the mutein at any dose; " + "x" * 200 + "."
    assert shorten(sentence, limit=100) == "Tregs rose in every patient who received the mutein at any dose."


def test_a_long_single_sentence_is_shortened_to_fit():
    long = "IL-2 expanded Tregs (" + "; ".join(f"cohort {n}: 2.{n}-fold" for n in range(40)) + ") in all cohorts."
    summary = summarise(unstructured(long))
    assert summary == "IL-2 expanded Tregs in all cohorts."


def test_when_nothing_fits_the_summary_is_cut_with_an_ellipsis():
    long = "IL-2 expanded " + " and ".join(f"cell type {n}" for n in range(80)) + "."
    summary = summarise(unstructured(long))
    assert len(summary) <= SUMMARY_LIMIT
    assert summary.endswith("…")
    assert summary.startswith("IL-2 expanded cell type 0 and")


def test_a_sentence_without_a_final_stop_gets_one():
    assert summarise(unstructured("Low-dose IL-2 expanded Tregs in every patient")) == (
        "Low-dose IL-2 expanded Tregs in every patient."
    )


_PIECE = st.text(alphabet=st.sampled_from(list("abcdefgh IL-2.(),;%<>&é β0123456789")), max_size=400) | st.sampled_from(
    [" et al. ", " Tregs. ", " (p < 0.05). ", "x" * 500]
)
_ABSTRACT_TEXT = st.lists(_PIECE, max_size=8).map("".join)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "RESULTS", "CONCLUSIONS", "METHODS"]), _ABSTRACT_TEXT), max_size=4))
def test_summary_is_never_over_the_limit_and_never_empty(sections):
    paper = structured(*sections)
    summary = summarise(paper)
    assert summary.strip()
    assert len(summary) <= SUMMARY_LIMIT
    assert ends_sentence(summary) or summary.endswith("…")


def sentence_of(length: int, opening: str) -> str:
    """A plain sentence of exactly ``length`` characters."""
    body = opening
    while len(body) + len(" cells") <= length - 1:
        body += " cells"
    return body + "s" * (length - 1 - len(body)) + "."  # the last word made longer to reach the length


def test_two_sentences_are_joined_only_when_both_and_the_space_between_fit_in_300():
    for total in (300, 301):  # the two sentences' lengths plus the joining space
        result = sentence_of(150, "The mutein expanded regulatory T")
        conclusion = sentence_of(total - 1 - len(result), "Low-dose IL-2 expanded regulatory T")
        assert len(result) + 1 + len(conclusion) == total
        summary = summarise(structured(("RESULTS", result), ("CONCLUSIONS", conclusion)))
        assert len(summary) <= SUMMARY_LIMIT
        assert summary == (f"{result} {conclusion}" if total <= SUMMARY_LIMIT else conclusion)
