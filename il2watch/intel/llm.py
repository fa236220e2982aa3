"""The optional language-model summariser: an OpenAI-compatible chat-completions endpoint.

Off unless the user configures a base URL and a model. It is never required: any error, a
timeout, or an empty or over-long answer falls back to the extractive summary, with one log
line on the "il2watch.intel" logger. It asks through il2watch's one transport (``transport.Host``),
with the rules every host but NCBI has: ``IL2WATCH_HTTP_TIMEOUT`` per read, ``IL2WATCH_REQUEST_DEADLINE``
for the whole answer, ``IL2WATCH_MAX_ANSWER_MB``, ``IL2WATCH_HTTP_ATTEMPTS`` attempts on 429, 5xx,
resets and timeouts (``Retry-After`` honoured), redirects within its host only. The API key is sent
as a bearer token and is a secret: it never appears in a message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..markup import strip_invisible
from ..model import Paper
from ..transport import Host, TransportError, host_from_settings
from .summary import SUMMARY_LIMIT

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger("il2watch.intel")

# A summariser takes the plain title and abstract and returns a plain-text summary, or raises.
Summariser = Callable[[str, str], str]

INSTRUCTIONS = (
    "You summarise biomedical abstracts for an immunology lab. Reply with one or two plain "
    f"sentences, at most {SUMMARY_LIMIT} characters in all, stating the paper's main finding and, "
    "if it fits, its key result. Use only facts from the abstract. No preamble, no markdown."
)
# Requests a second to the summariser's host: one per paper posted needs less, and the host is unknown.
SUMMARISER_RATE = 2.0
NAME = "the summariser"  # how messages name the host


class SummariserError(Exception):
    """The model gave no usable summary; the caller falls back to the extractive one."""


@dataclass(frozen=True)
class ChatSummariser:
    """Calls ``chat/completions`` under the host's base URL, e.g. "https://api.openai.com/v1/".

    One summariser serves one poll. Once its host has failed for good (the transport gave up: down,
    too slow, refusing the key, redirected elsewhere; ``host_is_failing``), the rest of the poll uses the
    extractive summary at once instead of waiting out every attempt again for each paper.
    """

    host: Host
    model: str
    limit: int = SUMMARY_LIMIT
    _failed: list[str] = field(default_factory=list, repr=False, compare=False)

    @property
    def url(self) -> str:
        return self.host.base_url + "chat/completions"

    def request_body(self, title: str, abstract: str) -> dict[str, object]:
        return {
            "model": self.model,
            "temperature": 0,
            "max_tokens": 200,
            "messages": [
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": f"Title: {title}\n\nAbstract:\n{abstract}"},
            ],
        }

    def __call__(self, title: str, abstract: str) -> str:
        if self._failed:
            raise SummariserError(f"not asked again in this poll: {self._failed[0]}")
        try:
            answer = self.host.post("chat/completions", json_body=self.request_body(title, abstract))
        except TransportError as error:
            if host_is_failing(error):
                self._failed.append(str(error))
            raise SummariserError(str(error)) from None
        return self.read_answer(answer.body)

    def read_answer(self, raw: bytes) -> str:
        """The summary in a chat-completions answer, checked: plain, non-empty, within the limit."""
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise SummariserError("answer is not a chat completion") from None
        if not isinstance(content, str):
            raise SummariserError("answer has no text")
        text = " ".join(strip_invisible(content).split()).strip().strip('"“”').strip()
        if not text:
            raise SummariserError("answer is empty")
        if len(text) > self.limit:
            raise SummariserError(f"answer is {len(text)} characters, over {self.limit}")
        return text


def host_is_failing(error: TransportError) -> bool:
    """Whether every later request would fail the same way: the host is down, slow, refuses the key, is at
    another address, or gave up after its attempts; not an answer about this one request (400 for a text it
    will not take, 413, 422, an answer over the cap)."""
    if error.kind == "status":
        return error.status in (401, 403, 404, 405, 429) or (error.status or 0) >= 500
    return error.kind != "too-large"


def make_summariser(settings: Settings) -> ChatSummariser | None:
    """A summariser when both a base URL and a model are configured, else None (the default: off)."""
    base_url, model = settings.summariser_url.strip(), settings.summariser_model.strip()
    if not base_url or not model:
        return None
    headers = {"Accept": "application/json"}
    if settings.summariser_key:
        headers["Authorization"] = f"Bearer {settings.summariser_key}"
    host = host_from_settings(
        settings,
        name=NAME,
        base_url=base_url,
        rate=SUMMARISER_RATE,
        headers=headers,
        hint="check IL2WATCH_SUMMARISER_URL",
    )
    return ChatSummariser(host=host, model=model)


def summary_with_fallback(
    summariser: Summariser | None, paper: Paper, title: str, abstract: str, extractive: str
) -> str:
    """The model's summary when it gives a usable one, else the extractive summary."""
    if summariser is None or not abstract.strip():
        return extractive
    try:
        text = summariser(title, abstract)
        if not isinstance(text, str) or not text.strip() or len(text) > SUMMARY_LIMIT:
            raise SummariserError("answer is empty or over the limit")
        return text.strip()
    except Exception as error:  # any failure of an optional helper must not cost the post
        log.warning(
            "language-model summary unavailable for PMID %s (%s); using the extractive summary", paper.pmid, error
        )
        return extractive
