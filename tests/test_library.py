"""The library on both backends (a real SQLite file, a real PostgreSQL database): schema, papers, reasons,
outbox, watches, runs, feedback; then SQLite's own failure modes. Search has its own suite (test_search)."""

import json
import sqlite3
from dataclasses import asdict, replace

import pytest

from il2watch.identity import Ids
from il2watch.library import TABLE_KEYS, Library, LibraryError
from il2watch.model import Author, Insight, Paper, Reason, Section, Watch
from il2watch.store import postgres as pg
from il2watch.store import sqlite as sq
from tests.conftest import BOTH_BACKENDS


def paper(pmid, title="Engineered IL-2 mutein expands regulatory T cells", **kw):
    defaults = dict(
        abstract=(Section("Low-dose <i>IL-2</i> &amp; a CD25-biased mutein.", "RESULTS", "RESULTS"),),
        authors=(Author("Põder", "Jan", "J"), Author(collective="IL-2 Trial Group")),
        journal="Frontiers in Immunology",
        journal_iso="Front Immunol",
        pub_date="2024 Mar",
        pub_year=2024,
        entry_date="2024-03-02",
        doi=f"10.3389/FIMMU.2024.{pmid}",
        pmcid=f"PMC{pmid}",
        pub_types=("Journal Article",),
        keywords=("Treg",),
        mesh=("Interleukin-2",),
        corrections=(("ErratumIn", "99"),),
    )
    defaults.update(kw)
    return Paper(pmid=pmid, title=title, **defaults)


@pytest.fixture
def lib(database):
    with Library(database) as library:
        yield library


def test_schema_is_created_once_and_reopening_is_harmless(tmp_path):
    path = tmp_path / "lib.db"
    Library(path).close()
    with Library(path) as again:
        names = {r[0] for r in again.db.execute("select name from _sqlite_migrations")}
        assert {
            "m001_papers_and_reasons",
            "m002_delivery",
            "m003_tag_indexes",
            "m004_unreadable_records",
            "m005_handled_requests",
            "m006_stored_insights",
        } <= names
        assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert again.is_empty()


def test_a_new_postgresql_database_is_created_at_the_current_version_in_one_step(fresh_postgres_url):
    postgres_url = fresh_postgres_url
    Library(postgres_url).close()
    pg.close_pools(postgres_url)  # a new process: it finds the schema there and changes nothing
    with Library(postgres_url) as again:
        assert again.applied_migrations() == sorted(sq.migration_names())
        assert again.is_empty()


def test_both_backends_know_the_same_migrations_and_tables(tmp_path, postgres_url):
    """A migration added to one backend and not the other, or a table ``il2watch migrate`` would not copy,
    fails here."""
    assert sorted(pg.migration_names()) == sorted(sq.migration_names())
    with Library(tmp_path / "lib.db") as lite:
        sqlite_tables = {
            r[0]
            for r in lite.db.execute("select name from sqlite_master where type = 'table'")
            if not r[0].startswith(("papers_fts", "_sqlite", "sqlite_"))
        }
    with Library(postgres_url) as postgres:
        postgres_tables = {
            r[0]
            for r in postgres.db.execute(
                "select table_name from information_schema.tables where table_schema = current_schema()"
            ).fetchall()
        } - {"il2watch_migrations"}
        columns = {
            (t, c)
            for t, c in postgres.db.execute(
                "select table_name, column_name from information_schema.columns where table_schema = current_schema()"
            ).fetchall()
        }
    assert sqlite_tables == postgres_tables == set(TABLE_KEYS)
    with Library(tmp_path / "lib.db") as lite:
        for table in TABLE_KEYS:
            for row in lite.db.execute(f"PRAGMA table_info({table})"):
                assert (table, row[1]) in columns, f"{table}.{row[1]} is missing on PostgreSQL"


@BOTH_BACKENDS
def test_paper_round_trips_whole(lib):
    original = paper("101")
    lib.save_papers([original])
    original = replace(original, key="pmid:101")  # the library's identity of the paper, given when stored
    assert lib.paper("101") == original
    assert lib.paper("pmid:101") == lib.paper("pmcid:PMC101") == original
    assert lib.paper("doi:10.3389/fimmu.2024.101") == lib.paper("doi:10.3389/FIMMU.2024.101") == original
    assert lib.papers(["999", "101"]) == [original]
    assert not lib.is_empty()


@BOTH_BACKENDS
def test_insight_columns_feed_tag_queries(lib):
    lib.save_papers(
        [paper("1"), paper("2")],
        {
            "1": Insight("s", axis="treg", molecules=("efavaleukin alfa",), flags=("clinical-trial",), relevance=70),
            "2": Insight("s", axis="effector", molecules=("bempegaldesleukin",), relevance=40),
        },
    )
    assert lib.tagged(axis="treg") == ["pmid:1"]
    assert lib.tagged(molecule="Bempegaldesleukin") == ["pmid:2"]
    assert lib.tagged(flag="clinical-trial") == ["pmid:1"]
    assert lib.known_molecules() == ["bempegaldesleukin", "efavaleukin alfa"]


@BOTH_BACKENDS
def test_reasons_keep_first_seen_and_update_score(lib):
    lib.save_reasons([("1", Reason("review", "similar", 50, 3))], now="2024-01-01T00:00:00+00:00", run_id=1)
    lib.save_reasons(
        [("1", Reason("review", "similar", 60, 2)), ("1", Reason("review", "cites"))],
        now="2024-02-01T00:00:00+00:00",
        run_id=2,
    )
    stored = {s.reason.kind: s for s in lib.reasons_for("1")}
    assert stored["similar"].first_seen.startswith("2024-01-01")
    assert stored["similar"].last_seen.startswith("2024-02-01")
    assert (stored["similar"].reason.score, stored["similar"].reason.rank) == (60, 2)
    assert set(lib.linked("review")) == {("pmid:1", "similar"), ("pmid:1", "cites")}
    assert lib.count_linked("review", "cites") == 1


@BOTH_BACKENDS
def test_transaction_is_all_or_nothing(lib):
    with pytest.raises(RuntimeError):
        with lib.transaction():
            lib.save_papers([paper("1")])
            lib.save_reasons([("1", Reason("review", "cites"))], now="2024-01-01", run_id=None)
            raise RuntimeError("crash in the middle")
    assert lib.paper("1") is None and lib.reasons_for("1") == []


@BOTH_BACKENDS
def test_outbox_claims_a_pmid_once_per_channel(lib):
    with lib.transaction():
        lib.enqueue(key="a", channel="C1", kind="paper", papers=["1"], payload={})
    assert lib.claimed("C1", ["1", "2"]) == {"pmid:1"}
    assert lib.claimed("C2", ["1"]) == set()
    with pytest.raises(LibraryError):
        with lib.transaction():
            lib.enqueue(key="b", channel="C1", kind="paper", papers=["1"], payload={})
    assert [row.key for row in lib.outbox()] == ["a"]


@BOTH_BACKENDS
def test_watch_progress_and_slack_watches(lib):
    lib.sync_watches([Watch("review", pmid="35217787", label="the review")])
    lib.add_watch(Watch("mine", query="IL-2 mutein", source="slack"), added_by="U1")
    assert [w.id for w in lib.slack_watches()] == ["mine"]
    lib.set_watch_progress(Watch("review", pmid="35217787"), horizon="2024-05-01", baseline_at="2024-05-01T00:00")
    state = lib.watch_state(Watch("review", pmid="35217787"))
    assert (state.horizon, state.baseline_at, state.restored) == ("2024-05-01", "2024-05-01T00:00", False)
    assert lib.remove_watch("mine") and not lib.remove_watch("mine")
    assert lib.slack_watches() == []


@BOTH_BACKENDS
def test_runs_count_consecutive_failures(lib):
    for status in ("ok", "error", "error"):
        lib.finish_run(lib.start_run("poll"), status=status, error="boom" if status == "error" else "")
    assert lib.consecutive_failures() == 2
    assert lib.last_run(status="ok")["status"] == "ok"


@BOTH_BACKENDS
def test_feedback_and_reading_list(lib):
    assert lib.set_feedback("1", "U1", 1) == (1, 0)
    assert lib.set_feedback("1", "U2", -1) == (1, 1)
    assert lib.set_feedback("1", "U1", -1) == (0, 2)  # a vote changes, never doubles
    assert lib.save_for("U1", "1") and not lib.save_for("U1", "1")
    assert lib.saved_by("U1") == ["pmid:1"]


@BOTH_BACKENDS
def test_find_keys_names_the_papers_find_key_names(lib):
    """The batched look-up the poll's merge uses keeps find_key's rules: a DOI never joins two PMIDs, an
    OpenAlex id alone joins only a paper whose DOI does not differ, DOIs match in any case."""
    lib.save_papers(
        [
            paper("101", openalex="W101"),  # DOI 10.3389/FIMMU.2024.101, as PubMed writes it
            paper("", doi="10.1101/2024.05.01.000002", pmcid="", openalex="W102"),
            paper("", doi="", pmcid="", openalex="W103", key="openalex:W103"),
        ]
    )
    expected = {
        Ids(pmid="101"): "pmid:101",
        Ids.of(doi="10.3389/fimmu.2024.101"): "pmid:101",
        Ids.of(doi="https://doi.org/10.3389/FIMMU.2024.101", ppr="PPR900001"): "pmid:101",
        Ids.of(pmid="102", doi="10.3389/FIMMU.2024.101"): None,  # its DOI names PMID 101: two papers
        Ids.of(pmid="102", doi="10.3389/FIMMU.2024.101", pmcid="PMC101"): None,
        Ids(pmid="101", openalex="W102"): "pmid:101",
        Ids(openalex="W102"): "doi:10.1101/2024.05.01.000002",
        Ids(doi="10.1101/2024.05.01.000002", openalex="W101"): "doi:10.1101/2024.05.01.000002",
        Ids(doi="10.1101/2024.05.09.000009", openalex="W102"): None,  # one OpenAlex id, two DOIs
        Ids(doi="10.1101/2024.05.09.000009", openalex="W103"): "openalex:W103",  # that paper has no DOI
        Ids(openalex="W101", doi="10.1101/2024.05.09.000009"): None,
        Ids(pmid="999"): None,
        Ids(openalex="W999"): None,
    }
    assert {ids: lib.find_key(ids) for ids in expected} == expected
    many = [*expected, *expected]  # asked twice, answered once
    assert lib.find_keys(many) == {ids: key for ids, key in expected.items() if key}
    assert lib.find_keys([]) == {}


def test_read_only_database_says_so(tmp_path):
    path = tmp_path / "lib.db"
    with Library(path) as library:
        library.save_papers([paper("1")])
    with Library(f"file:{path}?mode=ro") as read_only:
        assert read_only.paper("1") is not None
        with pytest.raises(LibraryError, match="read-only"):
            with read_only.transaction():
                read_only.save_papers([paper("2")])


def test_full_database_says_so_and_keeps_nothing_partial(tmp_path):
    lib = Library(tmp_path / "lib.db")
    lib.save_papers([paper("1")])
    pages = lib.db.execute("PRAGMA page_count").fetchone()[0]
    lib.db.execute(f"PRAGMA max_page_count = {pages + 2}")
    huge = [paper(str(n), abstract=(Section("x" * 20000),)) for n in range(2, 40)]
    with pytest.raises(LibraryError, match="cannot grow"):
        with lib.transaction():
            lib.save_papers(huge)
    assert lib.count_papers() == 1


def test_corrupt_file_says_so(tmp_path):
    path = tmp_path / "lib.db"
    path.write_bytes(b"this is not sqlite" * 500)
    with pytest.raises(LibraryError, match="not a readable SQLite database"):
        Library(path)


def test_locked_database_says_so(tmp_path):
    path = tmp_path / "lib.db"
    Library(path).close()
    blocker = sqlite3.connect(path)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        library = Library(path)
        library.db.execute("PRAGMA busy_timeout = 50")
        with pytest.raises(LibraryError, match="locked by another process"):
            with library.transaction():
                library.save_papers([paper("1")])
    finally:
        blocker.rollback()
        blocker.close()


def test_a_library_from_before_identities_finds_a_capitalised_doi_by_any_spelling(make_settings, database):
    """A library written before m007_paper_identity, its paper's DOI in capitals as PubMed writes it: the
    migration's ids come from the ``doi`` column, which every version of il2watch wrote lowercased (the
    record keeps the DOI as written), so every lookup, which lowercases DOIs too, finds the paper."""
    import sqlite_utils

    from il2watch.commands import Context, answer
    from il2watch.service import insight_maker

    old = sqlite_utils.Database(database)
    sq.migrations.apply(old, stop_before="m007_paper_identity")
    written = paper("34591000", doi="10.1172/JCI150257")
    old.table("papers").insert(
        {"pmid": "34591000", "title": written.title, "doi": written.doi.lower(), "pmcid": written.pmcid}
        | {"record": json.dumps(asdict(written)), "entry_date": written.entry_date}
    )
    old.table("saved").insert({"user": "U0READER1", "pmid": "34591000", "at": "2024-03-03T00:00:00+00:00"})
    old.close()
    settings = make_settings()
    with Library(database) as library:
        assert library.paper("doi:10.1172/jci150257") == library.paper("doi:10.1172/JCI150257") is not None
        ctx = Context(library, settings, insight_maker(settings, library, summariser=False), user_id="U0READER1")
        for text in ("paper 10.1172/jci150257", "paper https://doi.org/10.1172/JCI150257"):
            reply = answer(text, ctx)
            assert reply.deferred is None and written.title in json.dumps(reply.blocks), text  # not asked of PubMed
        assert "Removed" in answer("saved remove 10.1172/JCI150257", ctx).text
        assert library.saved_by("U0READER1") == []
