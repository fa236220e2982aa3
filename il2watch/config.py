"""Settings, read once at start: environment, then ``.env``, then the TOML file, then built-in defaults.

Every option is declared once in ``OPTIONS`` (its TOML key, its environment variable, its type, its
default and what it is for); loading, validation, error messages, ``il2watch doctor`` and the test that
``config/il2watch.toml`` documents every option all read that table.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from il2watch.model import Watch

log = logging.getLogger("il2watch.config")


class ConfigError(Exception):
    """A setting is missing or invalid; the message names it and how to set it."""


@dataclass(frozen=True)
class Option:
    attr: str  # the Settings attribute
    toml: str  # "section.key" in il2watch.toml
    env: str  # environment / .env variable
    kind: str  # str, secret, int, float, bool, list, path, choice:<a|b>, schedule, timezone, digest
    default: Any
    help: str


OPTIONS: tuple[Option, ...] = (
    # NCBI
    Option(
        "ncbi_email",
        "ncbi.email",
        "NCBI_EMAIL",
        "str",
        "",
        "Contact address sent with every E-utilities request; NCBI asks for it.",
    ),
    Option(
        "ncbi_api_key",
        "ncbi.api_key",
        "NCBI_API_KEY",
        "secret",
        "",
        "NCBI API key: raises the limit from 3 to 10 requests per second.",
    ),
    Option(
        "eutils_url",
        "ncbi.eutils_url",
        "IL2WATCH_EUTILS_URL",
        "url",
        "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/",
        "Base URL of E-utilities (a mirror or proxy).",
    ),
    Option(
        "ncbi_tool", "ncbi.tool", "IL2WATCH_NCBI_TOOL", "str", "il2watch", "The `tool` name sent with every request."
    ),
    Option(
        "ncbi_timeout",
        "ncbi.timeout",
        "IL2WATCH_NCBI_TIMEOUT",
        "float",
        60.0,
        "Seconds to wait for one E-utilities answer.",
    ),
    Option(
        "ncbi_retries",
        "ncbi.retries",
        "IL2WATCH_NCBI_RETRIES",
        "int",
        5,
        "Attempts per request on 429, 5xx and connection errors.",
    ),
    Option(
        "ncbi_backoff",
        "ncbi.backoff",
        "IL2WATCH_NCBI_BACKOFF",
        "float",
        2.0,
        "Seconds before the first retry; doubles each time (Retry-After wins when NCBI sends it).",
    ),
    # Storage
    Option(
        "db_path",
        "library.path",
        "IL2WATCH_DB",
        "path",
        "il2watch.db",
        "SQLite file of the library (give it a persistent disk where the platform has one).",
    ),
    # Discovery
    Option(
        "similar_max_rank",
        "discovery.similar_max_rank",
        "IL2WATCH_SIMILAR_MAX_RANK",
        "int",
        50,
        "Keep PubMed's similar articles up to this rank (0 keeps none).",
    ),
    Option(
        "similar_min_score",
        "discovery.similar_min_score",
        "IL2WATCH_SIMILAR_MIN_SCORE",
        "int",
        0,
        "Keep similar articles only at or above this PubMed similarity score.",
    ),
    Option(
        "overlap_days",
        "discovery.overlap_days",
        "IL2WATCH_OVERLAP_DAYS",
        "int",
        7,
        "Each query poll looks back this many days before the last one, so an NCBI delay loses nothing.",
    ),
    Option(
        "query_baseline_days",
        "discovery.query_baseline_days",
        "IL2WATCH_QUERY_BASELINE_DAYS",
        "int",
        365,
        "A new query watch records this many days of matches as its baseline (0: all of PubMed).",
    ),
    # Slack
    Option(
        "slack_bot_token",
        "slack.bot_token",
        "SLACK_BOT_TOKEN",
        "secret",
        "",
        "Bot token (xoxb-…). Without it `il2watch poll` prints what it would post.",
    ),
    Option(
        "slack_app_token",
        "slack.app_token",
        "SLACK_APP_TOKEN",
        "secret",
        "",
        "App-level token (xapp-…) for Socket Mode inside `il2watch run`.",
    ),
    Option(
        "slack_signing_secret",
        "slack.signing_secret",
        "SLACK_SIGNING_SECRET",
        "secret",
        "",
        "Signing secret that `il2watch serve` verifies every request with.",
    ),
    Option(
        "channel",
        "slack.channel",
        "IL2WATCH_CHANNEL",
        "str",
        "",
        "Channel ID or name to post to (a watch may name its own).",
    ),
    Option(
        "slack_api_url",
        "slack.api_url",
        "IL2WATCH_SLACK_API_URL",
        "url",
        "https://slack.com/api/",
        "Base URL of the Slack Web API (GovSlack, a proxy).",
    ),
    Option(
        "slack_timeout",
        "slack.timeout",
        "IL2WATCH_SLACK_TIMEOUT",
        "float",
        30.0,
        "Seconds to wait for one Slack answer.",
    ),
    Option(
        "slack_backoff",
        "slack.backoff",
        "IL2WATCH_SLACK_BACKOFF",
        "float",
        2.0,
        "Seconds before re-checking and retrying a post whose outcome is unknown (5xx, timeout); doubles.",
    ),
    Option(
        "post_interval",
        "slack.post_interval",
        "IL2WATCH_POST_INTERVAL",
        "float",
        1.1,
        "Seconds between posts to one channel (Slack allows about one a second).",
    ),
    Option(
        "thread_abstract",
        "slack.thread_abstract",
        "IL2WATCH_THREAD_ABSTRACT",
        "bool",
        False,
        "Also post the full abstract as a reply in each paper's thread.",
    ),
    Option("command", "slack.command", "IL2WATCH_COMMAND", "command", "/il2", "The slash command il2watch answers."),
    Option(
        "admins",
        "slack.admins",
        "IL2WATCH_ADMINS",
        "list",
        (),
        "Slack user IDs allowed to run /il2 poll and /il2 watch add|remove.",
    ),
    # Delivery
    Option(
        "delivery_mode",
        "delivery.mode",
        "IL2WATCH_DELIVERY",
        "choice:each|digest",
        "each",
        "`each`: one post per paper; `digest`: one message per period, at `digest`.",
    ),
    Option(
        "digest",
        "delivery.digest",
        "IL2WATCH_DIGEST",
        "digest",
        "daily 09:00",
        "When digests go out: `daily HH:MM` or `weekly <mon..sun> HH:MM`, in `timezone`.",
    ),
    Option(
        "burst",
        "delivery.burst",
        "IL2WATCH_BURST",
        "int",
        10,
        "More papers than this due at once go out as one digest (0: never).",
    ),
    Option(
        "baseline_posts",
        "delivery.baseline_posts",
        "IL2WATCH_BASELINE_POSTS",
        "int",
        3,
        "A new watch's first poll posts this many of the most recent papers it found.",
    ),
    Option(
        "relevance_threshold",
        "delivery.relevance_threshold",
        "IL2WATCH_RELEVANCE_THRESHOLD",
        "float",
        30.0,
        "Papers found only as `similar` and scoring below this relevance are kept but not posted.",
    ),
    # Worker
    Option(
        "schedule",
        "worker.schedule",
        "IL2WATCH_SCHEDULE",
        "schedule",
        "1h",
        "How often to poll: an interval (`90s`, `15m`, `1h`, `1d`) or a five-field cron expression.",
    ),
    Option(
        "timezone",
        "worker.timezone",
        "IL2WATCH_TIMEZONE",
        "timezone",
        "UTC",
        "Time zone of cron schedules and digest times.",
    ),
    Option(
        "jitter",
        "worker.jitter",
        "IL2WATCH_JITTER",
        "float",
        120.0,
        "Up to this many seconds of random delay added to each scheduled poll.",
    ),
    Option(
        "lease_seconds",
        "worker.lease_seconds",
        "IL2WATCH_LEASE_SECONDS",
        "float",
        60.0,
        "A worker's lease expires this long after its last heartbeat; another then takes over.",
    ),
    Option(
        "alert_after",
        "worker.alert_after",
        "IL2WATCH_ALERT_AFTER",
        "int",
        3,
        "Alert after this many consecutive failed polls (0: never).",
    ),
    Option(
        "alert_channel",
        "worker.alert_channel",
        "IL2WATCH_ALERT_CHANNEL",
        "str",
        "",
        "Channel ID or user ID for alerts (default: the main channel).",
    ),
    Option(
        "log_format",
        "worker.log_format",
        "IL2WATCH_LOG_FORMAT",
        "choice:text|json",
        "text",
        "`text` lines for people, or one JSON object per line for log platforms.",
    ),
    Option(
        "log_level",
        "worker.log_level",
        "IL2WATCH_LOG_LEVEL",
        "choice:DEBUG|INFO|WARNING|ERROR",
        "INFO",
        "Least severe log level written.",
    ),
    # Intelligence
    Option(
        "lexicon_paths",
        "intel.lexicon",
        "IL2WATCH_LEXICON",
        "list",
        ("config/lexicon.toml",),
        "Lexicon files merged over the built-in one (missing files are skipped).",
    ),
    Option(
        "summariser_url",
        "intel.summariser_url",
        "IL2WATCH_SUMMARISER_URL",
        "str",
        "",
        "Optional OpenAI-compatible chat-completions base URL for summaries (off when empty).",
    ),
    Option(
        "summariser_key",
        "intel.summariser_key",
        "IL2WATCH_SUMMARISER_KEY",
        "secret",
        "",
        "API key for the optional summariser.",
    ),
    Option(
        "summariser_model",
        "intel.summariser_model",
        "IL2WATCH_SUMMARISER_MODEL",
        "str",
        "",
        "Model name for the optional summariser.",
    ),
)

OPTIONS_BY_ATTR = {option.attr: option for option in OPTIONS}


@dataclass(frozen=True)
class Settings:
    """Every setting, typed; field defaults live in OPTIONS, the one place they are declared."""

    ncbi_email: str
    ncbi_api_key: str
    eutils_url: str
    ncbi_tool: str
    ncbi_timeout: float
    ncbi_retries: int
    ncbi_backoff: float
    db_path: Path
    similar_max_rank: int
    similar_min_score: int
    overlap_days: int
    query_baseline_days: int
    slack_bot_token: str
    slack_app_token: str
    slack_signing_secret: str
    channel: str
    slack_api_url: str
    slack_timeout: float
    slack_backoff: float
    post_interval: float
    thread_abstract: bool
    command: str
    admins: tuple[str, ...]
    delivery_mode: str
    digest: str
    burst: int
    baseline_posts: int
    relevance_threshold: float
    schedule: str
    timezone: str
    jitter: float
    lease_seconds: float
    alert_after: int
    alert_channel: str
    log_format: str
    log_level: str
    lexicon_paths: tuple[Path, ...]
    summariser_url: str
    summariser_key: str
    summariser_model: str
    watches: tuple[Watch, ...] = field(default=())
    config_file: Path | None = None  # the TOML file that was read, if any

    @property
    def ncbi_rate(self) -> int:
        """Requests per second NCBI allows this process."""
        return 10 if self.ncbi_api_key else 3

    def watch(self, watch_id: str) -> Watch | None:
        return next((w for w in self.watches if w.id == watch_id), None)

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


# ---------------------------------------------------------------- parsing values

_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
_DIGEST = re.compile(
    r"^\s*(daily|weekly\s+(mon|tue|wed|thu|fri|sat|sun))\s+([01]?\d|2[0-3]):([0-5]\d)\s*$", re.IGNORECASE
)
_COMMAND = re.compile(r"^/[a-z0-9_\-]{1,31}$")
_WATCH_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,39}$")
_PMID = re.compile(r"^[1-9]\d{0,8}$")


def parse_interval(text: str) -> float | None:
    """Seconds for '90s', '15m', '1h', '1d'; None when ``text`` is not an interval."""
    match = _INTERVAL.match(text)
    if not match:
        return None
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2).lower()]


def _where(option: Option, source: str) -> str:
    return (
        f"{option.env} (from {source}); set it in the environment, in .env, "
        f"or as `{option.toml.split('.')[1]}` under [{option.toml.split('.')[0]}] in il2watch.toml"
    )


def _convert(option: Option, raw: Any, source: str) -> Any:
    """Turn a raw value (string from env/.env, or a TOML value) into the option's type, or fail clearly."""

    def fail(expected: str) -> ConfigError:
        return ConfigError(f"{option.env} must be {expected}, not {str(raw)[:60]!r}: {_where(option, source)}")

    kind = option.kind
    if kind in ("str", "secret"):
        if not isinstance(raw, str):
            raise fail("text")
        return raw.strip()
    if kind == "url":
        text = str(raw).strip()
        if not re.match(r"^https?://[^\s/]+", text):
            raise fail("an http(s) URL")
        return text if text.endswith("/") else text + "/"
    if kind == "path":
        return Path(str(raw).strip()).expanduser()
    if kind in ("int", "float"):
        if isinstance(raw, bool):
            raise fail("a number")
        try:
            value = int(str(raw).strip()) if kind == "int" else float(str(raw).strip())
        except ValueError:
            raise fail("a whole number" if kind == "int" else "a number") from None
        if value < 0:
            raise fail("zero or more")
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
    if kind == "schedule":
        text = str(raw).strip()
        if parse_interval(text) is None:
            try:
                from apscheduler.triggers.cron import CronTrigger

                CronTrigger.from_crontab(text)
            except ValueError:
                raise fail("an interval (90s, 15m, 1h, 1d) or a five-field cron expression") from None
        elif parse_interval(text) == 0:
            raise fail("a positive interval")
        return text
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


# ---------------------------------------------------------------- watches


def parse_watch(entry: Mapping[str, Any], where: str) -> Watch:
    """One ``[[watch]]`` table: a paper (``pmid``) or a PubMed query (``query``)."""
    watch_id = str(entry.get("id", "")).strip()
    pmid = str(entry.get("pmid", "")).strip()
    query = str(entry.get("query", "")).strip()
    if not _WATCH_ID.match(watch_id):
        raise ConfigError(
            f"{where}: every [[watch]] needs an `id` of lowercase letters, digits, - or _ (got {watch_id!r})"
        )
    if bool(pmid) == bool(query):
        raise ConfigError(f"{where}: watch {watch_id!r} needs exactly one of `pmid` or `query`")
    if pmid and not _PMID.match(pmid):
        raise ConfigError(f"{where}: watch {watch_id!r} has pmid {pmid!r}, which is not a PubMed ID")
    unknown = set(entry) - {"id", "pmid", "query", "label", "channel"}
    if unknown:
        raise ConfigError(f"{where}: watch {watch_id!r} has unknown keys: {', '.join(sorted(unknown))}")
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


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None


def load_settings(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Read every setting once: environment > .env in ``cwd`` > TOML file > built-in defaults."""
    environ = dict(os.environ if environ is None else environ)
    cwd = Path.cwd() if cwd is None else cwd
    dotenv_path = cwd / ".env"
    dotenv = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None} if dotenv_path.is_file() else {}

    config_name = environ.get("IL2WATCH_CONFIG") or dotenv.get("IL2WATCH_CONFIG") or ""
    config_file: Path | None
    if config_name:
        config_file = cwd / Path(config_name).expanduser()
        if not config_file.is_file():
            raise ConfigError(f"IL2WATCH_CONFIG points to {config_file}, which does not exist")
    else:
        config_file = cwd / "config" / "il2watch.toml"
        if not config_file.is_file():
            config_file = None
    toml = _read_toml(config_file) if config_file else {}
    toml_where = str(config_file) if config_file else ""

    known_sections = {option.toml.split(".")[0] for option in OPTIONS} | {"watch"}
    unknown_sections = set(toml) - known_sections
    if unknown_sections:
        raise ConfigError(
            f"{toml_where}: unknown section(s) {', '.join(sorted(unknown_sections))}; "
            f"known: {', '.join(sorted(known_sections))}"
        )
    for section, table in toml.items():
        if section == "watch":
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"{toml_where}: [{section}] must be a table")
        known = {o.toml.split(".")[1] for o in OPTIONS if o.toml.startswith(section + ".")}
        unknown = set(table) - known
        if unknown:
            raise ConfigError(f"{toml_where}: unknown key(s) in [{section}]: {', '.join(sorted(unknown))}")

    values: dict[str, Any] = {}
    for option in OPTIONS:
        section, key = option.toml.split(".")
        if option.env in environ and environ[option.env] != "":
            raw, source = environ[option.env], "the environment"
        elif option.env in dotenv and dotenv[option.env] != "":
            raw, source = dotenv[option.env], str(dotenv_path)
        elif key in toml.get(section, {}):
            raw, source = toml[section][key], toml_where
        else:
            values[option.attr] = option.default
            continue
        values[option.attr] = _convert(option, raw, source)

    values["lexicon_paths"] = tuple(cwd / Path(p) for p in values["lexicon_paths"])
    db_path = Path(values["db_path"])
    # a relative path is relative to the working folder; a SQLite URI (file:…?mode=ro) is kept as given
    values["db_path"] = db_path if db_path.is_absolute() or str(db_path).startswith("file:") else cwd / db_path
    watches = _parse_watches(toml["watch"], toml_where) if "watch" in toml else default_watches()
    return Settings(**values, watches=watches, config_file=config_file)


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
