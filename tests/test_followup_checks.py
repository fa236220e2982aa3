"""Follow-ups end to end: stand-in PubMed whose records gain notices between phases → ``il2watch followups``
(or a poll) → stand-in Slack. What the channel, the original posts and the savers' direct messages hold, and
what the library keeps, across repeated checks, a kill -9, a lost library and a deleted post."""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from slack_sdk import WebClient

from il2watch import followup_check
from il2watch.commands import Context, Reply, Tools, answer
from il2watch.commands.home import home_view
from il2watch.followups import EPOST_CHUNK
from il2watch.ids import batches
from il2watch.library import Library
from il2watch.render import check_limits
from il2watch.service import all_watches, check_followups, insight_maker, poll_once
from tests.conftest import BOTH_BACKENDS, lose_library
from tests.data import records as R
from tests.stand_ins.pubmed_world import Author, record
from tests.support import ncbi_client, settings_env, subprocess_env

REPO = Path(__file__).resolve().parent.parent
CHANNEL = "C0PAPERS1"
SAVER, SILENT = "U0SAVER01", "U0QUIET01"
TODAY = date.today()
NOTICE = "39990001"  # the retraction notice each test's paper gets
SLE = f"pmid:{R.LOW_DOSE_SLE_PMID}"  # the library's key of the paper most tests retract
POSTED_STATE = ("posted", "", False)  # the row that says what a paper's record carried when it was posted is known


def quiet(_: str) -> None:
    pass


def poll(settings):
    return poll_once(settings, out=quiet)


def check(settings, **options):
    return check_followups(settings, out=quiet, **options)


@pytest.fixture
def lab(make_settings, slack_server):
    """Every paper of the world posted on its own (baseline of 20, no digests)."""
    settings = make_settings(slack_server, IL2WATCH_BASELINE_POSTS="20", IL2WATCH_BURST="0")
    poll(settings)
    assert len(slack_server.posts_with_metadata("il2watch_paper", CHANNEL)) == 14
    return settings


def post_of(slack_server, pmid):
    (post,) = [
        m
        for m in slack_server.posts_with_metadata("il2watch_paper", CHANNEL)
        if m.metadata["event_payload"]["pmid"] == pmid
    ]
    return post


def followup_messages(slack_server, channel=CHANNEL):
    return slack_server.posts_with_metadata("il2watch_followup", channel)


def direct_messages(slack_server, user):
    try:
        return slack_server.posts_with_metadata("il2watch_followup_dm", "D" + user[1:])
    except KeyError:  # no conversation was ever opened with them
        return []


def save(settings, user, *pmids):
    with Library(settings.db_path) as library:
        for pmid in pmids:
            library.save_for(user, pmid)


def retract(world, pmid, notice=NOTICE, *, journal="J Immunol"):
    """PubMed gains a retraction notice for ``pmid`` and links the paper to it."""
    world.add(
        record(
            notice,
            title=f"Retraction notice to: {world.get(pmid).title}",
            journal_iso=journal,
            entry_date=TODAY,
            pub_types=["Retraction of Publication"],
            corrections=[("RetractionOf", pmid)],
            abstract=[],
        )
    )
    world.amend(pmid, corrections=[("RetractionIn", notice)], pub_types=["Retracted Publication"])


def notice_of(world, pmid, notice, ref_type, pub_type, title):
    """A notice of another kind (an erratum, an expression of concern) linked from ``pmid``."""
    back = {"ErratumIn": "ErratumFor", "ExpressionOfConcernIn": "ExpressionOfConcernFor"}[ref_type]
    world.add(
        record(notice, title=title, entry_date=TODAY, pub_types=[pub_type], corrections=[(back, pmid)], abstract=[])
    )
    world.amend(pmid, corrections=[(ref_type, notice)])


def outbox_states(settings):
    with Library(settings.db_path) as library:
        return {row.key: (row.kind, row.state) for row in library.outbox()}


def context(settings, library, user=SAVER):
    return Context(
        library=library,
        settings=settings,
        insight_for=insight_maker(settings, library, summariser=False),
        user_id=user,
        channel_id=CHANNEL,
        watches=tuple(all_watches(settings, library)),
    )


def ask(settings, text, user=SAVER) -> Reply:
    with Library(settings.db_path) as library:
        return answer(text, context(settings, library, user))


# ---------------------------------------------------------------- a retraction


@BOTH_BACKENDS
def test_a_retraction_is_broadcast_in_the_thread_marks_the_post_and_tells_savers_once(lab, world, slack_server):
    save(lab, SAVER, R.LOW_DOSE_SLE_PMID)
    save(lab, SILENT, R.LOW_DOSE_SLE_PMID)
    assert "Direct messages are *off*" in ask(lab, "notify off", user=SILENT).text
    original = copy.deepcopy(post_of(slack_server, R.LOW_DOSE_SLE_PMID).blocks)
    retract(world, R.LOW_DOSE_SLE_PMID)

    report = check(lab)

    assert report.status == "ok" and report.new == [f"retraction of PMID {R.LOW_DOSE_SLE_PMID}, notice PMID {NOTICE}"]
    post = post_of(slack_server, R.LOW_DOSE_SLE_PMID)
    (reply,) = followup_messages(slack_server)
    assert reply.thread_ts == post.ts and reply.reply_broadcast, "in the post's thread, and in the channel too"
    said = json.dumps(reply.blocks, ensure_ascii=False)
    assert "🚨 *Retracted*" in said and "Retraction notice in J Immunol, " in said
    assert f"https://pubmed.ncbi.nlm.nih.gov/{NOTICE}/|PubMed>" in said and check_limits(reply.blocks) == []
    assert reply.text.startswith("Retracted: Low-dose interleukin-2 in systemic lupus erythematosus")
    assert reply.metadata["event_payload"]["kind"] == "retraction"
    # the post itself now says so at its top, with its buttons and summary as they were
    assert post.edited_ts and post.blocks[0]["block_id"] == "il2_followup"
    assert "🚨 *Retracted*" in post.blocks[0]["text"]["text"] and post.blocks[1:] == original
    assert post.text.startswith("RETRACTED: ") and check_limits(post.blocks) == []
    payload = post.metadata["event_payload"]
    assert payload["retracted"] is True and payload["pmid"] == R.LOW_DOSE_SLE_PMID
    assert [(f["kind"], f["notice"]) for f in payload["followups"]] == [("retraction", f"pmid:{NOTICE}")]
    (dm,) = direct_messages(slack_server, SAVER)
    assert "You saved" in json.dumps(dm.blocks) and "`/il2 notify off` stops these messages" in json.dumps(dm.blocks)
    assert direct_messages(slack_server, SILENT) == [], "notify off: no direct message"
    assert "Follow-up check:" in ask(lab, "status").blocks[0]["text"]["text"]

    for _ in range(2):
        again = check(lab)
        assert again.status == "ok" and again.new == [] and again.delivery.posted == 0
    assert len(followup_messages(slack_server)) == 1 and len(direct_messages(slack_server, SAVER)) == 1
    assert len(slack_server.calls("chat.update")) == 1
    assert {state for _, state in outbox_states(lab).values()} == {"sent"}
    with Library(lab.db_path) as library:
        (told,) = library.followups([SLE], told=True)[SLE]
        assert (told.kind, told.notice, told.how) == ("retraction", f"pmid:{NOTICE}", "pubmed")
        assert "Retracted Publication" in library.paper(R.LOW_DOSE_SLE_PMID).pub_types, "the record kept is fresh"
        assert library.claimed("il2-papers", [NOTICE]) == {f"pmid:{NOTICE}"}, "the notice is never posted as a paper"


@BOTH_BACKENDS
def test_a_retracted_paper_is_flagged_wherever_il2watch_shows_it(lab, world, slack_server):
    save(lab, SAVER, R.LOW_DOSE_SLE_PMID)
    retract(world, R.LOW_DOSE_SLE_PMID)
    check(lab)

    shown = ask(lab, f"paper {R.LOW_DOSE_SLE_PMID}")
    assert "🚨 *Retracted*" in json.dumps(shown.blocks, ensure_ascii=False)
    for text in ("saved", "search lupus", "tag retraction"):
        listed = json.dumps(ask(lab, text).blocks, ensure_ascii=False)
        assert "🚨 Retracted" in listed and R.LOW_DOSE_SLE_PMID in listed, text
    tagged = json.dumps(ask(lab, "tag retraction").blocks)
    assert R.RETRACTED_PMID in tagged, "a paper PubMed marked retracted before it was posted is listed too"
    with Library(lab.db_path) as library:
        home = json.dumps(home_view(context(lab, library)), ensure_ascii=False)
    assert "🚨 Retracted" in home
    uploads = []
    tools = Tools(
        fetch_papers=lambda pmids: [],
        find_pmids=lambda term: [],
        poll=lambda: "",
        upload=lambda channel, name, content, title: uploads.append(content),
        check_query=lambda term: None,  # type: ignore[arg-type,return-value]
        open_dm=lambda user: "D" + user[1:],
    )
    for fmt in ("csv", "ris", "bibtex"):
        with Library(lab.db_path) as library:
            answer(f"export {fmt} saved", context(lab, library)).deferred.run(tools)
    (row,) = list(csv.DictReader(io.StringIO(uploads[0])))
    assert row["followups"].startswith(f"Retracted (retraction notice PMID {NOTICE}, J Immunol. ")
    assert f"N1  - Retracted (retraction notice PMID {NOTICE}" in uploads[1]
    assert f"note = {{Retracted (retraction notice PMID {NOTICE}" in uploads[2]


@BOTH_BACKENDS
def test_a_kill_right_after_slack_accepted_a_follow_up_doubles_nothing(
    lab, world, slack_server, tmp_path, ncbi_server, database
):
    """``il2watch followups`` is killed (SIGKILL) while Slack holds the broadcast reply it accepted, then
    while it holds the saver's direct message; the checks after it tell each thing once."""
    save(lab, SAVER, R.LOW_DOSE_SLE_PMID)
    retract(world, R.LOW_DOSE_SLE_PMID)
    ncbi_server.enforce_rate_limit = False  # two processes ask NCBI here, each pacing only itself
    env = subprocess_env(
        PYTHONPATH=str(REPO),
        **settings_env(
            tmp_path,
            ncbi_server,
            slack_server,
            database=database,
            IL2WATCH_BASELINE_POSTS="20",
            IL2WATCH_BURST="0",
            IL2WATCH_LOG_LEVEL="ERROR",
        ),
    )
    for stalled in (lambda p: bool(p.get("thread_ts")), lambda p: str(p.get("channel", "")).startswith("D")):
        slack_server.inject("stall", method="chat.postMessage", when=stalled)
        process = subprocess.Popen(
            [sys.executable, "-m", "il2watch", "followups"], cwd=REPO, env=env, stdout=subprocess.DEVNULL
        )
        assert slack_server.stalled.wait(30), "il2watch never posted"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        slack_server.release_stalled()
    for _ in range(2):
        report = check(lab)
        assert report.status == "ok" and report.delivery.still_due == 0
    assert len(followup_messages(slack_server)) == 1
    assert len(direct_messages(slack_server, SAVER)) == 1
    assert post_of(slack_server, R.LOW_DOSE_SLE_PMID).blocks[0]["block_id"] == "il2_followup"
    with Library(lab.db_path) as library:
        runs = [status for (status,) in library.db.execute("select status from runs where kind = 'followups'")]
    assert runs == ["interrupted", "interrupted", "ok", "ok"], "the killed checks are recorded as interrupted"
    assert {state for _, state in outbox_states(lab).values()} == {"sent"}


def test_a_direct_message_whose_answer_was_lost_is_not_sent_again_unseen(make_settings, slack_server, world):
    """Without im:history (an install from before follow-ups) a direct message whose outcome is unknown
    cannot be looked for: it is not sent again, and the check says what to do."""
    from tests.stand_ins.slack_api import DEFAULT_BOT_SCOPES

    slack_server.add_token("xoxb-old-install", scopes=[s for s in DEFAULT_BOT_SCOPES if s != "im:history"])
    settings = make_settings(
        slack_server, IL2WATCH_BASELINE_POSTS="20", IL2WATCH_BURST="0", SLACK_BOT_TOKEN="xoxb-old-install"
    )
    poll(settings)
    save(settings, SAVER, R.LOW_DOSE_SLE_PMID)
    retract(world, R.LOW_DOSE_SLE_PMID)
    slack_server.inject("accept_then_drop", method="chat.postMessage", when=lambda p: str(p["channel"]).startswith("D"))
    check(settings)
    report = check(settings)
    assert len(direct_messages(slack_server, SAVER)) == 1
    assert f"direct message to {SAVER} about PMID {R.LOW_DOSE_SLE_PMID}: needs the im:write and im:history" in (
        report.line()
    )
    assert [state for kind, state in outbox_states(settings).values() if kind == "followup_dm"] == ["failed"]


@BOTH_BACKENDS
@pytest.mark.parametrize(
    "link, back, pub_types, told, loud, retracted",
    [
        # NLM types a paper retracted in whole or in part "Retracted Publication": the link says which
        ("PartialRetractionIn", "PartialRetractionOf", ["Retracted Publication"], "🚨 *Partially retracted*", 1, 0),
        (
            "RetractedandRepublishedIn",
            "RetractedandRepublishedFrom",
            ["Retracted Publication"],
            "🚨 *Retracted and",
            1,
            1,
        ),
        ("CorrectedandRepublishedIn", "CorrectedandRepublishedFrom", [], "📝 *Corrected and republished*", 0, 0),
        ("UpdateIn", "UpdateOf", [], "🔄 *Updated version published*", 0, 0),
    ],
)
def test_every_other_kind_of_notice_on_a_journal_article_is_told_once_as_what_it_is(
    lab, world, slack_server, link, back, pub_types, told, loud, retracted
):
    save(lab, SAVER, R.LOW_DOSE_SLE_PMID)
    save(lab, SILENT, R.LOW_DOSE_SLE_PMID)
    notice = record(
        "39990009",
        title="Notice about low-dose interleukin-2 in lupus",
        entry_date=TODAY,
        pub_types=["Retraction of Publication" if "Partial" in link else "Journal Article"],
        corrections=[(back, R.LOW_DOSE_SLE_PMID)],
        abstract=[],
    )
    world.add(notice)
    world.amend(R.LOW_DOSE_SLE_PMID, corrections=[(link, notice.pmid)], pub_types=pub_types)

    report = check(lab)

    (followup,) = report.new
    assert followup.endswith(f"of PMID {R.LOW_DOSE_SLE_PMID}, notice PMID {notice.pmid}")
    post = post_of(slack_server, R.LOW_DOSE_SLE_PMID)
    (reply,) = followup_messages(slack_server)
    assert reply.thread_ts == post.ts and bool(reply.reply_broadcast) is bool(loud)
    assert told in json.dumps(reply.blocks, ensure_ascii=False)
    banner = post.blocks[0]["text"]["text"]
    assert post.blocks[0]["block_id"] == "il2_followup" and banner.count("\n") == 0 and banner.startswith(told)
    assert post.text.startswith("RETRACTED: ") is bool(retracted)
    assert bool(post.metadata["event_payload"].get("retracted")) is bool(retracted)
    for user in (SAVER, SILENT):
        assert len(direct_messages(slack_server, user)) == loud, "savers hear of a retraction of any kind, once"
    assert check(lab).new == [] and check(lab).new == []
    assert len(followup_messages(slack_server)) == 1 and len(slack_server.calls("chat.update")) == 1
    assert len(direct_messages(slack_server, SAVER)) == loud
    listed = json.dumps(ask(lab, "saved").blocks, ensure_ascii=False)
    assert re.search("🚨 Retracted(?! and)", listed) is None, "never called plainly retracted"


# ---------------------------------------------------------------- errata and expressions of concern


def test_an_erratum_is_told_in_the_thread_without_a_broadcast_or_a_direct_message(lab, world, slack_server):
    save(lab, SAVER, R.NOT_ALPHA_CANCER_PMID)
    notice_of(world, R.NOT_ALPHA_CANCER_PMID, "39990002", "ErratumIn", "Published Erratum", "Correction to a trial")
    report = check(lab)
    assert report.new == [f"erratum of PMID {R.NOT_ALPHA_CANCER_PMID}, notice PMID 39990002"]
    (reply,) = followup_messages(slack_server)
    post = post_of(slack_server, R.NOT_ALPHA_CANCER_PMID)
    assert reply.thread_ts == post.ts and not reply.reply_broadcast
    assert "📝 *Correction published*" in json.dumps(reply.blocks, ensure_ascii=False)
    assert "📝 *Correction published*" in post.blocks[0]["text"]["text"] and not post.text.startswith("RETRACTED")
    assert direct_messages(slack_server, SAVER) == []
    # the mutein paper was posted with its erratum already linked: old news, never told
    treg = post_of(slack_server, R.TREG_MUTEIN_PMID)
    assert treg.edited_ts is None and not [m for m in followup_messages(slack_server) if m.thread_ts == treg.ts]


@BOTH_BACKENDS
def test_an_expression_of_concern_then_a_retraction_are_each_told_once(lab, world, slack_server):
    save(lab, SAVER, R.MARKUP_PMID)
    notice_of(world, R.MARKUP_PMID, "39990003", "ExpressionOfConcernIn", "Expression of Concern", "Concern")
    check(lab)
    (concern,) = followup_messages(slack_server)
    assert not concern.reply_broadcast and "⚠️ *Expression of concern*" in json.dumps(concern.blocks, ensure_ascii=False)
    assert len(direct_messages(slack_server, SAVER)) == 1, "savers hear of an expression of concern"
    retract(world, R.MARKUP_PMID, "39990004", journal="Sci Transl Med")
    check(lab)
    check(lab)
    concern_reply, retraction = followup_messages(slack_server)
    assert retraction.reply_broadcast and "Sci Transl Med" in json.dumps(retraction.blocks)
    post = post_of(slack_server, R.MARKUP_PMID)
    banner = post.blocks[0]["text"]["text"]
    assert banner.index("Retracted") < banner.index("Expression of concern"), "loudest first"
    assert [f["kind"] for f in post.metadata["event_payload"]["followups"]] == ["concern", "retraction"]
    assert [b.get("block_id") for b in post.blocks].count("il2_followup") == 1
    assert len(direct_messages(slack_server, SAVER)) == 2


# ---------------------------------------------------------------- a preprint's journal version


@BOTH_BACKENDS
def test_a_journal_version_linked_to_a_posted_preprint_is_not_posted_and_the_preprint_says_published(
    lab, world, slack_server
):
    journal = record(
        "39990005",
        title="Nanobody-tethered IL-2 expands human regulatory T cells",
        journal="Cell reports",
        journal_iso="Cell Rep",
        entry_date=TODAY,
        corrections=[("UpdateOf", R.PREPRINT_PMID)],
    )
    world.add(journal)
    world.cite(journal.pmid, R.REVIEW_PMID)
    report = poll(lab)
    assert report.status == "ok" and "1 posted, 1 post(s) updated with a follow-up" in report.line()
    posted = [m.metadata["event_payload"]["pmid"] for m in slack_server.posts_with_metadata("il2watch_paper")]
    assert journal.pmid not in posted, "the journal version is not posted as a new paper"
    (reply,) = followup_messages(slack_server)
    preprint = post_of(slack_server, R.PREPRINT_PMID)
    assert reply.thread_ts == preprint.ts and not reply.reply_broadcast
    assert f"📰 *Published in Cell Rep, {TODAY.year}*" in json.dumps(reply.blocks, ensure_ascii=False)
    assert f"📰 *Published in Cell Rep, {TODAY.year}*" in preprint.blocks[0]["text"]["text"]
    # PubMed links the preprint to it later: the same follow-up, not told again
    world.amend(R.PREPRINT_PMID, corrections=[("UpdateIn", journal.pmid)])
    assert check(lab).new == []
    poll(lab)
    assert len(followup_messages(slack_server)) == 1
    assert journal.pmid not in [
        m.metadata["event_payload"]["pmid"] for m in slack_server.posts_with_metadata("il2watch_paper")
    ]


@BOTH_BACKENDS
def test_a_journal_version_with_the_same_title_and_authors_is_recognised_without_a_link(lab, world, slack_server):
    authors = [Author("Kowalczyk", "Paweł", "P"), Author("Andersen", "Mette", "M"), Author("Osei", "Kwame", "K")]
    preprint = record(
        "39990006",
        title="IL-2Rβ-selective agonists sustain CD8<sup>+</sup> T cell memory in mice",
        journal="bioRxiv : the preprint server for biology",
        journal_iso="bioRxiv",
        pub_types=["Preprint"],
        entry_date=TODAY - timedelta(days=400),
        authors=authors,
    )
    world.add(preprint)
    world.cite(preprint.pmid, R.REVIEW_PMID)
    world.add_query(R.ENGINEERED_IL2_QUERY, (*R.ENGINEERED_IL2_MATCHES, preprint.pmid))
    poll(lab)
    assert post_of(slack_server, preprint.pmid)
    journal = record(
        "39990007",
        title="IL-2R beta selective agonists sustain CD8+ T-cell memory in mice.",
        journal_iso="J Exp Med",
        entry_date=TODAY,
        authors=[authors[0], Author("Zhang", "Wei", "W"), authors[-1]],
    )
    stranger = record(
        "39990008",
        title="IL-2R beta selective agonists sustain CD8+ T-cell memory in mice.",
        journal_iso="Immunity",
        entry_date=TODAY,
        authors=[authors[0], Author("Zhang", "Wei", "W")],
    )
    for paper in (journal, stranger):
        world.add(paper)
        world.cite(paper.pmid, R.REVIEW_PMID)
    poll(lab)
    posted = [m.metadata["event_payload"]["pmid"] for m in slack_server.posts_with_metadata("il2watch_paper")]
    assert journal.pmid not in posted and stranger.pmid in posted, "another last author: another paper"
    (reply,) = followup_messages(slack_server)
    assert reply.thread_ts == post_of(slack_server, preprint.pmid).ts
    assert "📰 *Published in J Exp Med" in post_of(slack_server, preprint.pmid).blocks[0]["text"]["text"]


@BOTH_BACKENDS
def test_a_notice_a_query_watch_finds_is_told_as_its_papers_follow_up_and_not_posted(lab, world, slack_server):
    retract(world, R.LOW_DOSE_SLE_PMID)
    world.add_query(R.ENGINEERED_IL2_QUERY, (*R.ENGINEERED_IL2_MATCHES, NOTICE))
    poll(lab)
    posted = [m.metadata["event_payload"]["pmid"] for m in slack_server.posts_with_metadata("il2watch_paper")]
    assert NOTICE not in posted
    (reply,) = followup_messages(slack_server)
    assert reply.thread_ts == post_of(slack_server, R.LOW_DOSE_SLE_PMID).ts and reply.reply_broadcast
    assert check(lab).new == [], "the scheduled check finds the same retraction: not told again"
    assert len(followup_messages(slack_server)) == 1


# ---------------------------------------------------------------- digests, lost libraries, deleted posts


@BOTH_BACKENDS
def test_a_paper_in_a_digest_is_told_in_the_digests_thread_and_the_digest_says_which(
    make_settings, slack_server, world
):
    settings = make_settings(slack_server, IL2WATCH_BASELINE_POSTS="20", IL2WATCH_BURST="3")
    poll(settings)
    (digest,) = slack_server.posts_with_metadata("il2watch_digest", CHANNEL)
    order = digest.metadata["event_payload"]["pmids"]
    save(settings, SAVER, R.LOW_DOSE_SLE_PMID)
    retract(world, R.LOW_DOSE_SLE_PMID)
    check(settings)
    (reply,) = followup_messages(slack_server)
    assert reply.thread_ts == digest.ts and reply.reply_broadcast
    assert "Low-dose interleukin-2 in systemic lupus" in reply.text, "the reply names the paper"
    banner = digest.blocks[0]
    assert banner["block_id"] == "il2_followup"
    assert (
        f"#{order.index(R.LOW_DOSE_SLE_PMID) + 1} " in banner["text"]["text"] and "Retracted" in banner["text"]["text"]
    )
    assert [f["paper"] for f in digest.metadata["event_payload"]["followups"]] == [SLE]
    assert digest.metadata["event_payload"]["pmids"] == order and not digest.text.startswith("RETRACTED")
    assert len(direct_messages(slack_server, SAVER)) == 1
    check(settings)
    assert len(followup_messages(slack_server)) == 1 and len(slack_server.calls("chat.update")) == 1


@BOTH_BACKENDS
def test_a_library_lost_after_a_follow_up_is_rebuilt_and_reports_nothing_twice(lab, world, slack_server, database):
    retract(world, R.LOW_DOSE_SLE_PMID)
    check(lab)
    messages = len(slack_server.messages(CHANNEL))
    updates = len(slack_server.calls("chat.update"))
    lose_library(database)

    rebuilt = check(lab)  # a check on an empty library reads the channel back first

    assert rebuilt.status == "ok" and rebuilt.new == [] and rebuilt.checked == 14
    poll(lab)
    assert check(lab).new == []
    assert len(slack_server.messages(CHANNEL)) == messages, "nothing posted again: no reply, no paper"
    assert len(slack_server.calls("chat.update")) == updates
    with Library(lab.db_path) as library:
        known = library.followups([SLE, f"pmid:{R.TREG_MUTEIN_PMID}"])
    assert {(f.kind, f.notice, f.told) for f in known[SLE]} == {("retraction", f"pmid:{NOTICE}", True), POSTED_STATE}
    treg = {(f.kind, f.notice, f.told) for f in known[f"pmid:{R.TREG_MUTEIN_PMID}"]}
    assert treg == {("erratum", f"pmid:{R.ERRATUM_PMID}", False), POSTED_STATE}, "posted with it, as the post says"


@BOTH_BACKENDS
def test_after_a_lost_library_a_journal_version_with_the_same_title_and_authors_is_still_recognised(
    lab, world, slack_server, database, ncbi_server
):
    """The rebuild knows what was posted, not the records: the first check reads the posted papers' records
    back from PubMed (batched), so a preprint's journal version is still matched by title and authors."""
    authors = [Author("Kowalczyk", "Paweł", "P"), Author("Osei", "Kwame", "K")]
    preprint = record(
        "39990012",
        title="IL-2Rβ agonists and CD8 T cell memory",
        journal_iso="bioRxiv",
        pub_types=["Preprint"],
        entry_date=TODAY - timedelta(days=30),
        authors=authors,
    )
    world.add(preprint)
    world.cite(preprint.pmid, R.REVIEW_PMID)
    poll(lab)
    post = post_of(slack_server, preprint.pmid)
    lose_library(database)
    ncbi_server.clear_requests()
    assert check(lab).new == []
    by_id = [len(r.params["id"][0].split(",")) for r in ncbi_server.requests if "id" in r.params]
    assert by_id == [15, 15], "the check's EPost, then every posted paper's record in one EFetch"
    assert check(lab).requests == 3, "read back once: the next check costs what it always does (hits: 3)"
    journal = record(
        "39990013",
        title="IL-2R beta agonists and CD8 T-cell memory.",
        journal_iso="J Exp Med",
        entry_date=TODAY,
        authors=authors,
    )
    world.add(journal)
    world.cite(journal.pmid, R.REVIEW_PMID)
    poll(lab)
    posted = [m.metadata["event_payload"]["pmid"] for m in slack_server.posts_with_metadata("il2watch_paper")]
    assert journal.pmid not in posted, "the journal version is not posted as a new paper"
    (reply,) = followup_messages(slack_server)
    assert reply.thread_ts == post.ts and "📰 *Published in J Exp Med" in post.blocks[0]["text"]["text"]


@BOTH_BACKENDS
def test_a_deleted_post_gets_its_follow_up_on_its_own_naming_the_paper(lab, world, slack_server):
    save(lab, SAVER, R.LOW_DOSE_SLE_PMID)
    post = post_of(slack_server, R.LOW_DOSE_SLE_PMID)
    WebClient(token=slack_server.bot_token, base_url=slack_server.base_url).chat_delete(channel=CHANNEL, ts=post.ts)
    retract(world, R.LOW_DOSE_SLE_PMID)

    report = check(lab)

    (alone,) = followup_messages(slack_server)
    assert alone.thread_ts is None, "in the channel, not in a thread"
    assert "Low-dose interleukin-2 in systemic lupus erythematosus" in json.dumps(alone.blocks, ensure_ascii=False)
    assert alone.metadata["event_payload"]["standalone"] is True
    assert "posted in il2-papers on its own: the post that carried it was deleted" in report.line()
    assert len(direct_messages(slack_server, SAVER)) == 1
    states = outbox_states(lab)
    assert sorted(state for kind, state in states.values() if kind.startswith("followup")) == [
        "sent",
        "sent",
        "skipped",
    ]
    check(lab)
    assert len(followup_messages(slack_server)) == 1 and slack_server.calls("chat.update") == []


def test_a_post_slack_will_not_let_il2watch_edit_gets_the_follow_up_on_its_own_too(lab, world, slack_server):
    slack_server.inject("cant_update_message", method="chat.update")
    retract(world, R.LOW_DOSE_SLE_PMID)
    report = check(lab)
    in_thread, alone = followup_messages(slack_server)
    assert in_thread.thread_ts == post_of(slack_server, R.LOW_DOSE_SLE_PMID).ts and alone.thread_ts is None
    assert "cant_update_message" in report.line()
    status = ask(lab, "status")
    assert (
        "Slack would not let il2watch edit the post that carried it (cant_update_message)"
        in status.text + json.dumps(status.blocks)
    )


@BOTH_BACKENDS
def test_a_retraction_slipped_into_the_follow_up_efetch_under_a_pmid_not_asked_is_never_told(
    lab, world, slack_server, ncbi_server
):
    """A mirror adds to the follow-up EFetch (the hits of ``#1 AND (filters)``) a posted paper's record that
    ESearch did not find, forged to carry a RetractionIn: it was posted, so only the check that keeps the
    records ESearch named stands between it and a false retraction in the channel and the saver's DMs."""
    save(lab, SAVER, R.LOW_DOSE_SLE_PMID)
    first = check(lab)  # the world's own notices (the mutein's erratum, the retracted paper) are told here
    assert first.status == "ok"
    told_before = len(followup_messages(slack_server))
    held = world.get(R.LOW_DOSE_SLE_PMID)  # PubMed's own record stays as it is: no notice
    forged = dataclasses.replace(
        held,
        corrections=(*held.corrections, ("RetractionIn", NOTICE)),
        pub_types=(*held.pub_types, "Retracted Publication"),
    )
    ncbi_server.inject("stowaway", endpoint="efetch", record=forged)

    report = check(lab)

    assert ncbi_server.pending_faults == [], "the forged record was served in the follow-up EFetch"
    assert len(followup_messages(slack_server)) == told_before, "no retraction in the channel"
    assert direct_messages(slack_server, SAVER) == [], "no direct message to the saver"
    assert report.status == "ok" and report.new == []
    assert not slack_server.calls("chat.update"), "the post is not marked retracted"
    with Library(lab.db_path) as library:
        assert library.followups([SLE], told=True).get(SLE, []) == []
        assert "Retracted Publication" not in library.paper(R.LOW_DOSE_SLE_PMID).pub_types


# ---------------------------------------------------------------- what a check costs


def test_a_check_costs_at_most_three_requests_a_chunk_and_two_without_hits(lab, ncbi_server):
    """Chunks of five: the mutein paper (an erratum) is in the first, the retracted paper in the second, the
    third has no paper any follow-up reached."""
    with Library(lab.db_path) as library:
        posted = library.posted_papers()
        ncbi_server.clear_requests()
        checked = followup_check.fetch(
            followup_check.posted_tokens(library), ncbi_client(ncbi_server.base_url, ncbi_api_key="k"), chunk=5
        )
    assert len(posted) == 14 and checked.chunks == 3
    assert {paper.pmid for paper in checked.papers} == {R.RETRACTED_PMID, R.TREG_MUTEIN_PMID}
    assert posted.index(f"pmid:{R.TREG_MUTEIN_PMID}") < 5 <= posted.index(f"pmid:{R.RETRACTED_PMID}") < 10
    endpoints = [r.endpoint for r in ncbi_server.requests]
    assert endpoints == ["epost", "esearch", "efetch"] * 2 + ["epost", "esearch"]


@BOTH_BACKENDS
def test_ten_thousand_and_one_posted_papers_cost_two_chunks(lab, ncbi_server):
    """Two EPosts of at most 10,000 PMIDs each; hits only in the first; one EFetch."""
    with Library(lab.db_path) as library:
        with library.transaction():
            for part in batches([str(30_000_000 + n) for n in range(EPOST_CHUNK + 1 - 14)], 500):
                library.enqueue(
                    key=f"old-{part[0]}", channel=CHANNEL, kind="digest", papers=part, payload={}, state="sent"
                )
        ncbi_server.clear_requests()
        started = time.monotonic()
        checked = followup_check.fetch(
            followup_check.posted_tokens(library), ncbi_client(ncbi_server.base_url, ncbi_api_key="stand-in-key")
        )
        took = time.monotonic() - started
    assert checked.posted == EPOST_CHUNK + 1 and checked.chunks == 2
    posts = [r for r in ncbi_server.requests if r.endpoint == "epost"]
    assert [len(r.params["id"][0].split(",")) for r in posts] == [EPOST_CHUNK, 1]
    assert posts[0].method == "POST", "ten thousand PMIDs go in the body"
    assert [r.endpoint for r in ncbi_server.requests] == ["epost", "esearch", "efetch", "epost", "esearch"]
    assert took < 30


# ---------------------------------------------------------------- the command line, the worker, the setting


def test_il2watch_followups_says_what_it_did_in_one_line_and_fails_in_one(
    lab, world, slack_server, tmp_path, ncbi_server
):
    retract(world, R.LOW_DOSE_SLE_PMID)
    env = subprocess_env(
        **settings_env(tmp_path, ncbi_server, slack_server, IL2WATCH_BASELINE_POSTS="20", IL2WATCH_BURST="0")
    )
    done = subprocess.run(
        [sys.executable, "-m", "il2watch", "followups"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("follow-ups ok: 14 posted paper(s) checked, 3 with a follow-up in PubMed, 1 new")
    assert last.endswith("3 NCBI request(s)") and len(followup_messages(slack_server)) == 1
    env["IL2WATCH_EUTILS_URL"], env["IL2WATCH_NCBI_ATTEMPTS"] = "http://127.0.0.1:9/", "1"
    failed = subprocess.run(
        [sys.executable, "-m", "il2watch", "followups"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert failed.returncode == 1 and failed.stderr.count("\n") == 1
    assert failed.stderr.startswith("il2watch: follow-up check failed: NCBI cannot be reached")


def test_the_worker_checks_on_its_schedule_under_the_lease(make_settings, slack_server, world):
    from il2watch.worker import Worker

    settings = make_settings(
        slack_server,
        IL2WATCH_BASELINE_POSTS="20",
        IL2WATCH_BURST="0",
        IL2WATCH_SCHEDULE="1h",
        IL2WATCH_FOLLOWUP_SCHEDULE="1s",
    )
    poll(settings)
    retract(world, R.LOW_DOSE_SLE_PMID)
    worker = Worker(settings)
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while not followup_messages(slack_server) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.stop()
    assert len(followup_messages(slack_server)) == 1
    with Library(settings.db_path) as library:
        holders = {h for (h,) in library.db.execute("select holder from runs where kind = 'followups'")}
    assert holders == {worker.holder}
    off = Worker(make_settings(slack_server, IL2WATCH_FOLLOWUP_SCHEDULE="off"))
    off.scheduler.start(paused=True)
    try:
        assert off.scheduler.get_job("followups") is None
    finally:
        off.scheduler.shutdown(wait=False)


@pytest.mark.parametrize(
    "value, expected", [("off", "off"), ("OFF", "off"), ("12h", "12h"), ("0 3 * * *", "0 3 * * *")]
)
def test_the_follow_up_schedule_takes_the_polls_forms_and_off(make_settings, value, expected):
    assert make_settings(IL2WATCH_FOLLOWUP_SCHEDULE=value).followup_schedule == expected


def test_a_follow_up_schedule_that_is_neither_is_one_line_naming_it(tmp_path):
    from il2watch.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as error:
        load_settings({"IL2WATCH_FOLLOWUP_SCHEDULE": "daily"}, tmp_path)
    assert str(error.value).startswith("IL2WATCH_FOLLOWUP_SCHEDULE must be an interval (90s, 15m, 1h, 1d) or a")


def test_a_worker_holding_the_lease_keeps_il2watch_followups_out(lab, tmp_path, ncbi_server, slack_server):
    from il2watch.lease import Lease

    with Library(lab.db_path) as library:
        assert Lease(library, f"{os.uname().nodename}:{os.getpid()}:worker", ttl=60).acquire()
    env = subprocess_env(**settings_env(tmp_path, ncbi_server, slack_server))
    done = subprocess.run(
        [sys.executable, "-m", "il2watch", "followups"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3 and "holds the lease" in done.stderr and done.stderr.count("\n") == 1


# ---------------------------------------------------------------- the messages themselves


def test_follow_up_messages_stay_escaped_and_inside_block_kits_limits():
    from il2watch.followups import Followup
    from il2watch.model import Paper
    from il2watch.render.followup import banner, render_followup, render_followup_dm, updated_post

    hostile = Paper(pmid="39990010", title="<!channel> IL-2 & <https://evil.example|PubMed> " + "x" * 3000)
    followup = Followup(hostile.pmid, "retraction", "39990011", "<@U0HUMAN01> Cell Rep. 2027;1:2 " + "y" * 500)
    messages = [
        render_followup(hostile, followup, key="k", parent="p"),
        render_followup(hostile, followup, key="k", standalone=True),
        render_followup_dm(hostile, followup, key="k", command="/il2"),
        updated_post(
            {"text": "t", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}] * 50},
            banner([(followup, hostile)] * 30, numbers={hostile.pmid: 3}),
            [followup],
        ),
    ]
    for message in messages:
        everything = message.text + json.dumps(message.blocks)
        assert "<!channel>" not in everything and "<@U0HUMAN01>" not in everything
        assert "<https://evil.example" not in everything
        assert check_limits(message.blocks) == [] and len(message.text) <= 3000


def test_without_a_slack_token_a_check_shows_what_it_would_tell_and_marks_nothing(lab, world, slack_server):
    from dataclasses import replace

    retract(world, R.LOW_DOSE_SLE_PMID)
    shown: list[str] = []
    report = check_followups(replace(lab, slack_bot_token=""), out=shown.append)
    assert report.printed == 1 and "shown here (no SLACK_BOT_TOKEN" in report.line()
    assert any(text.startswith("🚨 Retracted: Low-dose interleukin-2") for text in shown), shown
    assert followup_messages(slack_server) == [] and slack_server.calls("chat.update") == []
    assert check(lab).delivery.posted == 1, "a token later: told then, once"
