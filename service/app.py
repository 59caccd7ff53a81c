"""The running bot: python-telegram-bot's Application, its JobQueue, and the pipeline wired together.

Jobs (named, on the Application's JobQueue, which runs on APScheduler), by the role that runs them:
    poll      poller   every ``run.tick`` s (30): poll the due feeds, match, queue; then (with the sender
                       role too) send instant alerts at once; quiet-feed checks
    spikes    poller   every 10 minutes: spike alerts
    prune     poller   daily: drop the text of items older than ``storage.retention`` (ids stay; 365d)
    deliver   sender   every min(10, ``run.tick``) s: instant alerts due (new, or whose back-off passed)
    digests   sender   every ``run.tick`` s: each subscription's digest when its local time has come
    renew     every    every third of ``run.lease``: renew this worker's claims (store/claims.py)
The ``web`` role receives Telegram updates and answers commands; a process without it receives none.

Several workers (``bot.py run --role …``) may share one PostgreSQL store: each has an id
(``host:pid:random``, logged at start, shown by /healthz) and claims its work in the store
(store/claims.py): feeds per poll, chats and in-flight entries per send, digests per day; the once-only
jobs (prune, spikes, quiet checks, story edits) take an advisory lock and skip when another worker holds
it; the Telegram rate limits are shared buckets (service/ratelimit.py). At most one process receives
updates by polling (Telegram allows one getUpdates consumer): it holds the advisory lock
``telegram_updates``. On SQLite one process runs at a time (the store lock), whatever its roles.

Shared clients are opened in ``post_init`` and closed in ``post_shutdown``; SIGINT/SIGTERM stop the
updater, let the job in flight finish, then close the store.

Updates arrive one of three ways (:func:`update_receiver`), and only the last call of :func:`run_bot`
differs (:func:`serve`): long polling (``run_polling``, the default), a webhook (``run_webhook`` when
``telegram.webhook`` is set: PTB's tornado server refuses a wrong path with 404 and a missing or wrong
X-Telegram-Bot-Api-Secret-Token with 403), or none at all (a process that only runs jobs: Telegram
allows one getUpdates consumer, or one webhook, per token, so extra workers must not touch either).

Every job first checks the store (``store_ok``): still the file at storage.path (same device and inode)
and a small write commits. If not (disk full, I/O error, the file deleted or replaced), the job does
nothing (nothing is sent that cannot be recorded, nothing is written to an unlinked file), /healthz turns
503 with the reason, the problem is logged once and the admins are told once Telegram answers; the
jobs resume by themselves when the check passes again. ``bot.py run`` holds the store's lock (one process
per store, store/lock.py) until it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import sys
from datetime import datetime, timedelta
from typing import Literal

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, ContextTypes, Defaults

from chat import feedback
from chat.handlers import bot_commands, register
from chat.limits import PerUserUpdates
from core import i18n
from core.config import ROLES, Config, secret_token_problem
from core.errors import ProblemError, print_problems
from core.workers import tune_gc
from delivery.outbox import (
    DeliveryReport,
    Notice,
    chat_language,
    deliver_digests,
    deliver_instant,
)
from delivery.sender import Sender
from rules import load_rules
from service.metrics import MetricsServer
from service.quiet import quiet_notices
from service.ratelimit import SharedRateLimiter
from service.spikes import run_spikes
from service.state import BotState, state_of, utcnow
from store import DB_ERRORS, Store, StoreError
from store.claims import Worker, worker_id
from store.db import storage_problem
from watchers import PollSettings, make_client

log = logging.getLogger(__name__)

TICK = 30.0  # the default of run.tick
DELIVER_EVERY = 10.0
UPDATES_LOCK = "telegram_updates"  # held by the one process that polls Telegram for updates
SPIKES_EVERY = 600.0  # the spikes job: every 10 minutes (a window is hours long)


async def notify_admins(app: Application, text: Notice) -> bool:  # type: ignore[type-arg]
    """Tell every admin, each in their chat's interface language when ``text`` is one per language; True
    when the text may have reached one of them (or there is nobody to tell)."""
    state = state_of(app)
    admins = state.config.admins
    told = not admins
    for admin in admins:
        body = text(chat_language(state.store, str(admin), state.config.interface.language)) if callable(text) else text
        try:
            await app.bot.send_message(admin, body, parse_mode=None)
            told = True
        except TelegramError as exc:  # telling admins must never break delivery
            log.warning("admin_notify_failed admin=%s error=%r", admin, exc)
        except Exception as exc:  # e.g. the reply could not be read: it may well have arrived; do not repeat
            log.warning("admin_notify_unconfirmed admin=%s error=%r", admin, exc)
            told = True
    return told


async def store_ok(app: Application) -> bool:  # type: ignore[type-arg]
    """Is the store usable for this job? Logs, sets /healthz and tells the admins once per incident."""
    state = state_of(app)
    problem = state.store.health_problem(state.clock())
    if problem:
        await store_trouble(app, problem)
        return False
    incidents = state.incidents
    if incidents.store_problem is not None:
        log.warning("store_recovered after=%r", incidents.store_problem)
        if incidents.store_told:
            await notify_admins(app, lambda lang: i18n.t("admin.store_recovered", lang))
        incidents.store_problem, incidents.store_told = None, False
        state.metrics.store_problem = None
    return True


async def store_trouble(app: Application, problem: str) -> None:  # type: ignore[type-arg]
    state = state_of(app)
    incidents = state.incidents
    if incidents.store_problem is None:
        log.error("store_unhealthy reason=%r; polling and sending paused until it can be written", problem)
        incidents.store_problem = problem
    state.metrics.store_problem = incidents.store_problem
    if not incidents.store_told:
        problem_now = incidents.store_problem
        incidents.store_told = await notify_admins(
            app, lambda lang: i18n.t("admin.store_problem", lang, problem=problem_now)
        )


async def after_delivery(app: Application, report: DeliveryReport) -> None:  # type: ignore[type-arg]
    """A pass's store failure and uncertain messages, told once per incident."""
    state = state_of(app)
    if report.store_error:
        await store_trouble(app, report.store_error)
    incidents = state.incidents
    if report.uncertain and not incidents.uncertain_told:
        count = len(report.uncertain)
        incidents.uncertain_told = await notify_admins(app, lambda lang: i18n.t("admin.uncertain", lang, n=count))
    elif report.sent and not report.unconfirmed and not report.uncertain:
        incidents.uncertain_told = False  # the incident is over: a new one is told again


async def run_poll(app: Application) -> None:  # type: ignore[type-arg]
    state = state_of(app)
    async with state.lock, state.metrics.busy(state.clock()):
        if not await store_ok(app):
            return
        report = await state.pipeline.run_cycle(state.clock(), worker=state.worker)
        state.metrics.observe_cycle(report, state.clock())
        if "sender" in state.roles:
            await run_deliver_locked(app)
        quiet: list[str] = []
        if report.feeds_due:
            try:
                with state.store.advisory_lock("quiet_checks") as mine:  # one worker tells the admins
                    quiet = quiet_notices(state.store, state.config, state.clock()) if mine else []
            except Exception as exc:  # a failed check must never stop polling or delivery
                log.error("quiet_check_failed error=%r", exc, exc_info=exc)
    for url, name in report.retired:
        await notify_admins(app, functools.partial(retired_notice, url, name))
    for text in quiet:
        await notify_admins(app, text)


def retired_notice(url: str, name: str, lang: str = i18n.DEFAULT) -> str:
    """What admins are told when a feed answers 410 Gone (plain text)."""
    return i18n.t("admin.feed_retired", lang, name=name, url=url)


async def run_deliver_locked(app: Application) -> None:  # type: ignore[type-arg]
    state = state_of(app)
    assert state.sender is not None
    if not await store_ok(app):
        return
    report = await deliver_instant(
        state.store,
        state.sender,
        state.clock,
        notify=lambda text: _notify(app, text),
        stale_after=timedelta(seconds=state.config.delivery.stale_after),
        offline_since=state.offline_since,
        max_per_chat=state.config.delivery.max_instant_per_pass,
        votes=feedback.signer(state.store),
        language=state.config.interface.language,
        worker=state.worker,
    )
    state.metrics.observe_delivery(report, state.clock())
    await after_delivery(app, report)
    if report.sent or report.retried or report.dropped or report.unconfirmed:
        log.info(
            "delivery sent=%d retried=%d dropped=%d folded=%d unconfirmed=%d uncertain=%d",
            report.sent,
            report.retried,
            report.dropped,
            report.folded,
            report.unconfirmed,
            len(report.uncertain),
        )


async def _notify(app: Application, text: Notice) -> None:  # type: ignore[type-arg]
    await notify_admins(app, text)


async def run_digests(app: Application) -> None:  # type: ignore[type-arg]
    state = state_of(app)
    assert state.sender is not None
    async with state.lock, state.metrics.busy(state.clock()):
        if not await store_ok(app):
            return
        report = await deliver_digests(
            state.store,
            state.sender,
            state.config.digest,
            state.clock,
            notify=lambda text: _notify(app, text),
            rule_titles=state.rule_titles(),
            votes=feedback.signer(state.store),
            language=state.config.interface.language,
            worker=state.worker,
        )
        await after_delivery(app, report)
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


async def _renew_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Renew this worker's claims; not under the bot's lock, since the passes holding it are the ones
    whose claims must not expire. A failed write is logged: the claims then expire after the lease."""
    state = state_of(context.application)
    assert state.worker is not None
    try:
        state.store.renew_claims(state.worker.id, state.clock(), state.worker.lease)
    except DB_ERRORS as exc:
        log.warning("claims_renew_failed worker=%s error=%r", state.worker.id, exc)


async def _prune_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    state = state_of(context.application)
    async with state.lock:
        with state.store.advisory_lock("prune") as mine:  # once, by one worker
            if not mine:
                log.info("store_prune_skipped: another worker is pruning")
                return
            removed = state.store.prune(state.clock(), keep_days=state.config.retention_days)
    log.info("store_pruned items=%d", removed)


async def run_spike_pass(app: Application) -> None:  # type: ignore[type-arg]
    """The ``spikes`` job: spike alerts (service/spikes.py) under the bot's lock, like every other pass, and
    under the advisory lock ``spikes`` (one worker finds and sends them; the others skip the pass)."""
    state = state_of(app)
    assert state.sender is not None
    async with state.lock:
        if not await store_ok(app):
            return
        with state.store.advisory_lock("spikes") as mine:
            if not mine:
                return
            report = await run_spikes(
                state.store,
                state.sender,
                state.config.spikes,
                state.rule_titles(),
                state.clock(),
                notify=lambda text: _notify(app, text),
                entities=[name for name, group in state.rules.groups.items() if group.kind == "entity"],
                language=state.config.interface.language,
            )
    if report.found or report.sent or report.failed or report.uncertain:
        log.info(
            "spikes found=%s sent=%d retried=%d failed=%d uncertain=%d",
            ",".join(report.found),
            report.sent,
            report.retried,
            report.failed,
            report.uncertain,
        )


async def _spikes_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await run_spike_pass(context.application)


async def _error_handler(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("handler_error error=%r", context.error, exc_info=context.error)


async def post_init(app: Application) -> None:  # type: ignore[type-arg]
    state = state_of(app)
    settings = PollSettings.from_config(state.config.polling)
    state.client = make_client(settings)
    state.sender = Sender(app.bot)
    if "web" in state.roles:  # the process that answers commands publishes them
        try:
            await app.bot.set_my_commands(bot_commands(i18n.DEFAULT))  # users of any other app language
            for lang in i18n.LANGUAGES:  # the menu in the user's app language (Telegram picks by language_code)
                await app.bot.set_my_commands(bot_commands(lang), language_code=lang)
        except Exception as exc:
            log.warning("set_my_commands_failed error=%r", exc)
    state.metrics.roles = state.roles
    state.metrics.worker = state.worker.id if state.worker else None
    state.metrics.show_worker = state.worker is not None and (state.store.shared or state.roles != ROLES)
    await start_metrics(state)
    jq = app.job_queue
    assert jq is not None
    if not state.schedule_jobs:
        return
    tick = state.config.run.tick
    if state.worker is not None:  # a live worker keeps its claims (store/claims.py)
        jq.run_repeating(_renew_job, interval=state.worker.lease / 3, first=state.worker.lease / 3, name="renew")
    if "poller" in state.roles:
        jq.run_repeating(_poll_job, interval=tick, first=1, name="poll")
        jq.run_repeating(_prune_job, interval=86400, first=600, name="prune")
        if state.config.spikes.enabled:
            jq.run_repeating(_spikes_job, interval=SPIKES_EVERY, first=60, name="spikes")
    if "sender" in state.roles:
        every = deliver_every(state)
        jq.run_repeating(_deliver_job, interval=every, first=every, name="deliver")
        jq.run_repeating(_digest_job, interval=tick, first=min(5.0, tick), name="digests")
    log.info(
        "bot_started worker=%s roles=%s feeds=%d rules=%d subscriptions=%d",
        state.worker.id if state.worker else "-",
        ",".join(state.roles),
        len(state.config.feeds),
        len(state.rules.rules),
        len(state.store.subscriptions()),
    )


def deliver_every(state: BotState) -> float:
    return min(DELIVER_EVERY, state.config.run.tick)


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
        poll_every=state.config.run.tick,
        deliver_every=deliver_every(state),
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
        # several senders on one store share Telegram's limits through buckets in it (service/ratelimit.py)
        .rate_limiter(
            SharedRateLimiter(state.store.take_token) if state.store.shared else AIORateLimiter(max_retries=0)
        )
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


def prepare(config: Config, now: datetime | None = None, *, exclusive: bool = False) -> BotState | None:
    """Load rules, open the store and sync the config's feeds and subscriptions into it, printing
    clear errors; None when the bot cannot start. ``exclusive``: hold the store's one-process lock
    (``run``, ``backfill``); a second such process gets one line naming the first one's pid."""
    try:
        ruleset = load_rules(config.rule_files)
    except ProblemError as exc:
        print_problems("rules", exc)
        return None
    unwritable = storage_problem(config.storage_path) if config.storage_url is None else None
    if unwritable:
        print(f"storage: {unwritable}", file=sys.stderr)
        return None
    try:
        store = Store.open(config.storage_target, exclusive=exclusive)
    except StoreError as exc:
        print(f"storage: {exc}", file=sys.stderr)
        return None
    now = now or utcnow()
    try:
        store.sync_feeds(config.feeds, now)
        store.sync_config_subscriptions(config.subscriptions, now)
    except DB_ERRORS as exc:  # a full disk at start: one clear line, not a traceback
        store.close()
        print(f"storage: cannot write the store {store.describe()}: {exc}", file=sys.stderr)
        return None
    return BotState(config=config, store=store, rules=ruleset, offline_since=store.last_alive())


class _StartupTracebackFilter(logging.Filter):
    """PTB logs a failed start-up (Telegram unreachable, token refused) with its whole traceback (60 lines
    of httpcore/httpx/PTB frames) and then raises; :func:`run_bot` prints one line naming the reason, so
    that record is dropped. With ``-vv`` (debug) it is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR or logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        return not (args and "Bootstrap" in str(args[0]))


UpdateReceiver = Literal["polling", "webhook", "none"]
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def update_receiver(config: Config, *, receive_updates: bool = True) -> UpdateReceiver:
    """How this process gets the chat's updates: ``none`` when it must not receive them (a worker that only
    runs jobs; Telegram allows one getUpdates consumer or one webhook per token), else ``webhook`` when
    ``telegram.webhook`` is set, else ``polling``."""
    if not receive_updates:
        return "none"
    return "webhook" if config.telegram.webhook is not None else "polling"


def receiver_summary(config: Config, receiver: UpdateReceiver) -> str | None:
    """The /healthz line naming how updates arrive (never the secret token); None for the default, polling,
    whose /healthz body stays the bare "ok" that scripts compare."""
    hook = config.telegram.webhook
    if receiver == "webhook" and hook is not None:
        return f"webhook {hook.url} (serving {hook.host}:{hook.port}{hook.path})"
    return "none (this process runs jobs only)" if receiver == "none" else None


def run_bot(config: Config, roles: tuple[str, ...] | None = None, *, receive_updates: bool = True) -> int:
    """``bot.py run [--role …]``: the start-up checks, then the Application with this process's roles'
    jobs (``roles``, else ``run.roles``) until SIGINT/SIGTERM, getting updates as :func:`update_receiver`
    says (none without the web role). 0 on a clean stop, 1 with one line on stderr otherwise."""
    roles = roles or config.run.roles
    token = config.telegram.token()
    if not token:
        print(
            f"error: no bot token: set the {config.telegram.token_env} environment variable "
            "(the token BotFather gave you); it is never read from config.yaml",
            file=sys.stderr,
        )
        return 1
    receiver = update_receiver(config, receive_updates=receive_updates and "web" in roles)
    hook = config.telegram.webhook
    secret = hook.secret() if hook is not None and receiver == "webhook" else None
    if hook is not None and receiver == "webhook":
        problem = "is not set" if secret is None else secret_token_problem(secret)
        if problem:
            print(f"error: telegram.webhook.secret_token_env: {hook.secret_token_env} {problem}", file=sys.stderr)
            return 1
    from delivery.redact import install_token_redaction

    install_token_redaction(token)
    if secret is not None and len(secret) >= 8:  # PTB's debug log shows setWebhook's parameters
        install_token_redaction(secret)
    state = prepare(config, exclusive=True)
    if state is None:
        return 1
    state.roles = roles
    state.worker = Worker(worker_id(), config.run.lease)
    if not state.store.shared:  # this process holds the store lock: any claim is a dead process's
        try:
            state.store.forget_claims()
        except DB_ERRORS as exc:
            state.store.close()
            print(f"storage: cannot write the store {state.store.describe()}: {exc}", file=sys.stderr)
            return 1
    if not state.store.shared and roles != ROLES:
        print(
            f"note: the store is SQLite, so this is the only process on it (the store lock): it runs the roles "
            f"{','.join(roles)} and nothing runs the others ({','.join(r for r in ROLES if r not in roles)}); "
            "several workers need PostgreSQL (storage.url)",
            file=sys.stderr,
        )
    held = contextlib.ExitStack()
    if receiver == "polling" and not held.enter_context(state.store.advisory_lock(UPDATES_LOCK)):
        state.store.close()
        print(
            "error: another worker already receives Telegram updates by polling (Telegram allows one getUpdates "
            "consumer per token); run this one without the web role (--role poller,sender), or use webhook "
            "mode (telegram.webhook) for several web workers",
            file=sys.stderr,
        )
        return 1
    app = build_application(state, token)
    state.metrics.updates = receiver_summary(config, receiver)
    # the start-up heap (rules, modules) out of the garbage collector's walks, young collections rarer; a
    # rule swap freezes again (core/workers.py). Pipelines take their pool from polling.cpu_pool.
    log.debug("gc_tuned frozen=%d cpu_pool=%s", tune_gc(state.rules), config.polling.cpu_pool)
    logging.getLogger("telegram.ext").addFilter(_StartupTracebackFilter())
    try:
        serve(app, config, receiver, secret)
    except TelegramError as exc:  # at start-up; PTB's InvalidToken quotes the token, so never let it through
        reason = str(exc).replace(token, "<redacted>")
        if secret:
            reason = reason.replace(secret, "<redacted>")
        if isinstance(exc, InvalidToken):
            reason = f"Telegram rejected the token in {config.telegram.token_env}; check it with @BotFather"
        elif isinstance(exc, NetworkError):
            where = config.telegram.base_url or "https://api.telegram.org"
            reason = f"cannot reach Telegram at {where} ({reason}); check the network, or telegram.base_url"
        print(f"error: {reason}", file=sys.stderr)
        return 1
    except OSError as exc:  # the webhook's port is taken (or not ours to bind)
        if receiver != "webhook" or hook is None:
            raise
        print(f"error: telegram.webhook.listen: cannot listen on {hook.host}:{hook.port}: {exc}", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(Exception):  # the store (and with it a PostgreSQL session lock) is closed
            held.close()
    return 0


def serve(app: Application, config: Config, receiver: UpdateReceiver, secret: str | None = None) -> None:  # type: ignore[type-arg]
    """Run ``app`` (initialize, post_init, start, jobs … until a stop signal, then stop and shut down) with
    the given update receiver; the one place the three modes differ."""
    telegram = config.telegram
    if receiver == "polling":
        app.run_polling(
            allowed_updates=Update.ALL_TYPES,
            stop_signals=STOP_SIGNALS,
            timeout=telegram.poll_timeout,
            poll_interval=telegram.poll_interval,
        )
    elif receiver == "webhook":
        hook = telegram.webhook
        assert hook is not None and secret is not None
        app.run_webhook(
            listen=hook.host,
            port=hook.port,
            url_path=hook.path,
            webhook_url=hook.url,
            secret_token=secret,
            allowed_updates=Update.ALL_TYPES,
            drop_pending_updates=False,  # updates that arrived while the bot was down are still answered
            max_connections=hook.max_connections,
            stop_signals=STOP_SIGNALS,
        )
    else:
        asyncio.run(_run_without_updates(app))


async def _run_without_updates(app: Application) -> None:  # type: ignore[type-arg]
    """PTB's run_polling/run_webhook lifecycle without their updater: neither getUpdates nor setWebhook
    (nor deleteWebhook, which would take the webhook from the process that serves it) is ever called."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.initialize()
        if app.post_init:
            await app.post_init(app)
        await app.start()
        try:
            await stop.wait()
        finally:
            await app.stop()
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)
