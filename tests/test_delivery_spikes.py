"""Spike decisions over synthetic histories: a known spike, a flat history, a slow rise, a zero baseline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.config import SpikeSettings
from delivery.spikes import decide, find_spikes, render_spike, window_counts
from store.spikes import SpikeRow

NOW = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
S = SpikeSettings()  # 6 h window, 14 days, 3×, at least 5


def history(
    per_day: list[int], today: int, key: str = "rule:dprk_russia", stories: int | None = None
) -> list[SpikeRow]:
    """``per_day[d]`` distinct stories in the same 6 hours ``d + 1`` days ago, ``today`` in the last 6 h
    (spread as ``stories`` distinct stories when given: the rest are more reports of those)."""
    rows: list[SpikeRow] = []
    for d, n in enumerate(per_day, start=1):
        for i in range(n):
            rows.append(SpikeRow(key, NOW - timedelta(days=d, minutes=10 + i), f"s{d}-{i}", "", None))
    for i in range(today):
        story = f"t{i % stories}" if stories else f"t{i}"
        rows.append(SpikeRow(key, NOW - timedelta(minutes=5 + i), story, f"Story {story}", f"https://x.test/{story}"))
    return rows


CASES = {
    # name: (baseline per day, last window, spike?)
    "known spike": ([2] * 14, 14, True),
    "flat": ([4, 5, 3, 4, 5, 4, 3, 4, 5, 4, 4, 3, 5, 4], 5, False),
    "slow rise": ([10 - d // 2 for d in range(14)], 11, False),  # a little more each day: never 3×
    "zero baseline, enough items": ([0] * 14, 5, True),
    "zero baseline, too few": ([0] * 14, 4, False),
    "3× but under the floor": ([1] * 14, 4, False),
}


@pytest.mark.parametrize("name", CASES)
def test_spike_decision_over_synthetic_history(name: str) -> None:
    per_day, today, expected = CASES[name]
    spikes = find_spikes(history(per_day, today), NOW, S)
    assert bool(spikes) is expected, name


def test_only_the_same_hours_of_earlier_days_count_as_baseline() -> None:
    # 30 items every day at 06:00 (a busy morning) must not raise the 12:00–18:00 baseline
    rows = history([2] * 14, 14)
    rows += [
        SpikeRow("rule:dprk_russia", NOW - timedelta(days=d, hours=12), f"m{d}-{i}", "", None)
        for d in range(1, 15)
        for i in range(30)
    ]
    count, baseline = window_counts(rows, NOW, S)["rule:dprk_russia"]
    assert (count, baseline) == (14, [2] * 14)
    assert find_spikes(rows, NOW, S)


def test_a_story_reported_by_many_outlets_counts_once() -> None:
    # 14 reports, but of 2 stories: no spike over a baseline of 2 stories
    assert not find_spikes(history([2] * 14, 14, stories=2), NOW, S)


def test_decide_ratio_and_zero_mean() -> None:
    assert decide(14, [2] * 14, 3, 5).ratio == 7
    zero = decide(6, [0] * 14, 3, 5)
    assert zero.spike and zero.ratio is None


def test_alert_text_names_rule_counts_ratio_and_top_three_stories() -> None:
    rows = history([1] * 14, 15, stories=5)  # 15 reports of 5 stories, over 1 story a day: 5×
    (spike,) = find_spikes(rows, NOW, S)
    text = render_spike(spike, "DPRK–Russia military ties", S.window)
    head, *stories = text.splitlines()
    assert head == "⚡ <b>DPRK–Russia military ties</b>: 5 stories in 6 h, 5× usual"
    assert len(stories) == 3
    assert '<a href="https://x.test/t0">Story t0</a> (3)' in stories[0]


def test_zero_baseline_text_says_none_usually() -> None:
    (spike,) = find_spikes(history([0] * 14, 6), NOW, S)
    assert "6 stories in 6 h, none usually" in render_spike(spike, "R", S.window)
