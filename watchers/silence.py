"""Silence is a symptom: is a feed that still answers 200 or 304 quiet for far longer than usual?

A moved feed that keeps serving a stale file, a CMS whose export stopped, a mirror that froze: each
answers every poll successfully, so HTTP health alone calls it fine. What gives it away is time. Each
feed's *usual gap* is learned from its own history, and a feed silent for much longer is flagged.

- History: the distinct instants at which the bot first saw new items from the feed (the store's
  ``seen_at``), newest first, the last :data:`HISTORY` of them. First-seen times, not the feeds'
  ``published`` dates: those are often missing, wrong or in another zone, and what matters is what the
  bot received. Items first seen in the same poll count once (a first poll that sees 50 old items is
  one instant, not 49 gaps of zero).
- Usual gap: the median gap between consecutive instants. The median, not the mean: one holiday week
  or one burst of ten items in an hour does not move it.
- Quiet: the time since the newest instant exceeds both ``factor`` × the usual gap (default 5) and a
  floor (``quiet_after``, default 24 h: a wire that publishes every 10 minutes is not flagged after a
  quiet hour at night). A floor of 0 means never flagged.
- Too little history (fewer than :data:`MIN_GAPS` gaps) teaches nothing: such a feed is never flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

HISTORY = 30  # first-seen instants the usual gap is learned from
MIN_GAPS = 3  # fewer gaps than this: nothing is learned


@dataclass(frozen=True, slots=True)
class Silence:
    """A quiet feed: how long it has been silent, what its usual gap is, and when it last had news."""

    silent_for: timedelta
    usual_gap: timedelta
    last_new: datetime  # the episode's identity: the same until the feed publishes again


def usual_gap(seen: Sequence[datetime]) -> timedelta | None:
    """The median gap between the distinct first-seen instants (any order), or None with too few."""
    instants = sorted(set(seen), reverse=True)[:HISTORY]
    gaps = [newer - older for newer, older in pairwise(instants)]
    if len(gaps) < MIN_GAPS:
        return None
    gaps.sort()
    middle = len(gaps) // 2
    return gaps[middle] if len(gaps) % 2 else (gaps[middle - 1] + gaps[middle]) / 2


def quiet(
    seen: Sequence[datetime], now: datetime, *, factor: float = 5.0, floor: timedelta = timedelta(hours=24)
) -> Silence | None:
    """The feed's silence when it is quiet by the rule above, else None."""
    if floor <= timedelta(0) or not seen:
        return None
    gap = usual_gap(seen)
    if gap is None:
        return None
    last = max(seen)
    silent = now - last
    if silent > floor and silent > gap * factor:
        return Silence(silent, gap, last)
    return None


def human(span: timedelta) -> str:
    """A rough, short span for people: ``3 d``, ``2 h``, ``15 min``, ``40 s``."""
    seconds = span.total_seconds()
    if seconds >= 2 * 86400:
        return f"{round(seconds / 86400)} d"
    if seconds >= 2 * 3600:
        return f"{round(seconds / 3600)} h"
    if seconds >= 120:
        return f"{round(seconds / 60)} min"
    return f"{max(round(seconds), 0)} s"


def describe(silence: Silence) -> str:
    """``quiet for 3 d, usually every 2 h`` (the /status and /feeds wording)."""
    return f"quiet for {human(silence.silent_for)}, usually every {human(silence.usual_gap)}"
