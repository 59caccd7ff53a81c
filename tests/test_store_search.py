"""The search index and query language: found as the rules would find, kept in step with the items."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.config import FeedConfig
from core.models import Hit, Item, Match
from store import ProcessedItem, Store
from store.schema import MIGRATIONS
from store.search import QueryError, export_rows, parse_query, search

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
URL = "https://news.example/rss"
MATCH = Match("dprk_russia", "instant", (Hit("DPRK", "title", 0, 4, "КНДР"),))


def item(uid: str, title: str, summary: str = "") -> Item:
    return Item(URL, uid, title, summary, f"https://news.example/{uid}", NOW, None, "News")


@pytest.fixture
def store(store_target: Path | str) -> Store:
    s = Store.open(store_target)
    s.sync_feeds([FeedConfig(URL, "News", None, 600)], NOW)
    yield s
    s.close()


def add(store: Store, *items: Item | tuple[Item, Match], at: datetime = NOW) -> None:
    feed = store.feed_by_url(URL)
    assert feed is not None
    processed = [
        ProcessedItem(i[0], (i[1],), True) if isinstance(i, tuple) else ProcessedItem(i, (), True) for i in items
    ]
    store.commit_poll(feed.id, at, ok=True, etag=None, last_modified=None, error=None, next_poll_at=at, items=processed)


def titles(store: Store, query: str, **kw: object) -> list[str]:
    found, _ = search(store.conn, parse_query(query), **kw)  # type: ignore[arg-type]
    return [f.item.title for f in found]


CORPUS = [
    item("a", "Шойгу прибыл в Пхеньяне на переговоры"),
    item("b", "Визит делегации Северной Кореи в Москву"),
    item("c", "북한의 병력 러시아 파병", "국정원 발표"),
    item("d", "북한강 수질 개선"),
    item("e", "North Korean missiles shown in Moscow"),
    item("f", "Футбол: сборная Пхеньяна проиграла"),
    item("g", "Россия и КНДР подписали договор"),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Пхеньян", ["Футбол: сборная Пхеньяна проиграла", "Шойгу прибыл в Пхеньяне на переговоры"]),
        ("Пхеньян -футбол", ["Шойгу прибыл в Пхеньяне на переговоры"]),
        ("Корея", ["Визит делегации Северной Кореи в Москву"]),
        ('"северная корея"', ["Визит делегации Северной Кореи в Москву"]),
        ('"корея северная"', []),  # a phrase keeps its order
        ("북한 러시아", ["북한의 병력 러시아 파병"]),
        ("국정원", ["북한의 병력 러시아 파병"]),  # the summary is searched too
        ("북한 -북한강", ["북한의 병력 러시아 파병"]),
        ("북", []),  # one syllable: the exact word, not a prefix of every 북… word
        ("missile", ["North Korean missiles shown in Moscow"]),
        ("россии кндр", ["Россия и КНДР подписали договор"]),
        ("переговор*", ["Шойгу прибыл в Пхеньяне на переговоры"]),
        ("ПХЕНЬЯНЕ -«сборная Пхеньяна»", ["Шойгу прибыл в Пхеньяне на переговоры"]),
    ],
)
def test_search_finds_what_the_rules_would(store: Store, query: str, expected: list[str]) -> None:
    add(store, *CORPUS)
    assert titles(store, query) == expected


def test_korean_two_syllable_word_finds_it_with_a_particle(store: Store) -> None:
    add(store, item("k", "북한의 미사일 발사"))
    assert titles(store, "북한") == ["북한의 미사일 발사"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("-футбол", "only exclusions"),
        ("-rule:dprk_russia", "only exclusions"),
        ('-"сборная Пхеньяна" -футбол', "only exclusions"),
        ("   ", "empty"),
        ('"Пхеньян', "not closed"),
        ("... !!", "no words"),
        ("ab*", "at least 3 letters"),
        ("x " * 200, "characters long"),
    ],
)
def test_a_query_that_cannot_be_searched_is_a_clear_error(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(query)


def test_results_are_newest_first_paged_and_filtered_by_days(store: Store) -> None:
    for n in range(25):
        add(store, item(f"p{n}", f"Пхеньян новость {n}"), at=NOW + timedelta(hours=n))
    first, more = search(store.conn, parse_query("Пхеньян"), limit=10)
    assert [f.item.title for f in first] == [f"Пхеньян новость {n}" for n in range(24, 14, -1)] and more
    last, more = search(store.conn, parse_query("Пхеньян"), limit=10, offset=20)
    assert [f.item.uid for f in last] == [f"p{n}" for n in range(4, -1, -1)] and not more
    recent, _ = search(store.conn, parse_query("Пхеньян"), since=NOW + timedelta(hours=20), limit=10)
    assert [f.item.uid for f in recent] == ["p24", "p23", "p22", "p21", "p20"]


def test_results_carry_the_rules_that_matched(store: Store) -> None:
    add(store, (item("m", "КНДР и Россия: Пхеньян"), MATCH), item("u", "Пхеньян без правил"))
    found, _ = search(store.conn, parse_query("Пхеньян"))
    assert [(f.item.uid, [m.rule for m in f.matches]) for f in found] == [("u", []), ("m", ["dprk_russia"])]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("rule:dprk_russia", ["m2", "m1"]),  # the rule's matches alone, newest first
        ("Пхеньян rule:dprk_russia", ["m1"]),
        ("Пхеньян -rule:dprk_russia", ["u"]),
        ("rule:dprk_russia -Пхеньян", ["m2"]),
        ("rule:nope Пхеньян", []),
    ],
)
def test_rule_filters_search_the_why(store: Store, query: str, expected: list[str]) -> None:
    add(
        store,
        (item("m1", "КНДР: Пхеньян"), MATCH),
        item("u", "Пхеньян без правил"),
        (item("m2", "КНДР: Москва"), MATCH),
    )
    found, _ = search(store.conn, parse_query(query))
    assert [f.item.uid for f in found] == expected


def test_pruned_text_leaves_the_index_but_the_item_stays_seen(store: Store) -> None:
    add(store, item("old", "Пхеньян давно"))
    add(store, item("new", "Пхеньян сегодня"), at=NOW + timedelta(days=400))
    assert store.prune(NOW + timedelta(days=400), keep_days=365) == 1
    assert titles(store, "Пхеньян") == ["Пхеньян сегодня"]
    feed = store.feed_by_url(URL)
    assert feed is not None and store.unseen_uids(feed.id, ["old"]) == set()
    assert store.prune(NOW + timedelta(days=4000), keep_days=None) == 0, "forever keeps everything"


def test_the_sqlite_migration_backfills_items_stored_before_it(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    before = next(i for i, script in enumerate(MIGRATIONS) if "items_fts" in script)  # the search migration
    for script in MIGRATIONS[:before]:
        conn.executescript(script)
    conn.execute(f"PRAGMA user_version = {before}")
    conn.execute("INSERT INTO feeds (url, name, interval, created_at) VALUES (?, 'News', 600, 'x')", (URL,))
    conn.execute(
        "INSERT INTO items (feed_id, uid, title, summary, seen_at) VALUES (1, 'x', 'Делегация в Пхеньяне', '', ?)",
        ("2026-03-01T09:00:00.000000Z",),
    )
    conn.commit()
    conn.close()
    with Store.open(path) as s:
        assert s.schema_version == len(MIGRATIONS)
        assert titles(s, "пхеньян") == ["Делегация в Пхеньяне"]


def test_export_rows_stream_rules_why_and_votes(store: Store) -> None:
    add(store, (item("m", "КНДР и Россия"), MATCH), item("u", "не совпало"))
    found, _ = search(store.conn, parse_query("КНДР"))
    store.record_vote(found[0].item_id, 1, "1", 1, found[0].item, [], NOW)
    store.record_vote(found[0].item_id, 2, "1", 0, found[0].item, [], NOW)
    store.record_vote(found[0].item_id, 3, "1", 1, found[0].item, [], NOW)
    rows = list(export_rows(store.conn, since=None))
    assert len(rows) == 1, "unmatched items are left out unless asked for"
    row = rows[0]
    assert row["rules"] == ["dprk_russia"] and "DPRK: «КНДР»" in row["why"]
    assert (row["votes_up"], row["votes_down"], row["score"], row["story_id"]) == (2, 1, None, None)
    assert row["source"] == "News" and row["source_url"] == URL
    assert len(list(export_rows(store.conn, since=None, matched_only=False))) == 2
    assert list(export_rows(store.conn, since=None, rule="other")) == []


def test_export_reads_the_score_and_the_story_id(store: Store) -> None:
    """The relevance score (``matches.score``) and the story (``items.story_id``) are exported."""
    add(store, (item("m", "КНДР и Россия"), MATCH))
    with store.transaction() as conn:
        conn.execute("UPDATE matches SET score = 0.87")
        conn.execute("UPDATE items SET story_id = 5")
    (row,) = export_rows(store.conn, since=None)
    assert (row["score"], row["story_id"]) == (0.87, 5)


def test_a_failing_normaliser_never_fails_the_commit_and_logs_once(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import store.search as search_module

    def broken(*fields: str | None) -> str:
        raise RuntimeError("dictionary missing")

    monkeypatch.setattr(search_module, "keys_text", broken)
    search_module._warn_once.cache_clear()
    add(store, item("a", "Пхеньян один"), item("b", "Пхеньян два"))
    assert titles(store, "пхеньян") == ["Пхеньян два", "Пхеньян один"], "indexed by plain tokens meanwhile"
    assert sum("search_keys_failed" in r.getMessage() for r in caplog.records) == 1


def test_label_filters_keep_or_drop_the_labelled_feeds_items(store_target: Path | str) -> None:
    s = Store.open(store_target)
    state = "https://state.example/rss"
    s.sync_feeds(
        [FeedConfig(URL, "News", None, 600), FeedConfig(state, "TASS", None, 600, labels=("state-media",))], NOW
    )
    for url, uid in ((URL, "a"), (state, "b")):
        feed = s.feed_by_url(url)
        assert feed is not None
        it = Item(url, uid, f"КНДР {uid}", "", None, NOW, None, feed.name)
        s.commit_poll(feed.id, NOW, ok=True, etag=None, last_modified=None, error=None, next_poll_at=NOW,
                      items=[ProcessedItem(it, (MATCH,), True)])  # fmt: skip
    assert titles(s, "КНДР label:state-media") == ["КНДР b"]
    assert titles(s, "КНДР -label:state-media") == ["КНДР a"]
    assert titles(s, "label:state-media") == ["КНДР b"]
    found, _ = search(s.conn, parse_query("label:state-media"))
    assert found[0].item.labels == ("state-media",)
    with pytest.raises(QueryError, match="label:State"):
        parse_query("label:State")
    s.close()


def test_the_known_difference_a_phrase_beyond_the_16383rd_key_is_found_on_sqlite_only(store: Store) -> None:
    """A tsvector keeps positions up to 16,383 (PostgreSQL's limit): a phrase lying wholly beyond that
    many keys of one item's text is not found there; its words still are. FTS5 keeps every position."""
    long_summary = "шум " * 16_400 + "ядерное оружие"
    add(store, item("long", "Длинный текст", long_summary))
    assert titles(store, "оружие") == ["Длинный текст"], "a word is found on both"
    found = titles(store, '"ядерное оружие"')
    assert found == ([] if store.dialect == "postgresql" else ["Длинный текст"])


def test_keys_made_before_the_commit_are_the_ones_the_index_gets_and_are_taken_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll's search keys are made in the CPU pool before its commit (issue 16: they were ~30 µs an item
    on the event loop, in the index trigger); the trigger takes them, and finds the same items."""
    import store.search as search_module

    made: list[tuple[str | None, ...]] = []
    real = search_module.keys_text
    monkeypatch.setattr(search_module, "keys_text", lambda *f: made.append(f) or real(*f))
    search_module.prepare_keys((i.title, i.summary) for i in CORPUS)
    assert len(made) == len(CORPUS)
    add(store, *CORPUS)
    assert len(made) == len(CORPUS), "the trigger made no key again"
    assert search_module._PREPARED == {}, "each taken once"
    assert titles(store, "Пхеньян") == ["Футбол: сборная Пхеньяна проиграла", "Шойгу прибыл в Пхеньяне на переговоры"]
    assert titles(store, "북한 -북한강") == ["북한의 병력 러시아 파병"]
    add(store, item("z", "Не подготовлено: Пхеньян"))  # keys not prepared are made in the trigger
    assert len(made) == len(CORPUS) + 1 and "Не подготовлено: Пхеньян" in titles(store, "Пхеньян")
