"""config.yaml validation: every problem reported at once, with line and path."""

from __future__ import annotations

import textwrap
from datetime import time
from pathlib import Path

import pytest

from core.config import FullTextConfig, is_news_search, load_config, parse_clock
from core.durations import format_duration, parse_duration
from core.errors import ConfigError
from core.yamlsrc import MAX_YAML_DEPTH, YamlProblem, load_yaml


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
    assert (cfg.telegram.poll_timeout, cfg.telegram.poll_interval) == (30, 1.0)


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
        ("poll timeout too long", "telegram: {poll_timeout: 2h}\n", "telegram.poll_timeout: must be ≤ 600 seconds"),
        ("negative poll interval", "telegram: {poll_interval: -1}\n", "telegram.poll_interval: must be between 0"),
        ("poll interval not a number", "telegram: {poll_interval: soon}\n", "telegram.poll_interval: must be a number"),
        ("feed full_text not a bool", "feeds:\n  - {url: 'https://a.example/f', full_text: yes please}\n", "full_text"),
        (
            "feed lang unknown",
            "feeds:\n  - {url: 'https://a.example/f', lang: de}\n",
            "must be one of ru, en, ko or auto",
        ),
        ("full_text quota negative", "full_text: {per_host_daily: -1}\n", "full_text.per_host_daily: must be ≥ 0"),
        ("full_text per_feed zero", "full_text: {per_feed: 0}\n", "full_text.per_feed: must be between 1 and 50"),
        ("full_text unknown key", "full_text: {per_day: 5}\n", "per_day"),
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


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[" * 10_000, id="flow sequences"),
        pytest.param("{a: " * 5_000 + "1" + "}" * 5_000, id="flow mappings"),
        pytest.param("".join(f"{'  ' * i}k{i}:\n" for i in range(300)), id="block mappings"),
    ],
)
def test_deep_nesting_is_a_problem_not_a_crash(text: str) -> None:
    with pytest.raises(YamlProblem) as info:
        load_yaml(text, "deep.yaml")
    problem = info.value.problem
    assert problem.file == "deep.yaml" and problem.line is not None
    assert problem.message == f"nested too deeply (limit {MAX_YAML_DEPTH} levels)"


def test_nesting_up_to_the_limit_loads() -> None:
    depth = MAX_YAML_DEPTH - 1  # sequences, and the scalar inside them is the last level
    data = load_yaml("[" * depth + "1" + "]" * depth, "ok.yaml").data
    for _ in range(depth):
        data = data[0]
    assert data == 1
    with pytest.raises(YamlProblem, match="nested too deeply"):
        load_yaml("[" * (depth + 1) + "1" + "]" * (depth + 1), "deep.yaml")


def test_a_deeply_nested_config_file_is_a_config_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "feeds: " + "[" * 10_000 + "\n")
    assert problems(path) == [f"{path}:1: nested too deeply (limit {MAX_YAML_DEPTH} levels)"]


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


def test_metrics_and_logging_default_to_off_and_text(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "feeds: []\n"))
    assert not cfg.metrics.enabled
    assert (cfg.logging.format, cfg.logging.level) == ("text", "info")


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [
        ("127.0.0.1:9464", "127.0.0.1", 9464),
        ("0.0.0.0:80", "0.0.0.0", 80),
        ("'[::1]:9464'", "::1", 9464),
        ("metrics.internal:65535", "metrics.internal", 65535),
    ],
)
def test_metrics_listen_forms(tmp_path: Path, listen: str, host: str, port: int) -> None:
    cfg = load_config(write(tmp_path, f"metrics:\n  listen: {listen}\nlogging: {{format: json, level: DEBUG}}\n"))
    assert cfg.metrics.enabled
    assert (cfg.metrics.host, cfg.metrics.port) == (host, port)
    assert (cfg.logging.format, cfg.logging.level) == ("json", "debug")


@pytest.mark.parametrize(
    ("name", "listen", "fragment"),
    [
        ("port zero", "127.0.0.1:0", "port must be a number from 1 to 65535, got '0'"),
        ("port too big", "127.0.0.1:70000", "port must be a number from 1 to 65535, got '70000'"),
        ("no port", "localhost", "must be HOST:PORT (e.g. 127.0.0.1:9464)"),
        ("no host", "':9464'", "must be HOST:PORT"),
        ("bare IPv6", "'::1:9464'", "put an IPv6 host in brackets"),
        ("bad IPv4", "300.1.2.3:80", "'300.1.2.3' is not an IPv4 address"),
        ("bad IPv6", "'[nope]:80'", "'nope' is not an IPv6 address"),
        ("bad host", "'ex ample:80'", "is not an IPv4 address or host name"),
        ("a number", "9464", "must be a string, got 9464"),
    ],
)
def test_metrics_listen_problems_name_file_line_and_path(tmp_path: Path, name: str, listen: str, fragment: str) -> None:
    path = write(tmp_path, f"feeds: []\nmetrics:\n  listen: {listen}\n")
    found = problems(path)
    assert len(found) == 1, name
    assert found[0].startswith(f"{path}:3: metrics.listen: "), found
    assert fragment in found[0], found


def test_logging_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "logging:\n  format: xml\n  level: loud\n  colour: true\n")
    found = problems(path)
    assert any(":2: logging.format: must be one of text, json, got 'xml'" in p for p in found), found
    assert any(":3: logging.level: must be one of debug, info, warning, error, got 'loud'" in p for p in found), found
    assert any(":4: logging.colour: unknown key" in p for p in found), found


def test_delivery_keys_defaults_and_problems(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "feeds: []\ndelivery:\n  stale_after: 2h\n"))
    assert (config.delivery.stale_after, config.delivery.max_instant_per_pass) == (7200, 10)
    path = write(tmp_path, "delivery:\n  stale_after: soon\n  max_instant_per_pass: 0\n  flood: true\n")
    found = problems(path)
    assert any(":2: delivery.stale_after:" in p for p in found), found
    assert any(":3: delivery.max_instant_per_pass: must be at least 1, got 0" in p for p in found), found
    assert any(":4: delivery.flood: unknown key" in p for p in found), found


def test_a_feed_url_urllib_cannot_split_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = write(tmp_path, "feeds:\n  - http://[bad/rss\n  - https://ok.example/rss\n")
    assert [p.split(": ", 1)[1] for p in problems(path)] == ["feeds[0].url: must be a valid URL, got 'http://[bad/rss'"]


def test_a_subscription_may_opt_out_of_stories(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "subscriptions:\n  - {chat: 5, stories: off}\n  - {chat: 6}\n"))
    assert [s.stories for s in cfg.subscriptions] == [False, True]
    path = write(tmp_path, "subscriptions:\n  - {chat: 5, stories: sometimes}\n")
    assert any("stories" in p and "sometimes" in p for p in problems(path))


def test_full_text_and_lang_auto_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "feeds:\n"
        "  - {url: 'https://news.google.com/rss/search?q=x', lang: auto}\n"
        "  - {url: 'https://thin.example/rss', full_text: true, lang: ru}\n"
        "  - {url: 'https://news.google.com/rss/search?q=y', full_text: false}\n"
        "full_text: {per_host_daily: 50, per_feed: 3, timeout: 10, max_bytes: 2000000}\n",
    )
    config = load_config(path)
    assert [(f.lang, f.full_text) for f in config.feeds] == [(None, None), ("ru", True), (None, False)]
    assert config.full_text == FullTextConfig(per_host_daily=50, per_feed=3, timeout=10.0, max_bytes=2_000_000)
    assert load_config(write(tmp_path, "feeds: []\n")).full_text == FullTextConfig()


@pytest.mark.parametrize(
    ("url", "news_search"),
    [
        ("https://news.google.com/rss/search?q=KNDR&hl=ru", True),
        ("https://www.bing.com/news/search?q=North+Korea&format=rss", True),
        ("https://www.bing.com/search?q=x&format=rss", False),
        ("https://tass.ru/rss/v2.xml", False),
        ("https://google.com/news/rss", False),
    ],
)
def test_news_search_feeds_are_recognised(url: str, news_search: bool) -> None:
    assert is_news_search(url) is news_search


# -- source kinds: telegram channels and pages -----------------------------------------------------


def test_telegram_and_page_sources_from_config(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """\
            feeds:
              - {telegram: "@kursk_front", lang: ru}
              - {telegram: "t.me/nk_watch"}
              - {telegram: "https://t.me/s/Rybar"}
              - page: https://mil.example.ru/news/
                item: div.newsitem
                title: a.title
                link: a.title
                date: .date
              - {page: "https://mnd.example.kr/n", item: //li, title: .//strong, link: "string(a/@href)", xpath: true}
              - https://example.org/rss
            """,
        )
    )
    kinds = [(f.kind, f.url, f.name) for f in cfg.feeds]
    assert kinds == [
        ("telegram", "https://t.me/s/kursk_front", "@kursk_front"),
        ("telegram", "https://t.me/s/nk_watch", "@nk_watch"),
        ("telegram", "https://t.me/s/Rybar", "@Rybar"),
        ("page", "https://mil.example.ru/news/", "mil.example.ru"),
        ("page", "https://mnd.example.kr/n", "mnd.example.kr"),
        ("rss", "https://example.org/rss", "example.org"),
    ]
    assert cfg.feeds[0].spec == '{"channel": "kursk_front"}'
    assert '"item": "div.newsitem"' in cfg.feeds[3].spec and '"xpath": false' in cfg.feeds[3].spec
    assert '"xpath": true' in cfg.feeds[4].spec


def test_telegram_web_base_is_where_previews_are_read(tmp_path: Path) -> None:
    text = "polling: {telegram_web: 'http://127.0.0.1:8080/'}\nfeeds:\n  - {telegram: '@kursk_front'}\n"
    assert load_config(write(tmp_path, text)).feeds[0].url == "http://127.0.0.1:8080/s/kursk_front"


@pytest.mark.parametrize(("text", "kind"), [("", "thread"), ("polling: {cpu_pool: process}\n", "process")])
def test_cpu_pool_kind_is_chosen_in_config(tmp_path: Path, text: str, kind: str) -> None:
    assert load_config(write(tmp_path, text + "feeds:\n  - https://example.org/rss\n")).polling.cpu_pool == kind


def test_an_unknown_cpu_pool_kind_names_the_kinds(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "polling: {cpu_pool: processes}\nfeeds:\n  - https://example.org/rss\n"))
    assert any("polling.cpu_pool: must be one of thread, process, inline" in p for p in found), found


SOURCE_PROBLEMS = {
    "not a channel name": ("feeds:\n  - {telegram: 'kursk front'}\n", "feeds[0].telegram: must be a public channel"),
    "a private invite link": (
        "feeds:\n  - {telegram: 't.me/+AbCdEf'}\n",
        "feeds[0].telegram: must be a public channel",
    ),
    "two kinds at once": (
        "feeds:\n  - {telegram: '@kursk_front', url: 'https://x.example/rss'}\n",
        "feeds[0]: give one of url, telegram or page, not url and telegram",
    ),
    "page without selectors": ("feeds:\n  - {page: 'https://x.example/'}\n", "feeds[0]: item selector missing"),
    "page without a link selector": (
        "feeds:\n  - {page: 'https://x.example/', item: li, title: h2}\n",
        "feeds[0]: link selector missing",
    ),
    "bad CSS selector": (
        "feeds:\n  - {page: 'https://x.example/', item: 'li[', title: h2, link: a}\n",
        "feeds[0].item: not a CSS selector: 'li['",
    ),
    "bad XPath": (
        "feeds:\n  - {page: 'https://x.example/', item: '//li[', title: h2, link: a, xpath: true}\n",
        "feeds[0].item: not an XPath expression: '//li['",
    ),
    "selectors on an RSS feed": (
        "feeds:\n  - {url: 'https://x.example/rss', item: li}\n",
        "feeds[0].item: selectors (item, title, link, summary, date, xpath) need a page: source",
    ),
    "page URL not http": ("feeds:\n  - {page: 'ftp://x.example/', item: li, title: h2, link: a}\n", "feeds[0].page"),
    "same channel twice": (
        "feeds:\n  - {telegram: '@kursk_front'}\n  - {telegram: 't.me/kursk_front'}\n",
        "feeds[1].telegram: duplicate of feeds[0]",
    ),
    "bad telegram_web": ("polling: {telegram_web: 't.me'}\n", "polling.telegram_web: must be an http(s):// base URL"),
}


@pytest.mark.parametrize("case", list(SOURCE_PROBLEMS.values()), ids=list(SOURCE_PROBLEMS))
def test_source_problems_are_clear(tmp_path: Path, case: tuple[str, str]) -> None:
    text, fragment = case
    found = problems(write(tmp_path, text))
    assert any(fragment in p for p in found), found


@pytest.mark.parametrize(
    ("value", "days"),
    [(None, 365.0), ("null", None), ("forever", None), ("90d", 90.0), ("52w", 364.0), ("36h", 1.5)],
)
def test_storage_retention_forms(tmp_path: Path, value: str | None, days: float | None) -> None:
    storage = "" if value is None else f"storage:\n  retention: {value}\n"
    cfg = load_config(write(tmp_path, "feeds:\n  - https://example.org/rss\n" + storage))
    assert cfg.retention_days == days


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("365", "a bare number is seconds: write 365d"),
        ("soon", "such as 365d or 52w, or forever"),
        ("2h", "at least 1d"),
    ],
)
def test_storage_retention_problems(tmp_path: Path, value: str, fragment: str) -> None:
    found = problems(write(tmp_path, f"feeds:\n  - https://example.org/rss\nstorage:\n  retention: {value}\n"))
    assert any("storage.retention" in p and fragment in p for p in found), found


def test_feed_labels_are_read_and_bad_ones_named(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "feeds:\n  - {url: 'https://tass.example/rss', labels: [state-media, wire]}\n"))
    assert cfg.feeds[0].labels == ("state-media", "wire")
    found = problems(write(tmp_path, "feeds:\n  - {url: 'https://a.example/rss', labels: [State Media, 3]}\n"))
    assert any("feeds[0].labels[0]" in p and "lower-case" in p for p in found), found
    assert any("feeds[0].labels[1]" in p for p in found), found
    found = problems(write(tmp_path, "feeds:\n  - {url: 'https://a.example/rss', labels: {a: 1}}\n"))
    assert any("feeds[0].labels" in p and "must be a list" in p for p in found), found


def test_the_shipped_config_labels_state_media_wires_and_think_tanks() -> None:
    cfg = load_config(Path(__file__).resolve().parents[1] / "config.yaml")
    labels = {f.name: f.labels for f in cfg.feeds}
    assert "state-media" in labels["ТАСС"] and "state-media" in labels["РИА Новости"]
    assert labels["Yonhap (North Korea)"] == ("wire",) and labels["38 North"] == ("think-tank",)


def test_spikes_defaults_and_validation(tmp_path: Path) -> None:
    d = load_config(write(tmp_path, "feeds: []\n")).spikes
    assert (d.enabled, d.window, d.baseline_days, d.factor, d.min_items) == (True, 6 * 3600, 14, 3.0, 5)
    cfg = load_config(
        write(tmp_path, "spikes: {window: 3h, baseline: 7d, factor: 2.5, min_items: 8, enabled: false}\n")
    )
    s = cfg.spikes
    assert (s.enabled, s.window, s.baseline_days, s.factor, s.min_items) == (False, 3 * 3600, 7, 2.5, 8)
    found = problems(write(tmp_path, "spikes: {factor: 1, min_items: 0, baseline: 36h, window: 2d, windw: 6h}\n"))
    for path in ("spikes.factor", "spikes.min_items", "spikes.baseline", "spikes.window", "spikes.windw"):
        assert any(path in p for p in found), (path, found)


def test_interface_language_is_a_known_language(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "feeds: []\n")).interface.language == "en"
    assert load_config(write(tmp_path, "feeds: []\ninterface: {language: ru}\n")).interface.language == "ru"
    assert any(
        "interface.language" in p and "en, ru" in p and "'de'" in p
        for p in problems(write(tmp_path, "feeds: []\ninterface: {language: de}\n"))
    )
    assert any("interface" in p for p in problems(write(tmp_path, "feeds: []\ninterface: {lang: ru}\n")))


def test_webhook_config_gets_its_path_from_the_url_and_polling_stays_the_default(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "feeds: []\n")).telegram.webhook is None
    path = write(
        tmp_path,
        """\
        telegram:
          webhook: {url: "https://bot.example.org/tg/hook", listen: "0.0.0.0:8080", secret_token: a_B-9}
        """,
    )
    hook = load_config(path).telegram.webhook
    assert hook is not None
    assert (hook.url, hook.host, hook.port, hook.path, hook.max_connections) == (
        "https://bot.example.org/tg/hook",
        "0.0.0.0",
        8080,
        "/tg/hook",
        40,
    )
    assert hook.secret() == "a_B-9"
    behind_a_proxy = write(
        tmp_path,
        "telegram:\n  webhook: {url: 'https://bot.example.org:8443/x', path: /hook, secret_token_env: HOOK_SECRET}\n",
    )
    hook = load_config(behind_a_proxy).telegram.webhook
    assert hook is not None and (hook.path, hook.host, hook.port) == ("/hook", "127.0.0.1", 8443)
    assert hook.secret_token is None and hook.secret_token_env == "HOOK_SECRET"


def webhook(extra: str = "", url: str = "https://bot.example.org/hook", secret: str = "secret_token: s3cret") -> str:
    keys = ", ".join(key for key in (f"url: '{url}'" if url else "", secret, extra) if key)
    return f"telegram:\n  webhook: {{{keys}}}\n"


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("plain http to a public host", webhook(url="http://bot.example.org/hook"), "must be an https:// URL"),
        (
            "a port Telegram does not post to",
            webhook(url="https://bot.example.org:9000/h"),
            "only to ports 443, 80",
        ),
        ("not a URL", webhook(url="https://[::1/h"), "telegram.webhook.url: must be a valid URL"),
        ("no url", "telegram:\n  webhook: {secret_token: s3cret}\n", "telegram.webhook.url: missing"),
        ("empty mapping", "telegram:\n  webhook: {}\n", "telegram.webhook: needs at least url"),
        ("no secret", "telegram:\n  webhook: {url: 'https://bot.example.org/h'}\n", "webhook.secret_token: missing"),
        (
            "secret with a space",
            webhook(secret="secret_token: 'two words'"),
            "webhook.secret_token: must be 1–256 characters",
        ),
        (
            "secret too long",
            webhook(secret=f"secret_token: {'x' * 257}"),
            "webhook.secret_token: must be 1–256 characters",
        ),
        ("secret twice", webhook("secret_token_env: S"), "give secret_token or secret_token_env, not both"),
        ("bad env name", "telegram:\n  webhook: {url: 'https://a.org/h', secret_token_env: 'A B'}\n", "environment"),
        ("listen not host:port", webhook("listen: '8443'"), "telegram.webhook.listen: must be HOST:PORT"),
        ("path without slash", webhook("path: hook"), "telegram.webhook.path: must start with /"),
        ("path with regex characters", webhook("path: '/h.*'"), "telegram.webhook.path: must start with /"),
        ("url path needs a path key", webhook(url="https://a.org/h~x"), "telegram.webhook.url: its path '/h~x'"),
        ("max_connections 0", webhook("max_connections: 0"), "max_connections: must be between 1 and 100"),
        ("unknown key", webhook("certificate: x.pem"), "telegram.webhook.certificate: unknown key"),
        (
            "same port as metrics",
            webhook("listen: '127.0.0.1:9464'") + "metrics: {listen: '127.0.0.1:9464'}\n",
            "telegram.webhook.listen: is also metrics.listen",
        ),
    ],
)
def test_webhook_config_errors_name_the_key(tmp_path: Path, name: str, text: str, fragment: str) -> None:
    found = problems(write(tmp_path, text))
    assert any(fragment in p for p in found), (name, found)


@pytest.mark.parametrize(
    ("storage", "target"),
    [
        ("path: data/bot.sqlite3", "data/bot.sqlite3"),
        ("url: sqlite:///data/bot.sqlite3", "data/bot.sqlite3"),  # relative to the config's folder, as path
        ("url: sqlite:////srv/bot.sqlite3", "/srv/bot.sqlite3"),
        ("url: 'postgresql://bot@db.example:5432/monitor?sslmode=require'", "postgresql://bot@db.example:5432/monitor?sslmode=require"),
    ],
)  # fmt: skip
def test_storage_url_or_path_names_the_store(tmp_path: Path, storage: str, target: str) -> None:
    cfg = load_config(write(tmp_path, f"feeds:\n  - https://example.org/rss\nstorage:\n  {storage}\n"))
    expected = (
        target if target.startswith("postgresql") else Path(target) if target.startswith("/") else tmp_path / target
    )
    assert cfg.storage_target == expected


@pytest.mark.parametrize(
    ("name", "storage", "fragments"),
    [
        ("both keys", "{path: x.sqlite3, url: 'postgresql://bot@db/m'}", ["storage.url", "storage.path", "both set"]),
        ("a password", "{url: 'postgresql://bot:s3cret@db/monitor'}", ["PGPASSWORD", "postgresql://bot@db/monitor"]),
        ("a password option", "{url: 'postgresql://bot@db/monitor?password=s3cret'}", ["PGPASSWORD", "~/.pgpass"]),
        ("another database", "{url: 'mysql://bot@db/monitor'}", ["sqlite:///path or postgresql://"]),
        ("a relative sqlite URL without its third slash", "{url: 'sqlite://x.sqlite3'}", ["sqlite:///relative/path"]),
    ],
)  # fmt: skip
def test_storage_url_problems_are_clear_and_never_show_the_password(
    tmp_path: Path, name: str, storage: str, fragments: list[str]
) -> None:
    found = problems(write(tmp_path, f"feeds:\n  - https://example.org/rss\nstorage: {storage}\n"))
    assert any(all(f in p for f in fragments) for p in found), (name, found)
    assert not any("s3cret" in p for p in found), "the password is never repeated"


@pytest.mark.parametrize(
    ("name", "run", "roles", "fragment"),
    [
        ("default: everything", "", ("poller", "sender", "web"), None),
        ("a comma list", "run: {roles: 'sender, poller'}", ("poller", "sender"), None),
        ("a list with all", "run: {roles: [web, all]}", ("poller", "sender", "web"), None),
        ("a misspelt role", "run: {roles: [pollr]}", None, "run.roles: unknown role 'pollr' (expected all, poller"),
        ("no role", "run: {roles: []}", None, "run.roles: no role given"),
        ("a lease under a second", "run: {lease: 0.5}", None, "run.lease: must be between 1 and 86400 seconds"),
    ],
)
def test_run_roles_and_lease(
    tmp_path: Path, name: str, run: str, roles: tuple[str, ...] | None, fragment: str | None
) -> None:
    path = write(tmp_path, f"feeds:\n  - https://example.org/rss\n{run}\n")
    if fragment is None:
        assert load_config(path).run.roles == roles, name
        return
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert fragment in str(err.value), name
