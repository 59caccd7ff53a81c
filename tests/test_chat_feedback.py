"""Analysts' 👍/👎 votes: signed buttons on alerts and digest entries, /quality, the voted back-test.

The end-to-end tests drive the real bot through the Bot API emulator: an alert goes out with its
buttons, a user presses 👎, /quality counts it, and the next /rule_edit back-test reports it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from telegram.ext import Application

from chat.feedback import (
    DOWN,
    MAC_CHARS,
    SECRET_KEY,
    UP,
    cast_vote,
    item_labels,
    parse_days,
    rule_quality,
    sign,
    verify,
    voted_effect,
)
from core.config import FeedConfig
from core.models import Item
from delivery.render import MAX_BUTTONS, digest_vote_keyboard
from rules import parse_rule_text
from service.app import run_deliver_locked
from service.state import BotState
from store import ProcessedItem, Store
from tests.running import running_app
from tgemu import BotApiEmulator

TOKEN = "6161:VOTES-token"
ADMIN, ANALYST, OTHER = 42, 7, 9
NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
URL = "https://news.example/rss"
CHANNEL = "@dprk_watch"

# A small rule file of the tests' own, so that the default rules (reworked elsewhere) can change freely.
RULES = """\
version: 1
groups:
  DPRK: {kind: entity, aliases: [North Korea, Pyongyang]}
  RUSSIA: {kind: entity, aliases: [Russia, Moscow]}
  MILITARY: {kind: keywords, aliases: [military, parade]}
  TROOPS: {kind: keywords, aliases: [troops]}
  TREATY: {kind: keywords, aliases: [treaty]}
rules:
  - name: ties
    priority: instant
    all: [DPRK, RUSSIA]
    any: [MILITARY, TROOPS, TREATY]
"""
NARROWER = "priority: instant\nall: [DPRK, RUSSIA]\nany: [TROOPS, TREATY]\n"  # /rule_edit ties: no parades
PARADE = "North Korea and Russia watch a military parade in Beijing"  # the false alert analysts vote 👎
TROOPS = "North Korea sends troops to Russia"  # an alert analysts vote 👍
FOOTBALL = "North Korea beat Russia at football"  # matches nothing


def item(uid: str, title: str) -> Item:
    return Item(URL, uid, title, f"Summary of {uid}.", f"https://news.example/{uid}", NOW, "en", "News")


# -- callback data ------------------------------------------------------------------------------------

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))
GOOD = sign(SECRET, 1234, DOWN)


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("the bot's own 👎", GOOD, (1234, DOWN)),
        ("the bot's own 👍", sign(SECRET, 1234, UP), (1234, UP)),
        ("label flipped, same mac", GOOD.replace("v:1234:0:", "v:1234:1:"), None),
        ("another item, same mac", GOOD.replace("v:1234:", "v:1235:"), None),
        ("signed by another store", sign(OTHER_SECRET, 1234, DOWN), None),
        ("mac cut short", GOOD[:-1], None),
        ("a rule-edit button", "rules:apply:abcdef", None),
        ("garbage", "v:x:y:z", None),
        ("empty", "", None),
    ],
)
def test_only_callback_data_this_store_signed_is_accepted(name: str, data: str, expected: Any) -> None:
    assert verify(SECRET, data) == expected, name


def test_callback_data_fits_telegrams_64_bytes_for_any_item_id() -> None:
    for item_id in (1, 10**9, 10**18 - 1):
        data = sign(SECRET, item_id, UP)
        assert len(data.encode()) <= 64 and verify(SECRET, data) == (item_id, UP)
    assert MAC_CHARS >= 10  # ≥ 60 bits: guessing a valid mac is hopeless


def test_a_digest_message_never_carries_more_buttons_than_telegram_allows() -> None:
    keyboard = digest_vote_keyboard([(n, n) for n in range(1, 80)], lambda i, label: f"v:{i}:{label}")
    assert keyboard is not None
    buttons = [b for row in keyboard for b in row]
    assert len(buttons) == MAX_BUTTONS
    assert [b[0] for b in keyboard[0]] == ["1 👍", "1 👎", "2 👍", "2 👎"]  # two entries a row
    assert digest_vote_keyboard([], lambda i, label: "") is None


# -- votes in the store ------------------------------------------------------------------------------


@pytest.fixture
def store(store_target: Path | str) -> Iterator[Store]:
    s = Store.open(store_target)
    s.sync_feeds([FeedConfig(URL, "News", "en", 600)], NOW)
    yield s
    s.close()


def commit(store: Store, *items: Item, rules: str = RULES) -> list[int]:
    """Store ``items`` with the matches of ``rules``; their row ids."""
    ruleset = parse_rule_text(rules, "rules.yaml")
    feed = store.feed_by_url(URL)
    assert feed is not None
    store.commit_poll(
        feed.id,
        NOW,
        ok=True,
        etag=None,
        last_modified=None,
        error=None,
        next_poll_at=NOW,
        items=[ProcessedItem(i, tuple(ruleset.match(i)), True) for i in items],
    )
    return [store.conn.execute("SELECT id FROM items WHERE uid = ?", (i.uid,)).fetchone()[0] for i in items]


def test_one_vote_per_user_per_item_and_the_latest_counts(store: Store) -> None:
    (parade,) = commit(store, item("p", PARADE))
    secret = store.secret(SECRET_KEY)
    assert cast_vote(store, sign(secret, parade, UP), ANALYST, "7", NOW) == "👍 recorded"
    assert cast_vote(store, sign(secret, parade, DOWN), ANALYST, "7", NOW) == "👎 recorded (was 👍)"
    assert cast_vote(store, sign(secret, parade, DOWN), ANALYST, "7", NOW) == "👎 recorded"
    votes = store.votes()
    assert [(v.user_id, v.label) for v in votes] == [(ANALYST, DOWN)]
    assert votes[0].item.title == PARADE and votes[0].item.lang == "en" and votes[0].item.link
    assert votes[0].rules == ("ties",)  # the rules' verdict at vote time
    assert store.secret(SECRET_KEY) == secret  # the key is made once and kept


def test_forged_and_stale_buttons_are_refused_and_record_nothing(store: Store) -> None:
    (parade,) = commit(store, item("p", PARADE))
    secret = store.secret(SECRET_KEY)
    assert "not valid" in cast_vote(store, sign(OTHER_SECRET, parade, DOWN), ANALYST, "7", NOW)
    assert "not valid" in cast_vote(store, sign(secret, parade, DOWN)[:-2] + "AA", ANALYST, "7", NOW)
    assert "too old" in cast_vote(store, sign(secret, parade + 99, DOWN), ANALYST, "7", NOW)  # no such item
    store.prune(NOW + timedelta(days=61), keep_days=60)  # its text is gone: nothing left to label
    assert "too old" in cast_vote(store, sign(secret, parade, DOWN), ANALYST, "7", NOW)
    assert store.votes() == []


def test_a_label_keeps_the_items_text_after_the_item_is_pruned(store: Store) -> None:
    (parade,) = commit(store, item("p", PARADE))
    cast_vote(store, sign(store.secret(SECRET_KEY), parade, DOWN), ANALYST, "7", NOW)
    store.prune(NOW + timedelta(days=61), keep_days=60)
    assert [v.item.title for v in store.votes()] == [PARADE]


def test_an_items_label_is_the_majority_of_its_users_and_ties_are_left_out(store: Store) -> None:
    parade, troops, football = commit(store, item("p", PARADE), item("t", TROOPS), item("f", FOOTBALL))
    secret = store.secret(SECRET_KEY)
    for user, item_id, label in [
        (ANALYST, parade, DOWN),
        (OTHER, parade, DOWN),
        (ADMIN, parade, UP),  # outvoted
        (ANALYST, troops, UP),
        (ANALYST, football, UP),
        (OTHER, football, DOWN),  # a tie
    ]:
        cast_vote(store, sign(secret, item_id, label), user, str(user), NOW)
    labels, ties = item_labels(store.votes())
    assert [(lab.item.title, lab.label, lab.up, lab.down) for lab in labels] == [
        (PARADE, DOWN, 1, 2),
        (TROOPS, UP, 1, 0),
    ]
    assert ties == 1


def test_quality_counts_alerts_and_voted_items_per_rule() -> None:
    labels, _ = item_labels([])
    rows = rule_quality({"ties": 3}, labels, ["ties", "quiet"])
    assert [(r.rule, r.alerts, r.up, r.down, r.precision) for r in rows] == [
        ("ties", 3, 0, 0, None),
        ("quiet", 0, 0, 0, None),
    ]


@pytest.mark.parametrize(
    ("args", "days"), [([], 30), (["7"], 7), (["365"], 365), (["0"], None), (["x"], None), (["1", "2"], None)]
)
def test_quality_takes_a_number_of_days(args: list[str], days: int | None) -> None:
    if days is None:
        with pytest.raises(ValueError, match="number of days"):
            parse_days(args)
    else:
        assert parse_days(args) == days


def test_the_voted_back_test_runs_the_proposed_rules_over_the_voted_items() -> None:
    old = parse_rule_text(RULES, "rules.yaml")
    new = parse_rule_text(RULES.replace("any: [MILITARY, TROOPS, TREATY]", "any: [TROOPS, TREATY]"), "rules.yaml")
    voted = [
        (item("p", PARADE), DOWN),
        (item("p2", "Pyongyang and Moscow hold a military parade"), DOWN),
        (item("t", TROOPS), UP),
        (item("f", FOOTBALL), DOWN),  # matched by neither: not counted among the 👎 still alerting
        (item("m", "Russia and North Korea sign a military treaty"), UP),
    ]
    effect = voted_effect(old, new, voted)
    assert effect.text() == "Voted items: fixes 2 of 2 👎, loses 0 of 2 👍"
    assert voted_effect(new, old, voted).text() == "Voted items: fixes 0 of 0 👎, loses 0 of 2 👍, lets in 2 more 👎"


# -- end to end: the emulator, the real bot -----------------------------------------------------------


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        for user in (ADMIN, ANALYST, OTHER):
            e.add_chat(user, "private")
        e.add_chat(CHANNEL, "channel", "Watch", CHANNEL[1:])
        e.set_member(CHANNEL, ANALYST, "administrator")
        yield e


@pytest.fixture
async def bot(emu: BotApiEmulator, tmp_path: Path) -> AsyncIterator[tuple[Application, BotState]]:  # type: ignore[type-arg]
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "ties.yaml").write_text(RULES, encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"telegram: {{base_url: '{emu.base_url}'}}\nadmins: [{ADMIN}]\nstorage: {{path: bot.sqlite3}}\n"
        f"rules: {{files: ['{tmp_path / 'rules'}/*.yaml']}}\n",
        encoding="utf-8",
    )
    async with running_app(config, TOKEN, NOW) as (app, state):
        state.store.sync_feeds([FeedConfig(URL, "News", "en", 600)], NOW)
        yield app, state


async def say(emu: BotApiEmulator, user: int, text: str, replies: int = 1) -> str:
    before = len(emu.sent(user))
    emu.user_sends(user, user, text)
    sent = await asyncio.to_thread(emu.wait_for, user, before + replies, 10)
    assert len(sent) >= before + replies, f"no reply to {text!r}"
    return sent[-1].text


async def press(emu: BotApiEmulator, user: int, message_id: int, data: str) -> str:
    query = emu.user_clicks(user, user, message_id, data)
    answer = await asyncio.to_thread(emu.wait_answer, query, 10)
    assert answer is not None, "the bot never answered the button"
    return str(answer["text"])


def quality_row(text: str, rule: str) -> list[str]:
    plain = re.sub(r"<[^>]+>", "", text)
    line = next(line for line in plain.split("\n") if line.startswith(rule + " "))
    return line.split()


async def test_a_down_vote_on_an_alert_shows_in_quality_and_in_the_next_back_test(
    emu: BotApiEmulator,
    bot: tuple[Application, BotState],  # type: ignore[type-arg]
) -> None:
    app, state = bot
    await say(emu, ANALYST, "/subscribe instant")
    commit(state.store, item("p", PARADE), item("t", TROOPS), item("f", FOOTBALL))
    before = len(emu.sent(ANALYST))
    await run_deliver_locked(app)
    alerts = {m.text.split("\n")[0]: m for m in emu.sent(ANALYST)[before:]}
    assert len(alerts) == 2  # the football item matched nothing
    parade = next(m for head, m in alerts.items() if "parade" in head)
    troops = next(m for head, m in alerts.items() if "troops" in head)
    buttons = emu.buttons(ANALYST, parade.message_id)
    assert [text for text, _ in buttons] == ["👍", "👎"]
    assert all(len(data.encode()) <= 64 for _, data in buttons)

    assert "0 0 —" in " ".join(quality_row(await say(emu, ANALYST, "/quality"), "ties"))  # no votes yet
    assert await press(emu, ANALYST, parade.message_id, buttons[0][1]) == "👍 recorded"
    assert await press(emu, ANALYST, parade.message_id, buttons[1][1]) == "👎 recorded (was 👍)"  # changed
    assert await press(emu, ANALYST, troops.message_id, emu.buttons(ANALYST, troops.message_id)[0][1]) == (
        "👍 recorded"
    )
    forged = re.sub(r":[\w-]+$", ":" + "A" * MAC_CHARS, buttons[0][1])
    assert "not valid" in await press(emu, ANALYST, parade.message_id, forged)

    report = await say(emu, ANALYST, "/quality 7")
    assert "last 7 days" in report
    assert quality_row(report, "ties") == ["ties", "2", "1", "1", "0.50"]  # alerts, 👍, 👎, precision

    reply = await say(emu, ADMIN, f"/rule_edit ties\n{NARROWER}")
    assert "Voted items: fixes 1 of 1 👎, loses 0 of 1 👍" in reply
    assert "loses 0 of 1 👍" in reply


async def test_each_digest_entry_is_numbered_and_its_button_votes_for_that_entry(
    emu: BotApiEmulator,
    bot: tuple[Application, BotState],  # type: ignore[type-arg]
) -> None:
    _, state = bot
    await say(emu, ANALYST, "/subscribe digest")
    commit(state.store, item("p", PARADE), item("t", TROOPS))
    await say(emu, ANALYST, "/digest_now", replies=2)
    digest = next(m for m in emu.sent(ANALYST) if m.text.startswith("🗞 <b>Digest</b>"))
    entries = re.findall(r"^(\d+)\. <b><a href=\"[^\"]+\">([^<]+)</a></b>", digest.text, re.M)
    assert [n for n, _ in entries] == ["1", "2"]
    buttons = dict(emu.buttons(ANALYST, digest.message_id))
    assert list(buttons) == ["1 👍", "1 👎", "2 👍", "2 👎"]
    assert await press(emu, ANALYST, digest.message_id, buttons["2 👎"]) == "👎 recorded"
    assert [(v.item.title, v.label) for v in state.store.votes()] == [(dict(entries)["2"], DOWN)]


async def test_a_channel_admin_votes_on_an_alert_in_the_channel(
    emu: BotApiEmulator,
    bot: tuple[Application, BotState],  # type: ignore[type-arg]
) -> None:
    app, state = bot
    assert "Subscribed" in await say(emu, ANALYST, f"/subscribe {CHANNEL} instant")
    commit(state.store, item("p", PARADE))
    await run_deliver_locked(app)
    (alert,) = emu.sent(CHANNEL)
    down = dict(emu.buttons(CHANNEL, alert.message_id))["👎"]
    query = emu.user_clicks(CHANNEL, ANALYST, alert.message_id, down)  # the callback query names who pressed
    answer = await asyncio.to_thread(emu.wait_answer, query, 10)
    assert answer is not None and answer["text"] == "👎 recorded"
    assert [(v.user_id, v.item.title, v.label) for v in state.store.votes()] == [(ANALYST, PARADE, DOWN)]
