"""`il2watch doctor`: one line per check, ✓ or ✗ with the fix, against the stand-ins."""

import subprocess
import sys
from pathlib import Path

from il2watch.doctor import run_checks
from il2watch.library import Library
from tests.support import settings_env, subprocess_env

REPO = Path(__file__).resolve().parent.parent


def lines(settings):
    return [check.line() for check in run_checks(settings)]


def doctor(env):
    return subprocess.run(
        [sys.executable, "-m", "il2watch", "doctor"],
        cwd=REPO,
        env=subprocess_env(PYTHONPATH=str(REPO), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_everything_in_order_passes_and_exits_zero(tmp_path, ncbi_server, slack_server):
    env = settings_env(tmp_path, ncbi_server, slack_server, SLACK_APP_TOKEN=slack_server.app_token)
    Library(env["IL2WATCH_DB"]).close()
    slack_server.socket_mode_url = "ws://127.0.0.1:9/link/"
    done = doctor(env)
    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout.splitlines()
    assert all(line.startswith("✓") for line in output), output
    assert any("PMID 35217787 exists" in line for line in output)
    assert any("Slack scopes: all granted" in line for line in output)
    assert any("the bot can post in il2-papers" in line for line in output)
    assert any("Socket Mode" in line for line in output)
    assert any(line.startswith("✓ lexicon: ") and "molecules" in line for line in output)


def test_every_bad_setting_is_a_line_and_the_rest_is_still_checked(tmp_path, ncbi_server):
    env = settings_env(
        tmp_path, ncbi_server, IL2WATCH_BURST="many", IL2WATCH_JITTER="nan", IL2WATCH_SLACK_API_URL="ftp://x"
    )
    done = doctor(env)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    output = done.stdout.splitlines()
    for name in ("IL2WATCH_BURST", "IL2WATCH_JITTER", "IL2WATCH_SLACK_API_URL"):
        assert [line for line in output if line.startswith(f"✗ {name} must be")], (name, output)
    assert "✗ settings read" in done.stdout and "3 invalid, the rest checked below" in done.stdout
    assert any(line.startswith("✓ NCBI E-utilities answer at") for line in output)  # the rest is still checked
    assert any(line.startswith("✓ watch review: PMID 35217787 exists") for line in output)
    assert "✗ Slack not checked — fix the Slack settings above first" in output


def test_doctor_never_creates_the_library(tmp_path, ncbi_server):
    where = tmp_path / "not-yet" / "library.db"
    done = doctor(settings_env(tmp_path, ncbi_server, IL2WATCH_DB=str(where)))
    assert f"! library {where} does not exist yet — the first `il2watch poll` creates it" in done.stdout
    assert not where.exists() and not where.parent.exists()
    assert done.returncode == 0, done.stdout


def test_missing_scopes_are_named_with_why(make_settings, ncbi_server, slack_server):
    slack_server.add_token("xoxb-narrow", scopes=["chat:write", "commands"])
    report = lines(make_settings(slack_server, SLACK_BOT_TOKEN="xoxb-narrow"))
    [scopes] = [line for line in report if "scopes missing" in line]
    assert scopes.startswith("✗") and "channels:history (check the channel before posting" in scopes


def test_an_install_from_before_follow_ups_is_told_the_direct_message_scopes_it_lacks(
    make_settings, ncbi_server, slack_server
):
    from tests.stand_ins.slack_api import DEFAULT_BOT_SCOPES

    old = [scope for scope in DEFAULT_BOT_SCOPES if scope not in ("im:write", "im:history")]
    slack_server.add_token("xoxb-before-followups", scopes=old)
    report = lines(make_settings(slack_server, SLACK_BOT_TOKEN="xoxb-before-followups"))
    [scopes] = [line for line in report if "scopes missing" in line]
    assert scopes.startswith("✗") and "im:write (send /il2 export files, and word of a retraction" in scopes
    assert "im:history (check a direct message whose answer was lost before sending it again)" in scopes
    assert "channels:history" not in scopes


def test_a_bad_token_is_one_line_with_the_fix(make_settings, slack_server):
    report = lines(make_settings(slack_server, SLACK_BOT_TOKEN="xoxb-wrong"))
    assert (
        "✗ Slack bot token — SLACK_BOT_TOKEN is not valid (invalid_auth): copy the Bot User OAuth Token"
        in "\n".join(report)
    )


def test_a_bad_app_token_is_named_as_the_app_token(make_settings, slack_server):
    report = lines(make_settings(slack_server, SLACK_APP_TOKEN="xapp-1-not-a-real-one"))
    [line] = [line for line in report if "invalid_auth" in line]
    assert line.startswith("✗ Slack app-level token — SLACK_APP_TOKEN is not valid (invalid_auth)")
    assert "xapp-…" in line and "SLACK_BOT_TOKEN" not in line
    assert any(line.startswith("✓ Slack token works") for line in report)  # the bot token is fine


def test_tokens_in_the_wrong_slot_are_explained(make_settings, slack_server):
    swapped = lines(
        make_settings(slack_server, SLACK_BOT_TOKEN=slack_server.app_token, SLACK_APP_TOKEN=slack_server.bot_token)
    )
    assert any(
        line.startswith("✗ Slack bot token — SLACK_BOT_TOKEN holds an app-level (xapp-…) or user token")
        for line in swapped
    ), swapped
    assert any(line.startswith("✗ Slack app-level token — SLACK_APP_TOKEN holds a bot (xoxb-…)") for line in swapped)
    # Shapes il2watch cannot tell from the prefix: Slack's not_allowed_token_type, explained.
    slack_server.add_token("xoxp-app-level-in-disguise", kind="app")
    slack_server.add_token("xapp-bot-in-disguise", kind="bot")
    disguised = "\n".join(
        lines(
            make_settings(
                slack_server, SLACK_BOT_TOKEN="xoxp-app-level-in-disguise", SLACK_APP_TOKEN="xapp-bot-in-disguise"
            )
        )
    )
    assert "SLACK_BOT_TOKEN holds an app-level (xapp-…) or user token, not the kind this slot needs" in disguised
    assert "SLACK_APP_TOKEN holds a bot (xoxb-…) or user token, not the kind this slot needs" in disguised
    assert "not_allowed_token_type): put the Bot User OAuth Token (xoxb-…) from OAuth & Permissions there" in disguised


def test_http_mode_needs_no_app_token(make_settings, slack_server):
    report = lines(make_settings(slack_server, SLACK_SIGNING_SECRET="8f742231b10e8888abcd99"))
    assert not [line for line in report if "SLACK_APP_TOKEN" in line and not line.startswith("✓")]
    assert "✓ SLACK_SIGNING_SECRET is set: `il2watch serve` answers /il2 over HTTP (HTTP mode)" in report
    neither = lines(make_settings(slack_server))
    assert any(line.startswith("! neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET is set") for line in neither)


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
    [missing] = [line for line in report if "SLACK_BOT_TOKEN" in line]
    assert missing.startswith("! SLACK_BOT_TOKEN is not set (to post to Slack): export SLACK_BOT_TOKEN=")
    assert missing.count("is not set") == 1 and "until then `il2watch poll` prints what it would post" in missing


def test_each_host_is_asked_once(make_settings, ncbi_server):
    ncbi_server.inject(503, times=5)
    report = lines(make_settings(IL2WATCH_NCBI_ATTEMPTS="5", IL2WATCH_NCBI_BACKOFF="5"))
    assert any(line.startswith("✗ NCBI E-utilities at") and "HTTP 503" in line for line in report), report
    assert len(ncbi_server.requests) == 1


def test_a_lexicon_entry_that_would_tag_every_paper_is_named(make_settings, tmp_path):
    bad = tmp_path / "lexicon.toml"
    bad.write_text('[[molecule]]\nname = "GI-101"\nsynonyms = ["*"]\n', encoding="utf-8")
    report = lines(make_settings(IL2WATCH_LEXICON=str(bad)))
    [line] = [line for line in report if line[2:].startswith("lexicon")]
    assert line.startswith(f"✗ lexicon: {bad}: molecule 'GI-101' synonyms: '*' has fewer than two letters or digits")


def test_a_bad_lexicon_entry_says_il2watch_will_not_start(make_settings, tmp_path):
    """poll and run refuse to start on it (exit 2); doctor used to say only that papers would go untagged."""
    bad = tmp_path / "lexicon.toml"
    bad.write_text('[[molecule]]\nname = "GI-101"\ncode = "-"\n', encoding="utf-8")
    report = lines(make_settings(IL2WATCH_LEXICON=str(bad)))
    [line] = [line for line in report if line[2:].startswith("lexicon")]
    assert line.startswith(f"✗ lexicon: {bad}: molecule 'GI-101'")
    assert line.endswith(" — fix that entry; il2watch will not start until then")


def test_a_lexicon_file_that_is_not_there_is_named_in_one_warning(make_settings, tmp_path):
    """IL2WATCH_LEXICON=/nonexistent was skipped without a word."""
    extra = tmp_path / "extra.toml"
    extra.write_text('[[molecule]]\nname = "GI-101"\nsynonyms = ["GI101"]\n', encoding="utf-8")
    missing = tmp_path / "nonexistent" / "lexicon.toml"
    report = lines(make_settings(IL2WATCH_LEXICON=f"{missing},{extra}"))
    lexicon = [line for line in report if line[2:].startswith("lexicon")]
    assert lexicon[0] == (
        f"! lexicon file not found: {missing}; il2watch skips it and tags with the rest"
        " — fix the path in IL2WATCH_LEXICON (intel.lexicon)"
    )
    assert len(lexicon) == 2 and lexicon[1].startswith("✓ lexicon: ") and str(extra) in lexicon[1]


def test_the_default_lexicon_file_may_be_absent_without_a_warning(make_settings, tmp_path):
    assert not (tmp_path / "config" / "lexicon.toml").exists()
    report = lines(make_settings())
    assert [line[0] for line in report if line[2:].startswith("lexicon")] == ["✓"]


def test_a_read_only_library_is_reported(make_settings, tmp_path):
    from il2watch.library import Library

    Library(tmp_path / "library.db").close()
    report = lines(make_settings(IL2WATCH_DB=f"file:{tmp_path / 'library.db'}?mode=ro"))
    assert any(line.startswith("✗ library") and "read-only" in line for line in report)


def test_words_pubmed_cannot_use_in_a_query_watch_are_named_one_line_each(make_settings, ncbi_server, tmp_path):
    config = tmp_path / "typo.toml"
    config.write_text(
        '[[watch]]\nid = "tregs"\nquery = "interleukin AND lupsu AND regulatory[xyzfield]"\n\n'
        '[[watch]]\nid = "plain"\nquery = "interleukin"\n',
        encoding="utf-8",
    )
    ncbi_server.clear_requests()
    report = lines(make_settings(IL2WATCH_CONFIG=str(config)))
    fix = " — fix the query in config/il2watch.toml"
    assert [line for line in report if line.startswith("! watch tregs")] == [
        "! watch tregs: PubMed does not know “lupsu” and searched without it" + fix,
        "! watch tregs: PubMed has no search field [xyzfield] and searched without it" + fix,
    ]
    assert any(line.startswith("✓ watch plain: PubMed can use every word of its query (") for line in report)
    searches = [r for r in ncbi_server.requests if r.endpoint == "esearch"]
    assert sorted(r.params["term"][0] for r in searches) == [
        "interleukin",
        "interleukin AND lupsu AND regulatory[xyzfield]",
    ]
    assert all(r.params["retmax"] == ["0"] for r in searches)  # one cheap request per query watch
