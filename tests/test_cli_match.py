"""`bot.py match` over a directory: the same output whatever the number of worker processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

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
