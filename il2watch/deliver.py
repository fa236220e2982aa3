"""Post the outbox to Slack exactly once.

Each outbox row goes due → sending → sent. "sending" is committed before the request leaves, so after a
crash, a timeout or a 5xx il2watch knows the outcome is unknown. Before posting, every round reads the
channel's recent history (with message metadata) and settles rows Slack already has, by the row's key
or by its PMIDs: a crash after Slack accepted a post, a second worker on another disk, or a library
rebuilt from scratch never causes a second post. Thread replies carry their own keys too and are looked
for in their thread (conversations.replies). Only 429 is retried blindly (Slack refused it).

A message Slack refuses for its content goes out as plain text; one refused even so is tried again as
plain text on the next polls and marked failed only after ``CONTENT_REFUSALS`` of them, with the reason
kept for ``status``.
"""

from __future__ import annotations

import http.client
import logging
import time
import urllib.error
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from il2watch import render
from il2watch.followup_check import FOLLOWUP_KINDS, followup_of
from il2watch.identity import describe_key
from il2watch.library import Library, OutboxRow, utcnow
from il2watch.model import Insight, InsightFor, Paper, Reason, Watch, review_watch
from il2watch.render import Message
from il2watch.render.paper import posted_tokens
from il2watch.slack_client import FATAL_ERRORS, explain, resolve_channel, slack_error

log = logging.getLogger("il2watch.deliver")

UNKNOWN_OUTCOME = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError)
REJECTED_CONTENT = {
    "msg_too_long",
    "invalid_blocks",
    "invalid_blocks_format",
    "invalid_metadata_format",
    "invalid_metadata_schema",
    "metadata_too_large",
    "too_many_attachments",
    "invalid_arguments",
}
HISTORY_MARGIN = timedelta(days=1)  # how far before the oldest due row the pre-post check reads
CONTENT_REFUSALS = 3  # polls in which Slack may refuse a message even as plain text before it is failed
StopReason = Callable[[], str]  # why delivery must stop now ("" to go on)


def reply_key(parent_key: str, index: int) -> str:
    """The outbox key of a thread reply: its parent's key and its place in the thread."""
    return f"{parent_key}-t{index}"


class DeliveryStopped(Exception):
    """Slack refused in a way only a person can fix; the message says how. Nothing was marked delivered."""


@dataclass
class DeliveryReport:
    posted: int = 0
    settled: int = 0  # rows found already in the channel and marked sent without posting
    updated: int = 0  # posts rewritten with a follow-up's banner (chat.update)
    failed: int = 0
    still_due: int = 0
    stopped: str = ""  # why posting stopped before the outbox was empty (lease lost, shutting down)
    problems: list[str] = field(default_factory=list)


def epoch(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return 0.0


@dataclass
class ChannelHistory:
    """What il2watch's own messages in a channel say they stand for: delivery keys and the ids of the papers
    posted ("pmid:…", "doi:…", every id a post carries), with their ts."""

    keys: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def add(self, message: Mapping[str, Any]) -> None:
        metadata = message.get("metadata") or {}
        event_type = str(metadata.get("event_type", ""))
        if not event_type.startswith("il2watch_"):
            return
        payload = metadata.get("event_payload") or {}
        ts = str(message.get("ts", ""))
        if payload.get("key"):
            self.keys.setdefault(str(payload["key"]), ts)
        for token in posted_tokens(event_type, payload):
            self.tokens.setdefault(token, ts)

    def find(self, tokens_by_paper: Mapping[str, Sequence[str]]) -> str:
        """The ts of a message that has every one of these papers (by any of their ids), or ""."""
        if not tokens_by_paper:
            return ""
        found = [next((self.tokens[t] for t in tokens if t in self.tokens), "") for tokens in tokens_by_paper.values()]
        return found[0] if all(found) else ""


def read_history(client: WebClient, channel_id: str, *, oldest: float = 0.0, thread_ts: str = "") -> ChannelHistory:
    """Page through a channel's history (or one thread) with metadata, as far back as ``oldest``."""
    history = ChannelHistory()
    cursor = None
    while True:
        if thread_ts:
            response = client.conversations_replies(
                channel=channel_id, ts=thread_ts, cursor=cursor, limit=200, include_all_metadata=True
            )
        else:
            response = client.conversations_history(
                channel=channel_id,
                cursor=cursor,
                limit=200,
                oldest=f"{oldest:.6f}" if oldest else None,
                include_all_metadata=True,
            )
        messages: list[dict[str, Any]] = response.get("messages", [])
        for message in messages:
            history.add(message)
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor or not response.get("has_more", True):
            return history


class Renderer:
    """Turns an outbox row back into its Slack message, from what the library holds now."""

    def __init__(
        self,
        library: Library,
        watches: Mapping[str, Watch],
        insight_for: InsightFor,
        *,
        command: str,
        thread_abstract: bool = False,
    ):
        self.library, self.watches, self.insight_for = library, watches, insight_for
        self.command = command  # IL2WATCH_COMMAND, for notes that name a command
        self.thread_abstract = thread_abstract
        self._threads: dict[str, list[Message]] = {}  # a parent's replies, rendered once for all of them

    def _item(self, key: str) -> tuple[Paper, list[Reason], Insight] | None:
        paper = self.library.paper(key)
        if paper is None:
            return None
        reasons = [stored.reason for stored in self.library.reasons_for(paper.key)]
        return paper, reasons, self.insight_for(paper, reasons)

    def messages(self, row: OutboxRow) -> tuple[Message, list[Message]]:
        """The row's message and the replies that go in its thread."""
        payload = row.payload
        watermark = payload.get("watermark")
        if row.kind == "paper":
            item = self._item(row.papers[0])
            if item is None:
                raise LookupError(f"{describe_key(row.papers[0])} is not in the library")
            paper, reasons, insight = item
            message = render.render_paper(
                paper,
                reasons,
                insight,
                self.watches,
                watermark=watermark,
                key=row.key,
                feedback=self.library.feedback(paper.key),
            )
            thread = render.render_abstract_thread(paper) if self.thread_abstract else []
            return message, thread
        if row.kind == "reply":
            parent = self.library.outbox_row(str(payload.get("parent", "")))
            if parent is None:
                raise LookupError(f"the message this reply belongs to ({payload.get('parent')}) is unknown")
            if parent.key not in self._threads:
                self._threads[parent.key] = self.messages(parent)[1]
            replies = self._threads[parent.key]
            index = int(payload.get("index", 0))
            if index >= len(replies):
                raise LookupError(f"reply {index} of {parent.key[:8]} no longer exists")
            return keyed_reply(replies[index], key=row.key, parent=parent.key), []
        if row.kind == "digest":
            items = [item for item in (self._item(p) for p in row.papers) if item is not None]
            return render.render_digest(
                items, self.watches, title=str(payload.get("title", "New papers")), watermark=watermark, key=row.key
            )
        if row.kind == "note" and payload.get("note") == "baseline":
            watch = self.watches.get(str(payload.get("watch"))) or Watch(str(payload.get("watch")))
            found, posted = int(payload.get("found", 0)), int(payload.get("posted", 0))
            note = render.render_baseline_note(
                watch, found, posted, command=self.command, watermark=watermark, key=row.key
            )
            return note, []
        if row.kind in FOLLOWUP_KINDS:  # shown when there is no Slack token; delivered by followup_delivery
            followup = followup_of(payload)
            about = self.library.paper(followup.paper)
            if row.kind == "followup_dm":
                return render.render_followup_dm(about, followup, key=row.key, command=self.command), []
            return render.render_followup(about, followup, key=row.key), []
        if row.kind == "note" and payload.get("note") == "source_baseline":
            watch = self.watches.get(str(payload.get("watch"))) or Watch(str(payload.get("watch")))
            note = render.render_source_baseline_note(
                str(payload.get("source")),
                watch,
                int(payload.get("found", 0)),
                int(payload.get("preprints", 0)),
                papers=[str(p) for p in payload.get("papers") or []],
                entered_by=str(payload.get("entered_by") or ""),
                command=self.command,
                listed_by_cites=watch == review_watch(self.watches.values()),
                watermark=watermark,
                key=row.key,
            )
            return note, []
        if row.kind == "watch":
            watch = Watch(**payload["watch"])
            return render.render_watch_announcement(
                watch, str(payload.get("by", "")), str(payload["action"]), key=row.key
            ), []
        return render.render_note(
            str(payload.get("text", "")),
            event_type=str(payload.get("event_type", "il2watch_note")),
            payload={"key": row.key, **(payload.get("extra") or {})},
        ), []


def keyed_reply(message: Message, *, key: str, parent: str) -> Message:
    """A thread reply carrying its own outbox key (and its parent's) in its metadata, so that the check
    before posting finds it again in the thread after a lost answer or a crash."""
    metadata = message.metadata or {"event_type": "il2watch_reply", "event_payload": {}}
    payload = {**metadata.get("event_payload", {}), "key": key, "parent": parent}
    return replace(message, metadata={"event_type": metadata["event_type"], "event_payload": payload})


def plain_fallback(message: Message) -> Message:
    """The message without blocks, for when Slack rejects the rich one: the text still says it all."""
    text = message.text if len(message.text) <= 3000 else message.text[:2999] + "…"
    return Message(text=text, blocks=[], metadata=message.metadata)


def _state_of_refused(row: OutboxRow, code: str) -> tuple[str, dict[str, Any], str]:
    """After Slack refused a row even as plain text: its next state, payload and what to say."""
    refusals = int(row.payload.get("refusals", 0)) + 1
    payload = {**row.payload, "plain": True, "refusals": refusals}
    if refusals >= CONTENT_REFUSALS:
        return "failed", payload, f"Slack refused it ({code}), also as plain text, in {refusals} polls"
    return "due", payload, f"Slack refused it ({code}), also as plain text; tried again as plain text next poll"


class Deliverer:
    def __init__(
        self,
        library: Library,
        client: WebClient,
        renderer: Renderer,
        *,
        default_channel: str,
        post_interval: float = 1.1,
        server_retries: int = 3,
        backoff: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        stop_reason: StopReason = lambda: "",
        on_posted: Callable[[int], None] | None = None,
    ):
        self.library, self.client, self.renderer = library, client, renderer
        self._on_posted = on_posted
        self.default_channel = default_channel
        self.post_interval, self.server_retries, self.backoff = post_interval, server_retries, backoff
        self._sleep, self._clock, self._stop_reason = sleep, clock, stop_reason
        self._channel_ids: dict[str, str] = {}
        self._last_post: dict[str, float] = {}
        self._joined: set[str] = set()
        self._threads: dict[str, ChannelHistory | None] = {}  # thread ts -> what its replies stand for
        self._fresh_threads: set[str] = set()  # parents posted in this round: their threads hold nothing else

    # ------------------------------------------------------------ channels

    def channel_id(self, channel: str) -> str:
        name = channel or self.default_channel
        if not name:
            raise DeliveryStopped(
                "IL2WATCH_CHANNEL is not set (where to post): export IL2WATCH_CHANNEL=C0123456789 "
                "or #channel-name, or add it to .env"
            )
        if name not in self._channel_ids:
            try:
                self._channel_ids[name] = resolve_channel(self.client, name)
            except SlackApiError as error:
                raise DeliveryStopped(explain(slack_error(error), channel=name)) from None
            except UNKNOWN_OUTCOME as error:
                raise DeliveryStopped(
                    f"cannot reach Slack to look up channel {name} ({type(error).__name__}): is "
                    f"IL2WATCH_SLACK_API_URL reachable? nothing posted, the next poll tries again"
                ) from None
        return self._channel_ids[name]

    def _join(self, channel_id: str, name: str) -> bool:
        """Join a public channel the bot is not in; False for private channels (a person must invite it)."""
        if channel_id in self._joined:
            return False
        self._joined.add(channel_id)
        try:
            self.client.conversations_join(channel=channel_id)
            log.info("joined channel %s to post there", name)
            return True
        except SlackApiError as error:
            code = slack_error(error)
            if code == "method_not_supported_for_channel_type":
                raise DeliveryStopped(
                    f"the bot is not in private channel {name}: invite it with /invite @il2watch in that channel"
                ) from None
            if code == "missing_scope":
                raise DeliveryStopped(
                    f"the bot is not in {name} and may not join it (needs channels:join): "
                    f"invite it with /invite @il2watch"
                ) from None
            raise DeliveryStopped(explain(code, channel=name)) from None

    # ------------------------------------------------------------ posting

    def _pace(self, channel_id: str) -> None:
        last = self._last_post.get(channel_id)
        if last is not None:
            wait = self.post_interval - (self._clock() - last)
            if wait > 0:
                self._sleep(wait)

    def _post(self, channel_id: str, name: str, message: Message, thread_ts: str = "", broadcast: bool = False) -> str:
        """Post one message (a thread reply with ``thread_ts``, shown in the channel too with ``broadcast``)
        and return its ts; SlackApiError and connection errors propagate."""
        self._pace(channel_id)
        kwargs = message.as_kwargs()
        if not message.blocks:  # plain text: send no blocks at all rather than an empty list
            kwargs.pop("blocks", None)
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
            if broadcast:
                kwargs["reply_broadcast"] = True
        try:
            response = self.client.chat_postMessage(channel=channel_id, **kwargs)
        except SlackApiError as error:
            if slack_error(error) == "not_in_channel" and self._join(channel_id, name):
                response = self.client.chat_postMessage(channel=channel_id, **kwargs)
            else:
                raise
        finally:
            self._last_post[channel_id] = self._clock()
        return str(response["ts"])

    # ------------------------------------------------------------ what followup_delivery uses

    def stop_reason(self) -> str:
        """Why delivery must stop now ("" to go on): the lease lost, shutting down."""
        return self._stop_reason()

    def post(
        self, channel_id: str, name: str, message: Message, *, thread_ts: str = "", broadcast: bool = False
    ) -> str:
        """Post one message, paced like every post; its ts. SlackApiError and connection errors propagate."""
        return self._post(channel_id, name, message, thread_ts=thread_ts, broadcast=broadcast)

    def update(self, channel_id: str, ts: str, message: Message) -> None:
        """Rewrite a message il2watch posted (``chat.update``), paced like a post; errors propagate."""
        self._pace(channel_id)
        kwargs: dict[str, Any] = {"text": message.text, "metadata": message.metadata}
        if message.blocks:
            kwargs["blocks"] = message.blocks
        try:
            self.client.chat_update(channel=channel_id, ts=ts, **kwargs)
        finally:
            self._last_post[channel_id] = self._clock()

    def _settle(self, row: OutboxRow, ts: str) -> None:
        with self.library.transaction():
            self.library.update_outbox(row.key, state="sent", ts=ts, sent_at=utcnow())

    def _post_row(self, row: OutboxRow, channel_id: str, name: str, report: DeliveryReport) -> bool:
        """Post one row with its thread; False when the round must stop (outcome unknown, or rate-limited)."""
        try:
            message, thread = self.renderer.messages(row)
        except LookupError as error:
            with self.library.transaction():
                self.library.update_outbox(row.key, state="failed", last_error=str(error))
            report.failed += 1
            report.problems.append(f"{row.kind} {row.key[:8]}: {error}")
            return True
        parent_ts = ""
        if row.thread_ts:  # a reply whose parent is already posted
            parent_ts = row.thread_ts
        plain = bool(row.payload.get("plain"))  # Slack refused its blocks before
        if plain:
            message = plain_fallback(message)
        for attempt in range(1, self.server_retries + 1):
            with self.library.transaction():
                self.library.update_outbox(row.key, state="sending", attempts=row.attempts + attempt)
            try:
                ts = self._post(channel_id, name, message, thread_ts=parent_ts)
                break
            except SlackApiError as error:
                code = slack_error(error)
                status = getattr(getattr(error, "response", None), "status_code", 200)
                if code in FATAL_ERRORS:
                    with self.library.transaction():
                        self.library.update_outbox(row.key, state="due", last_error=code)
                    raise DeliveryStopped(explain(code, channel=name)) from None
                if code == "ratelimited" or status == 429:
                    with self.library.transaction():
                        self.library.update_outbox(row.key, state="due", last_error="ratelimited")
                    report.problems.append("Slack kept answering 429; the rest stays due for the next poll")
                    return False
                if code in REJECTED_CONTENT:
                    if not plain and attempt < self.server_retries:
                        log.warning("Slack refused %s %s (%s); posting it as plain text", row.kind, row.key[:8], code)
                        plain, message = True, plain_fallback(message)
                        continue
                    state, payload, why = _state_of_refused(row, code)
                    with self.library.transaction():
                        self.library.update_outbox(row.key, state=state, payload=payload, last_error=why)
                    report.failed += state == "failed"
                    report.problems.append(f"{row.kind} {describe_row(row)}: {why}")
                    return True
                problem = f"HTTP {status} {code}".strip()
            except UNKNOWN_OUTCOME as error:
                problem = f"{type(error).__name__}: {error}"
            # Outcome unknown: Slack may have posted it. Look before posting again.
            log.warning("posting %s %s: %s; checking the channel before retrying", row.kind, row.key[:8], problem)
            with self.library.transaction():
                self.library.update_outbox(row.key, last_error=problem[:200])
            if attempt == self.server_retries:
                report.problems.append(
                    f"Slack did not confirm {row.kind} {row.key[:8]} ({problem}); "
                    f"it is checked against the channel next poll"
                )
                return False
            self._sleep(self.backoff * 2 ** (attempt - 1))
            found = self._find(row, channel_id, parent_ts)
            if found is None:  # cannot see the channel: posting again could double it
                report.problems.append(
                    f"could not check {name} for {row.kind} {row.key[:8]} after {problem}; "
                    f"it is checked again next poll"
                )
                return False
            if found:
                ts = found
                break
        sent_as = "plain text, after Slack refused its blocks" if plain else ""
        with self.library.transaction():
            self.library.update_outbox(row.key, state="sent", ts=ts, sent_at=utcnow(), last_error=sent_as)
            self._enqueue_thread(row, ts, len(thread))
        self._fresh_threads.add(ts)
        report.posted += 1
        if self._on_posted is not None and row.kind != "reply":
            self._on_posted(report.posted)
        return True

    def _enqueue_thread(self, row: OutboxRow, ts: str, replies: int) -> None:
        """The replies that go in a posted message's thread, due now (call inside a transaction)."""
        for index in range(replies):
            key = reply_key(row.key, index)
            if self.library.outbox_row(key) is not None:
                continue
            self.library.enqueue(
                key=key, channel=row.channel, kind="reply", papers=(), payload={"parent": row.key, "index": index}
            )
            self.library.update_outbox(key, thread_ts=ts)

    def _settle_with_thread(self, row: OutboxRow, ts: str) -> None:
        """Mark a row the channel already has as sent, and owe its thread (checked against it before posting)."""
        try:
            replies = len(self.renderer.messages(row)[1]) if row.kind != "reply" else 0
        except LookupError:
            replies = 0
        with self.library.transaction():
            self.library.update_outbox(row.key, state="sent", ts=ts, sent_at=utcnow())
            self._enqueue_thread(row, ts, replies)

    def _thread(self, channel_id: str, thread_ts: str) -> ChannelHistory | None:
        """What the replies in one thread stand for, read once a round; None when it cannot be read."""
        if thread_ts not in self._threads:
            try:
                self._threads[thread_ts] = read_history(self.client, channel_id, thread_ts=thread_ts)
            except (SlackApiError, *UNKNOWN_OUTCOME):
                self._threads[thread_ts] = None
        return self._threads[thread_ts]

    def _find(self, row: OutboxRow, channel_id: str, thread_ts: str = "") -> str | None:
        """The ts of the row's message if the channel has it, "" if it has not, None if we cannot tell."""
        try:
            history = read_history(
                self.client,
                channel_id,
                thread_ts=thread_ts,
                oldest=epoch(row.created_at) - HISTORY_MARGIN.total_seconds(),
            )
        except (SlackApiError, *UNKNOWN_OUTCOME):
            return None
        if row.key in history.keys:
            return history.keys[row.key]
        return history.find(self.library.tokens_of(row.papers)) if row.papers else ""

    def deliver(self) -> DeliveryReport:
        """Post every due row, channel by channel, after settling the ones the channel already has."""
        report = DeliveryReport()
        rows = [row for row in self.library.outbox("due", "sending") if row.kind not in FOLLOWUP_KINDS]
        by_channel: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_channel.setdefault(row.channel, []).append(row)
        for name, channel_rows in by_channel.items():
            if report.stopped:
                break
            channel_id = self.channel_id(name)
            oldest = min(epoch(r.created_at) for r in channel_rows) - HISTORY_MARGIN.total_seconds()
            try:
                history = read_history(self.client, channel_id, oldest=oldest)
            except SlackApiError as error:
                code = slack_error(error)
                if code in FATAL_ERRORS and code != "not_in_channel":
                    raise DeliveryStopped(explain(code, channel=name)) from None
                if code != "not_in_channel":  # a 5xx or the like: without the history, posting could double
                    report.problems.append(
                        f"could not read {name}'s history ({code or 'HTTP error'}); nothing posted there this time"
                    )
                    continue
                history = ChannelHistory()  # not a member yet: the bot cannot have posted there
            except UNKNOWN_OUTCOME as error:
                report.problems.append(
                    f"could not read {name}'s history ({type(error).__name__}); nothing posted there this time"
                )
                continue
            pending = list(channel_rows)
            while pending:
                stop = self._stop_reason()
                if stop:
                    report.stopped = stop
                    report.problems.append(f"stopped posting: {stop}")
                    break
                row = pending.pop(0)
                if row.kind == "reply":
                    parent = self.library.outbox_row(str(row.payload.get("parent", "")))
                    if parent is None or parent.state != "sent":
                        continue
                    current = self.library.outbox_row(row.key)  # its thread_ts may be new
                    if current is None or current.state not in ("due", "sending"):
                        continue
                    row = current
                    if row.thread_ts not in self._fresh_threads:  # left from an earlier round: look first
                        thread = self._thread(channel_id, row.thread_ts)
                        if thread is None:
                            report.problems.append(
                                f"could not read the thread of {parent.kind} {parent.key[:8]} in {name}; "
                                f"its replies are checked again next poll"
                            )
                            break
                        if row.key in thread.keys:
                            self._settle(row, thread.keys[row.key])
                            report.settled += 1
                            continue
                else:
                    settled = history.keys.get(row.key) or (
                        history.find(self.library.tokens_of(row.papers)) if row.papers else ""
                    )
                    if settled:
                        self._settle_with_thread(row, settled)
                        report.settled += 1
                        pending = self._replies_of(row, name) + pending
                        continue
                if not self._post_row(row, channel_id, name, report):
                    break
                # replies created by this post are delivered in this same round
                pending = self._replies_of(row, name) + pending
        if not report.stopped:  # follow-ups last: the posts they are told on come first
            from il2watch.followup_delivery import deliver_followups

            deliver_followups(self, report)
        report.still_due = len(self.library.outbox("due", "sending"))
        return report

    def _replies_of(self, row: OutboxRow, name: str) -> list[OutboxRow]:
        return [r for r in self.library.outbox("due", channel=name, kind="reply") if r.key.startswith(row.key + "-t")]


def describe_row(row: OutboxRow) -> str:
    """How a person recognises an outbox row: its paper, else the start of its key."""
    if len(row.papers) == 1:
        return describe_key(row.papers[0])
    if row.papers:
        return f"{row.key[:8]} ({len(row.papers)} papers)"
    return row.key[:8]


def print_outbox(
    library: Library, renderer: Renderer, out: Callable[[str], None], rows: Iterable[OutboxRow] | None = None
) -> int:
    """Without a Slack token: show what would be posted, and mark nothing delivered."""
    count = 0
    for row in rows if rows is not None else library.outbox("due", "sending"):
        if row.kind in ("reply", "followup_update"):
            continue
        try:
            message, thread = renderer.messages(row)
        except LookupError as error:
            out(f"(cannot show {row.kind} {row.key[:8]}: {error})")
            continue
        out(render.render_terminal(message))
        for reply in thread:
            out(render.render_terminal(reply))
        count += 1
    return count
