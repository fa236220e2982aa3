"""``il2watch doctor``: check every setting and connection, one line each, ✓ or ✗ with the fix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from il2watch import pubmed
from il2watch.config import Settings, describe_missing
from il2watch.deliver import UNKNOWN_OUTCOME
from il2watch.eutils import EutilsError
from il2watch.library import Library, LibraryError
from il2watch.pubmed import PubMedError
from il2watch.slack_client import explain, make_client, resolve_channel, slack_error

# What il2watch calls, and the scope each call needs.
NEEDED_SCOPES = {
    "chat:write": "post papers and replies",
    "channels:history": "check the channel before posting and rebuild a lost library",
    "groups:history": "the same in private channels",
    "channels:read": "find a channel by name",
    "groups:read": "find a private channel by name",
    "channels:join": "join a public channel by itself",
    "commands": "answer /il2",
    "files:write": "upload /il2 export files",
}


@dataclass(frozen=True)
class Check:
    ok: bool
    what: str
    fix: str = ""
    warning: bool = False  # not fatal: il2watch works, but not fully

    def line(self) -> str:
        mark = "✓" if self.ok else ("!" if self.warning else "✗")
        return f"{mark} {self.what}" + (f" — {self.fix}" if self.fix else "")


def run_checks(
    settings: Settings,
    *,
    eutils_factory: Callable[[], pubmed.Eutils] | None = None,
    slack: WebClient | None = None,
    watches=None,
) -> Iterator[Check]:
    from il2watch.service import make_eutils

    yield Check(True, f"settings read ({settings.config_file or 'no config file; built-in defaults'})")
    if settings.ncbi_email:
        yield Check(True, f"NCBI_EMAIL is {settings.ncbi_email}")
    else:
        yield Check(
            False,
            "NCBI_EMAIL is not set",
            "export NCBI_EMAIL=you@lab.org (NCBI asks every client for it)",
            warning=True,
        )

    try:
        with Library(settings.db_path) as library:
            with library.transaction():
                library.set_state("doctor_checked", "yes")
            yield Check(True, f"library {settings.db_path} is writable ({library.count_papers()} papers)")
            from il2watch.service import all_watches

            watches = watches or all_watches(settings, library)
    except LibraryError as error:
        yield Check(False, f"library {settings.db_path}", str(error))
        watches = watches or list(settings.watches)

    client = (eutils_factory or (lambda: make_eutils(settings)))()
    try:
        info = pubmed.database_info(client)
        yield Check(True, f"NCBI E-utilities answer at {settings.eutils_url} (PubMed: {info['count']} records)")
        pmids = [w.pmid for w in watches if w.pmid]
        known = pubmed.verify_pmids(client, pmids)
        for watch in watches:
            if watch.pmid and watch.pmid in known:
                title = known[watch.pmid]
                yield Check(
                    True,
                    f"watch {watch.id}: PMID {watch.pmid} exists ({title if len(title) <= 60 else title[:59] + '…'})",
                )
            elif watch.pmid:
                yield Check(
                    False,
                    f"watch {watch.id}: PMID {watch.pmid} is not in PubMed",
                    "fix the pmid in config/il2watch.toml",
                )
    except (EutilsError, PubMedError) as error:
        yield Check(False, f"NCBI E-utilities at {settings.eutils_url}", str(error))

    if not settings.slack_bot_token:
        yield Check(
            False,
            "SLACK_BOT_TOKEN is not set",
            describe_missing("slack_bot_token", "to post to Slack")
            + "; until then `il2watch poll` prints what it would post",
            warning=True,
        )
        return
    slack = slack or make_client(settings)
    try:
        response = slack.auth_test()
        yield Check(True, f"Slack token works: bot {response.get('user')} in {response.get('team')}")
        granted = {
            s.strip()
            for s in (response.headers.get("x-oauth-scopes") or response.headers.get("X-OAuth-Scopes") or "").split(",")
            if s.strip()
        }
        missing = [f"{scope} ({why})" for scope, why in NEEDED_SCOPES.items() if scope not in granted]
        if granted and missing:
            yield Check(
                False,
                "Slack scopes missing: " + "; ".join(missing),
                "add them under OAuth & Permissions (or from config/slack-manifest.yml) and reinstall",
            )
        elif granted:
            yield Check(True, "Slack scopes: all granted")
    except SlackApiError as error:
        yield Check(False, "Slack token", explain(slack_error(error)))
        return
    except UNKNOWN_OUTCOME as error:
        yield Check(False, f"Slack at {settings.slack_api_url}", f"cannot reach it ({type(error).__name__})")
        return

    channels = sorted({w.channel or settings.channel for w in watches} | ({settings.alert_channel} - {""}))
    for name in channels:
        if not name:
            yield Check(False, "IL2WATCH_CHANNEL is not set", describe_missing("channel", "where to post"))
            continue
        try:
            channel_id = resolve_channel(slack, name)
            if channel_id[0] in "UW":
                yield Check(True, f"alerts go to user {channel_id} as a direct message")
                continue
            info = slack.conversations_info(channel=channel_id).get("channel", {})
            if info.get("is_archived"):
                yield Check(False, f"channel {name} is archived", "unarchive it or choose another channel")
            elif info.get("is_member"):
                yield Check(True, f"the bot can post in {name} ({channel_id})")
            elif info.get("is_private"):
                yield Check(False, f"the bot is not in private channel {name}", "invite it: /invite @il2watch")
            else:
                yield Check(True, f"channel {name} ({channel_id}) is public; the bot joins it on its first post")
        except SlackApiError as error:
            yield Check(False, f"channel {name}", explain(slack_error(error), channel=name))

    if settings.slack_app_token:
        try:
            make_client(settings, token=settings.slack_app_token).apps_connections_open(
                app_token=settings.slack_app_token
            )
            yield Check(True, "SLACK_APP_TOKEN opens a Socket Mode connection")
        except SlackApiError as error:
            yield Check(
                False,
                "SLACK_APP_TOKEN",
                explain(slack_error(error)) + " (an app-level token, xapp-…, with connections:write)",
            )
    else:
        yield Check(
            False,
            "SLACK_APP_TOKEN is not set",
            "commands need Socket Mode (`il2watch run`) with an "
            "app-level token, or `il2watch serve` with SLACK_SIGNING_SECRET",
            warning=True,
        )
