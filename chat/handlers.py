"""Telegram handlers: parse the update, check access once, call ``chat.commands``, reply.

Handler order: all commands are CommandHandlers (one per command, registered in ``register``); the
application's error handler logs anything a handler raises.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeAlias

from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import Application, CommandHandler, ContextTypes

from chat import commands
from chat.commands import COMMANDS, CommandError
from delivery.render import escape
from service.state import BotState, state_of

log = logging.getLogger(__name__)

Context: TypeAlias = ContextTypes.DEFAULT_TYPE
Handler: TypeAlias = Callable[[Update, Context, BotState, str, list[str]], Awaitable[str]]
MAX_ARGS_TEXT = 4096


async def may_manage(
    context: Context, state: BotState, user_id: int, target: str, here: str, here_type: str | None
) -> bool:
    """Config admins manage everything; a private chat's user their own chat; a chat's administrators
    that chat (asked of Telegram, so it also works for a channel named from a private chat)."""
    if user_id in state.config.admins:
        return True
    if target == here and here_type == "private":
        return True
    try:
        member = await context.bot.get_chat_member(target if target.startswith("@") else int(target), user_id)
    except (TelegramError, ValueError) as exc:
        log.info("chat_member_check_failed chat=%s user=%s error=%r", target, user_id, exc)
        return False
    return member.status in ("creator", "administrator")


Wrapped: TypeAlias = Callable[[Update, Context], Coroutine[Any, Any, None]]


def command(name: str, *, manage: bool = False, admin_only: bool = False) -> Callable[[Handler], Wrapped]:
    """The one access-control and reply wrapper every command goes through."""

    def wrap(func: Handler) -> Wrapped:
        @functools.wraps(func)
        async def handler(update: Update, context: Context) -> None:
            message, chat, user = update.effective_message, update.effective_chat, update.effective_user
            if message is None or chat is None:
                return
            state = state_of(context.application)
            args = list(context.args or [])
            if sum(len(a) for a in args) > MAX_ARGS_TEXT:
                await message.reply_text("That message is too long.")
                return
            here = str(chat.id)
            target, rest = commands.split_target(args) if manage else (None, args)
            target = target or here
            if admin_only and (user is None or user.id not in state.config.admins):
                await message.reply_text("⛔ Only the bot's admins may use this command.")
                return
            if manage and (user is None or not await may_manage(context, state, user.id, target, here, chat.type)):
                await message.reply_text(
                    f"⛔ Only administrators of {target} (or the bot's admins) may do that. Nothing was changed.",
                    parse_mode=None,
                )
                return
            try:
                text = await func(update, context, state, target, rest)
            except CommandError as exc:
                text = f"⚠️ {escape(str(exc))}"
            await message.reply_text(text)

        return handler

    return wrap


@command("start")
async def start(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    return commands.help_text(update.effective_user.id if update.effective_user else None)


@command("subscribe", manage=True)
async def subscribe(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    title = type_ = None
    chat = update.effective_chat
    if chat is not None and str(chat.id) == target:
        title, type_ = chat.title or chat.full_name, chat.type
    return commands.subscribe(state.store, state.rules, target, args, state.clock(), chat_title=title, chat_type=type_)


@command("unsubscribe", manage=True)
async def unsubscribe(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    return commands.unsubscribe(state.store, target)


@command("subscriptions")
async def subscriptions(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    user = update.effective_user
    everyone = user is not None and user.id in state.config.admins
    return commands.describe(state.store, state.config, None if everyone else [target])


@command("digest_time", manage=True)
async def digest_time(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    return commands.digest_time(state.store, state.config, target, args, state.clock())


@command("mute", manage=True)
async def mute(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    return commands.mute(state.store, target, args, state.clock())


@command("rules")
async def rules(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    return commands.list_rules(state.store, state.rules, state.clock())


@command("test")
async def test(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    message = update.effective_message
    text = (message.text or "") if message else ""
    body = text.split(maxsplit=1)[1] if len(text.split(maxsplit=1)) > 1 else ""
    return commands.test_text(state.rules, body)


@command("status", admin_only=True)
async def status(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    return commands.status(state.store, state.clock())


HANDLERS = {
    "start": start,
    "help": start,
    "subscribe": subscribe,
    "unsubscribe": unsubscribe,
    "subscriptions": subscriptions,
    "digest_time": digest_time,
    "mute": mute,
    "rules": rules,
    "test": test,
    "status": status,
}


def register(app: Application) -> None:  # type: ignore[type-arg]
    for name, handler in HANDLERS.items():
        app.add_handler(CommandHandler(name, handler))


def bot_commands() -> list[BotCommand]:
    return [BotCommand(name, text) for name, _, text in COMMANDS]
