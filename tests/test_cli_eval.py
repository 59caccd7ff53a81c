"""`bot.py eval` and `bot.py train` as an analyst runs them: figures, misses with their why, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "rules" / "dprk_russia.yaml"

ITEMS = [
    {"id": "tp", "lang": "en", "title": "North Korea sends artillery shells to Russia",
     "summary": "Seoul's spy agency says the transfers continue.", "label": 1},
    {"id": "fn", "lang": "en", "title": "Pyongyang's men at the front",
     "summary": "Thousands of North Korean soldiers were sent abroad, officials say.", "label": 1},
    {"id": "tn", "lang": "ru", "title": "КНДР запустила баллистическую ракету", "summary": "", "label": 0},
    {"id": "fp", "lang": "ru", "title": "Россия и КНДР: военный оркестр выступил в Москве",
     "summary": "Военные музыканты КНДР и России сыграли вместе.", "label": 0},
]  # fmt: skip


def bot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "bot.py"), *args],
        capture_output=True, text=True, timeout=60, cwd=REPO, env=dict(os.environ),
    )  # fmt: skip


def _jsonl(path: Path, items: list[dict[str, object]], extra: str = "") -> Path:
    path.write_text("\n".join(json.dumps(i, ensure_ascii=False) for i in items) + "\n" + extra, encoding="utf-8")
    return path


def test_eval_prints_tables_per_language_and_rule_and_every_miss_with_its_why(tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "labelled.jsonl", ITEMS)
    r = bot("eval", "--input", str(data), "--rules", str(DEFAULT))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "4 labelled items (2 on topic)" in out
    assert "lang en" in out and "lang ru" in out and "overall" in out
    assert "dprk_russia_military" in out  # the per-rule table
    # FP: the hits of the rules that matched; FN: the closest rule and what it lacked.
    fp = out[out.index("\nFP ") + 1 :].splitlines()
    assert "labelled.jsonl:4" in fp[0] and "hits score" in fp[1] and "DPRK: «КНДР»" in fp[1]
    fn = out[out.index("\nFN ") + 1 :].splitlines()
    assert "labelled.jsonl:2" in fn[0] and fn[1].strip().startswith("closest ") and "RUSSIA" in fn[1]


@pytest.mark.parametrize(
    ("name", "content", "code", "message"),
    [
        ("missing file", None, 2, "no such file"),
        ("malformed line", "{oops\n", 2, "labelled.jsonl:5: skipped: malformed JSON"),
        ("no label", json.dumps({"title": "КНДР"}) + "\n", 2, "labelled.jsonl:5: skipped: no label"),
        ("odd label", json.dumps({"title": "КНДР", "label": 7}) + "\n", 2, "'label' must be 0 or 1"),
    ],
)  # fmt: skip
def test_eval_bad_input_names_the_line_and_exits_2(tmp_path: Path, name: str, content: str | None, code: int,
                                                   message: str) -> None:  # fmt: skip
    path = tmp_path / "labelled.jsonl"
    if content is not None:
        _jsonl(path, ITEMS, content)
    r = bot("eval", "--input", str(path), "--rules", str(DEFAULT), "--no-misses")
    assert r.returncode == code, (name, r.stderr)
    assert message in r.stderr
    if content is not None:
        assert "overall" in r.stdout  # the good lines are still measured


def test_eval_with_broken_rules_exits_1(tmp_path: Path) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text("version: 1\nrules:\n  - name: x\n    all: [NOPE]\n", encoding="utf-8")
    r = bot("eval", "--input", str(_jsonl(tmp_path / "l.jsonl", ITEMS)), "--rules", str(rules))
    assert r.returncode == 1 and "unknown group 'NOPE'" in r.stderr


def test_train_takes_several_inputs_and_is_deterministic(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    # A copy of the default rules without min_score (weights from four items would fail its examples).
    text = "".join(ln for ln in DEFAULT.read_text(encoding="utf-8").splitlines(True) if "min_score:" not in ln)
    rules.write_text(text, encoding="utf-8")
    a = _jsonl(tmp_path / "a.jsonl", ITEMS[:2])
    b = _jsonl(tmp_path / "b.jsonl", ITEMS[2:])
    outputs = []
    out = tmp_path / "w.json"
    for _ in (1, 2):
        r = bot("train", "--input", str(a), "--input", str(b), "--output", str(out), "--rules", str(rules))
        assert r.returncode == 0, r.stderr
        assert "trained on 2 matched items of 4 (1 on topic)" in r.stdout
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    data = json.loads(outputs[0])
    assert [i["file"] for i in data["inputs"]] == ["a.jsonl", "b.jsonl"]
    assert "--input " + str(a) in data["command"] and "--input " + str(b) in data["command"]
    # The new weights drive the score once a rule file names them.
    (tmp_path / "score_weights.json").write_bytes(outputs[0])
    r = bot("eval", "--input", str(a), "--input", str(b), "--rules", str(rules))
    assert r.returncode == 0, r.stderr
    assert "hits score" in r.stdout


def test_train_needs_both_labels(tmp_path: Path) -> None:
    only_pos = _jsonl(tmp_path / "pos.jsonl", ITEMS[:1])
    r = bot("train", "--input", str(only_pos), "--output", str(tmp_path / "w.json"), "--rules", str(DEFAULT))
    assert r.returncode == 2 and "only one label" in r.stderr
    assert not (tmp_path / "w.json").exists()


def test_train_threshold_keeps_the_on_topic_items_of_every_input_not_just_the_pool() -> None:
    # Written sets are easy (their on-topic items score high) and can outnumber a real set whose on-topic
    # items score lower: a threshold taken on the pooled scores would drop most of the real set's items.
    from cli.eval import threshold_per_input

    easy = [("written.jsonl", 0.9 + i / 1000) for i in range(300)]
    real = [("real.jsonl", 0.2 + i / 100) for i in range(50)]
    threshold = threshold_per_input(easy + real)
    kept = sum(score >= threshold for _, score in real)
    assert kept >= 0.98 * len(real), (threshold, kept)
    assert all(score >= threshold for _, score in easy)
    # One input alone: the plain 99% threshold.
    assert threshold_per_input(easy) == pytest.approx(0.903)
    assert threshold_per_input([]) == 0.0
