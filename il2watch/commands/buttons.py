"""What the buttons on il2watch's messages do to the library, and how the message shows it."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from il2watch.commands.parsing import parse_pmid
from il2watch.commands.reply import Context, Reply, say
from il2watch.identity import describe_key, parse_token
from il2watch.library import Library
from il2watch.markup import escape_mrkdwn
from il2watch.render.blocks import MAX_FALLBACK_TEXT, button, clip, section

RELEVANT, NOT_RELEVANT, SAVE, UNSAVE = "il2_relevant", "il2_not_relevant", "il2_save", "il2_unsave"
FEEDBACK_VALUES = {RELEVANT: 1, NOT_RELEVANT: -1}
_COUNT_SUFFIX = re.compile(r" \(\d+\)$")
_ENTRY_SUFFIX = re.compile(r"-\d+$")  # a digest numbers its entries' buttons: "il2_relevant-3"


def base_action(action_id: str) -> str:
    """The button's kind, without the entry number a digest adds."""
    return _ENTRY_SUFFIX.sub("", action_id)


def action_pattern(action_id: str) -> re.Pattern[str]:
    """What a listener for this kind of button matches: the plain id and every numbered one."""
    return re.compile(rf"^{re.escape(action_id)}(?:-\d+)?$")


def known_paper(library: Library, value: str) -> str | None:
    """The key of the paper a button carries (its key, or a bare PMID on posts made before identities),
    if the value is one and the library has the paper."""
    pmid = parse_pmid(value or "")
    ref = f"pmid:{pmid}" if pmid else (value if parse_token(value or "") else "")
    found = library.paper(ref) if ref else None
    return found.key if found is not None else None


def with_feedback_counts(blocks: list[dict[str, Any]], value: str, counts: tuple[int, int]) -> list[dict[str, Any]]:
    """The message's blocks with the Relevant / Not relevant buttons carrying ``value`` showing ``counts``."""
    updated = copy.deepcopy(blocks)
    shown = {RELEVANT: counts[0], NOT_RELEVANT: counts[1]}
    for block in updated:
        if block.get("type") != "actions":
            continue
        for element in block.get("elements", []):
            action_id = base_action(str(element.get("action_id", "")))
            if action_id in shown and element.get("value") == value and isinstance(element.get("text"), dict):
                label = _COUNT_SUFFIX.sub("", str(element["text"].get("text", "")))
                element["text"]["text"] = label + (f" ({shown[action_id]})" if shown[action_id] else "")
    return updated


def unsave_button(key: str, number: int | None = None) -> dict[str, Any]:
    """Unsave for one paper; a list numbers each paper's, as action ids must differ within a message."""
    return button(UNSAVE + (f"-{number}" if number is not None else ""), "Unsave", key)


def save_reply(ctx: Context, key: str) -> Reply:
    """Saved (or already saved), with an Unsave button to take it back."""
    named = escape_mrkdwn(describe_key(key))
    if ctx.library.save_for(ctx.user_id, key):
        text = f"Saved {named} to your reading list: `{ctx.command} saved` shows it."
    else:
        text = f"{named} is already on your reading list (`{ctx.command} saved`)."
    block = {**section(text), "accessory": unsave_button(key)}
    return Reply(text=clip(text, MAX_FALLBACK_TEXT), blocks=[block])


def unsave_reply(ctx: Context, key: str) -> Reply:
    named = escape_mrkdwn(describe_key(key))
    if ctx.library.unsave_for(ctx.user_id, key):
        return say(f"Removed {named} from your reading list.")
    return say(f"{named} is not on your reading list (`{ctx.command} saved` shows what is).")


# ---------------------------------------------------------------- reading a click

NO_USER = "I could not tell who pressed that button, so nothing was recorded. Press it again on the message in Slack."
NOT_OURS = "That button does not carry a value il2watch made, so nothing was changed."
MAX_VALUE = 2000  # Slack's limit for a button's value
_USER_ID = re.compile(r"^[A-Z0-9]{2,40}$", re.ASCII)


@dataclass(frozen=True)
class Click:
    """A button press as il2watch uses it, every field checked: what Slack sends is outside text."""

    user: str
    action_id: str
    value: str
    action_ts: str
    channel: str
    message: dict[str, Any] | None  # the message the button was on, when Slack sent it
    ephemeral: bool

    def key(self) -> tuple[str, ...]:
        """What makes this press the same press when Slack delivers it again."""
        return ("action", self.user, self.action_id, self.action_ts, self.value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def read_click(body: Any, action: Any) -> Click | str:
    """The click in a block_actions payload, or the sentence to answer when it cannot be used."""
    body = body if isinstance(body, dict) else {}
    action = action if isinstance(action, dict) else {}
    user = body.get("user")
    user_id = _text(user.get("id")) if isinstance(user, dict) else ""
    if not _USER_ID.match(user_id):
        return NO_USER
    value = action.get("value", "")
    if not isinstance(value, str) or len(value) > MAX_VALUE:
        return NOT_OURS
    container = body.get("container") if isinstance(body.get("container"), dict) else {}
    channel = body.get("channel") if isinstance(body.get("channel"), dict) else {}
    message = body.get("message")
    return Click(
        user=user_id,
        action_id=_text(action.get("action_id")),
        value=value,
        action_ts=_text(action.get("action_ts")),
        channel=_text(container.get("channel_id")) or _text(channel.get("id")),
        message=message if isinstance(message, dict) else None,
        ephemeral=container.get("is_ephemeral") is True,
    )
