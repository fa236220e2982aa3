"""Bolt wiring: the slash command, the buttons, the App Home, and the Socket Mode entry point.

Listeners are thin. Each acknowledges first, from the local library; anything slow (PubMed, a poll, an
upload) runs after the ack and answers through ``respond()``. Every call opens its own ``Library`` (a
SQLite connection belongs to the thread that opened it). Slack may deliver a request twice (retries,
reconnects); a short memory of what was handled makes the second delivery a no-op.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from il2watch import pubmed
from il2watch.commands import Context, Reply, ToolError, Tools, answer, read_control_value
from il2watch.commands.buttons import (
    FEEDBACK_VALUES,
    NOT_RELEVANT,
    RELEVANT,
    SAVE,
    known_pmid,
    save_reply,
    with_feedback_counts,
)
from il2watch.commands.home import home_view
from il2watch.commands.reply import DETAILS_ACTION, MORE_ACTION, SHARE_ACTION, say
from il2watch.config import ConfigError, Settings, describe_missing
from il2watch.lease import HeldLease, make_holder_id
from il2watch.library import Library, LibraryError
from il2watch.markup import escape_mrkdwn
from il2watch.service import PollError, all_watches, insight_maker, make_eutils, poll_once
from il2watch.slack_client import explain, make_client, slack_error

log = logging.getLogger("il2watch.slack")

SORRY = "Sorry, something went wrong answering that; it has been logged. Try again, or `{command} help`."


class RecentKeys:
    """Remembers what was handled for ``ttl`` seconds, so a redelivered request is not handled twice."""

    def __init__(self, ttl: float = 1800.0, limit: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.ttl, self.limit, self.clock = ttl, limit, clock
        self._seen: OrderedDict[Hashable, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, key: Hashable) -> bool:
        now = self.clock()
        with self._lock:
            while self._seen and (len(self._seen) > self.limit or next(iter(self._seen.values())) < now - self.ttl):
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


# ---------------------------------------------------------------- the real tools


def poll_with_lease(settings: Settings) -> str:
    """Poll now unless a worker holds the poller lease (then it is that worker's job, on its schedule)."""
    holder = make_holder_id()
    held = HeldLease(settings.db_path, holder, ttl=settings.lease_seconds)
    try:
        with held as holding:
            if not holding:
                with Library(settings.db_path) as library:
                    upcoming = library.get_state("next_poll_at") or "on its schedule"
                return (
                    f"A worker ({held.other.holder if held.other else 'another process'}) holds the poller "
                    f"lease and polls on its schedule (next: {upcoming}); this process leaves polling to it."
                )
            return poll_once(settings, out=log.info, holder=holder).line()
    except PollError as error:
        return f"poll failed: {error}"


def make_tools(settings: Settings, client: WebClient, poll: Callable[[], str] | None = None) -> Tools:
    """Tools on the real services: E-utilities at settings.eutils_url, Slack through ``client``."""
    eutils = make_eutils(settings)

    def upload(channel: str, filename: str, content: str, title: str) -> None:
        try:
            client.files_upload_v2(channel=channel, filename=filename, content=content, title=title)
        except SlackApiError as error:
            raise ToolError(
                f"I could not upload {filename} here: {explain(slack_error(error), channel=channel)}. "
                f"Invite me to this channel, or run the export in a DM with me."
            ) from None

    return Tools(
        fetch_papers=lambda pmids: pubmed.fetch_papers(eutils, pmids),
        find_pmids=lambda term: pubmed.search(eutils, term),
        poll=poll or (lambda: poll_with_lease(settings)),
        upload=upload,
        check_query=lambda term: pubmed.check_query(eutils, term),
    )


# ---------------------------------------------------------------- listeners


class Listeners:
    """One method per listener; Bolt passes what each one names (ack, body, respond, client…)."""

    def __init__(
        self,
        settings: Settings,
        library_path: Path,
        tools: Tools,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.settings, self.library_path, self.tools, self.now = settings, library_path, tools, now
        self.handled = RecentKeys()

    @contextmanager
    def context(self, user_id: str, channel_id: str = "") -> Iterator[Context]:
        with Library(self.library_path) as library:
            yield Context(
                library=library,
                settings=self.settings,
                insight_for=insight_maker(self.settings, library, summariser=False),
                user_id=user_id,
                channel_id=channel_id,
                watches=tuple(all_watches(self.settings, library)),
                now=self.now,
            )

    def sorry(self, error: Exception) -> Reply:
        if isinstance(error, LibraryError):
            log.error("answering Slack: %s", error)
            return say(f"Sorry, il2watch's library could not answer that: {escape_mrkdwn(str(error))}")
        log.exception("answering Slack failed")
        return say(SORRY.format(command=self.settings.command))

    # ------------------------------------------------------------ /il2

    def on_command(self, ack: Callable[..., Any], command: dict[str, Any], respond: Callable[..., Any]) -> None:
        if not self.handled.first_time(("command", command.get("response_url") or command.get("trigger_id"))):
            ack()
            return
        acked = False
        try:
            with self.context(str(command.get("user_id", "")), str(command.get("channel_id", ""))) as ctx:
                reply = answer(str(command.get("text") or ""), ctx)
                ack(**reply.as_kwargs())
                acked = True
                if reply.deferred is not None:
                    respond(**reply.deferred.run(self.tools).as_kwargs())
        except Exception as error:  # a person gets a sentence, the log gets the traceback
            reply = self.sorry(error)
            if acked:
                respond(**reply.as_kwargs())
            else:
                ack(**reply.as_kwargs())

    # ------------------------------------------------------------ buttons

    def _first_click(self, body: dict[str, Any], action: dict[str, Any]) -> bool:
        return self.handled.first_time(
            (
                "action",
                (body.get("user") or {}).get("id"),
                action.get("action_id"),
                action.get("action_ts"),
                action.get("value"),
            )
        )

    def _replay(self, ctx: Context, text: str, **options: Any) -> Reply:
        reply = answer(text, ctx, **options)
        return reply.deferred.run(self.tools) if reply.deferred is not None else reply

    def on_feedback(
        self,
        ack: Callable[..., Any],
        body: dict[str, Any],
        action: dict[str, Any],
        respond: Callable[..., Any],
        client: WebClient,
    ) -> None:
        ack()
        if not self._first_click(body, action):
            return
        user = str((body.get("user") or {}).get("id", ""))
        container = body.get("container") or {}
        message = body.get("message")
        try:
            with self.context(user, str(container.get("channel_id", ""))) as ctx:
                pmid = known_pmid(ctx.library, str(action.get("value", "")))
                if pmid is None:
                    respond(text="That paper is not in il2watch's library.", replace_original=False)
                    return
                counts = ctx.library.set_feedback(pmid, user, FEEDBACK_VALUES[action["action_id"]])
                if container.get("is_ephemeral") or not message:
                    respond(**self._replay(ctx, f"paper {pmid}").as_kwargs(), replace_original=True)
                    return
            client.chat_update(
                channel=container["channel_id"],
                ts=message["ts"],
                text=message.get("text", ""),
                blocks=with_feedback_counts(message.get("blocks") or [], pmid, counts),
            )
        except SlackApiError as error:
            log.warning("could not show the new counts: %s", explain(slack_error(error)))
        except Exception as error:
            respond(**self.sorry(error).as_kwargs(), replace_original=False)

    def _paper_button(
        self,
        ack: Callable[..., Any],
        body: dict[str, Any],
        action: dict[str, Any],
        respond: Callable[..., Any],
        make_reply: Callable[[Context, str], Reply],
    ) -> None:
        """A button whose value is a PMID: ack, ignore a repeated click, answer about that paper."""
        ack()
        if not self._first_click(body, action):
            return
        try:
            with self.context(str((body.get("user") or {}).get("id", ""))) as ctx:
                pmid = known_pmid(ctx.library, str(action.get("value", "")))
                reply = make_reply(ctx, pmid) if pmid else say("That paper is not in il2watch's library.")
        except Exception as error:
            reply = self.sorry(error)
        respond(**reply.as_kwargs(), replace_original=False)

    def on_save(
        self, ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any], respond: Callable[..., Any]
    ) -> None:
        self._paper_button(ack, body, action, respond, save_reply)

    def _control(
        self,
        ack: Callable[..., Any],
        body: dict[str, Any],
        action: dict[str, Any],
        respond: Callable[..., Any],
        *,
        share: bool,
    ) -> None:
        ack()
        if not self._first_click(body, action):
            return
        replay = read_control_value(str(action.get("value", "")))
        if replay is None:
            return
        user = str((body.get("user") or {}).get("id", ""))
        channel = str((body.get("container") or {}).get("channel_id", "") or (body.get("channel") or {}).get("id", ""))
        try:
            with self.context(user, channel) as ctx:
                text, offset = replay
                reply = self._replay(ctx, text, offset=offset, shared_by=user if share else "")
            respond(**reply.as_kwargs(), replace_original=not share)
        except Exception as error:
            respond(**self.sorry(error).as_kwargs(), replace_original=False)

    def on_more(
        self, ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any], respond: Callable[..., Any]
    ) -> None:
        self._control(ack, body, action, respond, share=False)

    def on_share(
        self, ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any], respond: Callable[..., Any]
    ) -> None:
        self._control(ack, body, action, respond, share=True)

    def on_details(
        self, ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any], respond: Callable[..., Any]
    ) -> None:
        self._paper_button(ack, body, action, respond, lambda ctx, pmid: self._replay(ctx, f"paper {pmid}"))

    # ------------------------------------------------------------ App Home

    def on_home_opened(self, body: dict[str, Any], event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home" or not self.handled.first_time(("event", body.get("event_id"))):
            return
        user = str(event.get("user", ""))
        try:
            with self.context(user) as ctx:
                view = home_view(ctx)
            client.views_publish(user_id=user, view=view)
        except SlackApiError as error:
            log.warning("could not publish the App Home: %s", explain(slack_error(error)))
        except LibraryError as error:
            log.error("App Home: %s", error)


def build_app(
    settings: Settings,
    *,
    library_path: str | Path | None = None,
    client: WebClient | None = None,
    poll: Callable[[], str] | None = None,
    tools: Tools | None = None,
    now: Callable[[], datetime] | None = None,
) -> App:
    """The Bolt app answering ``settings.command``, the buttons and the App Home.

    ``poll`` is what "/il2 poll" runs (the worker passes its own; by default a poll under the lease);
    ``tools`` replaces every slow tool at once. No request goes to Slack until the first event arrives.
    """
    if client is None and not settings.slack_bot_token:
        raise ConfigError(describe_missing("slack_bot_token", "needed to answer Slack"))
    client = client or make_client(settings)
    # Without a signing secret (Socket Mode needs none) no HTTP request may pass: verify against a random one.
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret or secrets.token_hex(32),
        token_verification_enabled=False,
        logger=logging.getLogger("il2watch.bolt"),
    )
    listeners = Listeners(
        settings,
        Path(library_path or settings.db_path),
        tools or make_tools(settings, client, poll),
        **({"now": now} if now else {}),
    )
    app.command(settings.command)(listeners.on_command)
    app.action(RELEVANT)(listeners.on_feedback)
    app.action(NOT_RELEVANT)(listeners.on_feedback)
    app.action(SAVE)(listeners.on_save)
    app.action(MORE_ACTION)(listeners.on_more)
    app.action(SHARE_ACTION)(listeners.on_share)
    app.action(DETAILS_ACTION)(listeners.on_details)
    app.event("app_home_opened")(listeners.on_home_opened)
    return app


def start_socket_mode(app: App, settings: Settings) -> SocketModeHandler:
    """Connect to Slack over Socket Mode (no public URL) and return at once; ``close()`` the handler to stop."""
    if not settings.slack_app_token:
        raise ConfigError(describe_missing("slack_app_token", "needed for Socket Mode"))
    handler = SocketModeHandler(app, app_token=settings.slack_app_token, web_client=app.client)
    handler.connect()
    return handler
