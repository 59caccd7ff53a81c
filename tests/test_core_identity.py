"""Item identity (core/identity.py): each way real feeds break "uid = guid, else link", as a user meets it —
a real feed server on 127.0.0.1 polled 4 times through the real pipeline into a real SQLite file,
counting the instant alerts queued and the items stored — then the pure rules behind them."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from core.config import BacklogPolicy, FeedConfig, PollingConfig
from core.errors import ConfigError
from core.identity import Known, canonical_link, decide, entry_keys, entry_uid, feed_key, fingerprint
from core.models import Item
from rules import RuleSet, parse_rule_text
from service.pipeline import Pipeline
from store import Store
from store.schema import MIGRATIONS
from watchers import PollSettings, make_client

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
POLLS = 4
RULES = textwrap.dedent(
    """\
    version: 1
    groups:
      DPRK: {aliases: [КНДР, North Korea]}
      RUSSIA: {aliases: [Россия, Russia]}
    rules:
      - name: pair
        priority: instant
        all: [DPRK, RUSSIA]
    """
)
STORY = "КНДР и Россия подписали соглашение о военном сотрудничестве"
FILLER = [("Погода в Москве на выходные", "Без осадков."), ("Курс рубля на бирже", "Рубль укрепился.")]


@dataclass(frozen=True)
class Entry:
    title: str
    summary: str = ""
    guid: str | None = None
    link: str | None = None


def rss(entries: list[Entry]) -> bytes:
    def item(e: Entry) -> str:
        parts = [f"<title>{escape(e.title)}</title>", f"<description>{escape(e.summary)}</description>"]
        if e.guid is not None:
            parts.append(f'<guid isPermaLink="false">{escape(e.guid)}</guid>')
        if e.link is not None:
            parts.append(f"<link>{escape(e.link)}</link>")
        parts.append(f"<pubDate>{NOW.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>")
        return "<item>" + "".join(parts) + "</item>"

    body = "".join(item(e) for e in entries)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{body}</channel></rss>'.encode()


Body = Callable[[int], list[Entry]]  # fetch number (0-based) → the feed's entries


def fillers(n: int, *, guids: bool = True, links: bool = True) -> list[Entry]:
    return [
        Entry(t, s, f"f{i}-{n}" if guids else None, f"https://news.example/f{i}" if links else None)
        for i, (t, s) in enumerate(FILLER)
    ]


def rotating(n: int) -> list[Entry]:
    return [Entry(STORY, "Текст.", f"urn:uuid:{n}-story", "https://news.example/story"), *fillers(n)]


def tracking(n: int) -> list[Entry]:
    link = f"https://www.bbc.example/russian/articles/c1?at_medium=RSS&at_campaign={n}&utm_source=rss{n}"
    return [Entry(STORY, "Текст.", None, link), *fillers(n, guids=False)]


def own_tracking(n: int) -> list[Entry]:  # a parameter only this site uses: the feed's ignore_params
    return [Entry(STORY, "Текст.", None, f"https://site.example/news?id=7&sess={n}"), *fillers(n, guids=False)]


def republished(n: int) -> list[Entry]:
    # its own site: sharing links with another feed of a test would make that feed's items this one's
    # (depending on which fetch is committed first), which is another case (test_a_second_feed_…)
    story = Entry(STORY, "Текст.", "g-1", "https://paper.example/story")
    if n >= 2:  # a new GUID and an edited title, same canonical link
        story = Entry(STORY + " (обновлено)", "Текст, дополненный.", "g-1-v2", "https://paper.example/story?ref=rss")
    return [story, *[Entry(t, s, f"stable-{i}", f"https://paper.example/f{i}") for i, (t, s) in enumerate(FILLER)]]


def changing_summary(n: int) -> list[Entry]:
    return [
        Entry(STORY, f"Обновлено в 12:0{n}: подробности уточняются, {n + 1} источника."),
        *[Entry(t, f"{s} ({n})") for t, s in FILLER],
    ]


def same_story(n: int) -> list[Entry]:
    return [Entry(STORY, "Текст.", "https://news.example/story", "https://news.example/story")]


def story_by_link(n: int) -> list[Entry]:
    return [Entry(STORY, "Текст.", None, "https://news.example/story?utm_source=a")]


def story_by_guid_url(n: int) -> list[Entry]:  # no link: the GUID is the article's URL
    return [Entry(STORY + ".", "Другой текст.", "http://NEWS.example/story", None)]


OFF_TOPIC = "Встреча в Пхеньяне прошла без сюрпризов для наблюдателей"  # matches no rule


def plain_copy(n: int) -> list[Entry]:  # the first feed's copy of the story matches nothing
    return [Entry(OFF_TOPIC, "Текст.", "a-1", "https://news.example/meeting")]


def matching_copy(n: int) -> list[Entry]:  # the second feed's copy, from its second fetch, says more
    if n == 0:
        return fillers(n)
    return [Entry(STORY, "Текст.", "b-1", "https://news.example/meeting?utm_source=b"), *fillers(n)]


def edited_into_a_match(n: int) -> list[Entry]:
    return [Entry(OFF_TOPIC if n < 2 else STORY, "Текст.", "g-1", "https://news.example/meeting"), *fillers(n)]


def site_root(n: int) -> list[Entry]:  # Meduza-style: every link is the front page, no GUIDs
    return [Entry(f"КНДР и Россия: новость {i}", f"Текст {i}.", None, "https://meduza.example/") for i in range(6)]


def live_blog(n: int) -> list[Entry]:  # entries differ only by #post-N
    return [Entry(f"КНДР и Россия: запись {i}", "", None, f"https://live.example/blog#post-{i}") for i in range(6)]


@dataclass(frozen=True)
class Case:
    feeds: dict[str, Body]  # path → body (several paths: several feeds)
    alerts: int
    items: int
    spellings: tuple[str, ...] = ()  # other spellings of the first feed's URL, also listed
    ignore_params: tuple[str, ...] = ()


CASES = {
    "guids-rotate-every-fetch": Case({"/a": rotating}, alerts=1, items=3),
    "no-guid-tracking-params-change": Case({"/a": tracking}, alerts=1, items=3),
    "feed-own-tracking-param-ignored": Case({"/a": own_tracking}, alerts=1, items=3, ignore_params=("sess",)),
    "republished-new-guid-edited-title": Case({"/a": republished}, alerts=1, items=3),
    "no-guid-no-link-summary-changes": Case({"/a": changing_summary}, alerts=1, items=3),
    "one-feed-five-spellings": Case(
        {"/feed": same_story},
        alerts=1,
        items=1,
        spellings=("HTTP://LOCALHOST:{port}/feed", "{base}/feed/", "{base}/feed#top", "{base}/feed?utm_source=x"),
    ),
    "two-feeds-same-link-and-guid": Case({"/a": same_story, "/b": same_story}, alerts=1, items=1),
    "two-feeds-link-and-guid-as-url": Case({"/a": story_by_link, "/b": story_by_guid_url}, alerts=1, items=1),
    "second-feeds-copy-matches-the-first-did-not": Case({"/a": plain_copy, "/b": matching_copy}, alerts=1, items=3),
    "an-edit-makes-an-item-match": Case({"/a": edited_into_a_match}, alerts=1, items=3),
    "every-link-is-the-site-root": Case({"/a": site_root}, alerts=6, items=6),
    "live-blog-fragments": Case({"/a": live_blog}, alerts=6, items=6),
}


def serve(httpserver: HTTPServer, path: str, body: Body) -> None:
    fetches = {"n": 0}

    def handler(request: Request) -> Response:
        entries = body(fetches["n"])
        fetches["n"] += 1
        return Response(rss(entries), content_type="application/rss+xml")

    httpserver.expect_request(re.compile("^" + re.escape(path) + "/?$")).respond_with_handler(handler)


@pytest.fixture
def ruleset() -> RuleSet:
    return parse_rule_text(RULES, "test.yaml")


def counts(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        alerts = conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'instant'").fetchone()[0]
        items = conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    return alerts, items


@pytest.mark.parametrize("name", list(CASES))
async def test_four_polls_alert_each_story_once_and_keep_every_story(
    name: str, httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    case = CASES[name]
    for path, body in case.feeds.items():
        serve(httpserver, path, body)
    base = httpserver.url_for("").rstrip("/").replace("127.0.0.1", "localhost")
    configs = [FeedConfig(base + path, path, "ru", 600, ignore_params=case.ignore_params) for path in case.feeds]
    configs += [FeedConfig(s.format(base=base, port=httpserver.port), s, "ru", 600) for s in case.spellings]
    polling = PollingConfig(allow_private_urls=True, timeout=2.0, backlog=BacklogPolicy(10, None))
    db = tmp_path / "bot.sqlite3"
    with Store.open(db) as store:
        store.sync_feeds(configs, NOW)
        store.upsert_subscription(1, NOW, mode="instant")
        async with make_client(PollSettings.from_config(polling)) as client:
            pipeline = Pipeline(store, client, lambda: ruleset, polling)
            for n in range(POLLS):
                report = await pipeline.run_cycle(NOW + timedelta(hours=n))
                assert report.feeds_failed == 0, report.errors
    assert counts(db) == (case.alerts, case.items), f"{name}: (alerts, items) after {POLLS} polls"


async def test_an_edited_republished_story_is_stored_as_an_update(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    serve(httpserver, "/a", republished)
    polling = PollingConfig(allow_private_urls=True, timeout=2.0)
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds([FeedConfig(httpserver.url_for("/a"), "A", "ru", 600)], NOW)
        async with make_client(PollSettings.from_config(polling)) as client:
            pipeline = Pipeline(store, client, lambda: ruleset, polling)
            reports = [await pipeline.run_cycle(NOW + timedelta(hours=n)) for n in range(3)]
        assert [r.updated_items for r in reports] == [0, 0, 1]
        row = store.conn.execute("SELECT title, updated_at FROM items WHERE link_key LIKE '%/story'").fetchone()
        assert row[0] == STORY + " (обновлено)" and row[1] is not None, "the stored text is the edited one"


async def test_rotating_guids_are_remembered_per_feed(httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet) -> None:
    serve(httpserver, "/rot", rotating)
    serve(httpserver, "/ok", republished)
    polling = PollingConfig(allow_private_urls=True, timeout=2.0)
    with Store.open(tmp_path / "bot.sqlite3") as store:
        store.sync_feeds(
            [FeedConfig(httpserver.url_for(f"/{p}"), name, "ru", 600) for p, name in (("rot", "R"), ("ok", "O"))],
            NOW,
        )
        async with make_client(PollSettings.from_config(polling)) as client:
            pipeline = Pipeline(store, client, lambda: ruleset, polling)
            for n in range(3):
                await pipeline.run_cycle(NOW + timedelta(hours=n))
        flags = {f.name: f.guids_unstable for f in store.all_feeds()}
    assert flags == {"R": True, "O": False}, "one re-published story does not make a feed's GUIDs unstable"


async def test_a_second_feed_is_recorded_as_another_source(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    serve(httpserver, "/a", same_story)
    serve(httpserver, "/b", same_story)
    polling = PollingConfig(allow_private_urls=True, timeout=2.0)
    with Store.open(tmp_path / "bot.sqlite3") as store:
        urls = [httpserver.url_for("/a"), httpserver.url_for("/b")]
        store.sync_feeds([FeedConfig(u, u, "ru", 600) for u in urls], NOW)
        async with make_client(PollSettings.from_config(polling)) as client:
            pipeline = Pipeline(store, client, lambda: ruleset, polling)
            for n in range(2):
                await pipeline.run_cycle(NOW + timedelta(hours=n))
        (item_id,) = store.conn.execute("SELECT id FROM items").fetchone()
        assert sorted(store.item_sources(item_id)) == sorted(urls)  # whichever fetch was committed first


async def test_items_stored_by_an_older_version_are_not_alerted_again(
    httpserver: HTTPServer, tmp_path: Path, ruleset: RuleSet
) -> None:
    """A store of schema v1 (uids as the old parser made them) upgraded in place: nothing re-alerts, although
    the new canonical link differs from the stored uid (``at_*`` now stripped, parameters sorted), nor an old
    item the feed lists under a new GUID (old rows get their keys once, at the upgrade)."""
    link = "https://www.bbc.example/a?z=1&at_medium=RSS&b=2"
    entries = [
        Entry(STORY, "Текст.", None, link),
        Entry("КНДР и Россия: второе", "Текст.", "g-2", "https://news.example/2"),
        Entry("КНДР и Россия: третье", "Без ссылки."),
        Entry("КНДР и Россия: четвёртое", "Текст.", "urn:rotated-2", "https://news.example/4"),
    ]
    httpserver.expect_request("/a").respond_with_data(rss(entries), content_type="application/rss+xml")
    db = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO feeds (url, name, interval, initialised, created_at) VALUES (?, 'A', 600, 1, 'x')",
        (httpserver.url_for("/a"),),
    )
    old_rows = [  # (uid as the old parser made it, title, summary, link); all alerted then
        ("https://www.bbc.example/a?z=1&at_medium=RSS&b=2", STORY, "Текст.", link),  # kept at_medium
        ("g-2", "КНДР и Россия: второе", "Текст.", "https://news.example/2"),
        (
            "sha1:" + hashlib.sha1("КНДР и Россия: третье\nБез ссылки.".encode()).hexdigest(),
            "КНДР и Россия: третье",
            "Без ссылки.",
            None,
        ),
        ("urn:rotated-1", "КНДР и Россия: четвёртое", "Текст.", "https://news.example/4"),  # re-GUIDed since
    ]
    for uid, title, summary, url in old_rows:
        cur = conn.execute(
            "INSERT INTO items (feed_id, uid, title, summary, link, seen_at) VALUES (1, ?, ?, ?, ?, 'x')",
            (uid, title, summary, url),
        )
        conn.execute(
            "INSERT INTO matches (item_id, rule, priority, hits_json, created_at) VALUES (?, 'pair', 'instant', "
            "'[]', 'x')",
            (cur.lastrowid,),
        )
    conn.commit()
    conn.close()
    polling = PollingConfig(allow_private_urls=True, timeout=2.0)
    with Store.open(db) as store:
        assert store.schema_version == len(MIGRATIONS)
        store.upsert_subscription(1, NOW, mode="instant")
        async with make_client(PollSettings.from_config(polling)) as client:
            report = await Pipeline(store, client, lambda: ruleset, polling).run_cycle(NOW)
    assert (report.new_items, report.queued) == (0, 0)
    assert counts(db) == (0, 4)


def test_config_spellings_of_one_feed_are_duplicates_naming_both_lines(tmp_path: Path) -> None:
    from core.config import load_config

    path = tmp_path / "config.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            feeds:
              - url: https://tass.example/rss/v2.xml
              - url: HTTP://TASS.example:80/rss/v2.xml/
              - url: https://tass.example/rss/v2.xml#top
              - url: https://tass.example/rss/v2.xml?utm_source=x
              - url: https://tass.example:443/rss/v2.xml
              - url: https://tass.example/rss/v2.xml?lang=en
            """
        )
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    messages = [str(p) for p in caught.value.problems if "duplicate" in p.message]
    assert len(messages) == 4, messages
    for line, problem in zip((3, 4, 5, 6), messages, strict=True):
        assert problem.startswith(f"{path}:{line}: feeds[{line - 2}].url: duplicate of feeds[0] (line 2)")


def test_config_ignore_params_reach_the_feed_and_bad_names_are_problems(tmp_path: Path) -> None:
    from core.config import load_config

    path = tmp_path / "config.yaml"
    path.write_text("rules: {files: []}\nfeeds:\n  - url: https://a.example/rss\n    ignore_params: [sess, trk_*]\n")
    assert load_config(path).feeds[0].ignore_params == ("sess", "trk_*")
    path.write_text("rules: {files: []}\nfeeds:\n  - url: https://a.example/rss\n    ignore_params: [ok, 'a b']\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [p.path for p in caught.value.problems] == ["feeds[0].ignore_params[1]"]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param("http://X.example/a?at_medium=RSS&at_campaign=7", "https://x.example/a", id="bbc-at-params"),
        pytest.param("https://x.example/a?utm_source=tg&id=3&utm_medium=x", "https://x.example/a?id=3", id="utm"),
        pytest.param("https://x.example/a?b=2&a=1", "https://x.example/a?a=1&b=2", id="parameter-order"),
        pytest.param("https://x.example:443/a#xtor=RSS-1", "https://x.example/a", id="default-port-fragment"),
        pytest.param("https://x.example/a?fbclid=1&gclid=2&yclid=3", "https://x.example/a", id="click-ids"),
        pytest.param("https://x.example/a?ns_source=a&mc_cid=b&ito=c", "https://x.example/a", id="ns-mc-ito"),
        pytest.param(
            "https://wsj.example/a?mod=rss_Technology", "https://wsj.example/a?mod=world_lead_pos5", id="wsj-mod"
        ),
        pytest.param("https://x.example/a?li=B&srcref=rss", "https://x.example/a?li=B", id="msn-srcref"),
        pytest.param("https://x.example/a?traffic_source=rss", "https://x.example/a", id="aljazeera"),
        pytest.param("https://x.example/a?id=6&amp;ref=rss", "https://x.example/a?id=6", id="escaped-twice"),
        pytest.param("https://x.example/a?WT.mc_id=1&CMP=tw", "https://x.example/a", id="webtrends-guardian"),
    ],
)
def test_canonical_link_drops_tracking_parameters(a: str, b: str) -> None:
    assert canonical_link(a) == canonical_link(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param("https://x.example/a?id=3", "https://x.example/a?id=4", id="article-id"),
        pytest.param("https://x.example/A", "https://x.example/a", id="path-case"),
        pytest.param("https://x.example:8443/a", "https://x.example/a", id="other-port"),
    ],
)
def test_canonical_link_keeps_what_names_the_article(a: str, b: str) -> None:
    assert canonical_link(a) != canonical_link(b)


def test_a_feeds_own_ignore_params_are_dropped_from_its_links() -> None:
    link = "https://x.example/a?id=3&session=99&trk_x=1"
    assert canonical_link(link, ["session", "trk_*"]) == "https://x.example/a?id=3"
    assert entry_keys("", link, "t", "", ["session", "trk_*"]).link == "https://x.example/a?id=3"


def test_feed_key_is_one_for_every_spelling_of_a_feed() -> None:
    spellings = [
        "https://tass.example/rss/v2.xml",
        "HTTP://TASS.example:80/rss/v2.xml/",
        "https://tass.example/rss/v2.xml#top",
        "https://tass.example/rss/v2.xml?utm_source=x",
        "https://tass.example:443/rss/v2.xml",
    ]
    assert len({feed_key(s) for s in spellings}) == 1
    assert feed_key("https://tass.example/rss/v2.xml?lang=en") != feed_key(spellings[0])


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        pytest.param((STORY, "Обновлено в 12:01."), (STORY, "Обновлено в 12:05, подробнее."), True, id="long-title"),
        pytest.param(("Заявление", "МИД КНДР о визите."), ("Заявление", "Минобороны о флоте."), False, id="short"),
        pytest.param((STORY, ""), (STORY.upper() + "!", ""), True, id="case-punctuation"),
    ],
)
def test_fingerprint_is_the_title_unless_it_is_too_short(a: tuple[str, str], b: tuple[str, str], same: bool) -> None:
    assert (fingerprint(*a) == fingerprint(*b)) is same


def parsed(title: str, summary: str = "", guid: str = "", link: str = "") -> Item:
    keys = entry_keys(guid, link, title, summary)
    return Item("f", keys.guid or keys.link or "sha1:" + keys.fingerprint, title, summary, link or None, keys=keys)


def stored(item_id: int, item: Item, feed_id: int = 1) -> Known:
    keys = item.keys
    assert keys is not None
    return Known(item_id, feed_id, item.uid, keys.guid, keys.link, keys.fingerprint, item.title, item.summary)


@pytest.mark.parametrize(
    ("fetch", "known", "kinds"),
    [
        pytest.param(
            [parsed(f"Новость дня номер {i}", guid="same") for i in range(3)],
            [],
            ["new"] * 3,
            id="guid-shared-by-titles",
        ),
        pytest.param(
            [parsed(STORY, f"Версия {i}.") for i in range(3)], [], ["new"] * 3, id="title-shared-by-summaries"
        ),
        pytest.param([parsed(STORY, guid="g")] * 2, [], ["new", "seen"], id="body-repeats-an-entry"),
        pytest.param(
            [parsed(STORY, guid="g2", link="https://x.example/a")],
            [stored(1, parsed(STORY, guid="g1", link="https://x.example/a"))],
            ["seen"],
            id="one-entry-feed-new-guid-same-link",
        ),
        pytest.param(
            [parsed(STORY, guid="g1"), parsed("Другая история про соседей", guid="g9")],
            [stored(1, parsed(STORY + " (обновлено)", guid="g1"))],
            ["update", "new"],
            id="same-guid-edited-title",
        ),
        pytest.param(
            [parsed(STORY, guid="b1", link="https://x.example/a")],
            [stored(7, parsed(STORY, guid="a1", link="https://x.example/a"), feed_id=2)],
            ["source"],
            id="another-feeds-link",
        ),
        pytest.param(
            [parsed("Третья новость КНДР", link="https://x.example/list")],
            [stored(i, parsed(f"Новость {i} КНДР", link="https://x.example/list")) for i in (1, 2)],
            ["new"],
            id="link-the-store-saw-shared",
        ),
    ],
)
def test_decide(fetch: list[Item], known: list[Known], kinds: list[str]) -> None:
    decided = decide(1, fetch, known, guids_unstable=False)
    assert [d.kind for d in decided.decisions] == kinds
    new_uids = [d.item.uid for d in decided.of("new")]
    assert len(set(new_uids)) == len(new_uids), "new items never share a uid (none is lost on insert)"


def test_a_one_entry_feed_that_re_guids_its_entry_is_unstable() -> None:
    decided = decide(1, [parsed(STORY, guid="g2")], [stored(1, parsed(STORY, guid="g1"))], guids_unstable=False)
    assert decided.guids_unstable and [d.kind for d in decided.decisions] == ["seen"]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param("http://[bad/x", "http://[bad/y", id="unclosed-ipv6-bracket"),
        pytest.param("https://x.example:99999/a", "https://x.example/a", id="port-out-of-range"),
        pytest.param("https://x.example:abc/a", "https://x.example/a", id="port-not-a-number"),
    ],
)
def test_a_malformed_link_is_still_a_key_of_its_own(a: str, b: str) -> None:
    """Never an exception (the entry would be skipped), never merged with a well-formed neighbour."""
    assert entry_keys("", a, "t", "").link != entry_keys("", b, "t", "").link
    assert feed_key(a) != feed_key(b)


@pytest.mark.parametrize(
    ("guid", "link", "title", "summary"),
    [
        ("  urn:x:1  ", "https://a.example/x?utm_source=rss", "T", ""),  # a GUID wins, stripped
        ("g" * 1200, "", "T", ""),  # cut at 1,000 characters
        ("", " HTTP://A.example:80/x?b=2&a=1&utm_medium=x#top ", "T", ""),  # the canonical link
        ("", "https://a.example/p?keep=1&ref=feed", "T", ""),
        ("", "mailto:someone@example.org", "Short", "a summary of some words"),  # no web link: the fingerprint
        ("", "", "Четыре слова в заголовке", "сводка"),
        ("", "", "", "only a summary"),
    ],
)
def test_the_uid_alone_is_the_uid_the_full_keys_give(guid: str, link: str, title: str, summary: str) -> None:
    keys = entry_keys(guid, link, title, summary, ("keep",))
    assert entry_uid(guid, link, title, summary, ("keep",)) == (keys.guid or keys.link or "sha1:" + keys.fingerprint)
