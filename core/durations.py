"""Durations as people write them in config and chat: ``90``, ``90s``, ``15m``, ``6h``, ``2d``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)\s*([smhdw])")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[smhdw]\s*)+$")


def parse_duration(value: object) -> int:
    """Seconds in ``value``: an int (seconds) or a string like ``1h30m``. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 600, '15m' or '6h', got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value}")
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            return int(text)
        if _WHOLE.match(text):
            return sum(int(n) * _UNITS[u] for n, u in _PART.findall(text))
    raise ValueError(f"expected a duration such as 600, '15m' or '6h', got {value!r}")


def parse_since(text: str) -> timedelta:
    """A period back from now (``--since``, ``/export 7d``): ``30d``, ``12h``; a bare number means days.
    ValueError if not."""
    value = text.strip()
    seconds = int(value) * 86400 if value.isdigit() else parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"--since must be a period longer than zero, such as 30d, got {text!r}")
    return timedelta(seconds=seconds)


def format_duration(seconds: int) -> str:
    """``5400`` → ``1h30m``; ``0`` → ``0s``."""
    if seconds <= 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)
