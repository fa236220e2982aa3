"""``il2watch doctor``: check every setting and connection, one line each, ✓ or ✗ with the fix.

It reports every bad setting at once and goes on checking what the others allow; it never creates the
library, tries each host once with a short timeout, and says which token a Slack refusal is about.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from il2watch import intel, pubmed, redact
from il2watch.config import OPTIONS_BY_ATTR, Settings, describe_missing
from il2watch.deliver import UNKNOWN_OUTCOME
from il2watch.library import Library, LibraryError
from il2watch.model import SOURCES, Watch
from il2watch.pubmed import PubMedError
from il2watch.slack_client import explain, make_client, resolve_channel, slack_error
from il2watch.sources import KINDS, SourceError, make_source
from il2watch.transport import TransportError

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
    "im:write": "send /il2 export files, and word of a retraction, to a person in a direct message",
    "im:history": "check a direct message whose answer was lost before sending it again",
}
CHECK_TIMEOUT = 10.0  # seconds doctor waits for any host: it asks once, and a person is waiting

BOT_TOKEN_HELP = "the Bot User OAuth Token (xoxb-…) from OAuth & Permissions"
APP_TOKEN_HELP = "an app-level token (xapp-…) with connections:write, from Basic Information → App-Level Tokens"


@dataclass(frozen=True)
class Check:
    ok: bool
    what: str
    fix: str = ""
    warning: bool = False  # not fatal: il2watch works, but not fully

    def line(self) -> str:
        mark = "✓" if self.ok else ("!" if self.warning else "✗")
        return redact.scrub(f"{mark} {self.what}" + (f" — {self.fix}" if self.fix else ""))


def explain_token(slot: str, code: str) -> str:
    """One line for Slack refusing the token in ``slot`` (SLACK_BOT_TOKEN or SLACK_APP_TOKEN)."""
    bot = slot == "SLACK_BOT_TOKEN"
    wanted = BOT_TOKEN_HELP if bot else APP_TOKEN_HELP
    if code == "not_allowed_token_type":
        other = "an app-level (xapp-…) or user token" if bot else "a bot (xoxb-…) or user token"
        return f"{slot} holds {other}, not the kind this slot needs (not_allowed_token_type): put {wanted} there"
    if code in ("invalid_auth", "not_authed"):
        return f"{slot} is not valid ({code}): copy {wanted} again"
    if code in ("token_revoked", "token_expired", "account_inactive"):
        return f"{slot} no longer works ({code}): reinstall the app, or generate a new token, and set {wanted}"
    if code == "missing_scope" and not bot:
        return f"{slot} lacks the connections:write scope (missing_scope): generate {wanted}"
    if code == "socket_mode_not_enabled":
        return (
            "Socket Mode is off for this app (socket_mode_not_enabled): turn it on under Socket Mode, "
            "or answer over HTTP with `il2watch serve` and SLACK_SIGNING_SECRET"
        )
    return explain(code) if bot else f"Slack refused {slot} ({code or 'no error code'})"


def _token_kind_problem(slot: str, token: str) -> str:
    """A token in the wrong slot, seen from its prefix before Slack is asked."""
    if slot == "SLACK_BOT_TOKEN" and token.startswith("xapp-"):
        return explain_token(slot, "not_allowed_token_type")
    if slot == "SLACK_APP_TOKEN" and token.startswith(("xoxb-", "xoxp-")):
        return explain_token(slot, "not_allowed_token_type")
    return ""


def _quick(settings: Settings) -> Settings:
    """The settings for a check: one attempt per host, a short timeout."""
    return settings.with_overrides(
        ncbi_attempts=1,
        http_attempts=1,
        http_timeout=min(settings.http_timeout, CHECK_TIMEOUT),
        ncbi_timeout=min(settings.ncbi_timeout, CHECK_TIMEOUT),
        request_deadline=min(settings.request_deadline, 2 * CHECK_TIMEOUT),
        slack_timeout=min(settings.slack_timeout, CHECK_TIMEOUT),
    )


def _library_checks(settings: Settings) -> tuple[list[Check], list[Watch] | None]:
    """The library, never created here: doctor only looks. The checks, and the watches it holds."""
    checks, watches = _library_location_checks(settings)
    return [*_precedence_checks(settings), *checks], watches


def _precedence_checks(settings: Settings) -> list[Check]:
    from il2watch.store import describe

    if settings.database_url and settings.database_url != str(settings.db_path):
        return [
            Check(
                False,
                f"DATABASE_URL ({describe(settings.database_url)}) is set, but IL2WATCH_DB wins",
                f"the library is {describe(str(settings.db_path))}; unset IL2WATCH_DB to use DATABASE_URL",
                warning=True,
            )
        ]
    return []


def _library_location_checks(settings: Settings) -> tuple[list[Check], list[Watch] | None]:
    from il2watch.store import is_postgres

    path = str(settings.db_path)
    if is_postgres(path):
        return _postgres_checks(settings)
    if not path.startswith("file:") and not Path(path).exists():
        missing = Check(
            False, f"library {path} does not exist yet", "the first `il2watch poll` creates it", warning=True
        )
        return [missing], None
    try:
        with Library(settings.db_path) as library:
            with library.transaction():
                library.set_state("doctor_checked", "yes")
            from il2watch.service import all_watches

            return [Check(True, f"library {path} is writable ({library.count_papers()} papers)")], all_watches(
                settings, library
            )
    except LibraryError as error:
        return [Check(False, f"library {path}", str(error))], None


def _postgres_checks(settings: Settings) -> tuple[list[Check], list[Watch] | None]:
    """PostgreSQL: the connection, the schema's version, and what il2watch's role may do there."""
    from il2watch.service import all_watches
    from il2watch.store import describe
    from il2watch.store.postgres import migration_names, reachable

    url = str(settings.db_path)
    name = describe(url)
    checks: list[Check] = []
    why = reachable(url, timeout=int(CHECK_TIMEOUT))
    if why:
        fix = "check DATABASE_URL (host, port, user, password, sslmode) and that the server is up"
        return [*checks, Check(False, f"library {name}: cannot connect ({why})", fix)], None
    try:
        with Library(url, migrate=False) as library:
            checks.append(Check(True, f"library {name} answers"))
            missing = library.privileges_missing()
            if missing:
                checks.append(
                    Check(False, f"il2watch's role lacks: {'; '.join(missing)}", "GRANT them to the role in the URL")
                )
            else:
                checks.append(Check(True, "il2watch's role may read and write every table and create in the schema"))
            if any(line.endswith(" on il2watch_migrations") for line in missing):
                return checks, None  # its version cannot be read
            applied, known = library.applied_migrations(), migration_names()
            if not applied:
                checks.append(Check(False, f"library {name} has no il2watch schema yet", FIRST_POLL, warning=True))
                return checks, None
            newer = sorted(set(applied) - set(known))
            pending = [m for m in known if m not in applied]
            if newer:
                checks.append(
                    Check(False, f"schema written by a newer il2watch ({', '.join(newer)})", "upgrade il2watch here")
                )
            elif pending:
                checks.append(
                    Check(
                        False,
                        f"schema {len(pending)} version(s) behind ({', '.join(pending)})",
                        "il2watch brings it up to date when it next starts",
                        warning=True,
                    )
                )
            else:
                checks.append(Check(True, f"schema up to date ({known[-1]}); {library.count_papers()} papers"))
                return checks, all_watches(settings, library)
            return checks, None
    except LibraryError as error:
        return [*checks, Check(False, f"library {name}", str(error))], None


FIRST_POLL = "the first `il2watch poll` creates it"


def run_checks(
    settings: Settings,
    *,
    problems: Iterable[str] = (),
    invalid: frozenset[str] = frozenset(),
    eutils_factory: Callable[[], pubmed.Eutils] | None = None,
    slack: WebClient | None = None,
    watches: list[Watch] | None = None,
) -> Iterator[Check]:
    """Every check, in order. ``problems`` are the settings that did not load (each one ✗ line);
    ``invalid`` names their fields, whose checks are skipped rather than run on the defaults."""
    from il2watch.service import make_eutils

    problems = list(problems)
    for problem in problems:
        yield Check(False, problem)
    yield Check(
        not problems,
        f"settings read ({settings.config_file or 'no config file; built-in defaults'})"
        + (f"; {len(problems)} invalid, the rest checked below" if problems else ""),
    )
    if settings.ncbi_email:
        yield Check(True, f"NCBI_EMAIL is {settings.ncbi_email}")
    else:
        yield Check(
            False,
            "NCBI_EMAIL is not set",
            "export NCBI_EMAIL=you@lab.org (NCBI asks every client for it)",
            warning=True,
        )
    yield from _lexicon_checks(settings)

    known = list(watches or settings.watches)
    if "db_path" in invalid:
        yield Check(False, "library not checked", "fix IL2WATCH_DB first")
    else:
        checks, stored = _library_checks(settings)
        yield from checks
        known = list(watches or stored or settings.watches)

    quick = _quick(settings)
    if "eutils_url" in invalid:
        yield Check(False, "NCBI not checked", "fix IL2WATCH_EUTILS_URL first")
    else:
        yield from _ncbi_checks(quick, (eutils_factory or (lambda: make_eutils(quick)))(), known)

    if _source_settings() & invalid:
        yield Check(False, "citation sources not checked", "fix the source settings above first")
    else:
        yield from _source_checks(quick, known)

    if {"slack_api_url", "slack_bot_token", "slack_app_token"} & invalid:
        yield Check(False, "Slack not checked", "fix the Slack settings above first")
        return
    yield from _slack_checks(quick, slack, known)


def _source_checks(settings: Settings, watches: list[Watch]) -> Iterator[Check]:
    """Each enabled citation index beyond PubMed, asked once about a watched paper (OpenAlex: its key too)."""
    from il2watch.service import make_eutils

    pmid = next((w.pmid for w in watches if w.pmid), "")
    for name in settings.enabled_sources:
        if name == "pubmed":
            continue
        label = SOURCES.get(name, name)
        if not pmid:
            yield Check(True, f"{label} enabled; no paper is watched, so there is nothing to ask it yet")
            continue
        try:
            source = make_source(settings, name, make_eutils(settings))
            yield Check(True, source.probe(pmid))
        except (SourceError, TransportError) as error:
            yield Check(False, f"{label} at {_base_url(settings, name)}", str(error))


def _source_settings() -> set[str]:
    """The settings the citation indexes beyond PubMed read (PubMed's are NCBI's, checked above)."""
    return {"sources", *(s for name, kind in KINDS.items() if name != "pubmed" for s in kind.settings)}


def _base_url(settings: Settings, name: str) -> str:
    kind = KINDS.get(name)
    return str(getattr(settings, kind.settings[0], "")) if kind and kind.settings else ""


def _lexicon_checks(settings: Settings) -> Iterator[Check]:
    """The lexicon as poll and run load it (they refuse to start on a bad entry), and the files named
    in IL2WATCH_LEXICON that are not there: skipped by il2watch, so a typo in a path would go unseen."""
    files = [path for path in settings.lexicon_paths if Path(path).is_file()]
    default = [Path(p) for p in OPTIONS_BY_ATTR["lexicon_paths"].default]
    missing = [
        str(path)
        for path in settings.lexicon_paths
        if not Path(path).is_file() and not any(Path(path).parts[-len(d.parts) :] == d.parts for d in default)
    ]
    if missing:
        yield Check(
            False,
            f"lexicon file{'s' if len(missing) > 1 else ''} not found: {', '.join(missing)}; "
            "il2watch skips it and tags with the rest",
            "fix the path in IL2WATCH_LEXICON (intel.lexicon)",
            warning=True,
        )
    try:
        lexicon = intel.load_lexicon(files)
    except intel.LexiconError as error:
        yield Check(False, f"lexicon: {error}", "fix that entry; il2watch will not start until then")
        return
    extra = f" + {', '.join(str(p) for p in files)}" if files else ""
    yield Check(True, f"lexicon: {len(lexicon.molecules)} molecules (built-in{extra})")


def _ncbi_checks(settings: Settings, client: pubmed.Eutils, watches: list[Watch]) -> Iterator[Check]:
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
    except (TransportError, PubMedError) as error:
        yield Check(False, f"NCBI E-utilities at {settings.eutils_url}", str(error))
        return
    for watch in watches:
        if watch.query:
            yield from _query_checks(client, watch)


def _query_checks(client: pubmed.Eutils, watch: Watch) -> Iterator[Check]:
    """One ESearch (retmax=0) for a query watch: one ! line per word PubMed cannot use, as the poll says it."""
    try:
        checked = pubmed.check_query(client, watch.query)
    except (TransportError, PubMedError) as error:
        yield Check(False, f"watch {watch.id}: PubMed could not check its query", str(error))
        return
    if not checked.problems:
        yield Check(True, f"watch {watch.id}: PubMed can use every word of its query ({checked.count:,} matches)")
        return
    fix = (
        "fix the query in config/il2watch.toml"
        if watch.source == "config"
        else f"remove it (/il2 watch remove {watch.id}) and add the corrected query"
    )
    for problem in checked.problems:
        yield Check(False, f"watch {watch.id}: {problem.describe()}", fix, warning=True)


def _slack_checks(settings: Settings, slack: WebClient | None, watches: list[Watch]) -> Iterator[Check]:
    if not settings.slack_bot_token:
        yield Check(
            False,
            describe_missing("slack_bot_token", "to post to Slack"),
            "until then `il2watch poll` prints what it would post",
            warning=True,
        )
        return
    wrong_slot = _token_kind_problem("SLACK_BOT_TOKEN", settings.slack_bot_token)
    if wrong_slot:
        yield Check(False, "Slack bot token", wrong_slot)
    else:
        slack = slack or make_client(settings)
        checks, reached, works = _bot_checks(settings, slack)
        yield from checks
        if not reached:
            return  # nothing more to ask a Slack that does not answer
        if works:
            yield from _channel_checks(settings, slack, watches)
    yield from _command_checks(settings)


def _bot_checks(settings: Settings, slack: WebClient) -> tuple[list[Check], bool, bool]:
    """auth.test and the scopes: the checks, whether Slack answered, and whether the bot token works."""
    try:
        response = slack.auth_test()
    except SlackApiError as error:
        return [Check(False, "Slack bot token", explain_token("SLACK_BOT_TOKEN", slack_error(error)))], True, False
    except UNKNOWN_OUTCOME as error:
        return (
            [Check(False, f"Slack at {settings.slack_api_url}", f"cannot reach it ({type(error).__name__})")],
            False,
            False,
        )
    checks = [Check(True, f"Slack token works: bot {response.get('user')} in {response.get('team')}")]
    headers = response.headers or {}
    scopes = headers.get("x-oauth-scopes") or headers.get("X-OAuth-Scopes") or ""
    granted = {scope.strip() for scope in scopes.split(",") if scope.strip()}
    missing = [f"{scope} ({why})" for scope, why in NEEDED_SCOPES.items() if scope not in granted]
    if granted and missing:
        checks.append(
            Check(
                False,
                "Slack scopes missing: " + "; ".join(missing),
                "add them under OAuth & Permissions (or from config/slack-manifest.yml) and reinstall",
            )
        )
    elif granted:
        checks.append(Check(True, "Slack scopes: all granted"))
    return checks, True, True


def _channel_checks(settings: Settings, slack: WebClient, watches: list[Watch]) -> Iterator[Check]:
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
            info: dict[str, Any] = slack.conversations_info(channel=channel_id).get("channel", {})
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
        except UNKNOWN_OUTCOME as error:
            yield Check(False, f"channel {name}", f"Slack did not answer ({type(error).__name__})")


def _command_checks(settings: Settings) -> Iterator[Check]:
    """How /il2 reaches il2watch: Socket Mode (SLACK_APP_TOKEN) or HTTP mode (SLACK_SIGNING_SECRET)."""
    if settings.slack_signing_secret:
        yield Check(True, "SLACK_SIGNING_SECRET is set: `il2watch serve` answers /il2 over HTTP (HTTP mode)")
    if settings.slack_app_token:
        wrong_slot = _token_kind_problem("SLACK_APP_TOKEN", settings.slack_app_token)
        if wrong_slot:
            yield Check(False, "Slack app-level token", wrong_slot)
            return
        try:
            make_client(settings, token=settings.slack_app_token).apps_connections_open(
                app_token=settings.slack_app_token
            )
            yield Check(True, "SLACK_APP_TOKEN opens a Socket Mode connection")
        except SlackApiError as error:
            yield Check(False, "Slack app-level token", explain_token("SLACK_APP_TOKEN", slack_error(error)))
        except UNKNOWN_OUTCOME as error:
            yield Check(False, "SLACK_APP_TOKEN", f"Slack did not answer ({type(error).__name__})")
    elif not settings.slack_signing_secret:
        yield Check(
            False,
            "neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET is set: nothing answers /il2",
            "set SLACK_APP_TOKEN for Socket Mode inside `il2watch run`, or SLACK_SIGNING_SECRET for `il2watch serve`",
            warning=True,
        )
