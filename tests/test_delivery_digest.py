"""When a digest is due in the subscriber's time zone, and what it contains."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.config import DigestDefaults, FeedConfig
from core.models import Hit, Item, Match
from delivery.cluster import Entry
from delivery.digest import build_digest, digest_due
from delivery.outbox import deliver_digests
from delivery.render import strip_html
from delivery.sender import Outcome, Sent
from store import ProcessedItem, Store
from tgemu.server import parse_html

SEOUL = ZoneInfo("Asia/Seoul")
MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.mark.parametrize(
    ("name", "now", "last", "due"),
    [
        ("before local time", datetime(2026, 5, 1, 23, 59, tzinfo=UTC), datetime(2026, 5, 1, 0, 0, tzinfo=UTC), False),
        ("at local time", datetime(2026, 5, 2, 0, 0, tzinfo=UTC), datetime(2026, 5, 1, 0, 0, tzinfo=UTC), True),
        (
            "already sent today",
            datetime(2026, 5, 2, 5, 0, tzinfo=UTC),
            datetime(2026, 5, 2, 0, 0, 5, tzinfo=UTC),
            False,
        ),
        (
            "missed while down: sent once",
            datetime(2026, 5, 5, 3, 0, tzinfo=UTC),
            datetime(2026, 5, 1, 0, 0, tzinfo=UTC),
            True,
        ),
    ],
)
def test_digest_due_in_local_time(name: str, now: datetime, last: datetime, due: bool) -> None:
    assert (digest_due(now, time(9, 0), SEOUL, last) is not None) == due, name


def test_new_subscription_waits_for_its_first_local_time() -> None:
    created = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)  # 13:00 in Moscow, digest at 08:00
    assert digest_due(created + timedelta(hours=1), time(8, 0), MOSCOW, None, created) is None
    assert digest_due(datetime(2026, 5, 2, 5, 0, tzinfo=UTC), time(8, 0), MOSCOW, None, created) is not None


def entry(title: str, feed: str, rule: str, hours: int, lang: str = "en") -> Entry:
    item = Item(
        f"https://{feed}.example/rss",
        title,
        title,
        "",
        f"https://{feed}.example/{hours}",
        datetime(2026, 5, 1, hours, tzinfo=UTC),
        lang,
        feed,
    )
    return Entry(
        item,
        (
            Match(
                rule, "digest", (Hit("DPRK", "title", 0, 11, "North Korea"), Hit("RUSSIA", "title", 17, 23, "Russia"))
            ),
        ),
    )


def test_digest_groups_by_rule_newest_first_with_sources_and_why() -> None:
    entries = [
        entry("North Korea sends 5,000 builders to Russia", "Yonhap", "military", 1),
        entry("North Korea sending 5,000 builders to Russia, NIS says", "Reuters", "military", 2),
        entry("North Korea and Russia sign a treaty on partnership", "TASS", "military", 5),
        entry("North Korea & Russia: <new> rail link", "AP", "context", 3),
    ]
    (message,) = build_digest(
        entries,
        period_start=datetime(2026, 5, 1, tzinfo=UTC),
        period_end=datetime(2026, 5, 2, tzinfo=UTC),
        tz=MOSCOW,
        rule_titles={"military": "Military ties"},
    )
    parse_html(message)
    text = strip_html(message)
    lines = text.splitlines()
    assert lines[0] == "🗞 Digest 01.05.2026 03:00 – 02.05.2026 03:00 (Europe/Moscow)"
    assert lines[1] == "3 stories · 4 items · 4 sources"
    assert text.index("Military ties") < text.index("treaty") < text.index("5,000 builders") < text.index("context")
    assert text.count("5,000 builders") == 1
    builders = text[text.index("5,000 builders") :].split("\n\n")[0]
    assert "Yonhap" in builders and "Reuters" in builders
    assert "DPRK: «North Korea»" in text
    assert "<new>" in text  # escaped in HTML, visible as typed


def test_empty_period_sends_nothing_or_a_short_line() -> None:
    args = {"period_start": None, "period_end": datetime(2026, 5, 2, tzinfo=UTC), "tz": SEOUL}
    assert build_digest([], **args) == []
    (line,) = build_digest([], send_empty=True, **args)
    assert "nothing new" in line


# --- Digest times across daylight-saving transitions -------------------------------------------------
# Each case: a digest time inside the skipped hour (spring forward) or the repeated hour (fall back) of a
# transition day, and the one instant (UTC) at which it must fire: a skipped time at the first instant
# that exists after it (the transition), a repeated time at its first occurrence. Lord Howe shifts by 30 minutes.
DST_CASES = [
    ("Berlin spring, 02:30 skipped", "Europe/Berlin", "02:30", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
    ("Berlin fall, 02:30 twice", "Europe/Berlin", "02:30", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    ("New York spring, 02:30 skipped", "America/New_York", "02:30", datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
    ("New York fall, 01:30 twice", "America/New_York", "01:30", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
    ("Sydney spring, 02:30 skipped", "Australia/Sydney", "02:30", datetime(2026, 10, 3, 16, 0, tzinfo=UTC)),
    ("Sydney fall, 02:30 twice", "Australia/Sydney", "02:30", datetime(2026, 4, 4, 15, 30, tzinfo=UTC)),
    ("Chatham spring, 03:00 skipped", "Pacific/Chatham", "03:00", datetime(2026, 9, 26, 14, 0, tzinfo=UTC)),
    ("Chatham fall, 03:00 twice", "Pacific/Chatham", "03:00", datetime(2026, 4, 4, 13, 15, tzinfo=UTC)),
    ("Lord Howe spring, 02:15 skipped", "Australia/Lord_Howe", "02:15", datetime(2026, 10, 3, 15, 30, tzinfo=UTC)),
    ("Lord Howe fall, 01:45 twice", "Australia/Lord_Howe", "01:45", datetime(2026, 4, 4, 14, 45, tzinfo=UTC)),
]
DST_URL = "https://dst.example/rss"
MATCH = Match("military", "digest", (Hit("DPRK", "title", 0, 4, "DPRK"),))


class CountingSender:
    """A MessageSender that accepts everything and remembers when each digest went out."""

    def __init__(self, clock: list[datetime]) -> None:
        self.clock = clock
        self.digests: list[datetime] = []

    async def send(
        self,
        chat_id: int | str,
        chunks: Sequence[str],
        *,
        preview: bool = True,
        skip: int = 0,
        reply_markup: Sequence[object] = (),
    ) -> Outcome:
        self.digests.append(self.clock[0])
        return Sent(tuple(range(len(chunks))))

    async def send_photo(self, chat_id: int | str, photo: bytes, caption: str = "") -> Outcome:
        return Sent((1,))


@pytest.mark.parametrize("send_empty", [True, False], ids=["send_empty", "items_only"])
@pytest.mark.parametrize(("name", "zone", "at", "fires"), DST_CASES, ids=[c[0] for c in DST_CASES])
async def test_a_digest_time_on_a_dst_transition_day_fires_once(
    tmp_path: Path, name: str, zone: str, at: str, fires: datetime, send_empty: bool
) -> None:
    start = fires - timedelta(hours=20)
    store = Store.open(tmp_path / "bot.sqlite3")
    try:
        store.sync_feeds([FeedConfig(DST_URL, "DST", "en", 600)], start)
        store.upsert_subscription(1, start, mode="digest", digest_time=at, timezone=zone)
        feed = store.feed_by_url(DST_URL)
        assert feed is not None
        clock = [start]
        sender = CountingSender(clock)
        defaults = DigestDefaults(send_empty=send_empty)
        tick = 0
        while clock[0] < fires + timedelta(hours=20):  # a tick every 5 minutes; an item every 15
            if not send_empty and tick % 3 == 0:
                link = f"https://dst.example/{tick}"
                item = Item(DST_URL, f"u{tick}", f"Item {tick}", "s", link, clock[0], "en", "DST")
                store.commit_poll(
                    feed.id, clock[0], ok=True, etag=None, last_modified=None, error=None,
                    next_poll_at=clock[0], items=[ProcessedItem(item, (MATCH,), True)],
                )  # fmt: skip
            await deliver_digests(store, sender, defaults, lambda: clock[0])
            clock[0] += timedelta(minutes=5)
            tick += 1
    finally:
        store.close()
    assert sender.digests == [fires], name


def test_a_digest_entry_names_its_sources_labels() -> None:
    from dataclasses import replace

    tass = entry("North Korea and Russia sign a treaty", "TASS", "military", 5)
    tass = replace(tass, item=replace(tass.item, labels=("state-media",)))
    (message,) = build_digest(
        [tass, entry("North Korea and Russia sign a treaty on partnership", "Reuters", "military", 6)],
        period_start=datetime(2026, 5, 1, tzinfo=UTC),
        period_end=datetime(2026, 5, 2, tzinfo=UTC),
        tz=MOSCOW,
    )
    text = strip_html(message)
    assert "TASS · state media" in text
    assert "Reuters ·" not in text


class RecordingSender(CountingSender):
    """A CountingSender that also keeps each chat's texts."""

    def __init__(self, clock: list[datetime]) -> None:
        super().__init__(clock)
        self.texts: dict[str, list[str]] = {}

    async def send(
        self,
        chat_id: int | str,
        chunks: Sequence[str],
        *,
        preview: bool = True,
        skip: int = 0,
        reply_markup: Sequence[object] = (),
    ) -> Outcome:
        self.texts.setdefault(str(chat_id), []).extend(chunks)
        return await super().send(chat_id, chunks, preview=preview, skip=skip, reply_markup=reply_markup)


async def test_each_chat_gets_its_digest_header_in_its_own_language(tmp_path: Path) -> None:
    """A group without a choice speaks the configured default (ru here); a chat that chose English gets it."""
    start = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([FeedConfig(DST_URL, "DST", "en", 600)], start)
        for chat in (-100, -200):
            store.upsert_subscription(chat, start, mode="digest", digest_time="08:00", timezone="UTC")
        store.set_chat_language(-200, "en", start)
        feed = store.feed_by_url(DST_URL)
        assert feed is not None
        items = [
            ProcessedItem(Item(DST_URL, f"u{n}", f"Item {n}", "s", f"https://dst.example/{n}", start, "en", "DST"),
                          (MATCH,), True)
            for n in range(5)
        ]  # fmt: skip
        store.commit_poll(
            feed.id, start, ok=True, etag=None, last_modified=None, error=None, next_poll_at=start, items=items
        )
        clock = [datetime(2026, 5, 2, 8, 1, tzinfo=UTC)]
        sender = RecordingSender(clock)
        await deliver_digests(store, sender, DigestDefaults(), lambda: clock[0], language="ru")
    ru, en = strip_html(sender.texts["-100"][0]), strip_html(sender.texts["-200"][0])
    assert ru.startswith("🗞 Сводка … – 02.05.2026 08:01 (UTC)\n5 сюжетов · 5 материалов · 1 источник\n")
    assert en.startswith("🗞 Digest … – 02.05.2026 08:01 (UTC)\n5 stories · 5 items · 1 sources\n")
