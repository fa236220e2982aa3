"""The Slack stand-ins, proven with the real clients: slack_sdk's WebClient, WebhookClient and Socket Mode
client, and a Bolt app behind SocketModeHandler. If these pass, il2watch's tests against the stand-ins
exercise the same requests and answers il2watch meets in a real workspace."""

from __future__ import annotations

import base64
import json
import os
import queue
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.client import RemoteDisconnected
from itertools import islice

import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import (
    ConnectionErrorRetryHandler,
    FixedValueRetryIntervalCalculator,
    RateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from tests.stand_ins.slack_api import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    HUMAN_USER_ID,
    TEAM_ID,
    SlackStandIn,
    block_kit_errors,
)
from tests.stand_ins.socket_mode import (
    SocketModeStandIn,
    app_home_opened_payload,
    block_actions_payload,
    slash_command_payload,
)

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")
NO_RETRIES: list = []


@pytest.fixture(autouse=True, scope="module")
def no_proxy() -> Iterator[None]:
    """slack_sdk reads proxy variables and ignores NO_PROXY; requests to 127.0.0.1 must go direct."""
    saved = {name: os.environ.pop(name) for name in PROXY_VARIABLES if name in os.environ}
    yield
    os.environ.update(saved)


class SteppedClock:
    """A clock that moves only when told, for timestamps and rate-limit buckets."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
def slack(clock: SteppedClock) -> Iterator[SlackStandIn]:
    with SlackStandIn(clock=clock) as stand_in:
        stand_in.add_channel("papers", channel_id="C0PAPERS")
        yield stand_in


def client_for(slack: SlackStandIn, token: str | None = None, **options) -> WebClient:
    return WebClient(token=token or slack.bot_token, base_url=slack.base_url, **options)


def error_of(call) -> SlackApiError:
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value


# ---------------------------------------------------------------------------------------------- auth


def test_auth_test_names_the_bot_and_reports_scopes_in_a_header(slack: SlackStandIn) -> None:
    answer = client_for(slack).auth_test()
    assert (answer["team_id"], answer["user_id"], answer["bot_id"]) == (TEAM_ID, BOT_USER_ID, BOT_ID)
    assert "chat:write" in answer.headers["X-OAuth-Scopes"].split(",")


@pytest.mark.parametrize(
    ("token", "status", "expected"),
    [
        ("", "active", "not_authed"),
        ("xoxb-nobody-knows-this", "active", "invalid_auth"),
        ("xoxb-revoked", "token_revoked", "token_revoked"),
        ("xoxb-inactive", "account_inactive", "account_inactive"),
    ],
)
def test_bad_tokens_are_refused_as_slack_refuses_them(
    slack: SlackStandIn, token: str, status: str, expected: str
) -> None:
    if status != "active":
        slack.add_token(token)
        slack.set_token_status(token, status)  # a token that worked, then was revoked or deactivated
    client = WebClient(token=token or None, base_url=slack.base_url)
    failure = error_of(lambda: client.chat_postMessage(channel="C0PAPERS", text="hello"))
    assert failure.response.status_code == 200
    assert failure.response["error"] == expected
    assert slack.messages("C0PAPERS") == []


def test_a_token_without_the_scope_gets_missing_scope_with_needed_and_provided(slack: SlackStandIn) -> None:
    slack.add_token("xoxb-read-only", scopes=["channels:history"])
    failure = error_of(lambda: client_for(slack, "xoxb-read-only").chat_postMessage(channel="C0PAPERS", text="x"))
    assert (failure.response["error"], failure.response["needed"]) == ("missing_scope", "chat:write")
    assert failure.response.headers["X-OAuth-Scopes"] == "channels:history"


def test_app_token_opens_socket_mode_only_and_bot_token_cannot(slack: SlackStandIn) -> None:
    slack.socket_mode_url = "ws://127.0.0.1:9/link/"
    opened = WebClient(base_url=slack.base_url).apps_connections_open(app_token=slack.app_token)
    assert opened["url"].startswith("ws://127.0.0.1:9/link/?ticket=")
    assert opened["url"].endswith(f"&app_id={APP_ID}")
    refused = error_of(lambda: WebClient(base_url=slack.base_url).apps_connections_open(app_token=slack.bot_token))
    assert refused.response["error"] == "not_allowed_token_type"
    misused = error_of(lambda: client_for(slack, slack.app_token).chat_postMessage(channel="C0PAPERS", text="x"))
    assert misused.response["error"] == "not_allowed_token_type"


def test_token_may_come_as_a_form_field_but_not_inside_json(slack: SlackStandIn) -> None:
    answer = WebClient(base_url=slack.base_url).api_call("auth.test", params={"token": slack.bot_token})
    assert answer["user_id"] == BOT_USER_ID
    body = json.dumps({"token": slack.bot_token}).encode()
    request = urllib.request.Request(
        slack.base_url + "auth.test", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        assert json.load(response) == {"ok": False, "error": "not_authed"}


# ---------------------------------------------------------------------------------------------- posting and history


def test_posts_get_unique_increasing_ts_from_the_clock(slack: SlackStandIn, clock: SteppedClock) -> None:
    client = client_for(slack)
    first = client.chat_postMessage(channel="C0PAPERS", text="one")["ts"]
    second = client.chat_postMessage(channel="C0PAPERS", text="two")["ts"]
    clock.advance(2.5)
    third = client.chat_postMessage(channel="C0PAPERS", text="three")["ts"]
    assert (first, second, third) == ("1700000000.000000", "1700000000.000001", "1700000002.500000")


def test_post_by_name_stores_everything_slack_keeps(slack: SlackStandIn) -> None:
    blocks = [{"type": "section", "block_id": "b1", "text": {"type": "mrkdwn", "text": "*IL-2*"}}]
    metadata = {"event_type": "il2_paper_posted", "event_payload": {"pmid": "35217787"}}
    answer = client_for(slack).chat_postMessage(
        channel="#papers", text="IL-2", blocks=blocks, metadata=metadata, unfurl_links=False, mrkdwn=True
    )
    assert answer["channel"] == "C0PAPERS"
    assert answer["message"]["bot_id"] == BOT_ID and answer["message"]["user"] == BOT_USER_ID
    [stored] = slack.messages("papers")
    assert (stored.text, stored.blocks, stored.metadata) == ("IL-2", blocks, metadata)
    assert (stored.user, stored.bot_id, stored.unfurl_links, stored.thread_ts) == (BOT_USER_ID, BOT_ID, False, None)


def test_blocks_and_metadata_may_also_arrive_as_json_strings_in_a_form(slack: SlackStandIn) -> None:
    blocks = [{"type": "divider"}]
    metadata = {"event_type": "il2_paper_posted", "event_payload": {"pmid": "1"}}
    client_for(slack).api_call(
        "chat.postMessage",
        params={"channel": "C0PAPERS", "text": "x", "blocks": json.dumps(blocks), "metadata": json.dumps(metadata)},
    )
    [stored] = slack.messages("C0PAPERS")
    assert (stored.blocks, stored.metadata) == (blocks, metadata)


def test_history_pages_newest_first_with_metadata_only_when_asked(slack: SlackStandIn) -> None:
    client = client_for(slack)
    for pmid in range(5):
        client.chat_postMessage(
            channel="C0PAPERS",
            text=f"paper {pmid}",
            metadata={"event_type": "il2_paper_posted", "event_payload": {"pmid": str(pmid)}},
        )
    paging = client.conversations_history(channel="C0PAPERS", limit=2, include_all_metadata=True)
    pages = [page.data for page in islice(paging, 4)]  # bounded, so a cursor that never ends fails the test
    assert [[m["text"] for m in page["messages"]] for page in pages] == [
        ["paper 4", "paper 3"],
        ["paper 2", "paper 1"],
        ["paper 0"],
    ]
    assert [page["has_more"] for page in pages] == [True, True, False]
    assert "response_metadata" not in pages[-1]
    cursor = base64.b64decode(pages[0]["response_metadata"]["next_cursor"]).decode()
    assert cursor == "next_ts:" + slack.messages("C0PAPERS")[2].ts.replace(".", "")
    assert pages[0]["messages"][0]["metadata"]["event_payload"] == {"pmid": "4"}
    plain = client.conversations_history(channel="C0PAPERS")
    assert all("metadata" not in m for m in plain["messages"]) and len(plain["messages"]) == 5
    assert [m.metadata["event_payload"]["pmid"] for m in slack.posts_with_metadata("il2_paper_posted")] == [
        "0",
        "1",
        "2",
        "3",
        "4",
    ]


def test_history_bounds_follow_oldest_latest_and_inclusive(slack: SlackStandIn, clock: SteppedClock) -> None:
    client = client_for(slack)
    stamps = []
    for _ in range(4):
        stamps.append(client.chat_postMessage(channel="C0PAPERS", text="x")["ts"])
        clock.advance(10)

    def texts(**bounds) -> list[str]:
        return [m["ts"] for m in client.conversations_history(channel="C0PAPERS", **bounds)["messages"]]

    assert texts(oldest=stamps[1]) == [stamps[3], stamps[2]]
    assert texts(oldest=stamps[1], inclusive=True) == [stamps[3], stamps[2], stamps[1]]
    assert texts(latest=stamps[2]) == [stamps[1], stamps[0]]
    assert texts(oldest=stamps[0], latest=stamps[3], inclusive=True) == stamps[::-1]
    bad = error_of(lambda: client.conversations_history(channel="C0PAPERS", oldest="yesterday"))
    assert bad.response["error"] == "invalid_ts_oldest"
    broken = error_of(lambda: client.conversations_history(channel="C0PAPERS", cursor="bm9wZQ=="))
    assert broken.response["error"] == "invalid_cursor"


def test_threads_show_in_history_only_as_parents_and_broadcasts(slack: SlackStandIn) -> None:
    client = client_for(slack)
    parent = client.chat_postMessage(channel="C0PAPERS", text="paper")["ts"]
    quiet = client.chat_postMessage(channel="C0PAPERS", text="details", thread_ts=parent)["ts"]
    loud = client.chat_postMessage(channel="C0PAPERS", text="update", thread_ts=parent, reply_broadcast=True)["ts"]
    nested = client.chat_postMessage(channel="C0PAPERS", text="on a reply", thread_ts=quiet)
    assert nested["message"]["thread_ts"] == parent  # Slack files a reply to a reply under the parent
    history = client.conversations_history(channel="C0PAPERS")["messages"]
    assert [m["ts"] for m in history] == [loud, parent]
    assert history[0]["subtype"] == "thread_broadcast"
    assert (history[1]["reply_count"], history[1]["latest_reply"]) == (3, nested["ts"])
    replies = client.conversations_replies(channel="C0PAPERS", ts=quiet)["messages"]
    assert [m["text"] for m in replies] == ["paper", "details", "update", "on a reply"]
    paged = [
        [m["text"] for m in page["messages"]]
        for page in islice(client.conversations_replies(channel="C0PAPERS", ts=parent, limit=2), 3)
    ]
    assert paged == [["paper", "details", "update"], ["paper", "on a reply"]]  # the parent heads every page
    assert len(slack.messages("C0PAPERS")) == 4 and len(slack.messages("C0PAPERS", include_replies=False)) == 1
    missing = error_of(lambda: client.chat_postMessage(channel="C0PAPERS", text="x", thread_ts="1.000001"))
    assert missing.response["error"] == "thread_not_found"


def test_other_peoples_messages_mix_into_history(slack: SlackStandIn) -> None:
    slack.add_message("papers", "has anyone read this?")
    client_for(slack).chat_postMessage(channel="C0PAPERS", text="paper")
    history = client_for(slack).conversations_history(channel="C0PAPERS")["messages"]
    assert [(m["user"], "bot_id" in m) for m in history] == [(BOT_USER_ID, True), (HUMAN_USER_ID, False)]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({}, "channel_not_found"),
        ({"is_private": True, "bot_is_member": False}, "channel_not_found"),
        ({"is_archived": True}, "is_archived"),
        ({"bot_is_member": False}, "not_in_channel"),
    ],
)
def test_channel_access_errors(slack: SlackStandIn, setup: dict, expected: str) -> None:
    channel = "#missing" if not setup else slack.add_channel("target", **setup).id
    failure = error_of(lambda: client_for(slack).chat_postMessage(channel=channel, text="x"))
    assert failure.response["error"] == expected


def test_joining_public_private_and_archived_channels(slack: SlackStandIn) -> None:
    client = client_for(slack)
    public = slack.add_channel("journal-club", bot_is_member=False)
    joined = client.conversations_join(channel=public.id)
    assert joined["channel"]["is_member"] is True and public.bot_is_member
    assert client.conversations_join(channel=public.id)["warning"] == "already_in_channel"
    private = slack.add_channel("lab-private", is_private=True)
    archived = slack.add_channel("old", is_archived=True, bot_is_member=False)
    assert error_of(lambda: client.conversations_join(channel=private.id)).response["error"] == (
        "method_not_supported_for_channel_type"
    )
    assert error_of(lambda: client.conversations_join(channel=archived.id)).response["error"] == "is_archived"
    assert error_of(lambda: client.conversations_join(channel="journal-club")).response["error"] == (
        "channel_not_found"
    )


def test_conversations_list_pages_and_resolves_names(slack: SlackStandIn) -> None:
    slack.add_channel("secret", is_private=True, bot_is_member=True)
    slack.add_channel("hidden", is_private=True, bot_is_member=False)
    slack.add_channel("old", is_archived=True)
    client = client_for(slack)
    paging = client.conversations_list(types="public_channel,private_channel", limit=2, exclude_archived=True)
    pages = [page.data for page in islice(paging, 3)]
    names = [c["name"] for page in pages for c in page["channels"]]
    assert sorted(names) == ["general", "papers", "secret"]
    assert len(pages) == 2 and pages[-1]["response_metadata"]["next_cursor"] == ""
    info = client.conversations_info(channel="C0PAPERS")["channel"]
    assert (info["name"], info["is_private"], info["is_member"]) == ("papers", False, True)


# ---------------------------------------------------------------------------------------------- Block Kit


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(value: str = "v", action_id: str = "a") -> dict:
    return {"type": "button", "text": {"type": "plain_text", "text": "Go"}, "value": value, "action_id": action_id}


INVALID_BLOCKS = {
    "51 blocks": ([{"type": "divider"}] * 51, "/blocks"),
    "section text 3001": ([section("x" * 3001)], "/blocks/0/text/text"),
    "mrkdwn header": ([{"type": "header", "text": {"type": "mrkdwn", "text": "T"}}], "/blocks/0/text/type"),
    "header 151": ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "/blocks/0/text/text"),
    "11 fields": ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], "/blocks/0/fields"),
    "field 2001": (
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
        "/blocks/0/fields/0/text",
    ),
    "11 context elements": (
        [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
        "/blocks/0/elements",
    ),
    "26 actions": (
        [{"type": "actions", "elements": [button(action_id=f"a{i}") for i in range(26)]}],
        "/blocks/0/elements",
    ),
    "button value 2001": ([{"type": "actions", "elements": [button("v" * 2001)]}], "/blocks/0/elements/0/value"),
    "duplicate block_id": (
        [{"type": "divider", "block_id": "d"}, {"type": "divider", "block_id": "d"}],
        "/blocks/1/block_id",
    ),
    "unknown type": ([{"type": "carousel"}], "/blocks/0/type"),
    "empty text": ([section("")], "/blocks/0/text/text"),
}


@pytest.mark.parametrize("name", INVALID_BLOCKS)
def test_blocks_over_slack_limits_are_invalid_blocks_with_a_pointer(slack: SlackStandIn, name: str) -> None:
    blocks, pointer = INVALID_BLOCKS[name]
    failure = error_of(lambda: client_for(slack).chat_postMessage(channel="C0PAPERS", text="t", blocks=blocks))
    assert failure.response["error"] == "invalid_blocks"
    assert any(f"[json-pointer:{pointer}]" in message for message in failure.response["errors"])
    assert failure.response["response_metadata"]["messages"][0].startswith("[ERROR] ")
    assert slack.messages("C0PAPERS") == []


def test_blocks_at_the_limits_are_accepted() -> None:
    at_limits = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        section("x" * 3000),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2000}] * 10},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 10},
        {"type": "actions", "elements": [button("v" * 2000, f"a{i}") for i in range(25)]},
    ]
    assert block_kit_errors(at_limits + [{"type": "divider"}] * 45) == []


def test_an_event_type_with_punctuation_posts_without_metadata_and_warns(slack: SlackStandIn) -> None:
    answer = client_for(slack).chat_postMessage(
        channel="C0PAPERS", text="t", metadata={"event_type": "il2watch.paper", "event_payload": {"pmid": "1"}}
    )
    assert answer["warning"] == "invalid_metadata_schema"
    assert answer["response_metadata"]["warnings"] == ["invalid_metadata_schema"]
    assert [m.metadata for m in slack.messages("C0PAPERS")] == [None]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"text": "x" * 40_001}, "msg_too_long"),
        ({"text": ""}, "no_text"),
        ({"text": "t", "blocks": "[not json"}, "invalid_blocks_format"),
        ({"text": "t", "metadata": "{not json"}, "invalid_metadata_format"),
        ({"text": "t", "metadata": json.dumps({"event_type": "x"})}, "invalid_metadata_schema"),
    ],
)
def test_message_errors(slack: SlackStandIn, arguments: dict, expected: str) -> None:
    failure = error_of(
        lambda: client_for(slack).api_call("chat.postMessage", params={"channel": "C0PAPERS", **arguments})
    )
    assert failure.response["error"] == expected


# ---------------------------------------------------------------------------------------------- other methods


def test_update_delete_ephemeral_and_permalink(slack: SlackStandIn) -> None:
    client = client_for(slack)
    ts = client.chat_postMessage(channel="C0PAPERS", text="draft")["ts"]
    client.chat_update(channel="C0PAPERS", ts=ts, text="final")
    assert slack.message("C0PAPERS", ts).text == "final" and slack.message("C0PAPERS", ts).edited_ts
    link = client.chat_getPermalink(channel="C0PAPERS", message_ts=ts)["permalink"]
    assert link.endswith(f"/archives/C0PAPERS/p{ts.replace('.', '')}")
    someone = slack.add_message("papers", "mine")
    assert error_of(lambda: client.chat_update(channel="C0PAPERS", ts=someone.ts, text="x")).response["error"] == (
        "cant_update_message"
    )
    client.chat_postEphemeral(channel="C0PAPERS", user="U0HUMAN02", text="only you")
    assert [e.text for e in slack.ephemerals("U0HUMAN02")] == ["only you"]
    client.chat_delete(channel="C0PAPERS", ts=ts)
    assert [m.ts for m in slack.messages("C0PAPERS")] == [someone.ts]
    assert error_of(lambda: client.chat_delete(channel="C0PAPERS", ts=ts)).response["error"] == "message_not_found"


def test_views_publish_keeps_the_home_view_per_user(slack: SlackStandIn) -> None:
    view = {"type": "home", "blocks": [section("Latest IL-2 papers")]}
    published = client_for(slack).views_publish(user_id="U0HUMAN02", view=view)["view"]
    assert slack.home_view("U0HUMAN02")["blocks"] == view["blocks"] and published["id"].startswith("V")
    refused = error_of(lambda: client_for(slack).views_publish(user_id="U0HUMAN02", view={"type": "modal"}))
    assert refused.response["error"] == "invalid_arguments"


def test_files_upload_v2_end_to_end(slack: SlackStandIn) -> None:
    client = client_for(slack)
    parent = client.chat_postMessage(channel="C0PAPERS", text="digest")["ts"]
    answer = client.files_upload_v2(
        channel="C0PAPERS",
        content=b"pmid\n35217787\n",
        filename="papers.csv",
        title="This week",
        initial_comment="the table",
        thread_ts=parent,
    )
    assert answer["file"]["title"] == "This week"
    [uploaded] = slack.files()
    assert (uploaded.name, uploaded.title, uploaded.content) == ("papers.csv", "This week", b"pmid\n35217787\n")
    assert (uploaded.channel, uploaded.thread_ts, uploaded.initial_comment) == ("C0PAPERS", parent, "the table")
    share = slack.messages("C0PAPERS")[-1]
    assert share.thread_ts == parent and share.files[0]["id"] == uploaded.id
    assert [r.method for r in slack.calls()][-2:] == ["files.getUploadURLExternal", "files.completeUploadExternal"]


def test_response_url_records_posts_and_acts_on_the_channel(slack: SlackStandIn) -> None:
    message_ts = client_for(slack).chat_postMessage(channel="C0PAPERS", text="button here")["ts"]
    url = slack.new_response_url(channel="C0PAPERS", user="U0HUMAN02", message_ts=message_ts)
    webhook = WebhookClient(url)
    assert webhook.send(text="just you").status_code == 200
    webhook.send(text="everyone", response_type="in_channel")
    webhook.send(text="replaced", replace_original=True)
    assert [p.body["text"] for p in slack.wait_for_response_posts(3, url=url)] == ["just you", "everyone", "replaced"]
    assert [e.text for e in slack.ephemerals("U0HUMAN02")] == ["just you"]
    assert [m.text for m in slack.messages("C0PAPERS")] == ["replaced", "everyone"]
    webhook.send(text="4")
    webhook.send(text="5")
    assert webhook.send(text="6").status_code == 404  # a response_url takes five posts


# ---------------------------------------------------------------------------------------------- faults


def test_429_is_waited_out_by_the_rate_limit_retry_handler(slack: SlackStandIn) -> None:
    slack.inject(429, "chat.postMessage", retry_after=1)
    client = client_for(slack, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    started = time.monotonic()
    client.chat_postMessage(channel="C0PAPERS", text="eventually")
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in slack.calls("chat.postMessage")] == [429, 200]
    assert len(slack.messages("C0PAPERS")) == 1


def test_429_without_a_handler_is_a_slack_api_error_with_retry_after(slack: SlackStandIn) -> None:
    slack.inject(429, retry_after=7)
    failure = error_of(lambda: client_for(slack, retry_handlers=NO_RETRIES).auth_test())
    assert (failure.response.status_code, failure.response["error"]) == (429, "ratelimited")
    assert failure.response.headers["Retry-After"] == "7"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_reach_the_client_and_post_nothing(slack: SlackStandIn, status: int) -> None:
    slack.inject(status, "chat.postMessage")
    failure = error_of(
        lambda: client_for(slack, retry_handlers=NO_RETRIES).chat_postMessage(channel="C0PAPERS", text="x")
    )
    assert failure.response.status_code == status
    assert slack.messages("C0PAPERS") == []


def test_server_error_retry_handler_gets_through_a_503(slack: SlackStandIn) -> None:
    slack.inject(503, "chat.postMessage")
    retry = ServerErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0.0))
    client_for(slack, retry_handlers=[retry]).chat_postMessage(channel="C0PAPERS", text="x")
    assert [r.status for r in slack.calls("chat.postMessage")] == [503, 200]


def test_injected_error_codes_answer_ok_false_and_only_for_their_method(slack: SlackStandIn) -> None:
    slack.inject("fatal_error", "chat.postMessage", times=2)
    client = client_for(slack)
    assert client.auth_test()["ok"]
    for _ in range(2):
        assert error_of(lambda: client.chat_postMessage(channel="C0PAPERS", text="x")).response["error"] == (
            "fatal_error"
        )
    client.chat_postMessage(channel="C0PAPERS", text="x")
    slack.inject(500, times=3)
    slack.clear_faults()
    client.chat_postMessage(channel="C0PAPERS", text="y")
    assert len(slack.messages("C0PAPERS")) == 2


def test_accept_then_drop_posts_but_the_client_never_hears(slack: SlackStandIn) -> None:
    slack.inject("accept_then_drop", "chat.postMessage")
    with pytest.raises(RemoteDisconnected):
        client_for(slack, retry_handlers=NO_RETRIES).chat_postMessage(channel="C0PAPERS", text="once")
    assert [m.text for m in slack.messages("C0PAPERS")] == ["once"]
    assert slack.calls("chat.postMessage")[-1].status is None


def test_accept_then_drop_with_slack_sdks_connection_retry_posts_twice(slack: SlackStandIn) -> None:
    # WebClient's default retry handler is a ConnectionErrorRetryHandler: a dropped answer means a duplicate.
    slack.inject("accept_then_drop", "chat.postMessage")
    retry = ConnectionErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0.0))
    client_for(slack, retry_handlers=[retry]).chat_postMessage(channel="C0PAPERS", text="paper")
    assert [m.text for m in slack.messages("C0PAPERS")] == ["paper", "paper"]


def test_slow_answers_time_out_the_client_after_taking_effect(slack: SlackStandIn) -> None:
    slack.inject("slow", "chat.postMessage", delay=0.6)
    with pytest.raises(TimeoutError):
        client_for(slack, timeout=0.2, retry_handlers=NO_RETRIES).chat_postMessage(channel="C0PAPERS", text="late")
    assert [m.text for m in slack.messages("C0PAPERS")] == ["late"]


def test_per_channel_post_rate_limit(slack: SlackStandIn, clock: SteppedClock) -> None:
    slack.set_post_rate_limit(1.0, burst=2)
    slack.add_channel("other", channel_id="C0OTHER")
    client = client_for(slack, retry_handlers=NO_RETRIES)
    client.chat_postMessage(channel="C0PAPERS", text="1")
    client.chat_postMessage(channel="C0PAPERS", text="2")
    limited = error_of(lambda: client.chat_postMessage(channel="C0PAPERS", text="3"))
    assert (limited.response.status_code, limited.response.headers["Retry-After"]) == (429, "1")
    client.chat_postMessage(channel="C0OTHER", text="elsewhere")
    clock.advance(1.0)
    client.chat_postMessage(channel="C0PAPERS", text="3")
    assert slack.rate_limited_count == 1
    assert [m.text for m in slack.messages("C0PAPERS")] == ["1", "2", "3"]
    slack.set_post_rate_limit(None)
    for n in range(5):
        client.chat_postMessage(channel="C0PAPERS", text=str(n))


# ---------------------------------------------------------------------------------------------- Socket Mode + Bolt


class BoltRig:
    """A real Bolt app on a WebClient aimed at the Web API stand-in, connected through Socket Mode."""

    def __init__(self, slack: SlackStandIn, socket_mode: SocketModeStandIn) -> None:
        self.slack, self.socket_mode = slack, socket_mode
        self.seen: queue.Queue = queue.Queue()
        self.app = App(client=WebClient(token=slack.bot_token, base_url=slack.base_url))
        self.app.command("/il2")(self.on_command)
        self.app.action("mark_relevant")(self.on_button)
        self.app.event("app_home_opened")(self.on_home)
        self.handler = SocketModeHandler(self.app, slack.app_token)

    def on_command(self, ack, respond, command) -> None:
        ack(text="Looking that up…")
        respond(text=f"found 3 papers for {command['text']}")

    def on_button(self, ack, body, respond) -> None:
        ack()
        self.seen.put(("button", body["actions"][0]["value"], body["message"].get("metadata")))
        respond(text="Marked relevant", replace_original=True)

    def on_home(self, event, client) -> None:
        client.views_publish(user_id=event["user"], view={"type": "home", "blocks": [section("IL-2 watch")]})
        self.seen.put(("home", event["user"], None))


@pytest.fixture(scope="module")
def bolt() -> Iterator[BoltRig]:
    # One app for all Socket Mode tests: closing slack_sdk's builtin client takes seconds (receive timeout).
    with SocketModeStandIn() as socket_mode, SlackStandIn(socket_mode_url=socket_mode.url) as slack:
        slack.add_channel("papers", channel_id="C0PAPERS")
        rig = BoltRig(slack, socket_mode)
        rig.handler.connect()
        socket_mode.wait_for_connections(1)
        yield rig
        rig.handler.close()


def test_bolt_connects_with_the_app_token_and_gets_hello(bolt: BoltRig) -> None:
    assert bolt.slack.calls("auth.test")  # Bolt verifies its bot token at start
    first = bolt.socket_mode.connections[0]
    assert first.path == "/link/" and first.query["ticket"] in bolt.slack.connection_tickets


def test_slash_command_is_acked_in_time_and_respond_reaches_the_response_url(bolt: BoltRig) -> None:
    url = bolt.slack.new_response_url(channel="C0PAPERS", user="U0HUMAN02")
    payload = slash_command_payload("/il2", "treg", user_id="U0HUMAN02", channel_id="C0PAPERS", response_url=url)
    envelope_id = bolt.socket_mode.send_envelope("slash_commands", payload)
    ack = bolt.socket_mode.wait_for_ack(envelope_id, timeout=3.0)
    assert ack.seconds < 3.0 and ack.payload == {"text": "Looking that up…"}
    [reply] = bolt.slack.wait_for_response_posts(1, url=url)
    assert reply.body == {"text": "found 3 papers for treg"}


def test_block_actions_reach_the_action_listener_with_the_message_they_were_on(bolt: BoltRig) -> None:
    client = WebClient(token=bolt.slack.bot_token, base_url=bolt.slack.base_url)
    blocks = [{"type": "actions", "block_id": "feedback", "elements": [button("35217787", "mark_relevant")]}]
    metadata = {"event_type": "il2_paper_posted", "event_payload": {"pmid": "35217787"}}
    posted = client.chat_postMessage(channel="C0PAPERS", text="paper", blocks=blocks, metadata=metadata)
    [message] = client.conversations_history(channel="C0PAPERS", include_all_metadata=True, limit=1)["messages"]
    url = bolt.slack.new_response_url(channel="C0PAPERS", message_ts=posted["ts"])
    payload = block_actions_payload(
        "mark_relevant", "35217787", message=message, user_id="U0HUMAN02", channel_id="C0PAPERS", response_url=url
    )
    assert payload["actions"][0]["block_id"] == "feedback" and payload["message"]["ts"] == posted["ts"]
    envelope_id = bolt.socket_mode.send_envelope("interactive", payload)
    assert bolt.socket_mode.wait_for_ack(envelope_id).payload is None
    assert bolt.seen.get(timeout=3) == ("button", "35217787", None)  # metadata only when asked for
    with_metadata = block_actions_payload(
        "mark_relevant",
        "35217787",
        message=message,
        user_id="U0HUMAN02",
        channel_id="C0PAPERS",
        response_url=url,
        keep_metadata=True,
    )
    bolt.socket_mode.wait_for_ack(bolt.socket_mode.send_envelope("interactive", with_metadata))
    assert bolt.seen.get(timeout=3) == ("button", "35217787", metadata)
    bolt.slack.wait_for_response_posts(2, url=url)
    assert bolt.slack.message("C0PAPERS", posted["ts"]).text == "Marked relevant"


def test_app_home_opened_event_leads_to_views_publish(bolt: BoltRig) -> None:
    envelope_id = bolt.socket_mode.send_envelope("events_api", app_home_opened_payload("U0HUMAN03"))
    bolt.socket_mode.wait_for_ack(envelope_id)
    assert bolt.seen.get(timeout=3) == ("home", "U0HUMAN03", None)
    assert bolt.slack.home_view("U0HUMAN03")["blocks"][0]["text"]["text"] == "IL-2 watch"


def test_an_envelope_nobody_handles_is_never_acked(bolt: BoltRig) -> None:
    payload = slash_command_payload(
        "/unknown", "", user_id="U0HUMAN02", channel_id="C0PAPERS", response_url=bolt.slack.new_response_url()
    )
    envelope_id = bolt.socket_mode.send_envelope("slash_commands", payload)
    with pytest.raises(TimeoutError):
        bolt.socket_mode.wait_for_ack(envelope_id, timeout=0.3)


def test_disconnect_makes_the_client_reconnect_through_apps_connections_open(bolt: BoltRig) -> None:
    opened_before = len(bolt.slack.calls("apps.connections.open"))
    old = bolt.socket_mode.open_connections()[-1]
    bolt.socket_mode.send_disconnect("refresh_requested")
    connections = bolt.socket_mode.wait_for_connections(old.number + 1)
    assert len(bolt.slack.calls("apps.connections.open")) == opened_before + 1
    bolt.socket_mode.wait_for_close(old)
    assert connections[-1].query["ticket"] == bolt.slack.connection_tickets[-1]
    url = bolt.slack.new_response_url()
    payload = slash_command_payload("/il2", "again", user_id="U0HUMAN02", channel_id="C0PAPERS", response_url=url)
    assert bolt.socket_mode.wait_for_ack(bolt.socket_mode.send_envelope("slash_commands", payload)).payload


def test_a_stall_takes_effect_then_holds_the_answer_until_released(slack: SlackStandIn) -> None:
    slack.inject("stall", "chat.postMessage")
    client = client_for(slack, timeout=5, retry_handlers=NO_RETRIES)
    answers: queue.Queue = queue.Queue()
    thread = threading.Thread(target=lambda: answers.put(client.chat_postMessage(channel="C0PAPERS", text="held")))
    thread.start()
    assert slack.stalled.wait(5)
    assert [m.text for m in slack.messages("C0PAPERS")] == ["held"], "Slack has it…"
    assert answers.empty(), "…and the client has not heard"
    slack.release_stalled()
    thread.join(5)
    assert answers.get_nowait()["ok"]


def test_a_fault_may_be_narrowed_to_the_calls_it_accepts(slack: SlackStandIn) -> None:
    client = client_for(slack, retry_handlers=NO_RETRIES)
    parent = client.chat_postMessage(channel="C0PAPERS", text="parent")["ts"]
    slack.inject("fatal_error", "chat.postMessage", when=lambda params: bool(params.get("thread_ts")))
    assert client.chat_postMessage(channel="C0PAPERS", text="top level")["ok"]
    assert error_of(lambda: client.chat_postMessage(channel="C0PAPERS", text="r", thread_ts=parent)).response[
        "error"
    ] == ("fatal_error")
    assert client.chat_postMessage(channel="C0PAPERS", text="reply", thread_ts=parent)["ok"]


@pytest.mark.parametrize("retry_after", ["1.5", "abc", 86400])
def test_retry_after_is_sent_as_given(slack: SlackStandIn, retry_after) -> None:
    slack.inject(429, "auth.test", retry_after=retry_after)
    failure = error_of(lambda: client_for(slack, retry_handlers=NO_RETRIES).auth_test())
    assert failure.response.headers["Retry-After"] == str(retry_after)


def test_text_is_measured_in_utf16_code_units_as_slack_measures_it() -> None:
    astral = "𝐀" * 1500  # 1,500 characters, 3,000 code units
    assert block_kit_errors([{"type": "section", "text": {"type": "mrkdwn", "text": astral}}]) == []
    assert block_kit_errors([{"type": "section", "text": {"type": "mrkdwn", "text": astral + "a"}}]) != []
    header = {"type": "header", "text": {"type": "plain_text", "text": "🧬" * 76}}  # 152 code units
    assert block_kit_errors([header]) != []


def test_exactly_fifty_blocks_post_and_fifty_one_are_refused(slack: SlackStandIn) -> None:
    client = client_for(slack, retry_handlers=NO_RETRIES)
    blocks = [section(f"part {n}") for n in range(50)]
    assert client.chat_postMessage(channel="C0PAPERS", text="fifty", blocks=blocks)["ok"]
    failure = error_of(lambda: client.chat_postMessage(channel="C0PAPERS", text="x", blocks=[*blocks, section("x")]))
    assert failure.response["error"] == "invalid_blocks"
