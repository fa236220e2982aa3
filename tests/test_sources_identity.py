"""One paper however many indexes list it: each post names exactly the indexes the literature model says
list it, the commands show what a later listing added, a paper is found by its PMCID, and a source enabled
later for a paper watch other than the review says in its note what reaches those papers.

The lab (the four citation stand-ins, Slack, a library) is test_sources.py's.
"""

from __future__ import annotations

import argparse
import json
import re

from il2watch.cli import COMMANDS
from il2watch.model import SOURCES, Watch
from tests.conftest import BOTH_BACKENDS
from tests.data import citations as C
from tests.data.records import REVIEW_CITED_BY, REVIEW_PMID, UNRELATED_PMID
from tests.stand_ins.literature import INDEXES
from tests.test_sources import CHANNEL, LATER, MUCH_LATER, NEW_CITING, PATENT_KEY, PMC_ONLY_KEY, lab

__all__ = ["lab"]  # the fixture, imported for these tests

_LISTED = re.compile(r"Cites the review · ([A-Za-z ,]+)")


def context(lab, library):
    from il2watch.commands import Context
    from il2watch.service import all_watches, insight_maker

    settings = lab.settings()
    return Context(
        library=library,
        settings=settings,
        insight_for=insight_maker(settings, library, summariser=False),
        user_id="U0READER1",
        channel_id=CHANNEL,
        watches=tuple(all_watches(settings, library)),
        now=lambda: LATER,
    )


def shown(reply) -> str:
    return json.dumps(reply.blocks, ensure_ascii=False)


def model_listings(literature) -> dict[str, set[str]]:
    """{model key of a paper citing the review: the indexes the model says list it}."""
    listed: dict[str, set[str]] = {}
    for index in INDEXES:
        for key in literature.citing(REVIEW_PMID, index):
            listed.setdefault(key, set()).add(index)
    return listed


def post_ids(message) -> set[str]:
    """The id tokens a paper post's metadata carries, DOIs lowercased."""
    payload = message.metadata["event_payload"]
    return {f"{kind}:{str(payload[kind]).lower()}" for kind in ("pmid", "doi", "pmcid", "ppr") if payload.get(kind)}


def model_ids(literature, key: str) -> set[str]:
    """The id tokens the model gives a citing paper (a work Europe PMC lists from PMC: its PMCID)."""
    ids = {f"{kind}:{value.lower()}" for kind, value in literature.ids_of(key).items() if value and kind != "openalex"}
    if not key.startswith("pmid:") and literature.work(key).europepmc_source == "PMC":
        ids.add(f"pmcid:{literature.work(key).europepmc_id.lower()}")
    return ids


@BOTH_BACKENDS
def test_every_new_citing_paper_is_posted_naming_exactly_the_indexes_that_list_it(lab):
    lab.poll()
    before = set(model_listings(lab.literature))
    baseline = lab.papers_posted()
    C.add_new_citations(lab.literature)
    lab.poll()
    new = {k: v for k, v in model_listings(lab.literature).items() if k not in before and k != C.PATENT.key}
    posts = [m for m in lab.slack.posts_with_metadata("il2watch_paper", CHANNEL) if m.metadata["event_payload"]]
    new_posts = [m for m in posts if m.metadata["event_payload"]["paper"] not in baseline]
    assert len(new) == len(new_posts) == len(NEW_CITING)
    for key, indexes in new.items():
        (post,) = [m for m in new_posts if post_ids(m) & model_ids(lab.literature, key)]
        (line,) = _LISTED.findall(shown(post))
        named = [name.strip() for name in line.split(",")]
        assert sorted(named) == sorted(SOURCES[i] for i in indexes), (key, named)


@BOTH_BACKENDS
def test_a_listing_added_later_shows_in_paper_and_cites(lab):
    from il2watch.commands import answer

    lab.poll()
    C.add_new_citations(lab.literature)
    lab.poll()
    lab.literature.cite(C.ICITE_ONLY_PMID, REVIEW_PMID, ("europepmc",))  # Europe PMC catches up
    lab.poll(now=MUCH_LATER)
    with lab.library() as library:
        ctx = context(lab, library)
        paper = shown(answer(f"paper {C.ICITE_ONLY_PMID}", ctx))
        cites = answer("cites 30", ctx)
    assert "Listed by iCite, Europe PMC." in paper
    (entry,) = [block for block in cites.blocks if C.ICITE_ONLY_PMID in json.dumps(block)]
    assert "iCite, Europe PMC" in json.dumps(entry, ensure_ascii=False)


@BOTH_BACKENDS
def test_a_paper_is_found_by_its_pmcid_in_slack_and_on_the_command_line(lab, capsys):
    from il2watch.commands import answer

    lab.poll()
    C.add_new_citations(lab.literature)
    lab.poll()
    pmcid = C.PMC_ONLY.europepmc_id
    with lab.library() as library:
        stored = library.paper(PMC_ONLY_KEY)
        assert stored is not None
        reply = answer(f"paper {pmcid}", context(lab, library))
    assert reply.deferred is None and stored.title in shown(reply)
    assert COMMANDS["show"](lab.settings(), argparse.Namespace(paper=pmcid.lower())) == 0
    assert stored.title in capsys.readouterr().out


@BOTH_BACKENDS
def test_cites_lists_the_patent_the_library_keeps_but_never_posts(lab):
    """A patent is not posted (README: kept in the library), and ``cites`` lists what the library holds
    as citing the review, from every index: the patent too, with the index that lists it."""
    from il2watch.commands import answer

    lab.poll()
    C.add_new_citations(lab.literature)
    lab.poll()
    assert PATENT_KEY not in lab.papers_posted()
    with lab.library() as library:
        cites = answer("cites 30", context(lab, library))
    (entry,) = [block for block in cites.blocks if C.PATENT.title in json.dumps(block, ensure_ascii=False)]
    assert "Europe PMC" in json.dumps(entry, ensure_ascii=False)


def test_a_source_added_later_for_a_second_paper_watch_names_what_reaches_its_papers(lab):
    second = Watch(id=f"pmid-{UNRELATED_PMID}", pmid=UNRELATED_PMID, source="slack")
    with lab.library() as library:
        library.add_watch(second, added_by="U0ADMIN01")
    lab.literature.cite(REVIEW_CITED_BY[0], UNRELATED_PMID, ("pubmed",))  # its baseline: one citing paper
    lab.poll(IL2WATCH_SOURCES="pubmed")
    C.add_new_citations(lab.literature)
    for pmid in (C.EPMC_ONLY_PMID, C.ICITE_ONLY_PMID):
        lab.literature.cite(pmid, UNRELATED_PMID, ("europepmc",))
    lab.poll(IL2WATCH_SOURCES="pubmed,europepmc")
    notes = {
        m.metadata["event_payload"]["watch"]: m.text
        for m in lab.slack.posts_with_metadata("il2watch_note", CHANNEL)
        if m.metadata["event_payload"].get("kind") == "source_baseline"
    }
    assert "`/il2 cites` lists them" in notes["review"]
    text = notes[second.id]
    assert "Europe PMC found 2 papers more citing PMID" in text
    assert f"`/il2 backfill {second.id} 20` posts up to 20 of them, newest first" in text
    assert "cites` lists them" not in text  # /il2 cites lists the review's citations only
