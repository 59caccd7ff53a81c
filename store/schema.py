"""Versioned schema migrations. Append a script to add a version; never edit a released one.

The version lives in ``PRAGMA user_version``; each script runs in its own transaction.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # v1
    """
    CREATE TABLE feeds (
        id             INTEGER PRIMARY KEY,
        url            TEXT NOT NULL UNIQUE,
        name           TEXT NOT NULL,
        lang           TEXT,
        interval       INTEGER NOT NULL,
        etag           TEXT,
        last_modified  TEXT,
        failures       INTEGER NOT NULL DEFAULT 0,
        next_poll_at   TEXT,
        last_polled_at TEXT,
        last_ok_at     TEXT,
        last_error     TEXT,
        initialised    INTEGER NOT NULL DEFAULT 0,
        enabled        INTEGER NOT NULL DEFAULT 1,
        gone           INTEGER NOT NULL DEFAULT 0,
        added_by       TEXT NOT NULL DEFAULT 'config',
        created_at     TEXT NOT NULL
    );
    CREATE TABLE items (
        id        INTEGER PRIMARY KEY,
        feed_id   INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        uid       TEXT NOT NULL,
        title     TEXT NOT NULL,
        summary   TEXT NOT NULL,
        link      TEXT,
        published TEXT,
        lang      TEXT,
        seen_at   TEXT NOT NULL,
        UNIQUE (feed_id, uid)
    );
    CREATE INDEX items_seen_at ON items(seen_at);
    CREATE TABLE matches (
        id         INTEGER PRIMARY KEY,
        item_id    INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        rule       TEXT NOT NULL,
        priority   TEXT NOT NULL,
        hits_json  TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (item_id, rule)
    );
    CREATE INDEX matches_rule_created ON matches(rule, created_at);
    CREATE TABLE subscriptions (
        id             INTEGER PRIMARY KEY,
        chat_id        TEXT NOT NULL UNIQUE,
        chat_title     TEXT,
        chat_type      TEXT,
        mode           TEXT NOT NULL DEFAULT 'both',
        rules_json     TEXT NOT NULL DEFAULT '[]',
        digest_time    TEXT,
        timezone       TEXT,
        paused         INTEGER NOT NULL DEFAULT 0,
        paused_reason  TEXT,
        muted_until    TEXT,
        last_digest_at TEXT,
        source         TEXT NOT NULL DEFAULT 'chat',
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL
    );
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        subscription_id INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
        item_id         INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        kind            TEXT NOT NULL,
        rules_json      TEXT NOT NULL,
        state           TEXT NOT NULL DEFAULT 'pending',
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        created_at      TEXT NOT NULL,
        sent_at         TEXT,
        last_error      TEXT,
        UNIQUE (subscription_id, item_id, kind)
    );
    CREATE INDEX outbox_pending ON outbox(state, kind, subscription_id);
    CREATE TABLE rule_history (
        id         INTEGER PRIMARY KEY,
        file       TEXT NOT NULL,
        content    TEXT,
        action     TEXT NOT NULL,
        author     TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # stories (issue 11): each matched item's story, its embedding, the candidate buckets a new item is
    # compared through, and the instant alert each subscription got for a story (edited, not repeated)
    """
    ALTER TABLE items ADD COLUMN story_id INTEGER;
    ALTER TABLE items ADD COLUMN embedding BLOB;
    CREATE INDEX items_story ON items(story_id);
    CREATE TABLE story_keys (
        key     TEXT NOT NULL,
        item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        at      TEXT NOT NULL
    );
    CREATE INDEX story_keys_key ON story_keys(key, at);
    CREATE TABLE story_alerts (
        subscription_id INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
        story_id        INTEGER NOT NULL,
        chat_id         TEXT NOT NULL,
        message_id      INTEGER NOT NULL,
        text            TEXT NOT NULL,
        sources_json    TEXT NOT NULL DEFAULT '[]',
        dirty           INTEGER NOT NULL DEFAULT 0,
        replies         INTEGER NOT NULL DEFAULT 0,
        edited_at       TEXT,
        created_at      TEXT NOT NULL,
        PRIMARY KEY (subscription_id, story_id)
    );
    ALTER TABLE subscriptions ADD COLUMN stories INTEGER NOT NULL DEFAULT 1;
    """,
)
