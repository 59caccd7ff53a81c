"""config.yaml validation: every problem reported at once, with line and path."""

from __future__ import annotations

import textwrap
from datetime import time
from pathlib import Path

import pytest

from core.config import load_config, parse_clock
from core.durations import format_duration, parse_duration
from core.errors import ConfigError
from core.yamlsrc import YamlProblem, load_yaml


def write(tmp_path: Path, text: str, rules: bool = True) -> Path:
    if rules:
        (tmp_path / "rules").mkdir(exist_ok=True)
        (tmp_path / "rules" / "a.yaml").write_text("version: 1\n", encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "feeds:\n  - https://example.org/rss\n"))
    assert cfg.feeds[0].url == "https://example.org/rss"
    assert cfg.feeds[0].name == "example.org"
    assert cfg.feeds[0].interval == 900
    assert cfg.storage_path == tmp_path / "data" / "monitor.sqlite3"
    assert cfg.rule_files == (tmp_path / "rules" / "a.yaml",)
    assert cfg.digest.time == time(8, 0)


def test_shipped_config_is_valid(repo: Path) -> None:
    if not list((repo / "rules").glob("*.yaml")):
        pytest.skip("no rule files yet")
    cfg = load_config(repo / "config.yaml")
    langs = {f.lang for f in cfg.feeds}
    assert langs == {"ru", "en", "ko"}, "default feeds cover Russian, English and Korean outlets"
    assert all(f.interval >= 60 for f in cfg.feeds)


def test_every_problem_reported_at_once_with_line_and_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        feeds:
          - url: https://a.example/rss
          - url: ftp://b.example/rss
          - url: https://c.example/rss
            interval: 30
          - url: https://d.example/rss
            lang: fr
          - {url: https://a.example/rss}
        digest:
          time: "25:00"
          timezone: Mars/Olympus
        admins: [12, "bob"]
        polling:
          concurrency: 0
          backlog: {max_items: -1}
        telegram:
          token: "123:abc"
        colour: blue
        """,
    )
    found = problems(path)
    expected = [
        ":3: feeds[1].url: must be an http(s):// or file:// URL",
        ":5: feeds[2].interval: must be ≥ 60 seconds, got 30",
        ":7: feeds[3].lang: must be one of ru, en, ko",
        ":8: feeds[4].url: duplicate of feeds[0]",
        ":10: digest.time: must be a time of day HH:MM",
        ":11: digest.timezone: unknown IANA time zone 'Mars/Olympus'",
        ":12: admins[1]: must be a numeric Telegram user id",
        ":14: polling.concurrency: must be between 1 and 500",
        ":15: polling.backlog.max_items: must be ≥ 0",
        ":17: telegram.token: the bot token must not be in the config file",
        ":18: colour: unknown key",
    ]
    for fragment in expected:
        assert any(fragment in p for p in found), f"{fragment!r} not in {found}"
    assert len(found) == len(expected)


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("missing file", None, "config file not found"),
        ("syntax error", "feeds: [\n", "invalid YAML"),
        ("alias bomb", "a: &x [1, 2]\nb: *x\n", "aliases (*name) are not allowed"),
        ("python tag", "feeds: !!python/object/apply:os.system [id]\n", "could not determine a constructor"),
        ("feeds not a list", "feeds: {url: x}\n", "feeds: must be a list"),
        ("unknown rule file", "rules:\n  files: [nope.yaml]\n", "rule file not found: nope.yaml"),
        ("bad subscription", "subscriptions:\n  - chat: hello\n", "subscriptions[0].chat: must be a chat id"),
    ],
)
def test_clear_errors(tmp_path: Path, name: str, text: str | None, fragment: str) -> None:
    path = tmp_path / "config.yaml" if text is None else write(tmp_path, text)
    assert any(fragment in p for p in problems(path)), name


def test_durations_and_clock() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration(90) == 90
    assert parse_duration("15m") == 900
    assert format_duration(5400) == "1h30m"
    for bad in ("soon", "-5", True, "5x"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_clock("08:30") == time(8, 30)
    assert parse_clock(510) == time(8, 30)  # YAML 1.1 reads an unquoted 08:30 as 510
    assert parse_clock("8:5") is None


def test_yaml_size_cap() -> None:
    with pytest.raises(YamlProblem, match="limit"):
        load_yaml("a: " + "x" * 1_000_001, "big.yaml")


def test_subscriptions_from_config(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """\
            subscriptions:
              - chat: "@dprk_watch"
                mode: digest
                rules: [all]
                digest_time: "09:15"
                timezone: Asia/Seoul
              - chat: -1001234567890
            """,
        )
    )
    first, second = cfg.subscriptions
    assert (first.chat, first.mode, first.rules, first.digest_time, first.timezone) == (
        "@dprk_watch",
        "digest",
        (),
        time(9, 15),
        "Asia/Seoul",
    )
    assert (second.chat, second.mode) == (-1001234567890, "both")
