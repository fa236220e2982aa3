"""Durations and URLs are checked when settings load (issue 11, D13 and D15): a value that would fail every poll
later is refused at once, in one line naming the setting, and a URL's user and password never appear in it."""

from __future__ import annotations

import os

import pytest

from il2watch import cli
from il2watch.config import OPTIONS, ConfigError, load_settings
from tests.support import PROXY_VARIABLES, settings_env

DURATIONS = [option.env for option in OPTIONS if option.kind == "duration"]
URLS = [option.env for option in OPTIONS if option.kind == "url"]
PASSWORD = "s3cretpw"
BAD_URLS = [
    "http://[::1",  # cannot be read
    "http://[::1/eutils/",
    f"http://mirroruser:{PASSWORD}@mirror.example.org:99999/",  # port out of range, credentials in it
    f"https://mirroruser:{PASSWORD}@mirror.example.org:0/",
    f"https://mirroruser:{PASSWORD}@[::1/",
    "http://mirror.example.org:abc/",
    "ftp://mirror.example.org/",
    "mirror.example.org/eutils/",
    "http:///eutils/",
    "http://mirror example.org/",
    "https://mirror.example.org/\x7f",
]


def test_the_settings_checked_here_are_the_ones_that_exist():
    assert {"IL2WATCH_ICITE_REFRESH", "IL2WATCH_OPENALEX_REFRESH"} <= set(DURATIONS)
    assert {
        "IL2WATCH_EUTILS_URL",
        "IL2WATCH_ICITE_URL",
        "IL2WATCH_EUROPEPMC_URL",
        "IL2WATCH_OPENALEX_URL",
        "IL2WATCH_SLACK_API_URL",
        "IL2WATCH_SUMMARISER_URL",
    } <= set(URLS)
    unchecked = [o.env for o in OPTIONS if o.env.endswith("_URL") and o.kind not in ("url", "database")]
    assert not unchecked, "every URL is checked as one"


@pytest.mark.parametrize(
    "value", [f"postgres://il2:{PASSWORD}@[::1/il2watch", f"postgresql://il2:{PASSWORD}@db.example.org:99999/il2watch"]
)
def test_a_database_url_that_cannot_be_read_is_refused_without_its_password(tmp_path, value):
    with pytest.raises(ConfigError) as error:
        load_settings({"DATABASE_URL": value}, tmp_path)
    message = str(error.value)
    assert message.startswith("DATABASE_URL must be a postgres:// or postgresql:// URL that can be read")
    assert PASSWORD not in message and "\n" not in message


@pytest.mark.parametrize("name", DURATIONS)
@pytest.mark.parametrize("value", ["0.0001s", "0.5s", "0.99s", "367d", "99999999d", "-1s", "nan", "1e309s"])
def test_a_duration_outside_0_or_1s_to_366d_is_refused_naming_it(tmp_path, name, value):
    with pytest.raises(ConfigError) as error:
        load_settings({name: value}, tmp_path)
    message = str(error.value)
    assert message.startswith(f"{name} must be 0 or a duration from 1s to 366d") and "\n" not in message


@pytest.mark.parametrize("name", DURATIONS)
@pytest.mark.parametrize("value, seconds", [("0", 0.0), ("off", 0.0), ("1s", 1.0), ("366d", 366 * 86400.0)])
def test_a_duration_at_the_ends_of_its_range_loads(tmp_path, name, value, seconds):
    option = next(o for o in OPTIONS if o.env == name)
    assert getattr(load_settings({name: value}, tmp_path), option.attr) == seconds


@pytest.mark.parametrize("name", URLS)
@pytest.mark.parametrize("value", BAD_URLS)
def test_a_url_that_cannot_be_asked_is_refused_in_one_line_without_its_credentials(tmp_path, name, value):
    with pytest.raises(ConfigError) as error:
        load_settings({name: value}, tmp_path)
    message = str(error.value)
    assert message.startswith(f"{name} must be an http(s) URL with a host") and "\n" not in message
    assert PASSWORD not in message and "mirroruser" not in message


@pytest.mark.parametrize("name", URLS)
@pytest.mark.parametrize(
    "value",
    [
        "https://eutils.example.org/entrez/eutils",
        "http://127.0.0.1:8080/",
        "http://[::1]:8080/e/",
        "HTTPS://Example.org",
    ],
)
def test_a_url_that_can_be_asked_loads_ending_in_a_slash(tmp_path, name, value):
    option = next(o for o in OPTIONS if o.env == name)
    assert getattr(load_settings({name: value}, tmp_path), option.attr) == value.rstrip("/") + "/"


def test_a_url_in_toml_that_is_not_text_is_refused(tmp_path):
    (tmp_path / "il2watch.toml").write_text("[sources]\nicite_url = 8080\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^IL2WATCH_ICITE_URL must be an http\(s\) URL"):
        load_settings({"IL2WATCH_CONFIG": "il2watch.toml"}, tmp_path)


def test_the_summariser_url_may_stay_empty(tmp_path):
    (tmp_path / "il2watch.toml").write_text('[intel]\nsummariser_url = ""\n', encoding="utf-8")
    assert load_settings({"IL2WATCH_CONFIG": "il2watch.toml"}, tmp_path).summariser_url == ""


@pytest.fixture
def environment(monkeypatch, tmp_path):
    """The process environment holds exactly the given settings, and il2watch runs in ``tmp_path``."""

    def use(env: dict[str, str]) -> None:
        for name in list(os.environ):
            if name.startswith(("IL2WATCH_", "SLACK_", "NCBI_", "OPENALEX_")) or name in PROXY_VARIABLES:
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)

    return use


@pytest.mark.parametrize(
    "name, value",
    [
        ("IL2WATCH_EUTILS_URL", "http://[::1/entrez/eutils/"),
        ("IL2WATCH_ICITE_URL", f"http://u:{PASSWORD}@icite.example.org:99999/"),
        ("IL2WATCH_ICITE_REFRESH", "0.0001s"),
    ],
)
def test_il2watch_poll_with_such_a_setting_exits_two_with_one_line(
    tmp_path, ncbi_server, environment, capsys, name, value
):
    environment(settings_env(tmp_path, ncbi_server, **{name: value}))
    assert cli.main(["poll"]) == cli.EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"il2watch: {name} must be ") and err.count("\n") == 1, err
    assert PASSWORD not in err and "Traceback" not in err
    assert not (tmp_path / "library.db").exists(), "nothing was polled"


def test_il2watch_doctor_names_each_such_setting_and_checks_the_rest(tmp_path, ncbi_server, environment, capsys):
    environment(
        settings_env(
            tmp_path,
            ncbi_server,
            IL2WATCH_SOURCES="pubmed,icite",
            IL2WATCH_ICITE_URL=f"http://mirroruser:{PASSWORD}@icite.example.org:99999/",
            IL2WATCH_SLACK_API_URL="http://[::1",
            IL2WATCH_OPENALEX_REFRESH="0.5s",
        )
    )
    assert cli.main(["doctor"]) == cli.EXIT_FAILED
    out, err = capsys.readouterr()
    lines = out.splitlines()
    for name in ("IL2WATCH_ICITE_URL", "IL2WATCH_SLACK_API_URL", "IL2WATCH_OPENALEX_REFRESH"):
        assert [line for line in lines if line.startswith(f"✗ {name} must be")], (name, lines)
    assert "3 invalid, the rest checked below" in out
    assert any(line.startswith("✓ NCBI E-utilities answer at") for line in lines), lines
    assert PASSWORD not in out + err and "mirroruser" not in out + err and "Traceback" not in out + err
