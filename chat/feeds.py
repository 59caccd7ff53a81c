"""Feed management and URL tests from chat: the I/O-bearing commands (they fetch once to check)."""

from __future__ import annotations

import math
import re
import shlex
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import unescape
from urllib.parse import urlsplit

from core.config import (
    PAGE_SELECTORS,
    Config,
    page_selector_problems,
    page_spec,
    telegram_channel,
    telegram_spec,
    telegram_url,
)
from core.i18n import t
from core.identity import feed_key
from core.models import MAX_TEXT, Feed, Item, SourceKind
from delivery.render import escape
from rules import RuleSet
from store import Store
from watchers import ParseResult, PollSettings, fetch, parse_feed, plain_text
from watchers.fetch import FeedClient
from watchers.sources import read_source

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
MAX_PAGE_TEXT = MAX_TEXT  # /test URL reads a page as far as matching reads a summary
MAX_NAME = 100
URL_TESTS_PER_WINDOW = 10  # /test URL fetches per user (config admins are not limited)
URL_TEST_WINDOW = timedelta(minutes=10)
_FORGET_USERS_ABOVE = 1000  # idle users are forgotten once this many are remembered


def is_url(text: str) -> bool:
    parts = urlsplit(text.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in text.strip()


async def fetch_feed(client: FeedClient, config: Config, url: str) -> ParseResult | str:
    """Fetch and parse ``url`` once, as polling does: the parsed feed, or why it is not a working feed."""
    result = await fetch(client, url, PollSettings.from_config(config.polling))
    if result.outcome != "ok":
        return result.error or "no answer"
    parsed = parse_feed(result.body, feed_url=url, content_type=result.content_type)
    return parsed.error or parsed


PAGE_USAGE = (
    "/feed_add URL item=SELECTOR title=SELECTOR link=SELECTOR [summary=SELECTOR] [date=SELECTOR] [xpath] [name] "
    '(quote a selector with spaces: title="h2 a")'
)


def parse_page_args(text: str) -> tuple[dict[str, str], bool, str | None] | str:
    """``item=… title=… link=… [summary=…] [date=…] [xpath] [name words]`` → (selectors, xpath, name), or
    the problem as a reply."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        return t("feed_add.bad_selectors", error=escape(str(exc)), usage=escape(PAGE_USAGE))
    selectors: dict[str, str] = {}
    xpath = False
    rest: list[str] = []
    for word in words:
        key, eq, value = word.partition("=")
        if eq and key in PAGE_SELECTORS:
            selectors[key] = value
        elif word == "xpath":
            xpath = True
        else:
            rest.append(word)
    problems = page_selector_problems(selectors, xpath)
    if problems:
        lines = "\n".join(f"• {escape(key)}: {escape(problem)}" for key, problem in problems)
        return t("feed_add.bad_page", lines=lines, usage=escape(PAGE_USAGE))
    return selectors, xpath, " ".join(rest) or None


async def check_source(
    client: FeedClient, config: Config, url: str, kind: SourceKind, spec: str
) -> tuple[Item, ...] | str:
    """Fetch and read a telegram or page source once, as polling does: its items, or why it does not work."""
    probe = Feed(id=0, url=url, name="", lang=None, interval=config.polling.default_interval, kind=kind, spec=spec)
    read = await read_source(client, probe, PollSettings.from_config(config.polling))
    if read.outcome != "ok":
        return read.error or "no answer"
    return read.items


async def _add_source(
    store: Store,
    config: Config,
    client: FeedClient,
    source: tuple[SourceKind, str, str, str],
    author: int,
    now: datetime,
    ruleset: RuleSet | None,
) -> str:
    kind, url, spec, title = source
    retired = {f.url for f in store.retired_feeds()}
    if url not in retired and any(f.url == url for f in store.all_feeds(enabled_only=True)):
        return t("feed_add.already", feed=escape(title))
    checked = await check_source(client, config, url, kind, spec)
    if isinstance(checked, str):
        return t("feed_add.failed", error=escape(checked))
    store.add_feed(url, title, None, config.polling.default_interval, f"chat:{author}", now, kind=kind, spec=spec)
    return _added_reply(config, title, checked, now, ruleset)


def _added_reply(config: Config, title: str, items: tuple[Item, ...], now: datetime, ruleset: RuleSet | None) -> str:
    policy = config.polling.backlog
    reply = t("feed_add.done", title=escape(title), n=len(items), policy=policy.describe())
    if ruleset is not None and policy.max_items > 0:
        matching = [item for item in items if ruleset.match(item)]
        sent = len(policy.select(matching, now))
        reply += t("feed_add.would_send", n=len(matching), sent=sent)
    return reply


async def add_feed(
    store: Store,
    config: Config,
    client: FeedClient,
    url: str,
    name: str | None,
    author: int,
    now: datetime,
    ruleset: RuleSet | None = None,
) -> str:
    """Fetch and parse ``url`` once; add it only if it is a working feed (same rules as polling). The reply
    states the backlog policy as it is configured and, given the rules, what it would send right now.
    ``@name`` or ``t.me/name`` adds a public Telegram channel; a URL followed by ``item=… title=… link=…``
    adds a page read with those selectors (see :data:`PAGE_USAGE`)."""
    channel = telegram_channel(url)
    if channel is not None:
        if name is not None and len(name) > MAX_NAME:
            return t("feed_add.name_too_long", max=MAX_NAME)
        web = config.polling.telegram_web
        source = ("telegram", telegram_url(channel, web), telegram_spec(channel), name or f"@{channel}")
        return await _add_source(store, config, client, source, author, now, ruleset)  # type: ignore[arg-type]
    if not is_url(url):
        return t("feed_add.not_url", url=escape(url))
    if name is not None and any(f"{key}=" in name for key in PAGE_SELECTORS):
        parsed_args = parse_page_args(name)
        if isinstance(parsed_args, str):
            return parsed_args
        selectors, xpath, page_name = parsed_args
        if page_name is not None and len(page_name) > MAX_NAME:
            return t("feed_add.name_too_long", max=MAX_NAME)
        title = page_name or urlsplit(url).hostname or url
        return await _add_source(
            store, config, client, ("page", url, page_spec(selectors, xpath), title), author, now, ruleset
        )
    if name is not None and len(name) > MAX_NAME:
        return t("feed_add.name_too_long", max=MAX_NAME)
    # a feed retired by 410 Gone may be added again once it works; spellings of one URL are one feed
    retired = {feed_key(f.url) for f in store.retired_feeds()}
    key = feed_key(url)
    polled = next((f.url for f in store.all_feeds(enabled_only=True) if feed_key(f.url) == key), None)
    if key not in retired and polled is not None:
        return (
            t("feed_add.already_as", url=escape(url), polled=escape(polled))
            if polled != url
            else t("feed_add.already", feed=escape(url))
        )
    parsed = await fetch_feed(client, config, url)
    if isinstance(parsed, str):
        return t("feed_add.failed", error=escape(parsed))
    title = name or urlsplit(url).hostname or url
    store.add_feed(url, title, parsed.language, config.polling.default_interval, f"chat:{author}", now)
    return _added_reply(config, title, parsed.items, now, ruleset)


def remove_feed(store: Store, url: str) -> str:
    return (
        t("feed_remove.done", url=escape(url)) if store.remove_feed(url) else t("feed_remove.unknown", url=escape(url))
    )


def list_feeds(store: Store, quiet: Mapping[str, str] | None = None) -> str:
    """Every listed feed: ✅ working, 🔇 quiet (``quiet``: URL → why, from service/quiet.py), ⚠️ failing
    (retried), ⛔ retired by 410 Gone (not polled; as /status)."""
    quiet = quiet or {}
    feeds = store.all_feeds(enabled_only=True)
    if not feeds:
        return t("feed_list.none")
    retired = {f.url for f in store.retired_feeds()}
    lines = [t("feed_list.title", n=len(feeds))]
    for f in feeds:
        where = f"{escape(f.name)} [{f.lang or '?'}] {escape(f.url)}"
        if f.url in retired:
            gone = escape(f.last_error or "HTTP 410 Gone")
            lines.append(t("feed_list.retired", feed=where, error=gone, url=escape(f.url)))
        elif f.failures:
            lines.append(f"⚠️ {where} — {escape(f.last_error or '')} (×{f.failures})")
        elif f.url in quiet:
            lines.append(f"🔇 {where} — {escape(quiet[f.url])}")
        else:
            lines.append(f"✅ {where}")
    return "\n".join(lines)


@dataclass(slots=True)
class FetchLimits:
    """Who may make the bot fetch a URL now (``/test URL``): one fetch in flight per user, and at most
    ``per_window`` per ``window``, counted from each fetch's start."""

    per_window: int = URL_TESTS_PER_WINDOW
    window: timedelta = URL_TEST_WINDOW
    in_flight: set[int] = field(default_factory=set)
    started: dict[int, deque[datetime]] = field(default_factory=dict)  # each user's fetches in the window

    def start(self, user: int, now: datetime) -> str | None:
        """The refusal (with when to retry), or None: the fetch is counted and in flight until :meth:`finish`."""
        if user in self.in_flight:
            return t("url_test.running")
        times = self.started.setdefault(user, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.per_window:
            retry = times[0] + self.window
            minutes = max(1, math.ceil((retry - now).total_seconds() / 60))
            window = int(self.window.total_seconds() // 60)
            return t("url_test.limit", n=self.per_window, window=window, at=f"{retry:%H:%M}", minutes=minutes)
        times.append(now)
        self.in_flight.add(user)
        if len(self.started) > _FORGET_USERS_ABOVE:
            for idle in [u for u, t in self.started.items() if not t or t[-1] <= now - self.window]:
                del self.started[idle]
        return None

    def finish(self, user: int) -> None:
        self.in_flight.discard(user)


async def limited_test_url(
    limits: FetchLimits | None,
    user: int,
    now: datetime,
    ruleset: RuleSet,
    config: Config,
    client: FeedClient,
    url: str,
) -> str:
    """:func:`test_url` within ``user``'s :class:`FetchLimits` (``None``: not limited)."""
    if limits is None:
        return await test_url(ruleset, config, client, url)
    refusal = limits.start(user, now)
    if refusal is not None:
        return refusal
    try:
        return await test_url(ruleset, config, client, url)
    finally:
        limits.finish(user)


async def test_url(ruleset: RuleSet, config: Config, client: FeedClient, url: str) -> str:
    """Fetch ``url`` (same safety rules as feeds): a feed is matched item by item, a page as one text."""
    result = await fetch(client, url, PollSettings.from_config(config.polling))
    if result.outcome != "ok":
        return t("url_test.fetch_failed", error=escape(result.error or t("url_test.no_answer")))
    parsed = parse_feed(result.body, feed_url=url, content_type=result.content_type)
    if not parsed.error:
        matched = [(item, ruleset.match(item)) for item in parsed.items]
        hits = [(item, m) for item, m in matched if m]
        lines = [t("url_test.feed", n=len(parsed.items), hits=len(hits))]
        lines += [
            f"✅ {escape(item.title[:120])} — {escape(m[0].rule)}: {escape(m[0].why_text())}" for item, m in hits[:10]
        ]
        return "\n".join(lines)
    html = result.body.decode("utf-8", errors="replace")
    found = _TITLE.search(html)
    title = unescape(found.group(1)).strip() if found else ""
    text = plain_text(re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", html))[:MAX_PAGE_TEXT]
    matches = ruleset.match_text(title, text)
    if not matches:
        return t("url_test.no_match", title=escape(title[:120]))
    return "\n".join(f"✅ <b>{escape(m.rule)}</b> [{m.priority}] — {escape(m.why_text())}" for m in matches)
