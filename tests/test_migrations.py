"""A library made before papers had identities (the schema up to m006, keyed by PMID) is migrated in place by
m007 and what its users see survives under the new keys: their votes, reading lists, the posts and their
claims, the papers and what was said about them; then it copies into PostgreSQL whole."""

from __future__ import annotations

import json

import pytest
import sqlite_utils

from il2watch.library import Library, paper_to_json
from il2watch.model import Paper
from il2watch.store.copy import copy_library
from il2watch.store.sqlite import migrations
from tests.conftest import NO_POSTGRES, TEST_DATABASE_URL, new_database

CHANNEL = "C0PAPERS1"
CITING, SIMILAR = "36104538", "34563221"
OLD_AT = "2024-05-01T09:00:00+00:00"


def old_library(path) -> None:
    """A library as il2watch left it before m007: every row keyed by a bare PMID."""
    db = sqlite_utils.Database(path)
    migrations.apply(db, stop_before="m007_paper_identity")
    assert "pmid" in db["papers"].columns_dict and "paper" not in db["papers"].columns_dict  # the old schema
    for pmid, title in ((CITING, "A CD25-biased IL-2 mutein in lupus"), (SIMILAR, "Low-dose IL-2 in Tregs")):
        paper = Paper(pmid=pmid, title=title, doi=f"10.1000/{pmid}", pmcid=f"PMC{pmid[:7]}")
        record = json.loads(paper_to_json(paper))
        for new_field in ("key", "ppr", "openalex", "epmc"):  # fields the old records did not have
            record.pop(new_field, None)
        db["papers"].insert(
            {
                "pmid": pmid,
                "title": title,
                "title_text": title,
                "doi": paper.doi,
                "pmcid": paper.pmcid,
                "record": json.dumps(record),
                "axis": "treg",
                "stored_at": OLD_AT,
                "updated_at": OLD_AT,
            }
        )
    db["reasons"].insert_all(
        [
            {"watch": "review", "pmid": CITING, "kind": "cites", "first_seen": OLD_AT, "last_seen": OLD_AT},
            {"watch": "review", "pmid": SIMILAR, "kind": "similar", "score": 80, "rank": 1, "first_seen": OLD_AT},
        ]
    )
    db["feedback"].insert_all(
        [
            {"pmid": CITING, "user": "UREADER1", "value": 1, "at": OLD_AT},
            {"pmid": CITING, "user": "UREADER2", "value": 1, "at": OLD_AT},
            {"pmid": SIMILAR, "user": "UREADER1", "value": -1, "at": OLD_AT},
        ]
    )
    db["saved"].insert_all(
        [{"user": "UREADER1", "pmid": CITING, "at": OLD_AT}, {"user": "UREADER1", "pmid": SIMILAR, "at": OLD_AT}]
    )
    for key, kind, pmids, ts in (
        (f"paper:{CITING}", "paper", [CITING], "1714550400.000100"),
        ("digest:2024-05-01", "digest", [CITING, SIMILAR], "1714550400.000200"),
    ):
        db["outbox"].insert(
            {
                "key": key,
                "channel": CHANNEL,
                "kind": kind,
                "pmids": json.dumps(pmids),
                "payload": json.dumps({"title": "Papers this week"}),
                "state": "sent",
                "ts": ts,
                "attempts": 1,
                "created_at": OLD_AT,
                "sent_at": OLD_AT,
            }
        )
    db["claims"].insert_all(
        [
            {"channel": CHANNEL, "pmid": CITING, "key": f"paper:{CITING}"},
            {"channel": CHANNEL, "pmid": SIMILAR, "key": "digest:2024-05-01"},
        ]
    )
    db["insights"].insert(
        {"pmid": CITING, "insight": json.dumps({"summary": "It expands Tregs."}), "computed_at": OLD_AT}
    )
    db.close()


def assert_what_users_saw_survives(library: Library) -> None:
    assert library.feedback(f"pmid:{CITING}") == (2, 0)
    assert library.feedback(f"pmid:{SIMILAR}") == (0, 1)
    assert library.feedback(CITING) == (2, 0), "a bare PMID (a button on an old post) still finds the votes"
    assert sorted(library.saved_by("UREADER1")) == [f"pmid:{SIMILAR}", f"pmid:{CITING}"]
    assert library.claimed(CHANNEL, [CITING, SIMILAR]) == {f"pmid:{CITING}", f"pmid:{SIMILAR}"}
    posts = {row.key: row for row in library.outbox("sent", channel=CHANNEL)}
    assert posts[f"paper:{CITING}"].papers == (f"pmid:{CITING}",)
    assert posts["digest:2024-05-01"].papers == (f"pmid:{CITING}", f"pmid:{SIMILAR}")
    assert posts["digest:2024-05-01"].ts == "1714550400.000200"
    paper = library.paper(f"pmid:{CITING}")
    assert paper is not None and paper.title == "A CD25-biased IL-2 mutein in lupus" and paper.pmid == CITING
    for token in (f"doi:10.1000/{CITING}", f"pmcid:PMC{CITING[:7]}"):
        found = library.paper(token)
        assert found is not None and found.key == f"pmid:{CITING}", token
    assert {(r.reason.watch, r.reason.kind) for r in library.reasons_for(f"pmid:{SIMILAR}")} == {("review", "similar")}


def test_an_old_library_keyed_by_pmid_migrates_with_everything_users_saw(tmp_path):
    path = tmp_path / "old.db"
    old_library(path)
    with Library(path) as library:
        assert_what_users_saw_survives(library)
        assert library.sources_of(f"pmid:{CITING}") == ["pubmed"], "the old reasons were PubMed's"
    with Library(path) as library:  # opening it again migrates nothing twice
        assert_what_users_saw_survives(library)


@pytest.mark.skipif(not TEST_DATABASE_URL, reason=NO_POSTGRES)
def test_a_migrated_old_library_copies_into_postgresql_whole(tmp_path):
    path = tmp_path / "old.db"
    old_library(path)
    with Library(path) as source, Library(new_database()) as target:
        copy_library(source, target, progress=lambda *_: None)
        assert_what_users_saw_survives(target)
