"""Blind check: labelled items written by someone who never saw the rules (tests/data/blind_*.jsonl).

The development set (devset_*.jsonl) was written alongside the rules; these items were not, so their
figures estimate how the rules do on news they were not tuned for. The bar is the per-language one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rules import load_rules

DATA = Path(__file__).parent / "data"
RULES = Path(__file__).resolve().parents[1] / "rules" / "dprk_russia.yaml"


@pytest.mark.parametrize("path", sorted(DATA.glob("blind_*.jsonl")), ids=lambda p: p.name)
def test_blind_set_precision_and_recall(path: Path) -> None:
    ruleset = load_rules([RULES])
    tp = fp = fn = tn = 0
    misses = []
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        predicted = bool(ruleset.match_text(item["title"], item["summary"]))
        if predicted and item["label"]:
            tp += 1
        elif predicted:
            fp += 1
            misses.append(f"FP {item['id']}: {item['title']}")
        elif item["label"]:
            fn += 1
            misses.append(f"FN {item['id']}: {item['title']}")
        else:
            tn += 1
    precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    print(f"\n{path.name}: TP={tp} FP={fp} FN={fn} TN={tn} P={precision:.3f} R={recall:.3f}")
    print("\n".join(misses))
    assert precision >= 0.90 and recall >= 0.90, misses
