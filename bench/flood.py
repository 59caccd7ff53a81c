"""Command flood benchmark: one user sends 200 ``/trend 90`` in 2 s; how long does another user's
``/start`` wait, and how much memory does the bot take?

    python bench/flood.py [--commands 200] [--items 2000]

Runs the bot (as ``bot.py run`` builds it, clock fixed) against the tgemu Bot API emulator on 127.0.0.1
twice, each in a fresh process: the baseline is PTB's default (updates one at a time, no per-user
limits); then the bot as shipped (per-user lanes, token bucket; chat/limits.py). Prints, for each (after
one warm-up chart, so matplotlib is loaded in both): seconds until the other user's answer, how many
flood commands were answered (charts drawn), resident memory before and at the peak of the flood, and
how long the flood took to drain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PTB_TIMEDELTA", "true")

import psutil

REPO = Path(__file__).resolve().parents[1]
TOKEN = "4646:FLOOD-bench"
FLOODER, OTHER = 7, 9
NOW = datetime(2026, 5, 20, 9, 0, tzinfo=UTC)


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 1e6


async def one_run(baseline: bool, commands: int, n_items: int) -> dict[str, float]:
    from telegram.ext import SimpleUpdateProcessor

    from chat.limits import CommandLimits
    from core.config import load_config
    from core.models import Hit, Item, Match
    from service.app import build_application, post_init, post_shutdown, prepare
    from store import ProcessedItem
    from tgemu import BotApiEmulator

    with tempfile.TemporaryDirectory() as tmp, BotApiEmulator(TOKEN) as emu:
        for user in (FLOODER, OTHER):
            emu.add_chat(user, "private")
        config = Path(tmp) / "config.yaml"
        config.write_text(
            f"telegram: {{base_url: '{emu.base_url}'}}\nadmins: [1]\nstorage: {{path: '{Path(tmp) / 'b.sqlite3'}'}}\n"
            f"rules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n",
            encoding="utf-8",
        )
        state = prepare(load_config(config), NOW)
        assert state is not None
        state.clock = lambda: NOW
        state.schedule_jobs = False
        url = "https://news.example/rss"
        feed = state.store.add_feed(url, "News", "ru", 600, "bench", NOW)
        rules = [r.name for r in state.rules.rules]
        hits = (Hit("DPRK", "title", 0, 4, "КНДР"), Hit("RUSSIA", "title", 7, 13, "Россия"))
        batch = []
        for n in range(n_items):
            at = NOW - timedelta(minutes=n * 90 * 24 * 60 // max(n_items, 1))
            item = Item(url, f"u{n}", f"КНДР и Россия {n}", "", f"https://news.example/{n}", at, "ru", "News")
            batch.append(ProcessedItem(item, tuple(Match(r, "digest", hits) for r in rules[: 1 + n % 3]), False))
        state.store.commit_poll(
            feed.id, NOW, ok=True, etag=None, last_modified=None, error=None, next_poll_at=NOW, items=batch
        )
        app = build_application(state, TOKEN)
        if baseline:  # PTB's default: one update at a time, and no bucket
            app._update_processor = SimpleUpdateProcessor(1)  # bench only: PTB's default processor
            state.limits = CommandLimits(rate=1e9, burst=1e9, admin_rate=1e9, admin_burst=1e9)
        await app.initialize()
        await post_init(app)
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        try:
            emu.user_sends(OTHER, OTHER, "/trend 90")  # warm up: matplotlib loaded, one chart drawn
            await asyncio.to_thread(emu.wait_for, OTHER, 1, 60)
            before = rss_mb()

            def flood() -> None:
                for _ in range(commands):
                    emu.user_sends(FLOODER, FLOODER, "/trend 90")
                    time.sleep(2.0 / commands)

            flood_start = time.monotonic()
            flooding = asyncio.create_task(asyncio.to_thread(flood))
            await asyncio.sleep(0.5)
            asked = time.monotonic()
            emu.user_sends(OTHER, OTHER, "/start")
            await asyncio.to_thread(emu.wait_for, OTHER, 2, 300)
            waited = time.monotonic() - asked
            await flooding
            peak = rss_mb()
            drained_at = time.monotonic()
            last = -1
            while True:  # drained: nothing more for the flooder for 2 s
                await asyncio.sleep(2.0)
                peak = max(peak, rss_mb())
                count = len(emu.sent(FLOODER))
                if count == last:
                    break
                last, drained_at = count, time.monotonic()
            photos = sum(1 for m in emu.sent(FLOODER) if m.photo is not None)
            return {
                "other_waited_s": waited,
                "charts": photos,
                "answers": len(emu.sent(FLOODER)),
                "rss_before_mb": before,
                "rss_peak_mb": peak,
                "drained_s": drained_at - flood_start,
            }
        finally:
            await app.updater.stop()
            await app.stop()
            await post_shutdown(app)
            await app.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--mode", choices=["baseline", "shipped"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(asyncio.run(one_run(args.mode == "baseline", args.commands, args.items))))
        return
    print(f"{args.commands} × /trend 90 in 2 s from one user, then /start from another ({args.items} items stored)")
    for mode in ("baseline", "shipped"):
        out = subprocess.run(
            [sys.executable, __file__, "--mode", mode, "--commands", str(args.commands), "--items", str(args.items)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        label = "PTB default (sequential, no limits)" if mode == "baseline" else "shipped (per-user lanes + bucket)"
        print(
            f"{label:38} other user answered after {r['other_waited_s']:6.2f} s; flood: {r['charts']:3.0f} charts "
            f"drawn, {r['answers']:3.0f} answers, drained after {r['drained_s']:5.1f} s; RSS {r['rss_before_mb']:.0f} "
            f"→ {r['rss_peak_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
