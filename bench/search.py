"""Archive search and export benchmark: index build, store size, query latency, export time and memory.

    python bench/search.py [--items 500000] [--queries 300] [--baseline-items 100000]

Generates a synthetic archive (Russian, English and Korean titles and summaries: real inflected and
particle-laden words mixed into a large made-up vocabulary; one item in five matched by a rule, so the
export has 100,000 rows at 500,000 items) in a temporary store, then prints:

* **choice of index** (on ``--compare-items`` items): the key index of store/search.py beside FTS5's
  ``trigram`` tokeniser — build time, index size, and how many of the cases the search must find
  (``Пхеньян`` → «в Пхеньяне», ``북한`` → 북한의, ``Корея`` → Кореи, …) each finds;
* **build**: items/s written through the store's triggers, beside the same inserts with no index
  (baseline, ``--baseline-items``), and the store's size per 100,000 items with and without the index;
* **search**: p50/p95 of a first page (10 results) over all items, for single words, two words, a
  phrase, an exclusion, and a 30-day filter, beside ``LIKE '%word%'`` on titles and summaries (baseline:
  quick for a frequent word, whose ten newest rows are near the end; a full scan for a rare one);
* **export**: ``bot.py export`` of 100,000 matched items (CSV, and JSONL) in a child process: seconds
  and peak RSS, beside the peak RSS of ``bot.py search`` in the same way (the process's fixed cost).
"""

from __future__ import annotations

import argparse
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.config import FeedConfig  # noqa: E402
from store import Store  # noqa: E402
from store.db import ts  # noqa: E402
from store.search import fts_expression, parse_query, search  # noqa: E402

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
HITS = '[["DPRK", "title", 0, 4, "КНДР"]]'

RU_REAL = [
    "Пхеньяне",
    "Пхеньяна",
    "Пхеньян",
    "Кореи",
    "Корею",
    "Корея",
    "России",
    "Россию",
    "Россия",
    "КНДР",
    "ракеты",
    "ракету",
    "ракета",
    "делегация",
    "делегации",
    "переговоры",
    "переговоров",
    "Москве",
    "Москвы",
    "военные",
    "военных",
    "Шойгу",
    "Северной",
    "Северная",
    "солдаты",
    "солдат",
    "учения",
    "учениях",
    "договор",
    "договора",
    "поставки",
    "снарядов",
]
EN_REAL = [
    "North",
    "Korea",
    "Korean",
    "Russia",
    "Russian",
    "missiles",
    "missile",
    "troops",
    "soldiers",
    "Pyongyang",
    "Moscow",
    "treaty",
    "talks",
    "delegation",
    "drills",
    "shells",
    "artillery",
    "Kim",
    "Putin",
    "summit",
    "military",
]
KO_REAL = [
    "북한의",
    "북한은",
    "북한",
    "러시아와",
    "러시아",
    "파병",
    "미사일을",
    "병력",
    "평양에서",
    "군사",
    "협력",
    "북한군",
    "국정원",
    "조약",
]

CASES = [  # (query, text the search must find)
    ("Пхеньян", "Делегация прибыла в Пхеньяне"),
    ("Корея", "Визит Северной Кореи"),
    ("Россия", "Поставки из России"),
    ("ракета", "Запустили ракету"),
    ("북한", "북한의 병력 파병"),
    ("러시아", "러시아와 협력"),
    ("missile", "Missiles shown"),
    ("КНДР", "КНДР и Россия"),
]


def pseudo_words(rng: random.Random, alphabet: str, n: int, size: tuple[int, int]) -> list[str]:
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(*size))) for _ in range(n)]


class Corpus:
    def __init__(self, seed: int = 1) -> None:
        rng = random.Random(seed)
        self.rng = rng
        self.ru = RU_REAL + pseudo_words(rng, "абвгдежзиклмнопрстуфхцчшыэюя", 15_000, (4, 11))
        self.en = EN_REAL + pseudo_words(rng, "abcdefghijklmnopqrstuvwxyz", 10_000, (3, 10))
        hangul = "".join(chr(c) for c in range(0xAC00, 0xAC00 + 400))
        self.ko = KO_REAL + pseudo_words(rng, hangul, 8_000, (2, 4))

    def text(self, words: int) -> tuple[str, str]:
        rng = self.rng
        roll = rng.random()
        lang, vocab, real = ("ru", self.ru, RU_REAL) if roll < 0.5 else ("en", self.en, EN_REAL)
        if roll >= 0.8:
            lang, vocab, real = "ko", self.ko, KO_REAL
        out = [rng.choice(real) if rng.random() < 0.08 else rng.choice(vocab) for _ in range(words)]
        return lang, " ".join(out)


def fill(store: Store, corpus: Corpus, n: int, *, batch: int = 2000) -> float:
    """Insert ``n`` items (one in five matched), seen over the last 180 days; returns the seconds taken."""
    feed = store.feed_by_url("https://bench.example/rss")
    assert feed is not None
    start = time.perf_counter()
    for base in range(0, n, batch):
        rows, matched = [], []
        for i in range(base, min(n, base + batch)):
            lang, title = corpus.text(9)
            _, summary = corpus.text(25)
            seen = ts(NOW - timedelta(days=180) + timedelta(seconds=i * 180 * 86400 // max(n, 1)))
            rows.append((feed.id, f"u{i}", title, summary, f"https://bench.example/{i}", seen, lang, seen))
            if i % 5 == 0:
                matched.append(f"u{i}")
        with store.transaction() as conn:
            conn.executemany(
                "INSERT INTO items (feed_id, uid, title, summary, link, published, lang, seen_at) "
                "VALUES (?,?,?,?,?,?,?,?)",
                rows,
            )
            conn.executemany(
                "INSERT INTO matches (item_id, rule, priority, hits_json, created_at) "
                "SELECT id, 'dprk_russia', 'instant', ?, seen_at FROM items WHERE feed_id = ? AND uid = ?",
                [(HITS, feed.id, uid) for uid in matched],
            )
    return time.perf_counter() - start


def new_store(folder: Path, name: str) -> Store:
    store = Store.open(folder / name)
    store.sync_feeds([FeedConfig("https://bench.example/rss", "Bench", None, 600)], NOW)
    return store


def size_mb(store: Store) -> float:
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return store.path.stat().st_size / 2**20


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def compare(folder: Path, corpus: Corpus, n: int) -> None:
    print(f"\n== choice of index ({n:,} items) ==")
    keys = new_store(folder, "keys.sqlite3")
    seconds = fill(keys, corpus, n)
    found = 0
    for q, text in CASES:
        (row_id,) = keys.conn.execute(
            "INSERT INTO items (feed_id, uid, title, summary, seen_at) VALUES (1, ?, ?, '', ?) RETURNING id",
            (q, text, ts(NOW)),
        ).fetchall()[0]
        expr = fts_expression(parse_query(q))
        found += bool(
            keys.conn.execute(
                "SELECT 1 FROM items_fts WHERE items_fts MATCH ? AND rowid = ?", (expr, row_id)
            ).fetchone()
        )
    fts_pages = keys.conn.execute("SELECT COUNT(*) FROM items_fts_data").fetchone()[0]
    keys_mb = sum(len(r[0] or b"") for r in keys.conn.execute("SELECT block FROM items_fts_data")) / 2**20
    content_mb = sum(len(r[0] or "") for r in keys.conn.execute("SELECT c0 FROM items_fts_content")) / 2**20
    keys.close()
    tri = sqlite3.connect(folder / "trigram.sqlite3")
    tri.execute("CREATE VIRTUAL TABLE t USING fts5(title, summary, tokenize = 'trigram')")
    rows = [(corpus.text(9)[1], corpus.text(25)[1]) for _ in range(n)] + [(text, "") for _, text in CASES]
    start = time.perf_counter()
    with tri:
        tri.executemany("INSERT INTO t (title, summary) VALUES (?, ?)", rows)
    tri_seconds = time.perf_counter() - start
    tri_found = 0
    for n, (q, _) in enumerate(CASES):
        rowid = len(rows) - len(CASES) + n + 1
        tri_found += bool(tri.execute("SELECT 1 FROM t WHERE t MATCH ? AND rowid = ?", (f'"{q}"', rowid)).fetchone())
    tri_mb = sum(len(r[0] or b"") for r in tri.execute("SELECT block FROM t_data")) / 2**20
    tri.close()
    print(f"{'index':<34}{'build s':>9}{'index MiB':>11}{'cases found':>13}")
    print(f"{'keys (lemma/stem/as written)':<34}{seconds:>9.1f}{keys_mb:>11.1f}{found:>10}/{len(CASES)}")
    print(f"{'  + stored keys text':<34}{'':>9}{content_mb:>11.1f}   ({fts_pages:,} index blocks)")
    print(f"{'trigram (title, summary)':<34}{tri_seconds:>9.1f}{tri_mb:>11.1f}{tri_found:>10}/{len(CASES)}")


def child(args: list[str]) -> tuple[float, float]:
    """Run ``bot.py`` with ``args``; (seconds, peak RSS MiB of the children so far)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / "bot.py"), *args], check=True, capture_output=True, cwd=REPO)
    seconds = time.perf_counter() - start
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=500_000)
    parser.add_argument("--baseline-items", type=int, default=100_000)
    parser.add_argument("--compare-items", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    corpus = Corpus()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        compare(folder, corpus, args.compare_items)

        print(f"\n== build ({args.items:,} items, one in five matched) ==")
        base = new_store(folder, "plain.sqlite3")
        for trigger in ("items_fts_insert", "items_fts_update", "items_fts_delete"):
            base.conn.execute(f"DROP TRIGGER {trigger}")
        base_seconds = fill(base, corpus, args.baseline_items)
        base_mb = size_mb(base) * 100_000 / args.baseline_items
        base.close()
        store = new_store(folder, "bench.sqlite3")
        seconds = fill(store, corpus, args.items)
        mb = size_mb(store) * 100_000 / args.items
        print(f"{'':<30}{'items/s':>10}{'MiB per 100k items':>20}")
        print(f"{'no search index (baseline)':<30}{args.baseline_items / base_seconds:>10,.0f}{base_mb:>20.1f}")
        print(f"{'with the search index':<30}{args.items / seconds:>10,.0f}{mb:>20.1f}")
        print(f"index build: {seconds:.1f} s for {args.items:,} items; store {size_mb(store):.0f} MiB")

        print(f"\n== search, first page of 10 over {args.items:,} items (ms) ==")
        rng = random.Random(7)
        real = RU_REAL + EN_REAL + KO_REAL
        kinds: dict[str, Callable[[], str]] = {
            "one word": lambda: rng.choice(real),
            "two words": lambda: f"{rng.choice(RU_REAL)} {rng.choice(RU_REAL)}",
            "a word in ~0.1 % of items": lambda: rng.choice(corpus.ru[len(RU_REAL) :]),
            "a word in no item": lambda: "щщ" + "".join(rng.choice("абвгд") for _ in range(8)),
            '"a phrase"': lambda: f'"{rng.choice(RU_REAL)} {rng.choice(RU_REAL)}"',
            "word -exclusion": lambda: f"{rng.choice(RU_REAL)} -{rng.choice(RU_REAL)}",
        }
        since = NOW - timedelta(days=30)
        print(f"{'query':<28}{'p50':>8}{'p95':>8}")
        for name, make in kinds.items():
            texts = [make() for _ in range(args.queries)]
            times = [t for q in texts for t in timed(lambda q=q: search(store.conn, parse_query(q), limit=10), 1)]  # type: ignore[misc]
            print(f"{name:<28}{pct(times, 0.5):>8.1f}{pct(times, 0.95):>8.1f}")
        texts = [rng.choice(real) for _ in range(args.queries)]
        times = [t for q in texts for t in timed(lambda q=q: search(store.conn, parse_query(q), since=since), 1)]  # type: ignore[misc]
        print(f"{'one word, last 30 days':<28}{pct(times, 0.5):>8.1f}{pct(times, 0.95):>8.1f}")
        absent = ["щщ" + "".join(rng.choice("абвгд") for _ in range(8)) for _ in range(10)]
        for label, words in (("frequent word", real), ("~0.1 % word", corpus.ru[len(RU_REAL) :]), ("no item", absent)):
            like = [rng.choice(words) for _ in range(10)]
            times = [
                t
                for q in like
                for t in timed(
                    lambda q=q: store.conn.execute(  # type: ignore[misc]
                        "SELECT id FROM items WHERE title LIKE ? OR summary LIKE ? ORDER BY id DESC LIMIT 10",
                        (f"%{q}%", f"%{q}%"),
                    ).fetchall(),
                    1,
                )
            ]
            print(f"{'baseline: LIKE, ' + label:<28}{pct(times, 0.5):>8.1f}{pct(times, 0.95):>8.1f}")
        matched = store.conn.execute("SELECT COUNT(*) FROM matches").fetchone()[0]
        store.close()

        print(f"\n== export of {matched:,} matched items (bot.py export, a child process) ==")
        config = folder / "config.yaml"
        rules = folder / "rules.yaml"
        rules.write_text("version: 1\ngroups:\n  D: {aliases: [КНДР]}\nrules:\n  - name: dprk_russia\n    all: [D]\n")
        config.write_text(f"rules: {{files: [{rules}]}}\nstorage: {{path: {folder / 'bench.sqlite3'}}}\n")
        env_config = ["--config", str(config)]
        s_seconds, s_rss = child([*env_config, "search", "Пхеньян"])
        print(f"{'':<34}{'seconds':>9}{'peak RSS MiB':>14}{'file MiB':>10}")
        print(f"{'baseline: bot.py search':<34}{s_seconds:>9.1f}{s_rss:>14.0f}{'':>10}")
        for fmt in ("csv", "jsonl"):
            out = folder / f"export.{fmt}"
            e_seconds, e_rss = child([*env_config, "export", "--format", fmt, "-o", str(out)])
            file_mb = out.stat().st_size / 2**20
            print(f"{'bot.py export --format ' + fmt:<34}{e_seconds:>9.1f}{e_rss:>14.0f}{file_mb:>10.1f}")


if __name__ == "__main__":
    main()
