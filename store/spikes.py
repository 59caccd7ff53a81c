"""The store's side of spike alerts: the matched rows a spike is decided on, the spikes found (their time
is the cooldown, so a restart never alerts twice for one window), and each subscription's copy of a spike
alert with its delivery state.

Why a table of its own rather than the outbox: outbox rows are items; a spike is not an item but a count
over many. Its sends follow the same bounded state machine (delivery/outbox.py's): pending → in_flight →
sent | failed | uncertain, with a bounded number of attempts, "in flight" recorded before the send and a
row left in flight by a crash becoming "uncertain", never sent again.

Kept beside store/db.py (whose Store these functions take) so the spike queries read as one piece.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from store.db import Store, from_ts, ts

MAX_SPIKE_ATTEMPTS = 3  # then the send is failed: a spike is news for hours, not for days


@dataclass(frozen=True, slots=True)
class SpikeRow:
    key: str  # "rule:<name>" or "entity:<group>"
    at: datetime
    story: str  # the item's story id, else its own id (prefixed, so the two never collide)
    title: str  # "" outside the window (only the window's stories are listed)
    link: str | None


@dataclass(frozen=True, slots=True)
class SpikeSend:
    spike_id: int
    subscription_id: int
    chat_id: str
    text: str  # in the default language; ``texts`` has it in every interface language
    attempts: int
    texts: Mapping[str, str] = field(default_factory=dict)

    def text_in(self, lang: str) -> str:
        return self.texts.get(lang, self.text)


def spike_rows(store: Store, since: datetime, window_start: datetime) -> list[SpikeRow]:
    """Every match from ``since`` on, once per rule and once per entity group named in its hits, with the
    item's story; titles and links only for rows from ``window_start`` on."""
    sql = (
        "SELECT {key}, m.created_at, COALESCE('s' || i.story_id, 'i' || i.id), "
        "CASE WHEN m.created_at >= ? THEN i.title ELSE '' END, "
        "CASE WHEN m.created_at >= ? THEN i.link END "
        "FROM matches m JOIN items i ON i.id = m.item_id{source} WHERE m.created_at >= ?"
    )
    params = (ts(window_start), ts(window_start), ts(since))
    out: list[SpikeRow] = []
    backend = store.backend
    for key, source in (
        ("'rule:' || m.rule", ""),
        (f"DISTINCT 'entity:' || {backend.json_first('j.value')}", f", {backend.json_elements('m.hits_json', 'j')}"),
    ):
        for k, at, story, title, link in store.conn.execute(sql.format(key=key, source=source), params):
            when = from_ts(at)
            assert when is not None
            out.append(SpikeRow(k, when, story, title or "", link))
    return out


def last_spike_at(store: Store, key: str) -> datetime | None:
    row = store.conn.execute("SELECT MAX(at) FROM spikes WHERE key = ?", (key,)).fetchone()
    return from_ts(row[0]) if row else None


def record_spike(
    store: Store,
    key: str,
    at: datetime,
    cooldown_from: datetime,
    items: int,
    mean: float,
    text: str,
    rule: str | None,
    *,
    send: bool = True,
    texts: Mapping[str, str] | None = None,
) -> int | None:
    """Record a spike and queue its alert for every subscription that takes it, in one transaction; None
    (nothing recorded) when ``key`` already spiked after ``cooldown_from``. A rule's spike goes to the
    subscriptions that follow that rule; an entity group's (``rule=None``) to those that follow every rule.
    Paused, muted and digest-only subscriptions get none: a spike is an instant alert. ``send=False``
    records the spike (its cooldown, its /trend mark) and queues nothing. ``texts``: the alert in each
    interface language (a subscriber whose chat's language is missing gets ``text``)."""
    with store.transaction() as conn:
        row = conn.execute("SELECT 1 FROM spikes WHERE key = ? AND at > ?", (key, ts(cooldown_from))).fetchone()
        if row is not None:
            return None
        cur = conn.execute(
            "INSERT INTO spikes (key, at, items, mean, text, texts) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (key, ts(at), items, mean, text, json.dumps(dict(texts or {}), ensure_ascii=False)),
        )
        spike_id = int(cur.fetchall()[0][0])
        if not send:
            return spike_id
        subs = conn.execute(
            "SELECT id, rules_json FROM subscriptions WHERE paused = 0 AND mode != 'digest' "
            "AND (muted_until IS NULL OR muted_until <= ?)",
            (ts(at),),
        ).fetchall()
        for sub_id, rules_json in subs:
            rules = json.loads(rules_json)
            if (rule is None and not rules) or (rule is not None and (not rules or rule in rules)):
                conn.execute("INSERT INTO spike_sends (spike_id, subscription_id) VALUES (?, ?)", (spike_id, sub_id))
        return spike_id


def pending_spike_sends(store: Store, now: datetime) -> list[SpikeSend]:
    rows = store.conn.execute(
        "SELECT p.spike_id, p.subscription_id, s.chat_id, k.text, p.attempts, k.texts FROM spike_sends p "
        "JOIN spikes k ON k.id = p.spike_id JOIN subscriptions s ON s.id = p.subscription_id "
        "WHERE p.state = 'pending' AND s.paused = 0 AND (p.next_attempt_at IS NULL OR p.next_attempt_at <= ?) "
        "ORDER BY p.spike_id, p.subscription_id",
        (ts(now),),
    ).fetchall()
    return [SpikeSend(r[0], r[1], r[2], r[3], r[4], texts=json.loads(r[5])) for r in rows]


def begin_spike_send(store: Store, send: SpikeSend) -> None:
    with store.transaction() as conn:
        conn.execute(
            "UPDATE spike_sends SET state = 'in_flight', attempts = attempts + 1 "
            "WHERE spike_id = ? AND subscription_id = ?",
            (send.spike_id, send.subscription_id),
        )


def end_spike_send(
    store: Store,
    send: SpikeSend,
    state: str,
    *,
    message_id: int | None = None,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> None:
    """``state``: sent | failed | uncertain | pending (with ``retry_at``; failed once the attempts are spent)."""
    if state == "pending" and send.attempts + 1 >= MAX_SPIKE_ATTEMPTS:
        state = "failed"
    with store.transaction() as conn:
        conn.execute(
            "UPDATE spike_sends SET state = ?, message_id = ?, error = ?, next_attempt_at = ? "
            "WHERE spike_id = ? AND subscription_id = ?",
            (state, message_id, error, ts(retry_at), send.spike_id, send.subscription_id),
        )


def resolve_spike_sends(store: Store) -> int:
    """Sends left in flight (the process died, or the record after the send failed): maybe delivered, so
    never sent again. Returns how many became 'uncertain'."""
    with store.transaction() as conn:
        return conn.execute(
            "UPDATE spike_sends SET state = 'uncertain', error = 'interrupted' WHERE state = 'in_flight'"
        ).rowcount


def spike_times(store: Store, since: datetime, until: datetime, keys: Sequence[str] | None = None) -> list[datetime]:
    """When spikes were found from ``since`` to ``until`` (of ``keys``, else of any key): /trend marks them."""
    where = "at >= ? AND at <= ?"
    params: list[str | None] = [ts(since), ts(until)]
    if keys is not None:
        where += f" AND key IN ({','.join('?' * len(keys))})"
        params += list(keys)
    out = []
    for (at,) in store.conn.execute(f"SELECT at FROM spikes WHERE {where} ORDER BY at", params):
        when = from_ts(at)
        assert when is not None
        out.append(when)
    return out
