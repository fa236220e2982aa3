"""Settings, read once at start: environment, then ``.env``, then the TOML file, then built-in defaults.

Every option is declared once in ``OPTIONS`` (its TOML key, its environment variable, its type, its
default and what it is for); loading, validation, error messages, ``il2watch doctor`` and the test that
``config/il2watch.toml`` documents every option all read that table.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from il2watch import redact
from il2watch.model import SOURCES, Watch

log = logging.getLogger("il2watch.config")


class ConfigError(Exception):
    """A setting is missing or invalid; the message names it and how to set it."""


@dataclass(frozen=True)
class Option:
    """How one setting is read: its TOML key, environment variable, type, default, range and help."""

    toml: str  # "section.key" in il2watch.toml
    env: str  # environment / .env variable
    # str, secret, url, int, float, bool, list, path, database (a SQLite file or a PostgreSQL URL), command,
    # choice:<a|b>, schedule, schedule-or-off, timezone, digest, duration, sources
    kind: str
    default: Any
    help: str
    low: float | None = None  # numbers: the smallest value allowed
    high: float | None = None  # numbers: the largest value allowed
    aliases: tuple[str, ...] = ()  # old names still read (environment variables or "section.key"), with a warning
    attr: str = ""  # the Settings field, filled in from the field's name

    @property
    def section(self) -> str:
        return self.toml.split(".")[0]

    @property
    def key(self) -> str:
        return self.toml.split(".")[1]


def option(
    toml: str,
    env: str,
    kind: str,
    default: Any,
    *,
    help: str,
    low: float | None = None,
    high: float | None = None,
    aliases: tuple[str, ...] = (),
) -> Any:
    """A Settings field read from the environment, .env or il2watch.toml; declared once, here."""
    spec = Option(toml, env, kind, default, help, low, high, aliases)
    return field(default=default, metadata={"option": spec})


@dataclass(frozen=True)
class Settings:
    """Every setting, typed. Each field is its own declaration: name, type, default, range, help."""

    # [ncbi]
    ncbi_email: str = option(
        "ncbi.email",
        "NCBI_EMAIL",
        "str",
        "",
        help="Contact address sent with every E-utilities request; NCBI asks for it.",
    )
    ncbi_api_key: str = option(
        "ncbi.api_key",
        "NCBI_API_KEY",
        "secret",
        "",
        help="NCBI API key: raises the limit from 3 to 10 requests per second.",
    )
    eutils_url: str = option(
        "ncbi.eutils_url",
        "IL2WATCH_EUTILS_URL",
        "url",
        "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/",
        help="Base URL of E-utilities (a mirror or proxy).",
    )
    ncbi_tool: str = option(
        "ncbi.tool",
        "IL2WATCH_NCBI_TOOL",
        "str",
        "il2watch",
        help="The `tool` name sent with every request.",
    )
    ncbi_timeout: float = option(
        "ncbi.timeout",
        "IL2WATCH_NCBI_TIMEOUT",
        "float",
        30.0,
        low=0.1,
        high=3_600,
        help="Seconds to wait for NCBI to send the next part of an answer (a read timeout).",
    )
    ncbi_attempts: int = option(
        "ncbi.attempts",
        "IL2WATCH_NCBI_ATTEMPTS",
        "int",
        5,
        low=1,
        high=20,
        aliases=("IL2WATCH_NCBI_RETRIES", "ncbi.retries"),
        help="Attempts per request on 429, 5xx and connection errors.",
    )
    ncbi_backoff: float = option(
        "ncbi.backoff",
        "IL2WATCH_NCBI_BACKOFF",
        "float",
        2.0,
        low=0,
        high=600,
        help="Seconds before the first retry; doubles each time (Retry-After wins when NCBI sends it).",
    )
    # [network]
    request_deadline: float = option(
        "network.request_deadline",
        "IL2WATCH_REQUEST_DEADLINE",
        "float",
        120.0,
        low=1,
        high=3_600,
        help="Seconds one request to any host may take in all, however slowly its answer arrives.",
    )
    retry_budget: float = option(
        "network.retry_budget",
        "IL2WATCH_RETRY_BUDGET",
        "float",
        180.0,
        low=0,
        high=3_600,
        help="Seconds one request to any host may spend waiting between retries, in all (Retry-After included).",
    )
    max_answer_mb: float = option(
        "network.max_answer_mb",
        "IL2WATCH_MAX_ANSWER_MB",
        "float",
        64.0,
        low=0.001,
        high=4_096,
        help="Megabytes il2watch reads of one answer from any host; a larger answer fails that request.",
    )
    http_timeout: float = option(
        "network.timeout",
        "IL2WATCH_HTTP_TIMEOUT",
        "float",
        30.0,
        low=0.1,
        high=3_600,
        help="Read timeout in seconds for every host but NCBI (citation sources, the summariser).",
    )
    http_attempts: int = option(
        "network.attempts",
        "IL2WATCH_HTTP_ATTEMPTS",
        "int",
        5,
        low=1,
        high=20,
        help="Attempts per request to every host but NCBI on 429, 5xx, resets and timeouts.",
    )
    http_backoff: float = option(
        "network.backoff",
        "IL2WATCH_HTTP_BACKOFF",
        "float",
        2.0,
        low=0,
        high=600,
        help="Seconds before the first retry to every host but NCBI; doubles each time (Retry-After wins).",
    )
    # [library]
    db_path: str = option(
        "library.path",
        "IL2WATCH_DB",
        "database",
        "il2watch.db",
        help="The library: a SQLite file (give it a persistent disk), or a postgres:// URL; wins over DATABASE_URL.",
    )
    database_url: str = option(
        "library.database_url",
        "DATABASE_URL",
        "database",
        "",
        help="PostgreSQL URL (postgres://user:password@host:port/name?sslmode=require), as platforms attach "
        "it; the library lives there unless IL2WATCH_DB is set.",
    )
    # [discovery]
    similar_max_rank: int = option(
        "discovery.similar_max_rank",
        "IL2WATCH_SIMILAR_MAX_RANK",
        "int",
        50,
        low=0,
        high=100_000,
        help="Keep PubMed's similar articles up to this rank (0 keeps none).",
    )
    similar_min_score: int = option(
        "discovery.similar_min_score",
        "IL2WATCH_SIMILAR_MIN_SCORE",
        "int",
        0,
        low=0,
        high=1_000_000_000_000_000,
        help="Keep similar articles only at or above this PubMed similarity score.",
    )
    overlap_days: int = option(
        "discovery.overlap_days",
        "IL2WATCH_OVERLAP_DAYS",
        "int",
        7,
        low=0,
        high=3_650,
        help="Each query poll looks back this many days before the last one, so an NCBI delay loses nothing.",
    )
    query_baseline_days: int = option(
        "discovery.query_baseline_days",
        "IL2WATCH_QUERY_BASELINE_DAYS",
        "int",
        365,
        low=0,
        high=36_500,
        help="A new query watch records this many days of matches as its baseline (0: all of PubMed).",
    )
    # [sources]
    sources: tuple[str, ...] = option(
        "sources.enabled",
        "IL2WATCH_SOURCES",
        "sources",
        (),
        help="Citation indexes to ask, comma-separated, from pubmed, icite, europepmc and openalex "
        "(empty: pubmed, icite, europepmc, and openalex when OPENALEX_API_KEY is set).",
    )
    icite_url: str = option(
        "sources.icite_url",
        "IL2WATCH_ICITE_URL",
        "url",
        "https://icite.od.nih.gov/",
        help="Base URL of NIH iCite.",
    )
    europepmc_url: str = option(
        "sources.europepmc_url",
        "IL2WATCH_EUROPEPMC_URL",
        "url",
        "https://www.ebi.ac.uk/europepmc/webservices/rest/",
        help="Base URL of the Europe PMC REST API.",
    )
    openalex_url: str = option(
        "sources.openalex_url",
        "IL2WATCH_OPENALEX_URL",
        "url",
        "https://api.openalex.org/",
        help="Base URL of the OpenAlex API.",
    )
    openalex_api_key: str = option(
        "sources.openalex_api_key",
        "OPENALEX_API_KEY",
        "secret",
        "",
        help="OpenAlex API key (free at openalex.org; OpenAlex requires one). Turns the OpenAlex source on.",
    )
    pubmed_refresh: float = option(
        "sources.pubmed_refresh",
        "IL2WATCH_PUBMED_REFRESH",
        "duration",
        0.0,
        help="Ask PubMed at most this often (`6h`, `1d`; 0: every poll).",
    )
    icite_refresh: float = option(
        "sources.icite_refresh",
        "IL2WATCH_ICITE_REFRESH",
        "duration",
        86400.0,
        help="Ask iCite at most this often (its citation data changes about monthly; 0: every poll).",
    )
    europepmc_refresh: float = option(
        "sources.europepmc_refresh",
        "IL2WATCH_EUROPEPMC_REFRESH",
        "duration",
        0.0,
        help="Ask Europe PMC at most this often (0: every poll).",
    )
    openalex_refresh: float = option(
        "sources.openalex_refresh",
        "IL2WATCH_OPENALEX_REFRESH",
        "duration",
        86400.0,
        help="Ask OpenAlex at most this often (list calls count against its daily budget; 0: every poll).",
    )
    # [slack]
    slack_bot_token: str = option(
        "slack.bot_token",
        "SLACK_BOT_TOKEN",
        "secret",
        "",
        help="Bot token (xoxb-…). Without it `il2watch poll` prints what it would post.",
    )
    slack_app_token: str = option(
        "slack.app_token",
        "SLACK_APP_TOKEN",
        "secret",
        "",
        help="App-level token (xapp-…) for Socket Mode inside `il2watch run`.",
    )
    slack_signing_secret: str = option(
        "slack.signing_secret",
        "SLACK_SIGNING_SECRET",
        "secret",
        "",
        help="Signing secret that `il2watch serve` verifies every request with.",
    )
    channel: str = option(
        "slack.channel",
        "IL2WATCH_CHANNEL",
        "str",
        "",
        help="Channel ID or name to post to (a watch may name its own).",
    )
    slack_api_url: str = option(
        "slack.api_url",
        "IL2WATCH_SLACK_API_URL",
        "url",
        "https://slack.com/api/",
        help="Base URL of the Slack Web API (GovSlack, a proxy).",
    )
    slack_timeout: float = option(
        "slack.timeout",
        "IL2WATCH_SLACK_TIMEOUT",
        "float",
        30.0,
        low=1,
        high=600,
        help="Read timeout in seconds for Slack (IL2WATCH_REQUEST_DEADLINE bounds the whole answer).",
    )
    slack_backoff: float = option(
        "slack.backoff",
        "IL2WATCH_SLACK_BACKOFF",
        "float",
        2.0,
        low=0,
        high=600,
        help="Seconds before re-checking and retrying a post whose outcome is unknown (5xx, timeout); doubles.",
    )
    post_interval: float = option(
        "slack.post_interval",
        "IL2WATCH_POST_INTERVAL",
        "float",
        1.1,
        low=0,
        high=60,
        help="Seconds between posts to one channel (Slack allows about one a second).",
    )
    thread_abstract: bool = option(
        "slack.thread_abstract",
        "IL2WATCH_THREAD_ABSTRACT",
        "bool",
        False,
        help="Also post the full abstract as a reply in each paper's thread.",
    )
    command: str = option(
        "slack.command",
        "IL2WATCH_COMMAND",
        "command",
        "/il2",
        help="The slash command il2watch answers.",
    )
    admins: tuple[str, ...] = option(
        "slack.admins",
        "IL2WATCH_ADMINS",
        "list",
        (),
        help="Slack user IDs allowed to run /il2 poll and /il2 watch add|remove.",
    )
    # [delivery]
    delivery_mode: str = option(
        "delivery.mode",
        "IL2WATCH_DELIVERY",
        "choice:each|digest",
        "each",
        help="`each`: one post per paper; `digest`: one message per period, at `digest`.",
    )
    digest: str = option(
        "delivery.digest",
        "IL2WATCH_DIGEST",
        "digest",
        "daily 09:00",
        help="When digests go out: `daily HH:MM` or `weekly <mon..sun> HH:MM`, in `timezone`.",
    )
    burst: int = option(
        "delivery.burst",
        "IL2WATCH_BURST",
        "int",
        10,
        low=0,
        high=10_000,
        help="More papers than this due at once go out as one digest (0: never).",
    )
    baseline_posts: int = option(
        "delivery.baseline_posts",
        "IL2WATCH_BASELINE_POSTS",
        "int",
        3,
        low=0,
        high=1_000,
        help="A new watch's first poll posts this many of the most recent papers it found.",
    )
    relevance_threshold: float = option(
        "delivery.relevance_threshold",
        "IL2WATCH_RELEVANCE_THRESHOLD",
        "float",
        30.0,
        low=0,
        high=100,
        help="Papers found only as `similar` and scoring below this relevance are kept but not posted.",
    )
    # [worker]
    schedule: str = option(
        "worker.schedule",
        "IL2WATCH_SCHEDULE",
        "schedule",
        "1h",
        help="How often to poll: an interval (`90s`, `15m`, `1h`, `1d`) or a five-field cron expression.",
    )
    followup_schedule: str = option(
        "worker.followup_schedule",
        "IL2WATCH_FOLLOWUP_SCHEDULE",
        "schedule-or-off",
        "1d",
        help="How often `il2watch run` checks every posted paper for retractions, errata, expressions of "
        "concern and journal versions: an interval or a cron expression, as for `schedule`; `off` turns the "
        "scheduled check off (`il2watch followups` still checks now).",
    )
    timezone: str = option(
        "worker.timezone",
        "IL2WATCH_TIMEZONE",
        "timezone",
        "UTC",
        help="Time zone of cron schedules and digest times.",
    )
    jitter: float = option(
        "worker.jitter",
        "IL2WATCH_JITTER",
        "float",
        120.0,
        low=0,
        high=86_400,
        help="Most seconds of random delay added to a scheduled poll; never more than 10% of the time between polls.",
    )
    lease_seconds: float = option(
        "worker.lease_seconds",
        "IL2WATCH_LEASE_SECONDS",
        "float",
        60.0,
        low=5,
        high=86_400,
        help="A worker's lease expires this long after its last heartbeat; another then takes over.",
    )
    alert_after: int = option(
        "worker.alert_after",
        "IL2WATCH_ALERT_AFTER",
        "int",
        3,
        low=0,
        high=10_000,
        help="Alert after this many consecutive failed polls (0: never).",
    )
    alert_channel: str = option(
        "worker.alert_channel",
        "IL2WATCH_ALERT_CHANNEL",
        "str",
        "",
        help="Channel ID or user ID for alerts (default: the main channel).",
    )
    log_format: str = option(
        "worker.log_format",
        "IL2WATCH_LOG_FORMAT",
        "choice:text|json",
        "text",
        help="`text` lines for people, or one JSON object per line for log platforms.",
    )
    log_level: str = option(
        "worker.log_level",
        "IL2WATCH_LOG_LEVEL",
        "choice:DEBUG|INFO|WARNING|ERROR",
        "INFO",
        help="Least severe log level written.",
    )
    # [intel]
    lexicon_paths: tuple[Path, ...] = option(
        "intel.lexicon",
        "IL2WATCH_LEXICON",
        "list",
        ("config/lexicon.toml",),
        help="Lexicon files merged over the built-in one (missing files are skipped).",
    )
    summariser_url: str = option(
        "intel.summariser_url",
        "IL2WATCH_SUMMARISER_URL",
        "url",
        "",
        help="Optional OpenAI-compatible chat-completions base URL for summaries (off when empty).",
    )
    summariser_key: str = option(
        "intel.summariser_key",
        "IL2WATCH_SUMMARISER_KEY",
        "secret",
        "",
        help="API key for the optional summariser.",
    )
    summariser_model: str = option(
        "intel.summariser_model",
        "IL2WATCH_SUMMARISER_MODEL",
        "str",
        "",
        help="Model name for the optional summariser.",
    )
    watches: tuple[Watch, ...] = field(default=())
    config_file: Path | None = None  # the TOML file that was read, if any

    @property
    def enabled_sources(self) -> tuple[str, ...]:
        """The sources to ask: as set, or by default PubMed, iCite and Europe PMC (and OpenAlex with a key)."""
        if self.sources:
            return self.sources
        return DEFAULT_SOURCES + (("openalex",) if self.openalex_api_key else ())

    def refresh_of(self, source: str) -> float:
        """Seconds between two questions to ``source`` (0: every poll)."""
        return float(getattr(self, f"{source}_refresh"))

    @property
    def ncbi_rate(self) -> int:
        """Requests per second NCBI allows this process."""
        return 10 if self.ncbi_api_key else 3

    def watch(self, watch_id: str) -> Watch | None:
        return next((w for w in self.watches if w.id == watch_id), None)

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


OPTIONS: tuple[Option, ...] = tuple(
    replace(f.metadata["option"], attr=f.name) for f in fields(Settings) if "option" in f.metadata
)
OPTIONS_BY_ATTR = {option.attr: option for option in OPTIONS}

# ---------------------------------------------------------------- parsing values

_INTERVAL = re.compile(r"^\s*(\d{1,9}(?:\.\d{1,9})?)\s*([smhd])\s*$", re.IGNORECASE | re.ASCII)
_DIGEST = re.compile(
    r"^\s*(daily|weekly\s+(mon|tue|wed|thu|fri|sat|sun))\s+([01]?\d|2[0-3]):([0-5]\d)\s*$", re.IGNORECASE
)
_COMMAND = re.compile(r"^/[a-z0-9_\-]{1,31}$")
_WATCH_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,39}$")
_PMID = re.compile(r"^[1-9]\d{0,8}$", re.ASCII)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$", re.ASCII)
SCHEDULE_RANGE = (1.0, 366 * 86400.0)
_CREDENTIALS = re.compile(r"^([^:/?#@]*://)?.*@", re.DOTALL)  # "scheme://user:pass@", to the last "@"
_URL_BREAKERS = re.compile(r"[\x00-\x20\x7f\\]")  # spaces, control characters, backslashes
SOURCE_NAMES = tuple(SOURCES)
DEFAULT_SOURCES = ("pubmed", "icite", "europepmc")
POSTGRES_SCHEMES = ("postgres://", "postgresql://")  # both spellings select PostgreSQL


def is_postgres(location: str) -> bool:
    """Whether a library location names a PostgreSQL database rather than a SQLite file."""
    return location.strip().lower().startswith(POSTGRES_SCHEMES)


def parse_interval(text: str) -> float | None:
    """Seconds for '90s', '15m', '1h', '1d'; None when ``text`` is not an interval."""
    match = _INTERVAL.match(text)
    if not match:
        return None
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2).lower()]


def _where(option: Option, source: str) -> str:
    return (
        f"{option.env} (from {source}); set it in the environment, in .env, "
        f"or as `{option.key}` under [{option.section}] in il2watch.toml"
    )


def _number_text(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"


def _convert(option: Option, raw: Any, source: str) -> Any:
    """Turn a raw value (string from env/.env, or a TOML value) into the option's type, or fail clearly."""

    def fail(expected: str) -> ConfigError:
        given = "the value given (not shown: it is a secret)" if option.kind == "secret" else repr(str(raw)[:60])
        if option.kind == "database":  # a URL's user and password, remembered at load, never echoed
            given = repr(redact.scrub(_without_credentials(str(raw)))[:60])
        return ConfigError(f"{option.env} must be {expected}, not {given}: {_where(option, source)}")

    kind = option.kind
    if kind == "url":
        return _url(option, raw, source)
    if kind in ("str", "secret"):
        if not isinstance(raw, str):
            raise fail("text")
        return raw.strip()
    if isinstance(raw, (list, dict)) and kind != "list":
        raise fail("a single value")
    if kind == "database":  # a PostgreSQL URL as given, or a path to a SQLite file
        text = str(raw).strip()
        if is_postgres(text):
            try:
                port = urllib.parse.urlsplit(text).port  # ValueError: unreadable, or a port past 65535
            except ValueError:
                port = 0
            if port == 0 or _URL_BREAKERS.search(text):
                raise fail("a postgres:// or postgresql:// URL that can be read, with a port from 1 to 65535")
            return text
        if re.match(r"^[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
            raise fail("a SQLite file or a postgres:// or postgresql:// URL")
        try:
            return str(Path(text).expanduser())
        except RuntimeError:  # "~nouser/…": no such user's home
            raise fail("a path (no such home folder)") from None
    if kind == "path":
        text = str(raw).strip()
        try:
            return Path(text).expanduser()
        except RuntimeError:  # "~nouser/…": no such user's home
            raise fail("a path (no such home folder)") from None
    if kind in ("int", "float"):
        text = str(raw).strip()
        low = 0 if option.low is None else option.low
        high = option.high
        span = (
            f"from {_number_text(low)} to {_number_text(high)}" if high is not None else f"{_number_text(low)} or more"
        )
        readable = not isinstance(raw, bool) and len(text) <= 40
        if readable and (
            text.lower().lstrip("+-") in ("nan", "inf", "infinity")
            or (_NUMBER.match(text) and not math.isfinite(float(text)))  # 1e309
        ):
            raise fail(f"a number {span}")  # nan, inf and 1e309 alike: the range says what would do
        if isinstance(raw, bool) or len(text) > 40 or not _NUMBER.match(text):
            raise fail("a whole number" if kind == "int" else "a number")
        if kind == "int" and not re.fullmatch(r"[+-]?\d+", text):
            raise fail("a whole number")
        value: float = int(text) if kind == "int" else float(text)
        if (kind == "float" and not math.isfinite(value)) or value < low or (high is not None and value > high):
            raise fail(f"a number {span}")
        return value
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise fail("true or false")
    if kind == "list":
        items = raw if isinstance(raw, (list, tuple)) else re.split(r"[,\s]+", str(raw))
        if not all(isinstance(item, (str, int)) and not isinstance(item, bool) for item in items):
            raise fail("a list of words")
        return tuple(str(item).strip() for item in items if str(item).strip())
    if kind.startswith("choice:"):
        choices = kind.split(":", 1)[1].split("|")
        text = str(raw).strip()
        match = next((c for c in choices if c.lower() == text.lower()), None)
        if match is None:
            raise fail("one of " + ", ".join(choices))
        return match
    if kind == "command":
        text = str(raw).strip()
        text = text if text.startswith("/") else "/" + text
        if not _COMMAND.match(text):
            raise fail("a slash command such as /il2")
        return text
    if kind == "schedule-or-off":
        if str(raw).strip().lower() == "off":
            return "off"
        kind = "schedule"
    if kind == "schedule":
        text = str(raw).strip()
        seconds = parse_interval(text)
        if seconds is None:
            try:
                from apscheduler.triggers.cron import CronTrigger

                trigger = CronTrigger.from_crontab(text, timezone="UTC")
            except ValueError:
                raise fail("an interval (90s, 15m, 1h, 1d) or a five-field cron expression") from None
            # A date no year has (31 February) never fires: the worker would poll once at start, then never.
            now = datetime.now(UTC)
            fires = trigger.get_next_fire_time(None, now)
            if fires is None or (fires - now).total_seconds() > SCHEDULE_RANGE[1]:
                raise fail("a cron expression that fires within 366 days")
        elif not SCHEDULE_RANGE[0] <= seconds <= SCHEDULE_RANGE[1]:
            raise fail("an interval from 1s to 366d")
        return text
    if kind == "duration":
        text = str(raw).strip()
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            text = f"{float(raw)}s"
        seconds = 0.0 if text in ("0", "0s", "0.0s", "off", "") else parse_interval(text)
        if seconds is None or (seconds != 0 and not SCHEDULE_RANGE[0] <= seconds <= SCHEDULE_RANGE[1]):
            raise fail("0 or a duration from 1s to 366d (`6h`, `1d`)")
        return seconds
    if kind == "sources":
        items = raw if isinstance(raw, (list, tuple)) else re.split(r"[,\s]+", str(raw))
        names = tuple(dict.fromkeys(str(item).strip().lower() for item in items if str(item).strip()))
        unknown = [name for name in names if name not in SOURCE_NAMES]
        if unknown or not all(isinstance(item, str) for item in items):
            raise fail("a list of sources from " + ", ".join(SOURCE_NAMES))
        return names
    if kind == "timezone":
        text = str(raw).strip()
        try:
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            raise fail("a time zone name such as UTC or Europe/Berlin") from None
        return text
    if kind == "digest":
        text = " ".join(str(raw).split()).lower()
        if not _DIGEST.match(text):
            raise fail("`daily HH:MM` or `weekly mon HH:MM`")
        return text
    raise AssertionError(f"unknown option kind {kind}")


def _without_credentials(url: str) -> str:
    """``url`` with everything between its scheme and its last ``@`` masked, for a message about it."""
    return _CREDENTIALS.sub(lambda m: (m.group(1) or "") + redact.MASK + "@", url, count=1)


def _url(option: Option, raw: Any, source: str) -> str:
    """A base URL every request can be built on: http or https, a host, a port from 1 to 65535, nothing that
    cannot be read (``http://[::1``), no spaces. Ends with "/". The message never shows its credentials."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not text and isinstance(raw, str) and option.default == "":
        return ""  # an optional URL left empty: that feature is off
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port  # ValueError: not a number, or past 65535
        fits = (
            parts.scheme in ("http", "https") and bool(parts.hostname) and port != 0 and not _URL_BREAKERS.search(text)
        )
    except ValueError:
        fits = False
    if not fits:
        given = repr(redact.scrub(_without_credentials(str(raw)))[:80])
        raise ConfigError(
            f"{option.env} must be an http(s) URL with a host and, if any, a port from 1 to 65535 "
            f"(https://host/path/), not {given}: {_where(option, source)}"
        )
    return text if text.endswith("/") else text + "/"


# ---------------------------------------------------------------- watches

WATCH_KEYS = ("id", "pmid", "query", "label", "channel")


def parse_watch(entry: Any, where: str) -> Watch:
    """One ``[[watch]]`` table: a paper (``pmid``) or a PubMed query (``query``)."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: each watch must be a [[watch]] table, not {str(entry)[:40]!r}")
    for key in WATCH_KEYS:
        value = entry.get(key, "")
        if key == "pmid" and isinstance(value, int) and not isinstance(value, bool):
            continue  # pmid = 35217787 written as a number
        if not isinstance(value, str):
            raise ConfigError(f"{where}: watch key `{key}` must be text in quotes, not {str(value)[:60]}")
    watch_id = str(entry.get("id", "")).strip()
    pmid = str(entry.get("pmid", "")).strip()
    query = str(entry.get("query", "")).strip()
    if not _WATCH_ID.match(watch_id):
        raise ConfigError(
            f"{where}: every [[watch]] needs an `id` of lowercase letters, digits, - or _ (got {watch_id[:60]!r})"
        )
    if bool(pmid) == bool(query):
        raise ConfigError(f"{where}: watch {watch_id!r} needs exactly one of `pmid` or `query`")
    if pmid and not _PMID.match(pmid):
        raise ConfigError(f"{where}: watch {watch_id!r} has pmid {pmid[:30]!r}, which is not a PubMed ID")
    unknown = set(entry) - set(WATCH_KEYS)
    if unknown:
        raise ConfigError(f"{where}: watch {watch_id!r} has unknown keys: {', '.join(sorted(map(str, unknown)))}")
    return Watch(
        id=watch_id,
        pmid=pmid,
        query=query,
        label=str(entry.get("label", "")).strip(),
        channel=str(entry.get("channel", "")).strip(),
    )


def _parse_watches(entries: Any, where: str) -> tuple[Watch, ...]:
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: `watch` must be a list of [[watch]] tables")
    watches = tuple(parse_watch(entry, where) for entry in entries)
    ids = [w.id for w in watches]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"{where}: watch ids must be unique; repeated: {', '.join(duplicates)}")
    return watches


def default_watches() -> tuple[Watch, ...]:
    """The watches that ship with il2watch: the review, and a query for engineered IL-2."""
    text = resources.files("il2watch").joinpath("defaults/watches.toml").read_text(encoding="utf-8")
    return _parse_watches(tomllib.loads(text).get("watch", []), "il2watch's built-in watches")


# ---------------------------------------------------------------- loading


class ConfigErrors(ConfigError):
    """Several settings are invalid; ``problems`` holds one line for each.

    ``settings`` holds every other setting as read, the invalid ones (named in ``invalid``) at their
    defaults, so that ``il2watch doctor`` can go on checking what it can.
    """

    def __init__(self, problems: list[str], settings: Settings | None = None, invalid: frozenset[str] = frozenset()):
        super().__init__("\n".join(problems))
        self.problems = problems
        self.settings = settings
        self.invalid = invalid


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text: save it as UTF-8") from None
    except RecursionError:
        raise ConfigError(f"{path} nests tables or arrays too deeply to read") from None
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        return {k: v for k, v in dotenv_values(path, encoding="utf-8").items() if v is not None}
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text: save it as UTF-8") from None
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None


_warned_aliases: set[str] = set()


def _raw_value(
    option: Option, environ: Mapping[str, str], dotenv: Mapping[str, str], toml: Mapping[str, Any], places: tuple
) -> tuple[Any, str] | None:
    """The first value given for ``option`` (by its name, then its old names) and where it came from."""
    dotenv_where, toml_where = places
    for name in (option.env, *option.aliases):
        old = name != option.env
        if "." in name:  # an old TOML key
            section, key = name.split(".")
            table = toml.get(section, {})
            found = (table[key], toml_where) if isinstance(table, dict) and key in table else None
        elif environ.get(name, "") != "":
            found = (environ[name], "the environment")
        elif dotenv.get(name, "") != "":
            found = (dotenv[name], dotenv_where)
        else:
            found = None
        if found is None and not old:
            table = toml.get(option.section, {})
            if isinstance(table, dict) and option.key in table:
                found = (table[option.key], toml_where)
        if found is not None:
            if old and name not in _warned_aliases:
                _warned_aliases.add(name)
                log.warning(
                    "%s is an old name: call it %s (or `%s` under [%s]); it is read for now",
                    name,
                    option.env,
                    option.key,
                    option.section,
                )
            return found
    return None


def load_settings(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Read every setting once: environment > .env in ``cwd`` > TOML file > built-in defaults.

    Every bad setting is reported at once (``ConfigErrors``), each in one line naming it.
    """
    environ = dict(os.environ if environ is None else environ)
    cwd = Path.cwd() if cwd is None else cwd
    dotenv_path = cwd / ".env"
    dotenv = _read_dotenv(dotenv_path)

    config_name = environ.get("IL2WATCH_CONFIG") or dotenv.get("IL2WATCH_CONFIG") or ""
    config_file: Path | None
    if config_name:
        try:
            config_file = cwd / Path(config_name).expanduser()
        except RuntimeError:
            raise ConfigError(
                f"IL2WATCH_CONFIG names a home folder that does not exist: {config_name[:60]!r}"
            ) from None
        if not config_file.is_file():
            raise ConfigError(f"IL2WATCH_CONFIG points to {config_file}, which does not exist")
    else:
        config_file = cwd / "config" / "il2watch.toml"
        if not config_file.is_file():
            config_file = None
    toml = _read_toml(config_file) if config_file else {}
    toml_where = str(config_file) if config_file else ""

    problems: list[str] = []
    known_sections = {option.section for option in OPTIONS} | {"watch"}
    unknown_sections = set(toml) - known_sections
    if unknown_sections:
        problems.append(
            f"{toml_where}: unknown section(s) {', '.join(sorted(unknown_sections))}; "
            f"known: {', '.join(sorted(known_sections))}"
        )
    for section, table in toml.items():
        if section == "watch" or section not in known_sections:
            continue
        if not isinstance(table, dict):
            problems.append(f"{toml_where}: [{section}] must be a table")
            continue
        known = {o.key for o in OPTIONS if o.section == section}
        known |= {a.split(".")[1] for o in OPTIONS for a in o.aliases if a.startswith(section + ".")}
        unknown = set(table) - known
        if unknown:
            problems.append(f"{toml_where}: unknown key(s) in [{section}]: {', '.join(sorted(unknown))}")

    values: dict[str, Any] = {}
    invalid: set[str] = set()
    given: set[str] = set()
    for option in OPTIONS:
        found = _raw_value(option, environ, dotenv, toml, (str(dotenv_path), toml_where))
        if found is None:
            values[option.attr] = option.default
            continue
        given.add(option.attr)
        if isinstance(found[0], str):  # remembered as given, even when it turns out invalid
            redact.remember([found[0]] if option.kind == "secret" else redact.url_secrets(found[0]))
        try:
            values[option.attr] = _convert(option, *found)
        except ConfigError as error:
            problems.append(str(error))
            values[option.attr] = option.default
            invalid.add(option.attr)
    watches: tuple[Watch, ...] = ()
    try:
        watches = _parse_watches(toml["watch"], toml_where) if "watch" in toml else default_watches()
    except ConfigError as error:
        problems.append(str(error))
        invalid.add("watches")
    if "openalex" in values["sources"] and not values["openalex_api_key"]:
        problems.append(
            "IL2WATCH_SOURCES names openalex, which needs OPENALEX_API_KEY (a free key from "
            "openalex.org/settings/api): set it, or leave openalex out"
        )
        invalid.add("sources")

    remember_secrets(values)
    values["lexicon_paths"] = tuple(cwd / Path(p) for p in values["lexicon_paths"])
    values["db_path"] = library_location(values, given_db="db_path" in given, cwd=cwd)
    settings = Settings(**values, watches=watches, config_file=config_file)
    if problems:
        raise ConfigErrors(problems, settings, frozenset(invalid))
    return settings


def library_location(values: Mapping[str, Any], *, given_db: bool, cwd: Path) -> str:
    """Where the library is: IL2WATCH_DB when it is set, else DATABASE_URL (as platforms set it), else the
    default file. A relative path is relative to the working folder; a URL or a SQLite URI (file:…?mode=ro)
    is kept as given."""
    location = str(values["db_path"]) if given_db or not values["database_url"] else str(values["database_url"])
    if is_postgres(location) or location.startswith("file:") or Path(location).is_absolute():
        return location
    return str(cwd / location)


def remember_secrets(values: Mapping[str, Any]) -> None:
    """Tell ``il2watch.redact`` every secret these settings hold, so no message can carry one out."""
    secrets = [str(values[o.attr]) for o in OPTIONS if o.kind == "secret"]
    for o in OPTIONS:
        if o.kind != "secret":  # a base URL or a database URL in any setting may carry a user and password
            secrets += redact.url_secrets(str(values[o.attr]))
    redact.remember(secrets)


def describe_missing(attr: str, purpose: str) -> str:
    """One line saying which setting is missing and how to set it."""
    option = OPTIONS_BY_ATTR[attr]
    section, key = option.toml.split(".")
    return (
        f"{option.env} is not set ({purpose}): export {option.env}=…, add it to .env, "
        f"or set `{key}` under [{section}] in config/il2watch.toml"
    )


def warn_if_anonymous(settings: Settings, warn: Callable[[str], None] = log.warning) -> None:
    """NCBI asks every client for a contact address; il2watch runs without one but says so once."""
    if not settings.ncbi_email:
        warn(
            "NCBI_EMAIL is not set: NCBI asks for a contact address with every request "
            "(export NCBI_EMAIL=you@lab.org); continuing without it"
        )
