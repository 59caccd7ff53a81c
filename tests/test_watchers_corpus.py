"""feedparser's own test corpus (~2,240 feeds) through our parse-and-normalise path.

The corpus is in feedparser's sdist, not its wheel, so the test downloads the sdist of the installed version
with pip (cached in pytest's cache folder) and skips when there is no network.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
import subprocess
import sys
import tarfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import feedparser
import pytest

from watchers.parse import parse_feed

pytestmark = pytest.mark.slow

VERSION = importlib.metadata.version("feedparser")
SDIST = f"feedparser-{VERSION}.tar.gz"
NETWORK_TROUBLE = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution|"
    r"Network is unreachable|Name or service not known|ConnectTimeout|ReadTimeout|ProxyError|"
    r"Max retries exceeded|No route to host|Connection refused|nodename nor servname",
    re.IGNORECASE,
)
CONTENT_TYPE = re.compile(rb"^Header:\s*Content-type:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def _download_sdist(folder: Path) -> Path:
    target = folder / SDIST
    if target.is_file():
        return target
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-binary",
        ":all:",
        "--no-deps",
        "--retries",
        "1",
        "--timeout",
        "15",
        f"feedparser=={VERSION}",
        "-d",
        str(folder),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0 or not target.is_file():
        output = done.stdout + done.stderr
        if NETWORK_TROUBLE.search(output):
            pytest.skip(f"cannot download the feedparser {VERSION} sdist (no network?): {output.strip()[-300:]}")
        pytest.fail(f"pip download of feedparser {VERSION} failed (exit {done.returncode}):\n{output[-2000:]}")
    return target


@pytest.fixture(scope="module")
def corpus(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    cache = getattr(pytestconfig, "cache", None)
    folder = cache.mkdir("feedparser-sdist") if cache is not None else tmp_path_factory.mktemp("feedparser-sdist")
    sdist = _download_sdist(Path(folder))
    extracted = tmp_path_factory.mktemp("feedparser-corpus")
    with tarfile.open(sdist, "r:gz") as archive:
        archive.extractall(extracted, filter="data")
    tests = extracted / f"feedparser-{VERSION}" / "tests"
    return sorted(p for p in tests.rglob("*") if p.suffix in (".xml", ".rdf") and p.is_file())


@dataclass
class Tally:
    files: int = 0
    with_items: int = 0
    with_errors: int = 0
    empty: int = 0  # well-formed feeds without entries: not an error, nothing to store
    items: int = 0
    problems: list[str] = field(default_factory=list)


def _check(path: Path, tally: Tally) -> None:
    body = path.read_bytes()
    declared = CONTENT_TYPE.search(body)  # feedparser's HTTP tests declare the response header in a comment
    content_type = declared.group(1).decode("latin-1") if declared else None
    try:
        result = parse_feed(body, feed_url=f"https://corpus.example/{path.name}", content_type=content_type)
    except Exception:
        tally.problems.append(f"{path}: raised\n{traceback.format_exc()}")
        return
    tally.files += 1
    if result.items:
        tally.with_items += 1
        tally.items += len(result.items)
        if result.error is not None:
            tally.problems.append(f"{path}: items and an error {result.error!r}")
        for item in result.items:
            if not (isinstance(item.uid, str) and item.uid.strip()):
                tally.problems.append(f"{path}: empty uid in {item!r}")
            if not (isinstance(item.title, str) and isinstance(item.summary, str)):
                tally.problems.append(f"{path}: title/summary not str in {item!r}")
            if not (item.title or item.summary):
                tally.problems.append(f"{path}: item without text {item!r}")
            if item.published is not None and item.published.utcoffset() is None:
                tally.problems.append(f"{path}: naive published {item.published!r}")
    elif result.error is not None:
        tally.with_errors += 1
        error = result.error
        if not error.strip() or "\n" in error or "Traceback" in error or len(error) > 300:
            tally.problems.append(f"{path}: unclear error {error!r}")
    else:
        # No items and no error is only right for a well-formed feed that has no entries at all.
        plain = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
        if plain.bozo or not plain.version or plain.entries:
            tally.problems.append(f"{path}: no items and no error (bozo={plain.bozo}, entries={len(plain.entries)})")
        tally.empty += 1


def test_feedparser_corpus_parses_without_crashes(
    corpus: list[Path], caplog: pytest.LogCaptureFixture, figure: Callable[[str], None]
) -> None:
    assert len(corpus) > 2000, f"the sdist's test corpus looks incomplete: {len(corpus)} feed files"
    tally = Tally()
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="watchers.parse"):
        for path in corpus:
            _check(path, tally)
    seconds = time.perf_counter() - started
    figure(
        f"feedparser {VERSION} corpus: files={tally.files} with_items={tally.with_items} "
        f"with_errors={tally.with_errors} empty_feeds={tally.empty} items={tally.items} seconds={seconds:.1f}"
    )
    swallowed = [r.getMessage() for r in caplog.records if r.name == "watchers.parse"]
    assert not swallowed, f"exceptions were swallowed while parsing: {swallowed[:5]}"
    assert not tally.problems, f"{len(tally.problems)} problem(s):\n" + "\n".join(tally.problems[:20])
    assert tally.files == len(corpus)
    assert tally.with_items + tally.with_errors + tally.empty == tally.files
    assert tally.with_items > 400 and tally.items > tally.with_items
