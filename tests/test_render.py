import json
import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from il2watch import intel
from il2watch.model import Author, Insight, Paper, Reason, Section, Watch
from il2watch.render import (
    Message,
    authors_line,
    check_limits,
    describe_reason,
    render_abstract_thread,
    render_baseline_note,
    render_digest,
    render_note,
    render_paper,
    render_terminal,
    render_watch_announcement,
)
from il2watch.render.blocks import clip, section, slack_len, split_text
from tests.stand_ins.slack_api import block_kit_errors

WATCHES = {
    "review": Watch(id="review", pmid="35217787", label="the review"),
    "engineered-il2": Watch(id="engineered-il2", query="interleukin-2[tiab] AND engineered[tiab]"),
}
CITES = Reason("review", "cites")
SIMILAR = Reason("review", "similar", score=31204118, rank=4)
QUERY = Reason("engineered-il2", "query")

HOSTILE = [
    "<!channel>",
    "<!here> <!everyone>",
    "<@U123> and <#C999>",
    "<https://evil.example|PubMed>",
    "&lt;!channel&gt; &amp;lt;@U1&amp;gt;",
    "R&D <b>bold</b> <script>x</script> <i>unclosed",
    "a\u202eevil\u202c \u2066isolated\u2069",
    "zero\u200bwidth\u200djoin 👩\u200d🔬 e\u0301\u0301\u0301",
    "中文标题 日本語 한국어 العربية",
    "🧬" * 40,
    "x" * 100_000,
    "&" * 5000,
    "<" * 3000,
]

OUR_LINK = re.compile(r"<(https://[^\s<>|]+)\|([^<>]+)>")
OUR_HOSTS = (
    "https://pubmed.ncbi.nlm.nih.gov/",
    "https://doi.org/",
    "https://www.ncbi.nlm.nih.gov/pmc/articles/",
    "https://clinicaltrials.gov/study/",
    "https://www.clinicaltrialsregister.eu/",
)
BARE_AMPERSAND = re.compile(r"&(?!amp;|lt;|gt;)")


def paper(**changes) -> Paper:
    fields = dict(
        pmid="36000001",
        title="Engineered IL-2 muteins expand CD4<sup>+</sup> Treg <i>in vivo</i> &amp; spare NK cells",
        abstract=(
            Section("IL-2 drives both Treg and effector cells.", "BACKGROUND", "BACKGROUND"),
            Section("A CD25-biased mutein expanded Treg &gt;3-fold.", "RESULTS", "RESULTS"),
        ),
        authors=(
            Author("Hernandez", "Rosmely", "R"),
            Author("Põder", "Janika", "J"),
            Author("Malek", "Thomas R", "TR"),
        ),
        journal="Nature reviews. Immunology",
        journal_iso="Nat Rev Immunol",
        pub_date="2022 Oct",
        pub_year=2022,
        doi="10.1038/s41577-022-00680-w",
        pmcid="PMC9876543",
        pub_types=("Journal Article",),
    )
    fields.update(changes)
    return Paper(**fields)


def insight(**changes) -> Insight:
    fields = dict(
        summary="A CD25-biased IL-2 mutein expanded regulatory T cells in lupus patients. Effector cells stayed flat.",
        axis="treg",
        is_il2=True,
        molecules=("efavaleukin alfa", "IL-2"),
        trials=("NCT01234567", "2015-001234-12"),
        flags=("clinical-trial",),
        relevance=81.26,
        relevance_why=("cites the review: +40", "Treg axis: +25"),
    )
    fields.update(changes)
    return Insight(**fields)


def mrkdwn_strings(message: Message) -> Iterator[str]:
    yield message.text

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                yield node["text"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    yield from walk(message.blocks)


def assert_no_nulls(node) -> None:
    assert node is not None
    if isinstance(node, dict):
        for value in node.values():
            assert_no_nulls(value)
    elif isinstance(node, list):
        for value in node:
            assert_no_nulls(value)


def assert_safe(message: Message, *, mentions: tuple[str, ...] = ()) -> None:
    """Within Block Kit's limits; the only raw <…> are il2watch's own links (or the given mentions)."""
    assert check_limits(message.blocks) == []
    for block in message.blocks:
        Block.parse(block).validate_json()  # slack_sdk's own checks, as a second opinion
    assert 0 < slack_len(message.text) <= 1000
    for text in mrkdwn_strings(message):
        for url, _label in OUR_LINK.findall(text):
            assert url.startswith(OUR_HOSTS), url
        rest = OUR_LINK.sub("", text)
        for mention in mentions:
            rest = rest.replace(mention, "")
        assert "<" not in rest and ">" not in rest, rest[:200]
        assert not BARE_AMPERSAND.search(text)
    json.dumps(message.as_kwargs())
    if message.metadata is not None:
        assert_no_nulls(message.metadata)


def block_texts(message: Message) -> list[str]:
    return [text for text in mrkdwn_strings(message)][1:]


# --- paper posts ---------------------------------------------------------------------------------


def test_paper_post_shows_title_link_byline_why_summary_tags_and_links():
    message = render_paper(paper(), [CITES, SIMILAR], insight(), WATCHES)
    texts = block_texts(message)
    assert texts[0] == (
        "*<https://pubmed.ncbi.nlm.nih.gov/36000001/|Engineered IL-2 muteins expand CD4⁺ Treg _in vivo_ &amp; "
        "spare NK cells>*\nHernandez R et al. … Malek TR · Nat Rev Immunol · 2022 Oct"
    )
    assert texts[1] == "🔎 Cites the review · Similar to the review (#4 of its similar articles)"
    assert texts[2].startswith("A CD25-biased IL-2 mutein expanded")
    assert texts[3] == (
        "*Treg-directed* · efavaleukin alfa, IL-2 · "
        "<https://clinicaltrials.gov/study/NCT01234567|NCT01234567> "
        "<https://www.clinicaltrialsregister.eu/ctr-search/search?query=2015-001234-12|2015-001234-12>"
        " · Clinical trial"
    )
    assert texts[4] == (
        "<https://pubmed.ncbi.nlm.nih.gov/36000001/|PubMed> · "
        "<https://doi.org/10.1038/s41577-022-00680-w|DOI> · "
        "<https://www.ncbi.nlm.nih.gov/pmc/articles/PMC9876543/|Free full text (PMC)>"
    )
    assert message.text == (
        "Engineered IL-2 muteins expand CD4⁺ Treg in vivo &amp; spare NK cells "
        "https://pubmed.ncbi.nlm.nih.gov/36000001/"
    )
    assert_safe(message)


def test_as_kwargs_is_ready_for_chat_post_message():
    message = render_paper(paper(), [CITES], insight(), WATCHES)
    kwargs = message.as_kwargs()
    assert kwargs["unfurl_links"] is False and kwargs["unfurl_media"] is False
    assert kwargs["text"] == message.text and kwargs["blocks"] == message.blocks
    assert kwargs["metadata"]["event_type"] == "il2watch_paper"
    assert "metadata" not in Message(text="x", blocks=[]).as_kwargs()


def test_paper_metadata_says_what_the_post_stands_for():
    watermark = {"ran_at": "2024-05-02T06:00:00Z", "horizon": "2024/05/01"}
    message = render_paper(paper(), [CITES, SIMILAR], insight(), WATCHES, watermark=watermark, key="review:36000001")
    assert message.metadata == {
        "event_type": "il2watch_paper",
        "event_payload": {
            "paper": "pmid:36000001",
            "pmid": "36000001",
            "doi": "10.1038/s41577-022-00680-w",
            "pmcid": "PMC9876543",
            "reasons": [
                {"watch": "review", "kind": "cites"},
                {"watch": "review", "kind": "similar", "score": 31204118, "rank": 4},
            ],
            "axis": "treg",
            "molecules": ["efavaleukin alfa", "IL-2"],
            "trials": ["NCT01234567", "2015-001234-12"],
            "flags": ["clinical-trial"],
            "relevance": 81.3,
            "retracted": False,
            "key": "review:36000001",
            "watermark": watermark,
        },
    }


def test_metadata_leaves_out_what_is_missing_rather_than_sending_nulls():
    payload = render_paper(paper(doi=""), [Reason("review", "similar")], insight(), WATCHES).metadata["event_payload"]
    assert "key" not in payload and "watermark" not in payload
    assert payload["reasons"] == [{"watch": "review", "kind": "similar"}]
    assert "doi" not in payload and payload["pmid"] == "36000001" and payload["paper"] == "pmid:36000001"


def test_reason_wording_uses_the_watch_name():
    assert describe_reason(CITES, WATCHES) == "Cites the review"
    assert describe_reason(SIMILAR, WATCHES) == "Similar to the review (#4 of its similar articles)"
    assert describe_reason(Reason("review", "similar", score=12), WATCHES) == "Similar to the review"
    assert describe_reason(QUERY, WATCHES) == "Matches query engineered-il2"
    unlabelled = {"w": Watch(id="w", pmid="123")}
    assert describe_reason(Reason("w", "cites"), unlabelled) == "Cites PMID 123"
    assert describe_reason(Reason("gone", "cites"), WATCHES) == "Cites gone"
    assert describe_reason(Reason("gone", "query"), {}) == "Matches query gone"


def test_full_reason_wording_names_what_the_watch_follows():
    assert describe_reason(CITES, WATCHES, full=True) == "Cites the review (PMID 35217787)"
    assert describe_reason(QUERY, WATCHES, full=True) == (
        "Matches query engineered-il2 (interleukin-2[tiab] AND engineered[tiab])"
    )


def test_several_reasons_share_one_line_without_repeats():
    reasons = [CITES, SIMILAR, QUERY, CITES, Reason("gone", "cites"), Reason("other", "cites")]
    why = block_texts(render_paper(paper(), reasons, insight(), WATCHES))[1]
    assert why == (
        "🔎 Cites the review · Similar to the review (#4 of its similar articles) · "
        "Matches query engineered-il2 · Cites gone · and 1 more"
    )


def test_paper_without_reasons_still_renders():
    message = render_paper(paper(), [], insight(), WATCHES)
    assert not any(t.startswith("🔎") for t in block_texts(message))
    assert_safe(message)


def test_links_line_leaves_out_doi_and_pmc_when_there_are_none():
    links = block_texts(render_paper(paper(doi="", pmcid=""), [CITES], insight(), WATCHES))[-1]
    assert links == "<https://pubmed.ncbi.nlm.nih.gov/36000001/|PubMed>"


def test_odd_dois_cannot_break_out_of_their_link():
    sici = "10.1002/(SICI)1097-4636(199603)31:3<323::AID-JBM6>3.0.CO;2-R|x&y"
    message = render_paper(paper(doi=sici), [CITES], insight(), WATCHES)
    links = block_texts(message)[-1]
    assert "<https://doi.org/10.1002/(SICI)1097-4636(199603)31:3%3C323::AID-JBM6%3E3.0.CO;2-R%7Cx%26y|DOI>" in links
    assert_safe(message)


def test_errata_are_linked():
    message = render_paper(paper(corrections=(("ErratumIn", "37000000"),)), [CITES], insight(), WATCHES)
    assert block_texts(message)[-1].endswith("<https://pubmed.ncbi.nlm.nih.gov/37000000/|Erratum>")


def test_a_retracted_paper_is_flagged_first_and_in_the_notification():
    retracted = paper(
        pub_types=("Journal Article", "Retracted Publication"), corrections=(("RetractionIn", "38000000"),)
    )
    message = render_paper(retracted, [CITES], insight(flags=("retraction",)), WATCHES)
    assert block_texts(message)[0] == (
        "🚨 *RETRACTED* — this paper has been retracted. "
        "<https://pubmed.ncbi.nlm.nih.gov/38000000/|Read the retraction notice>"
    )
    assert message.text.startswith("RETRACTED: Engineered IL-2")
    assert message.metadata["event_payload"]["retracted"] is True
    assert "RETRACTED" in render_terminal(message).splitlines()[0]


def test_retraction_notices_and_flags_are_flagged_too():
    notice = paper(pub_types=("Retraction of Publication",), corrections=(("RetractionOf", "30000000"),))
    first = block_texts(render_paper(notice, [], insight(), WATCHES))[0]
    assert first.startswith("🚨 *RETRACTION NOTICE*") and "|PMID 30000000>" in first
    flagged = block_texts(render_paper(paper(), [], insight(flags=("retraction",)), WATCHES))[0]
    assert flagged.startswith("🚨 *RETRACTION*")
    concern = paper(corrections=(("ExpressionOfConcernIn", "39000000"),))
    assert block_texts(render_paper(concern, [], insight(), WATCHES))[0].startswith("⚠️ *Expression of concern*")
    plain = block_texts(render_paper(paper(), [], insight(), WATCHES))[0]
    assert "🚨" not in plain


def test_feedback_buttons_carry_the_pmid_and_show_counts_when_there_are_some():
    message = render_paper(paper(), [CITES], insight(), WATCHES, feedback=(3, 0))
    actions = message.blocks[-1]
    assert actions["type"] == "actions"
    assert [(b["action_id"], b["text"]["text"], b["value"]) for b in actions["elements"]] == [
        ("il2_relevant", "👍 Relevant (3)", "pmid:36000001"),
        ("il2_not_relevant", "👎 Not relevant", "pmid:36000001"),
        ("il2_save", "🔖 Save", "pmid:36000001"),
    ]
    quiet = render_paper(paper(), [CITES], insight(), WATCHES, buttons=False)
    assert all(block["type"] != "actions" for block in quiet.blocks)


def test_explain_adds_the_score_and_the_reasons_in_full_without_metadata():
    message = render_paper(paper(), [CITES, QUERY], insight(), WATCHES, explain=True)
    texts = block_texts(message)
    assert "*Relevance 81/100*\n• cites the review: +40\n• Treg axis: +25" in texts
    assert (
        "*Found by*\n• Cites the review (PMID 35217787)\n"
        "• Matches query engineered-il2 (interleukin-2[tiab] AND engineered[tiab])"
    ) in texts
    assert message.metadata is None
    assert_safe(message)


def test_authors_line_names_first_and_last():
    assert authors_line([]) == ""
    assert authors_line([Author("Malek", "Thomas R", "TR")]) == "Malek TR"
    assert authors_line([Author("Hernandez", initials="R"), Author("Malek", initials="TR")]) == "Hernandez R, Malek TR"
    many = [Author("Hernandez", initials="R"), Author("Põder", initials="J"), Author("Malek", initials="TR")]
    assert authors_line(many) == "Hernandez R et al. … Malek TR"
    assert authors_line([Author("Smith", initials="J"), Author(collective="IL-2 Study Group")]) == (
        "Smith J, IL-2 Study Group"
    )


def test_byline_falls_back_to_full_journal_title_and_year():
    message = render_paper(paper(journal_iso="", pub_date="", authors=()), [], insight(), WATCHES)
    assert block_texts(message)[0].endswith("\nNature reviews. Immunology · 2022")


def test_byline_carries_volume_issue_and_pages_where_they_exist():
    full = render_paper(paper(volume="22", issue="10", pages="614-628"), [], insight(), WATCHES)
    assert block_texts(full)[0].endswith("\nHernandez R et al. … Malek TR · Nat Rev Immunol · 2022 Oct;22(10):614-628")
    electronic = render_paper(paper(volume="14", pages="eabn4821"), [], insight(), WATCHES)
    assert block_texts(electronic)[0].endswith(" · 2022 Oct;14:eabn4821")
    explained = render_paper(paper(volume="22", issue="10", pages="614-628"), [], insight(), WATCHES, explain=True)
    assert "2022 Oct;22(10):614-628" in block_texts(explained)[0]
    hostile = render_paper(paper(volume="<!channel>", issue="", pages=""), [], insight(), WATCHES)
    assert block_texts(hostile)[0].endswith("2022 Oct;&lt;!channel&gt;")


def test_similarity_is_shown_as_a_rank_and_the_raw_score_stays_in_metadata():
    message = render_paper(paper(), [SIMILAR], insight(), WATCHES)
    assert "31,204,118" not in json.dumps(message.blocks) and "31204118" not in message.text
    assert "#4 of its similar articles" in block_texts(message)[1]
    assert message.metadata["event_payload"]["reasons"] == [
        {"watch": "review", "kind": "similar", "score": 31204118, "rank": 4}
    ]


def test_unknown_axis_and_flags_are_shown_escaped():
    tags = block_texts(render_paper(paper(), [], insight(axis="<!here>", flags=("<@U1>",), trials=()), WATCHES))[2]
    assert tags == "*&lt;!here&gt;* · efavaleukin alfa, IL-2 · &lt;@U1&gt;"


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda s: repr(s[:20]))
def test_hostile_text_from_outside_pings_and_hides_nothing(hostile):
    evil = paper(
        title=hostile,
        abstract=(Section(hostile, hostile), Section(hostile)),
        authors=(Author(hostile, hostile, hostile), Author(collective=hostile), Author(hostile)),
        journal=hostile,
        journal_iso=hostile,
        pub_date=hostile,
        doi=hostile,
        pmcid=hostile,
        pub_types=(hostile,),
        corrections=(("RetractionIn", hostile),),
    )
    evil_insight = insight(
        summary=hostile,
        axis=hostile,
        molecules=(hostile,) * 12,
        trials=(hostile,),
        flags=(hostile,),
        relevance_why=(hostile,),
    )
    watches = {"w": Watch(id="w", pmid=hostile, query=hostile, label=hostile)}
    reasons = [Reason("w", "cites"), Reason("w", "similar", 5, 1), Reason(hostile, "query"), Reason("w", hostile)]
    messages = [
        render_paper(evil, reasons, evil_insight, watches, key=hostile, watermark={"h": hostile}),
        render_paper(evil, reasons, evil_insight, watches, explain=True),
        *render_abstract_thread(evil, key=hostile),
        render_note(hostile, payload={"x": hostile}),
        render_baseline_note(watches["w"], 10, 3, command="/il2", watermark={"h": hostile}, key=hostile),
        render_watch_announcement(watches["w"], hostile, "added", key=hostile),
    ]
    top, replies = render_digest([(evil, reasons, evil_insight)] * 12, watches, title=hostile)
    messages += [top, *replies]
    for message in messages:
        assert_safe(message)
        terminal = render_terminal(message)
        assert "&lt;" not in terminal or "&lt;" in hostile


def test_a_100kb_title_is_shortened_with_an_ellipsis():
    message = render_paper(paper(title="word " * 20_000), [CITES], insight(), WATCHES)
    head = block_texts(message)[0]
    assert "… >*" not in head and "…>*" in head
    assert slack_len(head) < 3000
    assert message.text.endswith("… https://pubmed.ncbi.nlm.nih.gov/36000001/")
    assert_safe(message)


def test_emoji_titles_are_measured_as_slack_counts_them():
    message = render_paper(paper(title="🧬" * 5000), [CITES], insight(), WATCHES)
    assert all(slack_len(text) <= 3000 for text in block_texts(message))
    assert_safe(message)


# --- abstract thread ------------------------------------------------------------------------------


def test_abstract_thread_bolds_section_labels():
    [reply] = render_abstract_thread(paper(), key="review:36000001")
    assert block_texts(reply) == [
        "*BACKGROUND:* IL-2 drives both Treg and effector cells.",
        "*RESULTS:* A CD25-biased mutein expanded Treg &gt;3-fold.",
    ]
    assert reply.metadata == {
        "event_type": "il2watch_abstract",
        "event_payload": {
            "paper": "pmid:36000001",
            "pmid": "36000001",
            "part": 1,
            "parts": 1,
            "key": "review:36000001",
        },
    }
    assert reply.text.startswith("Abstract: Engineered IL-2")


def test_a_long_abstract_is_split_without_losing_words():
    sentences = " ".join(f"Sentence {n} about IL-2 &amp; Treg cells." for n in range(250))
    long_paper = paper(abstract=(Section(sentences, "RESULTS"), Section(sentences[:4000], "CONCLUSIONS")))
    replies = render_abstract_thread(long_paper)
    assert len(replies) > 1
    for reply in replies:
        assert_safe(reply)
    assert [r.metadata["event_payload"]["part"] for r in replies] == list(range(1, len(replies) + 1))
    words = " ".join(" ".join(block_texts(r)) for r in replies).split()
    expected = f"*RESULTS:* {sentences} *CONCLUSIONS:* {sentences[:4000]}".split()
    assert words == expected


def test_a_100kb_abstract_is_cut_with_a_link_to_pubmed():
    huge = paper(abstract=(Section("IL-2 " * 20_000, "RESULTS"), Section("never shown", "CONCLUSIONS")))
    replies = render_abstract_thread(huge)
    for reply in replies:
        assert_safe(reply)
    texts = [text for reply in replies for text in block_texts(reply)]
    assert any(text.endswith("…") for text in texts)
    assert texts[-1] == "Abstract shortened. <https://pubmed.ncbi.nlm.nih.gov/36000001/|Read it in full on PubMed>"
    assert not any("never shown" in text for text in texts)
    assert sum(slack_len(text) for text in texts) < 16_000


def test_no_abstract_means_no_thread():
    assert render_abstract_thread(paper(abstract=())) == []
    assert render_abstract_thread(paper(abstract=(Section("  "),))) == []


# --- digest ---------------------------------------------------------------------------------------


def digest_items(n: int):
    return [
        (paper(pmid=str(40000000 + i), title=f"Paper {i}"), [CITES], insight(summary=f"Finding {i}. More."))
        for i in range(n)
    ]


def test_digest_top_message_keeps_order_and_sends_the_rest_to_the_thread():
    watermark = {"ran_at": "2024-05-06T06:00:00Z", "horizon": "2024/05/05"}
    top, replies = render_digest(digest_items(40), WATCHES, title="Weekly digest", watermark=watermark, key="d1")
    texts = [t for t in block_texts(top) if not t.startswith(("👍", "👎", "🔖"))]
    assert texts[0] == "*Weekly digest*\n40 papers"
    assert texts[1] == (
        "1. *<https://pubmed.ncbi.nlm.nih.gov/40000000/|Paper 0>*\n_Treg-directed_ · Cites the review\nFinding 0. More."
    )
    assert [t.split(".")[0] for t in texts[1:6]] == ["1", "2", "3", "4", "5"]
    assert texts[-1] == "and 35 more in the thread"
    assert top.metadata == {
        "event_type": "il2watch_digest",
        "event_payload": {
            "papers": [f"pmid:{40000000 + i}" for i in range(40)],
            "pmids": [str(40000000 + i) for i in range(40)],
            "key": "d1",
            "watermark": watermark,
        },
    }
    assert top.text == "Weekly digest: 40 papers"
    assert len(replies) == 3
    numbers = [int(t.split(".")[0]) for reply in replies for t in block_texts(reply) if t[0].isdigit()]
    assert numbers == list(range(6, 41))
    assert replies[0].metadata == {
        "event_type": "il2watch_digest_part",
        "event_payload": {
            "papers": [f"pmid:{40000000 + i}" for i in range(5, 20)],
            "pmids": [str(40000000 + i) for i in range(5, 20)],
            "key": "d1",
            "part": 1,
            "parts": 3,
        },
    }
    for message in (top, *replies):
        assert_safe(message)


def test_small_and_empty_digests():
    top, replies = render_digest(digest_items(2), WATCHES, title="Daily", top_n=5)
    assert replies == [] and not any("more in the thread" in t for t in block_texts(top))
    empty, none = render_digest([], WATCHES, title="Daily")
    assert block_texts(empty) == ["*Daily*\nNo new papers."] and none == []
    assert empty.metadata["event_payload"]["pmids"] == []


def test_digest_top_n_is_bounded_by_block_limits():
    top, replies = render_digest(digest_items(300), WATCHES, title="Backlog", top_n=500)
    assert len(top.blocks) <= 50
    on_top = sum(block["type"] == "actions" for block in top.blocks)
    assert sum(len(r.metadata["event_payload"]["pmids"]) for r in replies) + on_top == 300
    for message in (top, *replies):
        assert_safe(message)


def buttons_of(message: Message) -> list[tuple[str, str]]:
    return [
        (element["action_id"], element["value"])
        for block in message.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def test_every_digest_entry_has_the_whole_tldr_and_the_buttons_of_a_post():
    failed = "The primary endpoint was not met. Bempegaldesleukin with nivolumab did not improve survival."
    items = digest_items(20)
    items[0] = (items[0][0], items[0][1], insight(summary=failed))
    top, replies = render_digest(items, WATCHES, title="Digest", top_n=5, feedback={"pmid:40000001": (2, 1)})
    assert failed in block_texts(top)[1]  # the finding is in the second sentence: the line keeps it
    on_top = buttons_of(top)
    assert on_top[:3] == [
        ("il2_relevant-1", "pmid:40000000"),
        ("il2_not_relevant-1", "pmid:40000000"),
        ("il2_save-1", "pmid:40000000"),
    ]
    assert {key for _, key in on_top} == {f"pmid:{40000000 + i}" for i in range(5)}
    assert "👍 Relevant (2)" in json.dumps(top.blocks, ensure_ascii=False)
    in_thread = [pmid for reply in replies for _, pmid in buttons_of(reply)]
    assert sorted(set(in_thread)) == [f"pmid:{40000000 + i}" for i in range(5, 20)] and len(in_thread) == 45
    for message in (top, *replies):
        assert_safe(message)


# --- notes ----------------------------------------------------------------------------------------


def test_note_is_escaped_and_carries_its_metadata():
    note = render_note("NCBI said <!channel> & gave up", event_type="il2watch_alert", payload={"run": 7})
    assert block_texts(note) == ["NCBI said &lt;!channel&gt; &amp; gave up"]
    assert note.metadata == {"event_type": "il2watch_alert", "event_payload": {"run": 7}}
    assert render_note("ok").metadata == {"event_type": "il2watch_note", "event_payload": {}}
    recovered = render_note("Recovered", payload={"kind": "recovery"}, watermark={"ran_at": "t"}, key="k")
    assert recovered.metadata["event_payload"] == {"kind": "recovery", "key": "k", "watermark": {"ran_at": "t"}}


def test_baseline_note_wording():
    review = WATCHES["review"]
    watermark = {"ran_at": "2024-05-02T06:00:00Z", "horizon": "2024/05/01"}
    note = render_baseline_note(review, 412, 3, command="/lit", watermark=watermark, key="baseline:review")
    assert note.text == (
        "Started watching the review: 412 papers already cite it or are similar; posting the 3 most recent. "
        "Admins can post more with `/lit backfill review [N]`."
    )
    assert note.metadata == {
        "event_type": "il2watch_note",
        "event_payload": {
            "kind": "baseline",
            "watch": "review",
            "found": 412,
            "posted": 3,
            "key": "baseline:review",
            "watermark": watermark,
        },
    }
    query = WATCHES["engineered-il2"]
    assert render_baseline_note(query, 1, 1, command="/il2").text == (
        "Started watching engineered-il2: 1 paper already matches it; posting it."
    )
    assert render_baseline_note(review, 0, 0, command="/il2").text.endswith(
        "no papers cite it or are similar yet; new ones will be posted here."
    )
    assert "posting none of them now" in render_baseline_note(review, 5, 0, command="/il2").text


def test_watch_announcement_names_who_and_what():
    watch = Watch(id="il15", query="IL-15 superagonist", label="IL-15 agonists", channel="C0123ABC", source="slack")
    added = render_watch_announcement(watch, "U024BE7LH", "added", key="watch:il15:added")
    assert added.text == (
        "<@U024BE7LH> added a watch on query IL-15 agonists (IL-15 superagonist): "
        "new papers that match it will be posted in <#C0123ABC>."
    )
    assert added.metadata == {
        "event_type": "il2watch_watch",
        "event_payload": {
            "watch": {
                "id": "il15",
                "pmid": "",
                "query": "IL-15 superagonist",
                "label": "IL-15 agonists",
                "channel": "C0123ABC",
            },
            "action": "added",
            "by": "U024BE7LH",
            "key": "watch:il15:added",
        },
    }
    assert_safe(added, mentions=("<@U024BE7LH>", "<#C0123ABC>"))
    removed = render_watch_announcement(WATCHES["review"], "U024BE7LH", "removed")
    assert removed.text == "<@U024BE7LH> removed the watch on the review (PMID 35217787)."
    forged = render_watch_announcement(WATCHES["review"], "U1> <!channel", "removed")
    assert forged.text.startswith("U1&gt; &lt;!channel removed")
    assert_safe(forged)
    with pytest.raises(ValueError):
        render_watch_announcement(WATCHES["review"], "U024BE7LH", "renamed")


# --- terminal -------------------------------------------------------------------------------------


def test_terminal_rendering_is_readable_plain_text():
    retitled = paper(title="IL-2 &amp; IL-15: &lt;b&gt;not tags&lt;/b&gt; in <i>vivo</i>")
    out = render_terminal(render_paper(retitled, [CITES, SIMILAR], insight(), WATCHES))
    assert out.splitlines() == [
        "IL-2 & IL-15: <b>not tags</b> in vivo (https://pubmed.ncbi.nlm.nih.gov/36000001/)",
        "Hernandez R et al. … Malek TR · Nat Rev Immunol · 2022 Oct",
        "🔎 Cites the review · Similar to the review (#4 of its similar articles)",
        "A CD25-biased IL-2 mutein expanded regulatory T cells in lupus patients. Effector cells stayed flat.",
        "Treg-directed · efavaleukin alfa, IL-2 · NCT01234567 (https://clinicaltrials.gov/study/NCT01234567) "
        "2015-001234-12 (https://www.clinicaltrialsregister.eu/ctr-search/search?query=2015-001234-12) "
        "· Clinical trial",
        "PubMed (https://pubmed.ncbi.nlm.nih.gov/36000001/) · DOI (https://doi.org/10.1038/s41577-022-00680-w) "
        "· Free full text (PMC) (https://www.ncbi.nlm.nih.gov/pmc/articles/PMC9876543/)",
    ]


def test_terminal_keeps_underscores_in_urls_and_shows_notes():
    out = render_terminal(render_paper(paper(doi="10.1000/a_b_c"), [], insight(), WATCHES))
    assert "https://doi.org/10.1000/a_b_c" in out
    assert render_terminal(render_note("3 < 4 & done")) == "3 < 4 & done\n"
    assert render_terminal(Message(text="only &lt;text&gt;")) == "only <text>\n"


# --- building blocks -----------------------------------------------------------------------------


def test_clip_never_splits_an_escape_or_a_link():
    text = "see <https://pubmed.ncbi.nlm.nih.gov/1/|PubMed> &amp; &lt;tags&gt; " * 3
    for limit in range(1, len(text) + 2):
        clipped = clip(text, limit)
        assert slack_len(clipped) <= max(limit, 1)
        assert clipped == text or clipped.endswith("…")
        assert OUR_LINK.sub("", clipped).count("<") == 0
        assert not BARE_AMPERSAND.search(clipped)


def test_split_text_keeps_every_word_within_the_limit():
    text = " ".join(f"w{n}&amp;" for n in range(2000))
    pieces = split_text(text, 300)
    assert all(slack_len(piece) <= 300 for piece in pieces)
    assert " ".join(pieces).split() == text.split()
    assert split_text("x" * 1000, 300) == ["x" * 300] * 3 + ["x" * 100]


def test_check_limits_names_every_broken_limit():
    text = {"type": "mrkdwn", "text": "x"}
    blocks = [{"type": "section", "text": text}] * 51 + [
        {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}},
        {"type": "section", "text": {"type": "mrkdwn", "text": ""}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "y" * 2001}] + [text] * 10},
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
        {"type": "header", "text": text},
        {"type": "context", "elements": [text] * 11},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "a",
                    "text": {"type": "plain_text", "text": "b" * 76},
                    "value": "v" * 2001,
                },
                {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "ok"}, "value": "1"},
            ],
        },
    ]
    problems = check_limits(blocks)
    expected = [
        "58 blocks (limit 50)",
        "block 51 (section) text: text is 3001 characters (limit 3000)",
        "block 52 (section) text: empty text",
        "block 53 (section): 11 fields (limit 10)",
        "block 53 (section) field 0: text is 2001 characters (limit 2000)",
        "block 54 (header) text: text is 151 characters (limit 150)",
        "block 55 (header) text: text type 'mrkdwn' not allowed here",
        "block 56 (context): 11 elements (limit 10)",
        "block 57 (actions) button 0: text is 76 characters (limit 75)",
        "block 57 (actions) button 0: value longer than 2000",
        "action_id used twice: a",
    ]
    assert problems == expected
    assert check_limits([{"type": "section", "text": text}, {"type": "divider"}]) == []


# --- arbitrary text -------------------------------------------------------------------------------

outside_text = st.text(
    alphabet=st.one_of(st.sampled_from(list("<>&|!@#*_~`:;/ \n\t")), st.characters(codec="utf-8")),
    max_size=400,
)
marked_text = st.lists(
    st.one_of(outside_text, st.sampled_from(["<i>", "</i>", "<sup>", "</sub>", "&amp;", "&lt;!channel&gt;"])),
    max_size=8,
).map("".join)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=marked_text,
    sections=st.lists(st.tuples(marked_text, outside_text), max_size=4),
    names=st.lists(outside_text, max_size=5),
    journal=outside_text,
    summary=outside_text,
    label=outside_text,
    molecules=st.lists(outside_text, max_size=12),
    title_size=st.integers(min_value=1, max_value=40),
)
def test_any_text_renders_safely_within_limits(title, sections, names, journal, summary, label, molecules, title_size):
    arbitrary = paper(
        title=title * title_size,
        abstract=tuple(Section(text * title_size, lab) for text, lab in sections),
        authors=tuple(Author(name, name, name) for name in names),
        journal=journal,
        journal_iso=journal,
        pub_date=label,
        doi=label,
    )
    said = insight(summary=summary, molecules=tuple(molecules), relevance_why=(summary,))
    watches = {"w": Watch(id="w", query=label, label=label)}
    reasons = [Reason("w", "query"), Reason("w", "similar", 3, 2)]
    messages = [
        render_paper(arbitrary, reasons, said, watches),
        render_paper(arbitrary, reasons, said, watches, explain=True),
        *render_abstract_thread(arbitrary),
        render_note(summary or "x"),
        render_watch_announcement(watches["w"], label, "removed"),
    ]
    top, replies = render_digest([(arbitrary, reasons, said)] * 7, watches, title=label, top_n=3)
    for message in [*messages, top, *replies]:
        assert_safe(message)
        render_terminal(message)


# --- behaviours that must not break unnoticed ----------------------------------------------------


def test_a_paper_known_retracted_only_through_a_retraction_in_link_is_flagged_like_a_typed_one():
    linked = paper(corrections=(("RetractionIn", "38000000"),))  # PubMed links the notice, the type lags
    typed = paper(pub_types=("Journal Article", "Retracted Publication"))
    republished = paper(corrections=(("RetractedandRepublishedIn", "38000001"),))  # the follow-up check's kind too
    for retracted in (linked, typed, republished):
        found = intel.analyse(retracted, [CITES])
        assert "retraction" in found.flags
        message = render_paper(retracted, [CITES], found, WATCHES)
        assert block_texts(message)[0].startswith("🚨 *RETRACTED* — this paper has been retracted.")
        assert message.text.startswith("RETRACTED: ") and message.metadata["event_payload"]["retracted"] is True
        assert "retraction" in message.metadata["event_payload"]["flags"]
        top, _ = render_digest([(retracted, [CITES], found)], WATCHES, title="Digest")
        assert "🚨 *RETRACTED*" in block_texts(top)[1]
    notice = block_texts(render_paper(republished, [CITES], intel.analyse(republished, [CITES]), WATCHES))[0]
    assert notice.endswith("<https://pubmed.ncbi.nlm.nih.gov/38000001/|Read the retraction notice>")


def test_a_partial_retraction_is_told_but_the_paper_is_not_called_retracted():
    partial = paper(corrections=(("PartialRetractionIn", "38000002"),))
    message = render_paper(partial, [CITES], intel.analyse(partial, [CITES]), WATCHES)
    assert not message.text.startswith("RETRACTED") and message.metadata["event_payload"]["retracted"] is False


def test_a_preprint_server_record_without_the_preprint_type_is_a_preprint_everywhere():
    from il2watch.export import to_bibtex

    server = paper(journal="bioRxiv", journal_iso="bioRxiv", pub_types=("Journal Article",))
    assert "preprint" in intel.analyse(server, [CITES]).flags
    assert to_bibtex([server]).lstrip().startswith("@misc{"), "exported as a preprint, as the flag says"


def test_section_text_is_clipped_in_utf16_units_as_slack_counts_them():
    text = "𝐈𝐋-𝟐 " * 600  # 3,000 characters, 4,800 UTF-16 code units: the mathematical letters count twice
    clipped = section(text)["text"]["text"]
    assert clipped.endswith("…") and 2950 <= slack_len(clipped) <= 3000, "as much as fits, and no more"
    assert len(clipped) < 1900, "clipped by code units (8 for every 5 characters here), not by characters"
    assert block_kit_errors([section(text)]) == []
    over = {"type": "section", "text": {"type": "mrkdwn", "text": text[:2000]}}  # 2,000 characters, 3,200 units
    assert block_kit_errors([over]) != [], "the Slack stand-in counts as Slack does"
    summary_post = render_paper(paper(), [CITES], insight(summary="𝐀" * 2000), WATCHES)
    assert all(slack_len(t) <= 3000 for t in block_texts(summary_post)) and check_limits(summary_post.blocks) == []


def test_a_message_of_exactly_fifty_blocks_is_within_the_limit_and_fifty_one_is_not():
    fifty = [section(f"part {n}") for n in range(50)]
    assert check_limits(fifty) == [] and block_kit_errors(fifty) == []
    assert check_limits([*fifty, section("one more")]) == ["51 blocks (limit 50)"]
    assert block_kit_errors([*fifty, section("one more")]) != []
    top, replies = render_digest(digest_items(400), WATCHES, title="Backlog", top_n=500)
    assert all(len(message.blocks) <= 50 and check_limits(message.blocks) == [] for message in (top, *replies))
