"""Full-text search, one suite for both backends: every query means the same on SQLite's FTS5 and on
PostgreSQL's text search. A change to search lands on both, or a test here fails."""

import sqlite3

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from il2watch.intel.synonyms import Synonyms
from il2watch.library import Library, fts_query, parse_search
from il2watch.model import Author, Insight, Paper, Section
from il2watch.store.postgres import tsquery_text
from tests.conftest import BOTH_BACKENDS


def paper(pmid, title, abstract="", authors=(Author("Hernandez", "Rosmely", "R"),), journal="Front Immunol", day=""):
    return Paper(
        pmid=pmid,
        title=title,
        abstract=(Section(abstract),) if abstract else (),
        authors=authors,
        journal=journal,
        entry_date=day or f"2024-01-{int(pmid) % 28 + 1:02d}",
        pub_year=2024,
    )


CORPUS = [
    paper("1", "Nemvaleukin alfa in melanoma", "An engineered IL-2 variant for solid tumours."),
    paper("2", "Low-dose interleukin-2 in lupus", "Regulatory T cells expanded.", (Author("Ålund", "Åsa", "Å"),)),
    paper("3", "Dose of interleukin-2 kept low in colitis", "Tregs and CD4/CD8 ratios.", journal="Gut"),
    paper("4", "IL 2 receptor signalling in NK cells", "Beta chain biology.", journal="J Immunol"),
    paper("5", "Efavaleukin alfa for ulcerative colitis", "A mutein biased towards Treg cells."),
    paper("6", "Bempegaldesleukin with nivolumab", "Melanoma and renal cell carcinoma outcomes."),
]


@pytest.fixture
def library(database):
    with Library(database) as library:
        library.save_papers(CORPUS)
        yield library


def found(library, text):
    """The PMIDs of the papers found (the library answers with keys, "pmid:1")."""
    keys, total = library.search(text, limit=50)
    assert total == len(keys)
    return {key.removeprefix("pmid:") for key in keys}


@BOTH_BACKENDS
@pytest.mark.parametrize(
    "text, expected",
    [
        ("nemvaleukin", {"1"}),  # a title word
        ("tumours", {"1"}),  # an abstract word
        ("hernandez", {"1", "3", "4", "5", "6"}),  # an author
        ("gut", {"3"}),  # a journal
        ("alund", {"2"}),  # diacritics folded
        ("ÅLUND", {"2"}),
        ("lupus OR melanoma", {"1", "2", "6"}),
        ("lupus melanoma", set()),  # every word must match
        ("lupus AND melanoma", set()),
        ("alfa NOT melanoma", {"5"}),  # NOT leaves out
        ("alfa -colitis", {"1"}),
        ("cells NOT (lupus OR colitis)", {"4", "6"}),
        ("NOT melanoma", set()),  # nothing wanted: nothing found
        ('"low-dose interleukin-2"', {"2"}),  # a phrase: its words together, in order
        ("low dose interleukin", {"2", "3"}),  # the same words anywhere
        ('"interleukin-2 low"', set()),
        ('"low-dose interleukin-2"[tiab] AND lupus', {"2"}),  # field tags ignored
        ("IL-2", {"1", "2", "3", "4"}),  # "IL-2" and "IL 2" are the same two tokens; its synonym interleukin-2
        ("il 2", {"1", "2", "3", "4"}),
        ("CD8", {"3"}),  # "CD4/CD8" is two words
        ("treg*", {"3", "5"}),  # a prefix
        ("efava*", {"5"}),
        ("treg", {"2", "3", "5"}),  # stems: "Tregs" is "Treg"; the synonym "regulatory T cells"
        ("mutein", {"5"}),
        ("cells", {"2", "4", "5", "6"}),  # stems: cell, cells
        ("(colitis OR lupus) alfa", {"5"}),
        ('unbalanced "quote', set()),
        ("“lupus”", {"2"}),  # typographic quotes
        ("()[]", set()),
        ("___", set()),
    ],
)
def test_a_query_means_the_same_on_both_backends(library, text, expected):
    assert found(library, text) == expected


@BOTH_BACKENDS
def test_without_synonyms_a_word_finds_itself_only(library):
    assert set(library.search("IL-2", synonyms=Synonyms())[0]) == {"pmid:1", "pmid:4"}
    assert set(library.search("treg", synonyms=Synonyms())[0]) == {"pmid:3", "pmid:5"}
    assert set(library.search('"IL-2"')[0]) == {"pmid:1", "pmid:4"}  # a quoted phrase is exact


@BOTH_BACKENDS
def test_title_words_weigh_most_and_relevance_breaks_ties(library):
    assert library.search("melanoma")[0] == ["pmid:1", "pmid:6"]  # "1" has it in the title, "6" in the abstract
    library.save_papers(
        [paper("7", "Melanoma", "Melanoma in melanoma"), paper("8", "Melanoma", "Melanoma in melanoma")]
    )
    library.update_insight("8", Insight("s", relevance=100.0))
    assert library.search("melanoma")[0][:2] == ["pmid:8", "pmid:7"]


@BOTH_BACKENDS
def test_results_page_and_count(library):
    library.save_papers([paper(str(100 + n), f"Orthogonal cytokine receptor pair {n}") for n in range(25)])
    first, total = library.search("orthogonal cytokine", limit=10)
    third, _ = library.search("orthogonal cytokine", limit=10, offset=20)
    middle, _ = library.search("orthogonal cytokine", limit=10, offset=10)
    assert total == 25 and len(first) == 10 and len(third) == 5
    assert len(set(first) | set(middle) | set(third)) == 25


@BOTH_BACKENDS
def test_a_paper_stored_again_is_found_by_its_new_words_only(library):
    library.save_papers([paper("1", "Aldesleukin in graft-versus-host disease")])
    assert found(library, "nemvaleukin") == set()
    assert found(library, "graft versus host") == {"1"}


@BOTH_BACKENDS
@given(st.text(max_size=120))
@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_user_text_is_a_query_the_index_accepts(library, text):
    pmids, total = library.search(text)
    assert len(pmids) <= total


# ---------------------------------------------------------------- how each backend writes the parsed query


def test_fts_query_keeps_phrases_or_and_prefixes():
    assert fts_query('"regulatory T cell" treg*') == '"regulatory T cell" AND "treg"*'
    assert fts_query("IL-2 OR IL-15 [tiab] NOT x") == '("IL-2" OR "IL-15") NOT "x"'
    assert fts_query("a b OR c NOT d") == '("a" AND ("b" OR "c")) NOT "d"'
    assert fts_query("NOT mouse") == ""
    assert fts_query('unbalanced "quote') == '"unbalanced" AND "quote"'


def test_tsquery_is_written_from_the_same_parse():
    assert tsquery_text(parse_search('"regulatory T cell" treg*')) == "((regulatory <-> T <-> cell)) & ((treg:*))"
    assert tsquery_text(parse_search("IL-2 OR IL-15 [tiab] NOT x")) == "((IL <-> 2) | (IL <-> 15)) & !((x))"
    assert tsquery_text(parse_search("a b OR c NOT d")) == "((a)) & ((b) | (c)) & !((d))"
    assert tsquery_text(parse_search("NOT mouse")) == ""
    assert tsquery_text(parse_search("CD4/CD8 o'brien*")) == "((CD4 <-> CD8)) & ((o <-> brien:*))"


@given(st.text(max_size=200))
@hsettings(max_examples=300, deadline=None)
def test_any_user_text_makes_an_fts5_query_the_index_accepts(text):
    query = fts_query(text)
    conn = sqlite3.connect(":memory:")
    conn.execute("create virtual table t using fts5(a, tokenize='porter unicode61 remove_diacritics 2')")
    conn.execute("insert into t values ('engineered interleukin 2')")
    if query:
        conn.execute("select * from t where t match ?", [query]).fetchall()
