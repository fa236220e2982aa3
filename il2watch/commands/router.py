"""One table of commands: the router, ``/il2 help``, the README's table and the tests all read it."""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from il2watch.commands import admin, backfilling, exporting, notifying, reading, status
from il2watch.commands.parsing import MAX_TEXT, parse_paper_ref, slack_to_plain, split_command
from il2watch.commands.reply import Context, Deferred, Reply, ToolError, Tools, echo, say, with_controls
from il2watch.markup import escape_mrkdwn
from il2watch.render import check_limits
from il2watch.render.blocks import MAX_FALLBACK_TEXT, clip, section

log = logging.getLogger("il2watch.commands")

Handler = Callable[[str, Context, int], Reply]


@dataclass(frozen=True)
class Command:
    name: str
    args: str  # how the arguments are written in help, e.g. "<words>"
    summary: str  # one line, plain text
    handler: Handler
    admin_only: bool = False
    aliases: tuple[str, ...] = ()
    admin_actions: tuple[str, ...] = ()  # sub-commands only admins may run (the rest are for everyone)

    def usage(self, command: str) -> str:
        return f"{command} {self.name}" + (f" {self.args}" if self.args else "")

    def needs_admin(self, args: str) -> bool:
        return self.admin_only or split_command(args)[0] in self.admin_actions

    @property
    def admin_note(self) -> str:
        """Plain text: who may run it, when not everyone may run all of it."""
        if self.admin_only:
            return "admins only"
        if self.admin_actions:
            shown = [a for a in self.admin_actions if a in self.args] or list(self.admin_actions)
            return " and ".join(shown) + ": admins only"
        return ""


def _help(args: str, ctx: Context, offset: int = 0) -> Reply:
    return help_reply(ctx, only=args)


COMMANDS: tuple[Command, ...] = (
    Command("help", "[command]", "What il2watch can do: this list.", _help, aliases=("?", "h")),
    Command(
        "paper",
        "<PMID | DOI | PMCID | PPR… | PubMed URL>",
        "A paper as il2watch would post it, with why it is in the library and which indexes list it; one the "
        "library lacks is looked up in PubMed by its PMID or DOI (a PMCID or PPR id only finds a stored paper).",
        reading.paper,
        aliases=("show", "pmid", "doi"),
    ),
    Command(
        "search",
        "<words>",
        "Full-text search of the library, best matches first, ten at a time; words also find their synonyms, "
        '"quoted phrases" stay exact, OR offers alternatives and NOT leaves papers out.',
        reading.search,
        aliases=("find", "s"),
    ),
    Command(
        "recent",
        "[N | Nd]",
        "The newest papers: the last N, or those entered in the last N days.",
        reading.recent,
        aliases=("latest", "new"),
    ),
    Command(
        "cites",
        "[N]",
        "Papers citing the review, from every citation index, newest first, with the indexes that list each.",
        reading.cites,
        aliases=("citing",),
    ),
    Command(
        "tag",
        "<tag>",
        "Papers by tag: treg (autoimmunity), effector (cancer), both, biology, trial, review, "
        "preprint, retraction, or a molecule by any of its names or codes, or the start of one.",
        reading.tag,
        aliases=("tags",),
    ),
    Command(
        "saved",
        "[remove <PMID | DOI>]",
        "Your reading list: the papers you pressed Save on; remove takes one off (or press Unsave).",
        reading.saved,
        aliases=("reading-list",),
    ),
    Command(
        "notify",
        "[on | off]",
        "Direct messages when a paper you saved is retracted, withdrawn or gets an expression of concern: "
        "on (the default) or off.",
        notifying.notify,
        aliases=("notifications",),
    ),
    Command(
        "status",
        "",
        "Last and next poll, counts, feedback, last error, and the health of NCBI, each citation index and Slack.",
        status.status,
        aliases=("health",),
    ),
    Command(
        "export",
        "[bibtex | ris | csv] [filter] [share]",
        "A file for a reference manager, sent to you in a direct message with il2watch (share: uploaded "
        "here for everyone); the filter is search <words>, tag <tag>, recent [N | Nd], cites [N] or saved.",
        exporting.export_command,
    ),
    Command("poll", "", "Poll PubMed now.", admin.poll, admin_only=True),
    Command(
        "backfill",
        "<watch> [N]",
        "Post up to N (default 10) more of the papers a watch found before its first poll, newest first; "
        "more than the burst size go out as one digest.",
        backfilling.backfill,
        admin_only=True,
    ),
    Command(
        "watch",
        "list | add <PMID or query> | remove <id>",
        "The watches. A new one starts with a baseline and is announced in the channel.",
        admin.watch,
        aliases=("watches",),
        admin_actions=("add", "remove", "rm", "delete"),
    ),
)

_BY_NAME = {name: c for c in COMMANDS for name in (c.name, *c.aliases)}


def find_command(name: str) -> Command | None:
    return _BY_NAME.get(name.lower())


def help_reply(ctx: Context, *, only: str = "") -> Reply:
    """The command list, generated from COMMANDS; ``only`` narrows it to one command."""
    chosen = [c for c in COMMANDS if c is find_command(only)] if only else list(COMMANDS)
    if not chosen:
        return say(f"There is no `{echo(only, 30)}` command.\n" + _command_names(ctx))
    lines = []
    for command in chosen:
        admin_note = f" _({command.admin_note})_" if command.admin_note else ""
        lines.append(f"`{escape_mrkdwn(command.usage(ctx.command))}`: {escape_mrkdwn(command.summary)}{admin_note}")
    text = "\n".join(lines)
    if not only:
        text = (
            f"*il2watch* follows the literature around the engineered IL-2 review and answers questions "
            f"about its library.\n{text}\nReplies are only shown to you; *Share in channel* posts one for "
            f"everyone. Posts have 👍 / 👎 and 🔖 Save buttons."
        )
    return Reply(text=clip(text, MAX_FALLBACK_TEXT), blocks=[section(text)])


def _command_names(ctx: Context) -> str:
    return "Commands: " + ", ".join(f"`{c.name}`" for c in COMMANDS) + f". `{ctx.command} help` explains them."


def readme_table(command: str = "/il2") -> str:  # the README shows the default command name
    """The Markdown table of commands in the README (a test keeps the two the same)."""
    rows = ["| Command | What it does |", "| --- | --- |"]
    for c in COMMANDS:
        usage = c.usage(command).replace("|", "\\|")
        summary = c.summary.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        rows.append(f"| `{usage}` | {summary}{f' ({c.admin_note})' if c.admin_note else ''} |")
    return "\n".join(rows)


def _unknown(name: str, ctx: Context) -> Reply:
    close = difflib.get_close_matches(name, list(_BY_NAME), n=1, cutoff=0.6)
    hint = f" Did you mean `{ctx.command} {_BY_NAME[close[0]].name}`?" if close else ""
    return say(f"I don't know `{echo(name, 30)}`.{hint} {_command_names(ctx)}")


def _refusal(command: Command, ctx: Context, args: str = "") -> Reply:
    admins = [a for a in ctx.settings.admins if re.fullmatch(r"[UW][A-Z0-9]{2,20}", a)]
    who = ("Ask " + ", ".join(f"<@{a}>" for a in admins) + ".") if admins else "No admins are set (IL2WATCH_ADMINS)."
    action = "" if command.admin_only else f" {split_command(args)[0]}"
    listing = f" Anyone may `{ctx.command} {command.name} list`." if command.admin_actions else ""
    return say(f"Sorry, `{ctx.command} {command.name}{action}` is only for il2watch's admins. {who}{listing}")


def route(text: str, ctx: Context, offset: int = 0) -> Reply:
    """The reply to the command text as Slack sent it, before buttons are added."""
    if len(text) > MAX_TEXT:
        return say(f"That is {len(text):,} characters; il2watch's commands are short. `{ctx.command} help` lists them.")
    plain = slack_to_plain(text)
    if not plain:
        return help_reply(ctx)
    name, args = split_command(plain)
    command = find_command(name)
    if command is None:
        if parse_paper_ref(plain) is not None:
            return reading.paper(plain, ctx, offset)
        return _unknown(name, ctx)
    if command.needs_admin(args) and not ctx.is_admin:
        return _refusal(command, ctx, args)
    return command.handler(args, ctx, offset)


def _checked(reply: Reply) -> Reply:
    """A reply Slack will accept: Block Kit's limits are checked, and broken blocks fall back to text."""
    problems = check_limits(reply.blocks)
    if not problems:
        return reply
    log.error("a reply broke Block Kit's limits (%s); sending its text alone", "; ".join(problems[:3]))
    return replace(reply, blocks=[section(reply.text)])


def run_deferred(deferred: Deferred, tools: Tools) -> Reply:
    """Slow work, with the failures a person should hear about turned into a reply."""
    try:
        return deferred.run(tools)
    except ToolError as error:
        return say(escape_mrkdwn(str(error)))


def answer(text: str, ctx: Context, *, offset: int = 0, shared_by: str = "") -> Reply:
    """The whole answer to ``/il2 <text>``: routed, with More / Share buttons, within Block Kit's limits.

    A reply with ``deferred`` is acknowledged with its text; the deferred reply gets the same finish.
    """
    reply = route(text, ctx, offset)
    if reply.deferred is not None:
        slow = reply.deferred

        def finished(tools: Tools) -> Reply:
            return _checked(with_controls(run_deferred(slow, tools), text, offset, shared_by=shared_by))

        return replace(reply, deferred=Deferred(slow.working, finished), blocks=[section(slow.working)])
    return _checked(with_controls(reply, text, offset, shared_by=shared_by))
