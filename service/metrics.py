"""Prometheus metrics and a health check, served over HTTP by the running bot when ``metrics.listen`` is set.

    GET /metrics   text exposition format (prometheus-client, one registry per :class:`Metrics`)
    GET /healthz   200 "ok" while work is happening: the last poll cycle finished within 3 poll ticks and
                   the last delivery pass within 3 delivery intervals, and the store can be written (and
                   is still the file at storage.path); else 503 with the reason. A second line says how
                   the process receives updates when it is not the default, long polling (``updates: webhook
                   URL (serving HOST:PORT/PATH)``, ``updates: none (this process runs jobs only)``). A worker runs only
                   the loops of its roles (``bot.py run --role``), so only those are watched; with
                   several workers (or roles other than all) the answer names the worker and its roles:
                   ``ok (worker host:1234:9f3a1c, roles poller,sender)``

The jobs in service/app.py feed their reports (CycleReport, DeliveryReport) in after each run, so the
pipeline and delivery code stay free of metrics calls. The outbox depth is read from the store at scrape
time by the HTTP handler, which runs on the event loop, the thread that owns the store's connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from delivery.outbox import DeliveryReport
    from service.pipeline import CycleReport

log = logging.getLogger(__name__)

POLL_OUTCOMES = ("ok", "not_modified", "error")
SEND_RESULTS = ("sent", "retried", "failed", "dropped", "uncertain")
OUTBOX_KINDS = ("instant", "digest")
STALL_FACTOR = 3  # a loop is stalled after this many of its intervals without a finished run
REQUEST_TIMEOUT = 5.0


class Metrics:
    """The bot's counters and gauges in a registry of their own (no global state: tests make several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.feeds_polled = Counter("feeds_polled", "Feed polls, by outcome.", ["outcome"], registry=r)
        self.feed_items_seen = Counter("feed_items_seen", "Feed items seen for the first time.", registry=r)
        self.rule_matches = Counter("rule_matches", "New items matched, by rule.", ["rule"], registry=r)
        self.telegram_messages = Counter(
            "telegram_messages",
            "Alerts and digests sent to Telegram, by result: sent; retried (429, 5xx, network: tried again "
            "later); failed (the chat is gone: subscription paused); dropped (refused for good, e.g. 400); "
            "uncertain (Telegram may have accepted it twice without a readable answer: never sent again).",
            ["result"],
            registry=r,
        )
        self.outbox_queue_depth = Gauge("outbox_queue_depth", "Pending outbox entries, by kind.", ["kind"], registry=r)
        self.poll_cycle_seconds = Histogram(
            "poll_cycle_seconds",
            "Duration of a poll cycle (fetch, parse, match, store).",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
            registry=r,
        )
        self.last_poll_cycle = Gauge(
            "last_poll_cycle_timestamp_seconds", "Unix time the last poll cycle finished.", registry=r
        )
        for outcome in POLL_OUTCOMES:
            self.feeds_polled.labels(outcome)
        for result in SEND_RESULTS:
            self.telegram_messages.labels(result)
        for kind in OUTBOX_KINDS:
            self.outbox_queue_depth.labels(kind)
        self.started_at: datetime | None = None
        self.last_cycle_at: datetime | None = None
        self.last_delivery_at: datetime | None = None
        self.busy_since: datetime | None = None  # a poll cycle or digest pass holds the bot's lock
        self.store_problem: str | None = None  # set while the store cannot be written: /healthz is 503
        self.updates: str | None = None  # how this process receives updates (service.app.receiver_summary)
        # this process as a worker (service/app.py): which loops /healthz watches, and what it names
        self.roles: tuple[str, ...] = ("poller", "sender", "web")
        self.worker: str | None = None
        self.show_worker = False  # name the worker and its roles in /healthz (several workers, or not all roles)

    @contextlib.asynccontextmanager
    async def busy(self, now: datetime) -> AsyncIterator[None]:
        """Marks a pass that holds the bot's lock: the delivery loop waits behind it, not stalled."""
        self.busy_since = now
        try:
            yield
        finally:
            self.busy_since = None

    def observe_cycle(self, report: CycleReport, finished_at: datetime) -> None:
        self.feeds_polled.labels("ok").inc(report.feeds_ok)
        self.feeds_polled.labels("not_modified").inc(report.feeds_not_modified)
        self.feeds_polled.labels("error").inc(report.feeds_failed)
        self.feed_items_seen.inc(report.new_items)
        for rule, count in report.matches_by_rule.items():
            self.rule_matches.labels(rule).inc(count)
        self.poll_cycle_seconds.observe(report.seconds)
        self.last_poll_cycle.set(finished_at.timestamp())
        self.last_cycle_at = finished_at

    def observe_delivery(self, report: DeliveryReport, finished_at: datetime) -> None:
        """An instant-alert pass (the loop /healthz watches)."""
        self._count_sends(report.sent, report)
        self.last_delivery_at = finished_at

    def observe_digests(self, report: DeliveryReport) -> None:
        self._count_sends(report.digests, report)  # report.sent counts the digests' items, not messages

    def _count_sends(self, sent: int, report: DeliveryReport) -> None:
        self.telegram_messages.labels("sent").inc(sent)
        self.telegram_messages.labels("retried").inc(report.retried)
        self.telegram_messages.labels("failed").inc(len(report.paused_chats))
        self.telegram_messages.labels("dropped").inc(report.dropped)
        self.telegram_messages.labels("uncertain").inc(len(report.uncertain))

    def set_queue_sizes(self, sizes: Mapping[tuple[str, str], int]) -> None:
        """From ``Store.queue_sizes()``: (kind, state) → count; the gauge shows the pending ones."""
        for kind in OUTBOX_KINDS:
            self.outbox_queue_depth.labels(kind).set(sizes.get((kind, "pending"), 0))

    def health(self, now: datetime, poll_every: float, deliver_every: float) -> tuple[bool, str]:
        """(healthy, "ok" or why not): each loop must have finished a run within STALL_FACTOR intervals,
        counted from the last run, or from the start while there has been none. Delivery waiting behind a
        poll cycle or digest pass (they share a lock) is not stalled while that pass is younger than
        STALL_FACTOR poll intervals."""
        problems = [f"store: {self.store_problem}"] if self.store_problem else []
        waiting = self.busy_since is not None and (now - self.busy_since).total_seconds() <= STALL_FACTOR * poll_every
        for what, last, every, role in (
            ("poll loop", self.last_cycle_at, poll_every, "poller"),
            ("delivery loop", self.last_delivery_at, deliver_every, "sender"),
        ):
            if role not in self.roles:  # a worker without that role runs no such loop
                continue
            if what == "delivery loop" and waiting:
                continue
            since = last or self.started_at
            if since is None:
                problems.append(f"{what} not started")
                continue
            age = (now - since).total_seconds()
            if age > STALL_FACTOR * every:
                problems.append(f"{what} stalled for {age:.0f} s" + ("" if last else " (no run finished yet)"))
        reason = "; ".join(problems) or "ok"
        if self.show_worker:
            reason += f" (worker {self.worker}, roles {','.join(self.roles)})"
        return (not problems, reason)


class MetricsServer:
    """A small HTTP/1.1 server on asyncio streams: GET /metrics and GET /healthz, one request a connection."""

    def __init__(
        self,
        metrics: Metrics,
        host: str,
        port: int,
        *,
        clock: Callable[[], datetime],
        queue_sizes: Callable[[], Mapping[tuple[str, str], int]],
        poll_every: float,
        deliver_every: float,
    ) -> None:
        self.metrics = metrics
        self.host = host
        self.requested_port = port
        self.clock = clock
        self.queue_sizes = queue_sizes
        self.poll_every = poll_every
        self.deliver_every = deliver_every
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.requested_port)
        self.metrics.started_at = self.clock()

    @property
    def port(self) -> int:
        """The bound port (the real one when started with port 0)."""
        assert self._server is not None and self._server.sockets
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request."""
        if path not in ("/metrics", "/healthz"):
            return 404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain; charset=utf-8", b"method not allowed\n"
        if path == "/healthz":
            healthy, reason = self.metrics.health(self.clock(), self.poll_every, self.deliver_every)
            updates = f"updates: {self.metrics.updates}\n" if self.metrics.updates else ""
            return (200 if healthy else 503), "text/plain; charset=utf-8", f"{reason}\n{updates}".encode()
        try:
            self.metrics.set_queue_sizes(self.queue_sizes())
        except Exception as exc:  # a busy or closed store must not break the other metrics
            log.warning("metrics_queue_depth_failed error=%r", exc)
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                status, ctype, body = 400, "text/plain; charset=utf-8", b"bad request\n"
                method = "GET"
            else:
                method = parts[0]
                status, ctype, body = self.respond(method, parts[1].split("?", 1)[0])
            reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}.get(
                status, "Service Unavailable"
            )
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\nConnection: close\r\n\r\n".encode("latin-1")
            )
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
