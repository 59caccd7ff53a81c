"""/feed_add's reply tells the truth about the backlog policy: what it says is what the first poll sends."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from chat.feeds import add_feed
from core.config import BacklogPolicy, Config, PollingConfig
from rules import parse_rule_text
from service.pipeline import Pipeline
from store import Store
from watchers import PollSettings, make_client

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RULES = textwrap.dedent(
    """\
    version: 1
    groups:
      DPRK: {aliases: [КНДР]}
      RUSSIA: {aliases: [Россия]}
    rules:
      - name: pair
        priority: instant
        all: [DPRK, RUSSIA]
    """
)
# newest first: two items that match nothing, three matching ones within a day, one matching 3 days old
ENTRIES = [
    ("w1", "Погода на завтра", timedelta(minutes=30)),
    ("w2", "Курс рубля", timedelta(hours=1)),
    ("m1", "КНДР и Россия: договор", timedelta(hours=2)),
    ("m2", "КНДР и Россия: визит", timedelta(hours=3)),
    ("m3", "КНДР и Россия: учения", timedelta(hours=4)),
    ("old", "КНДР и Россия: архив", timedelta(days=3)),
]


def rss() -> bytes:
    body = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title>"
        f"<pubDate>{(NOW - age).strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate></item>"
        for guid, title, age in ENTRIES
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{body}</channel></rss>'.encode()


@pytest.mark.parametrize(
    ("name", "policy", "says", "sent"),
    [
        ("nothing", BacklogPolicy(0, 86400), "Its first poll sends nothing", 0),
        (
            "two within a day",
            BacklogPolicy(2, 86400),
            "at most the 2 newest matching items published in the last 1d",
            2,
        ),
        (
            "five within a day",
            BacklogPolicy(5, 86400),
            "at most the 5 newest matching items published in the last 1d",
            3,
        ),
        ("any age", BacklogPolicy(5, None), "at most the 5 newest matching items of any age", 4),
        ("one, any age", BacklogPolicy(1, None), "at most the newest matching item of any age", 1),
    ],
)
async def test_feed_add_states_the_backlog_policy_and_the_first_poll_does_that(
    httpserver: HTTPServer, tmp_path: Path, name: str, policy: BacklogPolicy, says: str, sent: int
) -> None:
    httpserver.expect_request("/feed").respond_with_data(rss(), content_type="application/rss+xml")
    url = httpserver.url_for("/feed")
    polling = PollingConfig(allow_private_urls=True, timeout=2.0, backlog=policy)
    config = Config(tmp_path / "config.yaml", (), (), tmp_path / "bot.sqlite3", polling=polling)
    ruleset = parse_rule_text(RULES, "rules.yaml")
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.upsert_subscription(1, NOW, mode="instant")
        async with make_client(PollSettings.from_config(polling)) as client:
            reply = await add_feed(store, config, client, url, "Wire", 42, NOW, ruleset)
            assert says in reply, name
            assert "old items are not sent" not in reply
            if policy.max_items:
                assert f"4 of its items match the rules and {sent} would be sent" in reply, name
            await Pipeline(store, client, lambda: ruleset, polling).run_cycle(NOW)
        assert len(store.pending_instant(NOW)) == sent, name
