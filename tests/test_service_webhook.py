"""Webhook mode end to end: ``bot.py run`` with ``telegram.webhook`` against the Bot API emulator, which
posts the users' updates to the bot's webhook as Telegram does; and the process that receives no updates
at all (jobs only), the seam several workers need."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer

from tgemu import BotApiEmulator

REPO = Path(__file__).resolve().parents[1]
TOKEN = "987654:WEBHOOK-e2e-token"
SECRET = "hook_Secret-0123456789"
RU_FEED = (REPO / "examples" / "feeds" / "ru-politics.xml").read_bytes()
SEED_TITLE = "В КНДР сообщили о новых военных переговорах с Россией"
USER = 100  # a private chat: its user is the chat
READER = 300  # subscribed in config.yaml: gets the feed's alert
STRANGER = 500  # never subscribed: whatever reaches this chat is an answer to a command


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        for chat in (USER, READER, STRANGER, 42):
            e.add_chat(chat, "private")
        yield e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(tmp_path: Path, emu: BotApiEmulator, feed: str, telegram_extra: str = "", metrics: int = 0) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"telegram: {{base_url: '{emu.base_url}'{telegram_extra}}}\n"
        "admins: [42]\n"
        f"storage: {{path: '{tmp_path / 'bot.sqlite3'}'}}\n"
        f"rules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n"
        "polling: {allow_private_urls: true, timeout: 5, backlog: {max_items: 100, max_age: null}}\n"
        + (f"metrics: {{listen: '127.0.0.1:{metrics}'}}\n" if metrics else "")
        + f"feeds:\n  - {{url: '{feed}', name: 'РБК', lang: ru}}\n"
        + f"subscriptions:\n  - {{chat: {READER}, mode: instant}}\n",
        encoding="utf-8",
    )
    return path


def webhook_keys(port: int) -> str:
    return (
        f", webhook: {{url: 'http://127.0.0.1:{port}/tg/hook', listen: '127.0.0.1:{port}', "
        "secret_token_env: WEBHOOK_SECRET}"
    )


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=REPO,
        env={**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "WEBHOOK_SECRET": SECRET, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out + err


def wait_until(condition: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def command_update(update_id: int, text: str) -> dict[str, Any]:
    """A command of the never-subscribed user, as Telegram posts it to a webhook."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": 9000 + update_id,
            "date": int(time.time()),
            "text": text,
            "chat": {"id": STRANGER, "type": "private", "first_name": "user"},
            "from": {"id": STRANGER, "is_bot": False, "first_name": "user"},
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
        },
    }


def post(url: str, update: dict[str, Any], secret: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return httpx.post(url, content=json.dumps(update), headers=headers, timeout=10).status_code


def refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_webhook_mode_answers_posted_updates_delivers_alerts_and_refuses_forged_posts(
    tmp_path: Path, emu: BotApiEmulator, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/ru.xml").respond_with_data(RU_FEED, content_type="application/rss+xml")
    port, metrics = free_port(), free_port()
    hook = f"http://127.0.0.1:{port}/tg/hook"
    config = write_config(tmp_path, emu, httpserver.url_for("/ru.xml"), webhook_keys(port), metrics)
    proc = start(str(REPO / "bot.py"), "--config", str(config), "run")
    try:
        assert wait_until(lambda: emu.webhook is not None or proc.poll() is not None), "setWebhook never came"
        assert emu.webhook is not None, stop(proc)
        (call,) = emu.webhook_calls
        assert (call["url"], call["secret_token"]) == (hook, SECRET)
        assert "message" in call["allowed_updates"] and "callback_query" in call["allowed_updates"]

        # The users' commands, posted by the emulator, are answered.
        emu.user_sends(USER, USER, "/start")
        (started,) = emu.wait_for(USER, 1)
        assert str(USER) in started.text, "/start shows the user's id"
        emu.user_sends(USER, USER, "/subscribe")
        assert "Subscribed" in emu.wait_for(USER, 2)[-1].text
        posts = emu.webhook_posts
        assert {p.secret_token for p in posts} == {SECRET}
        assert [p.update_id for p in posts if p.status == 200] == [1, 2], posts  # each once, in order

        # The jobs run as in polling mode: the feed's alert reaches the subscribed chat.
        alerts = emu.wait_for(READER, 1)
        assert alerts and any(SEED_TITLE in m.text for m in alerts)

        # Forged posts are refused before the bot sees them; a right one (the healthy neighbour) is answered.
        assert post(hook, command_update(501, "/start"), "wrong-secret") == 403
        assert post(hook, command_update(502, "/start"), None) == 403
        assert post(f"http://127.0.0.1:{port}/other", command_update(503, "/start"), SECRET) == 404
        assert post(hook, command_update(504, "/start"), SECRET) == 200
        assert emu.wait_for(STRANGER, 1)
        time.sleep(0.3)  # a forged update that got through would be answered by now (one user's updates in order)
        assert len(emu.sent(STRANGER)) == 1, "only the post with the right secret and path was answered"

        health = httpx.get(f"http://127.0.0.1:{metrics}/healthz", timeout=5)
        assert f"updates: webhook {hook}" in health.text
        assert SECRET not in health.text
        assert not [m for _, m, _ in emu.requests if m == "getUpdates"], "no polling in webhook mode"
    finally:
        code, output = stop(proc)
    assert code == 0, output
    assert refused(port) and refused(metrics), "nothing listens after the bot stopped"
    assert TOKEN not in output and SECRET not in output


def test_a_process_without_update_receiver_runs_jobs_and_never_touches_updates(
    tmp_path: Path, emu: BotApiEmulator, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/ru.xml").respond_with_data(RU_FEED, content_type="application/rss+xml")
    web = f"http://127.0.0.1:{free_port()}/hook"  # the webhook another process (the web role) serves
    emu.webhook_retry = 5.0
    metrics = free_port()
    config = write_config(tmp_path, emu, httpserver.url_for("/ru.xml"), metrics=metrics)
    script = (
        "import sys; from core.config import load_config; from service.app import run_bot; "
        "sys.exit(run_bot(load_config(sys.argv[1]), receive_updates=False))"
    )
    with httpx.Client() as client:  # the web process set the webhook, as Telegram would have it
        reply = client.post(f"{emu.base_url}{TOKEN}/setWebhook", json={"url": web, "secret_token": SECRET})
        assert reply.json()["ok"]
    before = len(emu.requests)
    proc = start("-c", script, str(config))
    try:
        alerts = emu.wait_for(READER, 1, timeout=30)
        assert alerts and any(SEED_TITLE in m.text for m in alerts), stop(proc)
        health = httpx.get(f"http://127.0.0.1:{metrics}/healthz", timeout=5).text
        assert "updates: none (this process runs jobs only)" in health
    finally:
        code, output = stop(proc)
    assert code == 0, output
    methods = {method for _, method, _ in emu.requests[before:]}
    assert "getMe" in methods and "sendMessage" in methods
    assert not methods & {"getUpdates", "setWebhook", "deleteWebhook"}, sorted(methods)
    assert emu.webhook is not None and emu.webhook.url == web, "the web process's webhook is left alone"


@pytest.mark.parametrize(
    ("name", "env", "error"),
    [
        (
            "secret variable unset",
            {"WEBHOOK_SECRET": ""},
            "telegram.webhook.secret_token_env: WEBHOOK_SECRET is not set",
        ),
        (
            "secret variable not a token",
            {"WEBHOOK_SECRET": "has spaces"},
            "telegram.webhook.secret_token_env: WEBHOOK_SECRET must be 1–256 characters",
        ),
        ("webhook port in use", {}, "telegram.webhook.listen: cannot listen on 127.0.0.1:"),
        ("telegram unreachable", {}, "cannot reach Telegram at http://127.0.0.1:"),
    ],
)
def test_webhook_start_up_problems_are_one_line(
    tmp_path: Path, emu: BotApiEmulator, name: str, env: dict[str, str], error: str
) -> None:
    with socket.socket() as taken, socket.socket() as closed:
        taken.bind(("127.0.0.1", 0))
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections to it are refused
        port = taken.getsockname()[1]
        if name == "webhook port in use":
            taken.listen()
        else:
            taken.close()
        config = write_config(tmp_path, emu, "https://feeds.example/none.xml", webhook_keys(port))
        if name == "telegram unreachable":
            text = config.read_text(encoding="utf-8")
            config.write_text(text.replace(emu.base_url, f"http://127.0.0.1:{closed.getsockname()[1]}/bot"), "utf-8")
        proc = start(str(REPO / "bot.py"), "--config", str(config), "run", env=env)
        code, output = stop(proc) if proc.wait(timeout=60) is not None else (1, "")
    assert code == 1, name
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and error in errors[0], output
    assert "Traceback" not in output and SECRET not in output and TOKEN not in output
