"""The trend chart: the PNG, the lines it draws, the store's daily counts, and the chart after a digest."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from telegram import Bot

import delivery.trend
from core.config import DigestDefaults, FeedConfig
from core.models import Hit, Item, Match
from delivery.outbox import TREND_CAPTION, DeliveryReport, DigestPlan, send_digest
from delivery.sender import ChatPacer, Sender
from delivery.trend import NO_MATCHES, OTHER, day_window, lines, render_trend, totals_text, trend_figure
from store import ProcessedItem, Store
from tgemu import BotApiEmulator

DAYS = [date(2026, 11, 1) + timedelta(days=n) for n in range(7)]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TOKEN = "777:TREND-token"
URL = "https://news.example/rss"
SEOUL = ZoneInfo("Asia/Seoul")


def daily(*values: int) -> dict[date, int]:
    return dict(zip(DAYS, values, strict=True))


# -- the chart -------------------------------------------------------------------------------------------


def test_render_gives_a_deterministic_1000x500_png_with_more_than_one_colour() -> None:
    series = {"military": daily(1, 0, 3, 2, 0, 5, 1), "context": daily(0, 2, 0, 1, 1, 0, 0)}
    png = render_trend(series, DAYS, "Matches per day")
    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (1000, 500)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 10, "a chart, not a blank image"
    assert render_trend(series, DAYS, "Matches per day") == png, "the same input gives the same bytes"
    assert b"Software" not in png and b"matplotlib" not in png.lower()


def test_figure_lines_carry_the_input_labels_and_values() -> None:
    series = {"military": daily(1, 0, 3, 2, 0, 5, 1), "context": daily(0, 2, 0, 1, 1, 0, 0), "silent": daily(*[0] * 7)}
    fig = trend_figure(series, DAYS, "Matches per day, 01 Nov – 07 Nov 2026")
    (ax,) = fig.axes
    drawn = {line.get_label(): [int(v) for v in line.get_ydata()] for line in ax.get_lines()}
    assert drawn == {"military": [1, 0, 3, 2, 0, 5, 1], "context": [0, 2, 0, 1, 1, 0, 0]}
    assert ax.get_title() == "Matches per day, 01 Nov – 07 Nov 2026"
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["military (12)", "context (4)"]
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["01 Nov", "02 Nov"]


def test_beyond_six_series_the_rest_are_summed_as_other() -> None:
    series = {f"rule{i}": daily(*[i] * 7) for i in range(1, 10)}  # rule9 has the most
    got = lines(series, DAYS)
    assert [line.label for line in got] == ["rule9", "rule8", "rule7", "rule6", "rule5", "rule4", OTHER]
    assert got[-1].values == (6,) * 7, "rule1 + rule2 + rule3"
    fig = trend_figure(series, DAYS, "t")
    assert [line.get_label() for line in fig.axes[0].get_lines()][-1] == OTHER
    assert totals_text(series, DAYS).endswith("rule4: 28 · other: 42")


def test_no_matches_draws_a_no_matches_chart_and_says_so() -> None:
    series = {"military": daily(*[0] * 7)}
    fig = trend_figure(series, DAYS, "t")
    (ax,) = fig.axes
    assert not [line for line in ax.get_lines() if not line.get_label().startswith("_")], "no labelled line"
    assert NO_MATCHES in [t.get_text() for t in ax.texts]
    assert ax.get_legend() is None
    assert totals_text(series, DAYS) == f"{NO_MATCHES}."
    with Image.open(io.BytesIO(render_trend({}, DAYS, "t"))) as image:
        assert image.size == (1000, 500)


def test_day_window_starts_at_local_midnight() -> None:
    now = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # 01:00 on 1 December in Seoul
    since, days = day_window(now, SEOUL, 3)
    assert days == [date(2026, 11, 29), date(2026, 11, 30), date(2026, 12, 1)]
    assert since == datetime(2026, 11, 29, 0, 0, tzinfo=SEOUL)
    assert since.astimezone(UTC) == datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


# -- the store's daily counts ----------------------------------------------------------------------------


def _match(rule: str, *groups: str) -> Match:
    return Match(rule, "digest", tuple(Hit(g, "title", 0, 1, g.lower()) for g in groups))


def seen(store: Store, at: datetime, uid: str, *matches: Match) -> None:
    """An item first seen at ``at`` with its matches (the match time is the poll's time)."""
    feed = store.feed_by_url(URL)
    assert feed is not None
    item = Item(URL, uid, f"title {uid}", "summary", f"https://news.example/{uid}", at, "en", "News")
    store.commit_poll(
        feed.id,
        at,
        ok=True,
        etag=None,
        last_modified=None,
        error=None,
        next_poll_at=at + timedelta(minutes=10),
        items=[ProcessedItem(item, matches, deliver=True)],
    )


@pytest.fixture
def store(store_target: Path | str) -> Iterator[Store]:
    s = Store.open(store_target)
    s.sync_feeds([FeedConfig(URL, "News", "en", 600)], datetime(2026, 11, 1, tzinfo=UTC))
    yield s
    s.close()


def test_daily_counts_follow_the_local_day_boundary(store: Store) -> None:
    seen(store, datetime(2026, 11, 1, 14, 59, tzinfo=UTC), "a", _match("military", "DPRK", "RUSSIA"))  # 23:59 KST
    seen(store, datetime(2026, 11, 1, 15, 0, tzinfo=UTC), "b", _match("military", "DPRK"))  # 00:00 KST, 2 Nov
    seen(store, datetime(2026, 11, 1, 15, 1, tzinfo=UTC), "c", _match("military", "DPRK"), _match("context", "DPRK"))
    since, until = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 3, 12, tzinfo=UTC)
    in_seoul = store.daily_match_counts(since, until, SEOUL, "rule")
    assert in_seoul == {
        "military": {date(2026, 11, 1): 1, date(2026, 11, 2): 2, date(2026, 11, 3): 0},
        "context": {date(2026, 11, 1): 0, date(2026, 11, 2): 1, date(2026, 11, 3): 0},
    }
    in_utc = store.daily_match_counts(since, until, ZoneInfo("UTC"), "rule", ["military", "kursk"])
    assert in_utc == {
        "military": {date(2026, 11, 1): 3, date(2026, 11, 2): 0, date(2026, 11, 3): 0},
        "kursk": {date(2026, 11, 1): 0, date(2026, 11, 2): 0, date(2026, 11, 3): 0},
    }, "only the names asked for, zero-filled"
    before = store.daily_match_counts(since, datetime(2026, 11, 1, 14, 59, 30, tzinfo=UTC), SEOUL, "rule")
    assert before == {"military": {date(2026, 11, 1): 1}}, "the period's end is respected"


def test_daily_counts_in_a_half_hour_zone(store: Store) -> None:
    seen(store, datetime(2026, 11, 1, 18, 29, 59, tzinfo=UTC), "a", _match("military", "DPRK"))  # 23:59:59 IST
    seen(store, datetime(2026, 11, 1, 18, 30, tzinfo=UTC), "b", _match("military", "DPRK"))  # 00:00 IST, 2 Nov
    since, until = datetime(2026, 11, 1, 0, 0, tzinfo=UTC), datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
    counts = store.daily_match_counts(since, until, ZoneInfo("Asia/Kolkata"), "rule")
    assert counts == {"military": {date(2026, 11, 1): 1, date(2026, 11, 2): 1}}


def test_daily_counts_by_entity_count_an_item_once_per_group(store: Store) -> None:
    at = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
    seen(store, at, "a", _match("military", "DPRK", "RUSSIA", "DPRK"), _match("context", "DPRK"))
    seen(store, at, "b", _match("kursk", "DPRK", "KURSK"))
    counts = store.daily_match_counts(at - timedelta(days=1), at, SEOUL, "entity", ["DPRK", "RUSSIA"])
    assert counts == {
        "DPRK": {date(2026, 11, 1): 0, date(2026, 11, 2): 2},
        "RUSSIA": {date(2026, 11, 1): 0, date(2026, 11, 2): 1},
    }


# -- the chart after a digest ----------------------------------------------------------------------------

CHAT = 500
DIGEST_AT = datetime(2026, 11, 10, 0, 0, tzinfo=UTC)  # 09:00 in Seoul


@pytest.fixture
async def emu_sender() -> AsyncIterator[tuple[BotApiEmulator, Sender]]:
    with BotApiEmulator(TOKEN) as emu:
        emu.add_chat(CHAT, "private")
        async with Bot(TOKEN, base_url=emu.base_url) as bot:
            yield emu, Sender(bot, ChatPacer(private_interval=0, group_interval=0), network_retries=0)


async def digest_with_matches(store: Store, sender: Sender, *, trend: bool, rules: tuple[str, ...] = ()) -> None:
    sub = store.upsert_subscription(CHAT, DIGEST_AT - timedelta(days=20), mode="digest", rules=rules)
    for n in range(5):
        seen(store, DIGEST_AT - timedelta(days=n, hours=2), f"i{n}", _match("military", "DPRK", "RUSSIA"))
    seen(store, DIGEST_AT - timedelta(days=1), "k", _match("kursk", "DPRK", "KURSK"))
    sub = store.subscription(CHAT) or sub
    plan = DigestPlan(sub, DIGEST_AT, SEOUL)
    await send_digest(
        store,
        sender,
        plan,
        DigestDefaults(trend=trend),
        lambda: DIGEST_AT,
        DeliveryReport(),
        rule_titles={"military": "Military ties", "kursk": "DPRK in Kursk"},
    )


async def test_digest_with_trend_on_is_followed_by_the_chart(
    store: Store, emu_sender: tuple[BotApiEmulator, Sender], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, sender = emu_sender
    drawn: list[dict[str, dict[date, int]]] = []
    real = delivery.trend.render_trend
    monkeypatch.setattr(delivery.trend, "render_trend", lambda s, d, t: drawn.append(dict(s)) or real(s, d, t))
    await digest_with_matches(store, sender, trend=True, rules=("military",))
    digest, chart = emu.sent(CHAT)
    assert digest.photo is None and "title i0" in digest.text
    assert chart.photo is not None and chart.photo.startswith(PNG_SIGNATURE)
    assert chart.text == TREND_CAPTION
    with Image.open(io.BytesIO(chart.photo)) as image:
        assert image.size == (1000, 500)
    (series,) = drawn
    assert list(series) == ["military"], "only the rules the subscription follows"
    assert sum(series["military"].values()) == 5 and len(series["military"]) == 14


async def test_digest_with_trend_off_sends_no_chart(store: Store, emu_sender: tuple[BotApiEmulator, Sender]) -> None:
    emu, sender = emu_sender
    await digest_with_matches(store, sender, trend=False)
    (digest,) = emu.sent(CHAT)
    assert digest.photo is None


async def test_an_empty_digest_sends_no_chart(store: Store, emu_sender: tuple[BotApiEmulator, Sender]) -> None:
    emu, sender = emu_sender
    sub = store.upsert_subscription(CHAT, DIGEST_AT - timedelta(days=1), mode="digest")
    defaults = DigestDefaults(trend=True, send_empty=True)
    await send_digest(store, sender, DigestPlan(sub, DIGEST_AT, SEOUL), defaults, lambda: DIGEST_AT, DeliveryReport())
    assert [m.photo for m in emu.sent(CHAT)] == [None], "the 'nothing new' line only"


@pytest.mark.parametrize("failure", ["render raises", "sendPhoto refused"])
async def test_a_chart_failure_neither_blocks_nor_repeats_the_digest(
    store: Store,
    emu_sender: tuple[BotApiEmulator, Sender],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    emu, sender = emu_sender
    if failure == "render raises":

        def broken(*_: object) -> bytes:
            raise RuntimeError("no fonts")

        monkeypatch.setattr(delivery.trend, "render_trend", broken)
    else:
        emu.fail_next("sendPhoto", "400_chat", times=5)
    with caplog.at_level(logging.WARNING, logger="delivery.outbox"):
        await digest_with_matches(store, sender, trend=True)
    (digest,) = emu.sent(CHAT)
    assert "title i0" in digest.text
    assert any("digest_trend" in r.getMessage() for r in caplog.records), "the failure is logged"
    sub = store.subscription(CHAT)
    assert sub is not None and sub.last_digest_at == DIGEST_AT, "the digest is complete"
    assert store.digest_entries(sub.id, DIGEST_AT) == [], "nothing is left to send again"


@pytest.mark.parametrize(
    ("case", "photo", "caption", "fault", "expected"),
    [
        ("a PNG with a caption", "png", "<b>Matches</b> per day", None, "Sent"),
        ("flood control", "png", "", "429", "Retry"),
        ("bot blocked", "png", "", "403", "Gone"),
        ("not an image", "text", "", None, "Failed"),
        ("caption over 1024 characters", "png", "x" * 1025, None, "Failed"),
    ],
)
async def test_send_photo_outcomes(
    emu_sender: tuple[BotApiEmulator, Sender], case: str, photo: str, caption: str, fault: str | None, expected: str
) -> None:
    emu, sender = emu_sender
    data = render_trend({}, DAYS, "t") if photo == "png" else b"not an image at all"
    if fault:
        emu.fail_next("sendPhoto", fault)
    outcome = await sender.send_photo(CHAT, data, caption)
    assert type(outcome).__name__ == expected, case
    sent = emu.sent(CHAT)
    assert [m.photo for m in sent] == ([data] if expected == "Sent" else [])
    if sent:
        assert sent[0].text == caption and sent[0].parse_mode == "HTML"


def test_days_with_a_spike_are_shaded_and_marked() -> None:
    fig = trend_figure({"r": daily(1, 2, 9, 1, 0, 0, 1)}, DAYS, "t", spikes=[DAYS[2]])
    (ax,) = fig.axes
    shaded = [p for p in ax.patches if p.get_gid() == "spike"]
    assert len(shaded) == 1
    x0, x1 = shaded[0].get_x(), shaded[0].get_x() + shaded[0].get_width()
    assert (x0, x1) == (1.5, 2.5)  # day index 2
    assert [t.get_text() for t in ax.texts] == ["spike"]
    assert [line.get_label() for line in ax.get_lines()] == ["r"]  # the legend still lists the series only
    plain = trend_figure({"r": daily(1, 2, 9, 1, 0, 0, 1)}, DAYS, "t")
    assert not plain.axes[0].patches
