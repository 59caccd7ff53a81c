"""`bot.py match` over a directory: the same output whatever the number of worker processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def bot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "bot.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=dict(os.environ),
    )


def fixture_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for source in [
        *sorted((REPO / "examples" / "feeds").iterdir()),
        *sorted((REPO / "tests/fixtures/feeds").iterdir()),
    ]:
        shutil.copy(source, folder / f"{source.parent.name}-{source.name}")
    lines = [
        {"id": "j1", "title": "КНДР направила войска в Курскую область", "summary": "Россия и Пхеньян"},
        {"id": "j2", "title": "Weather in Seoul", "summary": "sunny"},
    ]
    (folder / "items.jsonl").write_text(
        "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\nnot json\n", encoding="utf-8"
    )
    (folder / "broken.txt").write_text("neither json nor a feed", encoding="utf-8")
    (folder / ".hidden.xml").write_text("<rss", encoding="utf-8")
    return folder


def test_a_directory_gives_the_same_output_with_one_and_with_two_workers(tmp_path: Path) -> None:
    folder = fixture_folder(tmp_path)
    one, two = (
        bot("match", "--input", str(folder), "--workers", "1"),
        bot("match", "--input", str(folder), "--workers", "2"),
    )
    # file by file, in name order: what a directory means
    each = [bot("match", "--input", str(path)) for path in sorted(folder.iterdir()) if not path.name.startswith(".")]
    expected = "".join(r.stdout for r in each)
    assert one.stdout == two.stdout == expected
    records = [json.loads(line) for line in one.stdout.splitlines()]
    assert len(records) > 20 and any(r["rules"] for r in records)
    assert {"j1", "j2"} <= {r["id"] for r in records}
    # the broken file is reported and the others still matched; the bad JSONL line names its number
    assert one.returncode == two.returncode == 2
    for result in (one, two):
        assert "broken.txt: neither JSON Lines" in result.stderr
        assert "items.jsonl:3: skipped: malformed JSON" in result.stderr
        assert ".hidden" not in result.stderr


def test_an_empty_directory_and_a_bad_worker_count_are_clear_errors(tmp_path: Path) -> None:
    result = bot("match", "--input", str(tmp_path))
    assert result.returncode == 2 and "no input files in this directory" in result.stderr
    result = bot("match", "--input", str(tmp_path), "--workers", "0")
    assert result.returncode == 2 and "must be at least 1" in result.stderr


REAL_DEV = REPO.parent / "shared" / "data" / "real_dev.jsonl"


def _rss(rows: list[dict[str, object]]) -> bytes:
    from xml.sax.saxutils import escape

    entries = "".join(
        f"<item><guid>{escape(str(r['id']))}</guid><title>{escape(str(r['title']))}</title>"
        f"<link>{escape(str(r.get('link') or ''))}</link><description>{escape(str(r['summary']))}</description></item>"
        for r in rows
    )
    head = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>r</title>'
    return f"{head}{entries}</channel></rss>".encode()


def test_real_files_match_exactly_what_every_rule_evaluated_alone_on_feedparsers_items_says(tmp_path: Path) -> None:
    """The command's fast paths (lxml parse, no identity keys, pre-checks, the forked pool) against the slow
    reference on the real dev set: feedparser's Items, every enabled rule evaluated on its own (every regex,
    no candidate pruning). Same set of (id, rule, why), and the same priority per item."""
    if not REAL_DEV.is_file():
        import pytest

        pytest.skip(f"{REAL_DEV} is absent")
    from rules import load_rules
    from watchers.parse import parse_feed

    rows = [json.loads(line) for line in REAL_DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    folder = tmp_path / "real"
    folder.mkdir()
    bodies = []
    for n in range(0, len(rows), 100):
        bodies.append(_rss(rows[n : n + 100]))
        (folder / f"real{n // 100:03d}.xml").write_bytes(bodies[-1])
    result = bot("match", "--input", str(folder), "--workers", "2")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    got = {(r["id"], rule, json.dumps(r["why"][rule], ensure_ascii=False)) for r in records for rule in r["rules"]}

    ruleset = load_rules([REPO / "rules" / "dprk_russia.yaml"])
    enabled = [r for r in ruleset.rules if r.enabled and r.source is None]
    expected = set()
    priorities = {}
    for body in bodies:
        for item in parse_feed(body, feed_url="x", fast=False).items:
            verdicts = [ruleset.evaluate(r.name, item.title, item.summary) for r in enabled]
            for rule, v in zip(enabled, verdicts, strict=True):
                if v.matched:
                    why = {}
                    for hit in v.hits:
                        seen = why.setdefault(hit.group, [])
                        if hit.text not in seen:
                            seen.append(hit.text)
                    expected.add((item.uid, rule.name, json.dumps(why, ensure_ascii=False)))
            hit_rules = [r for r, v in zip(enabled, verdicts, strict=True) if v.matched]
            priorities[item.uid] = (
                None if not hit_rules else "instant" if any(r.priority == "instant" for r in hit_rules) else "digest"
            )
    assert len(records) == len(rows) and len(expected) > 100
    assert got == expected
    assert {r["id"]: r["priority"] for r in records} == priorities


def test_with_another_thread_running_the_workers_are_spawned_and_the_output_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forking copies no thread: the command (its own process, no thread: forked workers) spawns them when
    another thread runs, as here, and the output is the same."""
    import io
    import multiprocessing
    import threading

    from cli.match import run_match

    methods: list[str | None] = []
    real = multiprocessing.get_context
    monkeypatch.setattr(multiprocessing, "get_context", lambda method=None: methods.append(method) or real(method))
    folder = fixture_folder(tmp_path)
    forked = bot("match", "--input", str(folder), "--workers", "2")
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    out, errors = io.StringIO(), io.StringIO()
    try:
        code = run_match(str(folder), rule_paths=None, config_path=str(REPO / "config.yaml"), out=out, errors=errors,
                         workers=2)  # fmt: skip
    finally:
        stop.set()
    assert methods == ["spawn"]
    assert code == forked.returncode == 2 and "broken.txt: neither JSON Lines" in errors.getvalue()
    assert out.getvalue() == forked.stdout and forked.stdout.count("\n") > 20
