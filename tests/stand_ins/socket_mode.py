"""A stand-in for Slack's Socket Mode: a WebSocket server on 127.0.0.1 that sends envelopes and reads acks.

slack_sdk's builtin Socket Mode client (under Bolt's SocketModeHandler) connects to it unchanged: it gets the
URL from apps.connections.open on the Web API stand-in (give that stand-in this one's `url`), receives the
hello Slack sends, then slash commands, button clicks and events, and must acknowledge each envelope on the
socket. The stand-in measures how long each ack took and can ask the client to reconnect, as Slack does.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from .slack_api import APP_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID

ENVELOPE_KINDS = ("slash_commands", "interactive", "events_api")
# Slack lets the app put a reply in the ack of these kinds only.
ACCEPTS_RESPONSE_PAYLOAD = {"slash_commands": True, "interactive": False, "events_api": False}


@dataclass
class Ack:
    """An envelope's acknowledgement: the JSON the client sent, its optional payload, and the time it took."""

    envelope_id: str
    message: dict
    payload: dict | None
    seconds: float


@dataclass
class SocketConnection:
    """One WebSocket connection from a client: its URL query (ticket, app_id) and what it sent."""

    number: int
    path: str
    query: dict[str, str]
    opened_at: float
    closed_at: float | None = None
    received: list[dict] = field(default_factory=list)
    websocket: ServerConnection | None = field(default=None, repr=False)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class SocketModeStandIn:
    """Slack's Socket Mode endpoint on 127.0.0.1 with an OS-chosen port; use as a context manager."""

    def __init__(self, *, app_id: str = APP_ID, host_name: str = "applink-stand-in-0") -> None:
        self.app_id = app_id
        self.host_name = host_name
        self.connections: list[SocketConnection] = []
        self._acks: dict[str, Ack] = {}
        self._sent_at: dict[str, float] = {}
        self._changed = threading.Condition()
        self._numbers = itertools.count(1)
        self._server = serve(self._serve_connection, "127.0.0.1", 0, compression=None, close_timeout=1)
        self.port = self._server.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/link/"
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> SocketModeStandIn:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="socket-mode-stand-in", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is None:
            self._server.socket.close()
            return
        self._server.shutdown()
        self._thread.join()
        self._thread = None

    def __enter__(self) -> SocketModeStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what tests drive

    def open_connections(self) -> list[SocketConnection]:
        with self._changed:
            return [c for c in self.connections if c.is_open]

    def wait_for_connections(self, count: int, *, timeout: float = 5.0) -> list[SocketConnection]:
        """Block until `count` connections have ever been opened (reconnects count), or raise TimeoutError."""
        self._wait(
            lambda: len(self.connections) >= count,
            timeout,
            lambda: f"{len(self.connections)} of {count} connections opened",
        )
        return list(self.connections)

    def wait_for_close(self, connection: SocketConnection, *, timeout: float = 5.0) -> None:
        """Block until the client has dropped `connection`, or raise TimeoutError."""
        self._wait(lambda: not connection.is_open, timeout, lambda: f"connection {connection.number} still open")

    def send_envelope(
        self,
        kind: str,
        payload: dict,
        accepts_response_payload: bool | None = None,
        *,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
    ) -> str:
        """Send an envelope of `kind` ("slash_commands", "interactive", "events_api") on the newest open
        connection, as Slack does; return its envelope_id."""
        if kind not in ENVELOPE_KINDS:
            raise ValueError(f"envelope kind must be one of {ENVELOPE_KINDS}, not {kind!r}")
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": (
                ACCEPTS_RESPONSE_PAYLOAD[kind] if accepts_response_payload is None else accepts_response_payload
            ),
        }
        if kind == "events_api":
            envelope["retry_attempt"] = retry_attempt or 0
            envelope["retry_reason"] = retry_reason or ""
        connection = self._newest_open()
        with self._changed:
            self._sent_at[envelope_id] = time.monotonic()
        assert connection.websocket is not None
        connection.websocket.send(json.dumps(envelope))
        return envelope_id

    def wait_for_ack(self, envelope_id: str, timeout: float = 3.0) -> Ack:
        """The ack for this envelope once it arrives; TimeoutError if none within `timeout` seconds."""
        self._wait(lambda: envelope_id in self._acks, timeout, lambda: f"no ack for envelope {envelope_id}")
        with self._changed:
            return self._acks[envelope_id]

    def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask the newest connection's client to reconnect, as Slack does before recycling a server."""
        connection = self._newest_open()
        assert connection.websocket is not None
        connection.websocket.send(
            json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": self.host_name}})
        )

    def drop_connections(self) -> None:
        """Close every open connection from the server side (code 1001, going away)."""
        for connection in self.open_connections():
            if connection.websocket is not None:
                connection.websocket.close(1001, "server going away")

    # -- internals

    def _newest_open(self) -> SocketConnection:
        open_now = self.open_connections()
        if not open_now:
            raise RuntimeError("no Socket Mode client is connected")
        return open_now[-1]

    def _wait(self, done: Any, timeout: float, describe: Any) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(describe())
                self._changed.wait(remaining)

    def _serve_connection(self, websocket: ServerConnection) -> None:
        request = websocket.request
        parts = urlsplit(request.path if request is not None else "/")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        connection = SocketConnection(next(self._numbers), parts.path, query, time.monotonic(), websocket=websocket)
        with self._changed:
            self.connections.append(connection)
            open_count = sum(1 for c in self.connections if c.is_open)
            self._changed.notify_all()
        websocket.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": open_count,
                    "debug_info": {"host": self.host_name, "build_number": 1, "approximate_connection_time": 18060},
                    "connection_info": {"app_id": self.app_id},
                }
            )
        )
        try:
            for raw in websocket:
                self._receive(connection, raw)
        except ConnectionClosed:
            pass  # the builtin client drops its socket without a closing handshake
        finally:
            with self._changed:
                connection.closed_at = time.monotonic()
                self._changed.notify_all()

    def _receive(self, connection: SocketConnection, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return
        if not isinstance(message, dict):
            return
        with self._changed:
            connection.received.append(message)
            envelope_id = message.get("envelope_id")
            if isinstance(envelope_id, str) and envelope_id in self._sent_at and envelope_id not in self._acks:
                self._acks[envelope_id] = Ack(
                    envelope_id, message, message.get("payload"), time.monotonic() - self._sent_at[envelope_id]
                )
            self._changed.notify_all()


# ---------------------------------------------------------------------------------------------- payloads


def _trigger_id() -> str:
    return f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}"


def slash_command_payload(
    command: str,
    text: str,
    *,
    user_id: str,
    channel_id: str,
    response_url: str,
    channel_name: str = "general",
    user_name: str = "lab.member",
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
) -> dict:
    """A slash command as Slack sends it in a "slash_commands" envelope (all values are strings)."""
    return {
        "token": "stand-in-verification-token",
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": _trigger_id(),
    }


def block_actions_payload(
    action_id: str,
    value: str,
    *,
    message: dict,
    user_id: str,
    channel_id: str,
    response_url: str,
    block_id: str | None = None,
    button_text: str = "Button",
    channel_name: str = "general",
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    keep_metadata: bool = False,
) -> dict:
    """A button click as Slack sends it in an "interactive" envelope.

    `message` is the message the button was on, as conversations.history returns it. Slack's block_actions
    reference does not promise the message's metadata, so it is left out unless `keep_metadata`: what a
    listener needs should travel in the button's value.
    """
    block_id = block_id or _block_id_of(message, action_id) or "stand-in-block"
    if not keep_metadata:
        message = {key: value for key, value in message.items() if key != "metadata"}
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": "lab.member", "name": "lab.member", "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "stand-in-verification-token",
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel_id, "is_ephemeral": False},
        "trigger_id": _trigger_id(),
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": button_text, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def _block_id_of(message: dict, action_id: str) -> str | None:
    for block in message.get("blocks") or []:
        elements = list(block.get("elements") or []) + ([block["accessory"]] if "accessory" in block else [])
        if any(isinstance(e, dict) and e.get("action_id") == action_id for e in elements):
            return block.get("block_id")
    return None


def app_home_opened_payload(
    user_id: str,
    *,
    channel_id: str = "D0IL2HOME",
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    bot_user_id: str = BOT_USER_ID,
) -> dict:
    """An app_home_opened event wrapped as Slack sends it in an "events_api" envelope."""
    now = time.time()
    return {
        "token": "stand-in-verification-token",
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": {
            "type": "app_home_opened",
            "user": user_id,
            "channel": channel_id,
            "tab": "home",
            "event_ts": f"{now:.6f}",
        },
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(now),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{uuid.uuid4().hex}",
    }
