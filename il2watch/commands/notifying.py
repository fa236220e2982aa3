"""``/il2 notify [on | off]``: whether il2watch sends you a direct message when a paper you saved is
retracted, withdrawn or gets an expression of concern."""

from __future__ import annotations

from il2watch.commands.parsing import split_command
from il2watch.commands.reply import Context, Reply, echo, say

ON, OFF = ("on", "yes", "true", "enable"), ("off", "no", "false", "disable", "stop")


def notify(args: str, ctx: Context, offset: int = 0) -> Reply:
    word, rest = split_command(args)
    if not ctx.user_id:
        return say("I could not tell who asked, so nothing was changed.")
    if word in ON + OFF and not rest:
        ctx.library.set_notify(ctx.user_id, word in ON)
    elif word:
        return say(f"`notify` takes `on` or `off`, not `{echo(args, 30)}`.")
    if ctx.library.notify_enabled(ctx.user_id):
        return say(
            "Direct messages are *on*: when a paper on your reading list is retracted, withdrawn or gets an "
            f"expression of concern, il2watch tells you. `{ctx.command} notify off` stops them."
        )
    return say(
        f"Direct messages are *off*: the channel still hears about retractions. `{ctx.command} notify on` "
        "turns them back on."
    )
