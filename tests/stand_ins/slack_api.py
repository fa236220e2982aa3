"""A stand-in for Slack's Web API: a real HTTP server on 127.0.0.1 that answers like slack.com/api/.

slack_sdk's WebClient(base_url=stand_in.base_url), Bolt's respond() and WebClient.files_upload_v2 talk to it
unchanged. It holds a small workspace (team, bot user, tokens with scopes, channels, messages, home views,
files) and can misbehave on request (rate limits, server errors, error codes, dropped answers, slowness),
so il2watch's delivery and doctor code can be tested against the answers Slack really gives.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TEAM_ID = "T0IL2LAB"
TEAM_NAME = "IL-2 Lab"
TEAM_DOMAIN = "il2lab"
APP_ID = "A0IL2WATCH"
BOT_USER_ID = "U0IL2BOT"
BOT_ID = "B0IL2BOT"
BOT_NAME = "il2watch"
HUMAN_USER_ID = "U0HUMAN01"

DEFAULT_BOT_TOKEN = "xoxb-0000-stand-in-bot"
DEFAULT_APP_TOKEN = "xapp-1-A0IL2WATCH-0000-stand-in"
DEFAULT_BOT_SCOPES = (
    "chat:write",
    "channels:history",
    "groups:history",
    "channels:read",
    "groups:read",
    "channels:join",
    "files:write",
    "commands",
    "im:write",
    "im:history",
)
APP_TOKEN_SCOPES = ("connections:write",)

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 40_000
RESPONSE_URL_USES = 5
RESPONSE_URL_LIFETIME = 30 * 60
RESPONSE_URL = "response_url"  # the "method" a fault names to aim at the replies POSTed to response URLs

TOKEN_STATUSES = ("active", "token_revoked", "account_inactive")


class SlackError(Exception):
    """A Slack error code answered as {"ok": false, "error": code, ...extra}."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


# ---------------------------------------------------------------------------------------------- values


def ts_to_micros(ts: str) -> int:
    """Slack timestamps ("1700000000.000100") as whole microseconds, so they compare exactly."""
    try:
        value = Decimal(str(ts))
    except InvalidOperation as error:
        raise ValueError(f"not a Slack timestamp: {ts!r}") from error
    if not value.is_finite() or value < 0:
        raise ValueError(f"not a Slack timestamp: {ts!r}")
    return int(value * 1_000_000)


def micros_to_ts(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _flag(value: Any) -> bool:
    """Booleans arrive as JSON true/false or as form strings "1"/"0"/"true"/"false"."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return str(value).strip().lower() in ("1", "true", "yes")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _json_field(value: Any, bad_format: str) -> Any:
    """Fields such as blocks/metadata/view come as JSON strings in forms and as objects in JSON bodies."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise SlackError(bad_format) from error
    return value


def _encode_cursor(prefix: str, value: str) -> str:
    return base64.b64encode(f"{prefix}:{value}".encode()).decode()


def _decode_cursor(prefix: str, cursor: str) -> str:
    try:
        decoded = base64.b64decode(cursor.encode(), validate=True).decode()
    except (ValueError, UnicodeDecodeError) as error:
        raise SlackError("invalid_cursor") from error
    head, _, value = decoded.partition(":")
    if head != prefix or not value:
        raise SlackError("invalid_cursor")
    return value


def _next_ts_cursor(cursor: str) -> int:
    """Slack's history cursors are base64 of "next_ts:" and the next message's ts without its dot."""
    value = _decode_cursor("next_ts", cursor)
    if not value.isdigit():
        raise SlackError("invalid_cursor")
    return int(value)


def _limit(value: Any, default: int, maximum: int) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError) as error:
        raise SlackError("invalid_limit") from error
    return default if number < 1 else min(number, maximum)


# ---------------------------------------------------------------------------------------------- Block Kit

TEXT_TYPES = ("plain_text", "mrkdwn")
BLOCK_TYPES = frozenset(
    {
        "section",
        "header",
        "context",
        "actions",
        "divider",
        "image",
        "rich_text",
        "input",
        "file",
        "video",
        "markdown",
        "call",
        "table",
        "context_actions",
    }
)


def slack_length(text: str) -> int:
    """How Slack counts a text's length: in UTF-16 code units, so an emoji or a math letter counts twice."""
    return len(text.encode("utf-16-le")) // 2


def _text_object_errors(obj: Any, pointer: str, *, max_chars: int, plain_only: bool = False) -> list[str]:
    allowed = ("plain_text",) if plain_only else TEXT_TYPES
    if not isinstance(obj, dict):
        return [f"must provide an object [json-pointer:{pointer}]"]
    if obj.get("type") not in allowed:
        return [f"must be one of {', '.join(allowed)} [json-pointer:{pointer}/type]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"must be more than 0 characters [json-pointer:{pointer}/text]"]
    if slack_length(text) > max_chars:
        return [f"must be less than {max_chars + 1} characters [json-pointer:{pointer}/text]"]
    return []


def _element_errors(element: Any, pointer: str) -> list[str]:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return [f"must provide an element object [json-pointer:{pointer}]"]
    errors = []
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > 255):
        errors.append(f"must be less than 256 characters [json-pointer:{pointer}/action_id]")
    if element["type"] == "button":
        errors += _text_object_errors(element.get("text"), f"{pointer}/text", max_chars=75, plain_only=True)
        value = element.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > 2000):
            errors.append(f"must be less than 2001 characters [json-pointer:{pointer}/value]")
        url = element.get("url")
        if url is not None and (not isinstance(url, str) or len(url) > 3000):
            errors.append(f"must be less than 3001 characters [json-pointer:{pointer}/url]")
        if element.get("style") not in (None, "primary", "danger"):
            errors.append(f"must be one of primary, danger [json-pointer:{pointer}/style]")
    elif element["type"] == "image":
        if not element.get("image_url") and not element.get("slack_file"):
            errors.append(f"must provide image_url or slack_file [json-pointer:{pointer}]")
        alt = element.get("alt_text")
        if not isinstance(alt, str) or not alt or len(alt) > 2000:
            errors.append(f"must be 1 to 2000 characters [json-pointer:{pointer}/alt_text]")
    return errors


def _block_errors(block: dict, pointer: str) -> list[str]:
    kind = block["type"]
    errors: list[str] = []
    if kind == "section":
        if "text" not in block and "fields" not in block:
            errors.append(f"must provide text or fields [json-pointer:{pointer}]")
        if "text" in block:
            errors += _text_object_errors(block["text"], f"{pointer}/text", max_chars=3000)
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list) or not fields:
                errors.append(f"must provide a non-empty array [json-pointer:{pointer}/fields]")
            elif len(fields) > 10:
                errors.append(f"no more than 10 items allowed [json-pointer:{pointer}/fields]")
            else:
                for i, item in enumerate(fields):
                    errors += _text_object_errors(item, f"{pointer}/fields/{i}", max_chars=2000)
        if "accessory" in block:
            errors += _element_errors(block["accessory"], f"{pointer}/accessory")
    elif kind == "header":
        errors += _text_object_errors(block.get("text"), f"{pointer}/text", max_chars=150, plain_only=True)
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            errors.append(f"must provide a non-empty array [json-pointer:{pointer}/elements]")
        elif len(elements) > 10:
            errors.append(f"no more than 10 items allowed [json-pointer:{pointer}/elements]")
        else:
            for i, item in enumerate(elements):
                where = f"{pointer}/elements/{i}"
                if isinstance(item, dict) and item.get("type") == "image":
                    errors += _element_errors(item, where)
                else:
                    errors += _text_object_errors(item, where, max_chars=3000)
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            errors.append(f"must provide a non-empty array [json-pointer:{pointer}/elements]")
        elif len(elements) > 25:
            errors.append(f"no more than 25 items allowed [json-pointer:{pointer}/elements]")
        else:
            seen: set[str] = set()
            for i, item in enumerate(elements):
                errors += _element_errors(item, f"{pointer}/elements/{i}")
                action_id = item.get("action_id") if isinstance(item, dict) else None
                if action_id is not None and action_id in seen:
                    errors.append(f"action_id must be unique [json-pointer:{pointer}/elements/{i}/action_id]")
                if isinstance(action_id, str):
                    seen.add(action_id)
    elif kind == "image":
        errors += _element_errors(block, pointer)
    elif kind == "markdown":
        text = block.get("text")
        if not isinstance(text, str) or not text or len(text) > 12_000:
            errors.append(f"must be 1 to 12000 characters [json-pointer:{pointer}/text]")
    return errors


def block_kit_errors(blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """The errors Slack would list for these blocks (empty when valid), each with its JSON pointer."""
    if not isinstance(blocks, list):
        return ["must provide an array [json-pointer:/blocks]"]
    if len(blocks) > max_blocks:
        return [f"no more than {max_blocks} items allowed [json-pointer:/blocks]"]
    errors: list[str] = []
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        pointer = f"/blocks/{index}"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            errors.append(f"must provide a known block type [json-pointer:{pointer}/type]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not block_id or len(block_id) > 255:
                errors.append(f"must be 1 to 255 characters [json-pointer:{pointer}/block_id]")
            elif block_id in block_ids:
                errors.append(f"block_id must be unique [json-pointer:{pointer}/block_id]")
            else:
                block_ids.add(block_id)
        errors += _block_errors(block, pointer)
    return errors


def _checked_blocks(raw: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[dict] | None:
    if raw is None or raw == "":
        return None
    blocks = _json_field(raw, "invalid_blocks_format")
    if not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format")
    errors = block_kit_errors(blocks, max_blocks=max_blocks)
    if errors:
        raise SlackError(
            "invalid_blocks",
            errors=errors,
            response_metadata={"messages": [f"[ERROR] {error}" for error in errors]},
        )
    return blocks


def _checked_metadata(raw: Any, warnings: list[str]) -> dict | None:
    """Malformed metadata is an error; an event_type with characters Slack does not allow (anything but
    letters, digits, "_" and "-") is only a warning, and the message is posted without its metadata."""
    if raw is None or raw == "":
        return None
    metadata = _json_field(raw, "invalid_metadata_format")
    if not isinstance(metadata, dict):
        raise SlackError("invalid_metadata_format")
    event_type, payload = metadata.get("event_type"), metadata.get("event_payload")
    if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
        raise SlackError("invalid_metadata_schema")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", event_type):
        warnings.append("invalid_metadata_schema")
        return None
    return {"event_type": event_type, "event_payload": payload}


def _with_warnings(body: dict, warnings: list[str]) -> dict:
    if warnings:
        body.update(warning=",".join(warnings), response_metadata={"warnings": warnings})
    return body


# ---------------------------------------------------------------------------------------------- records


@dataclass
class Token:
    """A token the stand-in knows: its kind ("bot" or "app"), scopes and status."""

    value: str
    kind: str = "bot"
    scopes: tuple[str, ...] = DEFAULT_BOT_SCOPES
    status: str = "active"


@dataclass
class Channel:
    """A public or private channel; mutate the flags freely between calls."""

    id: str
    name: str
    is_private: bool = False
    is_archived: bool = False
    bot_is_member: bool = True
    created: int = 1_600_000_000
    is_general: bool = False

    def to_slack(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": self.is_general,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": TEAM_ID,
            "creator": HUMAN_USER_ID,
            "is_ext_shared": False,
            "shared_team_ids": [TEAM_ID],
            "is_member": self.bot_is_member,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "previous_names": [],
        }


@dataclass
class Message:
    """A stored message: top-level, thread parent, or reply (thread_ts set and != ts)."""

    channel: str
    ts: str
    text: str
    user: str
    bot_id: str | None = None
    blocks: list | None = None
    metadata: dict | None = None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    unfurl_links: bool | None = None
    unfurl_media: bool | None = None
    mrkdwn: bool = True
    files: list[dict] = field(default_factory=list)
    replies: list[Message] = field(default_factory=list)
    edited_ts: str | None = None
    tombstone: bool = False

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def reply_count(self) -> int:
        return len(self.replies)

    def to_slack(self, *, include_metadata: bool = True, parent_user: str | None = None) -> dict:
        """The message as Slack returns it; metadata only when the caller asked for it."""
        if self.tombstone:
            data: dict[str, Any] = {
                "type": "message",
                "subtype": "tombstone",
                "text": "This message was deleted.",
                "user": "USLACKBOT",
                "hidden": True,
                "ts": self.ts,
            }
        else:
            data = {"type": "message", "text": self.text, "user": self.user, "ts": self.ts, "team": TEAM_ID}
            if self.bot_id is not None:
                data["bot_id"] = self.bot_id
                data["app_id"] = APP_ID
                data["bot_profile"] = {
                    "id": self.bot_id,
                    "app_id": APP_ID,
                    "name": BOT_NAME,
                    "deleted": False,
                    "team_id": TEAM_ID,
                }
            if self.blocks is not None:
                data["blocks"] = self.blocks
            if self.files:
                data["files"] = self.files
                data["upload"] = True
            if self.edited_ts is not None:
                data["edited"] = {"user": self.user, "ts": self.edited_ts}
            if include_metadata and self.metadata is not None:
                data["metadata"] = self.metadata
        if self.replies:
            data.update(
                thread_ts=self.ts,
                reply_count=len(self.replies),
                reply_users_count=len({reply.user for reply in self.replies}),
                latest_reply=self.replies[-1].ts,
                reply_users=sorted({reply.user for reply in self.replies}),
                is_locked=False,
                subscribed=False,
            )
        if self.is_reply:
            data["thread_ts"] = self.thread_ts
            if parent_user is not None:
                data["parent_user_id"] = parent_user
            if self.reply_broadcast:
                data["subtype"] = "thread_broadcast"
        return data


@dataclass
class Ephemeral:
    """A chat.postEphemeral message, visible only to `user`."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list | None
    thread_ts: str | None


@dataclass
class UploadedFile:
    """A file from files.getUploadURLExternal; `content` fills on upload, `completed` on completeUploadExternal."""

    id: str
    name: str
    length: int
    upload_id: str
    content: bytes | None = None
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False


@dataclass
class ResponsePost:
    """One JSON body POSTed to a response_url (as Bolt's respond() sends it)."""

    url: str
    body: dict
    time: float


@dataclass
class _ResponseUrl:
    url: str
    created: float
    channel: str | None
    user: str | None
    message_ts: str | None
    uses: int = 0


@dataclass
class RequestRecord:
    """One Web API request: method, merged params (token removed), clock time, HTTP status (None if dropped)."""

    method: str
    params: dict
    time: float
    status: int | None
    error: str | None = None


@dataclass
class _Fault:
    kind: int | str
    method: str | None
    remaining: int
    retry_after: int | float | str
    delay: float
    when: Callable[[dict], bool] | None = None
    size: int = 0


@dataclass
class _Call:
    """One authenticated call being answered: its params, token, and the scopes it needed."""

    method: str
    params: dict
    token: Token
    accepted_scopes: list[str] = field(default_factory=list)

    def need(self, *scopes: str) -> None:
        """Require one of `scopes`, answering missing_scope as Slack does."""
        self.accepted_scopes += [scope for scope in scopes if scope not in self.accepted_scopes]
        if not any(scope in self.token.scopes for scope in scopes):
            raise SlackError("missing_scope", needed=",".join(scopes), provided=",".join(self.token.scopes))


@dataclass
class _Answer:
    status: int
    body: bytes
    headers: dict[str, str]
    content_type: str = "application/json; charset=utf-8"
    drop: bool = False
    delay: float = 0.0
    stall: bool = False
    drip: float = 0.0  # seconds between the pieces of a dripped answer


# ---------------------------------------------------------------------------------------------- the server


class SlackStandIn:
    """Slack's Web API on 127.0.0.1 with an OS-chosen port; use as a context manager.

    `clock` gives message timestamps, request times, rate-limit buckets and response_url expiry, so tests can
    step time instead of sleeping.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        bot_token: str = DEFAULT_BOT_TOKEN,
        app_token: str = DEFAULT_APP_TOKEN,
        bot_scopes: Iterable[str] = DEFAULT_BOT_SCOPES,
        socket_mode_url: str | None = None,
    ) -> None:
        self.clock = clock
        self.bot_token = bot_token
        self.app_token = app_token
        self.socket_mode_url = socket_mode_url
        self.requests: list[RequestRecord] = []
        self.rate_limited_count = 0
        self.connection_tickets: list[str] = []
        self._lock = threading.RLock()
        self._posted = threading.Condition(self._lock)
        self._tokens: dict[str, Token] = {}
        self._channels: dict[str, Channel] = {}
        self._messages: dict[str, list[Message]] = {}
        self._ephemerals: list[Ephemeral] = []
        self._home_views: dict[str, dict] = {}
        self._uploads: dict[str, UploadedFile] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._response_posts: list[ResponsePost] = []
        self._faults: list[_Fault] = []
        self.stalled = threading.Event()  # set when a "stall" fault has taken effect and holds its answer
        self._release = threading.Event()
        self._rate: tuple[float, int] | None = None
        self._buckets: dict[str, tuple[float, float]] = {}
        self._last_ts = 0
        self._serial = 0
        self.add_token(bot_token, kind="bot", scopes=bot_scopes)
        self.add_token(app_token, kind="app", scopes=APP_TOKEN_SCOPES)
        self.add_channel("general", channel_id="C0GENERAL", is_general=True)
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/api/"
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> SlackStandIn:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.01,), name="slack-stand-in", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        self._release.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- workspace set-up

    def add_token(
        self, value: str, *, kind: str = "bot", scopes: Iterable[str] | None = None, status: str = "active"
    ) -> Token:
        """Register a token; kind "bot" (xoxb) or "app" (xapp); status one of TOKEN_STATUSES."""
        if kind not in ("bot", "app"):
            raise ValueError(f"token kind must be 'bot' or 'app', not {kind!r}")
        if status not in TOKEN_STATUSES:
            raise ValueError(f"token status must be one of {TOKEN_STATUSES}, not {status!r}")
        default = DEFAULT_BOT_SCOPES if kind == "bot" else APP_TOKEN_SCOPES
        token = Token(value, kind, tuple(default if scopes is None else scopes), status)
        with self._lock:
            self._tokens[value] = token
        return token

    def set_token_status(self, value: str, status: str) -> None:
        """Make a known token "active", "token_revoked" or "account_inactive"."""
        if status not in TOKEN_STATUSES:
            raise ValueError(f"token status must be one of {TOKEN_STATUSES}, not {status!r}")
        with self._lock:
            self._tokens[value].status = status

    def add_channel(
        self,
        name: str,
        *,
        is_private: bool = False,
        is_archived: bool = False,
        bot_is_member: bool = True,
        channel_id: str | None = None,
        is_general: bool = False,
    ) -> Channel:
        with self._lock:
            if channel_id is None:
                self._serial += 1
                channel_id = f"{'G' if is_private else 'C'}{self._serial:08d}"
            channel = Channel(
                channel_id, name.lstrip("#"), is_private, is_archived, bot_is_member, is_general=is_general
            )
            self._channels[channel_id] = channel
            self._messages.setdefault(channel_id, [])
            return channel

    def channel(self, ref: str) -> Channel:
        """A channel by ID, name or #name (KeyError if unknown)."""
        with self._lock:
            found = self._find_channel(ref, allow_names=True)
        if found is None:
            raise KeyError(ref)
        return found

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str = HUMAN_USER_ID,
        thread_ts: str | None = None,
        blocks: list | None = None,
        metadata: dict | None = None,
    ) -> Message:
        """A message posted by someone else (a person, by default), to make channel history realistic."""
        with self._lock:
            target = self.channel(channel)
            parent = self._thread_parent(target.id, thread_ts) if thread_ts else None
            return self._store(
                target.id, text=text, user=user, bot_id=None, blocks=blocks, metadata=metadata, parent=parent
            )

    # -- misbehaviour

    def inject(
        self,
        fault: int | str,
        method: str | None = None,
        times: int = 1,
        *,
        retry_after: int | float | str = 1,
        delay: float = 0.5,
        when: Callable[[dict], bool] | None = None,
        size: int = 0,
    ) -> None:
        """Make the next `times` matching calls (any method when None) misbehave, in injection order.

        fault: 429 or "ratelimited" (HTTP 429 with Retry-After: retry_after, sent as given, so "1.5" or
        "abc" too), an HTTP 5xx status (an HTML error page from the edge), "accept_then_drop" (the call takes
        effect, then the connection closes without an answer), "slow" (the call takes effect, the answer
        comes `delay` seconds late), "stall" (the call takes effect, `stalled` is set, and the answer waits
        until `release_stalled()` or the stand-in closes: a client can be killed at exactly that point), "drip"
        (the call takes effect, then the whole answer, status line, headers and body, goes out 8 bytes every
        `delay` seconds), "oversize" (the call takes effect, and its JSON answer is padded with whitespace to
        `size` bytes, Content-Length and all, as a huge conversations.history would be), or any other string:
        that Slack error code, answered with HTTP 200 and ok=false and no effect.
        `when` narrows the calls that match to those whose parameters it accepts (e.g. thread replies).
        method=RESPONSE_URL aims "slow" or "drip" at the replies POSTed to response URLs (the reply is kept,
        its "ok" answer is late or dripped); a fault without a method never touches those replies.
        """
        if isinstance(fault, int) and fault != 429 and not 500 <= fault <= 599:
            raise ValueError(f"HTTP faults are 429 or 5xx, not {fault}")
        with self._lock:
            if fault == "stall":
                self.stalled.clear()
                self._release.clear()
            self._faults.append(_Fault(fault, method, times, retry_after, delay, when, size))

    def release_stalled(self) -> None:
        """Let every stalled answer go out (to a client that may have long given up)."""
        self._release.set()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def set_post_rate_limit(self, per_second: float | None = 1.0, *, burst: int = 3) -> None:
        """Limit chat.postMessage per channel like Slack (about 1/s with a small burst); None turns it off."""
        with self._lock:
            self._rate = None if per_second is None else (per_second, burst)
            self._buckets.clear()

    # -- views for assertions

    def calls(self, method: str | None = None) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests if method is None or r.method == method]

    def messages(self, channel: str, *, include_replies: bool = True) -> list[Message]:
        """The channel's messages in ts order: top-level ones and, unless told otherwise, thread replies."""
        with self._lock:
            target = self.channel(channel)
            stored = self._messages[target.id]
            if include_replies:
                return sorted(stored, key=lambda m: ts_to_micros(m.ts))
            return [m for m in stored if not m.is_reply]

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            found = self._find_message(self.channel(channel).id, ts)
        if found is None:
            raise KeyError(ts)
        return found

    def posts_with_metadata(self, event_type: str, channel: str | None = None) -> list[Message]:
        """Every stored message whose metadata has this event_type, in ts order."""
        with self._lock:
            ids = [self.channel(channel).id] if channel else list(self._messages)
            found = [
                m
                for cid in ids
                for m in self._messages[cid]
                if m.metadata and m.metadata["event_type"] == event_type and not m.tombstone
            ]
        return sorted(found, key=lambda m: ts_to_micros(m.ts))

    def ephemerals(self, user: str | None = None) -> list[Ephemeral]:
        with self._lock:
            return [e for e in self._ephemerals if user is None or e.user == user]

    def home_view(self, user_id: str) -> dict | None:
        with self._lock:
            return self._home_views.get(user_id)

    def files(self) -> list[UploadedFile]:
        """Files whose upload was completed (shared or not), in upload order."""
        with self._lock:
            return [f for f in self._uploads.values() if f.completed]

    # -- response_url endpoints

    def new_response_url(
        self, *, channel: str | None = None, user: str | None = None, message_ts: str | None = None
    ) -> str:
        """Mint a response_url served here. With `channel`, in_channel replies and replace/delete_original
        act on that channel (and on `message_ts`, the message a button was on); ephemeral replies are kept
        for `user`."""
        with self._lock:
            self._serial += 1
            channel_id = self.channel(channel).id if channel else None
            url = f"{self.url}/commands/{TEAM_ID}/{self._serial}/{uuid.uuid4().hex}"
            self._response_urls[urlsplit(url).path] = _ResponseUrl(url, self.clock(), channel_id, user, message_ts)
            return url

    def response_posts(self, url: str | None = None) -> list[ResponsePost]:
        with self._lock:
            return [p for p in self._response_posts if url is None or p.url == url]

    def wait_for_response_posts(
        self, count: int, *, url: str | None = None, timeout: float = 5.0
    ) -> list[ResponsePost]:
        """Block until `count` posts arrived (at `url`, or anywhere), or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._posted:
            while len(self.response_posts(url)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self.response_posts(url))} of {count} response_url posts arrived")
                self._posted.wait(remaining)
            return self.response_posts(url)

    # ------------------------------------------------------------------------------------------ internals

    def _next_ts(self) -> str:
        micros = int(round(self.clock() * 1_000_000))
        self._last_ts = max(micros, self._last_ts + 1)
        return micros_to_ts(self._last_ts)

    def _find_channel(self, ref: str, *, allow_names: bool) -> Channel | None:
        if ref in self._channels:
            return self._channels[ref]
        if not allow_names:
            return None
        name = ref.lstrip("#")
        return next((c for c in self._channels.values() if c.name == name), None)

    def _find_message(self, channel_id: str, ts: str) -> Message | None:
        return next((m for m in self._messages.get(channel_id, []) if m.ts == ts), None)

    def _thread_parent(self, channel_id: str, thread_ts: str) -> Message:
        parent = self._find_message(channel_id, thread_ts)
        if parent is None:
            raise SlackError("thread_not_found")
        if parent.is_reply:  # Slack files a reply-to-a-reply under the thread's parent
            parent = self._find_message(channel_id, parent.thread_ts or "") or parent
        return parent

    def _store(
        self,
        channel_id: str,
        *,
        text: str,
        user: str,
        bot_id: str | None,
        blocks: list | None,
        metadata: dict | None,
        parent: Message | None,
        **options: Any,
    ) -> Message:
        ts = self._next_ts()
        message = Message(
            channel_id, ts, text, user, bot_id, blocks, metadata, thread_ts=parent.ts if parent else None, **options
        )
        self._messages[channel_id].append(message)
        if parent is not None:
            parent.replies.append(message)
        return message

    def _channel_for_reading(self, call: _Call) -> Channel:
        channel = self._find_channel(_text(call.params.get("channel")), allow_names=False)
        if channel is None or (channel.is_private and not channel.bot_is_member):
            raise SlackError("channel_not_found")
        return channel

    def _channel_for_writing(self, call: _Call, *, allow_names: bool) -> Channel:
        channel = self._find_channel(_text(call.params.get("channel")), allow_names=allow_names)
        if channel is None or (channel.is_private and not channel.bot_is_member):
            raise SlackError("channel_not_found")
        if channel.is_archived:
            raise SlackError("is_archived")
        if not channel.bot_is_member and "chat:write.public" not in call.token.scopes:
            raise SlackError("not_in_channel")
        return channel

    def _history_scope(self, call: _Call, channel: Channel) -> None:
        if channel.id.startswith("D"):  # a direct message, as conversations.open makes them
            call.need("im:history")
            return
        call.need("groups:history" if channel.is_private else "channels:history")

    def _take_fault(self, method: str, params: dict) -> _Fault | None:
        for fault in self._faults:
            if fault.method in (None, method) and fault.remaining > 0 and (fault.when is None or fault.when(params)):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _over_rate_limit(self, channel_id: str) -> int | None:
        """Seconds to wait if this post exceeds the channel's bucket, else None (and a token is spent)."""
        if self._rate is None:
            return None
        per_second, burst = self._rate
        now = self.clock()
        tokens, last = self._buckets.get(channel_id, (float(burst), now))
        tokens = min(float(burst), tokens + (now - last) * per_second)
        if tokens < 1.0:
            self._buckets[channel_id] = (tokens, now)
            return max(1, int(-(-(1.0 - tokens) // per_second)))
        self._buckets[channel_id] = (tokens - 1.0, now)
        return None

    # -- request handling (called from server threads)

    def _answer_api(self, method: str, params: dict, bearer: str | None) -> _Answer:
        form_token = params.pop("token", None)
        token_value = bearer or (_text(form_token) if form_token else None)
        with self._lock:
            fault = self._take_fault(method, params)
            answer = self._answer_fault(fault) if fault is not None else None
            if answer is None:
                answer = self._answer_method(method, params, token_value)
                if fault is not None and fault.kind == "accept_then_drop":
                    answer.drop = True
                elif fault is not None and fault.kind == "slow":
                    answer.delay = fault.delay
                elif fault is not None and fault.kind == "stall":
                    answer.stall = True
                elif fault is not None and fault.kind == "drip":
                    answer.drip = fault.delay
                elif fault is not None and fault.kind == "oversize":
                    padding = b" " * max(0, fault.size - len(answer.body))
                    answer.body = answer.body[:-1] + padding + answer.body[-1:]
            error = None
            if answer.content_type.startswith("application/json") and not answer.drop:
                error = json.loads(answer.body).get("error")
            self.requests.append(
                RequestRecord(method, dict(params), self.clock(), None if answer.drop else answer.status, error)
            )
        return answer

    def _answer_fault(self, fault: _Fault) -> _Answer | None:
        if fault.kind in (429, "ratelimited"):
            return _json_answer(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(fault.retry_after)}
            )
        if isinstance(fault.kind, int):
            page = f"<html><body><h1>{fault.kind} Server Error</h1></body></html>".encode()
            return _Answer(fault.kind, page, {}, content_type="text/html; charset=utf-8")
        if fault.kind in ("accept_then_drop", "slow", "stall", "drip", "oversize"):
            return None
        return _json_answer({"ok": False, "error": fault.kind})

    def _answer_method(self, method: str, params: dict, token_value: str | None) -> _Answer:
        if method == "files.upload":
            return _json_answer({"ok": False, "error": "method_deprecated"})
        entry = _METHODS.get(method)
        if entry is None:
            return _json_answer({"ok": False, "error": "unknown_method", "req_method": method})
        handler, token_kind = entry
        if not token_value:
            return _json_answer({"ok": False, "error": "not_authed"})
        token = self._tokens.get(token_value)
        if token is None:
            return _json_answer({"ok": False, "error": "invalid_auth"})
        if token.status != "active":
            return _json_answer({"ok": False, "error": token.status})
        call = _Call(method, params, token)
        headers = {"X-OAuth-Scopes": ",".join(token.scopes)}
        try:
            if token.kind != token_kind:
                raise SlackError("not_allowed_token_type")
            body = {"ok": True, **handler(self, call)}
        except _RateLimited as limited:
            self.rate_limited_count += 1
            headers["Retry-After"] = str(limited.seconds)
            return _json_answer({"ok": False, "error": "ratelimited"}, status=429, headers=headers)
        except SlackError as error:
            body = {"ok": False, "error": error.code, **error.extra}
        headers["X-Accepted-OAuth-Scopes"] = ",".join(call.accepted_scopes)
        return _json_answer(body, headers=headers)

    def _answer_upload(self, upload_id: str, body: bytes) -> _Answer:
        with self._lock:
            upload = next((u for u in self._uploads.values() if u.upload_id == upload_id), None)
            if upload is None:
                return _Answer(404, b"invalid upload url", {}, content_type="text/plain; charset=utf-8")
            upload.content = body
        return _Answer(200, f"OK - {len(body)}".encode(), {}, content_type="text/plain; charset=utf-8")

    def _answer_response_url(self, path: str, body: bytes) -> _Answer:
        fault = None
        with self._posted:
            endpoint = self._response_urls.get(path)
            if endpoint is None or self.clock() - endpoint.created > RESPONSE_URL_LIFETIME:
                return _Answer(404, b"expired_url", {}, content_type="text/html")
            if endpoint.uses >= RESPONSE_URL_USES:
                return _Answer(404, b"used_url", {}, content_type="text/html")
            try:
                reply = json.loads(body or b"{}")
            except json.JSONDecodeError:
                return _Answer(400, b"invalid_payload", {}, content_type="text/html")
            if not isinstance(reply, dict):
                return _Answer(400, b"invalid_payload", {}, content_type="text/html")
            try:
                self._apply_response(endpoint, reply)
            except SlackError as error:
                return _Answer(400, error.code.encode(), {}, content_type="text/html")
            endpoint.uses += 1
            self._response_posts.append(ResponsePost(endpoint.url, reply, self.clock()))
            self._posted.notify_all()
            fault = next((f for f in self._faults if f.method == RESPONSE_URL and f.kind in ("slow", "drip")), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
        answer = _Answer(200, b"ok", {}, content_type="text/html")
        if fault is not None and fault.kind == "slow":
            answer.delay = fault.delay
        elif fault is not None:
            answer.drip = fault.delay
        return answer

    def _apply_response(self, endpoint: _ResponseUrl, reply: dict) -> None:
        blocks = _checked_blocks(reply.get("blocks"))
        text = _text(reply.get("text"))
        if endpoint.channel is None:
            return
        target = self._find_message(endpoint.channel, endpoint.message_ts or "")
        if _flag(reply.get("delete_original")) and target is not None:
            self._delete(target)
        elif _flag(reply.get("replace_original")) and target is not None:
            target.text, target.blocks, target.edited_ts = text, blocks, self._next_ts()
        elif reply.get("response_type") == "in_channel":
            parent = self._thread_parent(endpoint.channel, reply["thread_ts"]) if reply.get("thread_ts") else None
            self._store(
                endpoint.channel,
                text=text,
                user=BOT_USER_ID,
                bot_id=BOT_ID,
                blocks=blocks,
                metadata=_checked_metadata(reply.get("metadata"), []),
                parent=parent,
            )
        elif endpoint.user is not None:
            self._ephemerals.append(
                Ephemeral(endpoint.channel, endpoint.user, self._next_ts(), text, blocks, reply.get("thread_ts"))
            )

    def _delete(self, message: Message) -> None:
        stored = self._messages[message.channel]
        if message.is_reply:
            parent = self._find_message(message.channel, message.thread_ts or "")
            if parent is not None:
                parent.replies.remove(message)
                if parent.tombstone and not parent.replies:
                    stored.remove(parent)
            stored.remove(message)
        elif message.replies:
            message.tombstone = True  # Slack keeps a deleted thread parent as a tombstone
        else:
            stored.remove(message)


class _RateLimited(Exception):
    def __init__(self, seconds: int) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def _json_answer(body: dict, *, status: int = 200, headers: dict[str, str] | None = None) -> _Answer:
    return _Answer(status, json.dumps(body).encode(), dict(headers or {}))


# ---------------------------------------------------------------------------------------------- methods


def _auth_test(stand_in: SlackStandIn, call: _Call) -> dict:
    return {
        "url": f"https://{TEAM_DOMAIN}.slack.com/",
        "team": TEAM_NAME,
        "user": BOT_NAME,
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


def _message_content(call: _Call, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> tuple[str, list | None]:
    params = call.params
    text = _text(params.get("text"))
    blocks = _checked_blocks(params.get("blocks"), max_blocks=max_blocks)
    if not text and not blocks and not params.get("attachments"):
        raise SlackError("no_text")
    if len(text) > MAX_MESSAGE_TEXT:
        raise SlackError("msg_too_long")
    return text, blocks


def _chat_post_message(stand_in: SlackStandIn, call: _Call) -> dict:
    call.need("chat:write")
    channel = stand_in._channel_for_writing(call, allow_names=True)
    text, blocks = _message_content(call)
    warnings: list[str] = []
    metadata = _checked_metadata(call.params.get("metadata"), warnings)
    thread_ts = _text(call.params.get("thread_ts"))
    parent = stand_in._thread_parent(channel.id, thread_ts) if thread_ts else None
    wait = stand_in._over_rate_limit(channel.id)
    if wait is not None:
        raise _RateLimited(wait)
    options = {
        "mrkdwn": _flag(call.params.get("mrkdwn", True)),
        "reply_broadcast": parent is not None and _flag(call.params.get("reply_broadcast")),
    }
    for name in ("unfurl_links", "unfurl_media"):
        if name in call.params:
            options[name] = _flag(call.params[name])
    message = stand_in._store(
        channel.id,
        text=text,
        user=BOT_USER_ID,
        bot_id=BOT_ID,
        blocks=blocks,
        metadata=metadata,
        parent=parent,
        **options,
    )
    return _with_warnings(
        {
            "channel": channel.id,
            "ts": message.ts,
            "message": message.to_slack(parent_user=parent.user if parent else None),
        },
        warnings,
    )


def _own_message(stand_in: SlackStandIn, call: _Call, ts_param: str, refusal: str) -> tuple[Channel, Message]:
    call.need("chat:write")
    channel = stand_in._channel_for_writing(call, allow_names=False)
    message = stand_in._find_message(channel.id, _text(call.params.get(ts_param)))
    if message is None or message.tombstone:
        raise SlackError("message_not_found")
    if message.bot_id != BOT_ID:
        raise SlackError(refusal)
    return channel, message


def _chat_update(stand_in: SlackStandIn, call: _Call) -> dict:
    channel, message = _own_message(stand_in, call, "ts", "cant_update_message")
    text, blocks = _message_content(call)
    warnings: list[str] = []
    metadata = _checked_metadata(call.params.get("metadata"), warnings)
    message.text, message.blocks, message.edited_ts = text, blocks, stand_in._next_ts()
    if metadata is not None:
        message.metadata = metadata
    return _with_warnings(
        {"channel": channel.id, "ts": message.ts, "text": text, "message": message.to_slack()}, warnings
    )


def _chat_delete(stand_in: SlackStandIn, call: _Call) -> dict:
    channel, message = _own_message(stand_in, call, "ts", "cant_delete_message")
    stand_in._delete(message)
    return {"channel": channel.id, "ts": message.ts}


def _chat_post_ephemeral(stand_in: SlackStandIn, call: _Call) -> dict:
    call.need("chat:write")
    channel = stand_in._channel_for_writing(call, allow_names=True)
    user = _text(call.params.get("user"))
    if not re.fullmatch(r"[UW][A-Z0-9]{2,}", user):
        raise SlackError("user_not_found")
    text, blocks = _message_content(call)
    ts = stand_in._next_ts()
    stand_in._ephemerals.append(
        Ephemeral(channel.id, user, ts, text, blocks, _text(call.params.get("thread_ts")) or None)
    )
    return {"message_ts": ts}


def _chat_get_permalink(stand_in: SlackStandIn, call: _Call) -> dict:
    channel = stand_in._channel_for_reading(call)
    message = stand_in._find_message(channel.id, _text(call.params.get("message_ts")))
    if message is None:
        raise SlackError("message_not_found")
    link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel.id}/p{message.ts.replace('.', '')}"
    if message.is_reply:
        link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
    return {"channel": channel.id, "permalink": link}


def _time_bounds(params: dict) -> tuple[int, int, bool]:
    try:
        oldest = ts_to_micros(_text(params.get("oldest")) or "0")
    except ValueError as error:
        raise SlackError("invalid_ts_oldest") from error
    try:
        latest = ts_to_micros(_text(params["latest"])) if params.get("latest") else None
    except ValueError as error:
        raise SlackError("invalid_ts_latest") from error
    # Slack's "latest" defaults to now; no stored ts can be later than now, so "no upper bound" is the same.
    return oldest, latest if latest is not None else 2**63, _flag(params.get("inclusive"))


def _within(ts: str, oldest: int, latest: int, inclusive: bool) -> bool:
    micros = ts_to_micros(ts)
    if inclusive:
        return oldest <= micros <= latest
    return oldest < micros < latest


def _conversations_history(stand_in: SlackStandIn, call: _Call) -> dict:
    channel = stand_in._channel_for_reading(call)
    stand_in._history_scope(call, channel)
    if not channel.bot_is_member:
        raise SlackError("not_in_channel")
    params = call.params
    limit = _limit(params.get("limit"), 100, 999)
    oldest, latest, inclusive = _time_bounds(params)
    visible = [m for m in stand_in._messages[channel.id] if not m.is_reply or m.reply_broadcast]
    visible = [m for m in visible if _within(m.ts, oldest, latest, inclusive)]
    visible.sort(key=lambda m: ts_to_micros(m.ts), reverse=True)
    if params.get("cursor"):
        next_ts = _next_ts_cursor(_text(params["cursor"]))
        visible = [m for m in visible if ts_to_micros(m.ts) <= next_ts]
    page, rest = visible[:limit], visible[limit:]
    with_metadata = _flag(params.get("include_all_metadata"))
    body: dict[str, Any] = {
        "messages": [_history_entry(stand_in, m, with_metadata) for m in page],
        "has_more": bool(rest),
        "pin_count": 0,
        "channel_actions_ts": None,
        "channel_actions_count": 0,
    }
    if params.get("latest"):
        body["latest"] = _text(params["latest"])
    if rest:
        body["response_metadata"] = {"next_cursor": _encode_cursor("next_ts", str(ts_to_micros(rest[0].ts)))}
    return body


def _history_entry(stand_in: SlackStandIn, message: Message, with_metadata: bool) -> dict:
    parent_user = None
    if message.is_reply:
        parent = stand_in._find_message(message.channel, message.thread_ts or "")
        parent_user = parent.user if parent else None
    return message.to_slack(include_metadata=with_metadata, parent_user=parent_user)


def _conversations_replies(stand_in: SlackStandIn, call: _Call) -> dict:
    channel = stand_in._channel_for_reading(call)
    stand_in._history_scope(call, channel)
    if not channel.bot_is_member:
        raise SlackError("not_in_channel")
    params = call.params
    parent = stand_in._find_message(channel.id, _text(params.get("ts")))
    if parent is None:
        raise SlackError("thread_not_found")
    if parent.is_reply:
        parent = stand_in._find_message(channel.id, parent.thread_ts or "") or parent
    limit = _limit(params.get("limit"), 1000, 1000)
    oldest, latest, inclusive = _time_bounds(params)
    replies = [r for r in parent.replies if _within(r.ts, oldest, latest, inclusive)]
    if params.get("cursor"):
        next_ts = _next_ts_cursor(_text(params["cursor"]))
        replies = [r for r in replies if ts_to_micros(r.ts) >= next_ts]
    page, rest = replies[:limit], replies[limit:]
    with_metadata = _flag(params.get("include_all_metadata"))
    # Like Slack, every page starts with the thread's parent.
    messages = [parent.to_slack(include_metadata=with_metadata)]
    messages += [r.to_slack(include_metadata=with_metadata, parent_user=parent.user) for r in page]
    body: dict[str, Any] = {"messages": messages, "has_more": bool(rest)}
    if rest:
        body["response_metadata"] = {"next_cursor": _encode_cursor("next_ts", str(ts_to_micros(rest[0].ts)))}
    return body


def _conversations_join(stand_in: SlackStandIn, call: _Call) -> dict:
    call.need("channels:join")
    channel = stand_in._find_channel(_text(call.params.get("channel")), allow_names=False)
    if channel is None or (channel.is_private and not channel.bot_is_member):
        raise SlackError("channel_not_found")
    if channel.is_archived:
        raise SlackError("is_archived")
    if channel.is_private:
        raise SlackError("method_not_supported_for_channel_type")
    body: dict[str, Any] = {}
    if channel.bot_is_member:
        body = {"warning": "already_in_channel", "response_metadata": {"warnings": ["already_in_channel"]}}
    channel.bot_is_member = True
    return {"channel": channel.to_slack(), **body}


def _conversations_info(stand_in: SlackStandIn, call: _Call) -> dict:
    channel = stand_in._channel_for_reading(call)
    call.need("groups:read" if channel.is_private else "channels:read")
    return {"channel": channel.to_slack()}


def _conversations_list(stand_in: SlackStandIn, call: _Call) -> dict:
    params = call.params
    types = [t.strip() for t in _text(params.get("types") or "public_channel").split(",") if t.strip()]
    unknown = [t for t in types if t not in ("public_channel", "private_channel", "im", "mpim")]
    if unknown:
        raise SlackError("invalid_types")
    if "public_channel" in types:
        call.need("channels:read")
    if "private_channel" in types:
        call.need("groups:read")
    limit = _limit(params.get("limit"), 100, 1000)
    listed = [
        c
        for c in stand_in._channels.values()
        if (
            ("private_channel" in types and c.is_private and c.bot_is_member)
            or ("public_channel" in types and not c.is_private)
        )
        and not (_flag(params.get("exclude_archived")) and c.is_archived)
    ]
    listed.sort(key=lambda c: c.id)
    if params.get("cursor"):
        start = _decode_cursor("team", _text(params["cursor"]))
        listed = [c for c in listed if c.id >= start]
    page, rest = listed[:limit], listed[limit:]
    return {
        "channels": [{**c.to_slack(), "num_members": 1} for c in page],
        "response_metadata": {"next_cursor": _encode_cursor("team", rest[0].id) if rest else ""},
    }


def _views_publish(stand_in: SlackStandIn, call: _Call) -> dict:
    params = call.params
    user_id = _text(params.get("user_id"))
    if not re.fullmatch(r"[UW][A-Z0-9]{2,}", user_id):
        raise SlackError("invalid_arguments")
    view = _json_field(params.get("view"), "invalid_arguments")
    if not isinstance(view, dict) or view.get("type") != "home":
        raise SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] must be a home view"]})
    blocks = _checked_blocks(view.get("blocks", []), max_blocks=MAX_VIEW_BLOCKS) or []
    current = stand_in._home_views.get(user_id)
    if params.get("hash") and current is not None and params["hash"] != current["hash"]:
        raise SlackError("hash_conflict")
    stand_in._serial += 1
    stored = {
        **view,
        "id": current["id"] if current else f"V{stand_in._serial:08d}",
        "team_id": TEAM_ID,
        "blocks": blocks,
        "hash": f"{int(stand_in.clock())}.{uuid.uuid4().hex[:8]}",
        "app_id": APP_ID,
        "bot_id": BOT_ID,
    }
    stand_in._home_views[user_id] = stored
    return {"view": stored}


def _files_get_upload_url(stand_in: SlackStandIn, call: _Call) -> dict:
    call.need("files:write")
    filename = _text(call.params.get("filename"))
    try:
        length = int(call.params.get("length"))
    except (TypeError, ValueError):
        length = 0
    if not filename or length < 1:
        raise SlackError("invalid_arguments")
    stand_in._serial += 1
    file_id = f"F{stand_in._serial:08d}"
    upload_id = uuid.uuid4().hex
    stand_in._uploads[file_id] = UploadedFile(file_id, filename, length, upload_id)
    return {"upload_url": f"{stand_in.url}/upload/v1/{upload_id}", "file_id": file_id}


def _files_complete_upload(stand_in: SlackStandIn, call: _Call) -> dict:
    call.need("files:write")
    params = call.params
    entries = _json_field(params.get("files"), "invalid_arguments")
    if not isinstance(entries, list) or not entries:
        raise SlackError("invalid_arguments")
    uploads = []
    for entry in entries:
        upload = stand_in._uploads.get(entry.get("id")) if isinstance(entry, dict) else None
        if upload is None or upload.content is None or upload.completed:
            raise SlackError("file_not_found")
        uploads.append((upload, entry))
    channel_ids = [c for c in _text(params.get("channels")).split(",") if c]
    if params.get("channel_id"):
        channel_ids.insert(0, _text(params["channel_id"]))
    thread_ts = _text(params.get("thread_ts")) or None
    comment = _text(params.get("initial_comment")) or None
    shares = []
    for channel_id in channel_ids:
        channel = stand_in._channel_for_writing(
            _Call(call.method, {"channel": channel_id}, call.token), allow_names=False
        )
        parent = stand_in._thread_parent(channel.id, thread_ts) if thread_ts else None
        shares.append((channel, parent))
    for upload, entry in uploads:
        upload.title = _text(entry.get("title")) or upload.name
        upload.completed = True
        upload.initial_comment = comment
        upload.thread_ts = thread_ts
        upload.channel = shares[0][0].id if shares else None
    for channel, parent in shares:
        # Sharing shows up in the channel as a message from the bot carrying the files.
        file_objects = [
            {"id": u.id, "name": u.name, "title": u.title, "size": len(u.content or b""), "user": BOT_USER_ID}
            for u, _ in uploads
        ]
        stand_in._store(
            channel.id,
            text=comment or "",
            user=BOT_USER_ID,
            bot_id=None,
            blocks=None,
            metadata=None,
            parent=parent,
            files=file_objects,
        )
    return {"files": [{"id": u.id, "title": u.title} for u, _ in uploads]}


def _apps_connections_open(stand_in: SlackStandIn, call: _Call) -> dict:
    call.need("connections:write")
    if stand_in.socket_mode_url is None:
        raise SlackError("socket_mode_not_enabled")
    ticket = uuid.uuid4().hex
    stand_in.connection_tickets.append(ticket)
    separator = "&" if "?" in stand_in.socket_mode_url else "?"
    return {"url": f"{stand_in.socket_mode_url}{separator}ticket={ticket}&app_id={APP_ID}"}


# ---- direct messages: conversations.open gives the bot a DM channel with a person -----------------


def _conversations_open(stand_in: SlackStandIn, call: _Call) -> dict:
    """conversations.open with ``users``: the same D… channel for the same person every time."""
    call.need("im:write")
    users = [u for u in _text(call.params.get("users")).split(",") if u]
    if not users:
        raise SlackError("users_list_not_supplied")
    if len(users) > 1 or not re.fullmatch(r"[UW][A-Z0-9]{2,}", users[0]):
        raise SlackError("user_not_found")
    channel_id = "D" + users[0][1:]
    with stand_in._lock:
        if channel_id not in stand_in._channels:
            stand_in.add_channel(f"dm-{users[0]}", channel_id=channel_id, is_private=True)
        channel = stand_in._channels[channel_id]
    return {"channel": {**channel.to_slack(), "is_channel": False, "is_im": True, "user": users[0]}}


_METHODS: dict[str, tuple[Callable[[SlackStandIn, _Call], dict], str]] = {
    "auth.test": (_auth_test, "bot"),
    "chat.postMessage": (_chat_post_message, "bot"),
    "chat.update": (_chat_update, "bot"),
    "chat.delete": (_chat_delete, "bot"),
    "chat.postEphemeral": (_chat_post_ephemeral, "bot"),
    "chat.getPermalink": (_chat_get_permalink, "bot"),
    "conversations.history": (_conversations_history, "bot"),
    "conversations.replies": (_conversations_replies, "bot"),
    "conversations.join": (_conversations_join, "bot"),
    "conversations.info": (_conversations_info, "bot"),
    "conversations.list": (_conversations_list, "bot"),
    "conversations.open": (_conversations_open, "bot"),
    "views.publish": (_views_publish, "bot"),
    "files.getUploadURLExternal": (_files_get_upload_url, "bot"),
    "files.completeUploadExternal": (_files_complete_upload, "bot"),
    "apps.connections.open": (_apps_connections_open, "app"),
}


# ---------------------------------------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or was dropped on purpose is expected here; anything else is a stand-in bug.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _parse_params(content_type: str, body: bytes, query: str) -> dict:
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if not body:
        return params
    if content_type.startswith("application/json"):
        data = json.loads(body)
        if isinstance(data, dict):
            data.pop("token", None)  # Slack takes a JSON body's token only from the Authorization header
            params.update(data)
    else:
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return params


def _handler_for(stand_in: SlackStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "SlackStandIn/1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
            pass

        def do_GET(self) -> None:
            self._route()

        def do_POST(self) -> None:
            self._route()

        def _route(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            if parts.path.startswith("/api/"):
                answer = self._api(parts.path[len("/api/") :], body, parts.query)
            elif parts.path.startswith("/upload/v1/"):
                answer = stand_in._answer_upload(parts.path[len("/upload/v1/") :], body)
            elif parts.path.startswith("/commands/"):
                answer = stand_in._answer_response_url(parts.path, body)
            else:
                answer = _Answer(404, b"not found", {}, content_type="text/plain")
            if answer.drop:
                self.close_connection = True
                return
            if answer.stall:
                stand_in.stalled.set()
                stand_in._release.wait()
            if answer.delay:
                time.sleep(answer.delay)
            if answer.drip:
                self._drip(answer)
                return
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)

        def _drip(self, answer: _Answer) -> None:
            """The whole answer as Slack would send it, 8 bytes at a time: a client's read timeout never fires."""
            head = [f"HTTP/1.1 {answer.status} {self.responses[answer.status][0]}", f"Date: {self.date_time_string()}"]
            head += [f"Content-Type: {answer.content_type}", f"Content-Length: {len(answer.body)}"]
            head += [f"{name}: {value}" for name, value in answer.headers.items()]
            raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + answer.body
            self.close_connection = True
            try:
                for start in range(0, len(raw), 8):
                    self.wfile.write(raw[start : start + 8])
                    self.wfile.flush()
                    time.sleep(answer.drip)
            except OSError:
                pass  # the client gave up, as it should

        def _api(self, method: str, body: bytes, query: str) -> _Answer:
            try:
                params = _parse_params(self.headers.get("Content-Type", ""), body, query)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return _json_answer({"ok": False, "error": "invalid_json"})
            authorization = self.headers.get("Authorization", "")
            bearer = authorization[len("Bearer ") :].strip() if authorization.startswith("Bearer ") else None
            return stand_in._answer_api(method, params, bearer)

    return Handler
