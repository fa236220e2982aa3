"""The optional language-model summariser: an OpenAI-compatible chat-completions endpoint.

Off unless the user configures a base URL and a model. It is never required: any error, a
timeout, or an empty or over-long answer falls back to the extractive summary, with one log
line on the "il2watch.intel" logger. The API key is sent as a bearer token and never logged.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from ..markup import strip_invisible
from ..model import Paper
from .summary import SUMMARY_LIMIT

log = logging.getLogger("il2watch.intel")

# A summariser takes the plain title and abstract and returns a plain-text summary, or raises.
Summariser = Callable[[str, str], str]

INSTRUCTIONS = (
    "You summarise biomedical abstracts for an immunology lab. Reply with one or two plain "
    f"sentences, at most {SUMMARY_LIMIT} characters in all, stating the paper's main finding and, "
    "if it fits, its key result. Use only facts from the abstract. No preamble, no markdown."
)
_MAX_RESPONSE_BYTES = 1_000_000


class SummariserError(Exception):
    """The model gave no usable summary; the caller falls back to the extractive one."""


@dataclass(frozen=True)
class ChatSummariser:
    """Calls ``{base_url}/chat/completions``; ``base_url`` is e.g. "https://api.openai.com/v1"."""

    base_url: str
    model: str
    api_key: str = field(default="", repr=False)
    timeout: float = 20.0
    limit: int = SUMMARY_LIMIT

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

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
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.url, data=json.dumps(self.request_body(title, abstract)).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read(_MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as error:
            raise SummariserError(f"HTTP {error.code} from {self.url}") from None
        except (OSError, http.client.HTTPException) as error:  # refused, reset, timed out, cut short
            reason = getattr(error, "reason", error)
            raise SummariserError(f"no answer from {self.url}: {reason}") from None
        return self.read_answer(raw)

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


def make_summariser(
    base_url: str = "", model: str = "", api_key: str = "", timeout: float = 20.0
) -> ChatSummariser | None:
    """A summariser when both a base URL and a model are configured, else None (the default: off)."""
    if not base_url.strip() or not model.strip():
        return None
    return ChatSummariser(base_url=base_url.strip(), model=model.strip(), api_key=api_key, timeout=timeout)


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
