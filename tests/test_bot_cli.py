"""The command line as a user runs it: `bot.py check`, `bot.py match`, `bot.py run` without a token."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FEEDS = REPO / "examples" / "feeds"


def bot(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "bot.py"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def test_check_passes_on_the_shipped_config() -> None:
    result = bot("check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: ")


def test_check_lists_every_problem_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("version: 1\nrules:\n  - name: x\n    all: [NOPE]\n", encoding="utf-8")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "rules: {files: [rules.yaml]}\nfeeds:\n  - {url: 'https://a.example/', interval: 5}\n", encoding="utf-8"
    )
    result = bot("--config", str(cfg), "check")
    assert result.returncode == 1
    assert f"{cfg}:3: feeds[0].interval: must be ≥ 60 seconds" in result.stderr
    # the config problem does not hide the rule problem
    cfg.write_text("rules: {files: [rules.yaml]}\n", encoding="utf-8")
    result = bot("--config", str(cfg), "check")
    assert result.returncode == 1 and "rules.yaml:4" in result.stderr and "NOPE" in result.stderr


RULES = "version: 1\ngroups:\n  DPRK: {aliases: [КНДР]}\nrules:\n  - name: military\n    all: [DPRK]\n"


def test_check_finds_a_misspelled_subscription_rule_with_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "rules: {files: [rules.yaml]}\nadmins: [1]\nsubscriptions:\n"
        "  - chat: 5\n    rules:\n      - military\n      - militray\n",
        encoding="utf-8",
    )
    result = bot("--config", str(cfg), "check")
    assert result.returncode == 1, result.stdout
    assert f"{cfg}:7: subscriptions[0].rules[1]: unknown rule 'militray' (did you mean 'military'?)" in result.stderr


def test_check_reports_config_and_rule_problems_together_even_with_an_empty_glob(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("version: 1\nrules:\n  - name: x\n    all: [NOPE]\n", encoding="utf-8")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "rules: {files: [rules.yaml, 'extra/*.yaml']}\nfeeds:\n  - {url: 'https://a.example/', interval: 5}\n",
        encoding="utf-8",
    )
    result = bot("--config", str(cfg), "check")
    assert result.returncode == 1
    assert "3 problem(s)" in result.stderr, result.stderr
    assert f"{cfg}:1: rules.files[1]: no file matches 'extra/*.yaml'" in result.stderr
    assert f"{cfg}:3: feeds[0].interval: must be ≥ 60 seconds" in result.stderr
    assert f"{tmp_path / 'rules.yaml'}:4" in result.stderr and "NOPE" in result.stderr


def test_check_warns_but_passes_on_no_admins_no_subscriptions_and_a_file_without_rules(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    (tmp_path / "groups.yaml").write_text("version: 1\ngroups:\n  RU: {aliases: [Россия]}\n", encoding="utf-8")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"rules: {{files: [rules.yaml, groups.yaml]}}\nadmins: []\nstorage: {{path: {tmp_path / 'db'}}}\n")
    result = bot("--config", str(cfg), "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: ") and "3 warning(s)" in result.stdout
    assert f"{cfg}:2: admins: no admins" in result.stderr
    assert f"{cfg}: subscriptions: no subscriptions" in result.stderr
    assert f"{tmp_path / 'groups.yaml'}: rules: no rules in this file" in result.stderr


def test_check_reports_deep_nesting_as_a_problem_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("version: 1\nrules: " + "[" * 10_000 + "\n", encoding="utf-8")
    cfg = tmp_path / "config.yaml"
    cfg.write_text("rules: {files: [rules.yaml]}\n", encoding="utf-8")
    result = bot("--config", str(cfg), "check")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{tmp_path / 'rules.yaml'}:2: nested too deeply (limit 100 levels)" in result.stderr
    cfg.write_text("feeds: " + "{a: " * 10_000 + "\n", encoding="utf-8")
    result = bot("--config", str(cfg), "check")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{cfg}:1: nested too deeply (limit 100 levels)" in result.stderr


def test_match_jsonl_contract(tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {
                "id": "a",
                "title": "В КНДР сообщили о новых военных переговорах с Россией",
                "summary": "Глава Минобороны КНДР принял делегацию российских военных",
                "lang": "ru",
            },
            ensure_ascii=False,
        ),
        "{not json",
        json.dumps(
            {"id": 2, "title": "КНДР запустила баллистическую ракету в сторону Японского моря"}, ensure_ascii=False
        ),
        "",
        json.dumps({"id": "c", "summary": 5}),
    ]
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = bot("match", "--input", str(path))
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", "2"]
    assert out[0]["priority"] == "instant" and out[0]["rules"]
    assert out[0]["why"][out[0]["rules"][0]]["DPRK"] == ["КНДР"]
    assert out[1] == {"id": "2", "rules": [], "priority": None, "why": {}}
    assert f"{path}:2: skipped: malformed JSON" in result.stderr
    assert f"{path}:5: skipped" in result.stderr


@pytest.mark.parametrize("name", ["ru-politics.xml", "en-asia.atom", "ko-northkorea.xml"])
def test_match_feed_files(name: str) -> None:
    result = bot("match", "--input", str(FEEDS / name))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) >= 5
    assert any(r["priority"] == "instant" for r in records)
    assert any(r["rules"] == [] for r in records)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("hello world\n", "neither JSON Lines"),
        ("<html><body>nope</body></html>", "not a feed"),
    ],
)
def test_match_bad_input_exits_2_with_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "input"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = bot("match", "--input", str(path))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_match_reads_stdin_and_explicit_rules(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "version: 1\ngroups:\n  A: {aliases: [apple]}\nrules:\n  - {name: fruit, all: [A]}\n", encoding="utf-8"
    )
    result = bot("match", "--input", "-", "--rules", str(rules), stdin='{"id": 1, "title": "Apples"}\n')
    assert json.loads(result.stdout)["rules"] == ["fruit"]


def test_run_without_token_is_a_clear_error(tmp_path: Path) -> None:
    env = {"TELEGRAM_BOT_TOKEN": ""}
    result = bot("run", env=env)
    assert result.returncode == 1
    assert "TELEGRAM_BOT_TOKEN" in result.stderr


def test_match_into_a_closed_pipe_ends_quietly_with_exit_0(tmp_path: Path) -> None:
    line = json.dumps({"id": "a", "title": "В КНДР сообщили о новых военных переговорах с Россией"})
    (tmp_path / "in.jsonl").write_text("\n".join([line] * 3000) + "\n", encoding="utf-8")  # ~1 MB of output
    with subprocess.Popen(
        [sys.executable, str(REPO / "bot.py"), "match", "--input", str(tmp_path / "in.jsonl")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert json.loads(proc.stdout.readline())["id"] == "a"
        proc.stdout.close()  # as `| head -1` does
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_run_when_telegram_cannot_be_reached_prints_one_line_and_exits_1(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port on 127.0.0.1 that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"telegram: {{base_url: 'http://127.0.0.1:{port}/bot'}}\nadmins: [1]\n"
        f"rules: {{files: ['{REPO / 'rules'}/*.yaml']}}\nstorage: {{path: '{tmp_path / 'bot.sqlite3'}'}}\n",
        encoding="utf-8",
    )
    result = bot("--config", str(cfg), "run", env={"TELEGRAM_BOT_TOKEN": "123:secret"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"cannot reach Telegram at http://127.0.0.1:{port}/bot" in errors[0]
    assert len(result.stderr.splitlines()) <= 2, result.stderr  # the error and at most the bot_stopped log line
    assert "secret" not in result.stderr


def test_missing_config_is_a_clear_error(tmp_path: Path) -> None:
    result = bot("--config", str(tmp_path / "nope.yaml"), "run")
    assert result.returncode == 1 and "config file not found" in result.stderr


def test_run_with_an_unwritable_store_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"rules: {{files: ['{REPO / 'rules'}/*.yaml']}}\nstorage: {{path: blocker/sub/bot.sqlite3}}\n", encoding="utf-8"
    )
    result = bot("--config", str(cfg), "run", env={"TELEGRAM_BOT_TOKEN": "1:x"})
    assert result.returncode == 1
    assert "storage:" in result.stderr and "blocker" in result.stderr and "not a directory" in result.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("on_terminal", [True, False], ids=["terminal", "pipe"])
def test_match_progress_bar_on_a_terminal_only_and_stdout_stays_json(tmp_path: Path, on_terminal: bool) -> None:
    from cli.match import run_match

    lines = [json.dumps({"id": i, "title": f"КНДР и Россия: переговоры {i}", "lang": "ru"}) for i in range(3000)]
    (tmp_path / "big.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, err = io.StringIO(), (_Terminal() if on_terminal else io.StringIO())
    code = run_match(
        str(tmp_path / "big.jsonl"), rule_paths=None, config_path=str(REPO / "config.yaml"), out=out, errors=err
    )
    assert code == 0
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["id"] for r in records] == [str(i) for i in range(3000)]
    if on_terminal:
        assert "match:   0%|" in err.getvalue() and "/3000" in err.getvalue()
    else:
        assert err.getvalue() == ""


def test_the_config_path_can_come_from_monitor_config(tmp_path: Path) -> None:
    """Containers set $MONITOR_CONFIG; --config still wins."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text("feeds:\n  - {url: 'https://a.example/', interval: 5}\n", encoding="utf-8")
    result = bot("check", env={"MONITOR_CONFIG": str(cfg)})
    assert result.returncode == 1 and f"{cfg}:2: feeds[0].interval" in result.stderr
    result = bot("--config", str(REPO / "config.yaml"), "check", env={"MONITOR_CONFIG": str(cfg)})
    assert result.returncode == 0, result.stderr
