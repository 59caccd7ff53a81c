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
    # v2 (votes): analysts' 👍/👎 votes, one row per user per item (the latest vote counts), with the item's text and
    # the rules' verdict copied at vote time, so pruning an item's text or editing the rules keeps the label
    """
    CREATE TABLE votes (
        item_id      INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        user_id      INTEGER NOT NULL,
        chat_id      TEXT NOT NULL,
        label        INTEGER NOT NULL CHECK (label IN (0, 1)),
        title        TEXT NOT NULL,
        summary      TEXT NOT NULL,
        lang         TEXT,
        link         TEXT,
        verdict_json TEXT NOT NULL,
        voted_at     TEXT NOT NULL,
        PRIMARY KEY (item_id, user_id)
    );
    CREATE INDEX votes_voted_at ON votes(voted_at);
    """,
    # v3 (quiet feeds): the episode a quiet feed's admins were told of (the instant of its last new item;
    # NULL when not quiet), and each feed's first-seen history read in order
    """
    ALTER TABLE feeds ADD COLUMN quiet_told_for TEXT;
    CREATE INDEX items_feed_seen ON items(feed_id, seen_at);
    """,
    # v4: the delivery state machine (pending → in_flight → sent | uncertain | dropped) and what was sent
    """
    ALTER TABLE outbox ADD COLUMN unconfirmed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN in_flight_at TEXT;
    ALTER TABLE outbox ADD COLUMN message_id INTEGER;
    ALTER TABLE outbox ADD COLUMN chat_id TEXT;
    CREATE INDEX outbox_in_flight ON outbox(state) WHERE state = 'in_flight';
    """,
    # v5 (search): the full-text index of every item's normalised keys (store/search.py says why keys, not
    # a trigram tokeniser), kept in step by triggers on items whatever writes them; existing items backfilled.
    # The triggers call search_keys(), which every connection the store opens registers (store/search.py).
    """
    CREATE VIRTUAL TABLE items_fts USING fts5(keys, tokenize = 'unicode61 remove_diacritics 0');
    CREATE TRIGGER items_fts_insert AFTER INSERT ON items WHEN new.title != '' OR new.summary != '' BEGIN
        INSERT INTO items_fts (rowid, keys) VALUES (new.id, search_keys(new.title, new.summary));
    END;
    CREATE TRIGGER items_fts_update AFTER UPDATE OF title, summary ON items BEGIN
        DELETE FROM items_fts WHERE rowid = old.id;
        INSERT INTO items_fts (rowid, keys) SELECT new.id, search_keys(new.title, new.summary)
            WHERE new.title != '' OR new.summary != '';
    END;
    CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
        DELETE FROM items_fts WHERE rowid = old.id;
    END;
    INSERT INTO items_fts (rowid, keys)
        SELECT id, search_keys(title, summary) FROM items WHERE title != '' OR summary != '';
""",
)
