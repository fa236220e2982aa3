"""``/il2 …``: parsing and answering commands as plain functions of (text, context) -> Reply.

Nothing here talks to the network: slow work comes back as a ``Deferred`` for the Slack layer to run
after its ack. See ``router.COMMANDS`` for the commands themselves.
"""

from il2watch.commands.reply import (
    Context,
    Deferred,
    InsightFor,
    Reply,
    ToolError,
    Tools,
    read_control_value,
)
from il2watch.commands.router import COMMANDS, Command, answer, find_command, help_reply, readme_table
from il2watch.commands.status import format_status_text, status_facts

__all__ = [
    "COMMANDS",
    "Command",
    "Context",
    "Deferred",
    "InsightFor",
    "Reply",
    "ToolError",
    "Tools",
    "answer",
    "find_command",
    "format_status_text",
    "help_reply",
    "read_control_value",
    "readme_table",
    "status_facts",
]
