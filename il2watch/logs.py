"""Logging to stdout, one event a line: readable text by default, JSON with a setting; secrets redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

# Slack tokens, NCBI-style keys in URLs, bearer headers: redacted even if they were never configured here.
_TOKEN_PATTERNS = re.compile(r"xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|(api_key=)[^&\s]+|(Bearer )\S+")


class Redactor(logging.Filter):
    """Replaces configured secrets and anything shaped like a token in every record."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return _TOKEN_PATTERNS.sub(lambda m: (m.group(1) or m.group(2) or "") + "[redacted]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = self.scrub(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class LineFormatter(logging.Formatter):
    """Readable text, one event a line: a traceback is folded onto the line it belongs to."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", " ⏎ ")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            event["error"] = record.exc_text
        return json.dumps(event, ensure_ascii=False)


def setup_logging(
    *, level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = (), stream=None
) -> logging.Logger:
    """Configure the "il2watch" logger (and Slack's and APScheduler's) to write to stdout."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.addFilter(Redactor(secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            LineFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%Y-%m-%dT%H:%M:%S%z")
        )
    for name in ("il2watch", "slack_bolt", "slack_sdk", "apscheduler", "waitress"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(level if name == "il2watch" else max(logging.WARNING, logging.getLevelName(level)))
    return logging.getLogger("il2watch")
