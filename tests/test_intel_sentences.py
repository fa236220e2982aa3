import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from il2watch.intel import ends_sentence, split_sentences
from tests.support import cpu_seconds_per_call


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


# Texts that made the old splitter quadratic, each as (what repeats, its size): it copied the rest of
# the text at every stop, split the whole sentence so far at every abbreviation, marked every position
# of every nested bracket, searched the whole stack for every stray closer, and let its stop pattern
# scan a run of dots again from every dot.
_QUADRATIC_ATTACKS = {
    "a full stop every few words": ("IL-2 works. ", 125_000),
    "abbreviations that never end a sentence": ("Tregs et al. ", 20_000),
    "brackets nested deep": (None, 20_000),
    "stray brackets that close nothing": (None, 20_000),
    "a run of dots": (".", 20_000),
}


def _attack(name: str, size: int) -> str:
    unit, _ = _QUADRATIC_ATTACKS[name]
    if name == "brackets nested deep":
        return "(" * (size // 2) + "IL-2 rose. It fell." + ")" * (size // 2)
    if name == "stray brackets that close nothing":
        return "(" * (size // 2) + "IL-2 rose. It fell." + "]" * (size // 2)
    return (unit * (size // len(unit) + 1))[:size]


@pytest.mark.parametrize("name", list(_QUADRATIC_ATTACKS))
def test_splitting_takes_time_in_proportion_to_the_texts_length(name):
    """Eight times the text takes about eight times as long (a quadratic splitter: 64 times); measured
    in CPU time with a margin of two and a half, so a loaded machine does not make it fail."""
    size = _QUADRATIC_ATTACKS[name][1]
    small, large = _attack(name, size), _attack(name, 8 * size)
    assert split_sentences(large)  # the large text is split, and to something
    ratio = cpu_seconds_per_call(split_sentences, large) / cpu_seconds_per_call(split_sentences, small)
    assert ratio < 20, f"{name}: 8 times the text took {ratio:.0f} times as long"


def test_a_megabyte_of_sentences_splits_into_every_one_of_them_in_well_under_two_seconds():
    """The old splitter took 5 s of CPU on a megabyte; this one about a quarter of a second."""
    sentences = [f"Tregs rose {n}-fold (p<0.05, vs. baseline)." for n in range(25_000)]
    start = time.process_time()
    assert split_sentences(" ".join(sentences)) == sentences
    assert time.process_time() - start < 2.0
