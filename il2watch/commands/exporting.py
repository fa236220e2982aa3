"""``/il2 export [bibtex | ris | csv] [filter] [share]``: a reference-manager file, uploaded after the ack.

The file goes to the person who asked, in their direct message with the app: an export is one person's
reading, and a channel full of .bib files helps nobody. The word ``share`` at the end uploads it into the
channel instead, for everyone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from il2watch.commands.parsing import parse_count, parse_window, split_command
from il2watch.commands.reading import MAX_SEARCH, lexicon_synonyms, parse_tag, review_watch, tag_problem
from il2watch.commands.reply import Context, Deferred, Reply, Tools, echo, followup_notes, say
from il2watch.export import ALIASES, FORMATS, export
from il2watch.markup import counted, escape_mrkdwn

EXPORT_MAX = 2000
SHARE_WORDS = ("share",)
FILTERS = "`search &lt;words&gt;`, `tag &lt;tag&gt;`, `recent [N | Nd]`, `cites [N]` or `saved`"


@dataclass(frozen=True)
class Selection:
    papers: list[str]
    describe: str  # plain words: "matching “lupus”"
    name: str  # for the file name: "search-lupus"


def select(args: str, ctx: Context) -> Selection | Reply:
    """Which papers an export filter names, reusing the list commands' readings of their arguments."""
    kind, rest = split_command(args)
    library = ctx.library
    if kind == "":
        return Selection(library.recent(limit=EXPORT_MAX), "found by il2watch's watches", "all")
    if kind == "recent":
        window = parse_window(rest)
        if window is None:
            return say(f"`recent` takes a number of papers or of days (`7d`), not `{echo(rest, 40)}`.")
        papers = library.recent(limit=min(window.count or EXPORT_MAX, EXPORT_MAX), since=window.since(ctx.now().date()))
        return Selection(papers, window.describe(), f"recent-{rest or 'all'}")
    if kind == "cites":
        count = parse_count(rest, default=EXPORT_MAX, maximum=EXPORT_MAX)
        review = review_watch(ctx.watches)
        if count is None or review is None:
            return say("`cites` takes how many papers (up to 2000)." if review else "il2watch watches no paper.")
        return Selection(library.with_reason("cites", watch=review.id, limit=count), f"citing {review.name}", "cites")
    if kind == "tag":
        molecules = library.known_molecules()
        reading = parse_tag(rest, molecules, lexicon_synonyms(ctx))
        chosen = reading.chosen
        if chosen is None:
            return say(tag_problem(rest, reading, ctx, molecules))
        value = next(iter(chosen.values()))
        return Selection(library.tagged(limit=EXPORT_MAX, **chosen), f"tagged {value}", f"tag-{value}")
    if kind == "saved":
        return Selection(library.saved_by(ctx.user_id, limit=EXPORT_MAX), "on your reading list", "saved")
    words = rest if kind == "search" else args
    if not words or len(words) > MAX_SEARCH:
        return say(f"Export which papers? Give {FILTERS}; nothing exports everything il2watch found.")
    papers, _ = library.search(words, limit=EXPORT_MAX)
    return Selection(papers, f"matching “{words}”", "search-" + words)


def file_name(name: str, fmt: str, day: str) -> str:
    safe = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "papers"
    return f"il2watch-{safe}-{day}.{FORMATS[fmt]}"


def split_share(args: str) -> tuple[str, bool]:
    """The export's own words, and whether the last word asks to share it in the channel."""
    words = args.split()
    if words and words[-1].lower() in SHARE_WORDS:
        return " ".join(words[:-1]), True
    return args, False


def export_command(args: str, ctx: Context, offset: int = 0) -> Reply:
    args, share = split_share(args)
    first, rest = split_command(args)
    fmt = ALIASES.get(first)
    if fmt is None:
        fmt, rest = "bibtex", args
    chosen = select(rest, ctx)
    if isinstance(chosen, Reply):
        return chosen
    if not chosen.papers:
        return say(f"No papers {escape_mrkdwn(chosen.describe)}, so there is nothing to export.")
    channel, user, papers = ctx.channel_id, ctx.user_id, chosen.papers
    name = file_name(chosen.name, fmt, ctx.now().date().isoformat())
    count = counted(len(papers), "paper")
    title = f"{count} {chosen.describe}"
    capped = f" (the first {EXPORT_MAX:,})" if len(papers) >= EXPORT_MAX else ""
    private = not share and bool(user)

    def run(tools: Tools) -> Reply:
        chosen_papers = ctx.library.papers(papers)
        content = export(chosen_papers, fmt, followup_notes(ctx.library, chosen_papers))
        target = tools.open_dm(user) if private else channel
        tools.upload(target, name, content, title)
        uploaded = f"{escape_mrkdwn(name)}: {escape_mrkdwn(title)}{capped}"
        if private:
            return say(
                f"Sent you {uploaded} in your direct message with il2watch. "
                f"Add `share` at the end (`{ctx.command} export {echo(args, 200)} share`) to upload it here "
                f"for everyone."
            )
        return say(f"Uploaded {uploaded} here for everyone.")

    working = f"Exporting {escape_mrkdwn(count)} as {fmt}…"
    return Reply(text=working, deferred=Deferred(working, run))
