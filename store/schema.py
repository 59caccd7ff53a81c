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
    # v5: a rule change that renamed or deleted rules records the rule lists of the subscriptions it
    # updated, so /undo restores them too
    """
    ALTER TABLE rule_history ADD COLUMN subscriptions_json TEXT;
    """,
    # v6: the relevance score of a match (rules/score.py), NULL when no score model was loaded
    "ALTER TABLE matches ADD COLUMN score REAL;",
    # v7: item identity (core/identity.py). Rows stored before keep their uid (still counted as seen);
    # their new key columns stay NULL. item_sources lists the other feeds an item came from.
    """
    ALTER TABLE items ADD COLUMN guid TEXT;
    ALTER TABLE items ADD COLUMN link_key TEXT;
    ALTER TABLE items ADD COLUMN fingerprint TEXT;
    ALTER TABLE items ADD COLUMN updated_at TEXT;
    CREATE INDEX items_guid ON items(feed_id, guid);
    CREATE INDEX items_link_key ON items(link_key);
    CREATE INDEX items_fingerprint ON items(feed_id, fingerprint);
    ALTER TABLE feeds ADD COLUMN guids_unstable INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE feeds ADD COLUMN ignore_params TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE item_sources (
        item_id  INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        feed_id  INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        uid      TEXT NOT NULL,
        seen_at  TEXT NOT NULL,
        PRIMARY KEY (item_id, feed_id)
    );
    """,
    # v8 (issue 16): queries that stay flat as the store grows. Counts over a time window (/stats,
    # /trend, by rule or by entity) search matches by created_at, covering the rule; the daily prune finds
    # old delivered outbox rows by created_at. tests/test_store_plans.py checks every cycle, digest and
    # chat-command query uses an index.
    """
    CREATE INDEX matches_created_rule ON matches(created_at, rule);
    CREATE INDEX outbox_created ON outbox(created_at);
    """,
    # v9 (stories, issue 11): each matched item's story, its embedding, the candidate buckets a new item is
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
    # v10 (sources beyond RSS): what a source is (rss | telegram | page), its settings (JSON: channel, or the
    # page's selectors) and what its watcher keeps between polls (JSON: last message id, last selector count)
    """
    ALTER TABLE feeds ADD COLUMN kind TEXT NOT NULL DEFAULT 'rss';
    ALTER TABLE feeds ADD COLUMN spec TEXT NOT NULL DEFAULT '';
    ALTER TABLE feeds ADD COLUMN source_state TEXT NOT NULL DEFAULT '';
    """,
    # v11: items are parents of outbox rows and story keys; inserting or deleting an item looks its children
    # up by item_id (foreign keys, the prune), which no index served (tests/test_store_plans.py)
    """
    CREATE INDEX outbox_item ON outbox(item_id);
    CREATE INDEX story_keys_item ON story_keys(item_id);
    """,
    # v12 (search): the full-text index of every item's normalised keys (store/search.py says why keys, not
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
    # v13 (spike alerts, source labels; issue 15): a feed's labels (JSON list: state-media, wire, ...), every
    # spike found (its time is the cooldown, and /trend marks it), and each subscription's copy of a spike
    # alert with its delivery state (pending → in_flight → sent | uncertain | failed; bounded attempts)
    """
    ALTER TABLE feeds ADD COLUMN labels TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE spikes (
        id         INTEGER PRIMARY KEY,
        key        TEXT NOT NULL,
        at         TEXT NOT NULL,
        items      INTEGER NOT NULL,
        mean       REAL NOT NULL,
        text       TEXT NOT NULL
    );
    CREATE INDEX spikes_key_at ON spikes(key, at);
    CREATE INDEX spikes_at ON spikes(at);
    CREATE TABLE spike_sends (
        spike_id        INTEGER NOT NULL REFERENCES spikes(id) ON DELETE CASCADE,
        subscription_id INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
        state           TEXT NOT NULL DEFAULT 'pending',
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        error           TEXT,
        message_id      INTEGER,
        PRIMARY KEY (spike_id, subscription_id)
    );
    CREATE INDEX spike_sends_state ON spike_sends(state);
    """,
    # v14 (interface language): a chat's language chosen with /language (core/i18n.py); kept apart from
    # subscriptions, since a chat may choose its language before (or without) subscribing
    """
    CREATE TABLE chat_settings (
        chat_id TEXT PRIMARY KEY,
        language TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # v15 (interface language of spike alerts): each spike's alert in every interface language (JSON
    # language → text; '{}' for spikes recorded before), so each subscriber's copy is in its chat's language
    """
    ALTER TABLE spikes ADD COLUMN texts TEXT NOT NULL DEFAULT '{}';
    """,
    # v16 (several workers; issue 14): claims, so that workers sharing one store share the work and never
    # both do one piece of it (store/claims.py). A feed is claimed for a poll (claimed_by/claim_until); an
    # outbox entry in flight carries its worker and lease; a chat is claimed by one sender at a time (order
    # and pacing per chat); a digest is claimed once per subscription per day; the Telegram rate limits are
    # token buckets every sender takes from.
    """
    ALTER TABLE feeds ADD COLUMN claimed_by TEXT;
    ALTER TABLE feeds ADD COLUMN claim_until TEXT;
    ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
    ALTER TABLE outbox ADD COLUMN claim_until TEXT;
    CREATE TABLE send_claims (
        subscription_id INTEGER PRIMARY KEY REFERENCES subscriptions(id) ON DELETE CASCADE,
        worker          TEXT NOT NULL,
        until           TEXT NOT NULL
    );
    CREATE TABLE digest_claims (
        subscription_id INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
        day             TEXT NOT NULL,
        worker          TEXT NOT NULL,
        until           TEXT NOT NULL,
        done            INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (subscription_id, day)
    );
    CREATE TABLE rate_buckets (
        name    TEXT PRIMARY KEY,
        tokens  REAL NOT NULL,
        at      REAL NOT NULL
    );
    """,
)
