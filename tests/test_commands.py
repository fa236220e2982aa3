"""/il2 commands as plain functions of (text, context) against a real library, on both backends."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from il2watch.commands import COMMANDS, Context, Reply, ToolError, Tools, answer, read_control_value, readme_table
from il2watch.commands.parsing import parse_paper_ref, parse_window, slack_to_plain, slug
from il2watch.commands.status import format_status_text, status_facts
from il2watch.config import load_settings
from il2watch.lease import Lease
from il2watch.library import Library, LibraryError, fts_query
from il2watch.markup import to_plain
from il2watch.model import Author, Insight, Paper, Reason, Section, Watch
from il2watch.render import check_limits, render_watch_announcement
from tests.conftest import BOTH_BACKENDS
from tests.stand_ins.pubmed_world import record

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
ADMIN, USER = "UADMIN01", "UREADER1"
SEEN = "2024-05-01T00:00:00+00:00"


def make_paper(
    pmid: str,
    title: str,
    *,
    day: str = "2024-05-01",
    abstract: str = "",
    doi: str = "",
    authors=(Author("Hernandez", "Rosmely", "R"), Author("Malek", "Thomas R", "TR")),
) -> Paper:
    return Paper(
        pmid=pmid,
        title=title,
        abstract=(Section(abstract),) if abstract else (),
        authors=authors,
        journal="Journal of Immunology",
        journal_iso="J Immunol",
        pub_date=day[:4],
        pub_year=int(day[:4]),
        entry_date=day,
        doi=doi,
    )


def insight_for(paper: Paper, reasons: list[Reason]) -> Insight:
    """What the tests say about a paper: enough to render it, independent of il2watch.intel's rules."""
    title = to_plain(paper.title)
    return Insight(summary=f"About {title[:80]}", axis="treg" if "Treg" in title else "other", relevance=50.0)


@pytest.fixture
def lab(tmp_path, database):
    settings = load_settings(
        {"IL2WATCH_ADMINS": ADMIN, "IL2WATCH_CHANNEL": "C0LAB", "IL2WATCH_COMMAND": "/lit", "IL2WATCH_DB": database},
        cwd=tmp_path,
    )
    library = Library(database)
    papers = [
        make_paper(
            "40000001",
            "Low-dose <i>IL-2</i> expands Treg cells in lupus",
            day="2024-05-30",
            abstract="Regulatory T cells rose in SLE patients.",
            doi="10.1000/LUPUS.1",
        ),
        make_paper("40000002", "An IL-2 mutein biased to CD25 for autoimmunity: Treg selective", day="2024-05-20"),
        make_paper("40000003", "Bempegaldesleukin with nivolumab in melanoma", day="2024-04-01"),
        make_paper("40000004", "IL-2 signalling biology in NK cells", day="2023-01-15"),
    ]
    many = [
        make_paper(str(41000000 + n), f"Orthogonal cytokine receptor pair number {n}", day=f"2024-03-{n + 1:02d}")
        for n in range(25)
    ]
    insights = {
        "40000001": Insight("s", axis="treg", molecules=("aldesleukin",), flags=("clinical-trial",)),
        "40000002": Insight("s", axis="treg", molecules=("efavaleukin alfa",)),
        "40000003": Insight("s", axis="effector", molecules=("bempegaldesleukin",), flags=("clinical-trial",)),
    }
    library.save_papers(papers + many, insights)
    library.save_reasons(
        [
            ("40000001", Reason("review", "cites")),
            ("40000002", Reason("review", "cites")),
            ("40000002", Reason("review", "similar", 31_204_118, 4)),
            ("40000003", Reason("engineered-il2", "query")),
            ("40000004", Reason("review", "similar", 1000, 40)),
        ]
        + [(p.pmid, Reason("engineered-il2", "query")) for p in many],
        now=SEEN,
        run_id=None,
    )

    def context(user: str = USER, channel: str = "C0LAB") -> Context:
        watches = tuple(settings.watches) + tuple(
            w for w in library.slack_watches() if w.id not in {c.id for c in settings.watches}
        )
        return Context(
            library=library,
            settings=settings,
            insight_for=insight_for,
            user_id=user,
            channel_id=channel,
            watches=watches,
            now=lambda: NOW,
        )

    yield library, settings, context
    library.close()


def blocks_text(reply: Reply) -> str:
    return json.dumps(reply.blocks, ensure_ascii=False)


def button_values(reply: Reply, action_id: str) -> list[str]:
    found = []
    for block in reply.blocks:
        for element in block.get("elements", []) + ([block["accessory"]] if "accessory" in block else []):
            if element.get("action_id") == action_id:
                found.append(element["value"])
    return found


def listed_pmids(reply: Reply) -> list[str]:
    """The PMIDs of the papers a reply lists (their Details buttons carry the papers' keys)."""
    return [value.removeprefix("pmid:") for value in button_values(reply, "il2_details")]


class Recorder:
    """Tools whose I/O is a list in memory: what was uploaded, how often a poll ran."""

    def __init__(self, papers: dict[str, Paper] | None = None, dois: dict[str, str] | None = None):
        self.papers, self.dois = papers or {}, dois or {}
        self.uploads: list[tuple[str, str, str, str]] = []
        self.dms: list[str] = []
        self.polls = 0

    def tools(self) -> Tools:
        def fetch(pmids):
            return [self.papers[p] for p in pmids if p in self.papers]

        def find(term):
            doi = re.fullmatch(r'"(.*)"\[doi\]', term).group(1)
            return [self.dois[doi]] if doi in self.dois else []

        def poll():
            self.polls += 1
            return "poll ok: 2 new papers, 2 stored, 2 queued, 2 posted; 5 NCBI requests"

        def upload(channel, name, content, title):
            if channel == "CNOTIN":
                raise ToolError("I am not in that channel (not_in_channel): invite me with /invite @il2watch")
            self.uploads.append((channel, name, content, title))

        def open_dm(user):
            self.dms.append(user)
            return "D" + user[1:]

        def check_query(term):
            raise ToolError("the recorder does not search PubMed")

        return Tools(
            fetch_papers=fetch, find_pmids=find, poll=poll, upload=upload, open_dm=open_dm, check_query=check_query
        )


# ---------------------------------------------------------------- help and the command table


@BOTH_BACKENDS
def test_help_is_generated_from_the_command_table_with_the_configured_name(lab):
    _, _, context = lab
    reply = answer("help", context())
    text = blocks_text(reply)
    for command in COMMANDS:
        assert command.usage("/lit").replace("<", "&lt;").replace(">", "&gt;") in text
    assert "/il2 " not in text
    assert "(admins only)" in text
    assert answer("", context()).blocks == reply.blocks  # empty text is help
    assert "watch list" in blocks_text(answer("help watch", context()))
    assert "search" not in blocks_text(answer("help watch", context()))


def test_readme_documents_the_same_commands():
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert readme_table() in readme


# ---------------------------------------------------------------- paper


@pytest.mark.parametrize(
    "text",
    [
        "paper 40000001",
        "paper PMID:40000001",
        "paper <https://pubmed.ncbi.nlm.nih.gov/40000001/>",
        "paper https://www.ncbi.nlm.nih.gov/pubmed/40000001",
        "paper doi:10.1000/lupus.1",
        "paper <https://doi.org/10.1000/LUPUS.1|doi.org/10.1000/LUPUS.1>",
        "40000001",
        "PAPER 40000001",
    ],
)
@BOTH_BACKENDS
def test_paper_answers_from_the_library_with_why_it_is_there(lab, text):
    _, _, context = lab
    reply = answer(text, context())
    assert reply.deferred is None and reply.response_type == "ephemeral"
    body = blocks_text(reply)
    assert "Low-dose _IL-2_ expands Treg cells in lupus" in body
    assert "Cites the review (PMID 35217787)" in body  # the explanation, in full
    assert "In il2watch's library since 2024-05-01" in body
    assert {"il2_relevant", "il2_not_relevant", "il2_save", "il2_share"} <= set(re.findall(r'"(il2_\w+)"', body))
    assert not check_limits(reply.blocks)


@BOTH_BACKENDS
def test_paper_shows_feedback_counts(lab):
    library, _, context = lab
    library.set_feedback("40000001", "U1", 1)
    library.set_feedback("40000001", "U2", -1)
    library.set_feedback("40000001", "U3", 1)
    body = blocks_text(answer("paper 40000001", context()))
    assert "Relevant (2)" in body and "Not relevant (1)" in body


@BOTH_BACKENDS
def test_a_paper_not_in_the_library_is_looked_up_after_the_ack_and_kept(lab):
    library, _, context = lab
    by_pmid = make_paper("39999999", "A paper no watch found")
    by_doi = make_paper("39999998", "Another paper no watch found", doi="10.2000/elsewhere")
    recorder = Recorder({p.pmid: p for p in (by_pmid, by_doi)}, {"10.2000/elsewhere": "39999998"})
    for text, wanted in (("paper 39999999", by_pmid), ("paper 10.2000/ELSEWHERE", by_doi)):
        reply = answer(text, context())
        assert reply.deferred is not None and "Looking up" in reply.text
        assert library.paper(wanted.pmid) is None
        later = reply.deferred.run(recorder.tools())
        assert to_plain(wanted.title) in blocks_text(later)
        assert "looked up in PubMed" in blocks_text(later)
        assert not check_limits(later.blocks) and button_values(later, "il2_share")
        assert library.paper(wanted.pmid) == replace(wanted, key=f"pmid:{wanted.pmid}")
        assert f"pmid:{wanted.pmid}" not in library.recent(limit=100)  # a look-up is not a finding
        assert answer(text, context()).deferred is None  # the next time, it is in the library


@BOTH_BACKENDS
def test_a_paper_pubmed_does_not_know_is_said_so(lab):
    _, _, context = lab
    reply = answer("paper 12345", context())
    later = reply.deferred.run(Recorder().tools())
    assert "PubMed has no paper with PMID 12345" in later.text


@pytest.mark.parametrize(
    "text",
    [
        "paper",
        "paper abc",
        "paper 0",
        "paper 123456789012",
        "paper 10.12/x",
        "paper <@U999|boss>",
        "paper https://example.org/40000001",
    ],
)
@BOTH_BACKENDS
def test_malformed_paper_references_get_a_hint(lab, text):
    _, _, context = lab
    reply = answer(text, context())
    assert reply.deferred is None
    assert "/lit paper 35217787" in reply.text


def test_paper_references_are_recognised_and_nothing_else():
    assert parse_paper_ref("PMID 35217787").pmid == "35217787"
    assert parse_paper_ref("035217787").pmid == "35217787"
    assert parse_paper_ref("https://pubmed.ncbi.nlm.nih.gov/35217787/?from=x").pmid == "35217787"
    assert parse_paper_ref("https://doi.org/10.1038/s41577-022-00680-w").doi == "10.1038/s41577-022-00680-w"
    assert parse_paper_ref("10.1038/S41577-022-00680-W.").doi == "10.1038/s41577-022-00680-w"
    for bad in ("", "0", "-5", "35217787x", "1e5", "١٢٣", "https://evil.example/35217787", "10.1/x"):
        assert parse_paper_ref(bad) is None, bad


# ---------------------------------------------------------------- search and paging


@BOTH_BACKENDS
def test_search_ranks_title_matches_first_and_reports_the_total(lab):
    _, _, context = lab
    reply = answer("search lupus Treg", context())
    assert listed_pmids(reply)[0] == "40000001"
    assert "1 paper match “lupus Treg”" in reply.text


@BOTH_BACKENDS
def test_search_pages_ten_at_a_time_with_more(lab):
    _, _, context = lab
    first = answer("search orthogonal cytokine", context())
    assert len(listed_pmids(first)) == 10 and "showing 1–10 of 25" in first.text
    text, offset = read_control_value(button_values(first, "il2_more")[0])
    assert (text, offset) == ("search orthogonal cytokine", 10)
    second = answer(text, context(), offset=offset)
    third = answer(text, context(), offset=20)
    assert "showing 21–25 of 25" in third.text and not button_values(third, "il2_more")
    seen = listed_pmids(first) + listed_pmids(second) + listed_pmids(third)
    assert len(set(seen)) == 25


# library.fts_query puts an OR group beside other terms without AND ('"a" ("b" OR "c")'), which FTS5
# rejects. Reported to the lead (the fix is in library.py); these marks lift themselves once it is fixed.
OR_GROUP_BUG = fts_query("a b OR c") == '"a" ("b" OR "c")'
FTS_GROUP_BUG = pytest.mark.xfail(
    OR_GROUP_BUG,
    strict=True,
    reason='library.fts_query emits \'"a" ("b" OR "c")\', which FTS5 rejects; it must join its groups with \' AND \'',
)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('search "low-dose IL-2"[tiab] AND (lupus OR SLE)', marks=FTS_GROUP_BUG),
        pytest.param("search Treg lupus OR melanoma", marks=FTS_GROUP_BUG),
        'search "unbalanced quote',
        "search IL-2[ti] NOT",
        "search (((",
        "search ***",
        'search ""',
        "search AND OR NOT",
        "search ^col:lupus",
        "search NEAR(IL-2 Treg)",
        "search lupus)",
        "search -lupus +Treg",
        "search il-2*",
        "search 𝕀𝕃-𝟚 ‮Treg‬",
        "search “lupus”",
    ],
)
@BOTH_BACKENDS
def test_pubmed_style_searches_never_error(lab, text):
    _, _, context = lab
    reply = answer(text, context())
    assert reply.blocks and not check_limits(reply.blocks)


@BOTH_BACKENDS
def test_pubmed_style_search_finds_what_it_says(lab):
    _, _, context = lab
    assert listed_pmids(answer('search "low-dose IL-2"[tiab] AND lupus', context())) == ["40000001"]
    assert set(listed_pmids(answer("search lupus OR melanoma", context()))) == {"40000001", "40000003"}


@BOTH_BACKENDS
def test_search_without_words_or_with_too_many_says_how(lab):
    _, _, context = lab
    assert "Search for what?" in answer("search", context()).text
    assert "keep it under" in answer("search " + "lupus " * 60, context()).text
    nothing = answer("search zebrafish", context())
    assert "Nothing in the library matches “zebrafish”" in nothing.text


@pytest.fixture
def wordings(lab):
    """Papers that say the same things in different words."""
    library, _, _ = lab
    papers = [
        make_paper("42000001", "Expansion of regulatory T cells in lupus", abstract="Mice and patients were studied."),
        make_paper("42000002", "Interleukin-2 therapy in melanoma", abstract="Patients only."),
        make_paper("42000003", "Aldesleukin for renal cell carcinoma", abstract="A mouse model was used."),
        make_paper("42000004", "IL-2 in the mouse thymus", abstract="Thymocytes were counted."),
        make_paper("42000005", "NKTR214 with nivolumab", abstract="Tumours shrank."),
    ]
    library.save_papers(papers, {"42000005": Insight("s", axis="effector", molecules=("bempegaldesleukin",))})
    library.save_reasons([(p.pmid, Reason("review", "cites")) for p in papers], now=SEEN, run_id=None)
    return library


@BOTH_BACKENDS
def test_search_words_find_the_papers_that_say_the_same_thing_differently(lab, wordings):
    _, _, context = lab
    treg = set(listed_pmids(answer("search treg", context())))
    assert {"40000001", "40000002", "42000001"} <= treg  # "Treg" and "regulatory T cells"
    il2 = set(listed_pmids(answer("search IL-2", context())))
    assert {"42000002", "42000003", "42000004"} <= il2  # "interleukin-2", "aldesleukin", "IL-2"
    assert "42000005" in listed_pmids(answer("search bempegaldesleukin", context()))  # written NKTR214
    assert set(listed_pmids(answer("search regulatory T cells lupus", context()))) == {"40000001", "42000001"}


@BOTH_BACKENDS
def test_quoted_phrases_stay_exact(lab, wordings):
    _, _, context = lab
    assert listed_pmids(answer('search "interleukin-2"', context())) == ["42000002"]
    assert "42000001" not in listed_pmids(answer('search "treg"', context()))


@BOTH_BACKENDS
def test_search_not_excludes(lab, wordings):
    _, _, context = lab
    found = set(listed_pmids(answer("search IL-2 NOT mouse", context())))
    assert "42000002" in found and not found & {"42000003", "42000004"}
    assert "42000004" not in listed_pmids(answer("search IL-2 -mouse", context()))
    assert (
        set(listed_pmids(answer("search IL-2 NOT (mouse OR melanoma)", context())))
        & {
            "42000002",
            "42000003",
            "42000004",
        }
        == set()
    )
    only = answer("search NOT mouse", context())
    assert "as well as what to leave out" in only.text and "/lit search IL-2 NOT mouse" in only.text


def test_fts_query_reads_not_and_synonyms():
    assert fts_query("IL-2 NOT mouse") == '"IL-2" NOT "mouse"'
    assert fts_query("a b OR c NOT d") == '("a" AND ("b" OR "c")) NOT "d"'
    assert fts_query("NOT mouse") == ""


# ---------------------------------------------------------------- recent, cites, tag, saved


@BOTH_BACKENDS
def test_recent_by_count_and_by_days(lab):
    _, _, context = lab
    assert listed_pmids(answer("recent 2", context())) == ["40000001", "40000002"]
    assert listed_pmids(answer("recent 3d", context())) == ["40000001"]  # entered since 2024-05-29
    assert set(listed_pmids(answer("recent 2w", context()))) == {"40000001", "40000002"}
    full = answer("recent", context())
    assert len(listed_pmids(full)) == 10 and button_values(full, "il2_more")
    assert not button_values(answer("recent 10", context()), "il2_more")
    for bad in ("recent lots", "recent 0", "recent 99999", "recent -3d"):
        assert "takes a number of papers" in answer(bad, context()).text


def test_recent_windows_parse():
    assert parse_window("7d").days == 7 and parse_window("2 weeks").days == 14 and parse_window("20").count == 20
    assert parse_window("") is not None and parse_window("0") is None and parse_window("7y") is None


@BOTH_BACKENDS
def test_cites_lists_papers_citing_the_review_newest_first(lab):
    _, _, context = lab
    reply = answer("cites", context())
    assert listed_pmids(reply) == ["40000001", "40000002"]
    assert "Papers citing the review" in reply.text and "of 2" in reply.text
    assert listed_pmids(answer("cites 1", context())) == ["40000001"]
    assert "takes how many" in answer("cites all", context()).text


@pytest.mark.parametrize(
    "tag, expected",
    [
        ("treg", ["40000001", "40000002"]),
        ("autoimmunity", ["40000001", "40000002"]),
        ("Treg/autoimmunity", ["40000001", "40000002"]),
        ("cancer", ["40000003"]),
        ("effector/cancer", ["40000003"]),
        ("trial", ["40000001", "40000003"]),
        ("Efavaleukin Alfa", ["40000002"]),
        ("molecule aldesleukin", ["40000001"]),
    ],
)
@BOTH_BACKENDS
def test_tags(lab, tag, expected):
    _, _, context = lab
    assert listed_pmids(answer(f"tag {tag}", context())) == expected


@pytest.mark.parametrize("text", ["efavaleukin", "EFAVALEUKIN", "AMG 592", "AMG592", "efava", "molecule efavaleukin"])
@BOTH_BACKENDS
def test_tag_finds_a_molecule_by_any_synonym_or_an_unambiguous_prefix(lab, text):
    _, _, context = lab
    reply = answer(f"tag {text}", context())
    assert listed_pmids(reply) == ["40000002"] and "Papers tagged efavaleukin alfa" in reply.text


@BOTH_BACKENDS
def test_tag_with_an_ambiguous_prefix_names_the_candidates(lab):
    library, _, context = lab
    library.save_papers(
        [make_paper("42000010", "Nemvaleukin in ovarian cancer")],
        {"42000010": Insight("s", molecules=("nemvaleukin alfa",))},
    )
    reply = answer("tag ne", context())
    assert "could be" in reply.text and "`nemvaleukin alfa`" in reply.text and "`Neo-2/15`" in reply.text
    assert listed_pmids(answer("tag nemv", context())) == ["42000010"]
    assert listed_pmids(answer("tag both", context())) == []
    assert "both" in answer("tag", context()).text


@BOTH_BACKENDS
def test_tag_without_a_known_tag_lists_them(lab):
    _, _, context = lab
    assert "efavaleukin alfa" in answer("tag", context()).text
    reply = answer("tag <!channel> unicorns", context())
    assert "is not a tag" in reply.text and "<!channel>" not in blocks_text(reply)


@BOTH_BACKENDS
def test_saved_is_each_users_own_reading_list(lab):
    library, _, context = lab
    library.save_for(USER, "40000003", now="2024-05-02T00:00:00+00:00")
    library.save_for(USER, "40000001", now="2024-05-03T00:00:00+00:00")
    assert listed_pmids(answer("saved", context())) == ["40000001", "40000003"]
    assert "reading list is empty" in answer("saved", context(user="USOMEONE")).text


@BOTH_BACKENDS
def test_notify_turns_direct_messages_about_saved_papers_off_and_on_for_that_person_only(lab):
    library, _, context = lab
    library.save_for(USER, "40000001")
    library.save_for(ADMIN, "40000001")
    assert "Direct messages are *on*" in answer("notify", context()).text
    assert "Direct messages are *off*" in answer("notify off", context()).text
    assert library.savers("40000001") == [ADMIN]
    assert "`/lit notify on` turns them back on" in answer("notify", context()).text
    assert "Direct messages are *on*" in answer("Notify ON", context()).text
    assert sorted(library.savers("40000001")) == sorted([USER, ADMIN])
    assert answer("notify maybe", context()).text == "`notify` takes `on` or `off`, not `maybe`."
    assert library.notify_enabled(USER)


@BOTH_BACKENDS
def test_saved_items_can_be_removed_by_button_or_by_any_id_paper_accepts(lab):
    library, _, context = lab
    for pmid in ("40000001", "40000002", "40000003"):
        library.save_for(USER, pmid)
    listing = answer("saved", context())
    assert not check_limits(listing.blocks)
    unsave = {
        value
        for block in listing.blocks
        for value in [e.get("value") for e in block.get("elements", [])]
        if value and block["block_id"].startswith("il2_saved")
    }
    assert unsave == {"pmid:40000001", "pmid:40000002", "pmid:40000003"}
    assert "Removed PMID 40000001" in answer("saved remove 40000001", context()).text
    assert "Removed PMID 40000001" not in answer("saved remove PMID:40000001", context()).text
    assert "Removed PMID 40000002" in answer("saved remove https://pubmed.ncbi.nlm.nih.gov/40000002/", context()).text
    assert "Removed PMID 40000003" not in answer("saved remove doi:10.1000/lupus.1", context()).text
    library.save_for(USER, "40000001")
    assert "Removed PMID 40000001" in answer("saved remove doi:10.1000/LUPUS.1", context()).text
    assert library.saved_by(USER) == ["pmid:40000003"]
    assert "Remove which paper?" in answer("saved remove nonsense", context()).text
    assert "takes a paper off it" in answer("saved frobnicate", context()).text


@BOTH_BACKENDS
def test_save_and_unsave_buttons_answer_with_each_other(lab):
    from il2watch.commands.buttons import save_reply, unsave_reply

    library, _, context = lab
    saved = save_reply(context(), "40000004")
    assert saved.blocks[0]["accessory"]["action_id"] == "il2_unsave" and "Saved PMID 40000004" in saved.text
    assert library.saved_by(USER) == ["pmid:40000004"]
    assert "Removed PMID 40000004" in unsave_reply(context(), "40000004").text
    assert "is not on your reading list" in unsave_reply(context(), "40000004").text
    assert library.saved_by(USER) == []


# ---------------------------------------------------------------- status


@BOTH_BACKENDS
def test_status_reports_polls_counts_feedback_and_health(lab):
    library, settings, context = lab
    ok = library.start_run("poll", now="2024-06-01T10:00:00+00:00")
    library.finish_run(ok, status="ok", now="2024-06-01T10:01:00+00:00", new=3, posted=2)
    failed = library.start_run("poll", now="2024-06-01T11:00:00+00:00")
    library.finish_run(
        failed, status="error", error="NCBI esearch failed after 5 attempts (HTTP 503)", now="2024-06-01T11:00:30+00:00"
    )
    library.set_state("next_poll_at", "2024-06-01T12:30:00+00:00")
    library.set_state("lease_holder", "worker-1 (pid 42)")
    assert Lease(library, "worker-1 (pid 42)", clock=NOW.timestamp).acquire()  # the worker is running
    library.set_feedback("40000001", "U1", 1)
    with library.transaction():
        library.enqueue(key="k1", channel="C0LAB", kind="paper", papers=["40000001"], payload={}, state="sent")
        library.enqueue(key="k2", channel="C0LAB", kind="paper", papers=["40000002"], payload={}, state="due")
    facts = status_facts(library, settings, NOW)
    assert facts["papers"] == 29 and facts["cites"] == 2 and facts["consecutive_failures"] == 1
    assert facts["outbox"]["sent"] == 1 and facts["outbox"]["due"] == 1
    assert facts["feedback"] == {"relevant": 1, "not_relevant": 0}
    assert facts["ncbi"].startswith("failing") and facts["slack"].startswith("not configured (no SLACK_BOT_TOKEN)")
    assert json.loads(json.dumps(facts)) == facts
    text = format_status_text(facts)
    assert "Last poll: 2024-06-01 11:00 UTC (60 min ago): error" in text
    assert "Last successful poll: 2024-06-01 10:01 UTC" in text
    assert "Next poll: 2024-06-01 12:30 UTC (in 30 min)" in text
    assert "Worker: worker-1 (pid 42)" in text
    assert "Last error: 2024-06-01 11:00 UTC (60 min ago): NCBI esearch failed" in text
    reply = answer("status", context())
    assert "*Next poll:* 2024-06-01 12:30 UTC (in 30 min)" in blocks_text(reply)
    assert button_values(reply, "il2_share")


def test_status_times_are_shown_in_the_configured_time_zone(tmp_path):
    settings = load_settings({"IL2WATCH_TIMEZONE": "Europe/Berlin"}, cwd=tmp_path)
    with Library(tmp_path / "lib.db") as library:
        library.set_state("next_poll_at", "2024-06-01T12:30:00+00:00")
        library.set_state("lease_holder", "worker-1")
        assert Lease(library, "worker-1", clock=NOW.timestamp).acquire()
        text = format_status_text(status_facts(library, settings, NOW))
    assert "Next poll: 2024-06-01 14:30 CEST (in 30 min)" in text


def test_status_of_an_empty_library(tmp_path):
    settings = load_settings({}, cwd=tmp_path)
    with Library(tmp_path / "empty.db") as library:
        text = format_status_text(status_facts(library, settings, NOW))
    assert "Last poll: never" in text and "NCBI: unknown" in text


# ---------------------------------------------------------------- admin: poll and watches


@pytest.mark.parametrize("text", ["poll", "watch add 12345", "watch remove review", "backfill review 5"])
@BOTH_BACKENDS
def test_admin_commands_are_politely_refused_to_others(lab, text):
    library, _, context = lab
    reply = answer(text, context(user=USER))
    assert "only for il2watch's admins" in reply.text and "<@UADMIN01>" in reply.text
    assert reply.deferred is None
    assert library.slack_watches() == [] and library.outbox() == []


@pytest.mark.parametrize("text", ["watch", "watch list", "watches ls"])
@BOTH_BACKENDS
def test_anyone_may_list_the_watches(lab, text):
    _, _, context = lab
    reply = answer(text, context(user=USER))
    assert "*2 watches*" in reply.text and "`review`" in reply.text
    refused = answer("watch add 12345", context(user=USER))
    assert "`/lit watch add` is only for il2watch's admins" in refused.text
    assert "Anyone may `/lit watch list`" in refused.text


@BOTH_BACKENDS
def test_poll_now_runs_after_the_ack(lab):
    _, _, context = lab
    recorder = Recorder()
    reply = answer("poll", context(user=ADMIN))
    assert recorder.polls == 0 and "Polling PubMed now" in reply.text
    later = reply.deferred.run(recorder.tools())
    assert recorder.polls == 1 and "2 new papers" in later.text


@pytest.fixture
def pubmed_tools(ncbi_server, world):
    """The Tools il2watch builds, on the NCBI stand-in; PMIDs 31234567-9 are in its PubMed."""
    from slack_sdk import WebClient

    from il2watch.config import Settings
    from il2watch.slack_app import make_tools

    for pmid in ("31234567", "31234568", "31234569"):
        world.add(record(pmid, title=f"An IL-2 paper to watch, {pmid}"))
    settings = Settings(eutils_url=ncbi_server.base_url, ncbi_backoff=0.01, ncbi_attempts=2)
    return make_tools(settings, WebClient(token="xoxb-unused", base_url="http://127.0.0.1:9/"))


def run(text, ctx, tools):
    """What the admin sees in the end: the ack, or what follows it once PubMed has answered."""
    reply = answer(text, ctx)
    return reply.deferred.run(tools) if reply.deferred is not None else reply


@BOTH_BACKENDS
def test_watch_add_checks_pubmed_after_the_ack_then_stores_announces_and_baselines(lab, pubmed_tools):
    library, _, context = lab
    reply = answer("watch add PMID:31234567", context(user=ADMIN))
    assert reply.text == "Checking PMID 31234567 with PubMed…" and library.slack_watches() == []
    later = reply.deferred.run(pubmed_tools)
    assert "Now watching PMID 31234567 as `pmid-31234567`" in later.text
    assert library.slack_watches() == [Watch(id="pmid-31234567", pmid="31234567", source="slack")]
    assert library.watch_state(library.slack_watches()[0]).baseline_at == ""
    (row,) = library.outbox(kind="watch")
    assert row.channel == "C0LAB" and row.state == "due"
    assert row.payload == {
        "watch": {"id": "pmid-31234567", "pmid": "31234567", "query": "", "label": "", "channel": ""},
        "action": "added",
        "by": ADMIN,
    }
    announcement = render_watch_announcement(Watch(**row.payload["watch"]), row.payload["by"], "added")
    assert "<@UADMIN01> added a watch on PMID 31234567" in announcement.text


@pytest.mark.parametrize("spec", ["0", "-5", "3.5", "1e6", "PMID:0", "0000"])
@BOTH_BACKENDS
def test_watch_add_refuses_numbers_that_are_not_pmids_instead_of_watching_them_as_queries(lab, spec):
    library, _, context = lab
    reply = answer(f"watch add {spec}", context(user=ADMIN))
    assert reply.deferred is None
    assert f"`{spec}` is not a PMID: PMIDs are whole numbers from 1" in reply.text
    assert library.slack_watches() == [] and library.outbox() == []


@pytest.mark.parametrize(
    "spec",
    [
        "10.1038/s41577-022-00680-w",
        "PMC123",
        "PPR123",
        "ppr:PPR123",
        "W123",
        "https://openalex.org/W123",
        "epmc:PAT/EP1234567",
    ],
)
@BOTH_BACKENDS
def test_watch_add_refuses_a_paper_named_by_anything_but_its_pmid(lab, spec):
    """A PMCID, preprint, OpenAlex or Europe PMC id used to become a watch on the query “”: the reply was
    "Checking the query “” with PubMed…", then that PubMed did not answer."""
    library, _, context = lab
    reply = answer(f"watch add {spec}", context(user=ADMIN))
    assert reply.deferred is None
    assert reply.text == (
        f"A paper watch needs a PMID: find it with `/lit paper {spec}`, then `/lit watch add &lt;PMID&gt;`."
    )
    assert library.slack_watches() == [] and library.outbox() == []


@pytest.mark.parametrize("pmid", ["999999999", "99999999"])
@BOTH_BACKENDS
def test_watch_add_refuses_a_pmid_that_is_not_in_pubmed(lab, pubmed_tools, pmid):
    library, _, context = lab
    reply = run(f"watch add {pmid}", context(user=ADMIN), pubmed_tools)
    assert reply.text == f"PubMed has no paper with PMID {pmid}, so no watch was added. Check the number."
    assert library.slack_watches() == [] and library.outbox() == []


@pytest.mark.parametrize(
    "query, says",
    [
        ("interleukin AND lupsu", "PubMed does not know “lupsu” and searched without it"),
        ("interleukin[tiabx] AND lupus", "PubMed has no search field [tiabx] and searched without it"),
    ],
)
@BOTH_BACKENDS
def test_watch_add_refuses_a_query_pubmed_cannot_use_naming_the_word(lab, pubmed_tools, query, says):
    library, _, context = lab
    reply = run(f"watch add {query}", context(user=ADMIN), pubmed_tools)
    assert reply.text.startswith(f"PubMed cannot use the query “{query}” as written: {says}. No watch was added")
    assert library.slack_watches() == [] and library.outbox() == []


@BOTH_BACKENDS
def test_watch_add_says_when_pubmed_does_not_answer_and_adds_nothing(lab, pubmed_tools, ncbi_server):
    library, _, context = lab
    ncbi_server.inject(503, endpoint="esearch", times=2)
    reply = run("watch add interleukin AND lupus", context(user=ADMIN), pubmed_tools)
    assert reply.text.startswith("PubMed did not answer, so I could not check the query “interleukin AND lupus”: ")
    assert "NCBI esearch failed after 2 attempts (HTTP 503)" in reply.text and library.slack_watches() == []


@BOTH_BACKENDS
def test_watch_add_query_gets_a_slug_and_duplicates_are_refused(lab, pubmed_tools):
    library, _, context = lab
    added = run('watch add "IL-2"[tiab] AND lupus', context(user=ADMIN), pubmed_tools)
    assert "PubMed has " in added.text and " matches for it." in added.text
    (watch,) = library.slack_watches()
    assert watch.id == "il-2-tiab-and-lupus" and watch.query == '"IL-2"[tiab] AND lupus'
    assert (
        "Already watched, as `il-2-tiab-and-lupus`"
        in answer('watch add "IL-2"[tiab] AND lupus', context(user=ADMIN)).text
    )
    assert "Already watched, as `review`" in answer("watch add 35217787", context(user=ADMIN)).text
    run("watch add IL-2 [tiab] AND lupus!", context(user=ADMIN), pubmed_tools)  # same slug, another query
    ids = [w.id for w in library.slack_watches()]
    assert len(ids) == 2 and ids[1].startswith("il-2-tiab-and-lupus-") and len(ids[1]) <= 40
    listing = answer("watch list", context(user=ADMIN))
    assert "`review`" in listing.text and "`il-2-tiab-and-lupus`" in listing.text
    assert "from Slack" in listing.text and "configured" in listing.text


@BOTH_BACKENDS
def test_watch_remove_only_removes_slack_watches_and_announces_it(lab, pubmed_tools):
    library, _, context = lab
    run("watch add 31234567", context(user=ADMIN), pubmed_tools)
    assert "configured in il2watch.toml" in answer("watch remove review", context(user=ADMIN)).text
    assert "No watch has the id `nope`" in answer("watch remove nope", context(user=ADMIN)).text
    assert "Stopped watching `pmid-31234567`" in answer("watch remove pmid-31234567", context(user=ADMIN)).text
    assert library.slack_watches() == []
    assert [r.payload["action"] for r in library.outbox(kind="watch")] == ["added", "removed"]


@BOTH_BACKENDS
def test_a_watch_added_again_starts_with_a_new_baseline(lab, pubmed_tools):
    library, _, context = lab
    run("watch add 31234567", context(user=ADMIN), pubmed_tools)
    watch = library.slack_watches()[0]
    library.set_watch_progress(watch, horizon="2024-05-01", baseline_at="2024-04-01T00:00:00+00:00")
    answer("watch remove pmid-31234567", context(user=ADMIN))
    run("watch add 31234567", context(user=ADMIN), pubmed_tools)
    state = library.watch_state(watch)
    assert state.baseline_at == "" and state.horizon == "" and not state.removed


@pytest.mark.parametrize(
    "text, says",
    [
        ("watch add", "Watch what?"),
        ("watch add 10.1038/s41577-022-00680-w", "/lit paper 10.1038"),
        ("watch add ((( ))) !!!", "has no words"),
        ('watch add ""', "has no words"),
        ("watch add “ ”", "has no words"),
        ("watch add " + "IL2 " * 200, "must stay under"),
        ("watch frobnicate", "takes `list`"),
        ("watch remove", "Remove which watch?"),
    ],
)
@BOTH_BACKENDS
def test_watch_mistakes_get_hints(lab, text, says):
    library, _, context = lab
    assert says in answer(text, context(user=ADMIN)).text
    assert library.slack_watches() == []


def test_slugs_are_valid_watch_ids():
    assert slug("Low-dose IL-2 in SLE") == "low-dose-il-2-in-sle"
    assert slug("日本語").startswith("query-")
    assert re.fullmatch(r"[a-z0-9][a-z0-9_\-]{0,39}", slug("word " * 40))


# ---------------------------------------------------------------- backfill


def backfill_lab(lab, *, burst: str = "10"):
    """The lab library with the review's 25 papers recorded but not posted; some only weakly similar."""
    library, _, context = lab
    settings = load_settings(
        {"IL2WATCH_ADMINS": ADMIN, "IL2WATCH_CHANNEL": "C0LAB", "IL2WATCH_COMMAND": "/lit", "IL2WATCH_BURST": burst},
        cwd=None,
    )
    weak = [make_paper(str(43000000 + n), f"Unrelated paper {n}", day=f"2024-06-{n + 1:02d}") for n in range(3)]
    library.save_papers(weak)
    library.save_reasons([(p.pmid, Reason("review", "similar", 10, 90)) for p in weak], now=SEEN, run_id=None)
    library.save_reasons([(str(41000000 + n), Reason("review", "cites")) for n in range(25)], now=SEEN, run_id=None)

    def held_back_aware(paper, reasons):
        weakly = all(r.kind == "similar" for r in reasons)
        return Insight(summary="s", axis="other", relevance=5.0 if weakly else 60.0)

    def make(user=ADMIN):
        return Context(
            library=library,
            settings=settings,
            insight_for=held_back_aware,
            user_id=user,
            channel_id="C0LAB",
            watches=tuple(settings.watches),
            now=lambda: NOW,
        )

    return library, make


@BOTH_BACKENDS
def test_backfill_above_the_burst_size_is_one_digest_and_skips_held_back_papers(lab):
    library, context = backfill_lab(lab)
    recorder = Recorder()
    reply = answer("backfill review 15", context())
    assert "Backfilling up to 15 papers from `review`" in reply.text and recorder.polls == 0
    later = reply.deferred.run(recorder.tools())
    assert recorder.polls == 1 and "as one digest" in later.text and "3 held back as off-topic skipped" in later.text
    (row,) = library.outbox(kind="digest")
    held = {"pmid:43000000", "pmid:43000001", "pmid:43000002"}
    assert row.state == "due" and len(row.papers) == 15 and not set(row.papers) & held
    assert row.papers[0] == "pmid:40000001"  # newest first
    again = answer("backfill review 15", context()).deferred.run(recorder.tools())
    assert len(library.outbox(kind="digest")) == 1 + ("as one digest" in again.text)
    posted = {p for r in library.outbox() for p in r.papers}
    assert len(posted) == len([p for r in library.outbox() for p in r.papers])  # never a paper twice


@BOTH_BACKENDS
def test_backfill_within_the_burst_size_posts_each_paper(lab):
    library, context = backfill_lab(lab)
    later = answer("backfill review 3", context()).deferred.run(Recorder().tools())
    assert "backfilling 3 papers from review" in later.text.lower()
    assert [len(r.papers) for r in library.outbox(kind="paper")] == [1, 1, 1]


@pytest.mark.parametrize(
    "text, says",
    [
        ("backfill", "Backfill which watch?"),
        ("backfill nope", "No watch has the id `nope`"),
        ("backfill review 0", "from 1 to 200"),
        ("backfill review -1", "from 1 to 200"),
        ("backfill review 201", "from 1 to 200"),
        ("backfill review lots", "from 1 to 200"),
    ],
)
@BOTH_BACKENDS
def test_backfill_mistakes_get_hints(lab, text, says):
    library, context = backfill_lab(lab)
    reply = answer(text, context())
    assert says in reply.text and reply.deferred is None and library.outbox() == []


# ---------------------------------------------------------------- export


@BOTH_BACKENDS
def test_export_goes_to_the_person_who_asked_in_a_direct_message(lab):
    _, _, context = lab
    recorder = Recorder()
    reply = answer("export ris tag treg", context())
    assert reply.deferred is not None and not recorder.uploads
    later = reply.deferred.run(recorder.tools())
    ((channel, name, content, title),) = recorder.uploads
    assert recorder.dms == [USER] and channel == "DREADER1" and name == "il2watch-tag-treg-2024-06-01.ris"
    assert content.count("TY  - JOUR") == 2 and "AN  - 40000001" in content and "AN  - 40000002" in content
    assert "Sent you il2watch-tag-treg-2024-06-01.ris: 2 papers tagged treg" in later.text
    assert "`/lit export ris tag treg share`" in later.text


@BOTH_BACKENDS
def test_export_share_uploads_it_in_the_channel_for_everyone(lab):
    _, _, context = lab
    recorder = Recorder()
    later = answer("export ris tag treg share", context()).deferred.run(recorder.tools())
    ((channel, name, _, _),) = recorder.uploads
    assert recorder.dms == [] and channel == "C0LAB" and name == "il2watch-tag-treg-2024-06-01.ris"
    assert "here for everyone" in later.text
    searched = Recorder()
    answer("export search lupus share", context()).deferred.run(searched.tools())
    assert searched.uploads[0][0] == "C0LAB" and searched.uploads[0][2].count("@article{") == 1


@BOTH_BACKENDS
def test_export_without_direct_messages_says_how_to_share(lab):
    _, _, context = lab
    recorder = Recorder()
    tools = recorder.tools()
    without = Tools(tools.fetch_papers, tools.find_pmids, tools.poll, tools.upload, tools.check_query)
    later = answer("export ris tag treg", context()).deferred.run(without)
    assert "add `share`" in later.text and recorder.uploads == []


@pytest.mark.parametrize(
    "text, count, suffix",
    [
        ("export", 29, ".bib"),
        ("export csv", 29, ".csv"),
        ("export bibtex search lupus", 1, ".bib"),
        ("export lupus OR melanoma", 2, ".bib"),
        ("export csv recent 3", 3, ".csv"),
        ("export ris cites", 2, ".ris"),
    ],
)
@BOTH_BACKENDS
def test_export_filters(lab, text, count, suffix):
    _, _, context = lab
    recorder = Recorder()
    answer(text, context()).deferred.run(recorder.tools())
    ((_, name, content, _),) = recorder.uploads
    assert name.endswith(suffix)
    marker = {".bib": "@article{", ".ris": "TY  - ", ".csv": "https://pubmed"}[suffix]
    assert content.count(marker) == count


@BOTH_BACKENDS
def test_export_failures_are_explained(lab):
    _, _, context = lab
    assert "nothing to export" in answer("export search zebrafish", context()).text
    assert "is not a tag" in answer("export tag nonsense", context()).text
    later = answer("export share", context(channel="CNOTIN")).deferred.run(Recorder().tools())
    assert "not_in_channel" in later.text


# ---------------------------------------------------------------- sharing


@BOTH_BACKENDS
def test_share_reposts_the_same_answer_for_everyone(lab):
    _, _, context = lab
    private = answer("search lupus", context())
    text, offset = read_control_value(button_values(private, "il2_share")[0])
    shared = answer(text, context(), offset=offset, shared_by=USER)
    assert shared.response_type == "in_channel"
    assert "Shared by <@UREADER1>" in blocks_text(shared)
    assert not button_values(shared, "il2_share") and not button_values(shared, "il2_more")
    assert listed_pmids(shared) == listed_pmids(private)


def test_control_values_from_elsewhere_are_refused():
    for value in ("", "{}", "[1]", '{"c": 1, "o": 0}', '{"c": "x", "o": -1}', '{"c": "x", "o": true}', "nope"):
        assert read_control_value(value) is None


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "frobnicate",
        "serch lupus",
        "x" * 4000,
        "<!channel> <!here|here> <@U123|boss>",
        "<https://evil.example|click me>",
        'search "',
        "paper \u202e12345",
        "🧬🧪" * 30,
        "\u0000\u0007\ufeff",
        "paper \ud800",
        "search \udfff lone",
        "ÅNGSTRÖM ﬁ ǅ",
        "tag " + "<" * 500,
        "search &lt;b&gt;",
    ],
)
@BOTH_BACKENDS
def test_bad_input_gets_a_short_safe_reply(lab, text):
    _, _, context = lab
    reply = answer(text, context())
    assert reply.text and reply.blocks and not check_limits(reply.blocks)
    assert len(reply.text) <= 1000
    assert_nothing_leaks(reply)
    json.dumps(reply.blocks).encode("utf-8")  # no lone surrogates reach Slack


@BOTH_BACKENDS
def test_unknown_commands_suggest_the_closest(lab):
    _, _, context = lab
    assert "Did you mean `/lit search`?" in answer("serch lupus", context()).text
    assert "Commands:" in answer("frobnicate", context()).text


def test_slack_encoding_is_undone():
    assert (
        slack_to_plain("<@U1|ann> <#C1|lab> <!here> <https://x.org|x.org> &lt;b&gt; &amp;")
        == "@ann #lab @here x.org <b> &"
    )


_OUR_MARKUP = re.compile(r"<(?:https?://[^|>\s]+\|[^<>]*|@U[A-Z0-9]{2,20})>")


def assert_nothing_leaks(reply: Reply) -> None:
    """Every '<' in what we send opens a link or a mention il2watch wrote itself."""
    for text in [reply.text, *re.findall(r'"text": "((?:[^"\\]|\\.)*)"', json.dumps(reply.blocks))]:
        text = json.loads(f'"{text}"') if text is not reply.text else text
        rest = _OUR_MARKUP.sub("", text)
        assert "<" not in rest and ">" not in rest, text


words = st.sampled_from([c.name for c in COMMANDS] + ["", "paper", "watch add", "export ris", "tag", "search"])
noise = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=200)
slackish = st.sampled_from(
    [
        '"',
        "(",
        ")",
        "[tiab]",
        "AND",
        "OR",
        "<!channel>",
        "<@U1|x>",
        "<https://a.b|c>",
        "&amp;",
        "\u202e",
        "*",
        ":",
        "10.1000/x",
        "35217787",
        "7d",
        "\ud800",
    ]
)


@hsettings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=words, parts=st.lists(st.one_of(noise, slackish), max_size=6), admin=st.booleans())
def test_no_text_makes_the_parser_fail_or_leak(lab, head, parts, admin):
    library, _, context = lab
    text = (head + " " + " ".join(parts)).strip()
    try:
        reply = answer(text, context(user=ADMIN if admin else USER))
    except LibraryError as error:
        if OR_GROUP_BUG and "syntax error" in str(error):
            return  # the reported fts_query bug, tested above; nothing else may raise
        raise
    assert not check_limits(reply.blocks)
    assert reply.response_type == "ephemeral"
    assert_nothing_leaks(reply)
    json.dumps(reply.blocks).encode("utf-8")
    with library.transaction():  # undo what admin commands wrote, so examples stay independent
        library.db.execute("delete from watches where source = 'slack'")
        library.db.execute("delete from outbox")
