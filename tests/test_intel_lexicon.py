from pathlib import Path

import pytest

from il2watch.intel import Lexicon, LexiconError, Molecule, default_lexicon, find_molecules, load_lexicon
from il2watch.intel.lexicon import term_pattern

REPO = Path(__file__).resolve().parents[1]


def names(text: str, lexicon: Lexicon | None = None) -> tuple[str, ...]:
    return find_molecules(text, lexicon or default_lexicon())


@pytest.mark.parametrize(
    "text",
    [
        "NKTR-214 plus nivolumab",
        "NKTR214 plus nivolumab",
        "NKTR 214 plus nivolumab",
        "nktr-214 plus nivolumab",
        "NKTR\u2011214 plus nivolumab",
        "(NKTR-214)",
        "with bempegaldesleukin.",
        "BEMPEGALDESLEUKIN",
    ],
)
def test_code_names_match_with_and_without_hyphen_or_space_in_any_case(text):
    assert names(text) == ("bempegaldesleukin",)


@pytest.mark.parametrize("text", ["NKTR-2140", "XNKTR-214", "NKTR-21", "bempegaldesleukins", "NKTR--214"])
def test_code_names_need_word_boundaries(text):
    assert names(text) == ()


def test_code_written_without_separator_in_the_lexicon_finds_spaced_text():
    lexicon = Lexicon(molecules=(Molecule("AMG592 thing", codes=("AMG592",)),))
    assert names("dosed AMG 592 weekly", lexicon) == ("AMG592 thing",)
    assert names("dosed AMG-592 weekly", lexicon) == ("AMG592 thing",)
    assert names("dosed AMG5920 weekly", lexicon) == ()


def test_synonyms_and_multiword_names():
    assert names("Proleukin at low doses") == ("aldesleukin",)
    assert names("ALKS 4230 and ALKS4230 and nemvaleukin alfa") == ("nemvaleukin alfa",)
    assert names("efavaleukin alfa (AMG 592)") == ("efavaleukin alfa",)
    assert names("low dose IL-2 and low-dose interleukin-2") == ("low-dose IL-2",)


def test_molecules_come_once_each_in_order_of_first_mention():
    text = "THOR-707 beat NKTR-214; later SAR444245 and bempegaldesleukin again"
    assert names(text) == ("SAR444245", "bempegaldesleukin")


def test_neighbour_agents_are_molecules_of_their_own_kind():
    lexicon = default_lexicon()
    found = lexicon.find("ALT-803 (N-803) and NKTR-255")
    assert [m.name for m in found] == ["nogapendekin alfa inbakicept", "NKTR-255"]
    assert {m.kind for m in found} == {"neighbour"}


def test_default_lexicon_holds_the_landscape_molecules():
    lexicon = default_lexicon()
    for name, axis in [
        ("efavaleukin alfa", "treg"),
        ("rezpegaldesleukin", "treg"),
        ("MK-6194", "treg"),
        ("bempegaldesleukin", "effector"),
        ("nemvaleukin alfa", "effector"),
        ("SAR444245", "effector"),
        ("MDNA11", "effector"),
        ("PD1-IL2v", "effector"),
        ("cergutuzumab amunaleukin", "effector"),
        ("simlukafusp alfa", "effector"),
        ("darleukin", "effector"),
        ("ANV419", "effector"),
        ("AU-007", "effector"),
        ("XTX202", "effector"),
        ("WTX-124", "effector"),
        ("Neo-2/15", "effector"),
        ("aldesleukin", ""),
        ("nogapendekin alfa inbakicept", "neighbour"),
        ("NKTR-255", "neighbour"),
        ("SOT101", "neighbour"),
    ]:
        molecule = lexicon.molecule(name)
        assert molecule is not None, name
        assert molecule.axis == axis, name


def test_prefix_cues_and_exact_cues():
    lexicon = Lexicon(cues={"treg": ("autoimmun*", "SLE")})
    assert lexicon.count_cues("treg", "autoimmunity and autoimmune SLE, not SLEEP") == 3
    assert lexicon.count_cues("effector", "anything") == 0


def test_term_pattern_is_a_plain_regex():
    assert term_pattern("IL-2") == r"(?<![A-Za-z0-9])IL[-\s]?2(?![A-Za-z0-9])"


def test_repository_extension_file_loads_and_merges_on_top(tmp_path):
    lexicon = load_lexicon([REPO / "config" / "lexicon.toml"])
    assert lexicon.molecule("GI-101") is not None
    assert names("NT-I7 was given", lexicon) == ("efineptakin alfa",)
    assert lexicon.molecule("bempegaldesleukin") is not None  # defaults kept
    assert "immune thrombocytopenia" in lexicon.cues["treg"]
    assert "FOXP3" in lexicon.cues["treg"]


def test_user_entry_with_a_known_name_extends_it(tmp_path):
    extra = tmp_path / "mine.toml"
    extra.write_text(
        '[[molecule]]\nname = "Bempegaldesleukin"\naxis = "effector"\ncodes = ["BEMPEG-X1"]\n'
        '[[molecule]]\nname = "my mutein"\naxis = "treg"\ncodes = ["ZZ-9"]\n'
        '[cues]\neffector = ["glioma*"]\n',
        encoding="utf-8",
    )
    lexicon = load_lexicon([extra])
    bempeg = lexicon.molecule("bempegaldesleukin")
    assert bempeg.codes == ("NKTR-214", "BEMPEG-X1")
    assert names("BEMPEG X1 and ZZ9", lexicon) == ("bempegaldesleukin", "my mutein")
    assert lexicon.count_cues("effector", "gliomas") == 1
    assert len(lexicon.molecules) == len(default_lexicon().molecules) + 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[[molecule]]\nname = 'x'\nkind = 'cytokine'\n", "kind must be one of"),
        ("[[molecule]]\nname = 'x'\naxis = 'cancer'\n", "axis must be one of"),
        ("[[molecule]]\nkind = 'il2'\n", "needs a name"),
        ("[[molecule]]\nname = 'x'\ncodes = [1]\n", "list of non-empty strings"),
        ("[[molecule]]\nname = 'x'\ncolour = 'red'\n", "unknown field"),
        ("[cues]\ncancer = ['x']\n", "[cues] keys"),
        ("[molecules]\n", "unknown table"),
        ("name = \n", "not valid TOML"),
    ],
)
def test_bad_extension_files_name_the_file_and_the_problem(tmp_path, content, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(LexiconError) as caught:
        load_lexicon([bad])
    assert message in str(caught.value)
    assert "bad.toml" in str(caught.value)


def test_missing_extension_file_is_an_error(tmp_path):
    with pytest.raises(LexiconError, match="cannot read"):
        load_lexicon([tmp_path / "absent.toml"])
