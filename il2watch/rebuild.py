"""Rebuild a lost library's essential state from the Slack channel itself.

Every il2watch message carries metadata saying what it stands for: the PMIDs it posted, the outbox key,
and the poll's watermark (when it ran, and the entry date each watch had covered). When il2watch starts
on an empty library (a fresh disk, a deleted file) it reads that back: what was posted is claimed again,
so nothing is posted twice, and each watch resumes from its last watermark instead of starting a new
baseline. Limits are in docs/reliability.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from il2watch import followup_check
from il2watch.config import Settings
from il2watch.deliver import UNKNOWN_OUTCOME, DeliveryStopped
from il2watch.identity import ids_from_tokens, parse_token
from il2watch.library import Library, utcnow
from il2watch.model import Watch
from il2watch.render.paper import posted_tokens
from il2watch.slack_client import explain, resolve_channel, slack_error

log = logging.getLogger("il2watch.rebuild")


@dataclass
class RebuildReport:
    messages: int = 0
    posted_papers: int = 0
    horizons: dict[str, str] = field(default_factory=dict)
    watches_added: list[str] = field(default_factory=list)
    followups: int = 0  # follow-ups told before, read back from the posts they updated and their replies

    def line(self) -> str:
        return (
            f"{self.messages} il2watch message(s) read, {self.posted_papers} posted paper(s) remembered, "
            f"{self.followups} follow-up(s) told, watermarks for {', '.join(sorted(self.horizons)) or 'no watch'}"
        )


def _own_messages(client: WebClient, channel_id: str, me: dict[str, str]) -> list[dict[str, Any]]:
    """Every message il2watch's bot posted in the channel with il2watch metadata, oldest first."""
    found = []
    cursor = None
    while True:
        response = client.conversations_history(channel=channel_id, cursor=cursor, limit=200, include_all_metadata=True)
        messages: list[dict[str, Any]] = response.get("messages", [])
        for message in messages:
            metadata = message.get("metadata") or {}
            if not str(metadata.get("event_type", "")).startswith("il2watch_"):
                continue
            if message.get("bot_id") != me.get("bot_id") and message.get("user") != me.get("user_id"):
                continue  # someone else's app imitating ours is not evidence
            found.append(message)
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    found.sort(key=lambda m: float(m.get("ts", 0)))
    return found


def _listed(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def rebuild_from_channels(
    library: Library, client: WebClient, settings: Settings, watches: Sequence[Watch]
) -> RebuildReport:
    """Restore posts, watermarks and Slack-added watches from every channel il2watch posts to."""
    report = RebuildReport()
    channels = sorted({w.channel or settings.channel for w in watches} - {""})
    if not channels:
        return report
    try:
        auth = client.auth_test()
        me = {"bot_id": str(auth.get("bot_id", "")), "user_id": str(auth.get("user_id", ""))}
    except SlackApiError as error:
        raise DeliveryStopped(explain(slack_error(error))) from None
    except UNKNOWN_OUTCOME as error:
        raise DeliveryStopped(
            f"cannot reach Slack to check the channel before the first post ({type(error).__name__}); nothing posted"
        ) from None

    history: list[tuple[str, dict[str, Any]]] = []
    for name in channels:
        try:
            channel_id = resolve_channel(client, name)
            history += [(name, m) for m in _own_messages(client, channel_id, me)]
        except SlackApiError as error:
            code = slack_error(error)
            if code == "not_in_channel":
                continue  # the bot never was in it, so it never posted there
            raise DeliveryStopped(explain(code, channel=name)) from None
        except UNKNOWN_OUTCOME as error:
            raise DeliveryStopped(
                f"cannot read channel {name}'s history ({type(error).__name__}); nothing posted, try again"
            ) from None
    report.messages = len(history)
    if not history:
        return report

    known = {w.id: w for w in watches}
    with library.transaction():
        for channel, message in history:
            metadata = message["metadata"]
            event_type, payload = metadata["event_type"], metadata.get("event_payload") or {}
            ts = str(message.get("ts", ""))
            for watch_id, horizon in ((payload.get("watermark") or {}).get("horizons") or {}).items():
                if str(horizon) > report.horizons.get(str(watch_id), ""):
                    report.horizons[str(watch_id)] = str(horizon)
            if event_type == "il2watch_watch" and isinstance(payload.get("watch"), dict):
                spec = payload["watch"]
                watch = Watch(
                    id=str(spec.get("id", "")),
                    pmid=str(spec.get("pmid", "") or ""),
                    query=str(spec.get("query", "") or ""),
                    label=str(spec.get("label", "") or ""),
                    channel=str(spec.get("channel", "") or ""),
                    source="slack",
                )
                if not watch.id:
                    continue
                if payload.get("action") == "added":
                    library.add_watch(watch, added_by=str(payload.get("by", "")))
                    known[watch.id] = watch
                    report.watches_added.append(watch.id)
                elif payload.get("action") == "removed":
                    library.remove_watch(watch.id)
                continue
            # what posts and follow-up messages say about follow-ups: nothing told again, nothing re-posted
            report.followups += followup_check.restore(library, channel, event_type, payload, now=utcnow())
            if event_type == "il2watch_note" and payload.get("kind") == "source_baseline":
                # a source that was enabled later has had its baseline: what it lists next is news, and what
                # it recorded then is recorded quietly again (see discovery.SourceBaseline)
                source, watch_id = str(payload.get("source") or ""), str(payload.get("watch") or "")
                library.set_state(f"source_started:{source}:{watch_id}", ts)
                named = [t for t in (parse_token(str(p)) for p in _listed(payload.get("papers"))) if t is not None]
                entered_by = str(payload.get("entered_by") or "")
                library.save_source_baseline(
                    source,
                    watch_id,
                    [f"{kind}:{value}" for kind, value in named],
                    entered_by if _is_date(entered_by) else "",
                )
                continue
            tokens = posted_tokens(event_type, payload)
            if not tokens:
                continue
            if event_type == "il2watch_paper":
                papers = [tokens[0]]  # its identity ("paper"), or its PMID for a post made before identities
                library.save_ids(tokens[0], ids_from_tokens(tokens))
            else:
                papers = tokens
            key = str(payload.get("key") or f"restored-{channel}-{ts}")
            if library.outbox_row(key) is not None:
                continue
            fresh = [p for p in papers if p not in library.claimed(channel, [p])]
            library.enqueue(
                key=key,
                channel=channel,
                kind="paper" if event_type == "il2watch_paper" else "digest",
                papers=fresh,
                payload={"restored_from": ts},
                state="sent",
                ts=ts,
                sent_at=utcnow(),
            )
            report.posted_papers += len(fresh)
        for watch_id, horizon in report.horizons.items():
            if watch_id in known:
                library.set_watch_progress(known[watch_id], horizon=horizon, restored=True)
        library.set_state("rebuilt_at", utcnow())
    log.info("rebuilt from Slack: %s", report.line())
    return report
