"""The store: one SQLite file (WAL) holding everything the bot must remember across restarts.

    feeds ──< items ──< matches
                 ├──< item_sources (other feeds that carried the same item: core/identity.py)
                 │
    subscriptions ──< outbox (one row per chat × item × kind; UNIQUE, so never twice)
    rule_history (previous versions of rule files, for /undo)      kv (small state)
    items ──< votes (👍/👎: one per user per item, with the item's text and the verdict at vote time)

Guarantee: marking an item seen and queueing its matches is one transaction (``Store.commit_poll``):
a crash never loses a match and never alerts twice for the same item. A send Telegram may have accepted
without our record (a crash, an unreadable reply, a failed write) is repeated at most once; then the
entry is "uncertain" (delivery/outbox.py). ``<store>.lock`` keeps it to one bot process (store/lock.py).
"""

from store.db import (
    CommitResult,
    ItemUpdate,
    OutboxEntry,
    ProcessedItem,
    Store,
    StoreError,
    StoryAlert,
    StoryDecision,
    StoryMember,
    Subscription,
    Vote,
)

__all__ = [
    "CommitResult",
    "ItemUpdate",
    "OutboxEntry",
    "ProcessedItem",
    "Store",
    "StoreError",
    "StoryAlert",
    "StoryDecision",
    "StoryMember",
    "Subscription",
    "Vote",
]
