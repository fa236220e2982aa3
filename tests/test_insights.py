"""What il2watch says about a paper is computed once, stored, and shown the same everywhere.

With the optional language-model summariser on (a chat-completions stand-in here), every render once
asked the model again: two or three calls per posted paper, and ``/il2 paper`` showing other words than
the post. Now the insight is stored with the paper and computed again only when the record, its reasons,
the votes or the lexicon change, and the summary only when the record does.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import pytest

from il2watch.commands import Context, answer
from il2watch.library import Library
from il2watch.service import all_watches, insight_maker, poll_once
from tests.data import records as R
from tests.stand_ins.pubmed_world import record
from tests.test_intel_llm import MODEL_SUMMARY, ChatServer

NEW = "46000200"


@pytest.fixture
def model():
    chat = ChatServer()
    chat.thread.start()
    yield chat
    chat.release.set()
    chat.httpd.shutdown()
    chat.httpd.server_close()


@pytest.fixture
def settings(make_settings, slack_server, model):
    return make_settings(
        slack_server,
        IL2WATCH_SUMMARISER_URL=model.base_url,
        IL2WATCH_SUMMARISER_MODEL="tiny-model",
        IL2WATCH_THREAD_ABSTRACT="false",
    )


def paper_reply(settings, pmid: str) -> str:
    """``/il2 paper PMID`` as the Slack app answers it (its insight_for reads what is stored)."""
    with Library(settings.db_path) as library:
        ctx = Context(
            library=library,
            settings=settings,
            insight_for=insight_maker(settings, library, summariser=False),
            watches=tuple(all_watches(settings, library)),
        )
        return json.dumps(answer(f"paper {pmid}", ctx).blocks)


def with_abstracts(settings) -> int:
    with Library(settings.db_path) as library:
        return library.db.execute("select count(*) from papers where abstract_text != ''").fetchone()[0]


def posted(slack_server, pmid):
    return next(
        m for m in slack_server.posts_with_metadata("il2watch_paper") if m.metadata["event_payload"]["pmid"] == pmid
    )


def test_each_paper_costs_one_model_call_and_every_view_shows_what_was_posted(settings, slack_server, world, model):
    poll_once(settings, out=lambda _: None)
    world.add(record(NEW, title="A CD25-biased IL-2 mutein in lupus", entry_date=date.today()))
    world.cite(NEW, R.REVIEW_PMID)
    poll_once(settings, out=lambda _: None)
    calls = len(model.requests)
    assert calls == with_abstracts(settings), "one model call per paper, none again to post it"
    assert MODEL_SUMMARY in json.dumps(posted(slack_server, NEW).blocks)

    model.content = "Other words the model would say if it were asked again."
    assert MODEL_SUMMARY in paper_reply(settings, NEW), "/il2 paper shows the summary the post showed"
    poll_once(settings, out=lambda _: None)
    assert len(model.requests) == calls

    with Library(settings.db_path) as library:
        library.set_feedback(NEW, "U0READER1", 1)
    reply = paper_reply(settings, NEW)
    assert "1 Relevant vote" in reply and MODEL_SUMMARY in reply, "the relevance follows the vote, the words stay"
    assert len(model.requests) == calls

    with Library(settings.db_path) as library:  # a follow-up: PubMed now links a retraction notice
        paper = library.paper(NEW)
        library.save_papers([dataclasses.replace(paper, corrections=(("RetractionIn", "46000299"),))])
        reasons = [s.reason for s in library.reasons_for(NEW)]
        insight = insight_maker(settings, library)(library.paper(NEW), reasons)
    assert "retraction" in insight.flags and insight.summary == model.content
    assert len(model.requests) == calls + 1
    reply = paper_reply(settings, NEW)
    assert model.content in reply and "RETRACTED" in reply


def test_the_stored_insight_is_the_whole_insight(settings, slack_server, world):
    poll_once(settings, out=lambda _: None)
    pmid = slack_server.posts_with_metadata("il2watch_paper")[0].metadata["event_payload"]["pmid"]
    with Library(settings.db_path) as library:
        stored = library.stored_insight(pmid)
        reasons = [s.reason for s in library.reasons_for(pmid)]
        computed = insight_maker(settings, library)(library.paper(pmid), reasons)
    assert stored is not None and stored.insight == computed
    assert stored.insight.summary == MODEL_SUMMARY and stored.summariser == "tiny-model"
    assert stored.insight.relevance_why and stored.insight.axis
