"""``/search``, its paging buttons and inline mode (``@bot query``), as plain logic: no Telegram objects.

Who may search: the bot's admins, and any chat with a subscription (its members see what it is sent
anyway). Inline mode answers a user who is an admin or has a subscription of their own private chat,
or is a member of a subscribed group (asked of Telegram by the handler); a stranger gets no results,
so the archive does not leak through ``@bot`` typed in any chat.

A page is :data:`PAGE` results, newest first; its ◀ / ▶ buttons carry ``s:<token>:<page>`` where the
token names the query saved in the store (store/search.py ``save_query``), so the callback data fits
Telegram's 64 bytes however long the query, and buttons keep working after a restart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from core.i18n import t
from delivery.render import escape, link, shorten
from store import Store
from store.search import Found, QueryError, parse_query, save_query, saved_query, search

PAGE = 10
INLINE_RESULTS = 20
MAX_DAYS = 3650
CALLBACK_PATTERN = r"^s:[0-9a-f]{12}:\d{1,4}$"
TITLE_CHARS = 110
WHY_CHARS = 100
ALSO_CHARS = 60
SOURCE_CHARS = 40
QUERY_CHARS = 60
# A page is at most PAGE × ~350 + ~100 visible characters: one message (≤ 4096) whatever the items hold.
_DAYS = re.compile(r"^(\d{1,4})d?$")

Keyboard = tuple[tuple[tuple[str, str], ...], ...]
ExportFormat = Literal["csv", "jsonl"]


class SearchError(ValueError):
    """What the user typed cannot be searched; the message says why."""


@dataclass(frozen=True, slots=True)
class InlineResult:
    id: str
    title: str
    description: str
    html: str
    url: str | None


def may_search(store: Store, admins: Sequence[int], user_id: int | None, chat_id: str) -> bool:
    """An admin anywhere, or anyone in a chat that has a subscription."""
    if user_id is not None and user_id in admins:
        return True
    return store.subscription(chat_id) is not None


def split_args(args: Sequence[str]) -> tuple[str, int | None]:
    """``/search <query> [days]``: a last argument such as ``30`` or ``30d`` after the query is the days."""
    words = list(args)
    days = None
    if len(words) > 1 and (m := _DAYS.match(words[-1])):
        days = int(m.group(1))
        if not 1 <= days <= MAX_DAYS:
            raise SearchError(t("search.days", max=MAX_DAYS, days=days))
        words.pop()
    text = " ".join(words).strip()
    if not text:
        raise SearchError(t("search.no_query"))
    return text, days


def _rules_line(found: Found) -> str:
    if not found.matches:
        return t("search.no_rule")
    first = found.matches[0]
    why = shorten(f"{first.rule} — {first.why_text()}", WHY_CHARS)
    others = [m.rule for m in found.matches[1:]]
    return escape(why) + (t("search.also", rules=escape(shorten(", ".join(others), ALSO_CHARS))) if others else "")


def _meta(found: Found) -> str:
    item = found.item
    source = shorten(item.feed_name or urlsplit(item.feed_url).netloc or item.feed_url, SOURCE_CHARS)
    when = (item.published or found.seen_at).strftime("%Y-%m-%d")
    return f"<i>{escape(source)}</i> · {when}"


def render_page(text: str, days: int | None, page: int, results: Sequence[Found], more: bool) -> str:
    period = t("search.period", n=days) if days else ""
    query = escape(shorten(text, QUERY_CHARS))
    if not results:
        return t("search.no_more" if page else "search.nothing", query=query, period=period)
    first = page * PAGE + 1
    last = first + len(results) - 1
    lines = [t("search.results" if more else "search.results_all", query=query, period=period, first=first, last=last)]
    for n, found in enumerate(results, start=first):
        title = shorten(found.item.title or t("alert.no_title"), TITLE_CHARS)
        lines.append(f"\n{n}. <b>{link(title, found.item.link)}</b>\n{_meta(found)}\n🔎 {_rules_line(found)}")
    return "\n".join(lines)


def _keyboard(token: str, page: int, more: bool) -> Keyboard | None:
    buttons = []
    if page > 0:
        buttons.append((t("search.newer"), f"s:{token}:{page - 1}"))
    if more:
        buttons.append((t("search.older"), f"s:{token}:{page + 1}"))
    return (tuple(buttons),) if buttons else None


def _since(now: datetime, days: int | None) -> datetime | None:
    return now - timedelta(days=days) if days else None


def search_page(store: Store, text: str, days: int | None, now: datetime, page: int = 0) -> tuple[str, Keyboard | None]:
    """The HTML of one page of results and its paging buttons. SearchError for a bad query."""
    try:
        query = parse_query(text)
    except QueryError as exc:
        raise SearchError(str(exc)) from None
    results, more = search(store.conn, query, since=_since(now, days), limit=PAGE, offset=page * PAGE)
    keyboard = _keyboard(save_query(store, text, days), page, more) if (more or page) else None
    return render_page(text, days, page, results, more), keyboard


def page_from_button(store: Store, data: str, now: datetime) -> tuple[str, Keyboard | None]:
    """A ◀ / ▶ press: the page its callback data names. SearchError when the query is not known."""
    _, token, page = data.split(":")
    saved = saved_query(store.conn, token)
    if saved is None:
        raise SearchError(t("search.expired"))
    text, days = saved
    return search_page(store, text, days, now, int(page))


def inline_results(store: Store, text: str, now: datetime, offset: int = 0) -> tuple[list[InlineResult], bool]:
    """Results for an inline query (an empty or invalid query gives none: the user is still typing)."""
    try:
        query = parse_query(text)
    except QueryError:
        return [], False
    found, more = search(store.conn, query, limit=INLINE_RESULTS, offset=offset)
    out = []
    for f in found:
        title = shorten(f.item.title or "(no title)", TITLE_CHARS)
        meta = _meta(f)
        html = f"<b>{link(title, f.item.link)}</b>\n{meta}\n🔎 {_rules_line(f)}"
        description = shorten(
            f"{f.item.feed_name} · {(f.item.published or f.seen_at):%Y-%m-%d} · "
            + (", ".join(m.rule for m in f.matches) or "no rule matched"),
            200,
        )
        out.append(InlineResult(str(f.item_id), title, description, html, f.item.link))
    return out, more
