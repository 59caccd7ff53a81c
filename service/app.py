"""The running bot: python-telegram-bot's Application, its JobQueue, and the pipeline wired together.

Jobs (named, on the Application's JobQueue, which runs on APScheduler):
    poll      every ``TICK`` s: poll the due feeds, match, queue; then send instant alerts at once
    deliver   every ``DELIVER_EVERY`` s: retry instant alerts whose back-off has passed
    digests   every ``TICK`` s: send each subscription's digest when its local time has come
    prune     daily: drop the text of items older than ``RETENTION_DAYS`` (their ids stay)

Shared clients are opened in ``post_init`` and closed in ``post_shutdown``; SIGINT/SIGTERM stop the
updater, let the job in flight finish, then close the store.
"""

from __future__ import annotations

import logging
import signal
import sys
from datetime import datetime

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, ContextTypes, Defaults

from chat.handlers import bot_commands, register
from chat.limits import PerUserUpdates
from core.config import Config
from core.errors import ProblemError
from delivery.outbox import deliver_digests, deliver_instant, due_digests, render_digest_parts
from delivery.sender import Sender
from rules import load_rules
from service.checks import print_problems, storage_problem
from service.metrics import MetricsServer
from service.state import BotState, state_of, utcnow
from store import Store, StoreError
from watchers import PollSettings, make_client

log = logging.getLogger(__name__)

TICK = 30.0
DELIVER_EVERY = 10.0
RETENTION_DAYS = 60  # seen items older than this are deleted (unless still queued); dedup needs them, so keep it long


async def notify_admins(app: Application, text: str) -> None:  # type: ignore[type-arg]
    for admin in state_of(app).config.admins:
        try:
            await app.bot.send_message(admin, text, parse_mode=None)
        except Exception as exc:  # telling admins must never break delivery
            log.warning("admin_notify_failed admin=%s error=%r", admin, exc)


async def run_poll(app: Application) -> None:  # type: ignore[type-arg]
    state = state_of(app)
    async with state.lock, state.metrics.busy(state.clock()):
        report = await state.pipeline.run_cycle(state.clock())
        state.metrics.observe_cycle(report, state.clock())
        await run_deliver_locked(app)
    for url, name in report.retired:
        await notify_admins(app, retired_notice(url, name))


def retired_notice(url: str, name: str) -> str:
    """What admins are told when a feed answers 410 Gone (plain text)."""
    return (
        f"Feed retired: {name} ({url}) answered HTTP 410 Gone, so it is no longer polled. "
        f"To poll it again: /feed_add {url} once it serves a feed again, or give it a new URL in config.yaml."
    )


async def run_deliver_locked(app: Application) -> None:  # type: ignore[type-arg]
    state = state_of(app)
    assert state.sender is not None
    report = await deliver_instant(state.store, state.sender, state.clock, notify=lambda text: notify_admins(app, text))
    state.metrics.observe_delivery(report, state.clock())
    if report.sent or report.retried or report.dropped:
        log.info("delivery sent=%d retried=%d dropped=%d", report.sent, report.retried, report.dropped)


async def run_digests(app: Application) -> None:  # type: ignore[type-arg]
    state = state_of(app)
    assert state.sender is not None
    async with state.lock, state.metrics.busy(state.clock()):
        report = await deliver_digests(
            state.store,
            state.sender,
            state.config.digest,
            state.clock,
            notify=lambda text: notify_admins(app, text),
            rule_titles=state.rule_titles(),
        )
    state.metrics.observe_digests(report)
    if report.digests:
        log.info("digests sent=%d items=%d", report.digests, report.sent)


async def _poll_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await run_poll(context.application)


async def _deliver_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    state = state_of(context.application)
    async with state.lock:
        await run_deliver_locked(context.application)


async def _digest_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await run_digests(context.application)


async def _prune_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    state = state_of(context.application)
    async with state.lock:
        removed = state.store.prune(state.clock(), keep_days=RETENTION_DAYS)
    log.info("store_pruned items=%d", removed)


async def _error_handler(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("handler_error error=%r", context.error, exc_info=context.error)


async def post_init(app: Application) -> None:  # type: ignore[type-arg]
    state = state_of(app)
    settings = PollSettings.from_config(state.config.polling)
    state.client = make_client(settings)
    state.sender = Sender(app.bot)
    try:
        await app.bot.set_my_commands(bot_commands())
    except Exception as exc:
        log.warning("set_my_commands_failed error=%r", exc)
    await start_metrics(state)
    jq = app.job_queue
    assert jq is not None
    if not state.schedule_jobs:
        return
    jq.run_repeating(_poll_job, interval=TICK, first=1, name="poll")
    jq.run_repeating(_deliver_job, interval=DELIVER_EVERY, first=DELIVER_EVERY, name="deliver")
    jq.run_repeating(_digest_job, interval=TICK, first=5, name="digests")
    jq.run_repeating(_prune_job, interval=86400, first=600, name="prune")
    log.info(
        "bot_started feeds=%d rules=%d subscriptions=%d",
        len(state.config.feeds),
        len(state.rules.rules),
        len(state.store.subscriptions()),
    )


async def start_metrics(state: BotState) -> None:
    """Serve /metrics and /healthz when ``metrics.listen`` is set; a port in use is logged, not fatal."""
    listen = state.config.metrics
    if listen.host is None:
        return
    server = MetricsServer(
        state.metrics,
        listen.host,
        listen.port,
        clock=state.clock,
        queue_sizes=state.store.queue_sizes,
        poll_every=TICK,
        deliver_every=DELIVER_EVERY,
    )
    try:
        await server.start()
    except OSError as exc:
        log.error("metrics_listen_failed host=%s port=%d error=%r", listen.host, listen.port, exc)
        return
    state.metrics_server = server
    log.info("metrics_listening host=%s port=%d", listen.host, server.port)


async def post_shutdown(app: Application) -> None:  # type: ignore[type-arg]
    state = state_of(app)
    if state.metrics_server is not None:
        await state.metrics_server.stop()
        state.metrics_server = None
    if state.client is not None:
        await state.client.aclose()
    state.store.close()
    log.info("bot_stopped")


def build_application(state: BotState, token: str) -> Application:  # type: ignore[type-arg]
    builder = (
        ApplicationBuilder()
        .token(token)
        .defaults(Defaults(parse_mode=ParseMode.HTML))
        .rate_limiter(AIORateLimiter(max_retries=0))
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .concurrent_updates(PerUserUpdates())  # one user's updates in order, users in parallel (chat/limits.py)
    )
    if state.config.telegram.base_url:
        builder = builder.base_url(state.config.telegram.base_url)
    if state.config.telegram.base_file_url:
        builder = builder.base_file_url(state.config.telegram.base_file_url)
    app = builder.build()
    app.bot_data["state"] = state
    # Handler order: the chat commands (one CommandHandler each); the error handler logs whatever a
    # handler raised.
    register(app)
    app.add_error_handler(_error_handler)
    return app


def prepare(config: Config, now: datetime | None = None) -> BotState | None:
    """Load rules, open the store and sync the config's feeds and subscriptions into it, printing
    clear errors; None when the bot cannot start."""
    try:
        ruleset = load_rules(config.rule_files)
    except ProblemError as exc:
        print_problems("rules", exc)
        return None
    unwritable = storage_problem(config.storage_path)
    if unwritable:
        print(f"storage: {unwritable}", file=sys.stderr)
        return None
    try:
        store = Store.open(config.storage_path)
    except StoreError as exc:
        print(f"storage: {exc}", file=sys.stderr)
        return None
    now = now or utcnow()
    store.sync_feeds(config.feeds, now)
    store.sync_config_subscriptions(config.subscriptions, now)
    return BotState(config=config, store=store, rules=ruleset)


def run_bot(config: Config) -> int:
    token = config.telegram.token()
    if not token:
        print(
            f"error: no bot token: set the {config.telegram.token_env} environment variable "
            "(the token BotFather gave you); it is never read from config.yaml",
            file=sys.stderr,
        )
        return 1
    from delivery.redact import install_token_redaction

    install_token_redaction(token)
    state = prepare(config)
    if state is None:
        return 1
    app = build_application(state, token)
    try:
        app.run_polling(allowed_updates=Update.ALL_TYPES, stop_signals=(signal.SIGINT, signal.SIGTERM))
    except TelegramError as exc:  # at start-up; PTB's InvalidToken quotes the token, so never let it through
        reason = str(exc).replace(token, "<redacted>")
        if isinstance(exc, InvalidToken):
            reason = f"Telegram rejected the token in {config.telegram.token_env}; check it with @BotFather"
        elif isinstance(exc, NetworkError):
            reason = f"cannot reach Telegram ({reason})"
        print(f"error: {reason}", file=sys.stderr)
        return 1
    return 0


def print_digest(config: Config, *, chat: str, dry_run: bool) -> int:
    """``bot.py digest --chat ID --dry-run``: the digest that subscription would get now."""
    state = prepare(config)
    if state is None:
        return 1
    try:
        sub = state.store.subscription(chat)
        if sub is None:
            print(f"error: no subscription for chat {chat}", file=sys.stderr)
            return 1
        now = utcnow()
        plans = [p for p in due_digests(state.store, config.digest, now) if p.subscription.id == sub.id]
        from zoneinfo import ZoneInfo

        from delivery.outbox import DigestPlan

        plan = plans[0] if plans else DigestPlan(sub, now, ZoneInfo(sub.timezone or config.digest.timezone))
        parts, _ids = render_digest_parts(state.store, plan, config.digest, now, state.rule_titles())
        chunks = [text for text, _ in parts]
        if not chunks:
            print(f"(nothing queued for {chat} since {sub.last_digest_at or 'the start'})")
        for i, chunk in enumerate(chunks, 1):
            print(f"--- message {i}/{len(chunks)} (parse_mode=HTML, previews off) ---\n{chunk}")
        if not dry_run:
            print("(only --dry-run is supported from the command line; the running bot sends digests)")
        return 0
    finally:
        state.store.close()
