"""The store: everything the bot must remember across restarts, on SQLite or PostgreSQL. Read this first.

Which backend. ``storage.path: data/monitor.sqlite3`` (or ``storage.url: sqlite:///data/monitor.sqlite3``) is
the default: one file in WAL mode, no server, one bot process per file (``<store>.lock``). Move to
``storage.url: postgresql://bot@db-host/monitor`` (password from PGPASSWORD / ~/.pgpass, never in the URL)
when one process is not enough: several workers share one database, and a server does the backups.

The interface is :class:`Store` (store/db.py): ``Store.open(target, exclusive=...)``, one method per thing
the bot asks, ``store.dialect`` ("sqlite" | "postgresql"), ``store.conn`` (``?`` placeholders on both,
rows as tuples), ``store.transaction()``, ``store.skip_locked`` and ``store.advisory_lock(name)`` for
claims; catch :data:`DB_ERRORS` (either driver's errors) around a write. Behind it, store/backend.py is the
dialect interface and store/sqlite.py, store/postgres.py implement it; store/schema.py has one migration
list per dialect. The rest of the code never writes SQL of its own.

    feeds ──< items ──< matches
                 ├──< item_sources (other feeds that carried the same item: core/identity.py)
                 │
    subscriptions ──< outbox (one row per chat × item × kind; UNIQUE, so never twice)
    rule_history (previous versions of rule files, for /undo)      kv (small state)
    items ──< votes (👍/👎: one per user per item, with the item's text and the verdict at vote time)

Guarantee: marking an item seen and queueing its matches is one transaction (``Store.commit_poll``):
a crash never loses a match and never alerts twice for the same item (on both backends). A send Telegram
may have accepted without our record (a crash, an unreadable reply, a failed write) is repeated at most
once; then the entry is "uncertain" (delivery/outbox.py). On SQLite ``<store>.lock`` keeps it to one bot
process (store/lock.py); on PostgreSQL ``exclusive`` takes no lock (several workers share the database).
"""

from core.dburl import redact
from store.backend import DB_ERRORS
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
    "DB_ERRORS",
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
    "redact",
]
