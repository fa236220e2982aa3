"""The command line as a user runs it: subprocesses, exit statuses, one-line errors, documented commands."""

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from il2watch.cli import COMMANDS
from tests.support import settings_env, subprocess_env

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
    negative = il2watch(env, "backfill", "--watch", "review", "--limit", "-1", "--include-held")
    assert negative.returncode == 1 and negative.stderr.count("\n") == 1
    assert "from 1 to 200, not -1" in negative.stderr


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


def test_help_opens_with_what_il2watch_does_and_every_option_is_explained():
    import argparse

    from il2watch.cli import build_parser

    done = il2watch(subprocess_env(), "--help")
    assert done.returncode == 0
    description = done.stdout.split("\n\n")[1]
    assert description.startswith("il2watch posts every new paper around the IL-2 review")
    assert "``" not in done.stdout and "docstring" not in done.stdout
    parser = build_parser()
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(subparsers.choices) == set(COMMANDS)
    for name, sub in subparsers.choices.items():
        assert sub.description and not sub.description.startswith(("Run one cycle", "The same facts")), name
        for action in sub._actions:
            assert action.help, f"il2watch {name} {action.option_strings or action.dest} has no help"
    search = il2watch(subprocess_env(), "search", "--help")
    assert "how many matches to list (default 20)" in " ".join(search.stdout.split())


def test_a_command_line_mistake_is_one_line(tmp_path, ncbi_server):
    env = subprocess_env(**settings_env(tmp_path, ncbi_server))
    for args in (("search", "--limit", "-3", "lupus"), ("search", "--limit", "many", "lupus"), ("frobnicate",)):
        done = il2watch(env, *args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, (args, done.stderr)
        assert done.stderr.startswith("il2watch") and "--help` shows the options" in done.stderr


@pytest.mark.parametrize("port", ["99999", "-1", "0", "²", "3000x"])
def test_serve_refuses_a_port_out_of_range_in_one_line(tmp_path, ncbi_server, port):
    env = subprocess_env(**settings_env(tmp_path, ncbi_server, SLACK_SIGNING_SECRET="s3cret-signing"))
    done = il2watch(env, "serve", "--port", port)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "must be a port number from 1 to 65535" in done.stderr and repr(port) in done.stderr
    from_environment = il2watch({**env, "PORT": port}, "serve")
    assert from_environment.returncode == 2 and from_environment.stderr.count("\n") == 1
    assert from_environment.stderr.startswith("il2watch: PORT (from the environment) must be a port number from 1")


def test_serve_refuses_a_host_it_cannot_listen_on_in_one_line(tmp_path, ncbi_server):
    settings = settings_env(tmp_path, ncbi_server, SLACK_SIGNING_SECRET="s3cret-signing", SLACK_BOT_TOKEN="xoxb-1-2")
    env = subprocess_env(**settings)
    done = il2watch(env, "serve", "--port", "3997", "--host", "999.1.1.1")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr == (
        "il2watch: --host '999.1.1.1' is not an address or a name this machine can listen on; use an IP address "
        "such as 0.0.0.0 (every interface) or 127.0.0.1\n"
    )


@pytest.mark.parametrize(
    "entry, named",
    [
        ('synonyms = ["*"]', "synonyms: '*' has fewer than two letters or digits, so it would match in every paper"),
        ('codes = ["-"]', "codes: '-' has fewer than two letters or digits, so it would match in every paper"),
        ('codes = ["a*"]', "codes: 'a*' has fewer than two letters or digits"),
        ('synonyms = ["IL*2"]', "synonyms: 'IL*2' has a '*' inside it"),
    ],
)
def test_a_lexicon_that_would_tag_every_paper_stops_il2watch_at_start_naming_the_entry(
    tmp_path, ncbi_server, entry, named
):
    lexicon = tmp_path / "lexicon.toml"
    lexicon.write_text(f'[[molecule]]\nname = "GI-101"\n{entry}\n', encoding="utf-8")
    env = subprocess_env(**settings_env(tmp_path, ncbi_server, IL2WATCH_LEXICON=str(lexicon)))
    commands = ("poll", "show 1", "serve --port 3999") if entry.startswith('synonyms = ["*"]') else ("poll",)
    for command in commands:
        done = il2watch(env, *command.split())
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith(f"il2watch: lexicon: {lexicon}: molecule 'GI-101' {named}")
    assert not (tmp_path / "library.db").exists()  # refused before anything was polled or stored


def test_benchmarks_share_the_stand_in_helpers_without_pytest():
    import subprocess
    import sys

    code = "import sys; sys.path.insert(0, 'benchmarks'); import harness; print('pytest' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and shown.stdout.strip() == "False", shown.stderr
