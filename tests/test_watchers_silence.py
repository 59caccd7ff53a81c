"""When a feed that still answers is "quiet": silent much longer than its own usual gap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watchers.silence import describe, quiet, usual_gap

NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def every(gap: timedelta, count: int, last: datetime) -> list[datetime]:
    """``count`` first-seen instants ``gap`` apart, the newest at ``last``."""
    return [last - gap * n for n in range(count)]


@pytest.mark.parametrize(
    ("name", "seen", "factor", "floor", "flagged"),
    [
        ("every 2 h, silent 3 d: quiet", every(2 * H, 20, NOW - 72 * H), 5.0, 24 * H, True),
        ("every 2 h, silent 9 h: not yet (under the 24 h floor)", every(2 * H, 20, NOW - 9 * H), 5.0, 24 * H, False),
        ("every 2 h, silent 11 h with a 6 h floor: quiet", every(2 * H, 20, NOW - 11 * H), 5.0, 6 * H, True),
        ("daily, silent 3 d: not yet (under 5 × 24 h)", every(24 * H, 20, NOW - 72 * H), 5.0, 24 * H, False),
        ("daily, silent 6 d: quiet", every(24 * H, 20, NOW - 144 * H), 5.0, 24 * H, True),
        ("weekly, silent 10 d: normal for it", every(168 * H, 10, NOW - 240 * H), 5.0, 24 * H, False),
        ("every 2 h, silent 3 d, floor 0: never flagged", every(2 * H, 20, NOW - 72 * H), 5.0, timedelta(0), False),
        ("two items only: nothing learned", every(2 * H, 3, NOW - 72 * H), 5.0, 24 * H, False),
        ("first poll's 50 items at one instant: one instant", [NOW - 72 * H] * 50, 5.0, 24 * H, False),
        ("no history at all", [], 5.0, 24 * H, False),
        ("just published: fine", every(2 * H, 20, NOW), 5.0, 24 * H, False),
    ],
)
def test_quiet_is_much_longer_than_usual_and_longer_than_the_floor(
    name: str, seen: list[datetime], factor: float, floor: timedelta, flagged: bool
) -> None:
    assert (quiet(seen, NOW, factor=factor, floor=floor) is not None) == flagged, name


def test_the_usual_gap_is_the_median_so_one_long_break_or_burst_does_not_move_it() -> None:
    seen = every(2 * H, 10, NOW - 2 * H)
    seen += [seen[-1] - 14 * 24 * H]  # a two-week holiday long ago
    seen += [NOW - 2 * H + timedelta(minutes=m) for m in (1, 2, 3)]  # a burst: three items minutes apart
    assert usual_gap(seen) == 2 * H


def test_a_quiet_feed_is_described_in_round_human_units() -> None:
    silence = quiet(every(2 * H, 20, NOW - 72 * H), NOW)
    assert silence is not None and describe(silence) == "quiet for 3 d, usually every 2 h"
    assert silence.last_new == NOW - 72 * H  # the episode lasts until the feed has news again
