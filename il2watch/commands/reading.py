"""The commands that read the library: paper, search, recent, cites, tag, saved."""

from __future__ import annotations

from dataclasses import dataclass, replace

from il2watch.commands.buttons import unsave_button
from il2watch.commands.parsing import PaperRef, parse_count, parse_paper_ref, parse_window, split_command
from il2watch.commands.reply import (
    PAGE,
    Context,
    Deferred,
    Reply,
    Tools,
    echo,
    listing,
    page_of,
    paper_list,
    say,
)
from il2watch.followup_check import shown as shown_followups
from il2watch.followups import KINDS
from il2watch.identity import describe_key
from il2watch.intel.synonyms import Synonyms, synonyms_for
from il2watch.library import SEARCH_WINDOW, Library, fts_query
from il2watch.markup import counted, escape_mrkdwn
from il2watch.model import AXES, Paper, review_watch
from il2watch.pubmed import PubMedError
from il2watch.render import render_paper
from il2watch.render.blocks import context, section
from il2watch.render.followup import banner
from il2watch.render.paper import sources_text
from il2watch.transport import TransportError

MAX_SEARCH = 300  # characters of search words
RETRACTED_KINDS = tuple(name for name, kind in KINDS.items() if kind.retracted)

AXIS_TAGS = {
    "treg": "treg",
    "tregs": "treg",
    "autoimmunity": "treg",
    "autoimmune": "treg",
    "treg/autoimmunity": "treg",
    "effector": "effector",
    "cancer": "effector",
    "oncology": "effector",
    "tumour": "effector",
    "tumor": "effector",
    "effector/cancer": "effector",
    "both": "both",
    "both-axes": "both",
    "treg-and-effector": "both",
    "biology": "biology",
    "il-2-biology": "biology",
    "neighbour": "neighbour",
    "neighbor": "neighbour",
    "other": "other",
}
FLAG_TAGS = {
    "trial": "clinical-trial",
    "trials": "clinical-trial",
    "clinical-trial": "clinical-trial",
    "clinical-trials": "clinical-trial",
    "review": "review",
    "reviews": "review",
    "preprint": "preprint",
    "preprints": "preprint",
    "retraction": "retraction",
    "retractions": "retraction",
    "retracted": "retraction",
    "erratum": "erratum",
    "errata": "erratum",
}
TAG_NAMES = (
    "treg (autoimmunity)",
    "effector (cancer)",
    "both",
    "biology",
    "neighbour",
    "trial",
    "review",
    "preprint",
    "retraction",
    "erratum",
)


# ---------------------------------------------------------------- paper


def paper_reply(ctx: Context, paper: Paper, *, looked_up: bool = False) -> Reply:
    """A paper as il2watch would post it, with the full story of why it is in the library."""
    stored = ctx.library.reasons_for(paper.key)
    reasons = [s.reason for s in stored]
    insight = ctx.insight_for(paper, reasons)
    message = render_paper(
        paper, reasons, insight, ctx.watch_map, feedback=ctx.library.feedback(paper.key), explain=True
    )
    followups = shown_followups(ctx.library, [paper]).get(paper.key, [])
    if followups:  # what happened since, under the title: the truth, however long ago it was posted
        items = [(followup, paper) for followup in followups]
        message = replace(message, blocks=[*message.blocks[:1], section(banner(items)), *message.blocks[1:]])
    listed = ctx.library.sources_of(paper.key)
    if looked_up:
        note = "Not in il2watch's library until now: looked up in PubMed. No watch has found it."
    elif stored:
        first = min(s.first_seen for s in stored)[:10]
        note = f"In il2watch's library since {escape_mrkdwn(first)}."
        if listed:
            note += f" Listed by {escape_mrkdwn(sources_text(listed))}."
    else:
        note = "Looked up in PubMed earlier; no watch has found it."
    blocks = [*message.blocks]
    blocks.insert(len(blocks) - 1, context(note))
    return Reply(text=message.text, blocks=blocks, shareable=True)


def paper(args: str, ctx: Context, offset: int = 0) -> Reply:
    ref = parse_paper_ref(args)
    if ref is None:
        if not args:
            return say(
                f"Which paper? `{ctx.command} paper 35217787`, a DOI such as "
                f"`10.1038/s41577-022-00680-w`, a PMCID, a Europe PMC preprint id (`PPR…`) or a PubMed link."
            )
        return say(
            f"`{echo(args, 60)}` is not a PMID, a DOI, a PMCID, a `PPR` id or a PubMed link. Try "
            f"`{ctx.command} paper 35217787` or `{ctx.command} paper 10.1038/s41577-022-00680-w`."
        )
    found = ctx.library.paper(ref.token)
    if found is not None:
        return paper_reply(ctx, found)
    if not ref.pmid and not ref.doi:
        return say(
            f"{escape_mrkdwn(ref.describe())} is not in il2watch's library, and only PMIDs and DOIs can be "
            f"looked up in PubMed."
        )
    working = f"Looking up {escape_mrkdwn(ref.describe())} in PubMed…"
    return Reply(text=working, deferred=Deferred(working, lambda tools: look_up(ctx, ref, tools)))


def look_up(ctx: Context, ref: PaperRef, tools: Tools) -> Reply:
    """Find a paper the library lacks in PubMed, keep it (without a reason: no watch found it), show it."""
    try:
        pmids = [ref.pmid] if ref.pmid else tools.find_pmids(f'"{ref.doi}"[doi]')[:1]
        papers = tools.fetch_papers(pmids) if pmids else []
    except (TransportError, PubMedError) as error:
        return say(
            f"PubMed did not answer, so I could not look up {escape_mrkdwn(ref.describe())}: "
            f"{escape_mrkdwn(str(error))[:300]}. Try again in a minute."
        )
    if not papers:
        return say(f"PubMed has no paper with {escape_mrkdwn(ref.describe())}.")
    found = papers[0]
    found = replace(found, key=ctx.library.find_key(found.ids) or found.ids.key())
    with ctx.library.transaction():
        ctx.library.save_papers([found], {found.key: ctx.insight_for(found, [])})
    return paper_reply(ctx, found, looked_up=True)


# ---------------------------------------------------------------- lists


def lexicon_synonyms(ctx: Context) -> Synonyms:
    """The synonyms of the lexicon as configured (the packaged one and the user's file)."""
    return synonyms_for(tuple(ctx.settings.lexicon_paths))


def search(args: str, ctx: Context, offset: int = 0) -> Reply:
    if not args:
        return say(
            f"Search for what? `{ctx.command} search low-dose IL-2 lupus` searches titles, abstracts, "
            f'authors and journals, words finding their synonyms too; "quotes" keep a phrase exact, OR offers '
            f"alternatives and NOT leaves a word out."
        )
    if len(args) > MAX_SEARCH:
        return say(f"That search is {len(args):,} characters long; keep it under {MAX_SEARCH}.")
    synonyms = lexicon_synonyms(ctx)
    if not fts_query(args, synonyms) and any(ch.isalnum() for ch in args):
        return say(
            f"Say what to find as well as what to leave out: `{ctx.command} search IL-2 NOT mouse` finds papers "
            f"about IL-2 that do not say mouse."
        )
    keys, total = ctx.library.search(args, limit=PAGE, offset=offset, synonyms=synonyms)
    more = offset + PAGE if total > offset + PAGE else None
    words = echo(args)
    found = f"{total:,}+ papers" if total >= SEARCH_WINDOW else counted(total, "paper")
    return listing(
        f"*{found} match “{words}”*",
        paper_list(ctx.library, keys, ctx.watch_map),
        offset=offset,
        next_offset=more,
        total=total,
        empty=f"Nothing in the library matches “{words}”. Fewer or broader words may find more; "
        f"`{ctx.command} paper &lt;PMID&gt;` looks a paper up in PubMed.",
    )


def recent(args: str, ctx: Context, offset: int = 0) -> Reply:
    window = parse_window(args)
    if window is None:
        return say(
            f"`recent` takes a number of papers (`{ctx.command} recent 20`, up to 200) or of days "
            f"(`{ctx.command} recent 7d`), not `{echo(args, 40)}`."
        )
    limit = offset + PAGE + 1
    if window.count is not None:
        limit = min(limit, window.count)
    keys = ctx.library.recent(limit=limit, since=window.since(ctx.now().date()))
    shown, more = page_of(keys, offset)
    return listing(
        f"*Papers {window.describe()}*",
        paper_list(ctx.library, shown, ctx.watch_map),
        offset=offset,
        next_offset=more,
        empty="No papers yet." if not window.days else f"No papers {window.describe()}.",
    )


def cites(args: str, ctx: Context, offset: int = 0) -> Reply:
    count = parse_count(args, maximum=200)
    if count is None and args:
        return say(f"`cites` takes how many papers to list (up to 200), like `{ctx.command} cites 20`.")
    review = review_watch(ctx.watches)
    if review is None:
        return say("il2watch watches no paper, so there are no citations to list.")
    total = ctx.library.count_with_reason("cites", review.id)
    limit = min(offset + PAGE + 1, count) if count else offset + PAGE + 1
    keys = ctx.library.with_reason("cites", watch=review.id, limit=limit)
    shown, more = page_of(keys, offset)
    name = escape_mrkdwn(review.name)
    return listing(
        f"*Papers citing {name}*, newest first",
        paper_list(ctx.library, shown, ctx.watch_map),
        offset=offset,
        next_offset=more,
        total=min(total, count) if count else total,
        empty=f"No paper citing {name} has been found yet.",
    )


@dataclass(frozen=True)
class TagReading:
    """What ``/il2 tag`` text names: one tag, or the molecules an ambiguous prefix could mean."""

    chosen: dict[str, str] | None  # {'axis': 'treg'}, {'flag': 'clinical-trial'}, {'molecule': 'bempegaldesleukin'}
    candidates: tuple[str, ...] = ()


def parse_tag(text: str, known_molecules: list[str], synonyms: Synonyms | None = None) -> TagReading:
    """An axis or flag by name, or a molecule by any of its names or codes or an unambiguous prefix."""
    key = "-".join(text.lower().replace("_", " ").split())
    if key.startswith("molecule-"):
        key = key[len("molecule-") :]
    if key in AXIS_TAGS:
        return TagReading({"axis": AXIS_TAGS[key]})
    if key in FLAG_TAGS:
        return TagReading({"flag": FLAG_TAGS[key]})
    wanted = " ".join(text.split()).removeprefix("molecule ").removeprefix("Molecule ").strip()
    for molecule in known_molecules:
        if molecule.lower() == wanted.lower():
            return TagReading({"molecule": molecule})
    matches = synonyms.molecule_matches(wanted, known_molecules) if synonyms is not None and wanted else []
    if len(matches) == 1:
        return TagReading({"molecule": matches[0].name})
    return TagReading(None, tuple(sorted(m.name for m in matches)))


def tag_problem(text: str, reading: TagReading, ctx: Context, molecules: list[str]) -> str:
    """Safe mrkdwn saying why ``text`` names no tag."""
    if reading.candidates:
        shown = ", ".join(f"`{escape_mrkdwn(name)}`" for name in reading.candidates[:12])
        return f"`{echo(text, 60)}` could be {shown}: say which."
    names = ", ".join(f"`{name}`" for name in TAG_NAMES)
    named = ", ".join(escape_mrkdwn(m) for m in molecules[:40]) + (" …" if len(molecules) > 40 else "")
    hint = f" Molecules: {named}." if molecules else ""
    return f"`{echo(text, 60)}` is not a tag. Tags: {names}, or a molecule's name.{hint}"


def tag(args: str, ctx: Context, offset: int = 0) -> Reply:
    molecules = ctx.library.known_molecules()
    names = ", ".join(f"`{name}`" for name in TAG_NAMES)
    named = ", ".join(escape_mrkdwn(m) for m in molecules[:40]) + (" …" if len(molecules) > 40 else "")
    if args.lower() in ("molecule", "molecules") or not args:
        listed = f"Molecules in the library: {named}." if molecules else "No molecule is named in the library yet."
        return say(
            f"`{ctx.command} tag &lt;tag&gt;` lists papers by tag: {names}, or a molecule by any of its names, "
            f"codes or the start of one. {listed}"
        )
    reading = parse_tag(args, molecules, lexicon_synonyms(ctx))
    chosen = reading.chosen
    if chosen is None:
        return say(tag_problem(args, reading, ctx, molecules))
    keys = ctx.library.tagged(limit=offset + PAGE + 1, **chosen)
    if chosen.get("flag") == "retraction":  # retracted since posted, told as a follow-up, however PubMed tags it
        told = ctx.library.with_followup(RETRACTED_KINDS, limit=offset + PAGE + 1)
        keys = _newest_first(ctx.library, list(dict.fromkeys(keys + told)))[: offset + PAGE + 1]
    page, more = page_of(keys, offset)
    label = escape_mrkdwn(next(iter(chosen.values())))
    if "axis" in chosen and chosen["axis"] in AXES:
        label = {
            "treg": "Treg / autoimmunity",
            "effector": "effector / cancer",
            "both": "both axes (Treg and effector)",
        }.get(chosen["axis"], label)
    return listing(
        f"*Papers tagged {label}*, newest first",
        paper_list(ctx.library, page, ctx.watch_map),
        offset=offset,
        next_offset=more,
        empty=f"No papers tagged {label} yet.",
    )


def _newest_first(library: Library, keys: list[str]) -> list[str]:
    papers = library.papers(keys)
    return [p.key for p in sorted(papers, key=lambda p: (p.entry_date, int(p.pmid or 0)), reverse=True)]


def saved(args: str, ctx: Context, offset: int = 0) -> Reply:
    action, rest = split_command(args)
    if action in ("remove", "rm", "delete", "unsave"):
        return saved_remove(rest, ctx)
    if action:
        return say(
            f"`saved` lists your reading list; `{ctx.command} saved remove &lt;PMID | DOI | PPR | PubMed URL&gt;` "
            f"takes a paper off it. Not `{echo(action, 30)}`."
        )
    keys = ctx.library.saved_by(ctx.user_id, limit=offset + PAGE + 1)
    shown, more = page_of(keys, offset)
    items = []
    for number, block in enumerate(paper_list(ctx.library, shown, ctx.watch_map), offset + 1):
        key = block["accessory"]["value"]
        items += [
            block,
            {"type": "actions", "block_id": f"il2_saved-{number}", "elements": [unsave_button(key, number)]},
        ]
    return listing(
        "*Your reading list*, last saved first",
        items,
        offset=offset,
        next_offset=more,
        empty="Your reading list is empty: press 🔖 Save on a paper to keep it here.",
        count=len(shown),
    )


def saved_remove(args: str, ctx: Context) -> Reply:
    """Take a paper off the reading list, named as ``/il2 paper`` accepts it."""
    ref = parse_paper_ref(args)
    if ref is None:
        return say(
            f"Remove which paper? `{ctx.command} saved remove 35217787`, a DOI or a PubMed link"
            + (f"; `{echo(args, 60)}` is none of them." if args else ".")
        )
    found = ctx.library.paper(ref.token)
    key = found.key if found is not None else ref.token
    if ctx.library.unsave_for(ctx.user_id, key):
        return say(f"Removed {escape_mrkdwn(describe_key(key))} from your reading list.")
    return say(f"{escape_mrkdwn(ref.describe())} is not on your reading list (`{ctx.command} saved` shows what is).")
