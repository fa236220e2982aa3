"""Telling follow-ups in Slack, exactly once: the thread reply, the updated post, the direct messages.

Rows are delivered after the outbox's posts, in the order they were owed. Each one looks before it acts:

- ``followup``: the thread of the post that carried the paper is read (``conversations.replies``); a reply
  already carrying the row's key is settled, not posted again (after a crash, a lost answer, a lost
  library). Retractions are broadcast to the channel. When the post is gone, the follow-up is posted to
  the channel on its own, naming the paper (the channel is read for its key first), and that is reported.
- ``followup_update``: the post is rewritten from what Slack holds now (``chat.update``) with a banner at
  its top naming every follow-up told about its papers, and those follow-ups in its metadata. Doing it
  twice gives the same message, so an unknown outcome is simply done again. A post Slack will not let
  il2watch edit gets the follow-up posted on its own instead.
- ``followup_dm``: a direct message (``conversations.open``) to someone who saved the paper, unless they
  turned them off (``/il2 notify off``). One whose outcome is unknown is looked for in the conversation
  first (``im:history``).

One attempt a round: a row whose outcome is unknown stays ``sending`` and is checked next time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError

from il2watch.deliver import (
    HISTORY_MARGIN,
    REJECTED_CONTENT,
    UNKNOWN_OUTCOME,
    Deliverer,
    DeliveryReport,
    DeliveryStopped,
    epoch,
    read_history,
)
from il2watch.followup_check import FOLLOWUP_KINDS, followup_of, standalone_key, told
from il2watch.followups import KINDS, Followup
from il2watch.identity import describe_key
from il2watch.library import OutboxRow, paper_key, utcnow
from il2watch.render import Message
from il2watch.render.followup import banner, render_followup, render_followup_dm, updated_post
from il2watch.slack_client import FATAL_ERRORS, explain, slack_error

log = logging.getLogger("il2watch.followups")

GONE = {"thread_not_found", "message_not_found"}  # what Slack answers about a deleted post
# What Slack answers when a post cannot be edited, or not with these contents.
CANNOT_EDIT = {"cant_update_message", "edit_window_closed", "message_not_found", "is_inactive", *REJECTED_CONTENT}


class _Unseen(Exception):
    """The channel (or the thread, or the conversation) could not be read: acting now could double."""


@dataclass
class Original:
    """The post a follow-up is told on, as Slack holds it now."""

    message: dict[str, Any] | None  # None: deleted
    replies: dict[str, str] = field(default_factory=dict)  # key of each il2watch reply in its thread -> ts


def read_original(deliverer: Deliverer, channel_id: str, ts: str) -> Original:
    """The post at ``ts`` with the keys of the replies in its thread; deleted when Slack says so."""
    original = Original(None)
    cursor = None
    try:
        while True:
            response = deliverer.client.conversations_replies(
                channel=channel_id, ts=ts, cursor=cursor, limit=200, include_all_metadata=True
            )
            messages: list[dict[str, Any]] = response.get("messages", [])
            for message in messages:
                if str(message.get("ts")) == ts:
                    original.message = None if message.get("subtype") == "tombstone" else dict(message)
                    continue
                payload = (message.get("metadata") or {}).get("event_payload") or {}
                if payload.get("key"):
                    original.replies.setdefault(str(payload["key"]), str(message.get("ts", "")))
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor or not response.get("has_more", True):
                return original
    except SlackApiError as error:
        code = slack_error(error)
        if code in GONE:
            return Original(None)
        if code in FATAL_ERRORS and code != "not_in_channel":
            raise DeliveryStopped(explain(code)) from None
        raise _Unseen(code or "HTTP error") from None
    except UNKNOWN_OUTCOME as error:
        raise _Unseen(type(error).__name__) from None


class FollowupDelivery:
    """One round of follow-up rows, on the deliverer's client, pacing and lease."""

    def __init__(self, deliverer: Deliverer, report: DeliveryReport):
        self.deliverer, self.report = deliverer, report
        self.library = deliverer.library
        self._originals: dict[tuple[str, str], Original] = {}
        self._unseen: set[str] = set()  # channels that could not be read this round

    # ------------------------------------------------------------ the round

    def deliver(self) -> None:
        seen: set[str] = set()
        for _ in range(2):  # a second pass for what the first owed (a post that cannot be edited: told alone)
            rows = [r for r in self.library.outbox("due", "sending") if r.kind in FOLLOWUP_KINDS and r.key not in seen]
            seen |= {row.key for row in rows}
            if not rows or not self._round(rows):
                return

    def _round(self, rows: list[OutboxRow]) -> bool:
        """Deliver ``rows`` in order; False when delivery must stop for now."""
        for row in rows:
            stop = self.deliverer.stop_reason()
            if stop:
                self.report.stopped = stop
                self.report.problems.append(f"stopped posting: {stop}")
                return False
            current = self.library.outbox_row(row.key)
            if current is None or current.state not in ("due", "sending"):
                continue
            try:
                if current.kind == "followup_dm":
                    self._dm(current)
                else:
                    self._in_channel(current)
            except _Unseen as unseen:
                self._unseen.add(current.channel)
                self.report.problems.append(
                    f"could not read {current.channel} for follow-up {current.key[:12]} ({unseen}); "
                    f"it is checked again next time"
                )
            except _RateLimited:
                self.report.problems.append("Slack kept answering 429; the follow-ups left stay due")
                return False
        return True

    def _set(self, row: OutboxRow, **changes: Any) -> None:
        with self.library.transaction():
            self.library.update_outbox(row.key, **changes)

    def _sent(self, row: OutboxRow, ts: str, *, note: str = "", payload: dict[str, Any] | None = None) -> None:
        changes: dict[str, Any] = {"state": "sent", "ts": ts, "sent_at": utcnow(), "last_error": note}
        if payload is not None:
            changes["payload"] = payload
        self._set(row, **changes)

    def _refused(self, row: OutboxRow, error: SlackApiError, channel: str) -> str:
        """The error code, after stopping delivery for the ones only a person can fix."""
        code = slack_error(error)
        status = getattr(getattr(error, "response", None), "status_code", 200)
        if code in FATAL_ERRORS:
            self._set(row, state="due", last_error=code)
            raise DeliveryStopped(explain(code, channel=channel))
        if code == "ratelimited" or status == 429:
            self._set(row, state="due", last_error="ratelimited")
            raise _RateLimited()
        return code or f"HTTP {status}"

    # ------------------------------------------------------------ in the channel

    def _original(self, channel_id: str, ts: str) -> Original:
        if (channel_id, ts) not in self._originals:
            self._originals[(channel_id, ts)] = read_original(self.deliverer, channel_id, ts)
        return self._originals[(channel_id, ts)]

    def _in_channel(self, row: OutboxRow) -> None:
        if row.channel in self._unseen:
            return
        followup = followup_of(row.payload)
        if row.payload.get("standalone"):
            self._standalone(row, followup, self.deliverer.channel_id(row.channel), why=str(row.payload["standalone"]))
            return
        carrier = self.library.carrier(row.channel, followup.paper)
        if carrier is None:
            self._set(row, state="failed", last_error=f"no post carried {describe(followup)} in {row.channel}")
            self.report.failed += 1
            return
        if carrier.state != "sent" or not carrier.ts:
            return  # its post is not in Slack yet; the follow-up waits for it
        channel_id = self.deliverer.channel_id(row.channel)
        original = self._original(channel_id, carrier.ts)
        if row.kind == "followup":
            self._reply(row, followup, carrier, original, channel_id)
        else:
            self._update(row, followup, carrier, original, channel_id)

    def _reply(
        self, row: OutboxRow, followup: Followup, carrier: OutboxRow, original: Original, channel_id: str
    ) -> None:
        if row.key in original.replies:
            self._sent(row, original.replies[row.key])
            self.report.settled += 1
            return
        if original.message is None:
            self._standalone(row, followup, channel_id, why="the post that carried it was deleted")
            return
        paper = self.library.paper(followup.paper)
        message = render_followup(paper, followup, key=row.key, parent=carrier.key)
        self._set(row, state="sending", attempts=row.attempts + 1)
        ts = self._post(row, channel_id, message, thread_ts=carrier.ts, broadcast=KINDS[followup.kind].loud)
        if ts:
            original.replies[row.key] = ts
            self._sent(row, ts)
            self.report.posted += 1

    def _standalone(self, row: OutboxRow, followup: Followup, channel_id: str, *, why: str) -> None:
        """The follow-up posted to the channel on its own, naming the paper; the channel is read first."""
        try:
            history = read_history(
                self.deliverer.client, channel_id, oldest=epoch(row.created_at) - HISTORY_MARGIN.total_seconds()
            )
        except (SlackApiError, *UNKNOWN_OUTCOME) as error:
            raise _Unseen(type(error).__name__) from None
        note = f"posted on its own: {why}"
        payload = {**row.payload, "standalone": why}
        if row.key in history.keys:
            self._sent(row, history.keys[row.key], note=note, payload=payload)
            self.report.settled += 1
            return
        message = render_followup(self.library.paper(followup.paper), followup, key=row.key, standalone=True)
        self._set(row, state="sending", attempts=row.attempts + 1, payload=payload)
        ts = self._post(row, channel_id, message)
        if ts:
            self._sent(row, ts, note=note, payload=payload)
            self.report.posted += 1
            problem = f"follow-up on {describe(followup)} posted in {row.channel} on its own: {why}"
            self.report.problems.append(problem)
            log.warning(problem)

    def _update(
        self, row: OutboxRow, followup: Followup, carrier: OutboxRow, original: Original, channel_id: str
    ) -> None:
        if original.message is None:
            self._set(row, state="skipped", last_error="the post that carried it was deleted")
            return
        message = self._updated(carrier, original.message)
        unchanged = (message.blocks, message.metadata) == (
            original.message.get("blocks") or [],
            original.message.get("metadata"),
        )
        if unchanged:
            self._sent(row, carrier.ts)
            self.report.settled += 1
            return
        self._set(row, state="sending", attempts=row.attempts + 1)
        try:
            self.deliverer.update(channel_id, carrier.ts, message)
        except SlackApiError as error:
            code = self._refused(row, error, row.channel)
            if code in CANNOT_EDIT:
                why = f"Slack would not let il2watch edit the post that carried it ({code})"
                self._set(row, state="failed", last_error=why)
                self.report.failed += 1
                self._owe_standalone(row, followup, why)
                return
            self._set(row, last_error=code)
            self.report.problems.append(f"Slack did not confirm the update for {describe(followup)} ({code})")
            return
        except UNKNOWN_OUTCOME as error:
            self._set(row, last_error=f"{type(error).__name__}: {error}"[:200])
            self.report.problems.append(
                f"Slack did not confirm the update for {describe(followup)}; done again next time"
            )
            return
        original.message = {**original.message, "text": message.text, "blocks": message.blocks}
        original.message["metadata"] = message.metadata
        self._sent(row, carrier.ts)
        self.report.updated += 1

    def _updated(self, carrier: OutboxRow, message: dict[str, Any]) -> Message:
        """The post with the banner of every follow-up told about the papers it carries."""
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        if carrier.kind == "paper":
            shown = [paper_key(str(payload.get("paper") or payload.get("pmid") or (carrier.papers or ("",))[0]))]
        else:  # a digest's papers in its order, by their keys (only PMIDs in a digest posted before identities)
            listed = payload.get("papers") or payload.get("pmids") or carrier.papers
            shown = [paper_key(str(p)) for p in listed]
        everything = told(self.library, shown)
        told_here = [f for paper in shown for f in everything.get(paper, [])]
        papers = {p.key: p for p in self.library.papers(shown)}
        numbers = {paper: n for n, paper in enumerate(shown, 1)} if carrier.kind == "digest" else None
        text = banner([(f, papers.get(f.paper)) for f in told_here], numbers=numbers)
        return updated_post(message, text, told_here)

    def _owe_standalone(self, row: OutboxRow, followup: Followup, why: str) -> None:
        key = standalone_key(followup, row.channel)
        with self.library.transaction():
            if self.library.outbox_row(key) is None:
                payload = {**row.payload, "standalone": why}
                self.library.enqueue(key=key, channel=row.channel, kind="followup", papers=(), payload=payload)

    # ------------------------------------------------------------ direct messages

    def _dm(self, row: OutboxRow) -> None:
        user, followup = row.channel, followup_of(row.payload)
        if not self.library.notify_enabled(user):
            self._set(row, state="skipped", last_error=f"{user} turned direct messages off")
            return
        try:
            opened = self.deliverer.client.conversations_open(users=user)
            channel_id = str(opened["channel"]["id"])
            if row.state == "sending":  # an earlier attempt's outcome is unknown: look before sending again
                history = read_history(
                    self.deliverer.client, channel_id, oldest=epoch(row.created_at) - HISTORY_MARGIN.total_seconds()
                )
                if row.key in history.keys:
                    self._sent(row, history.keys[row.key])
                    self.report.settled += 1
                    return
        except SlackApiError as error:
            code = slack_error(error)
            if code in ("missing_scope", "user_not_found", "cannot_dm_bot", "user_disabled", "not_allowed_token_type"):
                why = "needs the im:write and im:history scopes: reinstall the app" if code == "missing_scope" else code
                self._set(row, state="failed", last_error=f"direct message to {user} not sent ({why})")
                self.report.failed += 1
                self.report.problems.append(f"direct message to {user} about {describe(followup)}: {why}")
                return
            self._refused(row, error, user)
            raise _Unseen(code) from None
        except UNKNOWN_OUTCOME as error:
            raise _Unseen(type(error).__name__) from None
        paper = self.library.paper(followup.paper)
        message = render_followup_dm(paper, followup, key=row.key, command=self.deliverer.renderer.command)
        self._set(row, state="sending", attempts=row.attempts + 1)
        ts = self._post(row, channel_id, message)
        if ts:
            self._sent(row, ts)
            self.report.posted += 1

    # ------------------------------------------------------------ posting

    def _post(
        self, row: OutboxRow, channel_id: str, message: Message, *, thread_ts: str = "", broadcast: bool = False
    ) -> str:
        """Post once; "" when the outcome is unknown (the row stays sending, checked next time)."""
        try:
            return self.deliverer.post(channel_id, row.channel, message, thread_ts=thread_ts, broadcast=broadcast)
        except SlackApiError as error:
            code = self._refused(row, error, row.channel)
            if code in GONE and thread_ts:  # the post was deleted a moment ago: tell it on its own next
                self._set(
                    row, state="due", payload={**row.payload, "standalone": "the post that carried it was deleted"}
                )
                return ""
            self._set(row, state="failed", last_error=f"Slack refused it ({code})")
            self.report.failed += 1
            self.report.problems.append(f"{row.kind} {row.key[:12]}: Slack refused it ({code})")
            return ""
        except UNKNOWN_OUTCOME as error:
            self._set(row, last_error=f"{type(error).__name__}: {error}"[:200])
            self.report.problems.append(
                f"Slack did not confirm {row.kind} {row.key[:12]} ({type(error).__name__}); it is checked next time"
            )
            return ""


class _RateLimited(Exception):
    pass


def describe(followup: Followup) -> str:
    return describe_key(followup.paper)


def deliver_followups(deliverer: Deliverer, report: DeliveryReport) -> None:
    """Deliver every follow-up row that is due (the deliverer's last step in each round)."""
    FollowupDelivery(deliverer, report).deliver()
