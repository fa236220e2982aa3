"""A Slack request handled once is not handled again: not when Slack redelivers it, and not when someone
replays a signed request to a restarted `il2watch serve` within its five minutes."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlencode

from il2watch.config import load_settings
from il2watch.library import Library
from il2watch.model import Paper, Reason
from il2watch.slack_app import HANDLED_KEEP, build_app
from il2watch.web import create_server
from tests.data.records import build_world
from tests.stand_ins.eutils import EutilsStandIn
from tests.stand_ins.slack_api import DEFAULT_BOT_TOKEN, SlackStandIn
from tests.stand_ins.socket_mode import slash_command_payload
from tests.test_serve import CHANNEL, READER, SECRET, request, signature


def test_a_signed_export_replayed_after_a_restart_is_not_uploaded_again(tmp_path):
    with SlackStandIn() as api, EutilsStandIn(build_world()) as ncbi_server:
        settings = load_settings(
            {
                "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SECRET,
                "IL2WATCH_SLACK_API_URL": api.base_url,
                "IL2WATCH_EUTILS_URL": ncbi_server.base_url,
                "IL2WATCH_DB": str(tmp_path / "lib.db"),
                "IL2WATCH_CHANNEL": CHANNEL,
            },
            cwd=tmp_path,
        )
        with Library(settings.db_path) as library:
            library.save_papers([Paper("40000001", "Low-dose IL-2 in lupus", entry_date="2024-05-30")])
            library.save_reasons(
                [("40000001", Reason("review", "cites"))], now="2024-06-01T00:00:00+00:00", run_id=None
            )
        url = api.new_response_url(channel=CHANNEL, user=READER)
        body = urlencode(
            slash_command_payload("/il2", "export ris", user_id=READER, channel_id=CHANNEL, response_url=url)
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature(body, timestamp),
        }
        acks = []
        for _process in ("first", "after a restart"):  # a new app: nothing carried over in memory
            server = create_server(settings, 0, host="127.0.0.1", app=build_app(settings))
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            try:
                status, data, _ = request(server.effective_port, "POST", "/slack/events", body, headers)
                assert status == 200
                acks.append(data)
                api.wait_for_response_posts(1, url=url)
            finally:
                server.close()
                thread.join(timeout=5)
        time.sleep(0.2)  # long enough for a second upload to have arrived, were there one
    assert b"Exporting 1 paper" in acks[0] and b"Exporting" not in acks[1]
    assert len(api.files()) == 1 and len(api.response_posts(url)) == 1


def test_handled_requests_are_kept_for_slacks_retry_window_then_forgotten(tmp_path):
    with Library(tmp_path / "lib.db") as library:
        assert library.first_handling("a", now=1000.0, keep=HANDLED_KEEP)
        assert not library.first_handling("a", now=1000.0 + HANDLED_KEEP - 1, keep=HANDLED_KEEP)
        assert library.first_handling("b", now=1001.0, keep=HANDLED_KEEP)
        assert library.first_handling("a", now=1002.0 + HANDLED_KEEP, keep=HANDLED_KEEP)  # forgotten: pruned
        kept = [row[0] for row in library.db.execute("select key from handled_requests order by key")]
        assert kept == ["a"]  # "b" was older than the window too, and went with it
    assert HANDLED_KEEP >= 600  # Slack retries after 1 and 5 minutes; a signed request lives 5 minutes


def test_a_command_is_acked_in_time_while_a_poll_holds_the_write_lock(tmp_path):
    import json
    import sqlite3

    from slack_bolt.request import BoltRequest

    with SlackStandIn() as api:
        settings = load_settings(
            {
                "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN,
                "IL2WATCH_SLACK_API_URL": api.base_url,
                "IL2WATCH_DB": str(tmp_path / "l.db"),
            },
            cwd=tmp_path,
        )
        with Library(settings.db_path) as library:
            library.save_papers([Paper("40000001", "Low-dose IL-2 in lupus", entry_date="2024-05-30")])
        app = build_app(settings)
        writer = sqlite3.connect(settings.db_path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # as a poll's transaction holds it
        try:
            started = time.monotonic()
            body = urlencode(
                slash_command_payload(
                    "/il2", "search lupus", user_id=READER, channel_id=CHANNEL, response_url=api.new_response_url()
                )
            )
            reply = json.loads(app.dispatch(BoltRequest(body=body, mode="socket_mode")).body)
            took = time.monotonic() - started
        finally:
            writer.execute("ROLLBACK")
            writer.close()
    assert "40000001" in json.dumps(reply["blocks"]) and took < 2.5
