"""Logging to stdout, one event a line: readable text by default, JSON with a setting; secrets redacted."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from il2watch import redact


class Redactor(logging.Filter):
    """Scrubs every record of configured secrets and of anything shaped like a token (``il2watch.redact``)."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        redact.remember(secrets)

    def scrub(self, text: str) -> str:
        return redact.scrub(text)

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
    """Configure the "il2watch" logger (and Slack's, APScheduler's, waitress's and psycopg's) to write to stdout."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.addFilter(Redactor(secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            LineFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%Y-%m-%dT%H:%M:%S%z")
        )
    for name in ("il2watch", "slack_bolt", "slack_sdk", "apscheduler", "waitress", "psycopg"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(level if name == "il2watch" else max(logging.WARNING, logging.getLevelName(level)))
    return logging.getLogger("il2watch")
