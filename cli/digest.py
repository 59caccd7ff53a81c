"""``bot.py digest --chat ID --dry-run``: print the digest a subscription would get now, without sending.

It opens the store as the running bot does (service/app.py ``prepare``) and builds the messages with the
functions its ``digests`` job uses (delivery/outbox.py), so what it prints is what the chat would get.
"""

from __future__ import annotations

import sys
from zoneinfo import ZoneInfo

from core.config import Config
from delivery.outbox import DigestPlan, due_digests, render_digest_parts
from service.app import prepare
from service.state import utcnow


def print_digest(config: Config, *, chat: str, dry_run: bool) -> int:
    """``bot.py digest --chat ID --dry-run``: the digest that subscription would get now."""
    state = prepare(config)
    if state is None:
        return 1
    try:
        sub = state.store.subscription(chat)
        if sub is None:
            print(f"error: no subscription for chat {chat}", file=sys.stderr)
            return 1
        now = utcnow()
        plans = [p for p in due_digests(state.store, config.digest, now) if p.subscription.id == sub.id]
        plan = plans[0] if plans else DigestPlan(sub, now, ZoneInfo(sub.timezone or config.digest.timezone))
        parts, _ids = render_digest_parts(state.store, plan, config.digest, now, state.rule_titles())
        chunks = [text for text, _ in parts]
        if not chunks:
            print(f"(nothing queued for {chat} since {sub.last_digest_at or 'the start'})")
        for i, chunk in enumerate(chunks, 1):
            print(f"--- message {i}/{len(chunks)} (parse_mode=HTML, previews off) ---\n{chunk}")
        if not dry_run:
            print("(only --dry-run is supported from the command line; the running bot sends digests)")
        return 0
    finally:
        state.store.close()
