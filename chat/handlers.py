"""Telegram handlers: parse the update, check access once, call ``chat.commands``, reply.

Handler order: all commands are CommandHandlers (one per command, registered in ``register``); the
application's error handler logs anything a handler raises.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

from telegram import (
    BotCommand,
    CallbackQuery,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Message,
    Update,
    User,
)
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from chat import commands, feed_lists, feedback, feeds, rule_edits
from chat import search as archive
from chat.commands import CommandError
from chat.limits import HEAVY_COST, slow_down_text
from chat.rule_edits import EditError, Proposal
from core import i18n
from core.errors import RuleError
from core.opml import MAX_OPML_BYTES
from delivery.outbox import DeliveryReport, DigestPlan, send_digest
from delivery.render import MAX_MESSAGE, escape, shorten, strip_html, visible_length
from delivery.sender import inline_markup
from rules import load_rules
from service.export_cmd import export_file
from service.labels_cmd import parse_since
from service.quiet import quiet_feeds
from service.state import BotState, state_of
from store import DB_ERRORS, StoreError

log = logging.getLogger(__name__)
_STORE_ERRORS: tuple[type[Exception], ...] = (StoreError, *DB_ERRORS)  # either backend's

Context: TypeAlias = ContextTypes.DEFAULT_TYPE
Answer: TypeAlias = str | tuple[str, InlineKeyboardMarkup]
Handler: TypeAlias = Callable[[Update, Context, BotState, str, list[str]], Awaitable["Answer | Photo"]]
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


@dataclass(frozen=True, slots=True)
class Photo:
    """A command's answer that is an image (PNG bytes) with an HTML caption."""

    png: bytes
    caption: str


def split_reply(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """A reply as messages of at most ``limit`` visible characters (Telegram refuses longer ones), split
    between lines; a ``<pre>`` reply is split inside and each part wrapped again; a single line over the
    limit is cut, as plain text."""
    if visible_length(text) <= limit:
        return [text]
    pre = text.startswith("<pre>") and text.endswith("</pre>")
    lines = [
        line if visible_length(line) <= limit else escape(shorten(strip_html(line), limit))
        for line in (text[5:-6] if pre else text).split("\n")
    ]
    messages: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        length = visible_length(line)
        if current and size + 1 + length > limit:
            messages.append("\n".join(current))
            current, size = [], 0
        size += length + (1 if current else 0)
        current.append(line)
    messages.append("\n".join(current))
    return [f"<pre>{m}</pre>" for m in messages] if pre else messages


async def within_limits(message: Message, state: BotState, user: int, *, cost: float) -> bool:
    """Whether the user's bucket allows ``cost`` now; the first refusal of a burst is answered, the rest
    are dropped without a word."""
    verdict, wait = state.limits.check(user, cost=cost, admin=user in state.config.admins)
    if verdict == "warn":
        log.info("command_rate_limited user=%s wait=%.0f", user, wait)
        await message.reply_text(slow_down_text(wait), parse_mode=None)
    return verdict == "ok"


def reply_language(state: BotState, chat: Chat | None, user: User | None) -> str:
    """The language of the answers to this update (core.i18n.chat_language); a store that cannot say
    (locked, disk error) is no reason not to answer: then the default."""
    try:
        stored = state.store.chat_language(chat.id) if chat is not None else None
    except _STORE_ERRORS:
        stored = None
    code = user.language_code if user is not None else None
    return i18n.chat_language(stored, chat.type if chat else None, code, state.config.interface.language)


ACCESS: dict[Wrapped, str] = {}  # each command handler's access level: "anyone", "manage" or "admin"


def command(
    name: str, *, manage: bool = False, admin_only: bool = False, heavy: bool = False
) -> Callable[[Handler], Wrapped]:
    """The one access-control, rate-limit and reply wrapper every command goes through; a ``heavy``
    command costs :data:`chat.limits.HEAVY_COST` of the user's bucket."""

    def wrap(func: Handler) -> Wrapped:
        @functools.wraps(func)
        async def handler(update: Update, context: Context) -> None:
            message, chat, user = update.effective_message, update.effective_chat, update.effective_user
            if message is None or chat is None:
                return
            state = state_of(context.application)
            with i18n.using(reply_language(state, chat, user)):
                await run(update, context, state, message, chat, user)

        async def run(
            update: Update, context: Context, state: BotState, message: Message, chat: Chat, user: User | None
        ) -> None:
            who = user.id if user else chat.id
            refused = admin_only and who not in state.config.admins  # a refusal is light, even of a heavy command
            if not await within_limits(message, state, who, cost=HEAVY_COST if heavy and not refused else 1.0):
                return
            args = list(context.args or [])
            if sum(len(a) for a in args) > MAX_ARGS_TEXT:
                await message.reply_text(i18n.t("error.too_long"))
                return
            here = str(chat.id)
            target, rest = commands.split_target(args) if manage else (None, args)
            target = target or here
            if admin_only and (user is None or user.id not in state.config.admins):
                await message.reply_text(i18n.t("error.admins_only"))
                return
            if manage and (user is None or not await may_manage(context, state, user.id, target, here, chat.type)):
                await message.reply_text(i18n.t("error.not_manager", target=target), parse_mode=None)
                return
            markup = None
            try:
                answer = await func(update, context, state, target, rest)
                if isinstance(answer, Photo):
                    await message.reply_photo(answer.png, caption=answer.caption)
                    return
                text, markup = answer if isinstance(answer, tuple) else (answer, None)
            except (CommandError, EditError) as exc:
                text = f"⚠️ {escape(str(exc))}"
            except Exception:  # a bug: the user gets an answer, the log gets the traceback, the bot goes on
                log.exception("command_failed command=%s chat=%s", name, here)
                text = i18n.t("error.internal", name=name)
                markup = None
            parts = split_reply(text)
            for index, part in enumerate(parts):
                await message.reply_text(part, reply_markup=markup if index == len(parts) - 1 else None)

        ACCESS[handler] = "admin" if admin_only else "manage" if manage else "anyone"
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
    answer = commands.subscribe(
        state.store, state.rules, target, args, state.clock(), chat_title=title, chat_type=type_
    )
    try:  # alerts and digests have no user to ask: a private chat keeps the language its user's app speaks
        if type_ == "private" and state.store.chat_language(target) is None:
            state.store.set_chat_language(target, i18n.current(), state.clock())
    except _STORE_ERRORS as exc:  # the subscription is stored; its alerts speak the default
        log.warning("chat_language_not_stored chat=%s error=%r", target, exc)
    return answer


@command("language", manage=True)
async def language(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    return commands.set_language(state.store, target, args, state.clock())


@command("unsubscribe", manage=True)
async def unsubscribe(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    return commands.unsubscribe(state.store, target)


@command("subscriptions")
async def subscriptions(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    user = update.effective_user
    everyone = user is not None and user.id in state.config.admins
    return commands.describe(state.store, state.config, state.rules, None if everyone else [target])


@command("digest_time", manage=True)
async def digest_time(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    return commands.digest_time(state.store, state.config, target, args, state.clock())


@command("mute", manage=True)
async def mute(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    return commands.mute(state.store, target, args, state.clock())


@command("rules")
async def rules(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    return commands.list_rules(state.store, state.rules, state.clock())


@command("trend", heavy=True)
async def trend(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> Photo:
    from delivery.trend import render_trend  # matplotlib loads only when used

    sub = state.store.subscription(target)
    tz = ZoneInfo((sub.timezone if sub else None) or state.config.digest.timezone)
    chart = commands.trend(state.store, state.rules, args, state.clock(), tz)
    png = await asyncio.to_thread(render_trend, chart.series, chart.days, chart.title, chart.spikes)
    return Photo(png, chart.caption)


@command("test")  # URL tests have their own limits (chat.feeds.FetchLimits)
async def test(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    message = update.effective_message
    text = (message.text or "") if message else ""
    body = text.split(maxsplit=1)[1] if len(text.split(maxsplit=1)) > 1 else ""
    if feeds.is_url(body) and state.client is not None:
        user = update.effective_user.id if update.effective_user else 0
        limits = None if user in state.config.admins else state.url_tests
        return await feeds.limited_test_url(
            limits, user, state.clock(), state.rules, state.config, state.client, body.strip()
        )
    return commands.test_text(state.rules, body)


def _quiet(state: BotState) -> dict[str, str]:
    """Feed URL → "quiet for 3 d, usually every 2 h", for /status and /feeds."""
    return {q.feed.url: q.line() for q in quiet_feeds(state.store, state.config, state.clock())}


@command("status", admin_only=True)
async def status(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    return commands.status(state.store, state.clock(), quiet=_quiet(state))


MAX_DOCUMENT = 100_000


def _body(update: Update) -> str:
    """What follows the command's first line (a YAML snippet is sent on the lines after the command)."""
    text = update.effective_message.text if update.effective_message else None
    return (text or "").partition("\n")[2]


async def _propose(state: BotState, user: int, file: Path, build: Callable[[str], rule_edits.Edit]) -> Answer:
    """Build the edit, then validate and back-test it off the event loop (other users' commands go on;
    a file changed meanwhile is caught when the proposal is applied)."""
    files = rule_edits.snapshot({*state.config.rule_files, *state.rules.files, file})
    old_text = files.get(str(file))
    if old_text is None:
        raise EditError(f"Cannot read the rule file {file.name}; nothing was changed.")
    edit = build(old_text)
    recent = state.store.recent_items(state.clock() - timedelta(days=7))
    try:
        proposal = await asyncio.to_thread(
            rule_edits.propose, state.rules, file, old_text, edit, user, recent, state.store.subscriptions(), files
        )
    except RuleError as exc:
        problems = "\n".join(escape(line) for line in rule_edits.problems_text(exc))
        return i18n.t("rule_edit.invalid", action=escape(edit.action), problems=problems)
    rule_edits.keep_pending(state.proposals, proposal, state.clock())
    effect = proposal.effect
    lines = [
        i18n.t("rule_edit.valid", action=escape(edit.action), file=escape(file.name)),
        i18n.t("rule_edit.backtest", n=effect.items, added=len(effect.added), removed=len(effect.removed)),
    ]
    lines += [f"+ {escape(i.title[:120])}" for i in effect.added[:5]]
    lines += [f"− {escape(i.title[:120])}" for i in effect.removed[:5]]
    lines += backtest_lines(effect)
    lines.append(escape(feedback.voted_effect(state.rules, proposal.ruleset, feedback.voted_items(state.store)).text()))
    updates = proposal.follow_updates(state.store.subscriptions())
    if updates:
        lines.append(i18n.t("rule_edit.updates", n=len(updates)))
        lines += [f"• {escape(chat)}: {escape(', '.join(rules))}" for chat, rules in updates.items()]
    surging = rule_edits.surge(effect)
    if surging:
        lines.append(surge_warning(effect))
    label = i18n.t("rule_edit.apply_and_update", n=len(updates)) if updates else i18n.t("rule_edit.apply")
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(label, callback_data=f"rules:apply:{proposal.token}"),
                InlineKeyboardButton(i18n.t("rule_edit.cancel"), callback_data=f"rules:cancel:{proposal.token}"),
            ]
        ]
    )
    return "\n".join(lines), keyboard


MAX_SUBSCRIPTIONS_SHOWN = 10
TITLES_SHOWN = 3


def backtest_lines(effect: rule_edits.Backtest) -> list[str]:
    """Per subscription: what it would have received in the 7 days, before → after, with a few titles."""
    if not effect.subscriptions:
        return [i18n.t("rule_edit.no_subscriptions")]
    lines = [i18n.t("rule_edit.per_subscription", before=effect.sent_before, after=effect.sent_after)]
    for sub in effect.subscriptions[:MAX_SUBSCRIPTIONS_SHOWN]:
        name = sub.title or sub.chat
        change = f" (+{len(sub.gained)} −{len(sub.lost)})" if sub.gained or sub.lost else i18n.t("rule_edit.no_change")
        lines.append(f"• {escape(name)}: {len(sub.before)} → {len(sub.after)}{change}")
        lines += [f"   + {escape(i.title[:80])}" for i in sub.gained[:TITLES_SHOWN]]
        lines += [f"   − {escape(i.title[:80])}" for i in sub.lost[:TITLES_SHOWN]]
    hidden = len(effect.subscriptions) - MAX_SUBSCRIPTIONS_SHOWN
    if hidden > 0:
        lines.append(i18n.t("rule_edit.more_subscriptions", n=hidden))
    return lines


def surge_warning(effect: rule_edits.Backtest) -> str:
    return i18n.t("rule_edit.surge", after=effect.sent_after, before=effect.sent_before)


def apply(state: BotState, proposal: Proposal) -> str:
    """Write a confirmed edit (previous text, and the rule lists of the subscriptions it updates, kept for
    /undo) and swap the running rules; refused if any rule file changed since it was proposed."""
    changed = rule_edits.changed_files(proposal, {*state.config.rule_files, *state.rules.files})
    if changed:
        if changed == [proposal.file.name]:
            return i18n.t("rule_edit.file_changed")
        return i18n.t("rule_edit.files_changed", files=escape(", ".join(changed)))
    subs = state.store.subscriptions()
    blocked = rule_edits.blocked_subscriptions(subs, proposal.renames)
    if blocked:
        return i18n.t("rule_edit.subscriptions_changed") + "\n" + "\n".join(f"• {escape(line)}" for line in blocked)
    updates = proposal.follow_updates(subs)
    current = proposal.old_text
    try:
        state.store.push_rule_version(
            str(proposal.file), current, proposal.action, str(proposal.author), state.clock(), follow=updates
        )
    except _STORE_ERRORS as exc:  # nothing is written that /undo could not revert
        log.error("rule_history_failed file=%s error=%r", proposal.file, exc)
        return i18n.t("rule_edit.store_failed", error=escape(str(exc)))
    try:
        rule_edits.write_atomically(proposal.file, proposal.new_text)
    except OSError as exc:
        state.store.pop_rule_change(state.clock())  # the subscriptions get their rule lists back
        log.error("rule_write_failed file=%s error=%r", proposal.file, exc)
        return i18n.t("rule_edit.write_failed", file=escape(proposal.file.name), error=escape(str(exc)))
    state.rules = proposal.ruleset
    also = i18n.t("rule_edit.renamed_follow", n=len(updates)) if updates else ""
    return i18n.t("rule_edit.applied", action=escape(proposal.action), also=also)


@command("rule", admin_only=True)
async def rule(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> Answer:
    if len(args) != 1:
        raise CommandError("rule", i18n.t("rule_edit.give_name"))
    return f"<pre>{escape(rule_edits.show_rule(state.rules, args[0]))}</pre>"


@command("rule_add", admin_only=True, heavy=True)
async def rule_add(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> Answer:
    files = state.config.rule_files
    file = files[0] if files else None
    if file is None:
        raise CommandError("rule_add", i18n.t("rule_edit.no_file"))
    user = update.effective_user.id if update.effective_user else 0
    return await _propose(state, user, file, lambda text: rule_edits.add_rule(text, _body(update)))


@command("rule_edit", admin_only=True, heavy=True)
async def rule_edit(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> Answer:
    if not args:
        raise CommandError("rule_edit", i18n.t("rule_edit.give_name_and_yaml"))
    name = args[0]
    user = update.effective_user.id if update.effective_user else 0
    file = rule_edits.file_of_rule(state.rules, name)
    return await _propose(state, user, file, lambda text: rule_edits.edit_rule(text, name, _body(update)))


@command("rule_delete", admin_only=True, heavy=True)
async def rule_delete(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> Answer:
    if len(args) != 1:
        raise CommandError("rule_delete", i18n.t("rule_edit.give_name"))
    user = update.effective_user.id if update.effective_user else 0
    file = rule_edits.file_of_rule(state.rules, args[0])
    return await _propose(state, user, file, lambda text: rule_edits.delete_rule(text, args[0]))


async def _aliases(update: Update, state: BotState, args: list[str], *, add: bool) -> Answer:
    name = "alias_add" if add else "alias_remove"
    if len(args) < 2:
        raise CommandError(name, i18n.t("rule_edit.give_group_and_aliases"))
    group = args[0]
    message = update.effective_message
    text = (message.text or "") if message else ""
    rest = text.split(maxsplit=2)[2] if len(text.split(maxsplit=2)) > 2 else ""
    aliases = rule_edits.split_aliases(rest)
    user = update.effective_user.id if update.effective_user else 0
    file = rule_edits.file_of_group(state.rules, group)
    return await _propose(state, user, file, lambda t: rule_edits.change_aliases(t, group, aliases, add=add))


@command("alias_add", admin_only=True, heavy=True)
async def alias_add(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> Answer:
    return await _aliases(update, state, args, add=True)


@command("alias_remove", admin_only=True, heavy=True)
async def alias_remove(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> Answer:
    return await _aliases(update, state, args, add=False)


def undo_last(state: BotState) -> str:
    """Restore the file of the latest rule change, byte for byte, with the rule lists of the
    subscriptions it updated, and reload the rules."""
    before = {s.chat_id: s.rules for s in state.store.subscriptions()}
    previous = state.store.pop_rule_change(state.clock())
    if previous is None:
        return i18n.t("undo.nothing")
    file, content, action = previous
    if content is None:
        return i18n.t("undo.no_content")
    path = Path(file)
    current = path.read_text(encoding="utf-8") if path.exists() else None
    rule_edits.write_atomically(path, content)
    try:
        state.rules = load_rules(state.config.rule_files)
    except RuleError as exc:
        if current is not None:
            rule_edits.write_atomically(path, current)
        restored = {
            s.chat_id: before[s.chat_id] for s in state.store.subscriptions() if before.get(s.chat_id) != s.rules
        }
        state.store.push_rule_version(file, content, action, None, state.clock(), follow=restored)
        problems = "\n".join(escape(line) for line in rule_edits.problems_text(exc))
        return i18n.t("undo.invalid", action=escape(action), problems=problems)
    return i18n.t("undo.done", action=escape(action), file=escape(path.name))


@command("undo", admin_only=True)
async def undo(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> Answer:
    return undo_last(state)


async def admin_document(update: Update, context: Context, *, limit: int, refusal: str, too_big: str) -> bytes | None:
    """The bytes of a document an admin sent, at most ``limit`` (checked on the declared size and again
    after download, since the declared size is only a hint); None after replying why not."""
    message, user = update.effective_message, update.effective_user
    if message is None or message.document is None or user is None:
        return None
    state = state_of(context.application)
    if not await within_limits(message, state, user.id, cost=HEAVY_COST if user.id in state.config.admins else 1.0):
        return None
    if user.id not in state.config.admins:
        await message.reply_text(refusal)
        return None
    if (message.document.file_size or 0) > limit:
        await message.reply_text(too_big)
        return None
    try:
        data = bytes(await (await message.document.get_file()).download_as_bytearray())
    except TelegramError as exc:
        await message.reply_text(f"⚠️ Could not download the file ({escape(str(exc))}); nothing was changed.")
        return None
    if len(data) > limit:
        await message.reply_text(too_big)
        return None
    return data


async def on_rule_document(update: Update, context: Context) -> None:
    """A YAML document sent with ``/rule_add`` or ``/rule_edit NAME`` as its caption."""
    data = await admin_document(
        update,
        context,
        limit=MAX_DOCUMENT,
        refusal="⛔ Only the bot's admins may use this command.",
        too_big=f"⚠️ The document is over {MAX_DOCUMENT // 1000} kB; nothing was changed.",
    )
    message, user = update.effective_message, update.effective_user
    if data is None or message is None or user is None:
        return
    state = state_of(context.application)
    try:
        body = data.decode("utf-8")
    except UnicodeDecodeError:
        await message.reply_text("⚠️ The document is not UTF-8 text; nothing was changed.")
        return
    words = (message.caption or "").split()
    markup = None
    try:
        if words[0].split("@")[0] == "/rule_add":
            files = state.config.rule_files
            if not files:
                raise CommandError("rule_add", i18n.t("rule_edit.no_file"))
            answer = await _propose(state, user.id, files[0], lambda text: rule_edits.add_rule(text, body))
        elif len(words) == 2:
            name = words[1]
            file = rule_edits.file_of_rule(state.rules, name)
            answer = await _propose(state, user.id, file, lambda text: rule_edits.edit_rule(text, name, body))
        else:
            raise CommandError("rule_edit", "Give the rule name in the caption.")
        text, markup = answer if isinstance(answer, tuple) else (answer, None)
    except (CommandError, EditError) as exc:
        text = f"⚠️ {escape(str(exc))}"
    await message.reply_text(text, reply_markup=markup)


async def on_rule_button(update: Update, context: Context) -> None:
    """Apply or Cancel of a proposed rule edit; an edit that would send far more (see
    :func:`chat.rule_edits.surge`) asks for a second press, "confirm", before it is applied."""
    query = update.callback_query
    if query is None or not query.data:
        return
    state = state_of(context.application)
    _, verb, token = [*query.data.split(":"), "", ""][:3]
    with i18n.using(reply_language(state, update.effective_chat, query.from_user)):
        await _rule_button(query, state, verb, token)


async def _rule_button(query: CallbackQuery, state: BotState, verb: str, token: str) -> None:
    if query.from_user.id not in state.config.admins:
        await query.answer(i18n.t("rule_edit.admins_only"), show_alert=True)
        return
    entry = state.proposals.get(token)
    made_at = entry.made_at if entry is not None else state.clock()
    proposal = rule_edits.take_pending(state.proposals, token, state.clock())
    if proposal is None:
        await query.answer(i18n.t("rule_edit.not_pending"))
        return
    if proposal == "expired":
        await query.answer(i18n.t("rule_edit.expired_short"), show_alert=True)
        await query.edit_message_text(i18n.t("rule_edit.expired"))
        return
    if verb == "apply" and rule_edits.surge(proposal.effect):
        rule_edits.keep_pending(state.proposals, proposal, state.clock(), made_at=made_at)
        keyboard = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(i18n.t("rule_edit.confirm_button"), callback_data=f"rules:confirm:{token}"),
                    InlineKeyboardButton(i18n.t("rule_edit.cancel"), callback_data=f"rules:cancel:{token}"),
                ]
            ]
        )
        await query.answer()
        await query.edit_message_text(
            surge_warning(proposal.effect) + "\n" + i18n.t("rule_edit.confirm", action=escape(proposal.action)),
            reply_markup=keyboard,
        )
        return
    if verb in ("apply", "confirm"):
        text = apply(state, proposal)
    else:
        text = i18n.t("rule_edit.cancelled", action=escape(proposal.action))
    await query.answer()
    await query.edit_message_text(text)


@command("digest_now", manage=True, heavy=True)
async def digest_now(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> Answer:
    sub = state.store.subscription(target)
    if sub is None or state.sender is None:
        raise CommandError("digest_now", i18n.t("digest_now.no_subscription", chat=target))
    now = state.clock()
    plan = DigestPlan(sub, now, ZoneInfo(sub.timezone or state.config.digest.timezone))
    report = DeliveryReport()
    async with state.lock:
        await send_digest(
            state.store,
            state.sender,
            plan,
            state.config.digest,
            state.clock,
            report,
            rule_titles=state.rule_titles(),
            votes=feedback.signer(state.store),
            language=state.config.interface.language,
        )
    if report.digests:
        return i18n.t("digest_now.sent", chat=escape(target), n=report.sent)
    if report.retried or report.paused_chats or report.dropped:
        return i18n.t("digest_now.retry", chat=escape(target))
    return i18n.t("digest_now.nothing", chat=escape(target))


@command("feeds", admin_only=True)
async def feeds_list(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> Answer:
    return feeds.list_feeds(state.store, quiet=_quiet(state))


@command("feed_add", admin_only=True, heavy=True)
async def feed_add(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> Answer:
    if not args or state.client is None:
        raise CommandError("feed_add", "Give the feed's URL.")
    user = update.effective_user.id if update.effective_user else 0
    name = " ".join(args[1:]) or None
    return await feeds.add_feed(
        state.store, state.config, state.client, args[0], name, user, state.clock(), state.rules
    )


@command("feed_remove", admin_only=True)
async def feed_remove(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> Answer:
    if len(args) != 1:
        raise CommandError("feed_remove", "Give the feed's URL.")
    return feeds.remove_feed(state.store, args[0])


@command("feeds_export", admin_only=True)
async def feeds_export(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> Answer:
    data, count = feed_lists.export_opml(state.store, state.config, state.clock())
    if update.effective_message is not None:
        await update.effective_message.reply_document(data, filename="feeds.opml")
    return f"📤 {count} feeds in feeds.opml. Send an OPML file back (as a document) to import feeds."


@command("feeds_import", admin_only=True)
async def feeds_import(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> Answer:
    return "Send the OPML file as a document: an .opml file, or any file with the caption /feeds_import."


async def on_opml_document(update: Update, context: Context) -> None:
    """An OPML file from an admin (an .opml file in a private chat, or captioned /feeds_import): import it."""
    data = await admin_document(
        update,
        context,
        limit=MAX_OPML_BYTES,
        refusal="⛔ Only the bot's admins may import feeds. Nothing was changed.",
        too_big=f"⚠️ The file is over {MAX_OPML_BYTES // 1_000_000} MB; nothing was imported.",
    )
    message, user = update.effective_message, update.effective_user
    if data is None or message is None or user is None:
        return
    state = state_of(context.application)
    report = await feed_lists.import_opml(state.store, state.config, data, f"import:{user.id}", state.clock())
    await message.reply_text(feed_lists.report_text(report))


@command("quality", manage=True)
async def quality(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> str:
    try:
        days = feedback.parse_days(args)
    except ValueError as exc:
        raise CommandError("quality", str(exc)) from None
    return feedback.quality_report(state.store, state.rules, days, state.clock())


async def on_vote_button(update: Update, context: Context) -> None:
    """A 👍/👎 press under an alert or a digest entry (in a channel: by one of its admins)."""
    query = update.callback_query
    if query is None or not query.data:
        return
    state = state_of(context.application)
    chat = update.effective_chat
    with i18n.using(reply_language(state, chat, query.from_user)):
        try:
            answer = feedback.cast_vote(
                state.store, query.data, query.from_user.id, str(chat.id) if chat else "", state.clock()
            )
        except Exception:  # a store error (disk full, locked): the user is told, the log gets the traceback
            log.exception("vote_failed chat=%s user=%s", chat.id if chat else None, query.from_user.id)
            answer = i18n.t("vote.failed")
    await query.answer(answer)


@command("search")
async def search(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> Answer:
    user = update.effective_user
    if not archive.may_search(state.store, state.config.admins, user.id if user else None, target):
        return i18n.t("search.refused")
    try:
        text, days = archive.split_args(args)
        html, keyboard = archive.search_page(state.store, text, days, state.clock())
    except archive.SearchError as exc:
        raise CommandError("search", str(exc)) from None
    markup = inline_markup(keyboard)
    return (html, markup) if markup else html


async def on_search_button(update: Update, context: Context) -> None:
    """A ◀ / ▶ press under a /search answer: that message shows the other page."""
    query = update.callback_query
    chat = update.effective_chat
    if query is None or not query.data or chat is None:
        return
    state = state_of(context.application)
    with i18n.using(reply_language(state, chat, query.from_user)):
        if not archive.may_search(state.store, state.config.admins, query.from_user.id, str(chat.id)):
            await query.answer(i18n.t("search.refused_button"))
            return
        try:
            html, keyboard = archive.page_from_button(state.store, query.data, state.clock())
        except archive.SearchError as exc:
            await query.answer(str(exc))
            return
        except Exception:  # a store error: the user is told, the log gets the traceback
            log.exception("search_page_failed chat=%s", chat.id)
            await query.answer(i18n.t("search.failed"))
            return
    await query.edit_message_text(html, reply_markup=inline_markup(keyboard))
    await query.answer()


INLINE_CHATS_ASKED = 10  # subscribed groups asked whether an inline user is a member (bounded per query)


async def may_search_inline(context: Context, state: BotState, user_id: int) -> bool:
    """An admin; a user whose own private chat is subscribed; or a member of a subscribed group or
    channel (asked of Telegram, at most :data:`INLINE_CHATS_ASKED` of them)."""
    if user_id in state.config.admins or state.store.subscription(user_id) is not None:
        return True
    chats = [s.chat_id for s in state.store.subscriptions() if s.chat_type != "private" and s.chat_id != str(user_id)]
    for chat in chats[:INLINE_CHATS_ASKED]:
        try:
            member = await context.bot.get_chat_member(chat if chat.startswith("@") else int(chat), user_id)
        except (TelegramError, ValueError):
            continue
        if member.status in ("creator", "administrator", "member", "restricted"):
            return True
    return False


async def on_inline_query(update: Update, context: Context) -> None:
    """``@bot query`` in any chat: the archive's newest matches as articles; a stranger gets none."""
    query = update.inline_query
    if query is None:
        return
    state = state_of(context.application)
    if not await may_search_inline(context, state, query.from_user.id):
        await query.answer([], cache_time=0, is_personal=True)
        return
    offset = int(query.offset) if query.offset.isdigit() else 0
    try:
        results, more = archive.inline_results(state.store, query.query, state.clock(), offset)
    except Exception:
        log.exception("inline_search_failed user=%s", query.from_user.id)
        results, more = [], False
    articles = [
        InlineQueryResultArticle(
            id=r.id,
            title=r.title,
            description=r.description,
            url=r.url,
            input_message_content=InputTextMessageContent(r.html),
        )
        for r in results
    ]
    await query.answer(
        articles, cache_time=10, is_personal=True, next_offset=str(offset + len(results)) if more else ""
    )


EXPORT_DEFAULT = "30d"
MAX_EXPORT_BYTES = 49_000_000  # Telegram takes documents up to 50 MB from bots


@command("export", admin_only=True)
async def export(update: Update, context: Context, state: BotState, target: str, args: list[str]) -> Answer:
    words = list(args)
    fmt: archive.ExportFormat = "jsonl" if "jsonl" in words else "csv"
    words = [w for w in words if w not in ("csv", "jsonl")]
    try:
        period = parse_since(words[0] if words else EXPORT_DEFAULT)
    except ValueError as exc:
        raise CommandError("export", str(exc)) from None
    rule = words[1] if len(words) > 1 else None
    if rule is not None and rule not in {r.name for r in state.rules.rules}:
        raise CommandError("export", f"there is no rule named {rule!r}")
    since = state.clock() - period
    name = f"export-{state.clock():%Y%m%d}{'-' + rule if rule else ''}.{fmt}"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        count = await asyncio.to_thread(export_file, state.store.target, path, fmt, since=since, rule=rule)
        size = path.stat().st_size
        if size > MAX_EXPORT_BYTES:
            return (
                f"⚠️ The export is {size // 1_000_000} MB, over Telegram's 50 MB for a bot's document. "
                "Ask for a shorter period (e.g. /export 7d) or run <code>bot.py export</code> on the server."
            )
        if update.effective_message is not None:
            await update.effective_message.reply_document(path.read_bytes(), filename=name)
    what = f"items matched by {escape(rule)}" if rule else "matched items"
    return f"📤 {count} {what} seen in the last {escape(words[0] if words else EXPORT_DEFAULT)}, in {escape(name)}."


HANDLERS = {
    "start": start,
    "help": start,
    "subscribe": subscribe,
    "unsubscribe": unsubscribe,
    "subscriptions": subscriptions,
    "digest_time": digest_time,
    "mute": mute,
    "rules": rules,
    "trend": trend,
    "test": test,
    "status": status,
    "rule": rule,
    "rule_add": rule_add,
    "rule_edit": rule_edit,
    "rule_delete": rule_delete,
    "alias_add": alias_add,
    "alias_remove": alias_remove,
    "undo": undo,
    "digest_now": digest_now,
    "language": language,
    "feeds": feeds_list,
    "feed_add": feed_add,
    "feed_remove": feed_remove,
    "feeds_export": feeds_export,
    "feeds_import": feeds_import,
    "quality": quality,
    "search": search,
    "export": export,
}


def register(app: Application) -> None:  # type: ignore[type-arg]
    for name, handler in HANDLERS.items():
        app.add_handler(CommandHandler(name, handler))
    app.add_handler(CallbackQueryHandler(on_rule_button, pattern=r"^rules:(apply|confirm|cancel):"))
    app.add_handler(CallbackQueryHandler(on_vote_button, pattern=feedback.CALLBACK_PATTERN))
    app.add_handler(CallbackQueryHandler(on_search_button, pattern=archive.CALLBACK_PATTERN))
    app.add_handler(InlineQueryHandler(on_inline_query))
    app.add_handler(
        MessageHandler(filters.Document.ALL & filters.CaptionRegex(r"^/rule_(add|edit)\b"), on_rule_document)
    )
    opml_file = filters.Document.FileExtension("opml") & filters.ChatType.PRIVATE
    opml_caption = filters.Document.ALL & filters.CaptionRegex(r"^/feeds_import\b")
    app.add_handler(MessageHandler(opml_file | opml_caption, on_opml_document))


def bot_commands(lang: str = i18n.DEFAULT) -> list[BotCommand]:
    """The command menu in ``lang`` (setMyCommands once per language, with its ``language_code``)."""
    return [BotCommand(name, text) for name, _, text in commands.command_list(lang)]
