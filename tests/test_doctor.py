"""`il2watch doctor`: one line per check, ✓ or ✗ with the fix, against the stand-ins."""

import subprocess
import sys
from pathlib import Path

from il2watch.doctor import run_checks
from tests.conftest import settings_env, subprocess_env

REPO = Path(__file__).resolve().parent.parent


def lines(settings):
    return [check.line() for check in run_checks(settings)]


def test_everything_in_order_passes_and_exits_zero(tmp_path, ncbi_server, slack_server):
    env = subprocess_env(
        PYTHONPATH=str(REPO),
        SLACK_APP_TOKEN=slack_server.app_token,
        **settings_env(tmp_path, ncbi_server, slack_server),
    )
    slack_server.socket_mode_url = "ws://127.0.0.1:9/link/"
    done = subprocess.run(
        [sys.executable, "-m", "il2watch", "doctor"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout.splitlines()
    assert all(line.startswith("✓") for line in output), output
    assert any("PMID 35217787 exists" in line for line in output)
    assert any("Slack scopes: all granted" in line for line in output)
    assert any("the bot can post in il2-papers" in line for line in output)
    assert any("Socket Mode" in line for line in output)


def test_missing_scopes_are_named_with_why(make_settings, ncbi_server, slack_server):
    slack_server.add_token("xoxb-narrow", scopes=["chat:write", "commands"])
    report = lines(make_settings(slack_server, SLACK_BOT_TOKEN="xoxb-narrow"))
    [scopes] = [line for line in report if "scopes missing" in line]
    assert scopes.startswith("✗") and "channels:history (check the channel before posting" in scopes


def test_a_bad_token_is_one_line_with_the_fix(make_settings, slack_server):
    report = lines(make_settings(slack_server, SLACK_BOT_TOKEN="xoxb-wrong"))
    assert report[-1].startswith("✗ Slack token") and "invalid_auth" in report[-1]


def test_an_unknown_watched_pmid_fails(make_settings, tmp_path):
    config = tmp_path / "typo.toml"
    config.write_text('[[watch]]\nid = "typo"\npmid = "99999999"\n', encoding="utf-8")
    report = lines(make_settings(IL2WATCH_CONFIG=str(config)))
    assert "✗ watch typo: PMID 99999999 is not in PubMed — fix the pmid in config/il2watch.toml" in report


def test_channel_problems_are_told_apart(make_settings, slack_server):
    slack_server.add_channel("old-papers", channel_id="C0ARCHIVE", is_archived=True)
    slack_server.add_channel("secret-papers", channel_id="G0SECRET1", is_private=True, bot_is_member=False)
    archived = lines(make_settings(slack_server, IL2WATCH_CHANNEL="old-papers"))
    assert any(line.startswith("✗ channel old-papers is archived") for line in archived)
    hidden = lines(make_settings(slack_server, IL2WATCH_CHANNEL="G0SECRET1"))
    assert any(line.startswith("✗") and "G0SECRET1" in line for line in hidden)
    missing = lines(make_settings(slack_server, IL2WATCH_CHANNEL="no-such-channel"))
    assert any(line.startswith("✗ channel no-such-channel") and "not found" in line for line in missing)


def test_unreachable_ncbi_and_no_slack_token(make_settings):
    report = lines(make_settings(IL2WATCH_EUTILS_URL="http://127.0.0.1:9/", IL2WATCH_NCBI_ATTEMPTS="1"))
    assert any(line.startswith("✗ NCBI E-utilities at http://127.0.0.1:9/") for line in report)
    assert any(line.startswith("! SLACK_BOT_TOKEN is not set") for line in report)


def test_a_read_only_library_is_reported(make_settings, tmp_path):
    from il2watch.library import Library

    Library(tmp_path / "library.db").close()
    report = lines(make_settings(IL2WATCH_DB=f"file:{tmp_path / 'library.db'}?mode=ro"))
    assert any(line.startswith("✗ library") and "read-only" in line for line in report)
