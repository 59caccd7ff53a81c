"""The store: one SQLite file (WAL) holding everything the bot must remember across restarts.

    feeds ──< items ──< matches
                 │
    subscriptions ──< outbox (one row per chat × item × kind; UNIQUE, so never twice)
    rule_history (previous versions of rule files, for /undo)      kv (small state)

Guarantee: marking an item seen and queueing its matches is one transaction (``Store.commit_poll``):
a crash never loses a match and never alerts twice for the same item. A crash during a send may repeat
that one message, because Telegram cannot be asked whether it already delivered it.
"""

from store.db import (
    CommitResult,
    OutboxEntry,
    ProcessedItem,
    Store,
    StoreError,
    StoryAlert,
    StoryDecision,
    StoryMember,
    Subscription,
)

__all__ = [
    "CommitResult",
    "OutboxEntry",
    "ProcessedItem",
    "Store",
    "StoreError",
    "StoryAlert",
    "StoryDecision",
    "StoryMember",
    "Subscription",
]
