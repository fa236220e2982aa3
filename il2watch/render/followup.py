"""Follow-ups as Slack messages: the reply in the post's thread (or, when the post is gone, a post of its
own naming the paper), the banner the original post is updated with, the direct message to the people who
saved the paper, and the flag lists and exports show."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from il2watch.followups import KINDS, ORDER, Followup, key_pmid, short_source
from il2watch.identity import describe_key, parse_token
from il2watch.markup import escape_mrkdwn, squash, to_plain
from il2watch.model import Paper
from il2watch.render.blocks import (
    MAX_BLOCKS,
    MAX_FALLBACK_TEXT,
    MAX_SECTION_TEXT,
    SEPARATOR,
    Message,
    clip,
    context,
    link,
    metadata,
    pubmed_url,
    section,
)
from il2watch.render.paper import title_mrkdwn, title_text

FOLLOWUP_EVENT = "il2watch_followup"
FOLLOWUP_DM_EVENT = "il2watch_followup_dm"
BANNER_BLOCK = "il2_followup"  # the block_id of the banner an updated post carries at its top
RETRACTED_PREFIX = "RETRACTED: "  # how a paper post's notification text begins once it is retracted


def _order(followup: Followup) -> int:
    return ORDER.index(followup.kind) if followup.kind in ORDER else len(ORDER)


def label(followup: Followup) -> str:
    """Plain words: "Retracted", "Published in Cell Rep, 2027"."""
    kind = KINDS[followup.kind]
    if followup.kind == "published" and followup.source:
        return f"{kind.label} in {short_source(followup.source)}"
    return kind.label


def headline(followup: Followup) -> str:
    """Safe mrkdwn: "🚨 *Retracted*"."""
    return f"{KINDS[followup.kind].emoji} *{escape_mrkdwn(label(followup))}*"


def key_url(key: str) -> tuple[str, str]:
    """(where a reader opens the record a key names, what the link says): PubMed, else its DOI, else
    Europe PMC; ("", "") for a key that names none of them."""
    parsed = parse_token(key) or (("pmid", key_pmid(key)) if key_pmid(key) else None)
    if parsed is None:
        return "", ""
    kind, value = parsed
    if kind == "pmid":
        return pubmed_url(value), "PubMed"
    if kind == "doi":
        return f"https://doi.org/{value}", "DOI"
    if kind == "ppr":
        return f"https://europepmc.org/article/PPR/{value}", "Europe PMC"
    return "", ""


def _notice_link(followup: Followup) -> str:
    url, name = key_url(followup.notice)
    return link(url, name) if url else ""


def notice_line(followup: Followup) -> str:
    """Safe mrkdwn: where it was said, "Retraction notice in Cell Rep, 2027 · PubMed"."""
    kind = KINDS[followup.kind]
    if not followup.notice:
        return f"PubMed now lists this paper as {escape_mrkdwn(kind.label.lower())}"
    where = f" in {escape_mrkdwn(short_source(followup.source))}" if followup.source else ""
    noun = kind.noun[:1].upper() + kind.noun[1:]
    return SEPARATOR.join(part for part in (f"{noun}{clip(where, 200)}", _notice_link(followup)) if part)


def notice_text(followup: Followup) -> str:
    """Plain text for notifications: "Retraction notice in Cell Rep, 2027 https://pubmed.ncbi.nlm.nih.gov/…/"."""
    kind = KINDS[followup.kind]
    if not followup.notice:
        return f"PubMed now lists this paper as {kind.label.lower()}"
    where = f" in {short_source(followup.source)}" if followup.source else ""
    url, _ = key_url(followup.notice)
    return f"{kind.noun[:1].upper()}{kind.noun[1:]}{where}" + (f" {url}" if url else "")


def _paper_link(paper: Paper | None, followup: Followup) -> str:
    if paper is None:
        url, _ = key_url(followup.paper)
        name = escape_mrkdwn(describe_key(followup.paper))
        return link(url, name) if url else name
    return link(paper.url, title_mrkdwn(paper, 300)) if paper.url else title_mrkdwn(paper, 300)


def _plain_title(paper: Paper | None, followup: Followup) -> str:
    if paper is None:
        return escape_mrkdwn(describe_key(followup.paper))
    return title_text(paper, 200)


def _payload(followup: Followup, key: str, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "followup": followup.key,
        "paper": followup.paper,
        "pmid": key_pmid(followup.paper) or None,
        "kind": followup.kind,
        "notice": followup.notice,
        "source": followup.source,
        **extra,
    }


def render_followup(
    paper: Paper | None, followup: Followup, *, key: str, parent: str = "", standalone: bool = False
) -> Message:
    """The follow-up told in the thread of the post that carried the paper (``parent``), or, ``standalone``,
    posted on its own because that post was deleted or cannot be edited: either way it names the paper."""
    lines = [f"{headline(followup)}: {_paper_link(paper, followup)}", notice_line(followup)]
    blocks = [section("\n".join(lines))]
    if standalone:
        blocks.append(context("The post that carried this paper is gone or cannot be edited, so this stands alone."))
    text = f"{label(followup)}: {_plain_title(paper, followup)} — {escape_mrkdwn(notice_text(followup))}"
    payload = _payload(followup, key, parent=parent or None, standalone=standalone)
    return Message(text=clip(text, MAX_FALLBACK_TEXT), blocks=blocks, metadata=metadata(FOLLOWUP_EVENT, payload))


def render_followup_dm(paper: Paper | None, followup: Followup, *, key: str, command: str) -> Message:
    """The direct message to someone who saved the paper: what happened, and how to stop these messages."""
    kind = KINDS[followup.kind]
    said = f"You saved {_paper_link(paper, followup)}. {headline(followup)}: {notice_line(followup)}."
    stop = f"`{escape_mrkdwn(command)} notify off` stops these messages."
    text = f"{kind.label}: {_plain_title(paper, followup)} (on your il2watch reading list)"
    return Message(
        text=clip(text, MAX_FALLBACK_TEXT),
        blocks=[section(said), context(stop)],
        metadata=metadata(FOLLOWUP_DM_EVENT, _payload(followup, key)),
    )


def banner(told: Sequence[tuple[Followup, Paper | None]], *, numbers: Mapping[str, int] | None = None) -> str:
    """Safe mrkdwn for the top of an updated post: every follow-up of the papers it carries, loudest first.
    In a digest (``numbers``: each paper's place in it) each line says which entry it is about."""
    lines = []
    for followup, paper in sorted(told, key=lambda item: _order(item[0])):
        about = ""
        if numbers is not None:
            place = numbers.get(followup.paper)
            about = f": {'#' + str(place) + ' ' if place else ''}{_paper_link(paper, followup)}"
        lines.append(f"{headline(followup)}{about}{SEPARATOR}{notice_line(followup)}")
    return clip("\n".join(lines), MAX_SECTION_TEXT)


def followups_payload(told: Sequence[Followup]) -> list[dict[str, str]]:
    """The follow-ups an updated post carries in its metadata, so a rebuilt library knows them."""
    return [
        {"key": f.key, "paper": f.paper, "kind": f.kind, "notice": f.notice, "source": f.source[:300]} for f in told
    ]


def updated_post(original: Mapping[str, Any], banner_text: str, told: Sequence[Followup]) -> Message:
    """The message Slack holds (as ``conversations.replies`` gave it) with the banner at its top, in place of
    any earlier one, and the follow-ups in its metadata. Everything else is kept as it is: the buttons and
    their counts, the summary, the thread."""
    blocks = [b for b in copy.deepcopy(original.get("blocks") or []) if b.get("block_id") != BANNER_BLOCK]
    old_meta = original.get("metadata") or {}
    event_type = str(old_meta.get("event_type") or "il2watch_paper")
    payload = dict(old_meta.get("event_payload") or {})
    payload["followups"] = followups_payload(told)
    retracted = any(KINDS[f.kind].retracted for f in told)
    text = str(original.get("text") or "")
    if event_type == "il2watch_paper" and retracted:
        payload["retracted"] = True
        text = text if text.startswith(RETRACTED_PREFIX) else RETRACTED_PREFIX + text
    if blocks:
        top = {**section(banner_text), "block_id": BANNER_BLOCK}
        if len(blocks) >= MAX_BLOCKS:  # no room for one more block: the banner joins the first section
            first = next((b for b in blocks if b.get("type") == "section" and "text" in b), None)
            if first is not None:
                first["text"]["text"] = clip(banner_text + "\n" + str(first["text"].get("text", "")), MAX_SECTION_TEXT)
            blocks = blocks[:MAX_BLOCKS]
        else:
            blocks = [top, *blocks]
    else:  # a post Slack took only as plain text: the banner goes in its text
        plain = squash(to_plain(banner_text.replace("*", "")))
        text = text if text.startswith(plain) else f"{plain}\n{text}"
    return Message(text=clip(text, MAX_SECTION_TEXT), blocks=blocks, metadata=metadata(event_type, payload))


def flags(told: Sequence[Followup]) -> str:
    """Safe mrkdwn for lists: "🚨 Retracted · 📰 Published in Cell Rep, 2027", loudest first."""
    shown = dict.fromkeys(f"{KINDS[f.kind].emoji} {escape_mrkdwn(label(f))}" for f in sorted(told, key=_order))
    return SEPARATOR.join(shown)


def plain_note(told: Sequence[Followup]) -> str:
    """Plain text for an export's note: "Retracted (retraction notice PMID 37845510, Cell Rep. 2023 …)"."""
    notes = []
    for followup in sorted(told, key=_order):
        said = [f"{KINDS[followup.kind].noun} {describe_key(followup.notice)}" if followup.notice else ""]
        said.append(followup.source)
        detail = ", ".join(part for part in said if part)
        notes.append(label(followup) + (f" ({detail})" if detail else ""))
    return "; ".join(dict.fromkeys(notes))
