"""Admin commands: poll now, and the watches added from Slack (kept in the library, announced in the channel)."""

from __future__ import annotations

import re
import uuid

from il2watch import ids
from il2watch.commands.parsing import parse_paper_ref, short_hash, slug, split_command
from il2watch.commands.reply import Context, Deferred, Reply, ToolError, Tools, echo, say
from il2watch.library import Library, utcnow
from il2watch.markup import escape_mrkdwn
from il2watch.model import Watch
from il2watch.pubmed import PubMedError
from il2watch.render.blocks import MAX_FALLBACK_TEXT, clip, section
from il2watch.transport import TransportError

MAX_QUERY = 500
WATCH_ID_LIMIT = 40
_NUMBER = re.compile(r"(?i)(?:pmid\s*[:#]?\s*)?[+-]?\d[\d.,eE+-]*")  # meant as a PMID, whatever its shape


def poll(args: str, ctx: Context, offset: int = 0) -> Reply:
    working = "Polling PubMed now… I'll say here what it found."

    def run(tools: Tools) -> Reply:
        return say(escape_mrkdwn(tools.poll()))

    return Reply(text=working, deferred=Deferred(working, run))


# ---------------------------------------------------------------- watches


def _watch_line(library: Library, watch: Watch) -> str:
    state = library.watch_state(watch)
    target = f"PMID {watch.pmid}" if watch.pmid else f"query {clip(watch.query, 200)}"
    label = f" “{watch.label}”" if watch.label else ""
    origin = "from Slack" if watch.source == "slack" else "configured"
    progress = f"looked up to {state.horizon}" if state.horizon else "no poll yet: the next one records its baseline"
    return (
        f"• `{escape_mrkdwn(watch.id)}`{escape_mrkdwn(label)}: {escape_mrkdwn(target)} ({origin}; "
        f"{escape_mrkdwn(progress)})"
    )


def watch_list(ctx: Context) -> Reply:
    if not ctx.watches:
        return say(f"il2watch watches nothing. `{ctx.command} watch add &lt;PMID or query&gt;` adds a watch.")
    lines = [_watch_line(ctx.library, w) for w in ctx.watches]
    head = f"*{len(lines)} watch{'es' if len(lines) != 1 else ''}*"
    body = "\n".join(lines)
    return Reply(text=clip(head + "\n" + body, MAX_FALLBACK_TEXT), blocks=[section(head + "\n" + body)])


def _new_watch(spec: str, ctx: Context) -> Watch | Reply:
    """The watch ``spec`` asks for, or a reply saying why there is none."""
    ref = parse_paper_ref(spec)
    if ref is not None and not ref.pmid:  # a DOI, PMCID, PPR, OpenAlex or Europe PMC id
        return say(
            f"A paper watch needs a PMID: find it with `{ctx.command} paper {echo(spec, 80)}`, "
            f"then `{ctx.command} watch add &lt;PMID&gt;`."
        )
    if ref is not None:
        return Watch(id=f"pmid-{ref.pmid}", pmid=ref.pmid, source="slack")
    if _NUMBER.fullmatch(spec.strip()):
        pmid = ids.pmid(re.sub(r"(?i)^pmid\s*[:#]?\s*", "", spec.strip()))
        if pmid is None:
            return say(
                f"`{echo(spec, 30)}` is not a PMID: PMIDs are whole numbers from 1, like 35217787. "
                f"A PubMed query needs words."
            )
        return Watch(id=f"pmid-{pmid}", pmid=pmid, source="slack")
    if len(spec) > MAX_QUERY:
        return say(
            f"That query is {len(spec):,} characters long; PubMed queries for a watch must stay under {MAX_QUERY}."
        )
    if not any(ch.isalnum() for ch in spec):
        return say(f"`{echo(spec, 60)}` has no words to search PubMed for.")
    return Watch(id=slug(spec, limit=WATCH_ID_LIMIT), query=spec, source="slack")


def announce(library: Library, ctx: Context, watch: Watch, action: str) -> None:
    """The channel hears of it through the outbox, so the announcement survives a crash before posting."""
    library.enqueue(
        key=uuid.uuid4().hex,
        channel=watch.channel or ctx.settings.channel,
        kind="watch",
        papers=(),
        payload={
            "watch": {
                "id": watch.id,
                "pmid": watch.pmid,
                "query": watch.query,
                "label": watch.label,
                "channel": watch.channel,
            },
            "action": action,
            "by": ctx.user_id,
        },
    )


def watch_add(spec: str, ctx: Context) -> Reply:
    """Refuse what cannot be a watch at once; check the rest with PubMed after the ack, then add it."""
    if not spec:
        return say(
            f"Watch what? `{ctx.command} watch add 35217787` follows a paper's citations and similar "
            f'articles; `{ctx.command} watch add "IL-2"[tiab] AND lupus` follows a PubMed query.'
        )
    made = _new_watch(spec, ctx)
    if isinstance(made, Reply):
        return made
    watch = made
    for existing in ctx.watches:
        if (watch.pmid and existing.pmid == watch.pmid) or (watch.query and existing.query == watch.query):
            return say(f"Already watched, as `{escape_mrkdwn(existing.id)}`.")
    taken = {w.id for w in ctx.watches}
    if watch.id in taken:
        watch = Watch(
            id=f"{watch.id[: WATCH_ID_LIMIT - 7]}-{short_hash(spec)}",
            pmid=watch.pmid,
            query=watch.query,
            source="slack",
        )
    working = f"Checking {_what(watch)} with PubMed…"
    return Reply(text=working, deferred=Deferred(working, lambda tools: _add_checked(watch, ctx, tools)))


def _what(watch: Watch) -> str:
    return f"PMID {watch.pmid}" if watch.pmid else f"the query “{echo(watch.query, 200)}”"


def _add_checked(watch: Watch, ctx: Context, tools: Tools) -> Reply:
    """Add the watch if PubMed has the paper, or can use every word of the query; else say why not."""
    notes = ""
    try:
        if watch.pmid:
            found = [p for p in tools.fetch_papers([watch.pmid]) if p.pmid == watch.pmid]
            if not found:
                return say(f"PubMed has no paper with PMID {watch.pmid}, so no watch was added. Check the number.")
        else:
            checked = tools.check_query(watch.query)
            if checked.errors:
                words = "; ".join(escape_mrkdwn(p.describe()) for p in checked.errors)
                return say(
                    f"PubMed cannot use {_what(watch)} as written: {words}. No watch was added: correct the query "
                    f"and add it again."
                )
            warnings = [escape_mrkdwn(p.describe()) for p in checked.problems if not p.fatal]
            notes = f" PubMed has {checked.count:,} matches for it." + (
                f" Note: {'; '.join(warnings)}." if warnings else ""
            )
    except (TransportError, PubMedError, ToolError) as error:
        return say(
            f"PubMed did not answer, so I could not check {_what(watch)}: {escape_mrkdwn(str(error))[:300]}. "
            f"No watch was added; try again in a minute."
        )
    library = ctx.library
    with library.transaction():
        library.add_watch(watch, added_by=ctx.user_id, now=utcnow())
        library.reset_watch_progress(watch.id)
        announce(library, ctx, watch, "added")
    return say(
        f"Now watching {_what(watch)} as `{escape_mrkdwn(watch.id)}`.{notes} The next poll records what already "
        f"exists as its baseline and posts only what is new; the channel is told. `{ctx.command} poll` polls now."
    )


def watch_remove(watch_id: str, ctx: Context) -> Reply:
    if not watch_id:
        return say(f"Remove which watch? `{ctx.command} watch list` shows their ids.")
    watch = next((w for w in ctx.watches if w.id == watch_id.strip().lower()), None)
    if watch is None:
        ids = ", ".join(f"`{escape_mrkdwn(w.id)}`" for w in ctx.watches) or "none"
        return say(f"No watch has the id `{echo(watch_id, 40)}`. Watches: {ids}.")
    if watch.source != "slack":
        return say(
            f"`{escape_mrkdwn(watch.id)}` is configured in il2watch.toml (or built in); remove it there. "
            f"Only watches added from Slack can be removed from Slack."
        )
    with ctx.library.transaction():
        if ctx.library.remove_watch(watch.id, now=utcnow()):
            announce(ctx.library, ctx, watch, "removed")
    return say(
        f"Stopped watching `{escape_mrkdwn(watch.id)}`; the channel is told. Papers it found stay in the library."
    )


def watch(args: str, ctx: Context, offset: int = 0) -> Reply:
    action, rest = split_command(args)
    if action in ("", "list", "ls"):
        return watch_list(ctx)
    if action == "add":
        return watch_add(rest, ctx)
    if action in ("remove", "rm", "delete"):
        return watch_remove(rest, ctx)
    return say(f"`watch` takes `list`, `add &lt;PMID or query&gt;` or `remove &lt;id&gt;`, not `{echo(action, 30)}`.")
