"""The Slack Web API client il2watch uses everywhere: base URL, limits and the one safe retry.

Every exchange with Slack keeps the limits every host has (``IL2WATCH_SLACK_TIMEOUT`` per read,
``IL2WATCH_REQUEST_DEADLINE`` for the whole answer, ``IL2WATCH_MAX_ANSWER_MB``, redirects within the
host only, so the bot token never reaches another host): slack_sdk offers no setting for a total time or
an answer's size, and reads whole answers with urllib, so ``BoundedWebClient`` overrides the one method
through which its WebClient sends a Web API request, and the one that sends a file's bytes, and sends
both through ``transport.Exchange``. ``tests/test_transport.py`` pins those two methods' shapes in the
installed slack_sdk and fails loudly if they change. An answer past the limits raises
``SlackAnswerError``, an OSError: like a dropped connection, the call's outcome is unknown, and delivery
checks the channel before it posts again.

Only HTTP 429 is retried by the client itself (Slack refused, so nothing was posted), by a handler of our
own: slack_sdk's ``int()``s the Retry-After header, so ``1.5`` or ``abc`` raised ValueError out of a poll,
and it waits as long as the header says. Ours reads seconds or an HTTP date, falls back to the backoff for
anything else, and never waits more than ``MAX_RETRY_WAIT``. Server errors and connection errors are left
to ``deliver``, which first checks the channel's history: retrying a post blindly after the connection
dropped is how messages get doubled.
"""

from __future__ import annotations

import io
import json
import logging
import random
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.file_upload_v2_result import FileUploadV2Result

from il2watch.config import Settings
from il2watch.transport import EXCERPT, MAX_WAIT, Exchange, TransportError, excerpt, retry_after

# The longest il2watch waits on one Retry-After: the same cap as for every other host.
MAX_RETRY_WAIT = MAX_WAIT

# Errors that no retry can fix: a person has to change a token, a channel or an invitation.
FATAL_ERRORS = {
    "not_authed": "SLACK_BOT_TOKEN was refused (not_authed): set a bot token (xoxb-…)",
    "invalid_auth": "SLACK_BOT_TOKEN is not valid (invalid_auth): copy the Bot User OAuth Token again",
    "token_revoked": "SLACK_BOT_TOKEN has been revoked (token_revoked): reinstall the app and set the new token",
    "token_expired": "SLACK_BOT_TOKEN has expired (token_expired): reinstall the app and set the new token",
    "account_inactive": "the Slack app's account is inactive (account_inactive): reinstall the app",
    "channel_not_found": "channel {channel} was not found (channel_not_found): check IL2WATCH_CHANNEL, or invite "
    "the bot to the private channel",
    "is_archived": "channel {channel} is archived (is_archived): unarchive it or set another IL2WATCH_CHANNEL",
    "not_in_channel": "the bot is not in channel {channel} (not_in_channel): invite it with /invite @il2watch",
    "missing_scope": "the Slack app lacks a scope ({needed}): add it under OAuth & Permissions and reinstall",
    "restricted_action": "the workspace does not let the bot post in {channel} (restricted_action)",
    "ekm_access_denied": "the workspace's key management denied access (ekm_access_denied)",
}

_CHANNEL_ID = re.compile(r"^[CGDUW][A-Z0-9]{6,}$")  # U/W: a user ID, which posts as a DM


def retry_wait(header: str | None, *, default: float, now: Callable[[], float] = time.time) -> float:
    """Seconds to wait for a Retry-After header, read as for every host (``transport.retry_after``) and capped
    at MAX_RETRY_WAIT; ``default`` when it is missing or says nothing usable (``abc``, ``nan``, ``inf``)."""
    seconds = retry_after(header, now)
    return min(default if seconds is None else seconds, MAX_RETRY_WAIT)


class RateLimitRetry(RetryHandler):
    """Waits out HTTP 429 as Slack asks, whatever form its Retry-After takes, then tries again."""

    def __init__(self, max_retry_count: int, *, default_wait: float, sleep: Callable[[float], None] = time.sleep):
        super().__init__(max_retry_count=max_retry_count)
        self.default_wait, self._sleep = default_wait, sleep

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code == 429

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        headers = {name.lower(): values for name, values in (response.headers if response else {}).items()}
        header = (headers.get("retry-after") or [""])[0]
        # a little spread, as slack_sdk's own handler adds, so that several clients do not return at once
        self._sleep(retry_wait(header, default=self.default_wait) + random.uniform(0, 0.1))
        state.next_attempt_requested = True
        state.increment_current_attempt()


class SlackAnswerError(OSError):
    """Slack's answer broke il2watch's limits (too slow in all, too large, a redirect to another host).

    An OSError, as a dropped connection is: whether the call took effect is unknown.
    """


class BoundedWebClient(WebClient):
    """slack_sdk's WebClient, every exchange of which goes through ``transport.Exchange``.

    slack_sdk sends each Web API request through ``_perform_urllib_http_request_internal(url, req)``,
    which answers ``{"status", "headers", "body"}`` or raises urllib's HTTPError for a status that is not
    2xx, as ``urlopen`` does; and a file's bytes through ``_upload_file``. Both are overridden here with
    the same contract, so slack_sdk's own retry handlers, errors and responses work unchanged.
    """

    def __init__(self, *, deadline: float, max_bytes: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.deadline, self.max_bytes = deadline, int(max_bytes)

    def _perform_urllib_http_request_internal(self, url: str, req: urllib.request.Request) -> dict[str, Any]:
        if not url.lower().startswith("http"):  # slack_sdk refuses file:// and ftp:// here too
            raise SlackRequestError(f"Invalid URL detected: {url}")
        method = url[len(self.base_url) :] if url.startswith(self.base_url) else url
        status, headers, body = self._exchange(req, method, timeout=self.timeout, proxy=self.proxy, tls=self.ssl)
        if headers.get_content_type() == "application/gzip":  # admin.analytics.getFile
            return {"status": status, "headers": headers, "body": body}
        return {"status": status, "headers": headers, "body": body.decode(headers.get_content_charset() or "utf-8")}

    def _upload_file(
        self,
        *,
        url: str,
        data: bytes,
        logger: logging.Logger,
        timeout: int,
        proxy: str | None,
        ssl: ssl.SSLContext | None,
    ) -> FileUploadV2Result:
        request = urllib.request.Request(url, data=data, method="POST")
        status, headers, body = self._exchange(request, "the file upload", timeout=timeout, proxy=proxy, tls=ssl)
        return FileUploadV2Result(status=status, body=body.decode(headers.get_content_charset() or "utf-8"))

    def _exchange(
        self, request: urllib.request.Request, what: str, *, timeout: float, proxy: str | None, tls: Any
    ) -> tuple[int, Any, bytes]:
        """(status, headers, body) of a 2xx answer within the limits; HTTPError for another status, as urllib
        raises it; SlackAnswerError past the limits; connection errors as urllib raises them."""
        exchange = Exchange(
            name="Slack",
            what=what,
            timeout=timeout,
            deadline=self.deadline,
            max_bytes=self.max_bytes,
            context=tls,
            proxies={"http": proxy, "https": proxy} if proxy else None,
        )
        try:
            with exchange:
                status, response = exchange.open(request)
                with response:
                    body = exchange.read(response)
                    headers = response.headers
        except TransportError as error:
            raise SlackAnswerError(str(error)) from None
        if not 200 <= status < 300:
            reason = str(getattr(response, "reason", "") or getattr(response, "msg", ""))
            raise urllib.error.HTTPError(exchange.url, status, reason, headers, io.BytesIO(body))
        return status, headers, body


def make_client(settings: Settings, *, token: str | None = None, rate_limit_retries: int = 3) -> WebClient:
    client = BoundedWebClient(
        token=token if token is not None else settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=settings.slack_timeout,
        deadline=settings.request_deadline,
        max_bytes=int(settings.max_answer_mb * 1_000_000),
    )
    client.retry_handlers = [RateLimitRetry(rate_limit_retries, default_wait=settings.slack_backoff)]
    return client


class BoundedRespond:
    """``respond()`` for one request's response_url, through ``transport.Exchange`` like every Slack call.

    Bolt's own ``respond`` posts with slack_sdk's WebhookClient: a read timeout only, no total time, no cap
    on the answer, and urllib's redirects to anywhere. This one posts the same JSON body (Bolt's
    ``respond(text=…, blocks=…, response_type=…, replace_original=…)``) within ``IL2WATCH_SLACK_TIMEOUT``,
    ``IL2WATCH_REQUEST_DEADLINE`` and ``IL2WATCH_MAX_ANSWER_MB``, following redirects within the host only.
    Anything but a 2xx answer raises ``SlackAnswerError`` with one line.
    """

    def __init__(self, response_url: str | None, *, timeout: float, deadline: float, max_bytes: int):
        self.response_url = response_url
        self.timeout, self.deadline, self.max_bytes = timeout, deadline, int(max_bytes)

    def __call__(self, **message: Any) -> int:
        """POST ``message`` (its None values left out, as Bolt does) to the response_url; the HTTP status."""
        url = self.response_url or ""
        if not url.lower().startswith(("http://", "https://")):
            raise SlackAnswerError("the request's response_url is not an http(s) URL; nothing was sent")
        data = json.dumps({name: value for name, value in message.items() if value is not None}).encode()
        request = urllib.request.Request(
            url, data=data, method="POST", headers={"Content-Type": "application/json;charset=utf-8"}
        )
        exchange = Exchange(
            name="Slack",
            what="the reply to a response_url",
            timeout=self.timeout,
            deadline=self.deadline,
            max_bytes=self.max_bytes,
        )
        try:
            with exchange:
                status, response = exchange.open(request)
                with response:
                    body = exchange.read(response, limit=EXCERPT)
        except TransportError as error:
            raise SlackAnswerError(str(error)) from None
        if not 200 <= status < 300:
            raise SlackAnswerError(f"Slack answered HTTP {status} to the reply to a response_url: {excerpt(body)}")
        return status


def respond_maker(settings: Settings) -> Callable[[str | None], BoundedRespond]:
    """A ``BoundedRespond`` for a response_url, within the limits ``settings`` give every Slack call."""

    def make(response_url: str | None) -> BoundedRespond:
        return BoundedRespond(
            response_url,
            timeout=settings.slack_timeout,
            deadline=settings.request_deadline,
            max_bytes=int(settings.max_answer_mb * 1_000_000),
        )

    return make


def is_channel_id(text: str) -> bool:
    return bool(_CHANNEL_ID.match(text))


def slack_error(error: SlackApiError) -> str:
    """The error code Slack answered with, e.g. 'channel_not_found'."""
    response = getattr(error, "response", None)
    try:
        return str(response.get("error", "")) if response is not None else ""
    except AttributeError:
        return ""


def explain(code: str, *, channel: str = "", needed: str = "") -> str:
    """One line a person can act on for a Slack error code."""
    template = FATAL_ERRORS.get(code)
    if template:
        return template.format(channel=channel or "(unset)", needed=needed or "see the app manifest")
    return f"Slack refused the request ({code or 'no error code'})"


def resolve_channel(client: WebClient, channel: str) -> str:
    """A channel ID for an ID, a name or a #name; names are looked up with conversations.list."""
    name = channel.strip().lstrip("#")
    if is_channel_id(name):
        return name
    cursor = None
    while True:
        response = client.conversations_list(
            types="public_channel,private_channel", limit=1000, exclude_archived=False, cursor=cursor
        )
        channels: list[dict] = response.get("channels", [])
        for item in channels:
            if item.get("name") == name:
                return str(item["id"])
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    raise SlackApiError(f"channel {channel} not found", {"ok": False, "error": "channel_not_found"})
