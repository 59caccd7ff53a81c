"""The store on both backends (test ids say which): migrations, atomic poll commits, fan-out to
subscriptions, never twice. Tests about the SQLite file itself say ``sqlite`` in their names."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.config import FeedConfig
from core.models import Hit, Item, Match
from store import DB_ERRORS, ProcessedItem, Store, StoreError, StoryDecision
from store.schema import MIGRATIONS, PG_BASE, PG_MIGRATIONS
from tests.pgserver import fail_writes

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
URL = "https://news.example/rss"
INSTANT = Match("military", "instant", (Hit("DPRK", "title", 0, 4, "КНДР"), Hit("RUSSIA", "title", 7, 13, "Россия")))
DIGEST = Match("context", "digest", (Hit("DPRK", "summary", 3, 9, "North Korea"),))


def item(uid: str, title: str = "КНДР и Россия") -> Item:
    return Item(
        feed_url=URL,
        uid=uid,
        title=title,
        summary="s",
        link=f"https://news.example/{uid}",
        published=NOW - timedelta(hours=1),
        lang="ru",
        feed_name="News",
    )


@pytest.fixture
def store(store_target: Path | str) -> Store:
    s = Store.open(store_target)
    s.sync_feeds([FeedConfig(URL, "News", "ru", 600)], NOW)
    yield s
    s.close()


def feed_id(store: Store) -> int:
    f = store.feed_by_url(URL)
    assert f is not None
    return f.id


def commit(store: Store, *items: ProcessedItem, ok: bool = True) -> object:
    return store.commit_poll(
        feed_id(store),
        NOW,
        ok=ok,
        etag='"e"',
        last_modified=None,
        error=None if ok else "x",
        next_poll_at=NOW + timedelta(minutes=10),
        items=items,
    )


def test_new_sqlite_store_is_migrated_in_wal_mode(tmp_path: Path) -> None:
    with Store.open(tmp_path / "a" / "b.sqlite3") as s:
        assert s.schema_version == len(MIGRATIONS)
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_store_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this program knows"):
        Store.open(path)


def test_unwritable_or_bogus_sqlite_paths_give_clear_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the folder"):
        Store.open(blocker / "sub" / "db.sqlite3")
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=str(junk)):
        Store.open(junk)
    if os.geteuid() != 0:  # root ignores directory permissions
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(StoreError):
            Store.open(ro / "db.sqlite3")


def test_items_are_never_processed_twice_across_restarts(store_target: Path | str) -> None:
    path = store_target
    with Store.open(path) as s:
        s.sync_feeds([FeedConfig(URL, "News", "ru", 600)], NOW)
        s.upsert_subscription(42, NOW)
        first = commit(s, ProcessedItem(item("a"), (INSTANT,), True))
        assert (first.new_items, first.outbox_rows) == (1, 2)  # instant + digest for a "both" chat
    with Store.open(path) as s:
        assert s.unseen_uids(feed_id(s), ["a", "b"]) == {"b"}
        again = commit(s, ProcessedItem(item("a"), (INSTANT,), True))
        assert (again.new_items, again.matches, again.outbox_rows) == (0, 0, 0)
        assert len(s.pending_instant(NOW)) == 1


def test_commit_is_all_or_nothing(store: Store) -> None:
    store.upsert_subscription(42, NOW)
    bad = Item(feed_url=URL, uid="bad", title=None, summary="s")  # type: ignore[arg-type]  # NOT NULL violation
    with pytest.raises(DB_ERRORS):
        commit(store, ProcessedItem(item("ok"), (INSTANT,), True), ProcessedItem(bad, (), True))
    assert store.unseen_uids(feed_id(store), ["ok"]) == {"ok"}, "the first item was rolled back too"
    assert store.pending_instant(NOW) == []
    assert store.feed_by_url(URL).etag is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "mode", "rules", "matches", "kinds"),
    [
        ("both gets instant and digest", "both", (), (INSTANT,), {"instant", "digest"}),
        ("digest-only chat gets no instant", "digest", (), (INSTANT,), {"digest"}),
        ("instant-only chat ignores digest-priority", "instant", (), (DIGEST,), set()),
        ("instant-only chat gets urgent", "instant", (), (INSTANT, DIGEST), {"instant"}),
        ("chat following another rule gets nothing", "both", ("other",), (INSTANT,), set()),
        ("chat following the digest rule", "both", ("context",), (INSTANT, DIGEST), {"digest"}),
    ],
)
def test_fan_out(
    store: Store, name: str, mode: str, rules: tuple[str, ...], matches: tuple[Match, ...], kinds: set[str]
) -> None:
    store.upsert_subscription(7, NOW, mode=mode, rules=rules)
    commit(store, ProcessedItem(item("x"), matches, True))
    got = {k for (k, state), n in store.queue_sizes().items() if state == "pending" and n}
    assert got == kinds, name


def test_not_deliverable_items_are_seen_but_not_queued(store: Store) -> None:
    store.upsert_subscription(7, NOW)
    result = commit(store, ProcessedItem(item("old"), (INSTANT,), False))
    assert store.queue_sizes() == {} and result.matches == 1  # type: ignore[attr-defined]


def test_paused_subscription_gets_nothing(store: Store) -> None:
    store.upsert_subscription(7, NOW)
    store.set_paused(7, True, "bot was kicked", NOW)
    commit(store, ProcessedItem(item("x"), (INSTANT,), True))
    assert store.queue_sizes() == {}


def test_outbox_entries_rebuild_the_match_exactly(store: Store) -> None:
    store.upsert_subscription(7, NOW)
    commit(store, ProcessedItem(item("x"), (INSTANT, DIGEST), True))
    (entry,) = store.pending_instant(NOW)
    assert entry.chat_id == "7" and entry.item == item("x")
    assert entry.matches == (INSTANT, DIGEST)
    store.mark_retry(entry.id, NOW, NOW + timedelta(seconds=30), "HTTP 429")
    assert store.pending_instant(NOW) == []
    assert len(store.pending_instant(NOW + timedelta(seconds=31))) == 1
    store.mark_sent([entry.id], NOW)
    assert store.pending_instant(NOW + timedelta(hours=1)) == []


def test_a_matchs_relevance_score_is_stored_with_it(store: Store) -> None:
    from dataclasses import replace

    store.upsert_subscription(7, NOW)
    commit(store, ProcessedItem(item("x"), (replace(INSTANT, score=0.91), DIGEST), True))
    (entry,) = store.pending_instant(NOW)
    assert [m.score for m in entry.matches] == [0.91, None]


def test_digest_completion_and_muting(store: Store) -> None:
    sub = store.upsert_subscription(7, NOW, mode="digest")
    commit(store, ProcessedItem(item("x"), (DIGEST,), True))
    entries = store.digest_entries(sub.id, NOW)
    store.complete_digest(sub.id, [e.id for e in entries], NOW)
    assert store.digest_entries(sub.id, NOW) == []
    assert store.subscription(7).last_digest_at == NOW  # type: ignore[union-attr]
    store.upsert_subscription(8, NOW, mode="instant")
    store.set_muted_until(8, NOW + timedelta(hours=1), NOW)
    commit(store, ProcessedItem(item("y"), (INSTANT,), True))
    assert store.pending_instant(NOW) == []
    assert len(store.pending_instant(NOW + timedelta(hours=2))) == 1


def test_migrate_chat_moves_subscription_and_queue(store: Store) -> None:
    store.upsert_subscription(-100, NOW)
    commit(store, ProcessedItem(item("x"), (INSTANT,), True))
    assert store.migrate_chat(-100, -1001234, NOW)
    assert store.subscription(-100) is None
    assert [e.chat_id for e in store.pending_instant(NOW)] == ["-1001234"]


def test_feed_state_failure_and_recovery(store: Store) -> None:
    commit(store, ok=False)
    commit(store, ok=False)
    f = store.feed_by_url(URL)
    assert f is not None and (f.failures, f.last_error, f.initialised) == (2, "x", False)
    commit(store)
    f = store.feed_by_url(URL)
    assert f is not None and (f.failures, f.last_error, f.initialised, f.etag) == (0, None, True, '"e"')
    assert store.due_feeds(NOW) == [] and len(store.due_feeds(NOW + timedelta(minutes=11))) == 1


def test_sync_feeds_disables_removed_config_feeds_keeps_chat_added(store: Store) -> None:
    store.add_feed("https://chat.example/rss", "chat", None, 600, "chat", NOW)
    store.sync_feeds([FeedConfig("https://other.example/rss", "Other", "en", 900)], NOW)
    urls = {f.url for f in store.all_feeds(enabled_only=True)}
    assert urls == {"https://other.example/rss", "https://chat.example/rss"}


def test_another_spelling_of_a_feed_url_is_the_same_feed_with_its_items(store: Store) -> None:
    commit(store, ProcessedItem(item("a"), (INSTANT,), True))
    before = feed_id(store)
    store.sync_feeds([FeedConfig("http://NEWS.example:80/rss/", "News", "ru", 600)], NOW)  # config re-spelt
    assert [(f.id, f.url) for f in store.all_feeds()] == [(before, "http://NEWS.example:80/rss/")]
    again = store.add_feed("https://news.example/rss#top", "chat", None, 600, "chat:1", NOW)  # /feed_add
    assert again.id == before and len(store.all_feeds()) == 1
    assert store.unseen_uids(before, ["a"]) == set(), "its items are still seen"


@pytest.mark.parametrize("source", ["chat:42", "import:42", "import"])
def test_a_config_feed_added_again_from_chat_or_import_stays_after_the_config_drops_it(
    store: Store, source: str
) -> None:
    store.sync_feeds([], NOW)  # the restart after URL was removed from config.yaml
    assert store.feed_sources() == {}
    store.add_feed(URL, "News again", None, 600, source, NOW)
    assert store.feed_sources() == {URL: source}
    store.sync_feeds([], NOW)  # and the restart after that
    assert [f.url for f in store.all_feeds(enabled_only=True)] == [URL]
    assert [f.url for f in store.due_feeds(NOW)] == [URL]


def test_rule_history_is_a_stack(store: Store) -> None:
    store.push_rule_version("rules/a.yaml", "v1", "edit", "1", NOW)
    store.push_rule_version("rules/a.yaml", "v2", "edit", "1", NOW)
    assert store.pop_rule_version("rules/a.yaml") == ("rules/a.yaml", "v2", "edit")
    assert store.pop_rule_version("rules/a.yaml") == ("rules/a.yaml", "v1", "edit")
    assert store.pop_rule_version("rules/a.yaml") is None


def test_a_rule_change_and_the_subscriptions_it_updates_are_undone_together(store: Store) -> None:
    store.upsert_subscription(7, NOW, rules=("old_name", "other"))
    store.upsert_subscription(8, NOW, rules=("other",))
    store.push_rule_version("rules/a.yaml", "v1", "rename", "1", NOW, follow={"7": ("new_name", "other")})
    assert store.subscription(7).rules == ("new_name", "other")  # type: ignore[union-attr]
    assert store.pop_rule_change(NOW) == ("rules/a.yaml", "v1", "rename")
    assert store.subscription(7).rules == ("old_name", "other")  # type: ignore[union-attr]
    assert store.subscription(8).rules == ("other",)  # type: ignore[union-attr]
    assert store.pop_rule_change(NOW) is None


def test_prune_drops_old_text_but_never_forgets_an_item(store: Store) -> None:
    store.upsert_subscription(7, NOW)
    commit(store, ProcessedItem(item("queued"), (INSTANT,), True), ProcessedItem(item("quiet"), (), True))
    later = NOW + timedelta(days=90)
    assert store.prune(later, keep_days=60) == 1  # "queued" still waits for delivery: kept whole
    assert store.unseen_uids(feed_id(store), ["queued", "quiet", "new"]) == {"new"}, "both stay seen"
    assert [e.item.title for e in store.pending_instant(later)] == ["КНДР и Россия"]
    assert store.prune(later, keep_days=60) == 0


def test_story_decisions_are_stored_with_their_items_and_found_through_their_buckets(store: Store) -> None:
    first = ProcessedItem(item("a"), (INSTANT,), True, StoryDecision(keys=("w:ru:учен", "g:DPRK,RUSSIA")))
    same_poll = ProcessedItem(item("b"), (INSTANT,), True, StoryDecision(same_as=0, keys=("w:ru:учен",)))
    commit(store, first, same_poll)
    stories = store.item_stories()
    assert stories[(URL, "a")] == stories[(URL, "b")] is not None
    (found,) = store.story_candidates(["g:DPRK,RUSSIA"], NOW - timedelta(days=2))
    assert (found.item.uid, found.story_id) == ("a", stories[(URL, "a")])
    later = ProcessedItem(item("c"), (INSTANT,), True, StoryDecision(story_id=found.story_id, keys=("w:ru:учен",)))
    commit(store, later)
    assert store.item_stories()[(URL, "c")] == found.story_id
    assert len(store.story_candidates(["w:ru:учен"], NOW - timedelta(days=2))) == 3
    store.prune(NOW + timedelta(days=61), keep_days=60)
    assert store.story_candidates(["w:ru:учен"], NOW - timedelta(days=2)) == []


def test_story_candidates_are_decoded_once_across_lookups_and_an_edited_item_is_read_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 5,000-feed cycle looked up the same candidates for item after item and decoded every one's matches
    each time, on the event loop (issue 16); now a candidate is decoded once while its row is unchanged."""
    import store.db as db

    keys = ("w:ru:учен", "g:DPRK,RUSSIA")
    commit(store, *(ProcessedItem(item(u), (INSTANT, DIGEST), True, StoryDecision(keys=keys)) for u in "abcd"))
    decoded = []
    real = db._match_from_row
    monkeypatch.setattr(db, "_match_from_row", lambda *a: decoded.append(a[0]) or real(*a))
    since = NOW - timedelta(days=2)
    first = store.story_candidates(list(keys), since)
    assert len(first) == 4 and len(decoded) == 8  # two matches each
    for _ in range(3):
        assert store.story_candidates(list(keys), since) == first
    assert len(decoded) == 8, "looked up again: nothing decoded again"
    store.conn.execute("UPDATE items SET title = 'КНДР и Россия: обновлено' WHERE uid = 'b'")  # an edit
    again = {m.item.uid: m for m in store.story_candidates(list(keys), since)}
    assert again["b"].item.title == "КНДР и Россия: обновлено" and again["b"].matches == first[1].matches
    assert len(decoded) == 10, "only the edited item was read again"
    assert [m.matches for m in again.values()] == [m.matches for m in first]


def test_a_failed_commit_stores_no_story_either(store: Store) -> None:
    bad = ProcessedItem(item("a"), (INSTANT,), True, StoryDecision(keys=("w:ru:учен",)))
    fail_writes(store, "outbox")
    store.upsert_subscription(1, NOW)
    with pytest.raises(DB_ERRORS):
        commit(store, bad)
    assert store.item_stories() == {} and store.story_candidates(["w:ru:учен"], NOW - timedelta(days=2)) == []


def test_daily_quota_counts_per_name_and_day_and_survives_reopening(store_target: Path | str) -> None:
    path = store_target
    day = datetime(2026, 5, 1, tzinfo=UTC).date()
    with Store.open(path) as store:
        assert [store.take_daily_quota("fulltext:a.example", day, 2) for _ in range(3)] == [True, True, False]
        assert store.take_daily_quota("fulltext:b.example", day, 2)  # another host has its own count
    with Store.open(path) as store:
        assert not store.take_daily_quota("fulltext:a.example", day, 2)  # still used up after a restart
        assert store.take_daily_quota("fulltext:a.example", day + timedelta(days=1), 2)  # a new day
        keys = [r[0] for r in store.conn.execute("SELECT key FROM kv WHERE key LIKE 'quota:%'")]
        assert all(k.startswith(f"quota:{day + timedelta(days=1)}") for k in keys)  # old days dropped


def test_a_source_keeps_its_kind_spec_and_state_and_a_failed_poll_keeps_the_old_state(
    store_target: Path | str,
) -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    spec = '{"channel": "kursk_front"}'
    with Store.open(store_target) as s:
        s.sync_feeds(
            [FeedConfig("https://t.me/s/kursk_front", "@kursk_front", "ru", 600, kind="telegram", spec=spec)], now
        )
        s.add_feed("https://x.example/news", "x", None, 600, "chat:1", now, kind="page", spec='{"item": "li"}')
        feed, page = s.all_feeds()
        assert (feed.kind, feed.spec, feed.state) == ("telegram", spec, "")
        assert (page.kind, page.spec) == ("page", '{"item": "li"}')
        s.commit_poll(
            feed.id,
            now,
            ok=True,
            etag=None,
            last_modified=None,
            error=None,
            next_poll_at=now,
            source_state='{"last_id": 7}',
        )
        s.commit_poll(feed.id, now, ok=False, etag=None, last_modified=None, error="HTTP 500", next_poll_at=now)
        s.commit_poll(feed.id, now, ok=True, etag=None, last_modified=None, error=None, next_poll_at=now)
        assert s.all_feeds()[0].state == '{"last_id": 7}'
    with Store.open(store_target) as s:  # reopened: the migration does not run twice
        assert s.all_feeds()[0].kind == "telegram" and s.schema_version == len(MIGRATIONS)
        s.sync_feeds([FeedConfig("https://t.me/s/kursk_front", "@kf", "ru", 600, kind="telegram", spec=spec)], now)
        assert s.all_feeds()[0].state == '{"last_id": 7}', "a config re-read keeps the state"
        page_config = FeedConfig("https://x.example/news", "x", None, 600, kind="page", spec='{"item": "li"}')
        s.sync_feeds([page_config], now)
        s.commit_poll(
            page.id,
            now,
            ok=True,
            etag=None,
            last_modified=None,
            error=None,
            next_poll_at=now,
            source_state='{"matched": 9}',
        )
        s.sync_feeds([replace(page_config, spec='{"item": "article"}')], now)
        assert s.feed_by_url("https://x.example/news").state == "", "new selectors: the old count is forgotten"  # type: ignore[union-attr]


def test_sqlite_feeds_stored_before_the_source_kinds_migration_are_rss(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    before = next(i for i, script in enumerate(MIGRATIONS) if "ADD COLUMN kind" in script)
    for script in MIGRATIONS[:before]:
        conn.executescript(script)
    conn.execute(
        "INSERT INTO feeds (url, name, interval, created_at) VALUES ('https://x.example/rss', 'x', 600, '2026-01-01')"
    )
    conn.execute(f"PRAGMA user_version = {before}")
    conn.commit()
    conn.close()
    with Store.open(path) as s:
        (feed,) = s.all_feeds()
        assert (feed.kind, feed.spec, feed.state, feed.labels) == ("rss", "", "", ())


def test_feed_labels_follow_the_config_and_reach_queued_alerts(store_target: Path | str) -> None:
    from core.config import FeedConfig
    from core.models import Hit, Item, Match
    from store import ProcessedItem

    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    url = "https://tass.example/rss"
    with Store.open(store_target) as s:
        s.sync_feeds([FeedConfig(url, "TASS", "ru", 600, labels=("state-media",))], now)
        feed = s.feed_by_url(url)
        assert feed is not None and feed.labels == ("state-media",)
        s.upsert_subscription(7, now)
        item = Item(url, "1", "КНДР", "", None, now, "ru", "TASS")
        match = Match("r", "instant", (Hit("DPRK", "title", 0, 4, "КНДР"),))
        s.commit_poll(feed.id, now, ok=True, etag=None, last_modified=None, error=None, next_poll_at=now,
                      items=[ProcessedItem(item, (match,), True)])  # fmt: skip
        (entry,) = s.pending_instant(now)
        assert entry.item.labels == ("state-media",)
        s.sync_feeds([FeedConfig(url, "TASS", "ru", 600, labels=("wire",))], now)  # a config edit
        assert s.all_feeds()[0].labels == ("wire",)


# -- PostgreSQL only ---------------------------------------------------------------------------------


def test_the_two_migration_lists_stay_aligned() -> None:
    """store/schema.py's rule: a schema change adds one script to each list."""
    assert PG_BASE + len(PG_MIGRATIONS) - 1 == len(MIGRATIONS), "add the PostgreSQL form of the new migration"


def test_postgresql_store_is_migrated_and_names_its_dialect(pg_empty_url: str) -> None:
    with Store.open(pg_empty_url, exclusive=True) as s:  # exclusive: no file lock on PostgreSQL
        assert (s.dialect, s.schema_version, s.skip_locked) == (
            "postgresql",
            len(MIGRATIONS),
            " FOR UPDATE SKIP LOCKED",
        )
        assert s.lock is None
    with Store.open(pg_empty_url, exclusive=True) as a, Store.open(pg_empty_url, exclusive=True) as b:
        assert a.schema_version == b.schema_version  # two workers share one database


def test_two_workers_migrating_a_fresh_postgresql_database_at_once_run_each_script_once(pg_empty_url: str) -> None:
    import threading

    import psycopg

    with psycopg.connect(pg_empty_url, autocommit=True) as conn:  # count every script run by its DDL
        conn.execute("CREATE TABLE runs (n BIGINT)")
        conn.execute(
            "CREATE FUNCTION count_run() RETURNS event_trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO runs SELECT 1 FROM pg_event_trigger_ddl_commands() "
            "WHERE object_identity = 'public.feeds'; END $$"
        )
        conn.execute("CREATE EVENT TRIGGER count_runs ON ddl_command_end WHEN TAG IN ('CREATE TABLE') "
                     "EXECUTE FUNCTION count_run()")  # fmt: skip
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            Store.open(pg_empty_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(pg_empty_url, autocommit=True) as conn:
        created = conn.execute("SELECT COUNT(*) FROM runs").fetchone()
        assert created == (1,), "the first script (which creates feeds) ran once, not twice"


def test_postgresql_store_newer_than_the_code_is_refused(pg_url: str) -> None:
    with Store.open(pg_url) as s:
        s.conn.execute("UPDATE schema_version SET version = version + 1")
    with pytest.raises(StoreError, match="newer than this program knows"):
        Store.open(pg_url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://bot:s3cret@db.example:5432/monitor", "postgresql://bot@db.example:5432/monitor"),
        (
            "postgresql://bot@db.example/monitor?password=s3cret&sslmode=require",
            "postgresql://bot@db.example/monitor?sslmode=require",
        ),
    ],
)
def test_a_password_in_the_url_is_refused_and_never_shown(url: str, shown: str) -> None:
    with pytest.raises(StoreError) as err:
        Store.open(url)
    assert "PGPASSWORD" in str(err.value) and shown in str(err.value) and "s3cret" not in str(err.value)


def test_an_unreachable_postgresql_server_is_a_clear_store_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(StoreError, match=f"cannot connect to postgresql://bot@127.0.0.1:{port}/monitor: "):
        Store.open(f"postgresql://bot@127.0.0.1:{port}/monitor")


def test_advisory_lock_is_held_by_one_worker_at_a_time(pg_url: str) -> None:
    with Store.open(pg_url) as a, Store.open(pg_url) as b:
        with a.advisory_lock("prune") as mine:
            assert mine
            with b.advisory_lock("prune") as theirs:
                assert not theirs, "the other worker skips the job"
            with b.advisory_lock("digest") as other:
                assert other, "another name is another lock"
        with b.advisory_lock("prune") as theirs:
            assert theirs, "released when the block ended"
        with a.transaction(), a.advisory_lock("prune") as mine:  # a transaction lock, held to COMMIT
            assert mine
            with b.advisory_lock("prune") as theirs:
                assert not theirs


def test_sqlite_advisory_lock_is_always_granted(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite3") as s, s.advisory_lock("prune") as mine:
        assert mine and s.skip_locked == ""


def test_a_sqlite_url_opens_the_same_file_as_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "u.sqlite3"
    with Store.open(path) as s:
        s.upsert_subscription(7, NOW)
    with Store.open(f"sqlite:///{path}") as s:  # sqlite:////abs/path: the path follows the third slash
        assert (s.dialect, [x.chat_id for x in s.subscriptions()]) == ("sqlite", ["7"])
    monkeypatch.chdir(tmp_path)
    with Store.open("sqlite:///u.sqlite3") as s:  # relative
        assert [x.chat_id for x in s.subscriptions()] == ["7"]
    with pytest.raises(StoreError, match="sqlite:///relative/path"):
        Store.open("sqlite://u.sqlite3")
    with pytest.raises(StoreError, match="postgresql://user@host/db"):
        Store.open("mysql://bot@db/monitor")


def test_the_bots_commits_never_checkpoint_the_wal_a_thread_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite copied the WAL into the file (and synced the disk) inside whichever commit crossed 1,000
    pages: that commit waited for the disk on the event loop, the longest stall of a cycle (issue 16)."""
    import threading
    import time

    import store.sqlite as sqlite_backend

    monkeypatch.setattr(sqlite_backend, "CHECKPOINT_EVERY", 3600.0)  # the thread waits: only commits could
    path = tmp_path / "bot.sqlite3"
    wal = path.parent / (path.name + "-wal")
    store = Store.open(path, exclusive=True)
    try:
        store.sync_feeds([FeedConfig(URL, "News", "ru", 600)], NOW)
        for batch in range(6):  # ~12 MB of text: ~3,000 pages of WAL
            items = [replace(item(f"b{batch}-{n}"), summary=f"{batch} {n} " + "Пхеньян " * 250) for n in range(300)]
            commit(store, *(ProcessedItem(i, (), True) for i in items))
        assert wal.stat().st_size > 2_000 * 4096, "no commit reset the WAL: none ran a checkpoint"
        assert path.stat().st_size < 2_000 * 4096, "nor copied it into the file"
        checkpointer = store.backend.checkpointer  # type: ignore[attr-defined]
        assert checkpointer is not None and checkpointer.checkpoints == 0
        checkpointer.wake()
        deadline = time.monotonic() + 10
        while checkpointer.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert checkpointer.checkpoints == 1, "the thread copied the WAL into the file"
        assert path.stat().st_size > 2_000 * 4096, "the file holds the pages now"
        commit(store, ProcessedItem(item("after"), (), True))
        assert store.unseen_uids(feed_id(store), ["b0-0", "b5-299", "after", "new"]) == {"new"}
    finally:
        store.close()
    assert not [t for t in threading.enumerate() if t.name == "sqlite-checkpoint"], "closing stops the thread"


def test_a_store_opened_to_read_leaves_checkpoints_to_sqlite(tmp_path: Path) -> None:
    Store.open(tmp_path / "s.sqlite3", exclusive=True).close()
    with Store.open(tmp_path / "s.sqlite3") as store:  # search, export, check: no thread of their own
        assert store.backend.checkpointer is None  # type: ignore[attr-defined]
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000


def test_the_checkpoint_thread_never_recreates_a_deleted_store(tmp_path: Path) -> None:
    """The health check reports a deleted store file; the checkpoint thread must not put an empty one back."""
    import time

    path = tmp_path / "bot.sqlite3"
    store = Store.open(path, exclusive=True)
    try:
        path.unlink()
        checkpointer = store.backend.checkpointer  # type: ignore[attr-defined]
        tried = checkpointer.attempts
        checkpointer.wake()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and checkpointer.attempts == tried:
            time.sleep(0.01)
        assert checkpointer.attempts > tried and not path.exists()
        assert store.file_problem() == f"the store file {path} was deleted while the bot was running"
    finally:
        store.close()
