"""Analysts teach the bot: 👍/👎 votes on alerts, what they say about each rule, and about a rule edit.

Why each choice:

- **Callback data** is ``v:<item id>:<1|0>:<mac>`` — 18 to 35 bytes, under Telegram's 64. The item is
  named by its store row id (a feed URL and GUID would not fit); the rules are not in it, because the
  store already knows which rules matched the item. ``mac`` is 12 base64url characters (72 bits) of an
  HMAC-SHA256 over the rest, keyed by a random secret kept in the store's ``kv`` table, so a client
  that edits the data (another item, the other label) or replays buttons of another bot's store is
  refused with a short answer and nothing is recorded. An item whose text was pruned (older than the
  retention) is refused as too old: there is nothing left to label.
- **One vote per user per item**, the latest counts (a user may change their mind); a vote copies the
  item's text (title, summary, lang, link) and the rules' verdict (which rules matched, and their score
  when the match has one), so pruning or later rule edits never change what was labelled.
- **An item's label** is the majority of its users' latest votes; an item with as many 👍 as 👎 is
  left out (of ``/quality``'s precision, of the back-test and of ``bot.py labels export``) and counted
  as a tie, so one analyst's dissent never flips a label silently.
- **Precision from votes** for a rule is 👍 / (👍 + 👎) over the voted items it matched; ``alerts`` is
  how many items it matched in the period, so a rule with few votes shows how little is known.
- **The voted back-test** runs the proposed rules over the voted items (pure: plain items in, counts
  out): of the 👎 items the current rules match, how many the edit would stop matching ("fixes"); of
  the 👍 items the current rules match, how many it would lose ("loses").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.i18n import t
from core.models import Item, Match
from delivery.render import escape
from rules import RuleSet
from store import Store, Vote

SECRET_KEY = "feedback_secret"  # the kv row holding the HMAC key
MAC_CHARS = 12
UP, DOWN = 1, 0
LABEL_EMOJI = {UP: "👍", DOWN: "👎"}
CALLBACK_PATTERN = r"^v:"  # what the vote handler answers; the rule-edit buttons start with "rules:"
_DATA = re.compile(r"v:(\d{1,18}):([01]):([A-Za-z0-9_-]{" + str(MAC_CHARS) + "})")
DEFAULT_DAYS, MAX_DAYS = 30, 365


def sign(secret: bytes, item_id: int, label: int) -> str:
    """The callback data of item ``item_id``'s 👍 (label 1) or 👎 (label 0) button."""
    body = f"v:{item_id}:{label}"
    return f"{body}:{_mac(secret, body)}"


def _mac(secret: bytes, body: str) -> str:
    digest = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:MAC_CHARS]


def verify(secret: bytes, data: str) -> tuple[int, int] | None:
    """``(item_id, label)`` of callback data this store signed; None for anything else."""
    m = _DATA.fullmatch(data)
    if m is None:
        return None
    body = f"v:{m.group(1)}:{m.group(2)}"
    if not hmac.compare_digest(_mac(secret, body), m.group(3)):
        return None
    return int(m.group(1)), int(m.group(2))


def signer(store: Store) -> Callable[[int, int], str]:
    """:func:`sign` bound to the store's secret (what the outbox builds its buttons with)."""
    secret = store.secret(SECRET_KEY)
    return lambda item_id, label: sign(secret, item_id, label)


def verdict(matches: Sequence[Match]) -> list[dict[str, object]]:
    """The rules' verdict on an item, as stored with a vote: each rule that matched, and its score."""
    return [{"rule": m.rule, "priority": m.priority, "score": getattr(m, "score", None)} for m in matches]


def cast_vote(store: Store, data: str, user_id: int, chat_id: str, now: datetime) -> str:
    """Record the vote a button's callback data carries; the short answer to show the user."""
    parsed = verify(store.secret(SECRET_KEY), data)
    if parsed is None:
        return t("vote.invalid")
    item_id, label = parsed
    found = store.item_with_matches(item_id)
    if found is None:
        return t("vote.too_old")
    item, matches = found
    before = store.record_vote(item_id, user_id, chat_id, label, item, verdict(matches), now)
    if before is not None and before != label:
        return t("vote.changed", label=LABEL_EMOJI[label], before=LABEL_EMOJI[before])
    return t("vote.recorded", label=LABEL_EMOJI[label])


@dataclass(frozen=True, slots=True)
class Label:
    """An item's label from its users' latest votes (majority)."""

    item_id: int
    item: Item
    label: int
    up: int
    down: int
    rules: tuple[str, ...]
    voted_at: datetime  # the latest vote on it


def item_labels(votes: Sequence[Vote]) -> tuple[list[Label], int]:
    """Each voted item's majority label (in item order), and how many items were ties (left out)."""
    by_item: dict[int, list[Vote]] = {}
    for vote in votes:
        by_item.setdefault(vote.item_id, []).append(vote)
    labels: list[Label] = []
    ties = 0
    for item_id, group in by_item.items():
        up = sum(1 for v in group if v.label == UP)
        down = len(group) - up
        if up == down:
            ties += 1
            continue
        latest = max(group, key=lambda v: v.voted_at)
        labels.append(Label(item_id, latest.item, UP if up > down else DOWN, up, down, latest.rules, latest.voted_at))
    return labels, ties


@dataclass(frozen=True, slots=True)
class RuleQuality:
    rule: str
    alerts: int  # items the rule matched in the period
    up: int  # voted items it matched, labelled 👍
    down: int  # … labelled 👎

    @property
    def precision(self) -> float | None:
        voted = self.up + self.down
        return self.up / voted if voted else None


def rule_quality(alerts: Mapping[str, int], labels: Sequence[Label], rules: Sequence[str]) -> list[RuleQuality]:
    """Per rule (``rules`` first, in order, then any other rule with alerts or votes): alerts, 👍, 👎."""
    names = list(rules)
    for name in [*alerts, *(r for lab in labels for r in lab.rules)]:
        if name not in names:
            names.append(name)
    out = []
    for name in names:
        up = sum(1 for lab in labels if name in lab.rules and lab.label == UP)
        down = sum(1 for lab in labels if name in lab.rules and lab.label == DOWN)
        out.append(RuleQuality(name, alerts.get(name, 0), up, down))
    return out


def parse_days(args: Sequence[str]) -> int:
    """``/quality [days]``: a whole number of days, 1–365 (default 30); ValueError naming the problem."""
    if not args:
        return DEFAULT_DAYS
    if len(args) > 1 or not args[0].isdigit() or not 1 <= int(args[0]) <= MAX_DAYS:
        raise ValueError(t("quality.days", max=MAX_DAYS, default=DEFAULT_DAYS))
    return int(args[0])


def quality_text(rows: Sequence[RuleQuality], days: int, ties: int) -> str:
    """``/quality``'s answer: a fixed-width table per rule, then how the figures were counted."""
    width = max([len("rule"), *(len(r.rule) for r in rows)])
    lines = [f"{'rule':<{width}}  alerts   👍   👎  precision"]
    for r in rows:
        p = "—" if r.precision is None else f"{r.precision:.2f}"
        lines.append(f"{r.rule:<{width}}  {r.alerts:>6} {r.up:>4} {r.down:>4}  {p:>9}")
    voted = {(r.up, r.down) for r in rows}
    note = [
        t("quality.title", n=days),
        f"<pre>{escape(chr(10).join(lines))}</pre>",
        t("quality.how"),
    ]
    if ties:
        note.append(t("quality.ties", n=ties))
    if voted <= {(0, 0)}:
        note.append(t("quality.no_votes"))
    return "\n".join(note)


def quality_report(store: Store, rules: RuleSet, days: int, now: datetime) -> str:
    since = now - timedelta(days=days)
    labels, ties = item_labels(store.votes(since))
    rows = rule_quality(store.match_counts(since), labels, [r.name for r in rules.rules])
    return quality_text(rows, days, ties)


@dataclass(frozen=True, slots=True)
class VotedEffect:
    """How a rule edit changes the voted items (see the module docstring)."""

    down: int  # 👎 items the current rules match
    fixed: int  # … that the proposed rules no longer match
    up: int  # 👍 items the current rules match
    lost: int  # … that the proposed rules no longer match
    let_in: int = 0  # 👎 items the current rules do not match and the proposed ones do
    won_back: int = 0  # 👍 items the current rules do not match and the proposed ones do

    def text(self) -> str:
        line = f"Voted items: fixes {self.fixed} of {self.down} 👎, loses {self.lost} of {self.up} 👍"
        if self.let_in:
            line += f", lets in {self.let_in} more 👎"
        if self.won_back:
            line += f", wins back {self.won_back} 👍"
        return line


def voted_effect(old: RuleSet, new: RuleSet, labelled: Sequence[tuple[Item, int]]) -> VotedEffect:
    """Run the current and the proposed rules over the voted items (``(item, label)`` pairs)."""
    down = fixed = up = lost = let_in = won_back = 0
    for item, label in labelled:
        before, after = bool(old.match(item)), bool(new.match(item))
        if label == DOWN:
            down += before
            fixed += before and not after
            let_in += after and not before
        else:
            up += before
            lost += before and not after
            won_back += after and not before
    return VotedEffect(down, fixed, up, lost, let_in, won_back)


def voted_items(store: Store) -> list[tuple[Item, int]]:
    """Every voted item with its majority label (ties left out), for the back-test."""
    labels, _ties = item_labels(store.votes())
    return [(lab.item, lab.label) for lab in labels]
