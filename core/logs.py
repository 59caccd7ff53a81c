"""Structured log lines: ``key=value`` text or one JSON object a line, from the same log calls.

Our log calls follow one convention: ``log.info("event_name key=value key2=%r", ...)``. The rendered
message is parsed back into an event and its fields:

    "feed_failed url=https://a.example/ failures=2 error='HTTP 503'"
      → event "feed_failed", fields {url: "https://a.example/", failures: 2, error: "HTTP 503"}

Values may be bare words, quoted Python reprs ('...', "...") or reprs with brackets
(``ConnectError('refused')``); integers and decimals become numbers. Whatever does not parse (free text
after the fields, or a library's message with no event name) is kept under ``msg``. Token redaction
(:mod:`delivery.redact`) is a handler filter, so it runs before either formatter sees the record.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

RESERVED = frozenset({"ts", "level", "logger", "event", "msg", "exc", "stack"})

_EVENT = re.compile(r"[a-z][a-z0-9_]*(?=\s|$)")
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)=")
_INT = re.compile(r"[-+]?\d{1,18}")
_FLOAT = re.compile(r"[-+]?\d+\.\d+")
_CLOSE = {"(": ")", "[": "]", "{": "}"}
_BARE_SAFE = re.compile(r"[^\s\"=\\]+")


def _scan_value(text: str, start: int) -> int | None:
    """End index of the value starting at ``start``: up to whitespace outside quotes and brackets;
    None when a quote or bracket is never closed."""
    if start < len(text) and text[start] in "'\"":  # a quoted repr ends at its closing quote
        i = start + 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == text[start]:
                return i + 1
            i += 1
        return None
    stack: list[str] = []
    quote: str | None = None
    i = start
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in _CLOSE:
            stack.append(_CLOSE[c])
        elif stack and c == stack[-1]:
            stack.pop()
        elif c.isspace() and not stack:
            break
        i += 1
    if quote or stack:
        return None
    return i


def _value(raw: str) -> Any:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return raw
        return value if isinstance(value, str) else raw
    if _INT.fullmatch(raw):
        return int(raw)
    if _FLOAT.fullmatch(raw):
        return float(raw)
    return raw


def parse_message(message: str) -> tuple[str | None, dict[str, Any], str]:
    """``"event k=v k2='x y' trailing words"`` → ("event", {"k": "v", "k2": "x y"}, "trailing words").

    No event (the message does not start with a snake_case word) → (None, {}, message).
    """
    m = _EVENT.match(message)
    if m is None:
        return None, {}, message
    event = m.group(0)
    fields: dict[str, Any] = {}
    pos = m.end()
    while True:
        rest_start = pos
        while pos < len(message) and message[pos].isspace():
            pos += 1
        key = _KEY.match(message, pos)
        if key is None:
            break
        end = _scan_value(message, key.end())
        if end is None:
            break
        name = key.group(1)
        if name in RESERVED:
            name += "_"
        fields[name] = _value(message[key.end() : end])
        pos = rest_start = end
        if end < len(message) and not message[end].isspace():  # "error='x'; more words"
            break
    return event, fields, message[rest_start:].strip()


def _iso(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _logfmt(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if text and _BARE_SAFE.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=False)


class _StructuredFormatter(logging.Formatter):
    def record_fields(self, record: logging.LogRecord) -> dict[str, Any]:
        event, fields, rest = parse_message(record.getMessage())
        out: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event,
            **fields,
        }
        if rest:
            out["msg"] = rest
        return out

    def exception_text(self, record: logging.LogRecord) -> str | None:
        # The redaction filter may have rendered (and cleaned) the traceback into exc_text already.
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        return record.exc_text or None


class TextFormatter(_StructuredFormatter):
    """``ts=… level=info logger=service.pipeline event=poll_cycle feeds_due=3 …``; a traceback follows
    on its own lines, as people reading a terminal expect."""

    def format(self, record: logging.LogRecord) -> str:
        fields = self.record_fields(record)
        line = " ".join(f"{key}={_logfmt(value)}" for key, value in fields.items() if value is not None)
        exc = self.exception_text(record)
        if exc:
            line += "\n" + exc
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(_StructuredFormatter):
    """One JSON object a line: ts (ISO-8601 UTC), level, logger, event, the fields, msg, exc."""

    def format(self, record: logging.LogRecord) -> str:
        fields = self.record_fields(record)
        exc = self.exception_text(record)
        if exc:
            fields["exc"] = exc
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        return json.dumps(fields, ensure_ascii=False, default=str)


def make_formatter(fmt: str) -> logging.Formatter:
    """The formatter for ``logging.format`` in config.yaml (``text`` or ``json``)."""
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return TextFormatter()
    raise ValueError(f"unknown log format {fmt!r} (expected text or json)")
