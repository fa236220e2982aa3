"""What il2watch is doing, read from the library: the same facts for ``/il2 status``, the App Home and
``il2watch status`` in a terminal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from il2watch.commands.reply import Context, Reply
from il2watch.config import Settings
from il2watch.identity import describe_key
from il2watch.lease import live_holder
from il2watch.library import INTERRUPTED_RUN, Library
from il2watch.markup import counted, escape_mrkdwn
from il2watch.model import SOURCES
from il2watch.render.blocks import MAX_FALLBACK_TEXT, clip, section

OUTBOX_STATES = ("due", "waiting", "sending", "sent", "bundled", "failed")
FAILED_SHOWN = 5  # failed posts named in status; the rest are counted


def _failed_posts(library: Library) -> list[dict[str, Any]]:
    """The newest posts Slack refused for good (or that could not be rendered), with why."""
    return [
        {"kind": row.kind, "papers": list(row.papers), "key": row.key, "error": row.last_error or "no reason recorded"}
        for row in library.outbox("failed", newest=FAILED_SHOWN)
    ]


def _describe_post(post: dict[str, Any]) -> str:
    papers = post["papers"]
    if len(papers) == 1:
        what = describe_key(papers[0])
    else:
        what = post["key"][:8] + (f", {len(papers)} papers" if papers else "")
    return f"{post['kind']} {what}: {post['error']}"


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _last_failure(library: Library) -> dict[str, Any] | None:
    errors = [run for run in (library.last_run("poll", status=s) for s in ("error", "interrupted")) if run]
    return max(errors, key=lambda run: run["id"]) if errors else None


def _sources(library: Library, settings: Settings) -> list[dict[str, Any]]:
    """Each enabled source's health as its last poll recorded it, and its refresh interval."""
    found = []
    for name in settings.enabled_sources:
        recorded = library.source_status(name)
        found.append(
            {
                "source": name,
                "label": SOURCES.get(name, name),
                "status": str(recorded.get("status") or "not asked yet"),
                "at": str(recorded.get("at") or ""),
                "error": str(recorded.get("error") or ""),
                "listed": int(recorded.get("listed") or 0),
                "last_ok_at": library.source_ok_at(name),
                "refresh": settings.refresh_of(name),
            }
        )
    return found


def _source_line(source: dict[str, Any], now: str, zone: str) -> str:
    """'ok, 143 works listed, asked 2026-12-01 09:00 UTC (3 h ago); asked every 1d' and the like."""
    status = source["status"]
    if status == "not asked yet":
        return "not asked yet (the next poll asks it)"
    what = {"ok": "ok", "partial": "answered, with problems", "failed": "failing"}.get(status, status)
    line = f"{what}, {source['listed']:,} works listed, asked {_ago(source['at'], now, zone)}"
    if status != "ok" and source["last_ok_at"]:
        line += f"; last answered {_ago(source['last_ok_at'], now, zone)}"
    if source["error"]:
        line += f": {source['error']}"
    if source["refresh"]:
        line += f"; asked at most every {_duration(source['refresh'])}"
    return line


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def status_facts(library: Library, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Every fact ``status`` reports, as plain values (JSON-ready)."""
    now = now or datetime.now(UTC)
    last = library.last_run("poll")
    last_ok = library.last_run("poll", status="ok")
    configured = {w.id for w in settings.watches}
    slack_added = [w for w in library.slack_watches() if w.id not in configured]
    poller = live_holder(library, clock=now.timestamp)
    worker = library.get_state("lease_holder")
    failures = library.consecutive_failures("poll", live_holder=poller)
    if last and last.get("status") == "running" and not (last.get("holder") and last.get("holder") == poller):
        # killed, crashed or out of disk: its process no longer holds the lease, so nothing will finish it
        last = {**last, "status": "interrupted", "error": INTERRUPTED_RUN}
    outbox = {state: library.count_outbox(state) for state in OUTBOX_STATES}
    relevant, not_relevant = library.feedback_totals()
    delivery_error = library.last_delivery_error()
    last_failed = last if last and last["status"] == "interrupted" else _last_failure(library)
    error = str((last or {}).get("error") or "") if failures else ""
    if last is None:
        ncbi = "unknown (no poll yet)"
    elif failures and ("NCBI" in error or "E-utilities" in error):
        ncbi = f"failing ({counted(failures, 'poll')} in a row)"
    else:
        ncbi = "ok"
    if not settings.slack_bot_token:
        slack = "not configured (no SLACK_BOT_TOKEN): polls print what they would post"
    elif failures and any(word in error for word in ("Slack", "SLACK_", "channel", "bot")):
        slack = f"failing ({counted(failures, 'poll')} in a row)"
    elif outbox["failed"]:
        slack = f"{counted(outbox['failed'], 'post')} failed"
    elif outbox["sending"]:
        slack = f"{counted(outbox['sending'], 'post')} with an unknown outcome, to be checked against the channel"
    else:
        slack = "ok" if outbox["sent"] or last is not None else "unknown (nothing posted yet)"
    return {
        "now": now.isoformat(timespec="seconds"),
        "last_poll": {
            key: last.get(key)
            for key in ("started_at", "finished_at", "status", "error", "new", "stored", "queued", "posted", "requests")
        }
        if last
        else None,
        "last_ok_poll_at": (last_ok or {}).get("finished_at") or "",
        "next_poll_at": library.get_state("next_poll_at") if poller and poller == worker else "",
        "lease_holder": poller if poller and poller == worker else "",
        "poller": poller if poller != worker else "",  # a one-off poll (il2watch poll, /il2 poll) holds the lease
        "last_worker": worker if worker and worker != poller else "",
        "schedule": settings.schedule,
        "timezone": settings.timezone,
        "consecutive_failures": failures,
        "papers": library.count_papers(),
        "cites": library.count_with_reason("cites"),
        "similar": library.count_with_reason("similar"),
        "query": library.count_with_reason("query"),
        "watches": len(settings.watches) + len(slack_added),
        "slack_watches": len(slack_added),
        "outbox": outbox,
        "feedback": {"relevant": relevant, "not_relevant": not_relevant},
        "saved": library.count_saved(),
        "ncbi": ncbi,
        "sources": _sources(library, settings),
        "slack": slack,
        "last_error": str((last_failed or {}).get("error") or ""),
        "last_error_at": str((last_failed or {}).get("finished_at") or (last_failed or {}).get("started_at") or ""),
        "last_delivery_error": delivery_error,
        "last_followups": _last_followups(library),
        "followup_schedule": settings.followup_schedule,
        **_pubmed_problems(library),
        "failed_posts": _failed_posts(library),
    }


def _last_followups(library: Library) -> dict[str, Any] | None:
    """The last check of posted papers for retractions, errata and journal versions."""
    run = library.last_run("followups")
    if run is None:
        return None
    return {key: run.get(key) for key in ("started_at", "finished_at", "status", "error", "candidates", "new")}


def _pubmed_problems(library: Library) -> dict[str, Any]:
    """Single watches the last poll could not serve or warned about, and records PubMed sends unreadable."""
    at, lines = library.watch_problems()
    unreadable = [
        f"PMID {row['pmid']}: {row['reason']} ({row['attempts']} tries since {row['first_failed'][:10]}; "
        f"next {row['next_try'][:16].replace('T', ' ')})"
        for row in library.unreadable()
    ]
    return {"watch_problems": lines, "watch_problems_at": at, "unreadable_records": unreadable}


def _ago(moment_text: str, now_text: str, zone: str = "UTC") -> str:
    """'2024-06-01 10:01 UTC (2 h ago)', in the configured time zone."""
    moment, now = _parse_time(moment_text), _parse_time(now_text)
    if moment is None or now is None:
        return moment_text or "never"
    seconds = (now - moment).total_seconds()
    stamp = moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")
    span = abs(seconds)
    if span < 90:
        words = f"{span:.0f} s"
    elif span < 5400:
        words = f"{span / 60:.0f} min"
    elif span < 172800:
        words = f"{span / 3600:.0f} h"
    else:
        words = f"{span / 86400:.0f} days"
    return f"{stamp} ({words} ago)" if seconds >= 0 else f"{stamp} (in {words})"


def format_status_text(facts: dict[str, Any]) -> str:
    """The facts as plain lines, for a terminal (and, escaped, for Slack)."""
    zone = facts.get("timezone") or "UTC"
    now = facts["now"]
    last = facts["last_poll"]
    lines = []
    if last:
        when = _ago(last.get("finished_at") or last.get("started_at") or "", now, zone)
        if last.get("status") == "ok":
            what = f"ok, {last.get('new') or 0} new, {last.get('posted') or 0} posted"
        else:
            what = str(last.get("status") or "unknown")
        lines.append(f"Last poll: {when}: {what}")
    else:
        lines.append("Last poll: never")
    if facts["last_ok_poll_at"] and (not last or last.get("status") != "ok"):
        lines.append(f"Last successful poll: {_ago(facts['last_ok_poll_at'], now, zone)}")
    if facts["next_poll_at"]:
        next_poll = _ago(facts["next_poll_at"], now, zone)
    elif facts["lease_holder"]:
        next_poll = f"when the running poll has finished (schedule: {facts['schedule']})"
    else:
        next_poll = f"not scheduled: no worker is running (schedule: {facts['schedule']})"
    lines.append(f"Next poll: {next_poll}")
    checked = facts.get("last_followups")
    schedule = facts.get("followup_schedule", "")
    if checked:
        when = _ago(checked.get("finished_at") or checked.get("started_at") or "", now, zone)
        if checked.get("status") == "ok":
            what = f"ok, {checked.get('candidates') or 0} posted papers, {checked.get('new') or 0} new follow-ups"
        else:
            what = f"{checked.get('status') or 'unknown'}" + (f" ({checked['error']})" if checked.get("error") else "")
        lines.append(f"Follow-up check: {when}: {what} (schedule: {schedule})")
    elif schedule:
        lines.append(f"Follow-up check: never (schedule: {schedule})")
    if facts["lease_holder"]:
        lines.append(f"Worker: {facts['lease_holder']}")
    else:
        last_worker = f" (the last was {facts['last_worker']})" if facts["last_worker"] else ""
        lines.append(f"Worker: none running{last_worker}")
    if facts["poller"]:
        lines.append(f"Polling now: {facts['poller']}")
    lines.append(
        f"Library: {facts['papers']:,} papers; {facts['cites']:,} citing a watched paper, "
        f"{facts['similar']:,} similar, {facts['query']:,} from queries"
    )
    lines.append(f"Watches: {facts['watches']} ({facts['slack_watches']} added from Slack)")
    box = facts["outbox"]
    lines.append(
        f"Posts: {box['sent']:,} sent, {box['due']:,} due, {box['waiting']:,} waiting for a digest, "
        f"{box['failed']:,} failed"
    )
    fb = facts["feedback"]
    lines.append(
        f"Feedback: {fb['relevant']:,} relevant, {fb['not_relevant']:,} not relevant; "
        f"{facts['saved']:,} saved to reading lists"
    )
    lines.append(f"NCBI: {facts['ncbi']}")
    for source in facts.get("sources", []):
        lines.append(f"Source {source['label']}: {_source_line(source, now, zone)}")
    lines.append(f"Slack: {facts['slack']}")
    if facts["last_error"]:
        lines.append(f"Last error: {_ago(facts['last_error_at'], now, zone)}: {facts['last_error']}")
    if facts["last_delivery_error"]:
        lines.append(f"Last delivery error: {facts['last_delivery_error']}")
    lines += [f"Watch problem: {line}" for line in facts.get("watch_problems", [])]
    lines += [f"Unreadable PubMed record: {line}" for line in facts.get("unreadable_records", [])]
    failed = facts["failed_posts"]
    if failed:
        more = box["failed"] - len(failed)
        listed = "; ".join(_describe_post(post) for post in failed) + (f"; and {more} more" if more > 0 else "")
        lines.append(f"Failed posts: {listed}")
    return "\n".join(lines)


def status_mrkdwn(facts: dict[str, Any]) -> str:
    """The status lines for Slack: each label bold, every value escaped."""
    lines = []
    for line in format_status_text(facts).split("\n"):
        label, _, value = line.partition(": ")
        lines.append(f"*{escape_mrkdwn(label)}:* {escape_mrkdwn(value)}")
    return "\n".join(lines)


def status(args: str, ctx: Context, offset: int = 0) -> Reply:
    facts = status_facts(ctx.library, ctx.settings, ctx.now())
    text = status_mrkdwn(facts)
    return Reply(
        text=clip("il2watch status: " + escape_mrkdwn(facts["ncbi"]), MAX_FALLBACK_TEXT),
        blocks=[section("*il2watch status*\n" + text)],
        shareable=True,
    )
