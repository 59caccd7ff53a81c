"""The default rules on REAL published news: ``../shared/data/real_dev.jsonl`` (not in the repository).

Three figures, all printed with the ``figure`` fixture:

* **in-sample**: the shipped rules and score weights (trained on this very file, among others) — the
  bar of issue 12 is overall P ≥ 0.85 and R ≥ 0.90;
* **held-out**: 5 folds by item id; for each fold the score is retrained on the other folds plus the
  project's dev sets, its threshold chosen there exactly as ``bot.py train`` chooses it, and the fold is
  scored with it. This is the estimate of what an unseen real set gets from the score (the rules' own
  structure was chosen on the whole file, so it is optimistic on their side). Its bar is lower on
  purpose: it guards against changes that only fit the file.
* **one source held out at a time**: the same, with each public archive of the file (its ``source``)
  as a fold — the best proxy for the unseen real set, which comes from other outlets and periods.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.eval import (
    DEFAULT_L2,
    Confusion,
    Labelled,
    evaluate,
    read_labelled,
    threshold_per_input,
    training_inputs,
    training_rows,
)
from rules import load_rules
from rules.score import Scorer, fit

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "rules" / "dprk_russia.yaml"
REAL_DEV = REPO.parent / "shared" / "data" / "real_dev.jsonl"
DEVSETS = sorted((REPO / "tests" / "data").glob("devset_*.jsonl"))
FOLDS = 5


def _real_dev() -> list[Labelled]:
    if not REAL_DEV.is_file():
        pytest.skip(f"{REAL_DEV} is absent (../shared is not beside the checkout)")
    import io

    items, bad = read_labelled(str(REAL_DEV), io.StringIO())
    assert bad == 0
    return items


def _sources() -> dict[str, str]:
    """Item id → the archive it came from (the file's ``source`` field; read_labelled does not keep it)."""
    import json

    with REAL_DEV.open(encoding="utf-8") as fh:
        return {str(o["id"]): str(o.get("source", "?")) for o in map(json.loads, filter(str.strip, fh))}


def test_real_dev_precision_and_recall_in_sample(figure: Callable[[str], None]) -> None:
    items = _real_dev()
    report = evaluate(load_rules([RULES]), items, misses=False)
    figure(f"real_dev in-sample (shipped rules + score), {len(items)} items:")
    for line in report.table().splitlines():
        figure("  " + line)
    assert report.overall.precision >= 0.85, report.table()
    assert report.overall.recall >= 0.90, report.table()


def _dev_sets() -> list[Labelled]:
    import io

    dev: list[Labelled] = []
    for path in DEVSETS:
        dev += read_labelled(str(path), io.StringIO())[0]
    return dev


def _held_out(
    items: list[Labelled], dev: list[Labelled], fold_of: Callable[[Labelled], str]
) -> tuple[Confusion, dict[str, Confusion], dict[str, Confusion]]:
    """Each fold scored by a score retrained on the other folds plus the dev sets, as ``bot.py train`` does.

    The threshold is chosen on the training items exactly as ``train`` chooses it: the highest that keeps
    99% of the matched on-topic items of every input (the real file's other folds, each dev set).
    """
    bare = load_rules([RULES], with_score=False)  # the rules alone, before min_score
    min_score = {r.name: r.min_score for r in load_rules([RULES]).rules}
    feats_of = {it.where: bare.features(it.title, it.summary) for it in items}
    overall = Confusion()
    per_lang: dict[str, Confusion] = {}
    per_fold: dict[str, Confusion] = {}
    for fold in sorted({fold_of(it) for it in items}):
        train = [it for it in items if fold_of(it) != fold] + dev
        rows, labels = training_rows(bare, train)
        scorer = Scorer(fit(rows, labels, l2=DEFAULT_L2))
        files = training_inputs(bare, train)
        threshold = threshold_per_input(
            [(f, scorer.score(r)) for f, r, g in zip(files, rows, labels, strict=True) if g]
        )
        for it in (x for x in items if fold_of(x) == fold):
            matches, feats = feats_of[it.where]
            score = scorer.score(feats) if feats is not None else 0.0
            # The shipped file's rules that carry min_score use the fold's threshold instead.
            predicted = any(min_score.get(m.rule) is None or score >= threshold for m in matches)
            overall.add(it.positive, predicted)
            per_lang.setdefault(it.lang, Confusion()).add(it.positive, predicted)
            per_fold.setdefault(fold, Confusion()).add(it.positive, predicted)
    return overall, per_lang, per_fold


def test_real_dev_held_out_folds_by_id(figure: Callable[[str], None]) -> None:
    items = _real_dev()
    overall, per_lang, _ = _held_out(items, _dev_sets(), lambda it: str(zlib.crc32(it.id.encode()) % FOLDS))
    figure(f"real_dev held-out ({FOLDS} folds by id; score retrained per fold, threshold from training folds):")
    for lang in sorted(per_lang):
        figure("  " + per_lang[lang].row(f"lang {lang}"))
    figure("  " + overall.row("overall"))
    assert overall.precision >= 0.82, overall.row("overall")
    assert overall.recall >= 0.88, overall.row("overall")


def test_real_dev_held_out_one_source_at_a_time(figure: Callable[[str], None]) -> None:
    """The proxy for outlets nobody here has seen: each archive of the file is held out in turn.

    Nearly all English on-topic items come from one archive, so holding it out trains the score on the
    other sources' few real positives and the project's written sets. With the threshold taken on the
    pooled training scores (the easy written sets dominating) this fold kept 0.74 of its on-topic items,
    0.78 overall; the threshold that keeps 99% of every input's on-topic items keeps 0.91, and 0.93
    once the score's per-field group features (which fitted the sources they saw) are dropped.
    """
    items = _real_dev()
    source = _sources()
    overall, per_lang, per_fold = _held_out(items, _dev_sets(), lambda it: source[it.id])
    figure("real_dev held-out (one source at a time; score retrained without it, threshold from the rest):")
    for name in sorted(per_fold):
        figure("  " + per_fold[name].row(f"source {name}"))
    for lang in sorted(per_lang):
        figure("  " + per_lang[lang].row(f"lang {lang}"))
    figure("  " + overall.row("overall"))
    assert overall.recall >= 0.92, overall.row("overall")
    assert overall.precision >= 0.81, overall.row("overall")
