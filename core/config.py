"""config.yaml: load, validate, and expose as one frozen object.

Validation never stops at the first problem: every problem is collected with its file, line and
path (``feeds[3].interval: must be ≥ 60 seconds``) and raised together as :class:`ConfigError`.
Relative paths (storage, rule files) are resolved against the config file's folder. Nothing here
reads the environment except :meth:`TelegramConfig.token` and :meth:`WebhookConfig.secret`, called only
by ``bot.py run``.
"""

from __future__ import annotations

import glob
import ipaddress
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.dburl import password_problem, redact, scheme_of
from core.durations import format_duration, parse_duration
from core.errors import ConfigError, Problem
from core.i18n import LANGUAGES
from core.identity import feed_key, param_problem
from core.models import MAX_LABELS, Item, SourceKind, label_problem
from core.selectors import selector_problem
from core.workers import POOL_KINDS, PoolKind
from core.yamlsrc import PathKey, YamlDoc, YamlProblem, load_yaml

SubscriptionMode = Literal["instant", "digest", "both"]
MODES: tuple[SubscriptionMode, ...] = ("instant", "digest", "both")
LANGS = ("ru", "en", "ko")
MIN_INTERVAL = 60
MAX_POLL_TIMEOUT = 600  # getUpdates long-polling timeout, seconds
MAX_POLL_INTERVAL = 60.0
TELEGRAM_WEB = "https://t.me"  # public channels' web previews are read at {telegram_web}/s/NAME
_CHANNEL = re.compile(r"^(?:@|(?:https?://)?(?:www\.)?(?:t|telegram)\.me/(?:s/)?)([A-Za-z][A-Za-z0-9_]{3,31})/?$")
PAGE_SELECTORS = ("item", "title", "link", "summary", "date")
PAGE_REQUIRED = ("item", "title", "link")


@dataclass(frozen=True, slots=True)
class FeedConfig:
    url: str
    name: str
    lang: str | None
    interval: int  # seconds
    quiet_after: int | None = None  # seconds of silence before "quiet" may be flagged; None = polling's; 0 = never
    ignore_params: tuple[str, ...] = ()  # the feed's own tracking parameters (``name`` or ``prefix*``)
    full_text: bool | None = None  # fetch matched items' articles; None = only if a news-search feed
    kind: SourceKind = "rss"
    spec: str = ""  # JSON settings of a telegram or page source (see telegram_spec / page_spec)
    labels: tuple[str, ...] = ()  # what kind of outlet (state-media, wire, think-tank, ...): shown, used by rules


# Feeds that search the news (Google News, Bing News): title-only items from many outlets in many
# languages, so full article text is on and the language is detected per item unless the feed says otherwise.
NEWS_SEARCH_HOSTS = ("news.google.com", "www.bing.com", "bing.com")


def is_news_search(url: str) -> bool:
    """A Google News or Bing News feed URL (``news.google.com/rss/…``, ``bing.com/news/search?…``)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == "news.google.com":
        return True
    return host in NEWS_SEARCH_HOSTS and parts.path.lower().startswith("/news")


@dataclass(frozen=True, slots=True)
class FullTextConfig:
    """Bounds on fetching article pages for items that hit a rule group (see watchers/fulltext.py)."""

    per_host_daily: int = 200  # article fetches a day per host (UTC day); 0 = never fetch
    per_feed: int = 2  # article fetches in flight for one feed
    timeout: float = 15.0  # seconds per article request
    max_bytes: int = 3_000_000  # an article page past this (decoded) is refused; the feed text is used


def telegram_channel(text: str) -> str | None:
    """The channel's username from ``@name``, ``t.me/name``, ``https://t.me/s/name``…, or None."""
    found = _CHANNEL.match(text.strip())
    return found.group(1) if found else None


def telegram_url(channel: str, web: str = TELEGRAM_WEB) -> str:
    """Where a public channel's preview is fetched: the source's URL (its key in the store)."""
    return f"{web.rstrip('/')}/s/{channel}"


def telegram_spec(channel: str) -> str:
    return json.dumps({"channel": channel})


def page_spec(selectors: dict[str, str], xpath: bool) -> str:
    """The JSON a page source keeps: its selectors (only those given) and whether they are XPath."""
    return json.dumps({**{k: selectors[k] for k in PAGE_SELECTORS if selectors.get(k)}, "xpath": xpath}, sort_keys=True)


def page_selector_problems(selectors: dict[str, Any], xpath: bool) -> list[tuple[str, str]]:
    """(key, problem) for each missing or unusable selector of a page source."""
    need = "missing: a page needs item, title and link selectors"
    problems = [(key, need) for key in PAGE_REQUIRED if key not in selectors]
    for key in PAGE_SELECTORS:
        if key in selectors:
            problem = selector_problem(selectors[key], xpath=xpath)
            if problem:
                problems.append((key, problem))
    return problems


@dataclass(frozen=True, slots=True)
class BacklogPolicy:
    """What the first successful poll of a new feed may deliver; the rest is only marked seen."""

    max_items: int = 5  # newest N matching items at most; 0 = deliver nothing from the first poll
    max_age: int | None = 86400  # seconds; older items are not delivered (None = no age limit)

    def select(self, matching: Sequence[Item], now: datetime) -> set[str]:
        """uids of the items a first poll delivers, given the ones that *matched*: the newest
        ``max_items`` published within ``max_age`` (an item without a date counts as oldest, and is
        never "recent" when there is an age limit)."""
        if self.max_items <= 0:
            return set()
        limit = None if self.max_age is None else timedelta(seconds=self.max_age)
        recent = [i for i in matching if limit is None or (i.published is not None and now - i.published <= limit)]
        recent.sort(key=lambda i: i.published or datetime.min.replace(tzinfo=UTC), reverse=True)
        return {i.uid for i in recent[: self.max_items]}

    def describe(self) -> str:
        """The policy in one sentence, as /feed_add states it."""
        if self.max_items <= 0:
            return "Its first poll sends nothing: the items already in the feed are only marked seen."
        newest = "the newest matching item" if self.max_items == 1 else f"the {self.max_items} newest matching items"
        age = "of any age" if self.max_age is None else f"published in the last {format_duration(self.max_age)}"
        return f"Its first poll sends at most {newest} {age}; the others are only marked seen."


@dataclass(frozen=True, slots=True)
class PollingConfig:
    default_interval: int = 900
    concurrency: int = 20
    timeout: float = 20.0
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    backoff_max: int = 6 * 3600
    user_agent: str = "dprk-ru-monitor/0.1 (+https://github.com/; feed monitor)"
    allow_private_urls: bool = False
    backlog: BacklogPolicy = field(default_factory=BacklogPolicy)
    # a feed silent longer than quiet_factor × its usual gap and longer than quiet_after is flagged quiet
    quiet_after: int = 86400  # seconds; 0 = never flag (a feed may set its own)
    quiet_factor: float = 5.0
    telegram_web: str = TELEGRAM_WEB  # where t.me/s/NAME previews are read (a mirror, or 127.0.0.1 in tests)
    cpu_pool: PoolKind = "thread"  # where parsing and matching run: thread | process | inline (core/workers.py)


@dataclass(frozen=True, slots=True)
class DigestDefaults:
    time: time = time(8, 0)
    timezone: str = "UTC"
    send_empty: bool = False  # an empty period sends a short "nothing new" line instead of nothing
    trend: bool = False  # after a non-empty digest, a PNG chart of matches per day (last 14 days)


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """How instant alerts go out after downtime or in bulk (the digest carries every item either way)."""

    stale_after: int = 6 * 3600  # s: older instant alerts are folded into one "while offline" message a chat
    max_instant_per_pass: int = 10  # more than this to one chat in one pass: the rest in one summary message


WEBHOOK_PORTS = (443, 80, 88, 8443)  # the only ports Telegram posts webhooks to
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")  # where a plain http:// webhook URL is allowed (tests)
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_WEBHOOK_PATH = re.compile(r"/[A-Za-z0-9_/-]*")  # PTB routes the path as a regular expression: no metacharacters
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def secret_token_problem(value: str) -> str | None:
    """Why Telegram would refuse ``value`` as a webhook secret token, or None."""
    if _SECRET_TOKEN.fullmatch(value):
        return None
    return f"must be 1–256 characters of A-Z, a-z, 0-9, _ and - (as Telegram requires), got {len(value)} characters"


def webhook_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook URL, or None: https:// on a port Telegram posts to; plain http://
    only to 127.0.0.1/localhost (a local Bot API server or the test emulator)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"must be a valid URL, got {url!r}"
    if parts.scheme == "http" and parts.hostname in LOCAL_HOSTS:
        return None
    if parts.scheme != "https" or not parts.hostname:
        return f"must be an https:// URL (http:// only for 127.0.0.1 or localhost), got {url!r}"
    if port is not None and port not in WEBHOOK_PORTS:
        ports = ", ".join(map(str, WEBHOOK_PORTS))
        return f"Telegram posts webhooks only to ports {ports}; got port {port} in {url!r}"
    if parts.fragment:
        return f"must not have a #fragment, got {url!r}"
    return None


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """``telegram.webhook``: Telegram POSTs updates to ``url``; the bot serves ``path`` on ``host:port``
    (behind a reverse proxy that terminates TLS). Absent: the bot long-polls getUpdates."""

    url: str
    host: str = "127.0.0.1"
    port: int = 8443
    path: str = "/"  # the local path served; defaults to the path of ``url``
    secret_token: str | None = None  # in the file, or …
    secret_token_env: str | None = None  # … the name of the environment variable that holds it
    max_connections: int = 40

    def secret(self) -> str | None:
        """The secret token Telegram sends in X-Telegram-Bot-Api-Secret-Token (None: the variable is unset)."""
        if self.secret_token:
            return self.secret_token
        value = os.environ.get(self.secret_token_env or "", "").strip()
        return value or None


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    token_env: str = "TELEGRAM_BOT_TOKEN"
    base_url: str | None = None  # e.g. http://127.0.0.1:8081/bot for a local Bot API server
    base_file_url: str | None = None
    # getUpdates long-polling timeout: Telegram holds the request open this long when there is nothing
    poll_timeout: int = 30
    # pause after each getUpdates answer: bounds the rate (≤ 1/s) against a server that does not long-poll
    poll_interval: float = 1.0
    webhook: WebhookConfig | None = None  # None: long polling (the default)

    def token(self) -> str | None:
        value = os.environ.get(self.token_env, "").strip()
        return value or None


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """The /metrics and /healthz HTTP endpoint; off unless ``metrics.listen`` is set."""

    host: str | None = None  # None = off
    port: int = 0

    @property
    def enabled(self) -> bool:
        return self.host is not None


LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    format: LogFormat = "text"  # text: key=value lines; json: one object a line
    level: str = "info"


@dataclass(frozen=True, slots=True)
class InterfaceConfig:
    language: str = "en"  # groups and channels (and private chats whose user gives no language_code)


@dataclass(frozen=True, slots=True)
class SubscriptionConfig:
    chat: int | str  # numeric chat id or "@channelusername"
    mode: SubscriptionMode = "both"
    rules: tuple[str, ...] = ()  # empty = all rules
    digest_time: time | None = None
    timezone: str | None = None
    stories: bool = True  # later reports of a story edit its first alert; False: every item alerted


DEFAULT_RETENTION_DAYS = 365.0


def _storage_url(r: _Reader, sm: dict[str, Any]) -> tuple[str | None, Path | None]:
    """``storage.url``: (the PostgreSQL URL, None) or (None, the SQLite path it names); (None, None) unset.
    Both storage.url and storage.path set, a password inside the URL or another scheme is a problem."""
    url = r.get(sm, "url", ("storage",), str, None)
    if url is None:
        return None, None
    shown = redact(url)
    if sm.get("path") is not None:
        r.fail(("storage", "url"), f"storage.url ({shown}) and storage.path ({sm['path']}) are both set: keep one "
               "(storage.path is the short form of storage.url: sqlite:///path)")  # fmt: skip
        return None, None
    scheme = scheme_of(url)
    if scheme == "sqlite":
        rest = url[len("sqlite://") :]
        if not rest.startswith("/") or len(rest) < 2:
            r.fail(("storage", "url"), f"{url!r}: write sqlite:///relative/path or sqlite:////absolute/path")
            return None, None
        return None, Path(rest[1:])
    if scheme in ("postgresql", "postgres"):
        problem = password_problem(url)
        if problem:
            r.fail(("storage", "url"), problem)
            return None, None
        return url, None
    r.fail(("storage", "url"), f"{shown}: must be sqlite:///path or postgresql://user@host[:port]/database")
    return None, None


def _retention(r: _Reader, sm: dict[str, Any]) -> float | None:
    """``storage.retention``: a duration of at least a day, or ``null`` / ``forever`` (keep all text)."""
    if "retention" not in sm:
        return DEFAULT_RETENTION_DAYS
    value = sm["retention"]
    if value is None or (isinstance(value, str) and value.strip().lower() in ("forever", "never")):
        return None
    try:
        seconds = parse_duration(value)
    except ValueError:
        r.fail(("storage", "retention"), f"must be a duration such as 365d or 52w, or forever; got {value!r}")
        return DEFAULT_RETENTION_DAYS
    if seconds < 86400:
        r.fail(
            ("storage", "retention"),
            f"must be at least 1d, got {value!r} ({seconds} seconds; a bare number is seconds: write 365d)",
        )
        return DEFAULT_RETENTION_DAYS
    return seconds / 86400


ROLES = ("poller", "sender", "web")  # what a `bot.py run` process does (service/app.py)


def parse_roles(values: str | Sequence[str]) -> tuple[str, ...]:
    """``all``, ``poller``, ``sender``, ``web``, as a comma list or several values, in :data:`ROLES` order;
    ValueError names an unknown one."""
    words = [values] if isinstance(values, str) else list(values)
    out: set[str] = set()
    for word in words:
        for part in str(word).split(","):
            role = part.strip().lower()
            if role == "all":
                out.update(ROLES)
            elif role in ROLES:
                out.add(role)
            elif role:
                raise ValueError(f"unknown role {part.strip()!r} (expected all, {', '.join(ROLES)})")
    if not out:
        raise ValueError(f"no role given (expected all, {', '.join(ROLES)})")
    return tuple(r for r in ROLES if r in out)


@dataclass(frozen=True, slots=True)
class RunConfig:
    """``run:`` — what this process does and how long its claims hold (several workers, issue 14)."""

    roles: tuple[str, ...] = ROLES  # `bot.py run --role` wins
    lease: float = 120.0  # s: a dead worker's claims (feeds, chats, sends in flight, digests) expire after this
    tick: float = 30.0  # s: how often the poll and digest jobs run (the deliver job: every min(10, tick) s)


@dataclass(frozen=True, slots=True)
class SpikeSettings:
    """``spikes:`` in config.yaml (delivery/spikes.py decides with it)."""

    enabled: bool = True
    window: int = 6 * 3600  # seconds: the recent period compared with the same hours of earlier days
    baseline_days: int = 14
    factor: float = 3.0
    min_items: int = 5


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    feeds: tuple[FeedConfig, ...]
    rule_files: tuple[Path, ...]
    storage_path: Path  # the SQLite file (storage.path, or a sqlite:/// storage.url)
    admins: tuple[int, ...] = ()
    polling: PollingConfig = field(default_factory=PollingConfig)
    digest: DigestDefaults = field(default_factory=DigestDefaults)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    subscriptions: tuple[SubscriptionConfig, ...] = ()
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    full_text: FullTextConfig = field(default_factory=FullTextConfig)
    # storage.retention: how long items' text is kept (and searchable); None = forever. Ids are kept always.
    retention_days: float | None = DEFAULT_RETENTION_DAYS
    spikes: SpikeSettings = field(default_factory=SpikeSettings)
    interface: InterfaceConfig = field(default_factory=InterfaceConfig)
    run: RunConfig = field(default_factory=RunConfig)
    storage_url: str | None = None  # storage.url when it is postgresql://… (no password: core/dburl.py)

    @property
    def storage_target(self) -> Path | str:
        """What ``Store.open`` takes: the PostgreSQL URL when one is configured, else the SQLite file."""
        return self.storage_url if self.storage_url is not None else self.storage_path


class _Reader:
    """Typed reads from a YamlDoc that record problems instead of raising."""

    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def fail(self, path: PathKey, message: str) -> None:
        self.problems.append(self.doc.problem(path, message))

    def mapping(self, value: Any, path: PathKey, known: set[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, got {type(value).__name__}")
            return {}
        for key in value:
            if key not in known:
                hint = ", ".join(sorted(known))
                self.fail((*path, key), f"unknown key (expected one of: {hint})")
        return value

    def bounded(
        self,
        m: dict[str, Any],
        key: str,
        path: PathKey,
        kind: type | tuple[type, ...],
        default: Any,
        ok: Callable[[Any], bool],
        rule: str,
    ) -> Any:
        """:meth:`get`, then ``ok(value)`` or the problem "must be <rule>, got <value>" and the default."""
        value = self.get(m, key, path, kind, default)
        if not ok(value):
            self.fail((*path, key), f"must be {rule}, got {value}")
            return default
        return value

    def get(self, m: dict[str, Any], key: str, path: PathKey, kind: type | tuple[type, ...], default: Any) -> Any:
        if key not in m or m[key] is None:
            return default
        value = m[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.fail((*path, key), f"must be {_kind_name(kinds)}, got {value!r}")
            return default
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kinds):
            self.fail((*path, key), f"must be {_kind_name(kinds)}, got {value!r}")
            return default
        return value

    def duration(self, m: dict[str, Any], key: str, path: PathKey, default: int | None, minimum: int = 0) -> int | None:
        if key not in m or m[key] is None:
            return default
        try:
            seconds = parse_duration(m[key])
        except ValueError as exc:
            self.fail((*path, key), str(exc))
            return default
        if seconds < minimum:
            self.fail((*path, key), f"must be ≥ {minimum} seconds, got {seconds}")
            return default
        return seconds

    def clock(self, m: dict[str, Any], key: str, path: PathKey, default: time | None) -> time | None:
        if key not in m or m[key] is None:
            return default
        parsed = parse_clock(m[key])
        if parsed is None:
            self.fail((*path, key), f"must be a time of day HH:MM, got {m[key]!r}")
            return default
        return parsed

    def zone(self, m: dict[str, Any], key: str, path: PathKey, default: str | None) -> str | None:
        if key not in m or m[key] is None:
            return default
        name = m[key]
        if not isinstance(name, str) or not valid_timezone(name):
            self.fail((*path, key), f"unknown IANA time zone {name!r} (e.g. Europe/Moscow, Asia/Seoul)")
            return default
        return name


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true or false",
        list: "a list",
        dict: "a mapping",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_clock(value: object) -> time | None:
    """``"08:30"`` → time(8, 30). YAML 1.1 reads an unquoted 08:30 as 510 (sexagesimal): accept it."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    if isinstance(value, str):
        m = _CLOCK.match(value.strip())
        if m:
            return time(int(m.group(1)), int(m.group(2)))
    return None


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def parse_listen(value: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"``, ``"[::1]:9464"``, ``"localhost:9464"`` → (host, port); ValueError says why."""
    text = value.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"must be HOST:PORT with an IPv6 host in brackets ([::1]:9464), got {value!r}")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"must be HOST:PORT (e.g. 127.0.0.1:9464), got {value!r}")
        if ":" in host:
            raise ValueError(f"put an IPv6 host in brackets ([::1]:9464), got {value!r}")
        if re.fullmatch(r"[\d.]+", host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise ValueError(f"{host!r} is not an IPv4 address") from None
        elif not _HOSTNAME.match(host):
            raise ValueError(f"{host!r} is not an IPv4 address or host name")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number from 1 to 65535, got {port_text!r}")
    return host, int(port_text)


def _valid_feed_url(url: str) -> str | None:
    """An error message, or None. file:// is allowed (bundled and local feeds)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return "must be a valid URL"
    if parts.scheme in ("http", "https"):
        return None if parts.hostname else "must include a host"
    if parts.scheme == "file":
        return None
    return "must be an http(s):// or file:// URL"


def _telegram_web(r: _Reader, m: dict[str, Any], path: PathKey, default: str) -> str:
    web: str = r.get(m, "telegram_web", path, str, default)
    parts = urlsplit(web)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        r.fail((*path, "telegram_web"), f"must be an http(s):// base URL such as https://t.me, got {web!r}")
        return default
    return web.rstrip("/")


def _source(r: _Reader, fm: dict[str, Any], fp: PathKey, telegram_web: str) -> tuple[SourceKind, str, str, str] | None:
    """(kind, url, spec, default name) of one ``feeds[]`` entry, or None after recording its problems.

    An entry is exactly one of ``url:`` (RSS/Atom), ``telegram: "@name"`` or ``page: URL`` with selectors."""
    given = [key for key in ("url", "telegram", "page") if fm.get(key) is not None]
    if not given:
        r.fail(fp, 'missing url (or telegram: "@channel", or page: URL with selectors)')
        return None
    if len(given) > 1:
        r.fail(fp, f"give one of url, telegram or page, not {' and '.join(given)}")
        return None
    key = given[0]
    selectors = {k: fm[k] for k in (*PAGE_SELECTORS, "xpath") if k in fm}
    if key != "page" and selectors:
        r.fail((*fp, next(iter(selectors))), "selectors (item, title, link, summary, date, xpath) need a page: source")
        return None
    value = r.get(fm, key, fp, str, "")
    if not value:
        return None
    if key == "telegram":
        channel = telegram_channel(value)
        if channel is None:
            r.fail((*fp, key), f"must be a public channel as @name or t.me/name (letters, digits, _), got {value!r}")
            return None
        return "telegram", telegram_url(channel, telegram_web), telegram_spec(channel), f"@{channel}"
    error = _valid_feed_url(value)
    if error:
        r.fail((*fp, key), f"{error}, got {value!r}")
        return None
    default_name = urlsplit(value).hostname or value
    if key == "url":
        return "rss", value, "", default_name
    xpath = r.get(fm, "xpath", fp, bool, False)
    problems = page_selector_problems(selectors, xpath)
    for name, problem in problems:
        if name in fm:
            r.fail((*fp, name), problem)
        else:
            r.fail(fp, f"{name} selector {problem}")
    if problems:
        return None
    return "page", value, page_spec(selectors, xpath), default_name


def _quiet_after(r: _Reader, m: dict[str, Any], path: PathKey, default: int | None) -> int | None:
    """``quiet_after``: a duration, or ``off`` / ``false`` / 0 for never flagging a feed as quiet."""
    value = m.get("quiet_after")
    if value is False or (isinstance(value, str) and value.strip().lower() == "off"):
        return 0
    return r.duration(m, "quiet_after", path, default)


def _quiet_factor(r: _Reader, m: dict[str, Any], path: PathKey, default: float) -> float:
    factor: float = r.get(m, "quiet_factor", path, float, default)
    if factor < 1:
        r.fail((*path, "quiet_factor"), f"must be a number ≥ 1 (times a feed's usual gap), got {factor}")
        return default
    return factor


def _rule_files(r: _Reader, top: dict[str, Any], base_dir: Path) -> list[Path]:
    """The rule files named by ``rules.files`` (globs expanded, in order, each once); a glob that matches
    nothing and a missing file are problems."""
    rm = r.mapping(top.get("rules"), ("rules",), {"files"})
    patterns = r.get(rm, "files", ("rules",), list, ["rules/*.yaml"])
    rule_files: list[Path] = []
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            r.fail(("rules", "files", i), f"must be a path or glob, got {pattern!r}")
            continue
        full = pattern if Path(pattern).is_absolute() else str(base_dir / pattern)
        matched = sorted(glob.glob(full)) if glob.has_magic(full) else [full]
        if glob.has_magic(full) and not matched:
            r.fail(("rules", "files", i), f"no file matches {pattern!r}")
        for path in matched:
            if not Path(path).is_file():
                r.fail(("rules", "files", i), f"rule file not found: {pattern}")
            elif Path(path) not in rule_files:
                rule_files.append(Path(path))
    return rule_files


def rule_files_despite_problems(path: str | Path) -> tuple[Path, ...]:
    """The rule files a config names even when the config has problems (so ``bot.py check`` can report
    the rule problems in the same run); () when the file cannot be read as YAML at all."""
    p = Path(path)
    try:
        doc = load_yaml(p.read_bytes(), str(p))
    except (OSError, YamlProblem):
        return ()
    r = _Reader(doc)
    top = doc.data if isinstance(doc.data, dict) else {}
    return tuple(_rule_files(r, top, p.resolve().parent))


def config_doc(config: Config) -> YamlDoc | None:
    """The loaded config's YAML again, for line numbers in problems found later (e.g. by ``check``)."""
    try:
        return load_yaml(config.path.read_bytes(), str(config.path))
    except (OSError, YamlProblem):
        return None


def parse_config(doc: YamlDoc, base_dir: Path) -> Config:
    r = _Reader(doc)
    top = r.mapping(
        doc.data,
        (),
        {
            "feeds",
            "rules",
            "storage",
            "admins",
            "polling",
            "digest",
            "telegram",
            "subscriptions",
            "metrics",
            "logging",
            "delivery",
            "full_text",
            "spikes",
            "interface",
            "run",
        },
    )

    # polling
    pm = r.mapping(
        top.get("polling"),
        ("polling",),
        {
            "default_interval",
            "concurrency",
            "timeout",
            "max_bytes",
            "max_redirects",
            "backoff_max",
            "user_agent",
            "allow_private_urls",
            "backlog",
            "quiet_after",
            "quiet_factor",
            "telegram_web",
            "cpu_pool",
        },
    )
    pp: PathKey = ("polling",)
    d = PollingConfig()
    default_interval = r.duration(pm, "default_interval", pp, d.default_interval, MIN_INTERVAL)
    concurrency = r.bounded(pm, "concurrency", pp, int, d.concurrency, lambda v: 1 <= v <= 500, "between 1 and 500")
    timeout = r.bounded(pm, "timeout", pp, float, d.timeout, lambda v: 0 < v <= 300, "between 0 and 300 seconds")
    max_bytes = r.bounded(pm, "max_bytes", pp, int, d.max_bytes, lambda v: v >= 1024, "≥ 1024")
    max_redirects = r.bounded(pm, "max_redirects", pp, int, d.max_redirects, lambda v: 0 <= v <= 20, "between 0 and 20")
    bm = r.mapping(pm.get("backlog"), (*pp, "backlog"), {"max_items", "max_age"})
    bp: PathKey = (*pp, "backlog")
    backlog_items = r.get(bm, "max_items", bp, int, BacklogPolicy().max_items)
    if backlog_items < 0:
        r.fail((*bp, "max_items"), f"must be ≥ 0, got {backlog_items}")
        backlog_items = BacklogPolicy().max_items
    backlog_age = r.duration(bm, "max_age", bp, BacklogPolicy().max_age) if "max_age" in bm else BacklogPolicy().max_age
    if "max_age" in bm and bm["max_age"] is None:
        backlog_age = None
    polling = PollingConfig(
        default_interval=default_interval or d.default_interval,
        concurrency=concurrency,
        timeout=timeout,
        max_bytes=max_bytes,
        max_redirects=max_redirects,
        backoff_max=r.duration(pm, "backoff_max", pp, d.backoff_max, MIN_INTERVAL) or d.backoff_max,
        user_agent=r.get(pm, "user_agent", pp, str, d.user_agent),
        allow_private_urls=r.get(pm, "allow_private_urls", pp, bool, d.allow_private_urls),
        backlog=BacklogPolicy(max_items=backlog_items, max_age=backlog_age),
        quiet_after=_quiet_after(r, pm, pp, d.quiet_after) or 0,
        quiet_factor=_quiet_factor(r, pm, pp, d.quiet_factor),
        telegram_web=_telegram_web(r, pm, pp, d.telegram_web),
        cpu_pool=r.bounded(
            pm, "cpu_pool", pp, str, d.cpu_pool, lambda v: v in POOL_KINDS, "one of " + ", ".join(POOL_KINDS)
        ),
    )

    # feeds
    feeds: list[FeedConfig] = []
    raw_feeds = top.get("feeds")
    if raw_feeds is None:
        raw_feeds = []
    if not isinstance(raw_feeds, list):
        r.fail(("feeds",), "must be a list of feeds")
        raw_feeds = []
    seen_urls: dict[str, tuple[int, str]] = {}  # feed_key → (index, URL as written)
    for i, raw in enumerate(raw_feeds):
        fp: PathKey = ("feeds", i)
        if isinstance(raw, str):
            raw = {"url": raw}
        fm = r.mapping(
            raw,
            fp,
            {
                "url",
                "name",
                "lang",
                "interval",
                "quiet_after",
                "ignore_params",
                "full_text",
                "telegram",
                "page",
                "xpath",
                "labels",
                *PAGE_SELECTORS,
            },
        )
        source = _source(r, fm, fp, polling.telegram_web)
        if source is None:
            continue
        kind, url, spec, default_name = source
        key = feed_key(url) if urlsplit(url).scheme in ("http", "https") else url
        if key in seen_urls:
            first, spelt = seen_urls[key]
            where = next(k for k in ("url", "telegram", "page") if k in fm)
            line = doc.line(("feeds", first, where)) or doc.line(("feeds", first))
            at = f" (line {line})" if line is not None else ""
            same = "" if spelt == url else f": {url!r} and {spelt!r} are one feed"
            r.fail((*fp, where), f"duplicate of feeds[{first}]{at}{same}")
            continue
        seen_urls[key] = (i, url)
        ignore = r.get(fm, "ignore_params", fp, list, [])
        for j, param in enumerate(ignore):
            problem = param_problem(param)
            if problem:
                r.fail((*fp, "ignore_params", j), problem)
        ignore_params = tuple(p for p in ignore if param_problem(p) is None)
        lang = r.get(fm, "lang", fp, str, None)
        if lang == "auto":
            lang = None  # detected per item (core/lang.py), as for a feed that names no language
        elif lang is not None and lang not in LANGS:
            r.fail((*fp, "lang"), f"must be one of {', '.join(LANGS)} or auto, got {lang!r}")
            lang = None
        full_text = r.get(fm, "full_text", fp, bool, None)
        interval = r.duration(fm, "interval", fp, polling.default_interval, MIN_INTERVAL)
        name = r.get(fm, "name", fp, str, "") or default_name
        labels = _labels(r, fm, fp)
        feeds.append(
            FeedConfig(
                url=url,
                name=name,
                lang=lang,
                interval=interval or polling.default_interval,
                quiet_after=_quiet_after(r, fm, fp, None),
                ignore_params=ignore_params,
                full_text=full_text,
                kind=kind,
                spec=spec,
                labels=labels,
            )
        )

    # rules
    rule_files = _rule_files(r, top, base_dir)

    # storage
    sm = r.mapping(top.get("storage"), ("storage",), {"path", "url", "retention"})
    storage_raw = r.get(sm, "path", ("storage",), str, "data/monitor.sqlite3")
    storage_path = Path(storage_raw) if Path(storage_raw).is_absolute() else base_dir / storage_raw
    storage_url, url_path = _storage_url(r, sm)
    if url_path is not None:
        storage_path = url_path if url_path.is_absolute() else base_dir / url_path
    retention = _retention(r, sm)

    # admins
    admins_raw = top.get("admins") or []
    admins: list[int] = []
    if not isinstance(admins_raw, list):
        r.fail(("admins",), "must be a list of Telegram user ids")
    else:
        for i, a in enumerate(admins_raw):
            if isinstance(a, int) and not isinstance(a, bool) and a > 0:
                admins.append(a)
            else:
                r.fail(("admins", i), f"must be a numeric Telegram user id (> 0), got {a!r}")

    # digest
    dm = r.mapping(top.get("digest"), ("digest",), {"time", "timezone", "send_empty", "trend"})
    dd = DigestDefaults()
    digest = DigestDefaults(
        time=r.clock(dm, "time", ("digest",), dd.time) or dd.time,
        timezone=r.zone(dm, "timezone", ("digest",), dd.timezone) or dd.timezone,
        send_empty=r.get(dm, "send_empty", ("digest",), bool, dd.send_empty),
        trend=r.get(dm, "trend", ("digest",), bool, dd.trend),
    )

    # delivery
    vm = r.mapping(top.get("delivery"), ("delivery",), {"stale_after", "max_instant_per_pass"})
    dv = DeliveryConfig()
    per_pass = r.get(vm, "max_instant_per_pass", ("delivery",), int, dv.max_instant_per_pass)
    if per_pass < 1:
        r.fail(("delivery", "max_instant_per_pass"), f"must be at least 1, got {per_pass}")
        per_pass = dv.max_instant_per_pass
    delivery = DeliveryConfig(
        stale_after=r.duration(vm, "stale_after", ("delivery",), dv.stale_after, 60) or dv.stale_after,
        max_instant_per_pass=per_pass,
    )

    # telegram
    tm = r.mapping(
        top.get("telegram"),
        ("telegram",),
        {"token", "token_env", "base_url", "base_file_url", "poll_timeout", "poll_interval", "webhook"},
    )
    tp: PathKey = ("telegram",)
    if "token" in tm:
        r.fail(
            (*tp, "token"),
            "the bot token must not be in the config file; "
            "set the TELEGRAM_BOT_TOKEN environment variable (or telegram.token_env)",
        )
    base_url = r.get(tm, "base_url", tp, str, None)
    if base_url and urlsplit(base_url).scheme not in ("http", "https"):
        r.fail((*tp, "base_url"), f"must be an http(s):// URL, got {base_url!r}")
        base_url = None
    td = TelegramConfig()
    poll_timeout = r.duration(tm, "poll_timeout", tp, td.poll_timeout) or 0
    if poll_timeout > MAX_POLL_TIMEOUT:
        r.fail((*tp, "poll_timeout"), f"must be ≤ {MAX_POLL_TIMEOUT} seconds, got {poll_timeout}")
        poll_timeout = td.poll_timeout
    poll_interval = r.bounded(
        tm,
        "poll_interval",
        tp,
        float,
        td.poll_interval,
        lambda v: 0 <= v <= MAX_POLL_INTERVAL,
        f"between 0 and {MAX_POLL_INTERVAL} seconds",
    )
    telegram = TelegramConfig(
        token_env=r.get(tm, "token_env", tp, str, "TELEGRAM_BOT_TOKEN"),
        base_url=base_url,
        base_file_url=r.get(tm, "base_file_url", tp, str, None),
        poll_timeout=poll_timeout,
        poll_interval=poll_interval,
        webhook=_webhook(r, tm),
    )

    # subscriptions declared in config
    subs: list[SubscriptionConfig] = []
    raw_subs = top.get("subscriptions") or []
    if not isinstance(raw_subs, list):
        r.fail(("subscriptions",), "must be a list")
        raw_subs = []
    for i, raw in enumerate(raw_subs):
        sp: PathKey = ("subscriptions", i)
        sub = r.mapping(raw, sp, {"chat", "mode", "rules", "digest_time", "timezone", "stories"})
        chat = sub.get("chat")
        if isinstance(chat, bool) or not (
            (isinstance(chat, int) and chat != 0)
            or (isinstance(chat, str) and re.fullmatch(r"@[A-Za-z][A-Za-z0-9_]{3,31}", chat))
        ):
            r.fail((*sp, "chat"), f"must be a chat id or @channelname, got {chat!r}")
            continue
        mode = r.get(sub, "mode", sp, str, "both")
        if mode not in MODES:
            r.fail((*sp, "mode"), f"must be one of {', '.join(MODES)}, got {mode!r}")
            mode = "both"
        rules = r.get(sub, "rules", sp, list, [])
        if not all(isinstance(x, str) for x in rules):
            r.fail((*sp, "rules"), "must be a list of rule names")
            rules = []
        subs.append(
            SubscriptionConfig(
                chat=chat,
                mode=mode,
                rules=tuple(x for x in rules if x != "all"),
                digest_time=r.clock(sub, "digest_time", sp, None),
                timezone=r.zone(sub, "timezone", sp, None),
                stories=r.get(sub, "stories", sp, bool, True),  # YAML reads `off` / `on` as booleans
            )
        )

    # metrics endpoint and logging
    mm = r.mapping(top.get("metrics"), ("metrics",), {"listen"})
    metrics = MetricsConfig()
    listen = r.get(mm, "listen", ("metrics",), str, None)
    if listen is not None:
        try:
            host, port = parse_listen(listen)
            metrics = MetricsConfig(host=host, port=port)
        except ValueError as exc:
            r.fail(("metrics", "listen"), str(exc))
    lm = r.mapping(top.get("logging"), ("logging",), {"format", "level"})
    log_format = r.get(lm, "format", ("logging",), str, "text")
    if log_format not in LOG_FORMATS:
        r.fail(("logging", "format"), f"must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
        log_format = "text"
    log_level = r.get(lm, "level", ("logging",), str, "info").lower()
    if log_level not in LOG_LEVELS:
        r.fail(("logging", "level"), f"must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
        log_level = "info"

    hook = telegram.webhook
    if hook is not None and metrics.host is not None and (metrics.host, metrics.port) == (hook.host, hook.port):
        r.fail(
            ("telegram", "webhook", "listen"),
            f"is also metrics.listen ({hook.host}:{hook.port}): give each its own port",
        )

    full_text_config = _full_text(r, top)
    spikes = _spikes(r, top)

    im = r.mapping(top.get("interface"), ("interface",), {"language"})
    language = r.get(im, "language", ("interface",), str, "en")
    if language not in LANGUAGES:
        r.fail(("interface", "language"), f"must be one of {', '.join(LANGUAGES)}, got {language!r}")
        language = "en"

    run = _run(r, top)

    if r.problems:
        raise ConfigError(r.problems)
    return Config(
        path=Path(doc.file),
        feeds=tuple(feeds),
        rule_files=tuple(rule_files),
        storage_path=storage_path,
        storage_url=storage_url,
        admins=tuple(admins),
        polling=polling,
        digest=digest,
        telegram=telegram,
        subscriptions=tuple(subs),
        metrics=metrics,
        logging=LoggingConfig(format=log_format, level=log_level),
        delivery=delivery,
        full_text=full_text_config,
        retention_days=retention,
        spikes=spikes,
        interface=InterfaceConfig(language=language),
        run=run,
    )


def _webhook(r: _Reader, tm: dict[str, Any]) -> WebhookConfig | None:
    """``telegram.webhook``: url (required), listen, path, secret_token or secret_token_env (one of them
    required: without it anyone who finds the URL could post forged updates), max_connections."""
    if tm.get("webhook") is None:
        return None
    path: PathKey = ("telegram", "webhook")
    keys = {"url", "listen", "path", "secret_token", "secret_token_env", "max_connections"}
    m = r.mapping(tm["webhook"], path, keys)
    if not m:
        if isinstance(tm["webhook"], dict):
            r.fail(path, "needs at least url and secret_token (or secret_token_env)")
        return None
    url = r.get(m, "url", path, str, None)
    if url is None:
        r.fail((*path, "url"), "missing: the public https:// URL Telegram posts updates to")
    elif problem := webhook_url_problem(url):
        r.fail((*path, "url"), problem)
        url = None
    d = WebhookConfig(url="")
    host, port = d.host, d.port
    listen = r.get(m, "listen", path, str, None)
    if listen is not None:
        try:
            host, port = parse_listen(listen)
        except ValueError as exc:
            r.fail((*path, "listen"), str(exc))
    local_path = r.get(m, "path", path, str, None)
    if local_path is None and url is not None:
        local_path = urlsplit(url).path or "/"
        if not _WEBHOOK_PATH.fullmatch(local_path):
            r.fail((*path, "url"), f"its path {local_path!r} has characters other than A-Z a-z 0-9 _ - /: set path")
    elif local_path is not None and not _WEBHOOK_PATH.fullmatch(local_path):
        r.fail((*path, "path"), f"must start with / and use only A-Z a-z 0-9 _ - /, got {local_path!r}")
    secret = r.get(m, "secret_token", path, str, None)
    secret_env = r.get(m, "secret_token_env", path, str, None)
    if secret is not None and secret_env is not None:
        r.fail((*path, "secret_token"), "give secret_token or secret_token_env, not both")
    elif secret is not None and (problem := secret_token_problem(secret)):
        r.fail((*path, "secret_token"), problem)
    elif secret_env is not None and not _ENV_NAME.fullmatch(secret_env):
        r.fail(
            (*path, "secret_token_env"),
            f"must be an environment variable name such as WEBHOOK_SECRET, got {secret_env!r}",
        )
    elif secret is None and secret_env is None:
        r.fail(
            (*path, "secret_token"),
            "missing: set secret_token (or secret_token_env) so that only Telegram can post updates",
        )
    max_connections = r.bounded(
        m, "max_connections", path, int, d.max_connections, lambda v: 1 <= v <= 100, "between 1 and 100"
    )
    if url is None:
        return None
    return WebhookConfig(
        url=url,
        host=host,
        port=port,
        path=local_path or "/",
        secret_token=secret,
        secret_token_env=secret_env,
        max_connections=max_connections,
    )


def _run(r: _Reader, top: dict[str, Any]) -> RunConfig:
    path: PathKey = ("run",)
    m = r.mapping(top.get("run"), path, {"roles", "lease", "tick"})
    d = RunConfig()
    roles = d.roles
    raw = r.get(m, "roles", path, (str, list), None)
    if raw is not None:
        try:
            roles = parse_roles(raw)
        except ValueError as exc:
            r.fail((*path, "roles"), str(exc))
    lease = r.bounded(m, "lease", path, float, d.lease, lambda v: 1 <= v <= 86400, "between 1 and 86400 seconds")
    tick = r.bounded(m, "tick", path, float, d.tick, lambda v: 0.1 <= v <= 3600, "between 0.1 and 3600 seconds")
    return RunConfig(roles=roles, lease=lease, tick=tick)


def _full_text(r: _Reader, top: dict[str, Any]) -> FullTextConfig:
    path: PathKey = ("full_text",)
    m = r.mapping(top.get("full_text"), path, {"per_host_daily", "per_feed", "timeout", "max_bytes"})
    d = FullTextConfig()
    per_host = r.bounded(m, "per_host_daily", path, int, d.per_host_daily, lambda v: v >= 0, "≥ 0")
    per_feed = r.bounded(m, "per_feed", path, int, d.per_feed, lambda v: 1 <= v <= 50, "between 1 and 50")
    timeout = r.bounded(m, "timeout", path, float, d.timeout, lambda v: 0 < v <= 300, "between 0 and 300 seconds")
    max_bytes = r.bounded(m, "max_bytes", path, int, d.max_bytes, lambda v: v >= 1024, "≥ 1024")
    return FullTextConfig(per_host_daily=per_host, per_feed=per_feed, timeout=timeout, max_bytes=max_bytes)


def _labels(r: _Reader, fm: dict[str, Any], fp: PathKey) -> tuple[str, ...]:
    raw = fm.get("labels")
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        r.fail((*fp, "labels"), f"must be a list of labels such as [state-media], got {raw!r}")
        return ()
    if len(raw) > MAX_LABELS:
        r.fail((*fp, "labels"), f"at most {MAX_LABELS} labels, got {len(raw)}")
    out: list[str] = []
    for j, label in enumerate(raw[:MAX_LABELS]):
        problem = label_problem(label)
        if problem:
            r.fail((*fp, "labels", j), problem)
        elif label not in out:
            out.append(label)
    return tuple(out)


def _spikes(r: _Reader, top: dict[str, Any]) -> SpikeSettings:
    path: PathKey = ("spikes",)
    m = r.mapping(top.get("spikes"), path, {"enabled", "window", "baseline", "factor", "min_items"})
    d = SpikeSettings()
    window = r.duration(m, "window", path, d.window, 600) or d.window
    if window > 86400:  # compared with the same hours of earlier days: longer would overlap the days
        r.fail((*path, "window"), f"must be at most 24h, got {window} seconds")
        window = d.window
    baseline = r.duration(m, "baseline", path, d.baseline_days * 86400, 86400) or d.baseline_days * 86400
    if baseline % 86400 or baseline > 90 * 86400:
        r.fail((*path, "baseline"), f"must be whole days, at most 90 (e.g. 14d), got {baseline} seconds")
        baseline = d.baseline_days * 86400
    factor = r.bounded(m, "factor", path, float, d.factor, lambda v: 1 < v <= 100, "more than 1 and at most 100")
    min_items = r.bounded(m, "min_items", path, int, d.min_items, lambda v: v >= 1, "at least 1")
    return SpikeSettings(
        enabled=r.get(m, "enabled", path, bool, d.enabled),
        window=window,
        baseline_days=baseline // 86400,
        factor=factor,
        min_items=min_items,
    )


def load_config(path: str | Path) -> Config:
    """Load and validate ``path``. Raises ConfigError listing every problem."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError([Problem(str(p), None, "", "config file not found")]) from None
    except OSError as exc:
        raise ConfigError([Problem(str(p), None, "", f"cannot read config: {exc.strerror}")]) from None
    try:
        doc = load_yaml(text, str(p))
    except YamlProblem as exc:
        raise ConfigError([exc.problem]) from None
    return parse_config(doc, p.resolve().parent)
