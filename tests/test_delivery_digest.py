"""When a digest is due in the subscriber's time zone, and what it contains."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.models import Hit, Item, Match
from delivery.cluster import Entry
from delivery.digest import build_digest, digest_due
from delivery.render import strip_html
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
