"""What each chat command does, with plain values in and HTML text out: no Telegram objects here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from core.config import MODES, Config, parse_clock, valid_timezone
from core.durations import format_duration, parse_duration
from core.i18n import LANGUAGES, current, t, using
from delivery.render import escape
from rules import RuleSet
from store import Store
from store.spikes import spike_times

USAGES: tuple[tuple[str, str], ...] = (
    # (command, usage) — the order of /help and of setMyCommands; each description is cmd.<name> in
    # the catalogue (core/locales/)
    ("start", "/start"),
    ("help", "/help"),
    ("subscribe", "/subscribe [@channel] [rules…] [instant|digest|both] [stories:off]"),
    ("unsubscribe", "/unsubscribe [@channel]"),
    ("subscriptions", "/subscriptions"),
    ("digest_time", "/digest_time HH:MM [Area/City] [@channel]"),
    ("mute", "/mute <duration|off> [@channel]"),
    ("digest_now", "/digest_now [@channel]"),
    ("language", "/language [en|ru]"),
    ("rules", "/rules"),
    ("trend", "/trend [rule|entities] [days]"),
    ("test", "/test <text or URL>"),
    ("quality", "/quality [days]"),
    ("search", '/search <words "phrase" -exclude rule:NAME> [days]'),
    ("export", "/export [30d] [rule] [csv|jsonl]"),
    ("status", "/status"),
    ("rule", "/rule NAME"),
    ("rule_add", "/rule_add + YAML on the next lines"),
    ("rule_edit", "/rule_edit NAME + YAML on the next lines"),
    ("rule_delete", "/rule_delete NAME"),
    ("alias_add", "/alias_add GROUP alias, alias …"),
    ("alias_remove", "/alias_remove GROUP alias, alias …"),
    ("undo", "/undo"),
    ("feeds", "/feeds"),
    ("feed_add", "/feed_add URL|@channel [name]"),
    ("feed_remove", "/feed_remove URL"),
    ("feeds_export", "/feeds_export"),
    ("feeds_import", "/feeds_import + an .opml file"),
)


def command_list(lang: str | None = None) -> tuple[tuple[str, str, str], ...]:
    """(command, usage, description) in ``lang`` (default: the current reply's language)."""
    return tuple((name, usage, t(f"cmd.{name}", lang)) for name, usage in USAGES)


COMMANDS = command_list("en")
USAGE = {name: usage for name, usage, _ in COMMANDS}
MAX_TEST_TEXT = 4000


class CommandError(ValueError):
    """Bad arguments: the message is shown to the user, with the usage line."""

    def __init__(self, command: str, problem: str) -> None:
        super().__init__(t("error.usage", problem=problem, usage=USAGE[command]))


def split_target(args: Sequence[str]) -> tuple[str | None, list[str]]:
    """A leading or trailing ``@channel`` names the chat to act on; the rest are the arguments."""
    rest = list(args)
    for index in (0, -1):
        if rest and rest[index].startswith("@") and len(rest[index]) > 1:
            return rest.pop(index), rest
    return None, rest


def help_text(user_id: int | None) -> str:
    lines = [f"<b>{escape(t('help.title'))}</b>", escape(t("help.about")), ""]
    lines += [f"{escape(usage)} — {escape(text)}" for _, usage, text in command_list()]
    lines += ["", escape(t("help.managing"))]
    if user_id is not None:
        lines.append(t("help.user_id", user_id=user_id))
    return "\n".join(lines)


# `/subscribe … stories:off`: every item alerted on its own, instead of one alert per story (edited)
STORY_FLAGS = {"stories:on": True, "stories:off": False}


def subscribe(
    store: Store,
    ruleset: RuleSet,
    chat: str,
    args: Sequence[str],
    now: datetime,
    *,
    chat_title: str | None = None,
    chat_type: str | None = None,
) -> str:
    story_flags = [a.lower() for a in args if a.lower() in STORY_FLAGS]
    args = [a for a in args if a.lower() not in STORY_FLAGS]
    if len(set(story_flags)) > 1:
        raise CommandError("subscribe", t("subscribe.both_story_flags"))
    modes = [a for a in args if a in MODES]
    names = [a for a in args if a not in MODES]
    if len(modes) > 1:
        raise CommandError("subscribe", t("subscribe.one_mode"))
    unknown = [n for n in names if n != "all" and ruleset.rule(n) is None]
    if unknown:
        known = ", ".join(r.name for r in ruleset.rules)
        raise CommandError("subscribe", t("subscribe.unknown_rules", unknown=", ".join(unknown), known=known))
    existing = store.subscription(chat)
    mode = modes[0] if modes else (existing.mode if existing else "both")
    rules = tuple(n for n in names if n != "all") if names else (existing.rules if existing else ())
    sub = store.upsert_subscription(
        chat,
        now,
        mode=mode,
        rules=rules,
        digest_time=existing.digest_time if existing else None,
        timezone=existing.timezone if existing else None,
        chat_title=chat_title,
        chat_type=chat_type,
        stories=STORY_FLAGS[story_flags[0]] if story_flags else None,
    )
    if sub.paused:
        store.set_paused(chat, False, None, now)
    followed = ", ".join(sub.rules) if sub.rules else t("subscribe.all_rules")
    stories = "" if sub.stories else t("subscribe.stories_off")
    return t("subscribe.done", chat=escape(chat), followed=escape(followed), mode=sub.mode, stories=stories)


def unsubscribe(store: Store, chat: str) -> str:
    if store.delete_subscription(chat):
        return t("unsubscribe.done", chat=escape(chat))
    return t("unsubscribe.none", chat=escape(chat))


def describe(store: Store, config: Config, ruleset: RuleSet, chats: Sequence[str] | None) -> str:
    """The subscriptions (of ``chats``, or all); a followed rule that no longer exists is flagged, since
    that chat gets nothing from it."""
    subs = [s for s in store.subscriptions() if chats is None or s.chat_id in chats]
    if not subs:
        return t("describe.none")
    lines = []
    for s in subs:
        at = s.digest_time or config.digest.time.strftime("%H:%M")
        zone = s.timezone or config.digest.timezone
        state = t("describe.paused", reason=escape(s.paused_reason or "")) if s.paused else ""
        if s.muted_until:
            state += t("describe.muted", until=f"{s.muted_until:%Y-%m-%d %H:%M}")
        rules = ", ".join(s.rules) if s.rules else t("subscribe.all_rules")
        missing = [r for r in s.rules if ruleset.rule(r) is None]
        if missing:
            nothing = t("describe.gets_nothing") if len(missing) == len(s.rules) else ""
            state += t("describe.missing_rules", missing=escape(", ".join(missing)), nothing=nothing)
        last = t("describe.last_digest", at=f"{s.last_digest_at:%Y-%m-%d %H:%M}") if s.last_digest_at else ""
        lines.append(
            t(
                "describe.line",
                title=escape(s.chat_title or s.chat_id),
                chat=escape(s.chat_id),
                mode=s.mode,
                rules=escape(rules),
                at=at,
                zone=escape(zone),
                last=last,
                state=state,
            )
        )
    return "\n".join(lines)


def digest_time(store: Store, config: Config, chat: str, args: Sequence[str], now: datetime) -> str:
    if not args or len(args) > 2:
        raise CommandError("digest_time", t("digest_time.args"))
    at = parse_clock(args[0])
    if at is None:
        raise CommandError("digest_time", t("digest_time.bad_time", value=repr(args[0])))
    zone = args[1] if len(args) == 2 else None
    if zone is not None and not valid_timezone(zone):
        raise CommandError("digest_time", t("digest_time.bad_zone", zone=repr(zone)))
    sub = store.subscription(chat)
    if sub is None:
        raise CommandError("digest_time", t("digest_time.no_subscription", chat=chat))
    store.upsert_subscription(
        chat, now, mode=sub.mode, rules=sub.rules, digest_time=at.strftime("%H:%M"), timezone=zone or sub.timezone
    )
    shown = zone or sub.timezone or config.digest.timezone
    local = now.astimezone(ZoneInfo(shown))
    return t("digest_time.done", chat=escape(chat), at=f"{at:%H:%M}", zone=escape(shown), local=f"{local:%H:%M}")


def mute(store: Store, chat: str, args: Sequence[str], now: datetime) -> str:
    if len(args) != 1:
        raise CommandError("mute", t("mute.args"))
    if store.subscription(chat) is None:
        raise CommandError("mute", t("mute.no_subscription", chat=chat))
    if args[0].lower() == "off":
        store.set_muted_until(chat, None, now)
        return t("mute.resumed", chat=escape(chat))
    try:
        seconds = parse_duration(args[0])
    except ValueError:
        raise CommandError("mute", t("mute.bad_duration", value=repr(args[0]))) from None
    if not 0 < seconds <= 30 * 86400:
        raise CommandError("mute", t("mute.range"))
    store.set_muted_until(chat, now + timedelta(seconds=seconds), now)
    return t("mute.done", chat=escape(chat), duration=format_duration(seconds))


def list_rules(store: Store, ruleset: RuleSet, now: datetime) -> str:
    counts = store.match_counts(now - timedelta(days=7))
    lines = [t("rules.title")]
    for rule in ruleset.rules:
        flag = "" if rule.enabled else t("rules.disabled")
        lines.append(f"• <b>{escape(rule.name)}</b> [{rule.priority}] — {counts.get(rule.name, 0)}{flag}")
        if rule.description:
            lines.append(f"  <i>{escape(rule.description)}</i>")
    return "\n".join(lines)


TREND_DAYS, TREND_MAX_DAYS = 14, 90
ENTITIES = "entities"


@dataclass(frozen=True, slots=True)
class TrendRequest:
    """What /trend draws: the series (zero-filled per local day), its days, the title and the caption."""

    series: dict[str, dict[date, int]]
    days: list[date]
    title: str
    caption: str
    spikes: tuple[date, ...] = ()  # local days with a spike alert of what is drawn: marked on the chart


def trend(store: Store, ruleset: RuleSet, args: Sequence[str], now: datetime, tz: ZoneInfo) -> TrendRequest:
    """``/trend [rule|entities] [days]``: every rule, one rule, or the entity groups, over 1–90 days."""
    from delivery.trend import day_window, period_title, totals_text  # matplotlib loads only when used

    if len(args) > 2:
        raise CommandError("trend", t("trend.args"))
    numbers = [a for a in args if a.isdigit()]
    words = [a for a in args if not a.isdigit()]
    if len(numbers) > 1 or len(words) > 1:
        raise CommandError("trend", t("trend.args"))
    n_days = int(numbers[0]) if numbers else TREND_DAYS
    if not 1 <= n_days <= TREND_MAX_DAYS:
        raise CommandError("trend", t("trend.days", max=TREND_MAX_DAYS))
    what = words[0] if words else None
    if what is not None and what != ENTITIES and ruleset.rule(what) is None:
        known = ", ".join(r.name for r in ruleset.rules)
        raise CommandError("trend", t("trend.unknown_rule", rule=repr(what), known=known))
    since, days = day_window(now, tz, n_days)
    if what == ENTITIES:
        groups = [name for name, group in ruleset.groups.items() if group.kind == "entity"]
        series = store.daily_match_counts(since, now, tz, "entity", groups)
        subject = t("trend.per_entity")
        keys = [f"entity:{g}" for g in groups]
    else:
        rules = [what] if what else [r.name for r in ruleset.rules]
        series = store.daily_match_counts(since, now, tz, "rule", rules)
        subject = t("trend.of_rule", rule=what) if what else t("trend.per_rule")
        keys = [f"rule:{r}" for r in rules]
    spiked = tuple(sorted({at.astimezone(tz).date() for at in spike_times(store, since, now, keys)}))
    period = period_title(days)
    caption = (
        t("trend.caption", subject=escape(subject), n=n_days, zone=escape(tz.key))
        + "\n"
        + escape(totals_text(series, days))
    ) + (f"\n{spikes_caption(spiked)}" if spiked else "")
    return TrendRequest(series, days, t("trend.title", subject=subject, period=period, zone=tz.key), caption, spiked)


def spikes_caption(days: Sequence[date]) -> str:
    """``⚡ spikes: 28 Nov, 30 Nov`` under a /trend chart (the days are shaded on it)."""
    return "⚡ spikes: " + ", ".join(f"{d:%d %b}" for d in days)


def test_text(ruleset: RuleSet, text: str) -> str:
    text = text.strip()
    if not text:
        raise CommandError("test", t("test.empty"))
    if len(text) > MAX_TEST_TEXT:
        raise CommandError("test", t("test.too_long", limit=MAX_TEST_TEXT))
    title, _, summary = text.partition("\n")
    matches = ruleset.match_text(title, summary)
    if not matches:
        return t("test.no_match")
    lines = []
    for m in matches:
        lines.append(f"✅ <b>{escape(m.rule)}</b> [{m.priority}] — {escape(m.why_text())}")
    return "\n".join(lines)


def status(store: Store, now: datetime, quiet: Mapping[str, str] | None = None) -> str:
    """``quiet``: feed URL → why it looks quiet (service/quiet.py), shown beside the failing ones."""
    quiet = quiet or {}
    retired_urls = {f.url for f in store.retired_feeds()}
    feeds = [f for f in store.all_feeds(enabled_only=True) if f.url not in retired_urls]
    failing = [f for f in feeds if f.failures]
    silent = [f for f in feeds if f.url in quiet and not f.failures]
    retired = t("status.retired", n=len(retired_urls)) if retired_urls else ""
    hushed = t("status.quiet", n=len(silent)) if silent else ""
    ok = len(feeds) - len(failing) - len(silent)
    lines = [t("status.feeds", ok=ok, failing=len(failing), quiet=hushed, retired=retired)]
    for f in failing[:20]:
        nxt = t("status.next_try", at=f"{f.next_poll_at:%H:%M}") if f.next_poll_at else ""
        lines.append(f"  ⚠️ {escape(f.name)}: {escape(f.last_error or '?')} (×{f.failures}){nxt}")
    for f in silent[:20]:
        lines.append(f"  🔇 {escape(f.name)}: {escape(quiet[f.url])}")
    for f in store.retired_feeds()[:20]:
        gone = escape(f.last_error or "HTTP 410 Gone")
        lines.append(t("status.retired_feed", name=escape(f.name), error=gone, url=escape(f.url)))
    sizes = store.queue_sizes()
    pending = {kind: n for (kind, state), n in sizes.items() if state == "pending"}
    dropped = sum(n for (_, state), n in sizes.items() if state == "dropped")
    lines.append(t("status.queue", instant=pending.get("instant", 0), digest=pending.get("digest", 0), dropped=dropped))
    subs = store.subscriptions()
    lines.append(t("status.subscriptions", n=len(subs)))
    for s in subs[:30]:
        last = f"{s.last_digest_at:%Y-%m-%d %H:%M} UTC" if s.last_digest_at else t("status.never")
        paused = t("status.paused") if s.paused else ""
        lines.append(t("status.subscription", chat=escape(s.chat_id), mode=s.mode, last=last, paused=paused))
    return "\n".join(lines)


def set_language(store: Store, chat: str, args: Sequence[str], now: datetime) -> str:
    """``/language [en|ru]``: without an argument, the chat's language; with one, it is stored for the chat
    (replies, alerts and digests there speak it from now on), and the answer is already in it."""
    known = "|".join(LANGUAGES)
    if len(args) > 1:
        raise CommandError("language", t("language.args"))
    if not args:
        lang = store.chat_language(chat) or current()
        return t("language.current", lang, name=t("language.name", lang), known=known)
    lang = args[0].lower()
    if lang not in LANGUAGES:
        raise CommandError("language", t("language.unknown", value=repr(args[0]), known=", ".join(LANGUAGES)))
    store.set_chat_language(chat, lang, now)
    with using(lang):
        return t("language.done", name=t("language.name"))
