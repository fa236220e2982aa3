"""Logs: one event a line, text or JSON, with secrets and token-shaped strings redacted."""

import io
import json
import logging

import pytest

from il2watch.logs import setup_logging

LOGGERS = ("il2watch", "slack_bolt", "slack_sdk", "apscheduler", "waitress")


@pytest.fixture(autouse=True)
def restore_logging():
    """setup_logging configures process-wide loggers: put them back for the tests that follow."""
    saved = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate, logging.getLogger(name).level)
        for name in LOGGERS
    }
    yield
    for name, (handlers, propagate, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers, logger.propagate = handlers, propagate
        logger.setLevel(level)


def capture(fmt):
    stream = io.StringIO()
    log = setup_logging(fmt=fmt, secrets=["configured-secret-value"], stream=stream)
    return log, stream


def test_text_lines_fold_tracebacks_and_redact():
    log, stream = capture("text")
    try:
        raise RuntimeError("token xoxb-1234-abcd leaked with configured-secret-value")
    except RuntimeError:
        log.exception("posting failed for %s", "https://x/?api_key=k123&id=1")
    text = stream.getvalue()
    assert text.count("\n") == 1
    for secret in ("xoxb-1234-abcd", "configured-secret-value", "k123"):
        assert secret not in text
    assert "RuntimeError" in text and "[redacted]" in text


def test_json_is_one_object_a_line():
    log, stream = capture("json")
    log.info("poll ok: %d new", 3)
    log.warning("Bearer xapp-1-A0-secret refused")
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["level"] for e in events] == ["info", "warning"]
    assert events[0]["message"] == "poll ok: 3 new" and "xapp-1" not in events[1]["message"]
