"""BibTeX, RIS and CSV exports: each format's own syntax escaped, every field a reference manager needs."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace

import bibtexparser
import pytest
import rispy

from il2watch.export import citation_key, export, journal_title, to_bibtex, to_csv, to_ris
from il2watch.model import Author, Paper, Section

REVIEW = Paper(
    pmid="35217787",
    title="Engineering IL-2 for immunotherapy of autoimmunity and cancer.",
    authors=(
        Author("Hernandez", "Rosmely", "R"),
        Author("Põder", "Janika", "J"),
        Author("LaPorte", "Kathryn M", "KM"),
        Author("Malek", "Thomas R", "TR"),
    ),
    journal="Nature reviews. Immunology",
    journal_iso="Nat Rev Immunol",
    pub_date="2022 Oct",
    pub_year=2022,
    volume="22",
    issue="10",
    pages="614-628",
    doi="10.1038/s41577-022-00680-w",
    pmcid="PMC9301237",
    pub_types=("Journal Article", "Review"),
    abstract=(
        Section("IL-2 is a pleiotropic cytokine.", "INTRODUCTION"),
        Section("Engineered IL-2 can favour <i>Tregs</i> or effector cells."),
    ),
    keywords=("interleukin-2", "regulatory T cells"),
)
HOSTILE = Paper(
    pmid="40000001",
    title='=HYPERLINK("x") {braces} 100% &amp; $5 #1 under_score ~ ^ \\ <i>in vivo</i> IL-2<sup>+</sup>\nline',
    authors=(Author(collective="The IL-2 and Treg {Study} Group"), Author("O'Brien", "", "J")),
    journal="J Immunol",
    pub_date="2024 Mar",
    pub_year=2024,
    doi="10.1000/{odd}\\doi",
)
BOOK = Paper(pmid="37603210", title="Interleukin-2", journal="StatPearls", pub_date="2024 Jan", is_book=True)
NO_YEAR = Paper(pmid="1", title="No year at all")


def braces_balance(text: str) -> bool:
    depth = 0
    for i, ch in enumerate(text):
        if ch in "{}" and i and text[i - 1] == "\\":
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


# ---------------------------------------------------------------- BibTeX


def test_bibtex_entry_has_every_field():
    text = to_bibtex([REVIEW])
    assert text.startswith("@article{pmid35217787,\n")
    assert "author = {Hernandez, Rosmely and Põder, Janika and LaPorte, Kathryn M and Malek, Thomas R}" in text
    assert "title = {{Engineering IL-2 for immunotherapy of autoimmunity and cancer.}}" in text
    assert "journal = {Nature Reviews Immunology}" in text and "year = {2022}" in text
    assert "doi = {10.1038/s41577-022-00680-w}" in text and "pmid = {35217787}" in text
    assert "url = {https://pubmed.ncbi.nlm.nih.gov/35217787/}" in text and "pmcid = {PMC9301237}" in text


def test_bibtex_escapes_what_tex_would_misread_and_keeps_braces_balanced():
    text = to_bibtex([HOSTILE])
    assert braces_balance(text)
    title = re.search(r"title = \{\{(.*)\}\},\n", text).group(1)
    assert title == (
        r'=HYPERLINK("x") \{braces\} 100\% \& \$5 \#1 under\_score \textasciitilde{} '
        r"\textasciicircum{} \textbackslash{} in vivo IL-2⁺ line"
    )
    assert "author = {{The IL-2 and Treg \\{Study\\} Group} and O'Brien, J}" in text  # a group stays one author
    assert "doi = {10.1000/%7Bodd%7D%5Cdoi}" in text


def test_bibtex_books_and_missing_fields():
    text = to_bibtex([BOOK, NO_YEAR])
    assert "@incollection{pmid37603210," in text and "booktitle = {StatPearls}" in text
    assert "@article{pmid1,\n" in text and "year = " not in text.split("@article{pmid1")[1]
    assert text.count("@") == 2 and braces_balance(text)


@pytest.mark.parametrize(
    "doi, key",
    [
        ("10.1101/2024.01.01.123456", "doi10.1101.2024.01.01.123456"),
        ('10.1000/{odd},x%y#z w\\(a)~"é', "doi10.1000.odd.x.y.z.w.a"),
        (
            "10.1002/(SICI)1097-4636(199706)35:4<497::AID-JBM10>3.0.CO;2-J",
            "doi10.1002.SICI.1097.4636.199706.35.4.497.AID.JBM10.3.0.CO.2.J",
        ),
    ],
)
def test_a_paper_known_by_its_doi_gets_a_clean_stable_bibtex_key(doi, key):
    preprint = Paper(pmid="", key=f"doi:{doi}", doi=doi, title="IL-2 muteins in lupus")
    made = citation_key(preprint)
    assert re.fullmatch(r"[A-Za-z0-9.]+", made) and not re.search(r"[\s{},%#]", made)
    assert made == key
    text = to_bibtex([preprint])
    assert text.startswith(f"@article{{{key},\n") and braces_balance(text)
    assert [entry.key for entry in bibtexparser.parse_string(text).entries] == [key]
    # PubMed indexes it later: the library keeps the paper's key, and the citation keeps its name
    assert citation_key(replace(preprint, pmid="39999999")) == key


# ---------------------------------------------------------------- RIS


def ris_records(text: str) -> list[list[tuple[str, str]]]:
    records, current = [], []
    for line in text.split("\r\n"):
        if not line:
            continue
        match = re.fullmatch(r"([A-Z][A-Z0-9])  - (.*)", line)
        assert match, f"not a RIS line: {line!r}"
        current.append((match.group(1), match.group(2)))
        if match.group(1) == "ER":
            records.append(current)
            current = []
    assert not current
    return records


def test_ris_records_are_well_formed_and_complete():
    (record,) = ris_records(to_ris([REVIEW]))
    assert record[0] == ("TY", "JOUR") and record[-1] == ("ER", "")
    assert [v for t, v in record if t == "AU"] == [
        "Hernandez, Rosmely",
        "Põder, Janika",
        "LaPorte, Kathryn M",
        "Malek, Thomas R",
    ]
    fields = dict(record)
    assert fields["TI"] == "Engineering IL-2 for immunotherapy of autoimmunity and cancer."
    assert fields["T2"] == "Nature Reviews Immunology" and fields["J2"] == "Nat Rev Immunol"
    assert fields["PY"] == "2022" and fields["DO"] == "10.1038/s41577-022-00680-w" and fields["AN"] == "35217787"
    assert fields["UR"] == "https://pubmed.ncbi.nlm.nih.gov/35217787/"


def test_ris_keeps_each_value_on_one_line():
    records = ris_records(to_ris([HOSTILE, BOOK, NO_YEAR]))
    assert [dict(r)["TY"] for r in records] == ["JOUR", "CHAP", "JOUR"]
    assert dict(records[0])["TI"].endswith("in vivo IL-2⁺ line")
    assert "PY" not in dict(records[2])


# ---------------------------------------------------------------- CSV


def test_csv_round_trips_through_a_csv_reader_and_defuses_formulas():
    rows = list(csv.DictReader(io.StringIO(to_csv([REVIEW, HOSTILE]))))
    assert rows[0]["pmid"] == "35217787" and rows[0]["year"] == "2022" and rows[0]["month"] == "Oct"
    assert (rows[0]["volume"], rows[0]["issue"], rows[0]["pages"]) == ("22", "10", "614-628")
    assert rows[0]["journal"] == "Nature Reviews Immunology" and rows[0]["journal_abbreviation"] == "Nat Rev Immunol"
    assert rows[0]["pmcid"] == "PMC9301237" and rows[0]["keywords"] == "interleukin-2; regulatory T cells"
    assert rows[0]["abstract"].startswith("INTRODUCTION: IL-2 is a pleiotropic cytokine. Engineered IL-2")
    assert rows[0]["authors"] == "Hernandez R; Põder J; LaPorte KM; Malek TR"
    assert rows[0]["url"] == "https://pubmed.ncbi.nlm.nih.gov/35217787/" and rows[0]["doi"] == REVIEW.doi
    assert rows[1]["title"].startswith('\'=HYPERLINK("x") {braces} 100% & $5')
    assert "\n" not in rows[1]["title"]


def test_export_dispatches_by_format():
    assert export([REVIEW], "bibtex") == to_bibtex([REVIEW])
    assert export([REVIEW], "ris") == to_ris([REVIEW])
    assert export([REVIEW], "csv") == to_csv([REVIEW])
    assert to_bibtex([]) == "" and to_ris([]) == "" and to_csv([]).startswith("pmid,title")


# ---------------------------------------------------------------- read back by real readers


def test_a_bibtex_reader_gets_every_field_a_reference_manager_needs():
    library = bibtexparser.parse_string(to_bibtex([REVIEW, HOSTILE, BOOK]))
    assert not library.failed_blocks
    review, hostile, book = library.entries
    fields = {f.key: f.value for f in review.fields}
    assert review.entry_type == "article" and review.key == "pmid35217787"
    assert fields["journal"] == "Nature Reviews Immunology" and fields["shortjournal"] == "Nat Rev Immunol"
    assert (fields["volume"], fields["number"], fields["pages"]) == ("22", "10", "614--628")
    assert fields["month"] == "oct" and fields["year"] == "2022"
    assert fields["doi"] == "10.1038/s41577-022-00680-w" and fields["pmid"] == "35217787"
    assert fields["pmcid"] == "PMC9301237" and fields["keywords"] == "interleukin-2, regulatory T cells"
    assert fields["abstract"].startswith(
        "INTRODUCTION: IL-2 is a pleiotropic cytokine. Engineered IL-2 can favour Tregs"
    )
    assert hostile.key == "pmid40000001" and book.entry_type == "incollection"


def test_a_ris_reader_gets_every_field_a_reference_manager_needs():
    entries = rispy.loads(to_ris([REVIEW, HOSTILE, BOOK]))
    assert len(entries) == 3
    review = entries[0]
    assert review["type_of_reference"] == "JOUR"
    assert review["authors"] == ["Hernandez, Rosmely", "Põder, Janika", "LaPorte, Kathryn M", "Malek, Thomas R"]
    assert review["secondary_title"] == "Nature Reviews Immunology" and review["alternate_title1"] == "Nat Rev Immunol"
    assert (review["volume"], review["number"], review["start_page"], review["end_page"]) == ("22", "10", "614", "628")
    assert review["year"] == "2022" and review["date"] == "2022/10//"
    assert review["doi"] == "10.1038/s41577-022-00680-w" and review["accession_number"] == "35217787"
    assert review["custom2"] == "PMC9301237" and review["keywords"] == ["interleukin-2", "regulatory T cells"]
    assert review["abstract"].startswith("INTRODUCTION: IL-2 is a pleiotropic cytokine.")
    assert entries[2]["type_of_reference"] == "CHAP"


def test_medline_page_ranges_are_written_out_and_article_numbers_kept():
    short = Paper(pmid="2", title="t", pages="113-25", journal="J")
    electronic = Paper(pmid="3", title="t", pages="eabn4821", journal="J")
    (first, second) = rispy.loads(to_ris([short, electronic]))
    assert (first["start_page"], first["end_page"]) == ("113", "125")
    assert second["start_page"] == "eabn4821" and "end_page" not in second
    assert "pages = {113--125}" in to_bibtex([short])


@pytest.mark.parametrize(
    ("nlm", "expected"),
    [
        ("Nature reviews. Immunology", "Nature Reviews Immunology"),
        ("Journal of immunology (Baltimore, Md. : 1950)", "Journal of Immunology"),
        ("The New England journal of medicine", "The New England Journal of Medicine"),
        ("Science translational medicine", "Science Translational Medicine"),
        ("JCI insight", "JCI Insight"),
        ("Frontiers in immunology", "Frontiers in Immunology"),
        ("Science (New York, N.Y.)", "Science"),
        ("Cancer immunology, immunotherapy : CII", "Cancer Immunology, Immunotherapy"),
        ("eLife", "eLife"),
        ("Cell reports. Medicine", "Cell Reports Medicine"),
    ],
)
def test_journal_names_as_reference_managers_expect_them(nlm, expected):
    assert journal_title(Paper(pmid="1", title="t", journal=nlm)) == expected


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(start):
    paper = Paper(pmid="4", title=f"{start}cmd|' /C calc'!A0", journal=f"{start}SUM(A1:A9)", keywords=(f"{start}x",))
    (row,) = list(csv.DictReader(io.StringIO(to_csv([paper]))))
    for column in ("title", "journal", "keywords"):
        cell = row[column]
        assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), (column, cell)
        if start in "=+-@":
            assert cell.startswith("'" + start), (column, cell)  # kept as text, as written
        else:
            assert "\t" not in cell and "\r" not in cell  # flattened to one line
