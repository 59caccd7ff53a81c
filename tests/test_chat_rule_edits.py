"""Editing rules from Telegram: validated, back-tested, confirmed, written atomically, undoable."""

from __future__ import annotations

import asyncio
import difflib
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chat.rule_edits import (
    MAX_PENDING,
    PROPOSAL_TTL,
    Backtest,
    EditError,
    SubscriptionEffect,
    add_rule,
    change_aliases,
    delete_rule,
    edit_rule,
    split_aliases,
    surge,
)
from core.config import FeedConfig
from core.models import Item
from rules import load_rules, parse_rule_text
from service.state import BotState
from store import ProcessedItem
from tests.running import running_bot
from tgemu import BotApiEmulator

REPO = Path(__file__).resolve().parents[1]
TOKEN = "5151:RULES-token"
ADMIN, OTHER = 42, 7
NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
GRAIN = "Россия и КНДР договорились о поставках зерна"


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        e.add_chat(ADMIN, "private")
        e.add_chat(OTHER, "private")
        yield e


@pytest.fixture
async def bot(emu: BotApiEmulator, tmp_path: Path) -> AsyncIterator[tuple[BotState, Path]]:
    (tmp_path / "rules").mkdir()
    rule_file = tmp_path / "rules" / "dprk_russia.yaml"
    shutil.copy(REPO / "rules" / "dprk_russia.yaml", rule_file)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"telegram: {{base_url: '{emu.base_url}', base_file_url: '{emu.base_file_url}'}}\nadmins: [{ADMIN}]\n"
        "storage: {path: bot.sqlite3}\n",
        encoding="utf-8",
    )
    async with running_bot(config, TOKEN, NOW) as state:
        feed = FeedConfig("https://news.example/rss", "News", "ru", 600)
        state.store.sync_feeds([feed], NOW)
        feed_id = state.store.feed_by_url(feed.url).id  # type: ignore[union-attr]
        state.store.commit_poll(
            feed_id,
            NOW,
            ok=True,
            etag=None,
            last_modified=None,
            error=None,
            next_poll_at=NOW,
            items=[ProcessedItem(Item(feed.url, "g1", GRAIN, "", published=NOW), (), False)],
        )
        yield state, rule_file


async def say(emu: BotApiEmulator, user: int, text: str) -> Any:
    before = len(emu.sent(user))
    emu.user_sends(user, user, text)
    replies = await asyncio.to_thread(emu.wait_for, user, before + 1, 10)
    assert len(replies) > before, f"no reply to {text!r}"
    return replies[-1]


async def click(emu: BotApiEmulator, user: int, message_id: int, data: str, expect: str) -> str:
    emu.user_clicks(user, user, message_id, data)
    for _ in range(100):
        text = next(m.text for m in emu.sent(user) if m.message_id == message_id)
        if expect in text:
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"{expect!r} never appeared")


NEW_RULE = f"""/rule_add
name: dprk_russia_any
description: Any sentence naming both countries
all: [DPRK, RUSSIA]
near: sentence
examples:
  match: ["{GRAIN}"]
"""


async def test_add_backtest_confirm_then_undo_byte_for_byte(emu: BotApiEmulator, bot: tuple[BotState, Path]) -> None:
    state, rule_file = bot
    original = rule_file.read_bytes()
    proposal = await say(emu, ADMIN, NEW_RULE)
    assert "valid, its examples pass" in proposal.text
    assert "<b>+1</b> alerts" in proposal.text and GRAIN in proposal.text
    assert rule_file.read_bytes() == original, "nothing is written before confirmation"
    token = proposal.reply_markup["inline_keyboard"][0][0]["callback_data"]
    assert "Only the bot's admins" not in await click(emu, ADMIN, proposal.message_id, token, "Applied")
    text = rule_file.read_text(encoding="utf-8")
    assert "name: dprk_russia_any" in text
    assert "# How it is built (read this before editing):" in text, "hand-written comments survive"
    assert state.rules.rule("dprk_russia_any") is not None
    assert state.pipeline.rules().rule("dprk_russia_any") is not None, "the next poll cycle uses it"
    reply = await say(emu, ADMIN, "/undo")
    assert "Undone" in reply.text
    assert rule_file.read_bytes() == original
    assert state.rules.rule("dprk_russia_any") is None


async def test_unauthorised_users_change_nothing(emu: BotApiEmulator, bot: tuple[BotState, Path]) -> None:
    state, rule_file = bot
    original = rule_file.read_bytes()
    for command in (NEW_RULE, "/rule_delete dprk_in_kursk", "/alias_add DPRK Пэктусан", "/undo", "/rule dprk_in_kursk"):
        assert "Only the bot's admins" in (await say(emu, OTHER, command)).text
    proposal = await say(emu, ADMIN, "/rule_delete dprk_in_kursk")
    token = proposal.reply_markup["inline_keyboard"][0][0]["callback_data"]
    emu.user_clicks(ADMIN, OTHER, proposal.message_id, token)  # someone else presses the admin's button
    cancel = proposal.reply_markup["inline_keyboard"][0][1]["callback_data"]
    # the stranger's press is refused whenever it is handled (their updates run in a lane of their own)
    await click(emu, ADMIN, proposal.message_id, cancel, "Cancelled")
    assert rule_file.read_bytes() == original
    assert state.rules.rule("dprk_in_kursk") is not None


async def test_invalid_edit_is_refused_with_line_numbers(emu: BotApiEmulator, bot: tuple[BotState, Path]) -> None:
    _state, rule_file = bot
    original = rule_file.read_bytes()
    reply = await say(emu, ADMIN, "/rule_edit dprk_in_kursk\nall: [DPRK, KURSKK]\n")
    assert "is not valid; nothing was changed" in reply.text
    assert "KURSKK" in reply.text and "dprk_russia.yaml:" in reply.text
    assert reply.reply_markup is None
    assert rule_file.read_bytes() == original
    reply = await say(emu, ADMIN, "/rule_edit dprk_in_kursk\na: &x [1]\nb: *x\n")
    assert "aliases" in reply.text


async def test_show_a_rule_and_cancel_an_edit(emu: BotApiEmulator, bot: tuple[BotState, Path]) -> None:
    _state, rule_file = bot
    assert "name: dprk_in_kursk" in (await say(emu, ADMIN, "/rule dprk_in_kursk")).text
    original = rule_file.read_bytes()
    proposal = await say(emu, ADMIN, "/alias_add KURSK Белгородская область, Брянская область")
    cancel = proposal.reply_markup["inline_keyboard"][0][1]["callback_data"]
    await click(emu, ADMIN, proposal.message_id, cancel, "Cancelled")
    assert rule_file.read_bytes() == original
    assert "Nothing to undo" in (await say(emu, ADMIN, "/undo")).text
    assert "Not aliases of KURSK: Марс" in (await say(emu, ADMIN, "/alias_remove KURSK Марс")).text
    removal = await say(emu, ADMIN, "/alias_remove KURSK Kursk")
    # the rule dprk_in_kursk has an English example about Kursk: the edit would break it, so it is refused
    assert "alias_remove KURSK: Kursk</b> is not valid" in removal.text and "examples.match" in removal.text
    assert rule_file.read_bytes() == original


def test_alias_helpers() -> None:
    assert split_aliases("Северная Корея, КНДР") == ["Северная Корея", "КНДР"]
    assert split_aliases("КНДР Пхеньян") == ["КНДР", "Пхеньян"]
    text = "version: 1\ngroups:\n  A:\n    aliases: [x]  # keep me\nrules: []\n"
    added = change_aliases(text, "A", ["y"], add=True).text
    assert "keep me" in added and "y" in added
    with pytest.raises(EditError, match="Not aliases of A"):
        change_aliases(text, "A", ["zz"], add=False)


async def test_rule_sent_as_a_yaml_document(emu: BotApiEmulator, bot: tuple[BotState, Path]) -> None:
    _state, rule_file = bot
    original = rule_file.read_bytes()
    yaml_text = NEW_RULE.split("\n", 1)[1].encode()
    before = len(emu.sent(ADMIN))
    emu.user_sends_document(ADMIN, ADMIN, "rule.yaml", yaml_text, caption="/rule_add")
    replies = await asyncio.to_thread(emu.wait_for, ADMIN, before + 1, 10)
    assert "<b>+1</b> alerts" in replies[-1].text and replies[-1].reply_markup is not None
    before = len(emu.sent(OTHER))
    emu.user_sends_document(OTHER, OTHER, "rule.yaml", yaml_text, caption="/rule_add")
    replies = await asyncio.to_thread(emu.wait_for, OTHER, before + 1, 10)
    assert "Only the bot's admins" in replies[-1].text
    before = len(emu.sent(ADMIN))
    emu.user_sends_document(ADMIN, ADMIN, "big.yaml", b"# x\n" * 40_000, caption="/rule_edit dprk_in_kursk")
    replies = await asyncio.to_thread(emu.wait_for, ADMIN, before + 1, 10)
    assert "over 100 kB" in replies[-1].text
    assert rule_file.read_bytes() == original


def buttons(proposal: Any) -> tuple[str, str]:
    row = proposal.reply_markup["inline_keyboard"][0]
    return row[0]["callback_data"], row[1]["callback_data"]


async def test_a_proposal_expires_after_an_hour_and_writes_nothing(
    emu: BotApiEmulator, bot: tuple[BotState, Path]
) -> None:
    state, rule_file = bot
    original = rule_file.read_bytes()
    proposal = await say(emu, ADMIN, "/rule_delete dprk_in_kursk")
    apply, _cancel = buttons(proposal)
    state.clock = lambda: NOW + PROPOSAL_TTL + timedelta(minutes=1)
    text = await click(emu, ADMIN, proposal.message_id, apply, "expired")
    assert text == "⌛ This proposal expired; send the edit again. Nothing was written."
    assert rule_file.read_bytes() == original and state.rules.rule("dprk_in_kursk") is not None
    assert state.proposals == {}
    assert "Nothing to undo" in (await say(emu, ADMIN, "/undo")).text
    # sent again, it applies within the hour
    proposal = await say(emu, ADMIN, "/rule_delete dprk_in_kursk")
    state.clock = lambda: NOW + PROPOSAL_TTL + timedelta(minutes=59)
    await click(emu, ADMIN, proposal.message_id, buttons(proposal)[0], "Applied")
    assert state.rules.rule("dprk_in_kursk") is None


async def test_at_most_20_proposals_wait_and_the_oldest_is_dropped(
    emu: BotApiEmulator, bot: tuple[BotState, Path]
) -> None:
    state, rule_file = bot
    original = rule_file.read_bytes()
    proposals = [await say(emu, ADMIN, "/rule_delete dprk_in_kursk") for _ in range(MAX_PENDING + 1)]
    assert len(state.proposals) == MAX_PENDING
    emu.user_clicks(ADMIN, ADMIN, proposals[0].message_id, buttons(proposals[0])[0])  # dropped: refused
    assert "Nothing to undo" in (await say(emu, ADMIN, "/undo")).text  # updates are handled in order
    assert rule_file.read_bytes() == original
    await click(emu, ADMIN, proposals[1].message_id, buttons(proposals[1])[0], "Applied")
    assert state.rules.rule("dprk_in_kursk") is None


async def test_a_proposal_made_before_another_edit_is_refused_not_applied_over_it(
    emu: BotApiEmulator, bot: tuple[BotState, Path]
) -> None:
    state, rule_file = bot
    first = await say(emu, ADMIN, "/alias_add KURSK Белгородская область, Брянская область")
    second = await say(emu, ADMIN, "/rule_delete dprk_in_kursk")
    await click(emu, ADMIN, first.message_id, buttons(first)[0], "Applied")
    after_first = rule_file.read_bytes()
    text = await click(emu, ADMIN, second.message_id, buttons(second)[0], "nothing was written")
    assert text.startswith("⚠️ The file changed since this edit was proposed")
    assert rule_file.read_bytes() == after_first, "the newer file stays"
    assert "Белгородская область" in after_first.decode()
    assert state.rules.rule("dprk_in_kursk") is not None


KURSK_ITEM = "Северокорейские военные участвовали в освобождении Курской области"
KIM_KURSK = "Ким Чен Ын встретился с семьями погибших в Курской области"


def seed(state: BotState, *titles: str) -> None:
    """Items seen at NOW (so inside the back-test's 7 days)."""
    feed = state.store.feed_by_url("https://news.example/rss")
    assert feed is not None
    items = [ProcessedItem(Item(feed.url, f"s{hash(t)}", t, "", published=NOW), (), False) for t in titles]
    state.store.commit_poll(
        feed.id, NOW, ok=True, etag=None, last_modified=None, error=None, next_poll_at=NOW, items=items
    )


async def test_deleting_a_followed_rule_updates_the_subscriptions_and_undo_restores_them(
    emu: BotApiEmulator, bot: tuple[BotState, Path]
) -> None:
    state, _rule_file = bot
    seed(state, KURSK_ITEM, KIM_KURSK)
    state.store.upsert_subscription(-300, NOW, rules=("dprk_in_kursk", "putin_kim"), chat_title="Desk")
    proposal = await say(emu, ADMIN, "/rule_delete dprk_in_kursk")
    # the items still match other rules, so overall nothing is lost; the chat that follows the rule loses both
    assert "<b>−0</b> alerts" in proposal.text
    assert "• Desk: 2 → 0 (+0 −2)" in proposal.text and f"   − {KIM_KURSK}" in proposal.text
    assert "updates 1 subscription(s):\n• -300: putin_kim" in proposal.text
    assert proposal.reply_markup["inline_keyboard"][0][0]["text"] == "✅ Apply and update 1 subscription(s)"
    await click(emu, ADMIN, proposal.message_id, buttons(proposal)[0], "Applied")
    sub = state.store.subscription(-300)
    assert sub is not None and sub.rules == ("putin_kim",)
    assert "Undone" in (await say(emu, ADMIN, "/undo")).text
    sub = state.store.subscription(-300)
    assert sub is not None and sub.rules == ("dprk_in_kursk", "putin_kim"), "undo gives the chat its rule back"


async def test_renaming_a_followed_rule_carries_the_subscriptions_along(
    emu: BotApiEmulator, bot: tuple[BotState, Path]
) -> None:
    state, rule_file = bot
    seed(state, KURSK_ITEM)
    state.store.upsert_subscription(-300, NOW, rules=("dprk_in_kursk",), chat_title="Desk")
    snippet = "name: dprk_kursk\nall: [DPRK, KURSK]\nnear: sentence\nexamples:\n  match: ['" + KURSK_ITEM + "']\n"
    proposal = await say(emu, ADMIN, "/rule_edit dprk_in_kursk\n" + snippet)
    assert "• Desk: 1 → 1 (no change)" in proposal.text
    await click(emu, ADMIN, proposal.message_id, buttons(proposal)[0], "Applied")
    sub = state.store.subscription(-300)
    assert sub is not None and sub.rules == ("dprk_kursk",)
    assert "name: dprk_kursk" in rule_file.read_text(encoding="utf-8")
    assert "no such rule" not in (await say(emu, ADMIN, "/subscriptions")).text


@pytest.mark.parametrize(
    ("name", "rules", "source", "expected"),
    [
        ("a chat following only that rule", ("dprk_in_kursk",), "chat", "follows only dprk_in_kursk"),
        (
            "a subscription from config.yaml",
            ("dprk_in_kursk", "putin_kim"),
            "config",
            "follows dprk_in_kursk in config.yaml",
        ),
    ],
)
async def test_deleting_a_rule_that_would_leave_a_chat_without_deliveries_is_refused(
    emu: BotApiEmulator, bot: tuple[BotState, Path], name: str, rules: tuple[str, ...], source: str, expected: str
) -> None:
    state, rule_file = bot
    original = rule_file.read_bytes()
    state.store.upsert_subscription(-300, NOW, rules=rules, source=source, chat_title="Desk")
    reply = await say(emu, ADMIN, "/rule_delete dprk_in_kursk")
    assert "would stop deliveries; nothing was changed" in reply.text, name
    assert "• Desk (-300) " + expected in reply.text, name
    assert reply.reply_markup is None and state.proposals == {}
    assert rule_file.read_bytes() == original


async def test_subscriptions_say_when_a_followed_rule_does_not_exist(
    emu: BotApiEmulator, bot: tuple[BotState, Path]
) -> None:
    state, _ = bot
    state.store.upsert_subscription(ADMIN, NOW, rules=("gone_rule",))
    state.store.upsert_subscription(-300, NOW, rules=("gone_rule", "putin_kim"), chat_title="Desk")
    lines = (await say(emu, ADMIN, "/subscriptions")).text.split("\n")
    assert "⚠️ no such rule: gone_rule — it gets nothing" in next(line for line in lines if f"({ADMIN})" in line)
    desk = next(line for line in lines if "Desk" in line)
    assert "no such rule: gone_rule;" in desk and "it gets nothing" not in desk


GRAINS = [f"Россия и КНДР договорились о поставках зерна, партия {n}" for n in range(8)]


async def test_an_edit_that_would_send_far_more_needs_a_second_press(
    emu: BotApiEmulator, bot: tuple[BotState, Path]
) -> None:
    state, rule_file = bot
    seed(state, KURSK_ITEM, *GRAINS)
    state.store.upsert_subscription(ADMIN, NOW, mode="both", chat_title="Desk")
    state.store.upsert_subscription(-300, NOW, mode="instant", chat_title="Alerts")
    original = rule_file.read_bytes()
    proposal = await say(emu, ADMIN, NEW_RULE)
    assert "• Desk: 1 → 10 (+9 −0)" in proposal.text
    assert "• Alerts: 1 → 1 (no change)" in proposal.text, "the new rule is digest-only: no instant alerts"
    assert "This edit would send 11 items where the last 7 days sent 2." in proposal.text
    apply, _cancel = buttons(proposal)
    warned = await click(emu, ADMIN, proposal.message_id, apply, "Yes, apply it")
    assert "needs a second confirmation" in warned
    assert rule_file.read_bytes() == original, "the first press writes nothing"
    message = next(m for m in emu.sent(ADMIN) if m.message_id == proposal.message_id)
    confirm = message.reply_markup["inline_keyboard"][0][0]["callback_data"]
    assert confirm.startswith("rules:confirm:")
    await click(emu, ADMIN, proposal.message_id, confirm, "Applied")
    assert state.rules.rule("dprk_russia_any") is not None


def test_surge_thresholds() -> None:
    def effect(before: int, after: int) -> Any:
        items = [Item("u", str(n), "t", "") for n in range(max(before, after))]
        sub = SubscriptionEffect("1", None, (), (), tuple(items[:before]), tuple(items[:after]))
        return Backtest(len(items), (), (), (sub,))

    assert not surge(effect(0, 1)), "one new item is not a surge"
    assert surge(effect(1, 10)), "ten times as much"
    assert not surge(effect(10, 25)), "two and a half times"
    assert surge(effect(100, 151)), "more than 50 more"
    assert not surge(effect(100, 150))
    assert not surge(effect(10, 0)), "sending less never needs a second press"


async def test_proposals_on_two_files_cannot_leave_the_running_rules_behind_the_disk(
    emu: BotApiEmulator, tmp_path: Path
) -> None:
    (tmp_path / "rules").mkdir()
    shutil.copy(REPO / "rules" / "dprk_russia.yaml", tmp_path / "rules" / "a_dprk_russia.yaml")
    (tmp_path / "rules" / "b_extra.yaml").write_text(
        "version: 1\ngroups:\n  GRAIN:\n    kind: keywords\n    aliases: [зерно]\n"
        "rules:\n  - name: grain\n    all: [GRAIN]\n    examples:\n      match: ['поставки зерна']\n",
        encoding="utf-8",
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        f"telegram: {{base_url: '{emu.base_url}'}}\nadmins: [{ADMIN}]\nstorage: {{path: bot.sqlite3}}\n",
        encoding="utf-8",
    )

    def on_disk(state: BotState) -> tuple[list[str], dict[str, tuple[object, ...]]]:
        disk = load_rules(state.config.rule_files)
        return [r.name for r in disk.rules], {n: tuple(map(str, g.aliases)) for n, g in disk.groups.items()}

    def running(state: BotState) -> tuple[list[str], dict[str, tuple[object, ...]]]:
        return [r.name for r in state.rules.rules], {
            n: tuple(map(str, g.aliases)) for n, g in state.rules.groups.items()
        }

    async with running_bot(config, TOKEN, NOW) as state:
        first = await say(emu, ADMIN, "/alias_add KURSK Белгородская область, Брянская область")
        second = await say(emu, ADMIN, "/rule_delete grain")
        await click(emu, ADMIN, first.message_id, buttons(first)[0], "Applied")
        assert running(state) == on_disk(state)
        text = await click(emu, ADMIN, second.message_id, buttons(second)[0], "nothing was written")
        assert text.startswith("⚠️ The rule files (a_dprk_russia.yaml) changed since this edit was proposed")
        assert running(state) == on_disk(state), "the running rules are the files on disk"
        assert state.rules.rule("grain") is not None
        again = await say(emu, ADMIN, "/rule_delete grain")
        await click(emu, ADMIN, again.message_id, buttons(again)[0], "Applied")
        assert running(state) == on_disk(state) and state.rules.rule("grain") is None
        assert any("Белгородская область" in str(a) for a in state.rules.groups["KURSK"].aliases)


def changed_lines(before: str, after: str) -> tuple[list[int], list[str]]:
    """The original line numbers (1-based) removed or replaced, and the lines added."""
    removed: list[int] = []
    added: list[str] = []
    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed += range(i1 + 1, i2 + 1)
            added += after.splitlines()[j1:j2]
    return removed, added


def rule_lines(text: str, name: str) -> range:
    """The lines (1-based) of rule ``name`` in the shipped file, found by its "- name:" line."""
    lines = text.splitlines()
    start = lines.index(f"  - name: {name}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("  - name:")), len(lines))
    return range(start + 1, end + 1)


SHIPPED = (REPO / "rules" / "dprk_russia.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "edit", "only_in"),
    [
        ("add a rule", lambda t: add_rule(t, "name: x_any\nall: [DPRK, RUSSIA]\n"), None),
        ("edit a rule", lambda t: edit_rule(t, "dprk_in_kursk", "all: [DPRK, KURSK]\nnear: 20\n"), "dprk_in_kursk"),
        ("rename a rule", lambda t: edit_rule(t, "putin_kim", "name: putin_and_kim\nall: [DPRK]\n"), "putin_kim"),
        ("delete a rule", lambda t: delete_rule(t, "dprk_russia_title_pair"), "dprk_russia_title_pair"),
        ("add aliases", lambda t: change_aliases(t, "DPRK", ["Пэктусан", "a: b"], add=True), None),
        ("remove aliases", lambda t: change_aliases(t, "DPRK", ["Раджин", "Расон"], add=False), "DPRK aliases"),
    ],
)
def test_an_applied_edit_changes_only_its_own_lines(name: str, edit: Any, only_in: str | None) -> None:
    result = edit(SHIPPED)
    removed, added = changed_lines(SHIPPED, result.text)
    if only_in is None:  # an addition: nothing of the file is removed or rewritten
        assert removed == [], f"{name}: rewrote lines {removed[:10]} of the shipped file"
        assert added, name
    elif only_in == "DPRK aliases":
        assert [SHIPPED.splitlines()[n - 1].split()[1] for n in removed] == ["Раджин", "Расон"], name
        assert added == []
    else:
        assert removed and set(removed) <= set(rule_lines(SHIPPED, only_in)), f"{name}: changed lines {removed[:10]}"
    assert parse_rule_text(result.text, "dprk_russia.yaml") is not None, "and the file still loads"


def test_a_flow_alias_list_is_edited_on_its_own_line() -> None:
    text = "version: 1\ngroups:\n  A:\n    aliases: [x, 'y z']  # keep me\nrules: [{name: r, all: [A]}]\n"
    result = change_aliases(text, "A", ["q"], add=True)
    assert result.text == text.replace("[x, 'y z']", "[x, 'y z', q]")


async def test_a_russian_admin_gets_the_proposal_and_its_buttons_in_russian(
    emu: BotApiEmulator, bot: tuple[BotState, Path]
) -> None:
    _, rule_file = bot
    original = rule_file.read_bytes()
    assert "по-русски" in (await say(emu, ADMIN, "/language ru")).text
    proposal = await say(emu, ADMIN, "/rule_delete dprk_in_kursk")
    assert "📝 <b>rule_delete dprk_in_kursk</b> в " in proposal.text and "правка корректна" in proposal.text
    apply_button, cancel_button = proposal.reply_markup["inline_keyboard"][0]
    assert (apply_button["text"], cancel_button["text"]) == ("✅ Применить", "✖ Отмена")
    cancelled = await click(emu, ADMIN, proposal.message_id, cancel_button["callback_data"], "Отменено")
    assert cancelled == "✖ Отменено rule_delete dprk_in_kursk; ничего не изменилось."
    assert rule_file.read_bytes() == original
    assert (await say(emu, ADMIN, "/undo")).text == "Нечего отменять."
