"""One paper as a Slack post: what it is, why it is here, what it says, where to read it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from il2watch.followups import followups_in, is_retracted, is_retraction_notice, key_pmid, notices_in
from il2watch.identity import KINDS as ID_KINDS
from il2watch.identity import LABELS as ID_LABELS
from il2watch.identity import parse_token, reader_url
from il2watch.intel.tags import trial_url
from il2watch.markup import escape_mrkdwn, squash, to_mrkdwn, to_plain
from il2watch.model import AXIS_LABELS, FLAG_LABELS, SOURCES, Author, Insight, Paper, Reason, Watch
from il2watch.render.blocks import (
    ELLIPSIS,
    MAX_FALLBACK_TEXT,
    SEPARATOR,
    Message,
    button,
    clip,
    context,
    link,
    metadata,
    pubmed_url,
    section,
)

PAPER_EVENT = "il2watch_paper"
DIGEST_EVENT = "il2watch_digest"

TITLE_LIMIT = 600  # PubMed titles rarely pass 300 characters; longer ones are hostile or broken
NAME_LIMIT = 120
JOURNAL_LIMIT = 200
LIST_SHOWN = 8  # molecules or trials named before "+N more"
REASONS_SHOWN = 4  # reasons named in the compact "why" line

_PMID = re.compile(r"\d{1,9}")


def title_mrkdwn(paper: Paper, limit: int = TITLE_LIMIT) -> str:
    return clip(squash(to_mrkdwn(paper.title)), limit) or "(untitled)"


def title_text(paper: Paper, limit: int = 300) -> str:
    """The title for notification text: plain, escaped, no italics."""
    return clip(escape_mrkdwn(squash(to_plain(paper.title))), limit) or "(untitled)"


def _first_and_last(names: Sequence[str]) -> str:
    names = [name for name in names if name]
    if len(names) > 2:
        return f"{names[0]} et al. {ELLIPSIS} {names[-1]}"
    return ", ".join(names)


def authors_line(authors: Sequence[Author]) -> str:
    """Plain text: 'Hernandez R', 'Hernandez R, Malek TR', or 'Hernandez R et al. … Malek TR' for more."""
    return _first_and_last([squash(author.name) for author in authors])


def citation_numbers(paper: Paper) -> str:
    """Plain text as citations print them: '22(10):614-628', '14:eabn4821', '22(10)', or ''."""
    volume, issue, pages = (clip(squash(value), 40) for value in (paper.volume, paper.issue, paper.pages))
    numbers = volume + (f"({issue})" if issue else "")
    if pages:
        numbers += f":{pages}" if numbers else f"p. {pages}"
    return numbers


def byline(paper: Paper) -> str:
    """Safe mrkdwn: authors · journal · date;volume(issue):pages."""
    authors = _first_and_last([clip(escape_mrkdwn(squash(a.name)), NAME_LIMIT) for a in paper.authors])
    journal = clip(escape_mrkdwn(squash(paper.journal_iso or paper.journal)), JOURNAL_LIMIT)
    if paper.is_book and not journal:
        journal = "Book chapter"
    if paper.is_preprint:
        journal = f"Preprint · {journal}" if journal else "Preprint"
    date = clip(escape_mrkdwn(squash(paper.pub_date)) or (str(paper.pub_year) if paper.pub_year else ""), 40)
    numbers = escape_mrkdwn(citation_numbers(paper))
    if numbers:
        date = f"{date};{numbers}" if date else numbers
    return SEPARATOR.join(part for part in (authors, journal, date) if part)


def _watch(watch_id: str, watches: Mapping[str, Watch]) -> Watch:
    return watches.get(watch_id) or Watch(id=watch_id)


def describe_reason(reason: Reason, watches: Mapping[str, Watch], *, full: bool = False) -> str:
    """Plain text: 'Cites the review · PubMed, iCite', 'Similar to the review (#4 of its similar articles)',
    'Matches query x'.

    PubMed's raw similarity score means nothing to a reader; it stays in the post's metadata.
    """
    watch = _watch(reason.watch, watches)
    name = watch.name
    if full and watch.pmid and name != f"PMID {watch.pmid}":
        name += f" (PMID {watch.pmid})"
    if full and watch.query and watch.query != watch.name:
        name += f" ({watch.query})"
    if reason.kind == "cites":
        listed = f" · {sources_text(reason.sources)}" if reason.sources else ""
        return f"Cites {name}{listed}"
    if reason.kind == "similar":
        if reason.rank is not None and reason.rank > 0:
            return f"Similar to {name} (#{reason.rank:,} of its similar articles)"
        return f"Similar to {name}"
    if reason.kind == "query":
        return f"Matches query {name}"
    return f"Found by {name} ({reason.kind})"


def _unique_reasons(reasons: Sequence[Reason], watches: Mapping[str, Watch], full: bool) -> list[str]:
    seen: dict[str, None] = {}
    for reason in reasons:
        seen.setdefault(describe_reason(reason, watches, full=full), None)
    return list(seen)


def why_line(reasons: Sequence[Reason], watches: Mapping[str, Watch]) -> str:
    """Safe mrkdwn: every reason, compactly, in one line."""
    described = _unique_reasons(reasons, watches, full=False)
    shown = [clip(escape_mrkdwn(text), 200) for text in described[:REASONS_SHOWN]]
    if len(described) > REASONS_SHOWN:
        shown.append(f"and {len(described) - REASONS_SHOWN} more")
    return SEPARATOR.join(shown)


def axis_label(axis: str) -> str:
    return AXIS_LABELS.get(axis) or clip(escape_mrkdwn(axis), 40)


def _trial_link(trial: str) -> str:
    text = clip(escape_mrkdwn(squash(trial)), 60)
    try:
        return link(trial_url(trial), text)
    except ValueError:  # not a registration il2watch can link to: shown as text
        return text


def _some(items: Sequence[str]) -> list[str]:
    shown = list(items[:LIST_SHOWN])
    if len(items) > LIST_SHOWN:
        shown.append(f"+{len(items) - LIST_SHOWN} more")
    return shown


def tags_line(insight: Insight) -> str:
    """Safe mrkdwn: axis, molecules, trials (as links), flags."""
    parts = [f"*{axis_label(insight.axis)}*"]
    if insight.molecules:
        parts.append(", ".join(_some([clip(escape_mrkdwn(m), 80) for m in insight.molecules])))
    if insight.trials:
        parts.append(" ".join(_some([_trial_link(t) for t in insight.trials])))
    flags = [FLAG_LABELS.get(flag) or clip(escape_mrkdwn(flag), 40) for flag in insight.flags]
    if flags:
        parts.append(", ".join(_some(flags)))
    return SEPARATOR.join(parts)


def _notice_pmids(paper: Paper, kind: str) -> list[str]:
    return [pmid.strip() for found, pmid in paper.corrections if found == kind and _PMID.fullmatch(pmid.strip())]


def retraction_banner(paper: Paper, insight: Insight) -> str:
    """Safe mrkdwn shouting about a retraction, or '' when there is none."""
    if is_retracted(paper):
        notices = [key_pmid(f.notice) for f in followups_in(paper) if f.about.retracted and key_pmid(f.notice)]
        text = "🚨 *RETRACTED* — this paper has been retracted."
        if notices:
            text += " " + link(pubmed_url(notices[0]), "Read the retraction notice")
        return text
    if is_retraction_notice(paper):
        retracted = [pmid for pmid, f in notices_in(paper) if "retract" in f.kind and _PMID.fullmatch(pmid.strip())]
        target = link(pubmed_url(retracted[0]), f"PMID {retracted[0]}") if retracted else "another paper"
        return f"🚨 *RETRACTION NOTICE* — this record retracts {target}."
    if "retraction" in insight.flags:
        return "🚨 *RETRACTION* — PubMed links this record to a retraction."
    if any(k == "ExpressionOfConcernIn" for k, _ in paper.corrections):
        return "⚠️ *Expression of concern* — the journal has raised concerns about this paper."
    return ""


def sources_text(sources: Sequence[str]) -> str:
    """Plain text: 'PubMed, iCite, Europe PMC'."""
    return ", ".join(SOURCES.get(source, source) for source in sources)


def links_line(paper: Paper) -> str:
    """Safe mrkdwn: PubMed, DOI, free full text in PMC, Europe PMC for a preprint, a patent or a thesis,
    OpenAlex for a work known by nothing else, errata. Every paper with an id has at least one link."""
    parts = [link(pubmed_url(paper.pmid), "PubMed")] if paper.pmid else []
    doi = paper.doi.strip()
    if doi:
        parts.append(link(reader_url("doi", doi), "DOI"))
    pmcid = paper.pmcid.strip()
    if pmcid:
        parts.append(link(reader_url("pmcid", pmcid), "Free full text (PMC)"))
    if not paper.pmid:
        for kind in ("ppr", "epmc"):
            if getattr(paper, kind).strip():
                parts.append(link(reader_url(kind, getattr(paper, kind)), ID_LABELS[kind]))
    if not parts and paper.openalex.strip():
        parts.append(link(reader_url("openalex", paper.openalex), ID_LABELS["openalex"]))
    for pmid in _notice_pmids(paper, "ErratumIn")[:3]:
        parts.append(link(pubmed_url(pmid), "Erratum"))
    return SEPARATOR.join(parts)


def reason_payload(reason: Reason) -> dict[str, Any]:
    payload: dict[str, Any] = {"watch": reason.watch, "kind": reason.kind}
    if reason.score is not None:
        payload["score"] = reason.score
    if reason.rank is not None:
        payload["rank"] = reason.rank
    return payload


def posted_notices(paper: Paper) -> list[dict[str, str]]:
    """The follow-ups the paper's record carries as it is posted ({kind, notice}): a library rebuilt from the
    channel knows them as old news, not as follow-ups to tell."""
    return [{"kind": followup.kind, "notice": followup.notice} for followup in followups_in(paper)]


def paper_payload(
    paper: Paper, reasons: Sequence[Reason], insight: Insight, *, watermark: dict | None, key: str
) -> dict[str, Any]:
    """What a paper post stands for, for il2watch's recovery and for other Slack workflows: every id the
    paper has (``pmid`` absent when it has none) and its identity as ``paper``."""
    return {
        "paper": paper.identity,
        **{kind: value for kind, value in paper.ids.pairs()},
        "reasons": [reason_payload(reason) for reason in reasons],
        "axis": insight.axis,
        "molecules": list(insight.molecules),
        "trials": list(insight.trials),
        "flags": list(insight.flags),
        "relevance": round(float(insight.relevance), 1),
        "retracted": is_retracted(paper),
        "notices": posted_notices(paper) or None,
        "key": key or None,
        "watermark": dict(watermark) if watermark is not None else None,
    }


def feedback_block(pmid: str, feedback: tuple[int, int], *, number: int | None = None) -> dict[str, Any]:
    """Relevant / Not relevant (with their counts) and Save for one paper. Action and block ids must
    differ within a message, so a digest numbers each entry's: "il2_relevant-3"."""
    relevant, not_relevant = feedback
    suffix = f"-{number}" if number is not None else ""
    return {
        "type": "actions",
        "block_id": f"il2_feedback{suffix}",
        "elements": [
            button(f"il2_relevant{suffix}", "👍 Relevant" + (f" ({relevant})" if relevant else ""), pmid),
            button(
                f"il2_not_relevant{suffix}", "👎 Not relevant" + (f" ({not_relevant})" if not_relevant else ""), pmid
            ),
            button(f"il2_save{suffix}", "🔖 Save", pmid),
        ],
    }


def _explanation(reasons: Sequence[Reason], insight: Insight, watches: Mapping[str, Watch]) -> list[dict]:
    score = f"*Relevance {insight.relevance:.0f}/100*"
    why = "\n".join(f"• {clip(escape_mrkdwn(line), 300)}" for line in insight.relevance_why)
    found = "\n".join(f"• {clip(escape_mrkdwn(t), 500)}" for t in _unique_reasons(reasons, watches, full=True))
    blocks = [section(score + (f"\n{why}" if why else ""))]
    if found:
        blocks.append(section(f"*Found by*\n{found}"))
    return blocks


def render_paper(
    paper: Paper,
    reasons: Sequence[Reason],
    insight: Insight,
    watches: Mapping[str, Watch],
    *,
    watermark: dict | None = None,
    key: str = "",
    feedback: tuple[int, int] = (0, 0),
    buttons: bool = True,
    explain: bool = False,
) -> Message:
    """A paper post for the channel, or with ``explain`` the answer to ``/il2 paper`` (no metadata)."""
    url = paper.url
    banner = retraction_banner(paper, insight)
    blocks: list[dict[str, Any]] = []
    if banner:
        blocks.append(section(banner))
    head = f"*{link(url, title_mrkdwn(paper))}*"
    by = byline(paper)
    blocks.append(section(head + (f"\n{by}" if by else "")))
    if not explain and reasons:
        blocks.append(context(f"🔎 {why_line(reasons, watches)}"))
    summary = squash(escape_mrkdwn(insight.summary))
    if summary:
        blocks.append(section(summary))
    blocks.append(context(tags_line(insight)))
    if explain:
        blocks += _explanation(reasons, insight, watches)
    blocks.append(context(links_line(paper)))
    if buttons:
        blocks.append(feedback_block(paper.identity, feedback))
    prefix = "RETRACTED: " if is_retracted(paper) else ""
    text = clip(f"{prefix}{title_text(paper)} {url}", MAX_FALLBACK_TEXT)
    meta = None
    if not explain:
        meta = metadata(PAPER_EVENT, paper_payload(paper, reasons, insight, watermark=watermark, key=key))
    return Message(text=text, blocks=blocks, metadata=meta)


def posted_tokens(event_type: str, payload: Mapping[str, Any]) -> list[str]:
    """The ids ("pmid:…", "doi:…") of the papers an il2watch message says it posted: a paper post's
    identity and every id it carries, a digest's papers. Posts made before identities (only ``pmid``, a
    digest's ``pmids``) are read too."""
    found: list[str] = []
    if event_type == PAPER_EVENT:
        raw = [str(payload.get("paper") or "")] + [f"{kind}:{payload[kind]}" for kind in ID_KINDS if payload.get(kind)]
    elif event_type == DIGEST_EVENT:
        raw = [str(p) for p in payload.get("papers") or []] + [f"pmid:{p}" for p in payload.get("pmids") or []]
    else:
        return found
    for token in raw:
        parsed = parse_token(token)
        if parsed is not None and f"{parsed[0]}:{parsed[1]}" not in found:
            found.append(f"{parsed[0]}:{parsed[1]}")
    return found
