"""The feed list in and out as OPML, for ``bot.py feeds import|export`` and the chat's /feeds_export and
OPML uploads. Plain values in, a report out; no Telegram objects.

An imported feed is added the way /feed_add adds one (same URL rules, stored with ``added_by`` "import…",
so it survives restarts and the config sync), except that by default nothing is fetched: the private-URL
guard is applied to what the URL itself says (IP literals, localhost, single-label and .local/.internal
names), and every poll checks the resolved address again. With a client, each feed is also fetched and
parsed once, as /feed_add does, and DNS answers are checked too.

A feed retired by 410 Gone is not a duplicate: importing it revives it, as /feed_add does. Nor is a feed
that an older config.yaml listed and the current one does not (the next start would disable it): the
import takes it over, so it stays.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from chat.feeds import check_source, fetch_feed, is_url
from core.config import TELEGRAM_WEB, Config, telegram_channel, telegram_spec, telegram_url
from core.identity import feed_key
from core.opml import OpmlFeed, parse_opml, render_opml
from delivery.render import escape
from store import Store
from watchers import is_private_address
from watchers.fetch import FeedClient

EXPORT_TITLE = "DPRK–Russia monitor feeds"
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@dataclass(slots=True)
class ImportReport:
    added: list[str] = field(default_factory=list)  # names of the feeds added
    revived: list[str] = field(default_factory=list)  # names of retired (410 Gone) feeds polled again
    duplicates: list[str] = field(default_factory=list)  # URLs already polled (or twice in the file)
    errors: list[str] = field(default_factory=list)  # "outline 7 (line 12): …"

    def summary(self) -> str:
        """``added 12, skipped 3 duplicates, 2 errors`` (with ``revived 1,`` after the added when any were)."""
        revived = f"revived {len(self.revived)}, " if self.revived else ""
        return f"added {len(self.added)}, {revived}skipped {_plural(len(self.duplicates), 'duplicate')}, " + _plural(
            len(self.errors), "error"
        )


def normalise_url(url: str) -> str:
    """The key two URLs of one feed share: :func:`core.identity.feed_key`, as config.yaml and /feed_add use."""
    return feed_key(url)


def url_problem(url: str, allow_private: bool) -> str | None:
    """Why ``url`` may not be added, judged from the URL alone (no DNS), or None."""
    if not is_url(url):
        return f"{url!r} is not an http(s) URL"
    parts = urlsplit(url)
    try:
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError:
        return f"{url!r} has a bad port"
    host = (parts.hostname or "").lower().rstrip(".")
    if allow_private:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(_LOCAL_SUFFIXES) or "." not in host:
            return f"{host} is a local host name; refused (polling.allow_private_urls)"
        return None
    if is_private_address(str(address)):  # the test polling applies to resolved addresses
        return f"{host} is a private or local address; refused (polling.allow_private_urls)"
    return None


async def import_feeds(
    store: Store,
    config: Config,
    feeds: Sequence[OpmlFeed],
    added_by: str,
    now: datetime,
    *,
    client: FeedClient | None = None,
    tick: Callable[[], object] | None = None,
    report: ImportReport | None = None,
) -> ImportReport:
    """Add each feed not polled yet (by :func:`normalise_url`, config feeds included) and revive each retired
    one; ``tick`` after each."""
    report = report or ImportReport()
    retired = {normalise_url(f.url): f.url for f in store.retired_feeds()}
    in_config = {normalise_url(f.url) for f in config.feeds}
    stale: dict[str, str] = {}  # listed by an older config.yaml only: the next start would disable them
    known = set(in_config)
    for url, source in store.feed_sources().items():
        key = normalise_url(url)
        if source == "config" and key not in in_config:
            stale.setdefault(key, url)
        else:
            known.add(key)
    known -= retired.keys()
    for feed in feeds:
        try:
            problem = url_problem(feed.url, config.polling.allow_private_urls)
            lang = feed.lang
            key = normalise_url(feed.url)
            if problem is None and key in known:
                report.duplicates.append(feed.url)
                continue
            url = retired.get(key) or stale.get(key) or feed.url  # the stored row, however the file spells it
            channel = telegram_channel(feed.url)  # our export lists a channel as https://t.me/s/NAME
            if channel is not None:
                url = telegram_url(channel, config.polling.telegram_web)
                if normalise_url(url) in known:
                    report.duplicates.append(feed.url)
                    continue
            if problem is None and client is not None and channel is not None:
                read = await check_source(client, config, url, "telegram", telegram_spec(channel))
                problem = read if isinstance(read, str) else None
            elif problem is None and client is not None:
                checked = await fetch_feed(client, config, url)  # as /feed_add does
                problem = checked if isinstance(checked, str) else None
                lang = lang or (None if isinstance(checked, str) else checked.language)
            if problem is not None:
                report.errors.append(f"{feed.where}: {problem}")
                continue
            if channel is not None:
                store.add_feed(
                    url,
                    feed.name,
                    lang,
                    config.polling.default_interval,
                    added_by,
                    now,
                    kind="telegram",
                    spec=telegram_spec(channel),
                )
                known.add(normalise_url(url))
                (report.revived if key in retired else report.added).append(feed.name)
                continue
            store.add_feed(url, feed.name, lang, config.polling.default_interval, added_by, now)
            known.add(key)
            (report.revived if key in retired else report.added).append(feed.name)
        finally:
            if tick is not None:
                tick()
    report.errors.sort(key=_outline_number)  # the file's problems and the feeds' in file order
    return report


def _outline_number(error: str) -> int:
    words = error.split(maxsplit=2)
    return int(words[1]) if len(words) > 1 and words[0] == "outline" and words[1].isdigit() else 0


async def import_opml(
    store: Store,
    config: Config,
    data: bytes,
    added_by: str,
    now: datetime,
    *,
    client: FeedClient | None = None,
) -> ImportReport:
    """Parse ``data`` and import its feeds; the file's problems come first in the report's errors."""
    parsed = parse_opml(data)
    return await import_feeds(
        store, config, parsed.feeds, added_by, now, client=client, report=ImportReport(errors=list(parsed.problems))
    )


def export_feeds(store: Store, config: Config) -> list[OpmlFeed]:
    """Every enabled feed: the config's (as configured), then those added from chat or by import. A
    Telegram channel is listed as its https://t.me/s/NAME preview in the category ``telegram`` (readers
    such as RSSHub know that URL; importing it here makes it a channel again). Pages are left out: their
    selectors have no place in OPML, and their URL alone is not a feed another reader could poll."""
    feeds: list[OpmlFeed] = []
    seen: set[str] = set()
    candidates = [(f.url, f.name, f.lang, f.kind, f.spec) for f in config.feeds]
    candidates += [(f.url, f.name, f.lang, f.kind, f.spec) for f in store.all_feeds(enabled_only=True)]
    for url, name, lang, kind, spec in candidates:
        if kind == "page":
            continue
        key = normalise_url(url)
        if key in seen:
            continue
        seen.add(key)
        if kind == "telegram":
            channel = str(json.loads(spec)["channel"])
            feeds.append(OpmlFeed(telegram_url(channel, TELEGRAM_WEB), name, lang, category="telegram"))
        else:
            feeds.append(OpmlFeed(url, name, lang))
    return feeds


def export_opml(store: Store, config: Config, now: datetime | None = None) -> tuple[bytes, int]:
    """The OPML document of :func:`export_feeds` and how many feeds it lists."""
    feeds = export_feeds(store, config)
    return render_opml(feeds, EXPORT_TITLE, now), len(feeds)


def report_text(report: ImportReport, limit: int = 15) -> str:
    """The chat reply: summary first, then at most ``limit`` error lines (HTML-escaped)."""
    mark = "⚠️" if report.errors else "✅"
    lines = [f"{mark} OPML import: {escape(report.summary())}."]
    lines += [f"• {escape(error if len(error) <= 200 else error[:199] + '…')}" for error in report.errors[:limit]]
    if len(report.errors) > limit:
        lines.append(f"… and {len(report.errors) - limit} more.")
    if report.added or report.revived:
        lines.append("New feeds are polled from the next cycle; their first poll follows the backlog policy.")
    return "\n".join(lines)
