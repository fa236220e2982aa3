import pytest
from hypothesis import given
from hypothesis import strategies as st

from il2watch.intel import ends_sentence, split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Hernandez et al. reviewed the field. Others disagreed.",
            ["Hernandez et al. reviewed the field.", "Others disagreed."],
        ),
        (
            "Cytokines (e.g. IL-15) and muteins, i.e. variants, were tested. Results follow.",
            ["Cytokines (e.g. IL-15) and muteins, i.e. variants, were tested.", "Results follow."],
        ),
        (
            "e.g. Tregs expanded. i.e. Tregs expanded.",
            ["e.g. Tregs expanded. i.e. Tregs expanded."],
        ),
        (
            "Response was 34.4% vs. 31.1% of weeks. The trial ended.",
            ["Response was 34.4% vs. 31.1% of weeks.", "The trial ended."],
        ),
        (
            "As shown in Fig. 2, Tregs rose. Figs. 3 and 4 agree.",
            ["As shown in Fig. 2, Tregs rose.", "Figs. 3 and 4 agree."],
        ),
        (
            "Tregs rose approx. 30% over baseline. NK cells did not.",
            ["Tregs rose approx. 30% over baseline.", "NK cells did not."],
        ),
        (
            "The half-life was 5.5 days. Exposure was 2.3-fold higher.",
            ["The half-life was 5.5 days.", "Exposure was 2.3-fold higher."],
        ),
        (
            "Tregs depend on IL-2. They expand in low-dose IL-2.",
            ["Tregs depend on IL-2.", "They expand in low-dose IL-2."],
        ),
        (
            "Responses improved (p < 0.05). Toxicity did not differ (P=0.31).",
            ["Responses improved (p < 0.05).", "Toxicity did not differ (P=0.31)."],
        ),
        (
            "Remission rose (45% vs. 25%; P<0.001. See Fig. 1). Safety was similar.",
            ["Remission rose (45% vs. 25%; P<0.001. See Fig. 1).", "Safety was similar."],
        ),
        (
            "IL-2 binds CD25. β-chain binding follows. γδ T cells respond too.",
            ["IL-2 binds CD25.", "β-chain binding follows.", "γδ T cells respond too."],
        ),
        (
            "IL-2 was made. mRNA decayed fast. p53 was unchanged.",
            ["IL-2 was made.", "mRNA decayed fast.", "p53 was unchanged."],
        ),
        (
            "Cultures of E. coli and S. aureus grew. No. 5 failed.",
            ["Cultures of E. coli and S. aureus grew.", "No. 5 failed."],
        ),
        ("Did it work? Yes! It did.", ["Did it work?", "Yes!", "It did."]),
        ('He said "IL-2 works." Then he left.', ['He said "IL-2 works."', "Then he left."]),
        ("Trial at 4 U.S. sites. Done.", ["Trial at 4 U.S. sites.", "Done."]),
        # Dotted initials are read as an abbreviation even at a sentence end: a known miss.
        ("Trials ran in the U.S. The EU followed.", ["Trials ran in the U.S. The EU followed."]),
        ("Tregs (CD4+ cells. rose) fast. Next.", ["Tregs (CD4+ cells. rose) fast.", "Next."]),
        ("An unbalanced (bracket. Still splits.", ["An unbalanced (bracket.", "Still splits."]),
        ("1) IL-2 rose. 2) IL-7 fell.", ["1) IL-2 rose.", "2) IL-7 fell."]),
        ("No final stop here", ["No final stop here"]),
        ("  Spaces\n and\tnewlines.  Squashed. ", ["Spaces and newlines.", "Squashed."]),
        ("", []),
    ],
)
def test_split_sentences_on_biomedical_text(text, expected):
    assert split_sentences(text) == expected


def test_a_lowercase_word_after_a_stop_continues_the_sentence():
    # "ca." is an abbreviation; a lowercase word after a stop is a continuation.
    assert split_sentences("Doses of ca. 1 MIU were used. and more text.") == [
        "Doses of ca. 1 MIU were used. and more text."
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tregs rose.", True),
        ("Did they?", True),
        ('It "worked."', True),
        ("Tregs rose (Fig. 1).", True),
        ("Tregs rose", False),
        ("Tregs rose…", False),
        ("Tregs rose,", False),
    ],
)
def test_ends_sentence(text, expected):
    assert ends_sentence(text) is expected


_WORD = st.sampled_from(
    [
        "IL-2",
        "Tregs",
        "expanded",
        "CD25",
        "et al.",
        "e.g.",
        "vs.",
        "Fig. 2",
        "0.05",
        "(p < 0.05)",
        "NK",
        "γc",
        "cells",
        "in",
        "the",
        "approx.",
        "(95% CI 1.2-3.4)",
        "low-dose",
        "aldesleukin",
        "i.e.",
    ]
)
# A sentence never ends on an abbreviation here: "et al." before a stop is ambiguous.
_SENTENCE = st.builds(
    lambda first, rest, stop: " ".join([first, *rest, "fell"]) + stop,
    st.sampled_from(["Tregs", "The mutein", "IL-2", "Patients", "β-cells", "In mice"]),
    st.lists(_WORD, max_size=12),
    st.sampled_from([".", "?", "!"]),
)


@given(st.lists(_SENTENCE, min_size=1, max_size=6))
def test_joined_sentences_split_back_exactly(sentences):
    assert split_sentences(" ".join(sentences)) == sentences
