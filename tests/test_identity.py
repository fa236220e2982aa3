"""One paper, however many identities: parsing what people and sources write, keys, grouping, pages."""

import pytest

from il2watch.identity import Ids, describe_key, group_by_identity, ids_from_tokens, parse_reference, reader_url
from il2watch.model import Paper


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("35217787", Ids(pmid="35217787")),
        ("https://pubmed.ncbi.nlm.nih.gov/35217787/", Ids(pmid="35217787")),
        ("10.1038/S41577-022-00680-W", Ids(doi="10.1038/s41577-022-00680-w")),
        ("https://doi.org/10.1038/s41577-022-00680-w", Ids(doi="10.1038/s41577-022-00680-w")),
        ("doi:10.1101/2026.10.30.123456", Ids(doi="10.1101/2026.10.30.123456")),
        ("PMC9876543", Ids(pmcid="PMC9876543")),
        ("https://www.ncbi.nlm.nih.gov/pmc/articles/PMC9876543/", Ids(pmcid="PMC9876543")),
        ("PPR654321", Ids(ppr="PPR654321")),
        ("https://openalex.org/W4213", Ids(openalex="W4213")),
        ("epmc:PAT/WO2024123456", Ids(epmc="PAT/WO2024123456")),
    ],
)
def test_a_reference_in_any_spelling_names_one_id(text, expected):
    assert parse_reference(text) == expected


@pytest.mark.parametrize("text", ["", "IL-2", "pmid:", "doi:not-a-doi", "x" * 401, "PMC", "W"])
def test_what_is_no_id_is_no_reference(text):
    assert parse_reference(text) is None


def test_the_key_is_the_best_id_and_every_id_travels_as_a_token():
    ids = Ids.of(doi="https://doi.org/10.1000/X", pmcid="123", openalex="https://openalex.org/W9")
    assert ids.key() == "doi:10.1000/x"
    assert ids.tokens() == ["doi:10.1000/x", "pmcid:PMC123", "openalex:W9"]
    assert ids.strong() == ["doi:10.1000/x", "pmcid:PMC123"]  # an OpenAlex id alone joins nothing
    assert ids_from_tokens([*ids.tokens(), "junk", "pmid:abc"]) == ids
    with pytest.raises(ValueError):
        Ids().key()
    with pytest.raises(TypeError):
        Ids.of(isbn="978")


def test_records_sharing_a_strong_id_are_one_paper_transitively():
    records = [
        Ids(pmid="1", doi="10.1000/a"),  # PubMed
        Ids(doi="10.1000/a", ppr="PPR1"),  # Europe PMC's preprint record with the same DOI
        Ids(ppr="PPR1", openalex="W1"),  # Europe PMC again, by PPR only
        Ids(doi="10.1000/b", openalex="W1"),  # OpenAlex folds the journal version into W1: not joined by W1
    ]
    assert sorted(map(sorted, group_by_identity(records))) == [[0, 1, 2], [3]]


def test_two_pmids_are_never_one_paper_whatever_they_share():
    erratum_repeating_the_doi = [Ids(pmid="1", doi="10.1000/a"), Ids(pmid="2", doi="10.1000/a"), Ids(doi="10.1000/a")]
    groups = sorted(map(sorted, group_by_identity(erratum_repeating_the_doi)))
    assert len(groups) == 2 and not any({0, 1} <= set(group) for group in groups)


def test_each_kind_of_id_opens_its_own_page_and_a_paper_its_best():
    assert reader_url("pmid", "35217787") == "https://pubmed.ncbi.nlm.nih.gov/35217787/"
    assert reader_url("doi", "10.1002/(SICI)1097-0258") == "https://doi.org/10.1002/(SICI)1097-0258"
    assert reader_url("doi", "10.1000/a b?c") == "https://doi.org/10.1000/a%20b%3Fc"
    assert reader_url("pmcid", "PMC1") == "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC1/"
    assert reader_url("ppr", "PPR1") == "https://europepmc.org/article/PPR/PPR1"
    assert reader_url("epmc", "PAT/WO1") == "https://europepmc.org/article/PAT/WO1"
    assert reader_url("openalex", "W1") == "https://openalex.org/W1"
    assert reader_url("pmid", " ") == ""
    assert Paper(pmid="1", title="t", doi="10.1000/a").url == "https://pubmed.ncbi.nlm.nih.gov/1/"
    assert Paper(pmid="", title="t", doi="10.1000/A", ppr="PPR1").url == "https://doi.org/10.1000/a"
    assert Paper(pmid="", title="t", ppr="PPR1").url == "https://europepmc.org/article/PPR/PPR1"
    assert Paper(pmid="", title="t", openalex="W1").url == "https://openalex.org/W1"


def test_a_key_reads_as_a_person_would_say_it():
    assert describe_key("pmid:35217787") == "PMID 35217787"
    assert describe_key("35217787") == "PMID 35217787"  # posts made before identities
    assert describe_key("ppr:PPR1") == "Europe PMC PPR1"
    assert describe_key("doi:10.1000/a") == "DOI 10.1000/a"
    assert describe_key("nonsense") == "nonsense"
