"""Papers with almost nothing (no authors, no journal, no abstract, one id) render into messages Slack accepts
(issue 11, D11): no empty context, actions or section block, and a link to the paper by the id it has."""

from __future__ import annotations

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from il2watch import intel, render
from il2watch.identity import reader_url
from il2watch.model import Author, Paper, Reason, Section, Watch
from il2watch.render.blocks import Message
from tests.data import records as R
from tests.stand_ins.slack_api import block_kit_errors

LEXICON = intel.load_lexicon([])
WATCHES = {"review": Watch("review", pmid=R.REVIEW_PMID, label="the review")}
# One believable value per kind of id, as each source gives it.
IDS = {
    "pmid": "41990001",
    "doi": "10.5555/sparse.1",
    "pmcid": "PMC9900001",
    "ppr": "PPR900001",
    "epmc": "PAT/WO2024123456",
    "openalex": "W4390000001",
}


def empty_blocks(message: Message) -> list[dict]:
    """The blocks with nothing to show, which Slack refuses along with the whole message."""
    return [
        block
        for block in message.blocks
        if (block["type"] in ("context", "actions") and not block.get("elements"))
        or (block["type"] == "section" and not (block.get("text") or {}).get("text") and not block.get("fields"))
    ]


def assert_accepted(message: Message) -> None:
    assert empty_blocks(message) == [], message.blocks
    assert block_kit_errors(message.blocks) == [] and render.check_limits(message.blocks) == []
    assert message.text.strip()


sparse_papers = st.builds(
    lambda kinds, title, author, journal, abstract, pub_type: Paper(
        title=title,
        authors=(Author(author, "", ""),) if author else (),
        journal=journal,
        abstract=(Section(abstract),) if abstract else (),
        pub_types=(pub_type,) if pub_type else (),
        **{"pmid": "", **{kind: IDS[kind] for kind in kinds}},
    ),
    kinds=st.sets(st.sampled_from(sorted(IDS)), min_size=1, max_size=2),
    title=st.sampled_from(["", " ", "IL-2 muteins with reduced CD122 binding"]),
    author=st.sampled_from(["", "Doe"]),
    journal=st.sampled_from(["", "J Immunol"]),
    abstract=st.sampled_from(["", " ", "Low-dose IL-2 expands regulatory T cells."]),
    pub_type=st.sampled_from(["", "patent", "Preprint"]),
)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(paper=sparse_papers, cites=st.booleans())
def test_a_paper_with_almost_nothing_renders_into_messages_slack_accepts(paper, cites):
    reasons = [Reason("review", "cites")] if cites else []
    insight = intel.analyse(paper, reasons, lexicon=LEXICON)
    pages = [reader_url(kind, getattr(paper, kind)) for kind in IDS if getattr(paper, kind)]
    for explain in (False, True):
        for buttons in (False, True):
            message = render.render_paper(paper, reasons, insight, WATCHES, explain=explain, buttons=buttons)
            assert_accepted(message)
            links = [b for b in message.blocks if b["type"] == "context" and any(p in str(b) for p in pages)]
            assert links, f"a line links to the paper by one of {pages}"
    for reply in render.render_abstract_thread(paper):
        assert_accepted(reply)
    digest, thread = render.render_digest([(paper, reasons, insight)] * 7, WATCHES, title="Papers this week")
    for message in (digest, *thread):
        assert_accepted(message)
