"""Editing rules from Telegram: validated, back-tested, confirmed, written atomically, undoable."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chat.rule_edits import MAX_PENDING, PROPOSAL_TTL, EditError, change_aliases, split_aliases
from core.config import FeedConfig
from core.models import Item
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
    # updates are handled in order: when the admin's Cancel lands, the stranger's Apply was refused
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
