"""Structured logs: our `event key=value` calls rendered as key=value text or JSON lines, token-free."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from core.logs import make_formatter, parse_message
from delivery.redact import TokenRedactor

TOKEN = "123456:AAH-secret-token-value"


@pytest.mark.parametrize(
    ("name", "message", "event", "fields", "rest"),
    [
        (
            "numbers",
            "poll_cycle feeds_due=3 ok=2 seconds=0.12",
            "poll_cycle",
            {"feeds_due": 3, "ok": 2, "seconds": 0.12},
            "",
        ),
        (
            "quoted repr with trailing text",
            'send_entities_refused chat=-100 error="Can\'t parse entities"; resending as plain text',
            "send_entities_refused",
            {"chat": -100, "error": "Can't parse entities"},
            "; resending as plain text",
        ),
        (
            "exception repr with spaces",
            "feed_failed url=https://a.example/rss?x=1 failures=2 error=ConnectError('All attempts failed')",
            "feed_failed",
            {"url": "https://a.example/rss?x=1", "failures": 2, "error": "ConnectError('All attempts failed')"},
            "",
        ),
        ("event only", "bot_stopped", "bot_stopped", {}, ""),
        ("library message", "Application started", None, {}, "Application started"),
        ("unclosed quote", "oops a='never closed", "oops", {}, "a='never closed"),
        ("reserved key", "x level=3", "x", {"level_": 3}, ""),
        ("words after fields", "digests sent=1 items=2 and more", "digests", {"sent": 1, "items": 2}, "and more"),
    ],
)
def test_parse_message(name: str, message: str, event: str | None, fields: dict[str, Any], rest: str) -> None:
    assert parse_message(message) == (event, fields, rest), name


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, logging.Handler, io.StringIO]]:
    """A private logger (not the root) writing to a buffer through a handler with the redaction filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TokenRedactor(TOKEN))
    logger = logging.getLogger(f"test_core_logs.{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, handler, stream
    logger.removeHandler(handler)


def _boom() -> None:
    raise RuntimeError(f"POST https://api.telegram.org/bot{TOKEN}/sendMessage failed")


def test_json_lines_one_object_each_with_fields_and_one_line_traceback(capture: Any) -> None:
    logger, handler, stream = capture
    handler.setFormatter(make_formatter("json"))
    logger.info("poll_cycle feeds_due=%d error=%r", 3, "HTTP 503: Service Unavailable")
    try:
        _boom()
    except RuntimeError:
        logger.exception("handler_error update=%s", 7)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, "a traceback stays inside its JSON line"
    first, second = (json.loads(line) for line in lines)
    assert first["ts"].endswith("Z") and first["ts"][:4].isdigit() and "T" in first["ts"]
    assert {k: first[k] for k in ("level", "logger", "event", "feeds_due", "error")} == {
        "level": "info",
        "logger": logger.name,
        "event": "poll_cycle",
        "feeds_due": 3,
        "error": "HTTP 503: Service Unavailable",
    }
    assert "msg" not in first and "exc" not in first
    assert (second["level"], second["event"], second["update"]) == ("error", "handler_error", 7)
    assert second["exc"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: POST https://api.telegram.org/bot<redacted>/sendMessage failed" in second["exc"]


def test_text_lines_are_key_value(capture: Any) -> None:
    logger, handler, stream = capture
    handler.setFormatter(make_formatter("text"))
    logger.warning("feed_failed url=%s failures=%d error=%r", "https://a.example/", 2, "timed out after 20 s")
    logger.info("Application started")
    first, second = stream.getvalue().splitlines()
    expected = f"level=warning logger={logger.name} event=feed_failed url=https://a.example/ failures=2"
    assert first.startswith("ts=") and first.endswith(f'{expected} error="timed out after 20 s"')
    assert second.endswith(f'level=info logger={logger.name} msg="Application started"')
    assert "event=" not in second


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_token_never_appears_in_message_or_exception(capture: Any, fmt: str) -> None:
    logger, handler, stream = capture
    handler.setFormatter(make_formatter(fmt))
    logger.info("http_request url=%s", f"https://api.telegram.org/bot{TOKEN}/getMe")
    try:
        _boom()
    except RuntimeError as exc:
        logger.error("send_failed error=%r", exc, exc_info=True)
    out = stream.getvalue()
    assert TOKEN not in out
    assert out.count("<redacted>") == 3, out  # the message, the exception's repr, the traceback
    assert "sendMessage failed" in out


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        make_formatter("xml")
