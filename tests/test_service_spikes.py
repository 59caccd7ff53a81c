"""Spike alerts end to end: a real SQLite store, the bot's ``spikes`` pass, the Bot API emulator.

One alert per spike per window, to the subscriptions that follow the rule, kept across a restart; a send
interrupted by a crash is never repeated; a refused send is retried a bounded number of times.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.config import SpikeSettings
from core.models import Hit, Item, Match
from delivery.sender import Retry, Sent
from service.app import run_spike_pass
from service.spikes import run_spikes
from store import ProcessedItem, Store
from store.spikes import MAX_SPIKE_ATTEMPTS, pending_spike_sends, spike_times
from tests.running import running_app
from tgemu import BotApiEmulator

REPO = Path(__file__).resolve().parents[1]
TOKEN = "4343:SPIKES-token"
FOLLOWER, OTHER_RULE, EVERYTHING = 101, 102, 103
NOW = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
URL = "https://news.example/rss"
RULE, OTHER = "dprk_russia_military", "dprk_in_kursk"


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        for chat in (FOLLOWER, OTHER_RULE, EVERYTHING):
            e.add_chat(chat, "private")
        yield e


def write_config(tmp_path: Path, emu: BotApiEmulator) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"telegram: {{base_url: '{emu.base_url}'}}\nadmins: [{FOLLOWER}]\n"
        f"storage: {{path: '{tmp_path / 'bot.sqlite3'}'}}\nrules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n",
        encoding="utf-8",
    )
    return config


def seed(store: Store, at: datetime, uid: str, rule: str = RULE) -> None:
    feed = store.feed_by_url(URL) or store.add_feed(URL, "News", "ru", 600, "test", at)
    hits = (Hit("DPRK", "title", 0, 4, "КНДР"),)
    item = Item(URL, uid, f"КНДР {uid}", "", f"https://news.example/{uid}", at, "ru", "News")
    store.commit_poll(
        feed.id,
        at,
        ok=True,
        etag=None,
        last_modified=None,
        error=None,
        next_poll_at=at,
        items=[ProcessedItem(item, (Match(rule, "digest", hits),), deliver=False)],
    )


def seed_spike(store: Store, today: int = 8) -> None:
    """One item a day in the same hours for 14 days, then ``today`` in the last 6 hours."""
    for d in range(1, 15):
        seed(store, NOW - timedelta(days=d, hours=1), f"old{d}")
    for i in range(today):
        seed(store, NOW - timedelta(minutes=10 * (i + 1)), f"new{i}")


async def test_one_spike_alert_to_followers_once_per_window_even_after_a_restart(
    emu: BotApiEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path, emu)
    async with running_app(config, TOKEN, NOW) as (app, state):
        seed_spike(state.store)
        state.store.upsert_subscription(FOLLOWER, NOW, rules=[RULE])
        state.store.upsert_subscription(OTHER_RULE, NOW, rules=[OTHER])
        state.store.upsert_subscription(EVERYTHING, NOW)
        await run_spike_pass(app)
        await run_spike_pass(app)  # the same window: no second alert
    async with running_app(config, TOKEN, NOW + timedelta(minutes=10)) as (app, state):
        await run_spike_pass(app)  # a restart keeps the cooldown
    rule_alerts = [m for m in emu.sent(FOLLOWER) if m.text.startswith("⚡")]
    assert len(rule_alerts) == 1, [m.text for m in emu.sent(FOLLOWER)]
    head = rule_alerts[0].text.splitlines()[0]
    assert "8 stories in 6 h, 8× usual" in head
    assert len(rule_alerts[0].text.splitlines()) == 4  # the head and three stories
    assert not emu.sent(OTHER_RULE)  # follows another rule only
    # the DPRK group spiked with the very same stories: recorded (cooldown, /trend), not told twice
    (everything,) = emu.sent(EVERYTHING)
    assert everything.text == rule_alerts[0].text
    with Store.open(tmp_path / "bot.sqlite3") as store:
        assert len(spike_times(store, NOW - timedelta(days=1), NOW, ["entity:DPRK"])) == 1


async def test_each_subscriber_gets_the_spike_alert_in_its_chats_language(emu: BotApiEmulator, tmp_path: Path) -> None:
    config = write_config(tmp_path, emu)
    async with running_app(config, TOKEN, NOW) as (app, state):
        seed_spike(state.store)
        state.store.upsert_subscription(FOLLOWER, NOW, rules=[RULE])
        state.store.upsert_subscription(EVERYTHING, NOW)
        state.store.set_chat_language(FOLLOWER, "ru", NOW)  # chosen with /language ru
        await run_spike_pass(app)
    (russian,) = [m for m in emu.sent(FOLLOWER) if m.text.startswith("⚡")]
    (english,) = emu.sent(EVERYTHING)
    assert "8 сюжетов за 6 ч, 8× от обычного" in russian.text.splitlines()[0]
    assert "8 stories in 6 h, 8× usual" in english.text.splitlines()[0]
    assert russian.text.splitlines()[1:] == english.text.splitlines()[1:]  # the same three stories


async def test_an_entity_groups_own_surge_goes_to_the_chats_that_follow_every_rule(store_target: Path | str) -> None:
    store = Store.open(store_target)
    seed_spike(store)  # RULE: 8 stories over 1 a day
    for i in range(2):  # DPRK news of another rule, the latest of all: DPRK's top stories differ from RULE's
        seed(store, NOW - timedelta(minutes=1 + i), f"kursk{i}", rule=OTHER)
    store.upsert_subscription(FOLLOWER, NOW, rules=[RULE])
    store.upsert_subscription(EVERYTHING, NOW)
    sender = RecordingSender([Sent((n,)) for n in range(10)])
    report = await run_spikes(store, sender, SpikeSettings(), {}, NOW, entities=["DPRK"])
    assert report.found == [f"rule:{RULE}", "entity:DPRK"]
    assert sorted(sender.calls) == sorted([str(FOLLOWER), str(EVERYTHING), str(EVERYTHING)])
    store.close()


async def test_a_later_window_may_alert_again(emu: BotApiEmulator, store_target: Path | str) -> None:
    store = Store.open(store_target)
    seed_spike(store)
    store.upsert_subscription(FOLLOWER, NOW, rules=[RULE])
    sender = RecordingSender([Sent((1,))] * 4)
    await run_spikes(store, sender, SpikeSettings(), {}, NOW)
    assert len(sender.calls) == 1
    later = NOW + timedelta(hours=7)
    for i in range(8):
        seed(store, later - timedelta(minutes=10 * (i + 1)), f"newer{i}")
    await run_spikes(store, sender, SpikeSettings(), {}, later)
    assert len(sender.calls) == 2
    assert len(spike_times(store, NOW - timedelta(days=1), later, [f"rule:{RULE}"])) == 2
    store.close()


class RecordingSender:
    def __init__(self, outcomes: list[Sent | Retry]) -> None:
        self.outcomes = outcomes
        self.calls: list[str] = []

    async def send(self, chat_id: int | str, chunks: object, **kwargs: object) -> Sent | Retry:
        self.calls.append(str(chat_id))
        return self.outcomes[len(self.calls) - 1]

    async def send_photo(self, chat_id: int | str, photo: bytes, caption: str = "") -> Sent:
        raise AssertionError("no photos")


async def test_a_send_interrupted_by_a_crash_is_never_repeated(store_target: Path | str) -> None:
    store = Store.open(store_target)
    seed_spike(store)
    store.upsert_subscription(FOLLOWER, NOW, rules=[RULE])
    sender = RecordingSender([])
    await run_spikes(store, sender, SpikeSettings(enabled=False), {}, NOW)  # spikes.enabled: false: nothing
    assert not spike_times(store, NOW - timedelta(days=1), NOW)
    # record the spike without sending: the send fails at once, before the request went out
    crashing = CrashingSender()
    with pytest.raises(RuntimeError):
        await run_spikes(store, crashing, SpikeSettings(), {}, NOW)
    assert crashing.calls == 1
    report = await run_spikes(store, sender, SpikeSettings(), {}, NOW + timedelta(minutes=10))
    assert sender.calls == [] and report.uncertain == 1
    store.close()


class CrashingSender:
    """The process "dies" during the request: the send raises out of the pass."""

    calls = 0

    async def send(self, chat_id: int | str, chunks: object, **kwargs: object) -> Sent:
        self.calls += 1
        raise RuntimeError("killed mid-send")

    async def send_photo(self, chat_id: int | str, photo: bytes, caption: str = "") -> Sent:
        raise AssertionError


async def test_a_refused_send_is_retried_a_bounded_number_of_times(store_target: Path | str) -> None:
    store = Store.open(store_target)
    seed_spike(store)
    store.upsert_subscription(FOLLOWER, NOW, rules=[RULE])
    sender = RecordingSender([Retry(1.0, "502 Bad Gateway")] * 10)
    at = NOW
    for _ in range(6):
        await run_spikes(store, sender, SpikeSettings(), {}, at)
        at += timedelta(minutes=10)
    assert len(sender.calls) == MAX_SPIKE_ATTEMPTS
    assert pending_spike_sends(store, at + timedelta(days=1)) == []
    store.close()


@pytest.mark.parametrize("enabled", [True, False])
async def test_the_spikes_job_runs_every_ten_minutes_unless_disabled(
    emu: BotApiEmulator, tmp_path: Path, enabled: bool
) -> None:
    from core.config import load_config
    from service.app import build_application, post_init, post_shutdown, prepare

    config = write_config(tmp_path, emu)
    config.write_text(config.read_text(encoding="utf-8") + f"spikes: {{enabled: {str(enabled).lower()}}}\n")
    state = prepare(load_config(config), NOW)
    assert state is not None
    app = build_application(state, TOKEN)
    await app.initialize()
    try:
        await post_init(app)
        assert app.job_queue is not None
        jobs = app.job_queue.get_jobs_by_name("spikes")
        assert [job.trigger.interval.total_seconds() for job in jobs] == ([600.0] if enabled else [])
        for job in app.job_queue.jobs():
            job.schedule_removal()
    finally:
        await post_shutdown(app)
        await app.shutdown()
