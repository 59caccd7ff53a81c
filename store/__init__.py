"""The store: one SQLite file (WAL) holding everything the bot must remember across restarts.

    feeds ──< items ──< matches
                 ├──< item_sources (other feeds that carried the same item: core/identity.py)
                 │
    subscriptions ──< outbox (one row per chat × item × kind; UNIQUE, so never twice)
    rule_history (previous versions of rule files, for /undo)      kv (small state)

Guarantee: marking an item seen and queueing its matches is one transaction (``Store.commit_poll``):
a crash never loses a match and never alerts twice for the same item. A crash during a send may repeat
that one message, because Telegram cannot be asked whether it already delivered it.
"""

from store.db import (
    CommitResult,
    ItemUpdate,
    OutboxEntry,
    ProcessedItem,
    Store,
    StoreError,
    Subscription,
)

__all__ = ["CommitResult", "ItemUpdate", "OutboxEntry", "ProcessedItem", "Store", "StoreError", "Subscription"]
