"""``/il2 backfill <watch> [N]``: post more of what a watch found before its first poll (admins only).

The papers are queued in the outbox like any others and go out with a poll run right away, under the
same lease and exactly-once rules as every post; more than the burst setting allows go out as one digest.
"""

from __future__ import annotations

from il2watch import backfill as backfilling
from il2watch.commands.parsing import parse_count, split_command
from il2watch.commands.reply import Context, Deferred, Reply, Tools, echo, say
from il2watch.markup import escape_mrkdwn

DEFAULT_COUNT = 10


def backfill(args: str, ctx: Context, offset: int = 0) -> Reply:
    watch_id, rest = split_command(args)
    ids = ", ".join(f"`{escape_mrkdwn(w.id)}`" for w in ctx.watches) or "none"
    if not watch_id:
        return say(
            f"Backfill which watch? `{ctx.command} backfill review 20` posts up to 20 more of the papers the "
            f"watch `review` found before its first poll (at most {backfilling.BACKFILL_MAX}). Watches: {ids}."
        )
    watch = next((w for w in ctx.watches if w.id == watch_id), None)
    if watch is None:
        return say(f"No watch has the id `{echo(watch_id, 40)}`. Watches: {ids}.")
    count = parse_count(rest, default=DEFAULT_COUNT, maximum=backfilling.BACKFILL_MAX)
    if count is None:
        return say(
            f"`backfill` takes how many papers to post, from 1 to {backfilling.BACKFILL_MAX}, like "
            f"`{ctx.command} backfill {escape_mrkdwn(watch.id)} 20`; not `{echo(rest, 30)}`."
        )
    channel = watch.channel or ctx.settings.channel
    working = f"Backfilling up to {count} papers from `{escape_mrkdwn(watch.id)}`…"

    def run(tools: Tools) -> Reply:
        choice = backfilling.choose(
            ctx.library,
            watch,
            channel,
            count,
            insight_for=ctx.insight_for,
            threshold=ctx.settings.relevance_threshold,
        )
        kind = backfilling.enqueue(ctx.library, choice, watch=watch, channel=channel, burst=ctx.settings.burst)
        queued = escape_mrkdwn(backfilling.describe(choice, kind, watch))
        if not kind:
            return say(queued[:1].upper() + queued[1:] + ".")
        return say(f"{queued[:1].upper() + queued[1:]}. Posting now: {escape_mrkdwn(tools.poll())}")

    return Reply(text=working, deferred=Deferred(working, run))
