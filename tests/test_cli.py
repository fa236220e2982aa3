"""The command line as a user runs it: subprocesses, exit statuses, one-line errors, documented commands."""

import subprocess
import sys
from collections import Counter
from pathlib import Path

from il2watch.cli import COMMANDS
from tests.conftest import settings_env, subprocess_env

REPO = Path(__file__).resolve().parent.parent


def il2watch(env, *args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "il2watch", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_every_command_is_documented_in_the_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in COMMANDS:
        assert f"`il2watch {name}" in readme, f"il2watch {name} is not in the README"


def test_env_example_names_only_real_settings():
    import re

    from il2watch.config import OPTIONS

    known = {option.env for option in OPTIONS}
    names = re.findall(r"(?m)^([A-Z_0-9]+)=", (REPO / ".env.example").read_text(encoding="utf-8"))
    assert names and set(names) <= known


def test_poll_without_slack_prints_the_posts_and_exits_zero(tmp_path, ncbi_server):
    done = il2watch(subprocess_env(**settings_env(tmp_path, ncbi_server)), "poll")
    assert done.returncode == 0, done.stderr
    assert "Started watching the review" in done.stdout
    assert "https://pubmed.ncbi.nlm.nih.gov/" in done.stdout
    assert done.stdout.strip().splitlines()[-1].startswith("poll ok:")
    assert "nothing marked delivered" in done.stdout


def test_a_failed_poll_exits_one_with_one_line(tmp_path, ncbi_server):
    env = subprocess_env(
        **settings_env(
            tmp_path,
            ncbi_server,
            IL2WATCH_EUTILS_URL="http://127.0.0.1:9/",
            IL2WATCH_NCBI_ATTEMPTS="1",
            IL2WATCH_LOG_LEVEL="ERROR",
        )
    )
    done = il2watch(env, "poll")
    assert done.returncode == 1
    assert done.stderr.startswith("il2watch: poll failed: NCBI cannot be reached: 127.0.0.1:9 refused the connection")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_an_invalid_setting_exits_two_naming_it(tmp_path, ncbi_server):
    done = il2watch(subprocess_env(**settings_env(tmp_path, ncbi_server, IL2WATCH_BURST="many")), "poll")
    assert done.returncode == 2
    assert done.stderr.startswith("il2watch: IL2WATCH_BURST must be a whole number")
    assert done.stderr.count("\n") == 1


def test_secrets_never_reach_the_log(tmp_path, ncbi_server, slack_server):
    env = subprocess_env(
        **settings_env(
            tmp_path,
            ncbi_server,
            slack_server,
            IL2WATCH_LOG_LEVEL="DEBUG",
            IL2WATCH_LOG_FORMAT="json",
            SLACK_SIGNING_SECRET="sign-me-secretly-123",
        )
    )
    slack_server.inject("invalid_auth", method="chat.postMessage")
    done = il2watch(env, "poll")
    everything = done.stdout + done.stderr
    for secret in (slack_server.bot_token, "stand-in-key", "sign-me-secretly-123"):
        assert secret not in everything


def test_backfill_posts_more_with_progress_and_never_twice(tmp_path, ncbi_server, slack_server):
    env = subprocess_env(**settings_env(tmp_path, ncbi_server, slack_server))
    assert il2watch(env, "poll").returncode == 0
    first = il2watch(env, "backfill", "--watch", "review", "--limit", "4")
    assert first.returncode == 0, first.stderr
    assert "backfill: 4/4 posted" in first.stderr
    assert first.stdout.startswith("backfill: 4 posted")
    il2watch(env, "backfill", "--watch", "review", "--limit", "4")
    counts = Counter(m.metadata["event_payload"]["pmid"] for m in slack_server.posts_with_metadata("il2watch_paper"))
    assert len(counts) == 3 + 8 and set(counts.values()) == {1}
    unknown = il2watch(env, "backfill", "--watch", "nope")
    assert unknown.returncode == 1 and "no watch 'nope'" in unknown.stderr


def test_search_and_show_read_the_library(tmp_path, ncbi_server):
    env = subprocess_env(**settings_env(tmp_path, ncbi_server))
    il2watch(env, "poll")
    found = il2watch(env, "search", '"regulatory T"', "OR", "melanoma")
    assert found.returncode == 0 and "match(es)" in found.stdout
    pmid = found.stdout.split()[0]
    shown = il2watch(env, "show", pmid)
    assert shown.returncode == 0 and f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" in shown.stdout
    assert "Relevance" in shown.stdout
    missing = il2watch(env, "show", "1")
    assert missing.returncode == 1 and "not in the library" in missing.stderr
