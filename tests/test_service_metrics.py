"""/metrics and /healthz of the running bot, after real poll cycles and deliveries to the emulator;
`bot.py health` against the endpoint."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer

from core.config import MetricsConfig, load_config
from service.app import build_application, post_init, post_shutdown, prepare, run_poll
from service.metrics import Metrics, MetricsServer
from tgemu import BotApiEmulator

REPO = Path(__file__).resolve().parents[1]
TOKEN = "987654:METRICS-secret-token"
RU_FEED = (REPO / "examples" / "feeds" / "ru-politics.xml").read_bytes()


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        for chat, kind in ((100, "private"), (-200, "supergroup"), (300, "private"), (42, "private")):
            e.add_chat(chat, kind)
        yield e


@pytest.fixture
def clock() -> list[datetime]:
    return [datetime(2026, 5, 1, 23, 0, tzinfo=UTC)]  # 08:00 in Seoul: the 09:00 digest is not due


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"rules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n" + textwrap.dedent(text), encoding="utf-8")
    return path


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def samples(text: str, name: str, label: str) -> dict[str, float]:
    return {
        s.labels[label]: float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


async def get(port: int, path: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.get(f"http://127.0.0.1:{port}{path}")


async def bot_health(config: Path) -> tuple[int, str, str]:
    """`bot.py health` in a subprocess, without blocking the loop that serves /healthz."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "bot.py"),
        "--config",
        str(config),
        "health",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
        env=os.environ.copy(),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_metrics_and_health_after_real_cycles_and_deliveries(
    tmp_path: Path, emu: BotApiEmulator, httpserver: HTTPServer, clock: list[datetime]
) -> None:
    httpserver.expect_request("/ru.xml").respond_with_data(RU_FEED, content_type="application/rss+xml")
    config = write_config(
        tmp_path,
        f"""\
        telegram: {{base_url: '{emu.base_url}'}}
        admins: [42]
        storage: {{path: '{tmp_path / "bot.sqlite3"}'}}
        polling: {{allow_private_urls: true, timeout: 5, backlog: {{max_items: 100, max_age: null}}}}
        digest: {{time: '09:00', timezone: Asia/Seoul}}
        feeds:
          - {{url: '{httpserver.url_for("/ru.xml")}', name: РБК, lang: ru}}
        subscriptions:
          - {{chat: 100, mode: instant}}
          - {{chat: -200, mode: instant}}
          - {{chat: 300, mode: digest}}
        """,
    )
    emu.fail_next("sendMessage", "429", chat_id=100, retry_after=3)
    emu.fail_next("sendMessage", "403", chat_id=-200)
    state = prepare(load_config(config), clock[0])
    assert state is not None
    # Port 0 (any free port) is for tests only: config.yaml wants 1–65535.
    state.config = dataclasses.replace(state.config, metrics=MetricsConfig("127.0.0.1", 0))
    state.clock = lambda: clock[0]
    state.schedule_jobs = False
    app = build_application(state, TOKEN)
    await app.initialize()
    await post_init(app)
    try:
        assert state.metrics_server is not None
        port = state.metrics_server.port
        items = RU_FEED.count(b"<item>")

        await run_poll(app)  # 100 gets a 429 (retried), -200 a 403 (paused), 300 waits for its digest
        clock[0] += timedelta(seconds=4)
        await run_poll(app)  # the feed is not due; the retry is: 100's alerts go out
        sent = emu.sent(100)
        assert len(sent) == 2

        response = await get(port, "/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        text = response.text
        assert samples(text, "feeds_polled_total", "outcome") == {"ok": 1.0, "not_modified": 0.0, "error": 0.0}
        assert sample(text, "feed_items_seen_total") == items
        matches = samples(text, "rule_matches_total", "rule")
        assert set(matches) <= {r.name for r in state.rules.rules} and sum(matches.values()) >= len(sent)
        assert samples(text, "telegram_messages_total", "result") == {
            "sent": 2.0,
            "retried": 2.0,
            "failed": 1.0,  # -200 is gone: its subscription is paused
            "dropped": 0.0,
            "uncertain": 0.0,
        }
        # Still queued: the paused chat's two alerts and chat 300's two digest entries.
        assert samples(text, "outbox_queue_depth", "kind") == {"instant": 2.0, "digest": 2.0}
        assert sample(text, "poll_cycle_seconds_count") == 2  # a cycle with no feed due is a cycle too
        assert sample(text, "last_poll_cycle_timestamp_seconds") == clock[0].timestamp()

        # The feed breaks: the next cycle counts an error.
        httpserver.clear()
        httpserver.expect_request("/ru.xml").respond_with_data("down", status=500)
        clock[0] += timedelta(minutes=16)
        await run_poll(app)
        text = (await get(port, "/metrics")).text
        assert samples(text, "feeds_polled_total", "outcome") == {"ok": 1.0, "not_modified": 0.0, "error": 1.0}
        assert sample(text, "poll_cycle_seconds_count") == 3
        assert sample(text, "feed_items_seen_total") == items

        health = await get(port, "/healthz")
        assert (health.status_code, health.text) == (200, "ok\n")
        check = tmp_path / "health.yaml"
        check.write_text(f"metrics: {{listen: '0.0.0.0:{port}'}}\nrules: {{files: []}}\n", encoding="utf-8")
        code, out, err = await bot_health(check)
        assert (code, out.strip()) == (0, "ok"), err

        clock[0] += timedelta(seconds=91)  # nothing ran for three poll ticks
        health = await get(port, "/healthz")
        assert health.status_code == 503
        assert health.text == "poll loop stalled for 91 s; delivery loop stalled for 91 s\n"
        code, out, err = await bot_health(check)
        assert code == 1 and "poll loop stalled for 91 s" in out and "answered 503" in err

        assert (await get(port, "/nope")).status_code == 404
    finally:
        await post_shutdown(app)
        await app.shutdown()
    with pytest.raises(httpx.ConnectError):
        await get(port, "/healthz")  # stopped with the bot


@pytest.mark.parametrize(
    ("name", "last_cycle", "last_delivery", "healthy", "reason"),
    [
        ("fresh", 80, 25, True, "ok"),
        ("poll stalled", 91, 5, False, "poll loop stalled for 91 s"),
        ("delivery stalled", 10, 31, False, "delivery loop stalled for 31 s"),
        ("nothing ran yet, just started", None, None, True, "ok"),
    ],
)
def test_health_rule(name: str, last_cycle: int | None, last_delivery: int | None, healthy: bool, reason: str) -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    metrics = Metrics()
    metrics.started_at = now - timedelta(seconds=20)
    metrics.last_cycle_at = None if last_cycle is None else now - timedelta(seconds=last_cycle)
    metrics.last_delivery_at = None if last_delivery is None else now - timedelta(seconds=last_delivery)
    assert metrics.health(now, poll_every=30, deliver_every=10) == (healthy, reason), name
    later = now + timedelta(seconds=100)
    if last_cycle is None:
        assert metrics.health(later, 30, 10) == (
            False,
            "poll loop stalled for 120 s (no run finished yet); delivery loop stalled for 120 s (no run finished yet)",
        )


async def test_two_servers_keep_separate_counts_and_reject_bad_requests() -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    servers = [
        MetricsServer(Metrics(), "127.0.0.1", 0, clock=lambda: now, queue_sizes=dict, poll_every=30, deliver_every=10)
        for _ in range(2)
    ]
    for server in servers:
        await server.start()
    try:
        servers[0].metrics.feed_items_seen.inc(5)
        first, second = [(await get(s.port, "/metrics")).text for s in servers]
        assert sample(first, "feed_items_seen_total") == 5 and sample(second, "feed_items_seen_total") == 0
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.post(f"http://127.0.0.1:{servers[0].port}/metrics")).status_code == 405
        reader, writer = await asyncio.open_connection("127.0.0.1", servers[0].port)
        writer.write(b"hello\r\n\r\n")
        assert (await reader.read()).startswith(b"HTTP/1.1 400 Bad Request\r\n")
        writer.close()
    finally:
        for server in servers:
            await server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.parametrize(
    ("name", "metrics", "fragment"),
    [
        ("metrics off", "", "the metrics endpoint is off: set metrics.listen in"),
        ("nothing listening", "metrics: {listen: '127.0.0.1:PORT'}\n", "unhealthy: no answer from http://127.0.0.1:"),
    ],
)
async def test_bot_health_fails_clearly(tmp_path: Path, name: str, metrics: str, fragment: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(metrics.replace("PORT", str(_free_port())) + "rules: {files: []}\n", encoding="utf-8")
    code, _out, err = await bot_health(config)
    assert code == 1, name
    assert fragment in err, err


def test_bot_run_serves_health_and_logs_json_lines_without_the_token(
    tmp_path: Path, emu: BotApiEmulator, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/ru.xml").respond_with_data(RU_FEED, content_type="application/rss+xml")
    port = _free_port()
    config = write_config(
        tmp_path,
        f"""\
        telegram: {{base_url: '{emu.base_url}'}}
        storage: {{path: '{tmp_path / "bot.sqlite3"}'}}
        polling: {{allow_private_urls: true, timeout: 5}}
        metrics: {{listen: '127.0.0.1:{port}'}}
        logging: {{format: text, level: info}}
        feeds:
          - {{url: '{httpserver.url_for("/ru.xml")}', name: РБК, lang: ru}}
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bot.py"), "--config", str(config), "--log-format", "json", "run"],
        cwd=REPO,
        env={**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            check = subprocess.run(
                [sys.executable, str(REPO / "bot.py"), "--config", str(config), "health"],
                capture_output=True,
                text=True,
                timeout=30,
                cwd=REPO,
            )
            if check.returncode == 0 or time.monotonic() > deadline or proc.poll() is not None:
                break
            time.sleep(0.2)
        assert (check.returncode, check.stdout) == (0, "ok\n"), check.stderr
        with httpx.Client(timeout=5) as client:
            for _ in range(100):  # the first poll cycle runs a second after start
                text = client.get(f"http://127.0.0.1:{port}/metrics").text
                if sample(text, "feeds_polled_total", outcome="ok") == 1:
                    break
                time.sleep(0.1)
        assert sample(text, "feed_items_seen_total") == RU_FEED.count(b"<item>")
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert TOKEN not in err
    records = [json.loads(line) for line in err.splitlines()]  # --log-format json wins over the config's text
    events = {r.get("event") for r in records}
    assert {"metrics_listening", "bot_started", "poll_cycle", "bot_stopped"} <= events, events
    listening = next(r for r in records if r.get("event") == "metrics_listening")
    assert (listening["logger"], listening["level"], listening["port"]) == ("service.app", "info", port)


@pytest.mark.parametrize(
    ("name", "busy_for", "healthy", "reason"),
    [
        ("delivery waits behind a 60 s poll cycle", 60, True, "ok"),
        ("the pass it waits behind is stuck", 95, False, "delivery loop stalled for 100 s"),
    ],
)
async def test_delivery_waiting_behind_a_running_pass_is_not_stalled(
    name: str, busy_for: int, healthy: bool, reason: str
) -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    metrics = Metrics()
    metrics.started_at = now - timedelta(hours=1)
    metrics.last_cycle_at = now - timedelta(seconds=80)
    metrics.last_delivery_at = now - timedelta(seconds=100)
    async with metrics.busy(now - timedelta(seconds=busy_for)):
        assert metrics.health(now, poll_every=30, deliver_every=10) == (healthy, reason), name
    assert metrics.health(now, 30, 10) == (False, "delivery loop stalled for 100 s"), "the pass is over"
