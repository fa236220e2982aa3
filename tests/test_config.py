"""Settings precedence, validation and the documented options."""

import re
import tomllib
from pathlib import Path

import pytest

from il2watch.config import OPTIONS, ConfigError, describe_missing, load_settings, warn_if_anonymous

REPO = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_watch_the_review_and_the_engineered_il2_query(tmp_path):
    settings = load_settings({}, tmp_path)
    assert [w.id for w in settings.watches] == ["review", "engineered-il2"]
    assert settings.watches[0].pmid == "35217787"
    assert "mutein" in settings.watches[1].query
    assert settings.eutils_url == "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.db_path == str(tmp_path / "il2watch.db")
    assert settings.ncbi_rate == 3
    assert settings.config_file is None


def test_precedence_environment_then_dotenv_then_toml_then_default(tmp_path):
    write(
        tmp_path / "config" / "il2watch.toml",
        '[delivery]\nburst = 4\nbaseline_posts = 5\n[slack]\nchannel = "from-toml"\npost_interval = 0.5\n',
    )
    write(tmp_path / ".env", "IL2WATCH_BURST=6\nIL2WATCH_CHANNEL=from-dotenv\n")
    settings = load_settings({"IL2WATCH_BURST": "7"}, tmp_path)
    assert settings.burst == 7  # environment wins
    assert settings.channel == "from-dotenv"  # .env beats TOML
    assert settings.baseline_posts == 5  # TOML beats default
    assert settings.post_interval == 0.5
    assert settings.relevance_threshold == 30.0  # default


def test_il2watch_config_points_at_another_file(tmp_path):
    write(tmp_path / "elsewhere.toml", '[[watch]]\nid = "mine"\npmid = "123"\nlabel = "my paper"\n')
    settings = load_settings({"IL2WATCH_CONFIG": "elsewhere.toml"}, tmp_path)
    assert [(w.id, w.pmid, w.label) for w in settings.watches] == [("mine", "123", "my paper")]
    with pytest.raises(ConfigError, match="IL2WATCH_CONFIG points to .*missing.toml"):
        load_settings({"IL2WATCH_CONFIG": "missing.toml"}, tmp_path)


def test_api_key_raises_the_rate(tmp_path):
    assert load_settings({"NCBI_API_KEY": "abc"}, tmp_path).ncbi_rate == 10


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"IL2WATCH_BURST": "lots"},
            r"^IL2WATCH_BURST must be a whole number, not 'lots': IL2WATCH_BURST \(from the environment\)",
        ),
        ({"IL2WATCH_BURST": "-1"}, r"IL2WATCH_BURST must be a number from 0 to 10,000"),
        ({"IL2WATCH_SCHEDULE": "every tuesday"}, r"IL2WATCH_SCHEDULE must be an interval"),
        ({"IL2WATCH_EUTILS_URL": "ftp://x"}, r"IL2WATCH_EUTILS_URL must be an http\(s\) URL"),
        ({"IL2WATCH_THREAD_ABSTRACT": "maybe"}, r"IL2WATCH_THREAD_ABSTRACT must be true or false"),
        ({"IL2WATCH_DELIVERY": "hourly"}, r"IL2WATCH_DELIVERY must be one of each, digest"),
        ({"IL2WATCH_TIMEZONE": "Mars/Olympus"}, r"IL2WATCH_TIMEZONE must be a time zone name"),
        ({"IL2WATCH_DIGEST": "weekly someday 9:00"}, r"IL2WATCH_DIGEST must be `daily HH:MM`"),
        ({"IL2WATCH_COMMAND": "/il 2"}, r"IL2WATCH_COMMAND must be a slash command"),
    ],
)
def test_invalid_settings_fail_with_one_line_naming_them(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(env, tmp_path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("variable", ["IL2WATCH_SCHEDULE", "IL2WATCH_FOLLOWUP_SCHEDULE"])
@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 0 30 2 *", "0 9 31 4 *", "0 0 31 2 mon"])
def test_a_cron_schedule_that_never_fires_is_refused_at_load(tmp_path, variable, cron):
    """31 February was accepted, and the worker polled once at start and never again."""
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: cron}, tmp_path)
    assert str(caught.value).startswith(
        f"{variable} must be a cron expression that fires within 366 days, not '{cron}': {variable} (from the "
        "environment)"
    )
    assert "\n" not in str(caught.value)


def test_a_cron_schedule_that_fires_once_a_year_is_accepted(tmp_path):
    settings = load_settings({"IL2WATCH_SCHEDULE": "0 6 1 1 *", "IL2WATCH_FOLLOWUP_SCHEDULE": "0 6 31 12 *"}, tmp_path)
    assert (settings.schedule, settings.followup_schedule) == ("0 6 1 1 *", "0 6 31 12 *")


@pytest.mark.parametrize("value", ["nan", "NaN", "-nan", "inf", "+inf", "-Infinity", "1e309", "-1e309"])
@pytest.mark.parametrize(
    "variable, span",
    [
        ("IL2WATCH_NCBI_TIMEOUT", "from 0.1 to 3,600"),
        ("IL2WATCH_NCBI_BACKOFF", "from 0 to 600"),
        ("IL2WATCH_BURST", "from 0 to 10,000"),
    ],
)
def test_nan_and_infinity_are_refused_with_the_settings_range(tmp_path, variable, span, value):
    """nan and inf were told "must be a number" without the range that 1e309 was given."""
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value}, tmp_path)
    assert str(caught.value).startswith(f"{variable} must be a number {span}, not '{value}': {variable} (from")


def test_nan_and_infinity_in_the_toml_file_are_refused_with_the_range(tmp_path):
    write(tmp_path / "config" / "il2watch.toml", "[ncbi]\ntimeout = nan\n")
    with pytest.raises(ConfigError, match=r"^IL2WATCH_NCBI_TIMEOUT must be a number from 0.1 to 3,600, not 'nan'"):
        load_settings({}, tmp_path)
    write(tmp_path / "config" / "il2watch.toml", "[ncbi]\ntimeout = -inf\n")
    with pytest.raises(ConfigError, match=r"^IL2WATCH_NCBI_TIMEOUT must be a number from 0.1 to 3,600, not '-inf'"):
        load_settings({}, tmp_path)


def test_values_are_normalised(tmp_path):
    settings = load_settings(
        {
            "IL2WATCH_SCHEDULE": "*/15 * * * *",
            "IL2WATCH_EUTILS_URL": "http://127.0.0.1:9/e",
            "IL2WATCH_ADMINS": "U1, U2 U3",
            "IL2WATCH_COMMAND": "papers",
            "IL2WATCH_DIGEST": "Weekly  MON 08:30",
            "IL2WATCH_THREAD_ABSTRACT": "yes",
        },
        tmp_path,
    )
    assert settings.schedule == "*/15 * * * *"
    assert settings.eutils_url == "http://127.0.0.1:9/e/"
    assert settings.admins == ("U1", "U2", "U3")
    assert settings.command == "/papers"
    assert settings.digest == "weekly mon 08:30"
    assert settings.thread_abstract is True


def test_toml_mistakes_are_named(tmp_path):
    write(tmp_path / "config" / "il2watch.toml", "[slack]\nchanel = 'x'\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) in \[slack\]: chanel"):
        load_settings({}, tmp_path)
    write(tmp_path / "config" / "il2watch.toml", "[slak]\n")
    with pytest.raises(ConfigError, match=r"unknown section\(s\) slak"):
        load_settings({}, tmp_path)
    write(tmp_path / "config" / "il2watch.toml", "[slack\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings({}, tmp_path)


@pytest.mark.parametrize(
    "body, message",
    [
        ('[[watch]]\nid = "a"\n', "exactly one of `pmid` or `query`"),
        ('[[watch]]\nid = "a"\npmid = "1"\nquery = "x"\n', "exactly one of `pmid` or `query`"),
        ('[[watch]]\nid = "a"\npmid = "PMC123"\n', "not a PubMed ID"),
        ('[[watch]]\nid = "Bad Id"\npmid = "1"\n', "needs an `id`"),
        ('[[watch]]\nid = "a"\npmid = "1"\n[[watch]]\nid = "a"\npmid = "2"\n', "repeated: a"),
        ('[[watch]]\nid = "a"\npmid = "1"\ncolour = "red"\n', "unknown keys: colour"),
    ],
)
def test_bad_watches_are_refused(tmp_path, body, message):
    write(tmp_path / "config" / "il2watch.toml", body)
    with pytest.raises(ConfigError, match=message):
        load_settings({}, tmp_path)


def test_missing_setting_message_names_the_variable_and_where_to_set_it():
    line = describe_missing("channel", "where to post")
    assert line.startswith("IL2WATCH_CHANNEL is not set (where to post): export IL2WATCH_CHANNEL=")
    assert "[slack]" in line


def test_missing_email_warns_once_but_does_not_stop(tmp_path):
    warnings = []
    warn_if_anonymous(load_settings({}, tmp_path), warnings.append)
    warn_if_anonymous(load_settings({"NCBI_EMAIL": "lab@example.org"}, tmp_path), warnings.append)
    assert len(warnings) == 1 and "NCBI_EMAIL" in warnings[0]


def test_repository_config_documents_every_option_with_its_default():
    text = (REPO / "config" / "il2watch.toml").read_text(encoding="utf-8")
    options_part = text.split("# What to watch")[0]
    uncommented = tomllib.loads(re.sub(r"(?m)^# ?(\w+ = )", r"\1", options_part))
    for option in OPTIONS:
        section, key = option.toml.split(".")
        assert option.env in text, f"{option.env} is not mentioned in config/il2watch.toml"
        assert key in uncommented.get(section, {}), f"[{section}] {key} is not documented"
        documented = uncommented[section][key]
        default = list(option.default) if isinstance(option.default, tuple) else option.default
        assert documented == default, f"[{section}] {key} documents {documented!r}, default is {default!r}"


def test_repository_config_loads_as_the_defaults(tmp_path):
    write(tmp_path / "config" / "il2watch.toml", (REPO / "config" / "il2watch.toml").read_text(encoding="utf-8"))
    assert load_settings({}, tmp_path) == load_settings(
        {"IL2WATCH_CONFIG": str(write(tmp_path / "empty.toml", ""))}, tmp_path
    ).with_overrides(config_file=tmp_path / "config" / "il2watch.toml")


@pytest.mark.parametrize(
    "name, value",
    [
        ("IL2WATCH_NCBI_TIMEOUT", "nan"),
        ("IL2WATCH_NCBI_TIMEOUT", "inf"),
        ("IL2WATCH_POST_INTERVAL", "1e309"),
        ("IL2WATCH_JITTER", "-inf"),
        ("IL2WATCH_SLACK_BACKOFF", "NaN"),
        ("IL2WATCH_REQUEST_DEADLINE", "Infinity"),
        ("IL2WATCH_OVERLAP_DAYS", "100000000"),
        ("IL2WATCH_OVERLAP_DAYS", "3651"),
        ("IL2WATCH_LEASE_SECONDS", "0"),
        ("IL2WATCH_LEASE_SECONDS", "4.9"),
        ("IL2WATCH_BURST", "1" + "0" * 400),
        ("IL2WATCH_BURST", "²"),  # str.isdigit() says yes; it is no number
        ("IL2WATCH_BURST", "٣"),  # an Arabic-Indic digit: int() would read it
        ("IL2WATCH_MAX_ANSWER_MB", "0"),
    ],
)
def test_every_number_has_a_range_and_nan_or_inf_never_passes(tmp_path, name, value):
    with pytest.raises(ConfigError, match=rf"^{name} must be a (number|whole number)") as caught:
        load_settings({name: value}, tmp_path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("schedule", ["0.0001s", "0.5s", "99999999d", "367d", "0s"])
def test_a_schedule_runs_from_one_second_to_366_days(tmp_path, schedule):
    with pytest.raises(ConfigError, match=r"IL2WATCH_SCHEDULE must be an interval from 1s to 366d"):
        load_settings({"IL2WATCH_SCHEDULE": schedule}, tmp_path)


def test_the_values_fast_tests_use_stay_valid(tmp_path):
    settings = load_settings(
        {
            "IL2WATCH_SCHEDULE": "4s",
            "IL2WATCH_POST_INTERVAL": "0.2",
            "IL2WATCH_BURST": "0",
            "IL2WATCH_JITTER": "0",
            "IL2WATCH_LEASE_SECONDS": "5",
            "IL2WATCH_OVERLAP_DAYS": "3650",
            "IL2WATCH_SCHEDULE_UNUSED": "x",
        },
        tmp_path,
    )
    assert (settings.schedule, settings.post_interval, settings.burst, settings.lease_seconds) == ("4s", 0.2, 0, 5)
    assert load_settings({"IL2WATCH_SCHEDULE": "366d"}, tmp_path).schedule == "366d"


def test_every_bad_setting_is_reported_at_once(tmp_path):
    write(tmp_path / "config" / "il2watch.toml", "[worker]\njitter = nan\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({"IL2WATCH_BURST": "lots", "IL2WATCH_TIMEZONE": "Mars/Olympus"}, tmp_path)
    problems = caught.value.problems  # type: ignore[attr-defined]
    assert sorted(p.split()[0] for p in problems) == ["IL2WATCH_BURST", "IL2WATCH_JITTER", "IL2WATCH_TIMEZONE"]


@pytest.mark.parametrize(
    "toml, message",
    [
        ("watch = [1, 2]", r"each watch must be a \[\[watch\]\] table"),
        ('[[watch]]\nid = "x"\nquery = ["IL-2", "lupus"]\n', r"watch key `query` must be text in quotes"),
        ('[[watch]]\nid = "x"\npmid = true\n', r"watch key `pmid` must be text in quotes"),
        ("a = " + "[" * 3000 + "]" * 3000, r"nests tables or arrays too deeply|is not valid TOML"),
        ('[slack]\nadmins = [["U1"]]\n', r"IL2WATCH_ADMINS must be a list of words"),
        ("[worker]\njitter = [1]\n", r"IL2WATCH_JITTER must be a single value"),
    ],
)
def test_odd_toml_gets_one_line_not_a_traceback(tmp_path, toml, message):
    write(tmp_path / "config" / "il2watch.toml", toml)
    with pytest.raises(ConfigError, match=message):
        load_settings({}, tmp_path)


def test_files_that_are_not_utf8_are_named(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "il2watch.toml").write_bytes(b'[slack]\nchannel = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"il2watch.toml is not UTF-8 text"):
        load_settings({}, tmp_path)
    (tmp_path / "config" / "il2watch.toml").unlink()
    (tmp_path / ".env").write_bytes(b"IL2WATCH_CHANNEL=caf\xe9\n")
    with pytest.raises(ConfigError, match=r"\.env is not UTF-8 text"):
        load_settings({}, tmp_path)


def test_a_home_folder_that_does_not_exist_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"IL2WATCH_DB must be a path \(no such home folder\)"):
        load_settings({"IL2WATCH_DB": "~nouser-il2watch/x.db"}, tmp_path)


def test_the_old_name_of_attempts_still_works_and_warns_once(tmp_path, caplog):
    import il2watch.config as config

    config._warned_aliases.clear()
    with caplog.at_level("WARNING", logger="il2watch.config"):
        assert load_settings({"IL2WATCH_NCBI_RETRIES": "2"}, tmp_path).ncbi_attempts == 2
        assert load_settings({"IL2WATCH_NCBI_RETRIES": "2"}, tmp_path).ncbi_attempts == 2
    warnings = [r.getMessage() for r in caplog.records if "old name" in r.getMessage()]
    assert len(warnings) == 1 and "IL2WATCH_NCBI_ATTEMPTS" in warnings[0]
    assert load_settings({"IL2WATCH_NCBI_RETRIES": "2", "IL2WATCH_NCBI_ATTEMPTS": "4"}, tmp_path).ncbi_attempts == 4
    write(tmp_path / "config" / "il2watch.toml", "[ncbi]\nretries = 3\n")
    assert load_settings({}, tmp_path).ncbi_attempts == 3


def test_every_setting_is_declared_once_as_a_settings_field():
    from dataclasses import fields

    from il2watch.config import Settings

    declared = [f.name for f in fields(Settings) if "option" in f.metadata]
    assert [o.attr for o in OPTIONS] == declared
    assert len({o.env for o in OPTIONS}) == len(OPTIONS)
    assert {f.name: f.default for f in fields(Settings) if "option" in f.metadata} == {
        o.attr: o.default for o in OPTIONS
    }


def test_sources_default_to_the_open_indexes_and_add_openalex_with_a_key(tmp_path):
    assert load_settings({}, tmp_path).enabled_sources == ("pubmed", "icite", "europepmc")
    with_key = load_settings({"OPENALEX_API_KEY": "k-123456"}, tmp_path)
    assert with_key.enabled_sources == ("pubmed", "icite", "europepmc", "openalex")
    chosen = load_settings({"IL2WATCH_SOURCES": "EuropePMC, pubmed,pubmed"}, tmp_path)
    assert chosen.enabled_sources == ("europepmc", "pubmed")
    with pytest.raises(ConfigError, match=r"IL2WATCH_SOURCES must be a list of sources from pubmed, icite"):
        load_settings({"IL2WATCH_SOURCES": "pubmed,scholar"}, tmp_path)
    with pytest.raises(ConfigError, match=r"names openalex, which needs OPENALEX_API_KEY"):
        load_settings({"IL2WATCH_SOURCES": "pubmed,openalex"}, tmp_path)


def test_the_slow_indexes_are_asked_once_a_day_and_pubmed_and_europe_pmc_every_poll_by_default(tmp_path):
    """Issue 12: iCite and OpenAlex change daily at most; PubMed and Europe PMC are asked at every poll."""
    settings = load_settings({"OPENALEX_API_KEY": "k-123456"}, tmp_path)
    assert {name: settings.refresh_of(name) for name in settings.enabled_sources} == {
        "pubmed": 0.0,
        "icite": 86_400.0,
        "europepmc": 0.0,
        "openalex": 86_400.0,
    }


def test_ncbi_is_waited_for_30_seconds_per_read_by_default(tmp_path):
    """Issue 10: a silent NCBI is reported after 30 s, not 60."""
    settings = load_settings({}, tmp_path)
    assert settings.ncbi_timeout == 30.0 and settings.http_timeout == 30.0


def test_one_request_waits_at_most_three_minutes_in_all_between_retries_by_default(tmp_path):
    from il2watch.transport import MAX_WAIT

    settings = load_settings({}, tmp_path)
    assert settings.retry_budget == 180.0 and settings.retry_budget >= MAX_WAIT  # one full MAX_WAIT fits
    assert load_settings({"IL2WATCH_RETRY_BUDGET": "5"}, tmp_path).retry_budget == 5.0
    with pytest.raises(ConfigError, match=r"IL2WATCH_RETRY_BUDGET must be"):
        load_settings({"IL2WATCH_RETRY_BUDGET": "-1"}, tmp_path)


@pytest.mark.parametrize("value, seconds", [("0", 0.0), ("6h", 21600.0), ("1d", 86400.0), ("90s", 90.0)])
def test_refresh_intervals_are_durations(tmp_path, value, seconds):
    assert load_settings({"IL2WATCH_ICITE_REFRESH": value}, tmp_path).refresh_of("icite") == seconds
    write(tmp_path / "config" / "il2watch.toml", f"[sources]\nopenalex_refresh = {seconds}\n")
    assert load_settings({}, tmp_path).refresh_of("openalex") == seconds
    with pytest.raises(ConfigError, match=r"IL2WATCH_EUROPEPMC_REFRESH must be 0 or a duration"):
        load_settings({"IL2WATCH_EUROPEPMC_REFRESH": "often"}, tmp_path)


def test_the_library_is_il2watch_db_else_database_url_else_the_default_file(tmp_path):
    url = "postgres://u:secretpw99@db.example:5432/lab?sslmode=require"
    assert load_settings({"DATABASE_URL": url}, tmp_path).db_path == url  # as a platform attaches it
    assert load_settings({"DATABASE_URL": url, "IL2WATCH_DB": "mine.db"}, tmp_path).db_path == str(tmp_path / "mine.db")
    other = "postgresql://u@other.example/lab"
    assert load_settings({"DATABASE_URL": url, "IL2WATCH_DB": other}, tmp_path).db_path == other
    assert load_settings({}, tmp_path).db_path == str(tmp_path / "il2watch.db")
    with pytest.raises(ConfigError, match="must be a SQLite file or a postgres:// or postgresql:// URL") as refused:
        load_settings({"DATABASE_URL": "mysql://u:secretpw98@db.example/lab"}, tmp_path)
    assert "secretpw98" not in str(refused.value)


def test_either_spelling_of_a_postgresql_url_selects_postgresql_and_names_no_credentials():
    from il2watch.store import describe, is_postgres

    for url in ("postgres://u:pw@h:5432/lab", "postgresql://u:pw@h/lab", "POSTGRESQL://h/lab"):
        assert is_postgres(url) and "pw" not in describe(url) and "u:" not in describe(url)
    assert describe("postgres://u:pw@h:5432/lab") == "PostgreSQL lab at h:5432"
    assert not is_postgres("il2watch.db") and not is_postgres("file:lib.db?mode=ro")
