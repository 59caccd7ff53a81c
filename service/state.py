"""The state the bot's jobs and chat handlers share: one typed object per Application."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from telegram.ext import Application

from chat.feeds import FetchLimits
from chat.limits import CommandLimits
from chat.rule_edits import Pending
from core.config import ROLES, Config
from delivery.sender import Sender
from rules import RuleSet
from service.enrich import EnrichPolicy
from service.metrics import Metrics, MetricsServer
from service.pipeline import Pipeline
from store import Store
from store.claims import Worker
from watchers.fetch import FeedClient


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Incidents:
    """What the admins were told, so that each incident is told once (not once per entry per tick)."""

    store_problem: str | None = None  # the store cannot be written / was deleted: sending paused
    store_told: bool = False  # the admins know about the current store problem
    uncertain_told: bool = False  # the admins know that messages went "uncertain" (until a clean pass)


@dataclass(slots=True)
class BotState:
    """Everything the jobs and handlers share; one per Application (no untyped bot_data lookups)."""

    config: Config
    store: Store
    rules: RuleSet
    clock: Callable[[], datetime] = utcnow
    client: FeedClient | None = None
    sender: Sender | None = None
    proposals: dict[str, Pending] = field(default_factory=dict)  # rule edits awaiting confirmation, by token
    url_tests: FetchLimits = field(default_factory=FetchLimits)  # /test URL: per-user fetch limits
    limits: CommandLimits = field(default_factory=CommandLimits)  # commands: a token bucket per user
    schedule_jobs: bool = True  # tests drive run_poll / run_digests themselves with a fake clock
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    metrics: Metrics = field(default_factory=Metrics)  # fed by the jobs; served only if metrics.listen is set
    metrics_server: MetricsServer | None = None
    incidents: Incidents = field(default_factory=Incidents)
    offline_since: datetime | None = None  # the store's last heartbeat before this start (None: first run)
    roles: tuple[str, ...] = ROLES  # what this process does (bot.py run --role; core.config.ROLES)
    worker: Worker | None = None  # set by run_bot: the jobs claim their work (store/claims.py)

    @property
    def pipeline(self) -> Pipeline:
        assert self.client is not None
        return Pipeline(
            self.store, self.client, lambda: self.rules, self.config.polling, EnrichPolicy.from_config(self.config)
        )

    def rule_titles(self) -> dict[str, str]:
        return {r.name: (r.description or r.name) for r in self.rules.rules}


def state_of(app: Application) -> BotState:  # type: ignore[type-arg]
    state = app.bot_data.get("state")
    assert isinstance(state, BotState)
    return state
