"""No secret leaves il2watch: every configured secret, driven through every failure path a message takes.

Each secret setting (NCBI's and every other API key, the Slack tokens and signing secret, the summariser's
key), the user and password in every base URL and the password in a database URL get values of their own.
Then NCBI rejects the key with HTTP 400 and a JSON body that echoes it (or cannot be reached through a URL
carrying credentials), polls fail from the command line, from `/il2 poll` and in the worker until the
channel alert goes out, and `il2watch status`, `il2watch doctor`, `/il2 status` and the App Home report it.
Every place a person or a machine could read is collected (what the command line printed, the log, every
row of the library, every request and reply the Slack stand-in received) and no secret may be in any.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest
from slack_bolt.request import BoltRequest

from il2watch.config import OPTIONS, load_settings
from il2watch.logs import setup_logging
from il2watch.slack_app import build_app
from il2watch.worker import Worker
from tests.stand_ins.socket_mode import app_home_opened_payload, slash_command_payload
from tests.support import settings_env, subprocess_env

REPO = Path(__file__).resolve().parent.parent
ADMIN = "UADMIN01"
LOGGERS = ("il2watch", "slack_bolt", "slack_sdk", "apscheduler", "waitress")

BOT_TOKEN = "xoxb-5150-leakcheck-bot-7f3a"
APP_TOKEN = "xapp-1-A0IL2WATCH-5150-leakcheck-app"
NCBI_KEY = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b"  # NCBI keys are 36 hexadecimal characters


def secret_value(env: str) -> str:
    """A value of its own for each secret setting, also those added after this test was written."""
    known = {"NCBI_API_KEY": NCBI_KEY, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN}
    return known.get(env) or "s3cr3t-" + hashlib.sha256(env.encode()).hexdigest()[:20]


SECRET_SETTINGS = {option.env: secret_value(option.env) for option in OPTIONS if option.kind == "secret"}
URL_CREDENTIALS = ("ncbiuser77", "ncbipass77", "slackuser77", "slackpass77", "llmuser77", "llmpass77")
DB_CREDENTIALS = ("dbuser77", "dbpass77")
EVERY_SECRET = (*SECRET_SETTINGS.values(), *URL_CREDENTIALS, *DB_CREDENTIALS)


@pytest.fixture(autouse=True)
def restore_logging():
    """The in-process part logs through setup_logging, which configures process-wide loggers."""
    saved = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).level) for name in LOGGERS}
    yield
    for name, (handlers, level) in saved.items():
        logging.getLogger(name).handlers = handlers
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).propagate = True


def lab_env(tmp_path, ncbi_server, slack_server, **urls: str) -> dict[str, str]:
    slack_server.add_token(BOT_TOKEN, kind="bot")
    slack_server.add_token(APP_TOKEN, kind="app")
    return settings_env(
        tmp_path,
        ncbi_server,
        slack_server,
        **SECRET_SETTINGS,
        DATABASE_URL="postgresql://dbuser77:dbpass77@dbhost/il2watch",  # read, remembered, not used: IL2WATCH_DB wins
        IL2WATCH_SUMMARISER_URL="http://llmuser77:llmpass77@127.0.0.1:9/v1",
        IL2WATCH_SUMMARISER_MODEL="summary-model",
        IL2WATCH_ADMINS=ADMIN,
        IL2WATCH_ALERT_AFTER="3",
        IL2WATCH_NCBI_ATTEMPTS="1",
        IL2WATCH_LOG_LEVEL="DEBUG",
        **urls,
    )


class Seen:
    """Everything il2watch let out, gathered for one look."""

    def __init__(self) -> None:
        self.parts: dict[str, str] = {}

    def add(self, where: str, text: str) -> str:
        self.parts[where] = self.parts.get(where, "") + text
        return text

    def cli(self, tmp_path, env, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "il2watch", *args],
            cwd=tmp_path,
            env=subprocess_env(PYTHONPATH=str(REPO), **env),
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.add(f"il2watch {' '.join(args)} (stdout and its log)", done.stdout)
        self.add(f"il2watch {' '.join(args)} (stderr)", done.stderr)
        return done

    def library(self, path: Path) -> None:
        connection = sqlite3.connect(path)
        self.add("every row of the library", "\n".join(connection.iterdump()))
        connection.close()

    def slack(self, api) -> None:
        self.add("every Slack Web API request", json.dumps([(c.method, c.params) for c in api.calls()], default=str))
        self.add("every response_url reply", json.dumps([p.body for p in api.response_posts()], default=str))
        views = [api.home_view(user) for user in ("UHOME777",)]
        self.add("every App Home view", json.dumps(views, default=str))

    def assert_no_secret(self) -> None:
        assert self.parts, "nothing was collected"
        leaks = [(secret, where) for where, text in self.parts.items() for secret in EVERY_SECRET if secret in text]
        assert not leaks, leaks


def dispatch(app, payload: dict, kind: str = "command") -> dict:
    body = urlencode(payload) if kind == "command" else json.dumps(payload)
    response = app.dispatch(BoltRequest(body=body, mode="socket_mode"))
    return json.loads(response.body) if response.body else {}


def scheduled(job) -> None:
    """Run a worker job as APScheduler runs it: an exception it raises is logged with its traceback."""
    try:
        job()
    except Exception:
        logging.getLogger("apscheduler.executors.default").exception("Job raised an exception")


def in_process_log() -> io.StringIO:
    stream = io.StringIO()
    setup_logging(level="DEBUG", stream=stream)
    return stream


def test_the_stand_in_rejects_a_key_as_ncbi_does(ncbi_server):
    ncbi_server.reject_api_key(NCBI_KEY)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{ncbi_server.base_url}einfo.fcgi?db=pubmed&api_key={NCBI_KEY}", timeout=5)
    assert refused.value.code == 400
    assert json.loads(refused.value.read()) == {
        "error": "API key invalid",
        "api-key": NCBI_KEY,
        "type": "invalid",
        "status": "unknown",
    }


def test_a_rejected_ncbi_key_echoed_back_reaches_no_one(tmp_path, ncbi_server, slack_server):
    ncbi_server.reject_api_key(NCBI_KEY)
    env = lab_env(tmp_path, ncbi_server, slack_server)
    seen = Seen()

    poll = seen.cli(tmp_path, env, "poll")
    assert poll.returncode == 1 and "NCBI answered HTTP 400" in poll.stderr, poll.stderr

    settings = load_settings(env, tmp_path)
    log = in_process_log()
    app = build_app(settings)
    url = slack_server.new_response_url(channel="C0PAPERS1", user=ADMIN)
    command = {"user_id": ADMIN, "channel_id": "C0PAPERS1", "response_url": url}
    ack = dispatch(app, slash_command_payload("/il2", "poll", **command))
    assert "Polling PubMed now" in ack["text"]
    (answer,) = slack_server.wait_for_response_posts(1, url=url, timeout=15)
    assert "HTTP 400" in answer.body["text"]
    worker = Worker(settings)
    scheduled(worker.poll_job)  # the third failure in a row: the alert goes to the channel
    (alert,) = slack_server.posts_with_metadata("il2watch_alert")
    assert "HTTP 400" in alert.text and "[redacted]" in alert.text
    command["response_url"] = slack_server.new_response_url(channel="C0PAPERS1", user=ADMIN)
    status = dispatch(app, slash_command_payload("/il2", "status", **command))
    seen.add("the /il2 status reply", json.dumps(status))
    assert "HTTP 400" in json.dumps(status)
    dispatch(app, app_home_opened_payload("UHOME777"), kind="event")
    deadline = time.monotonic() + 5
    while slack_server.home_view("UHOME777") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "HTTP 400" in json.dumps(slack_server.home_view("UHOME777"))
    status_cli = seen.cli(tmp_path, env, "status")
    assert "Last error" in status_cli.stdout and "HTTP 400" in status_cli.stdout
    doctor = seen.cli(tmp_path, env, "doctor")
    assert "✗ NCBI E-utilities at" in doctor.stdout and "HTTP 400" in doctor.stdout
    assert "DATABASE_URL (PostgreSQL il2watch at dbhost) is set, but IL2WATCH_DB wins" in doctor.stdout

    ncbi_server.rejected_api_keys = frozenset()  # the key works again: papers are posted, summaries fail
    scheduled(worker.poll_job)
    assert slack_server.posts_with_metadata("il2watch_paper") and slack_server.posts_with_metadata("il2watch_recovered")
    assert "language-model summary unavailable" in log.getvalue()
    seen.add("the in-process log (/il2 poll, the worker, the app)", log.getvalue())

    seen.library(settings.db_path)
    seen.slack(slack_server)
    seen.assert_no_secret()


@pytest.mark.parametrize("host", ["NCBI", "Slack"])
def test_credentials_in_an_unreachable_base_url_reach_no_one(tmp_path, ncbi_server, slack_server, host):
    urls = (
        {"IL2WATCH_EUTILS_URL": "http://ncbiuser77:ncbipass77@127.0.0.1:9/entrez/eutils/"}
        if host == "NCBI"
        else {"IL2WATCH_SLACK_API_URL": slack_server.base_url.replace("http://", "http://slackuser77:slackpass77@")}
    )
    env = lab_env(tmp_path, ncbi_server, slack_server, **urls)
    seen = Seen()
    poll = seen.cli(tmp_path, env, "poll")
    assert poll.returncode == 1 and poll.stderr.startswith("il2watch: poll failed: "), poll.stderr

    settings = load_settings(env, tmp_path)
    log = in_process_log()
    worker = Worker(settings)
    scheduled(worker.poll_job)
    scheduled(worker.poll_job)  # the third failure: the alert is posted (or, with Slack unreachable, queued)
    seen.add("the in-process log (the worker)", log.getvalue())

    status = seen.cli(tmp_path, env, "status")
    assert "Last error" in status.stdout
    doctor = seen.cli(tmp_path, env, "doctor")
    if host == "NCBI":
        assert "NCBI cannot be reached: 127.0.0.1:9 refused the connection" in poll.stderr
        assert "✗ NCBI E-utilities at http://[redacted]@127.0.0.1:9/" in doctor.stdout, doctor.stdout
        (alert,) = slack_server.posts_with_metadata("il2watch_alert")
        assert "127.0.0.1:9 refused the connection" in alert.text
    else:
        assert "✗ Slack at http://[redacted]@127.0.0.1:" in doctor.stdout, doctor.stdout

    seen.library(settings.db_path)
    with sqlite3.connect(settings.db_path) as connection:
        assert connection.execute("select count(*) from outbox where kind = 'note'").fetchone()[0] == 1
    seen.slack(slack_server)
    seen.assert_no_secret()


def test_a_setting_that_fails_to_load_does_not_echo_its_secret(tmp_path, ncbi_server):
    config = tmp_path / "careless.toml"
    config.write_text(
        '[ncbi]\napi_key = 123456789012345\neutils_url = "ftp://ncbiuser77:ncbipass77@mirror.example/"\n'
        '[slack]\nbot_token = ["xoxb-5150-leakcheck-bot-7f3a"]\n',
        encoding="utf-8",
    )
    env = settings_env(tmp_path, ncbi_server, IL2WATCH_CONFIG=str(config))
    del env["NCBI_API_KEY"]
    seen = Seen()
    for command in ("poll", "doctor"):
        done = seen.cli(tmp_path, env, command)
        assert done.returncode in (1, 2) and "NCBI_API_KEY must be text" in done.stdout + done.stderr
        assert "SLACK_BOT_TOKEN must be text" in done.stdout + done.stderr
    text = "\n".join(seen.parts.values())
    assert "123456789012345" not in text and "ncbipass77" not in text and "ncbiuser77" not in text
    seen.assert_no_secret()


def test_the_other_indexes_echoing_a_key_or_a_contact_reach_no_one(tmp_path, slack_server):
    """iCite, Europe PMC and OpenAlex are asked too, OpenAlex with OPENALEX_API_KEY as a URL parameter, and
    each fails with a body that echoes what it was sent: OpenAlex the request URL with ``api_key``, iCite and
    Europe PMC the contact and every key. Neither the polls' lines (the command line's, the worker's log),
    `status`, `doctor`, the library nor Slack carries a secret."""
    from tests.data import citations as C
    from tests.stand_ins.europepmc import EuropePmcStandIn
    from tests.stand_ins.eutils import EutilsStandIn
    from tests.stand_ins.icite import IciteStandIn
    from tests.stand_ins.openalex import OpenAlexStandIn

    openalex_key = SECRET_SETTINGS["OPENALEX_API_KEY"]
    keys = f"api_key={openalex_key}&ncbi_api_key={NCBI_KEY}&email=lab@example.org&token={BOT_TOKEN}"
    literature = C.build_literature()
    with (
        EutilsStandIn(literature.world) as ncbi,
        IciteStandIn(literature) as icite,
        EuropePmcStandIn(literature) as epmc,
        OpenAlexStandIn(literature, keys=(openalex_key,)) as openalex,
    ):
        echoed = f"{openalex.base_url}works?filter=cites:W4200000001&per_page=100&cursor=*&{keys}"
        for status in (400, 403):
            message = f"The API key {openalex_key} may not make this request: {echoed}"  # bare, and in the URL
            openalex.inject(status, times=20, body={"error": "Forbidden", "message": message})
        contact = f"lab@example.org (keys {openalex_key}, {NCBI_KEY})"
        icite.inject(400, times=40, body={"error": f"bad request from {contact}", "url": f"{icite.base_url}?{keys}"})
        epmc.inject(500, times=40, body={"errCode": 500, "errMsg": f"{contact} failed: {epmc.base_url}search?{keys}"})
        env = lab_env(
            tmp_path,
            ncbi,
            slack_server,
            IL2WATCH_SOURCES="pubmed,icite,europepmc,openalex",
            IL2WATCH_ICITE_URL=icite.base_url,
            IL2WATCH_EUROPEPMC_URL=epmc.base_url,
            IL2WATCH_OPENALEX_URL=openalex.base_url,
            IL2WATCH_ICITE_REFRESH="0",
            IL2WATCH_OPENALEX_REFRESH="0",
            IL2WATCH_HTTP_BACKOFF="0.01",
            IL2WATCH_HTTP_ATTEMPTS="1",
        )
        seen = Seen()
        poll = seen.cli(tmp_path, env, "poll")
        settings = load_settings(env, tmp_path)
        log = in_process_log()
        worker = Worker(settings)
        scheduled(worker.poll_job)
        seen.add("the in-process log (the worker)", log.getvalue())
        status = seen.cli(tmp_path, env, "status")
        doctor = seen.cli(tmp_path, env, "doctor")
        asked = [r for server in (icite, epmc, openalex) for r in server.requests]

    assert [r for r in asked if r.status >= 400], "the indexes were asked, and failed"
    assert any(openalex_key in json.dumps(r.params) for r in openalex.requests), "OpenAlex was sent the key"
    said = poll.stdout + poll.stderr + log.getvalue()
    for label in ("iCite", "Europe PMC", "OpenAlex"):
        assert label in said, label  # each failure was told
    assert "[redacted]" in said, "the echoed key was there to be redacted"
    seen.add("il2watch status and doctor", status.stdout + doctor.stdout)
    seen.library(settings.db_path)
    seen.slack(slack_server)
    seen.assert_no_secret()
