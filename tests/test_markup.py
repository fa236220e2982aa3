import json
import re
import time

import pytest

from il2watch.commands.parsing import clean_unicode
from il2watch.config import Settings
from il2watch.intel.llm import make_summariser
from il2watch.markup import counted, escape_mrkdwn, read_mathml, squash, strip_invisible, to_mrkdwn, to_plain
from tests.support import cpu_seconds_per_call


def test_plain_turns_inline_markup_into_unicode():
    marked = "r<sup>2</sup>&lt;0.25 at <i>TERT</i>, CD4<sup>+</sup> cells, IL-2R<sub>β</sub>, LE<sub>min</sub>"
    assert to_plain(marked) == "r²<0.25 at TERT, CD4⁺ cells, IL-2Rᵦ, LEₘᵢₙ"


def test_a_script_without_a_unicode_form_goes_between_script_brackets():
    assert to_plain("p<sub>trend</sub>=0.048") == "p₍trend₎=0.048"
    assert to_plain("x<sup>a b c</sup>") == "x⁽a b c⁾"
    assert to_plain("GeneReviews<sup>®</sup>") == "GeneReviews®"  # printed raised anyway


def test_no_script_can_turn_a_slack_message_italic_or_bold():
    """Two fallbacks in one line used to read `LE_min … T_reg`, which Slack shows in italics."""
    marked = "LE<sub>cat</sub> and T<sub>reg</sub> cells, K<sub><i>d</i></sub>, x<sup><b>q</b></sup>"
    slack = to_mrkdwn(marked)
    assert slack == "LE₍cat₎ and T₍reg₎ cells, K₍d₎, x⁽q⁾"
    assert not re.search(r"[_*~`]", slack)


def test_italics_inside_a_script_are_not_garbled():
    assert to_mrkdwn("K<sub><i>d</i></sub> of 3 nM") == "K₍d₎ of 3 nM"
    assert to_mrkdwn("<i>K<sub>d</sub></i>") == "_K₍d₎_"
    assert to_plain("10<sup>-<i>n</i></sup>") == "10⁻ⁿ"


def test_mathml_reads_as_its_characters_not_its_tags():
    # Bio.Entrez hands MathML on as raw tags in the abstract's marked text, its alttext dropped.
    ns = '<math xmlns="http://www.w3.org/1998/Math/MathML">'
    marked = (
        f"The affinity {ns}<msub><mi>K</mi><mi>d</mi></msub></math> fell as {ns}<mrow><msup><mi>x</mi><mn>2</mn>"
        f"</msup><mo>=</mo><mfrac><mn>1</mn><mrow><mn>2</mn><mo>+</mo><mi>y</mi></mrow></mfrac></mrow></math>, "
        f"{ns}<msqrt><mi>n</mi></msqrt></math> and {ns}<semantics><mi>α</mi><annotation>alpha</annotation>"
        f"</semantics></math> with p {ns}<mo>&lt;</mo><mn>0.05</mn></math>."
    )
    assert to_plain(marked) == "The affinity K₍d₎ fell as x² = 1/(2+y), √n and α with p < 0.05."
    assert "<" not in to_mrkdwn(marked).replace("&lt;", "")


def test_mathml_without_characters_falls_back_to_its_alttext():
    marked = 'a <mml:math alttext="\\alpha"><mml:mspace/></mml:math> b'
    assert read_mathml(marked) == "a \\alpha b"


def test_a_display_formula_wrapper_is_dropped():
    marked = '<DispFormula><math xmlns="http://www.w3.org/1998/Math/MathML"><mi>E</mi></math></DispFormula> holds'
    assert to_plain(marked) == "E holds"


def test_mrkdwn_escapes_mentions_and_links_but_keeps_italics():
    marked = "&lt;!channel&gt; &lt;https://evil.example|PubMed&gt; <i>in vivo</i> &amp; <b>more</b>"
    assert to_mrkdwn(marked) == ("&lt;!channel&gt; &lt;https://evil.example|PubMed&gt; _in vivo_ &amp; *more*")


def test_unbalanced_tags_are_closed_and_stray_closers_ignored():
    assert to_mrkdwn("<i>open") == "_open_"
    assert to_plain("a</i>b</sup>") == "ab"


def test_invisible_and_bidi_characters_are_dropped():
    assert escape_mrkdwn("a\u202eb\u0000c<@U123>") == "abc&lt;@U123&gt;"
    assert to_plain("x\u2066y") == "xy"


def test_squash_collapses_whitespace():
    assert squash("  a\n  b\t c ") == "a b c"


def test_one_set_of_invisible_characters_for_what_is_shown_and_what_is_typed():
    hidden = "a\u202eb\u200bc\u2062d\ufeffe\u2066f\u2069"
    assert strip_invisible(hidden) == to_plain(hidden) == escape_mrkdwn(hidden) == "abcdef"
    assert clean_unicode(hidden) == "abcdef"
    # What is shown keeps the joiners (an emoji sequence, Persian text); what is compared drops them.
    scientist, persian = "👩\u200d🔬", "می\u200cخواهم"
    assert to_plain(scientist) == scientist and escape_mrkdwn(persian) == persian
    assert clean_unicode("IL\u200d-2\u200c") == "IL-2"
    assert strip_invisible(scientist, joiners=True) == "👩🔬"


def test_a_language_model_summary_loses_the_same_invisible_characters():
    summariser = make_summariser(Settings(summariser_url="http://127.0.0.1:9", summariser_model="m"))
    assert summariser is not None
    answer = {"choices": [{"message": {"content": "Low-dose IL-2\u200b doubled Tregs\u202e."}}]}
    assert summariser.read_answer(json.dumps(answer).encode()) == "Low-dose IL-2 doubled Tregs."


def test_counts_are_said_one_way():
    assert counted(1, "paper") == "1 paper"
    assert counted(0, "paper") == "0 papers"
    assert counted(12_345, "new paper") == "12,345 new papers"
    assert counted(2, "query", "queries") == "2 queries"


# Marked text that made the conversion quadratic, each as a function of the number of repeats: a stack
# of unclosed tags searched at every closing tag, closers of a tag that is not open, and formulas whose
# closing tag (or the end of whose opening tag) was searched for to the end of the text from each one.
_QUADRATIC_MARKUP = {
    "unclosed tags between balanced ones": lambda n: "<i>x</i><b>" * n,
    "stray closers under open tags": lambda n: "<b>" * n + "</i>" * n,
    "tags nested deep": lambda n: "<i><b>" * n + "IL-2" + "</b></i>" * n,
    "formulas never closed": lambda n: "<math>" * n,
    "formula tags never ended": lambda n: "<math " * n,
    "display wrappers never ended": lambda n: "<DispFormula " * n,
}


@pytest.mark.parametrize("convert", [to_plain, to_mrkdwn])
@pytest.mark.parametrize("name", list(_QUADRATIC_MARKUP))
def test_conversion_takes_time_in_proportion_to_the_texts_length(name, convert):
    """Eight times the text takes about eight times as long (the quadratic conversion: 47 times, and a
    4 MB abstract did not convert in 300 s); measured in CPU time with a margin of two and a half."""
    attack = _QUADRATIC_MARKUP[name]
    small, large = attack(2_000), attack(16_000)
    ratio = cpu_seconds_per_call(convert, large) / cpu_seconds_per_call(convert, small)
    assert ratio < 20, f"{name}: 8 times the text took {ratio:.0f} times as long"


@pytest.mark.parametrize("convert", [to_plain, to_mrkdwn])
def test_a_megabyte_of_unbalanced_markup_converts_in_well_under_two_seconds(convert):
    """About 0.35 s of CPU; the quadratic conversion took 6.5 s on a third of it."""
    marked = "<i>IL-2</i><b>" * (1_000_000 // 14)
    start = time.process_time()
    shown = convert(marked)
    assert time.process_time() - start < 2.0
    assert shown.count("IL-2") == 1_000_000 // 14


def test_ordinary_markup_converts_as_before_the_stack_was_counted():
    marked = "<b>IL-2</b> and <i>T<sub>reg</sub></i> <u>cells</u> <sup>2+</sup> <b>open <i>x</b> y</i> </sub>z"
    assert to_plain(marked) == "IL-2 and T₍reg₎ cells ²⁺ open x y z"
    assert to_mrkdwn(marked) == "*IL-2* and _T₍reg₎_ cells ²⁺ *open _x_* y z"


def _formula_in_rows(depth: int) -> str:
    return "K<math>" + "<mrow>" * depth + "<msub><mi>d</mi><mn>2</mn></msub>" + "</mrow>" * depth + "</math> rose"


def test_a_formula_nested_too_deep_for_pythons_stack_is_still_read():
    """Thousands of nested rows raised RecursionError (the poll failed on that abstract); past 64 levels
    tags are read as plain rows, so the script deep inside loses its subscript but not its characters."""
    assert to_plain(_formula_in_rows(40)) == "Kd₂ rose"
    assert to_plain(_formula_in_rows(5_000)) == "Kd2 rose"
    assert to_mrkdwn(_formula_in_rows(5_000)) == "Kd2 rose"
