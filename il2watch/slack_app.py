"""Bolt wiring: the slash command, the buttons, the App Home, and the Socket Mode entry point.

Listeners are thin. Each acknowledges first, from the local library; anything slow (PubMed, a poll, an
upload) runs after the ack and answers through ``respond()``, il2watch's own (``slack_client.BoundedRespond``,
within the limits of every Slack call), which a middleware puts in place of Bolt's. Every call opens its
own ``Library`` (a SQLite connection belongs to the thread that opened it). Slack may deliver a request twice (retries,
reconnects) and a signed request may be replayed within its five minutes: what was handled is kept in the
library for an hour, so a second delivery is a no-op even after a restart. Every reply is scrubbed of
secrets (``il2watch.redact``) on its way out.
"""

from __future__ import annotations

import hashlib
import json
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

from slack_bolt import App, BoltContext
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from il2watch import intel, pubmed, redact
from il2watch.commands import Context, Reply, ToolError, Tools, answer, read_control_value
from il2watch.commands.buttons import (
    FEEDBACK_VALUES,
    NOT_OURS,
    NOT_RELEVANT,
    RELEVANT,
    SAVE,
    UNSAVE,
    Click,
    action_pattern,
    base_action,
    known_paper,
    read_click,
    save_reply,
    unsave_reply,
    with_feedback_counts,
)
from il2watch.commands.home import home_view
from il2watch.commands.reply import DETAILS_ACTION, MORE_ACTION, SHARE_ACTION, say
from il2watch.config import ConfigError, Settings, describe_missing
from il2watch.library import Library, LibraryError
from il2watch.markup import escape_mrkdwn
from il2watch.service import LeaseHeld, PollError, all_watches, insight_maker, make_eutils, poll_unless_held
from il2watch.slack_client import SlackAnswerError, explain, make_client, respond_maker, slack_error

log = logging.getLogger("il2watch.slack")

SORRY = "Sorry, something went wrong answering that; it has been logged. Try again, or `{command} help`."


HANDLED_KEEP = 3600.0  # seconds a handled request is remembered: Slack retries within minutes, replays within 5


class RecentKeys:
    """Remembers what was handled for ``ttl`` seconds, so a redelivered request is not handled twice."""

    def __init__(self, ttl: float = HANDLED_KEEP, limit: int = 10_000, clock: Callable[[], float] = time.monotonic):
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


class HandledRequests:
    """What this process handled (memory) and what any process handled (the library's handled_requests)."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.memory = RecentKeys()

    def first_time(self, library: Library, kind: str, ident: object, *more: object) -> bool:
        """True unless this request (``kind``, its id ``ident`` and ``more`` of what makes it itself) was handled
        already. Without an id there is nothing to compare; a library that cannot be written (read-only)
        falls back to this process's memory."""
        if ident is None or ident == "":
            return True
        key = hashlib.sha256(json.dumps([kind, ident, *more], default=str).encode()).hexdigest()
        if not self.memory.first_time(key):
            return False
        try:
            return library.first_handling(key, now=self.clock(), keep=HANDLED_KEEP)
        except LibraryError as error:
            log.warning("could not record a handled Slack request in the library (%s); kept in memory only", error)
            return True


def _out(reply: Reply) -> dict[str, Any]:
    """A reply as Bolt's ack/respond take it, scrubbed of every secret."""
    return redact.scrub_all(reply.as_kwargs())


def _respond(respond: Callable[..., Any] | None, **kwargs: Any) -> None:
    """respond() (a ``BoundedRespond``), which needs the response_url Slack sends; a request without one, or an
    answer that does not come within the limits, gets a log line."""
    if respond is None or getattr(respond, "response_url", "") is None:
        log.warning("a Slack request came without a response_url; its answer was not sent")
        return
    try:
        respond(**redact.scrub_all(kwargs))
    except Exception as error:  # the answer is lost, not the process: Slack shows its own timeout
        log.warning("could not answer through the response_url: %s", redact.scrub(str(error)))


# ---------------------------------------------------------------- the real tools


def poll_with_lease(settings: Settings) -> str:
    """Poll now unless a worker holds the poller lease (then it is that worker's job, on its schedule)."""
    try:
        outcome = poll_unless_held(settings, out=log.info)
    except (PollError, LibraryError) as error:
        return f"poll failed: {error}"
    if isinstance(outcome, LeaseHeld):
        return (
            f"A worker ({outcome.holder or 'another process'}) holds the poller lease and polls on its schedule "
            f"(next: {outcome.next_poll_at or 'on its schedule'}); this process leaves polling to it."
        )
    return outcome.line()


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

    def open_dm(user_id: str) -> str:
        try:
            return str(client.conversations_open(users=user_id)["channel"]["id"])
        except SlackApiError as error:
            raise ToolError(
                f"I could not open a direct message with you: {explain(slack_error(error))}. "
                f"Add `share` to upload the file in this channel instead."
            ) from None

    return Tools(
        fetch_papers=lambda pmids: pubmed.fetch_papers(eutils, pmids),
        find_pmids=lambda term: pubmed.search(eutils, term),
        poll=poll or (lambda: poll_with_lease(settings)),
        upload=upload,
        open_dm=open_dm,
        check_query=lambda term: pubmed.check_query(eutils, term),
    )


# ---------------------------------------------------------------- listeners


class Listeners:
    """One method per listener; Bolt passes what each one names (ack, body, respond…)."""

    def __init__(
        self,
        settings: Settings,
        library_path: str | Path,
        tools: Tools,
        client: WebClient,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        # ``client`` is il2watch's own, bounded in time and size like every host: the listeners use it, not the
        # plain WebClient Bolt builds for each event.
        self.settings, self.library_path, self.tools, self.client, self.now = settings, library_path, tools, client, now
        self.handled = HandledRequests()

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
        if isinstance(error, PollError):  # a sentence already (a lexicon that cannot be read, …)
            log.error("answering Slack: %s", error)
            return say(f"Sorry, il2watch could not answer that: {escape_mrkdwn(str(error))}")
        log.exception("answering Slack failed")
        return say(SORRY.format(command=self.settings.command))

    # ------------------------------------------------------------ /il2

    def on_command(self, ack: Callable[..., Any], command: dict[str, Any], respond: Callable[..., Any]) -> None:
        acked = False
        try:
            with self.context(str(command.get("user_id", "")), str(command.get("channel_id", ""))) as ctx:
                ident = command.get("response_url") or command.get("trigger_id")
                if not self.handled.first_time(ctx.library, "command", ident):
                    ack()
                    return
                reply = answer(str(command.get("text") or ""), ctx)
                ack(**_out(reply))
                acked = True
                if reply.deferred is not None:
                    _respond(respond, **reply.deferred.run(self.tools).as_kwargs())
        except Exception as error:  # a person gets a sentence, the log gets the traceback
            reply = self.sorry(error)
            if acked:
                _respond(respond, **reply.as_kwargs())
            else:
                ack(**_out(reply))

    # ------------------------------------------------------------ buttons

    def _click(self, ack: Callable[..., Any], body: Any, action: Any, respond: Callable[..., Any]) -> Click | None:
        """Ack first, then read the click; None, after saying why, when it cannot be used."""
        ack()
        click = read_click(body, action)
        if isinstance(click, str):
            _respond(respond, text=click, replace_original=False, response_type="ephemeral")
            return None
        return click

    def _replay(self, ctx: Context, text: str, **options: Any) -> Reply:
        reply = answer(text, ctx, **options)
        return reply.deferred.run(self.tools) if reply.deferred is not None else reply

    def on_feedback(
        self,
        ack: Callable[..., Any],
        body: dict[str, Any],
        action: dict[str, Any],
        respond: Callable[..., Any],
    ) -> None:
        click = self._click(ack, body, action, respond)
        if click is None:
            return
        message = click.message
        try:
            with self.context(click.user, click.channel) as ctx:
                if not self.handled.first_time(ctx.library, *click.key()):
                    return
                key = known_paper(ctx.library, click.value)
                if key is None:
                    _respond(respond, text="That paper is not in il2watch's library.", replace_original=False)
                    return
                counts = ctx.library.set_feedback(key, click.user, FEEDBACK_VALUES[base_action(click.action_id)])
                if click.ephemeral or not message or not isinstance(message.get("ts"), str) or not click.channel:
                    _respond(respond, **self._replay(ctx, f"paper {key}").as_kwargs(), replace_original=True)
                    return
            blocks = message.get("blocks")
            self.client.chat_update(
                channel=click.channel,
                ts=message["ts"],
                text=redact.scrub(str(message.get("text", ""))),
                blocks=redact.scrub_all(
                    with_feedback_counts(blocks if isinstance(blocks, list) else [], click.value, counts)
                ),
            )
        except SlackApiError as error:
            log.warning("could not show the new counts: %s", explain(slack_error(error)))
        except SlackAnswerError as error:
            log.warning("could not show the new counts: %s", error)
        except Exception as error:
            _respond(respond, **self.sorry(error).as_kwargs(), replace_original=False)

    def _paper_button(
        self,
        ack: Callable[..., Any],
        body: dict[str, Any],
        action: dict[str, Any],
        respond: Callable[..., Any],
        make_reply: Callable[[Context, str], Reply],
    ) -> None:
        """A button whose value names a paper: ack, ignore a repeated click, answer about that paper."""
        click = self._click(ack, body, action, respond)
        if click is None:
            return
        try:
            with self.context(click.user, click.channel) as ctx:
                if not self.handled.first_time(ctx.library, *click.key()):
                    return
                key = known_paper(ctx.library, click.value)
                reply = make_reply(ctx, key) if key else say("That paper is not in il2watch's library.")
        except Exception as error:
            reply = self.sorry(error)
        _respond(respond, **reply.as_kwargs(), replace_original=False)

    def on_save(
        self, ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any], respond: Callable[..., Any]
    ) -> None:
        self._paper_button(ack, body, action, respond, save_reply)

    def on_unsave(
        self, ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any], respond: Callable[..., Any]
    ) -> None:
        self._paper_button(ack, body, action, respond, unsave_reply)

    def _control(
        self,
        ack: Callable[..., Any],
        body: dict[str, Any],
        action: dict[str, Any],
        respond: Callable[..., Any],
        *,
        share: bool,
    ) -> None:
        click = self._click(ack, body, action, respond)
        if click is None:
            return
        try:
            with self.context(click.user, click.channel) as ctx:
                if not self.handled.first_time(ctx.library, *click.key()):
                    return
                replay = read_control_value(click.value)
                if replay is None:
                    reply = say(NOT_OURS)
                else:
                    text, offset = replay
                    reply = self._replay(ctx, text, offset=offset, shared_by=click.user if share else "")
            _respond(respond, **reply.as_kwargs(), replace_original=not share and replay is not None)
        except Exception as error:
            _respond(respond, **self.sorry(error).as_kwargs(), replace_original=False)

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
        self._paper_button(ack, body, action, respond, lambda ctx, key: self._replay(ctx, f"paper {key}"))

    # ------------------------------------------------------------ App Home

    def on_home_opened(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        user = event.get("user")
        if event.get("tab", "home") != "home" or not isinstance(user, str) or not user:
            return
        try:
            with self.context(user) as ctx:
                if not self.handled.first_time(ctx.library, "event", body.get("event_id")):
                    return
                view = home_view(ctx)
            self.client.views_publish(user_id=user, view=redact.scrub_all(view))
        except SlackApiError as error:
            log.warning("could not publish the App Home: %s", explain(slack_error(error)))
        except SlackAnswerError as error:
            log.warning("could not publish the App Home: %s", error)
        except (LibraryError, PollError) as error:
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
    try:  # said once, at start: never as "Sorry, something went wrong" to every command
        intel.load_lexicon(settings.lexicon_paths, skip_missing=True)
    except intel.LexiconError as error:
        raise ConfigError(f"lexicon: {error}") from None
    client = client or make_client(settings)
    # Without a signing secret (Socket Mode needs none) no HTTP request may pass: verify against a random one.
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret or secrets.token_hex(32),
        token_verification_enabled=False,
        logger=logging.getLogger("il2watch.bolt"),
    )
    make_respond = respond_maker(settings)

    def bounded_respond(context: BoltContext, next: Callable[[], None]) -> None:  # noqa: A002 - Bolt's name
        """Every listener's ``respond`` posts through il2watch's transport (deadline, cap, same-host redirects)."""
        context["respond"] = make_respond(context.response_url)
        next()

    app.use(bounded_respond)
    listeners = Listeners(
        settings,
        library_path or settings.db_path,
        tools or make_tools(settings, client, poll),
        client,
        **({"now": now} if now else {}),
    )
    app.command(settings.command)(listeners.on_command)
    app.action(action_pattern(RELEVANT))(listeners.on_feedback)  # digests number their entries' buttons
    app.action(action_pattern(NOT_RELEVANT))(listeners.on_feedback)
    app.action(action_pattern(SAVE))(listeners.on_save)
    app.action(action_pattern(UNSAVE))(listeners.on_unsave)
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
