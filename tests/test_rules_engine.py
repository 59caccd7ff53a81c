"""The engine: what matches, what does not, why, and where the hits are in the original text."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from core.errors import RuleError
from core.models import MAX_TEXT, Item
from rules import RuleSet, load_rules, parse_rule_text

GROUPS = """
version: 1
groups:
  DPRK:
    kind: entity
    aliases:
      - КНДР
      - Северная Корея
      - северокорейский
      - Пхеньян
      - Ким Чен Ын
      - North Korea
      - North Korean
      - Kim Jong Un
      - 북한
      - 평양
      - =КНА
    exclude:
      - 북한강
  RUSSIA:
    kind: entity
    aliases: [Россия, российск*, Москва, Russia, Russian, 러시아, Мацегора]
  MISSILE:
    aliases: [ракета, missile]
  MILITARY:
    aliases: [военный, армия, troops, 군사, Виктор Горемыкин]
  SPORT:
    aliases: [футбол, хоккей, football]
  TECH:
    aliases: [{re: '\\bт-\\d{2,3}\\b'}]
"""


def ruleset(rules: str, groups: str = GROUPS) -> RuleSet:
    return parse_rule_text(dedent(groups) + "rules:\n" + dedent(rules), "test.yaml")


@pytest.fixture(scope="module")
def any_group() -> RuleSet:
    """One rule per group, so a test can ask "did group X match this text"."""
    names = ["DPRK", "RUSSIA", "MISSILE", "MILITARY", "SPORT", "TECH"]
    return ruleset("".join(f"  - name: {n.lower()}\n    all: [{n}]\n" for n in names))


def groups_hit(rs: RuleSet, title: str, summary: str = "") -> set[str]:
    return {m.rule.upper() for m in rs.match_text(title, summary)}


def texts_hit(rs: RuleSet, title: str, summary: str = "") -> list[tuple[str, str]]:
    return [(h.group, h.text) for h in rs.scan(title, summary)]


# --- aliases: which surface forms each alias finds --------------------------------------------------

FINDS = [
    # (name, text, group, surface text that must be found)
    ("ru genitive phrase", "Делегация Северной Кореи прибыла", "DPRK", "Северной Кореи"),
    ("ru accusative phrase", "посетил Северную Корею", "DPRK", "Северную Корею"),
    ("ru locative", "переговоры в Пхеньяне", "DPRK", "Пхеньяне"),
    ("ru adjective plural genitive", "около 5 тыс. северокорейских строителей", "DPRK", "северокорейских"),
    ("ru adjective feminine", "северокорейская делегация", "DPRK", "северокорейская"),
    ("ru instrumental", "договор с Россией", "RUSSIA", "Россией"),
    ("ru name declined at the end", "встреча с Ким Чен Ыном", "DPRK", "Ким Чен Ыном"),
    ("ru name genitive", "визит Ким Чен Ына", "DPRK", "Ким Чен Ына"),
    ("ru surname in a phrase", "во главе с Виктором Горемыкиным", "MILITARY", "Виктором Горемыкиным"),
    ("unknown surname via Snowball", "посол Мацегорой было сказано", "RUSSIA", "Мацегорой"),
    ("ru prefix inside a hyphenated compound", "российско-корейские переговоры", "RUSSIA", "российско"),
    ("ru prefix", "российских военных", "RUSSIA", "российских"),
    ("ё written as е", "Северная Корея и ее ракеты", "MISSILE", "ракеты"),
    ("е written as ё in text", "военнослужащие и военнЫЕ", "MILITARY", "военнЫЕ"),
    ("case-insensitive", "КНДР и РОССИЯ", "RUSSIA", "РОССИЯ"),
    ("exact alias", "подразделения КНА", "DPRK", "КНА"),
    ("ko particle 의", "북한의 미사일", "DPRK", "북한의"),
    ("ko particle 와", "러시아와 협력", "RUSSIA", "러시아와"),
    ("ko compound with topic particle", "북한군은 철수했다", "DPRK", "북한군은"),
    ("ko city", "평양에서 열린 회담", "DPRK", "평양에서"),
    ("en possessive", "Russia's defence minister", "RUSSIA", "Russia"),
    ("en curly possessive", "North Korea’s leader", "DPRK", "North Korea"),
    ("en plural demonym", "North Koreans in Kursk", "DPRK", "North Koreans"),
    ("en hyphenated name", "Kim Jong-un met officials", "DPRK", "Kim Jong-un"),
    ("en hyphen, capital", "Kim Jong-Un met officials", "DPRK", "Kim Jong-Un"),
    ("en plural", "two missiles were fired", "MISSILE", "missiles"),
    ("phrase across a line break", "Северной\nКореи", "DPRK", "Северной\nКореи"),
    ("phrase with two spaces", "Kim  Jong Un", "DPRK", "Kim  Jong Un"),
    ("regex over the lowercased text", "танки Т-72 и Т-90", "TECH", "Т-72"),
    ("soft hyphen inside a word", "в Пхе\u00adньяне", "DPRK", "Пхе\u00adньяне"),
    ("full-width letters", "Ｒｕｓｓｉａ", "RUSSIA", "Ｒｕｓｓｉａ"),
]


@pytest.mark.parametrize(("name", "text", "group", "surface"), FINDS, ids=[c[0] for c in FINDS])
def test_alias_finds_surface_form(any_group: RuleSet, name: str, text: str, group: str, surface: str) -> None:
    assert (group, surface) in texts_hit(any_group, text), texts_hit(any_group, text)


MISSES = [
    # (name, text, group that must NOT be found)
    ("ракетка is not ракета", "Ракетка для тенниса подорожала", "MISSILE"),
    ("ракетный is not ракета", "ракетный удар", "MISSILE"),
    ("Россошь is not Россия", "В Россоши открыли завод", "RUSSIA"),
    ("россияне is not Россия", "россияне отдыхают", "RUSSIA"),
    ("москвич is not Москва", "Москвич стал популярным", "RUSSIA"),
    ("Snowball fallback is not a prefix", "Мацегоровка", "RUSSIA"),
    ("ko river excluded", "북한강 자전거길", "DPRK"),
    ("ko river excluded with particle", "북한강에서 축제", "DPRK"),
    ("ko not at word start", "남북한 관계", "DPRK"),
    ("word inside another word", "ПКНДРА", "DPRK"),
    ("exact alias does not inflect", "в составе КНАР", "DPRK"),
    ("phrase words in the wrong order", "Корея Северная", "DPRK"),
    ("phrase words not adjacent", "Северная и Южная Корея", "DPRK"),
    ("regex needs a word boundary", "мост-72", "TECH"),
    ("en different word", "Russianness", "RUSSIA"),
]


@pytest.mark.parametrize(("name", "text", "group"), MISSES, ids=[c[0] for c in MISSES])
def test_near_miss_is_not_found(any_group: RuleSet, name: str, text: str, group: str) -> None:
    assert group not in {g for g, _ in texts_hit(any_group, text)}, texts_hit(any_group, text)


def test_exclude_cancels_only_the_overlapping_hit(any_group: RuleSet) -> None:
    hits = texts_hit(any_group, "북한강 근처에서 북한 군인이 발견됐다")
    assert hits.count(("DPRK", "북한")) == 1
    assert all(text != "북한강" for _, text in hits)


# --- spans -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        ("Посол Северной Кореи и Россия", ""),
        ("", "Сегодня в Пхеньяне: «Северная Корея» и Россией"),
        ("ﬁnal: Ｒｕｓｓｉａ и КНДР", "И\u0306 — КНДР"),  # ligature, full width, decomposed й: slow path
        ("Kim Jong-un's visit to Russia", "북한의 김정은과 러시아와"),
    ],
)
def test_hit_offsets_point_at_the_original_text(any_group: RuleSet, title: str, summary: str) -> None:
    hits = any_group.scan(title, summary)
    assert hits
    for h in hits:
        source = title if h.field == "title" else summary
        assert source[h.start : h.end] == h.text


# --- rules: all / any / none / scope / near / min --------------------------------------------------

RULES = """
  - name: pair
    all: [DPRK, RUSSIA]
  - name: pair_military
    all: [DPRK, RUSSIA]
    any: [MILITARY, MISSILE]
    none: [SPORT]
  - name: close
    all: [DPRK, RUSSIA]
    near: 3
  - name: same_sentence
    all: [DPRK, RUSSIA]
    near: sentence
  - name: title_only
    scope: [title]
    all: [DPRK]
  - name: dprk_in_title_russia_anywhere
    all: [{group: DPRK, in: title}, RUSSIA]
  - name: twice
    all: [{group: DPRK, min: 2}]
  - name: nested
    all:
      - DPRK
      - {any: [RUSSIA, {all: [MISSILE, {not: SPORT}]}]}
  - name: three_hits
    all: [DPRK]
    min_hits: 3
  - name: disabled
    enabled: false
    all: [DPRK]
"""


@pytest.fixture(scope="module")
def rules_rs() -> RuleSet:
    return ruleset(RULES)


RULE_CASES = [
    # (name, title, summary, rules that must match, rules that must not)
    ("pair in title", "КНДР и Россия", "", {"pair", "close", "same_sentence"}, {"pair_military"}),
    ("pair across fields", "КНДР", "Россия", {"pair", "dprk_in_title_russia_anywhere"}, {"close"}),
    ("military word", "КНДР и Россия: военные учения", "", {"pair_military"}, set()),
    ("none vetoes", "КНДР и Россия: военные и футбол", "", {"pair"}, {"pair_military"}),
    ("none in the other field vetoes", "КНДР и Россия: армия", "Футбол", set(), {"pair_military"}),
    ("too far apart", "КНДР провела учения у границы с Россией", "", {"pair"}, {"close"}),
    ("within 3 words", "", "Делегация КНДР посетила Россию", {"close"}, set()),
    ("4 words is not within 3", "", "КНДР, Китай и Россия", {"pair"}, {"close"}),
    ("other sentence", "", "КНДР запустила ракету. Россия провела учения.", {"pair"}, {"same_sentence"}),
    ("same sentence", "", "Учения. КНДР и Россия провели учения.", {"same_sentence"}, set()),
    (
        "abbreviation does not end a sentence",
        "",
        "Около 5 тыс. северокорейских военных в России",
        {"same_sentence"},
        set(),
    ),
    ("title scope ignores summary", "Новости", "КНДР", set(), {"title_only"}),
    ("title scope", "КНДР", "", {"title_only"}, set()),
    ("in: title", "Россия", "КНДР", set(), {"dprk_in_title_russia_anywhere"}),
    ("min 2 distinct hits", "КНДР и Пхеньян", "", {"twice"}, set()),
    ("min counts the same alias twice", "КНДР", "КНДР снова", {"twice"}, set()),
    ("min not reached", "КНДР", "", set(), {"twice"}),
    ("nested: any RUSSIA", "КНДР и Россия", "", {"nested"}, set()),
    ("nested: MISSILE without SPORT", "КНДР: ракета", "", {"nested"}, set()),
    ("nested: not vetoes the inner branch", "КНДР: ракета и футбол", "", set(), {"nested"}),
    ("min_hits", "КНДР, Пхеньян, Ким Чен Ын", "", {"three_hits"}, set()),
    ("min_hits not reached", "КНДР и Пхеньян", "", set(), {"three_hits"}),
    ("disabled rule never matches", "КНДР", "", set(), {"disabled"}),
]


@pytest.mark.parametrize(("name", "title", "summary", "must", "must_not"), RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_rule_semantics(
    rules_rs: RuleSet, name: str, title: str, summary: str, must: set[str], must_not: set[str]
) -> None:
    matched = {m.rule for m in rules_rs.match_text(title, summary)}
    assert must <= matched, matched
    assert not (must_not & matched), matched


def test_match_carries_the_why_and_priority() -> None:
    rs = ruleset(
        """
  - name: dprk_russia_military
    priority: instant
    all: [DPRK, RUSSIA]
    any: [MILITARY]
    near: sentence
"""
    )
    [m] = rs.match(
        Item(
            "https://x",
            "1",
            "В КНДР сообщили о переговорах",
            "Глава Минобороны КНДР принял делегацию российских военных во главе с Виктором Горемыкиным.",
        )
    )
    assert m.rule == "dprk_russia_military" and m.priority == "instant"
    assert m.why_text() == ("DPRK: «КНДР», RUSSIA: «российских», MILITARY: «военных», «Виктором Горемыкиным»")
    assert all(h.field == "summary" for h in m.hits)  # the near window is in the summary


def test_near_reports_the_window_hits_only(rules_rs: RuleSet) -> None:
    [m] = [m for m in rules_rs.match_text("Россия. Далее: КНДР и Россия") if m.rule == "same_sentence"]
    assert [(h.group, h.start) for h in m.hits] == [("DPRK", 15), ("RUSSIA", 22)]


def test_every_matching_rule_is_reported_in_file_order(rules_rs: RuleSet) -> None:
    names = [m.rule for m in rules_rs.match_text("КНДР и Россия", "")]
    assert names == [r.name for r in rules_rs.rules if r.name in names]
    assert names[:2] == ["pair", "close"]


def test_no_hits_no_matches(rules_rs: RuleSet) -> None:
    assert rules_rs.match_text("Курс рубля укрепился", "Погода на выходные") == []
    assert rules_rs.match_text("", "") == []


def test_evaluate_explains_a_miss(rules_rs: RuleSet) -> None:
    verdict = rules_rs.evaluate("pair_military", "КНДР и Россия: армия и футбол")
    assert not verdict.matched
    assert verdict.reason.startswith("none: SPORT matched")
    assert "RUSSIA: «Россия»" in verdict.reason
    assert "all: no RUSSIA" in rules_rs.evaluate("pair", "КНДР").reason
    assert "within 3 words" in rules_rs.evaluate("close", "КНДР провела учения у границы с Россией").reason


def test_rule_lookup(rules_rs: RuleSet) -> None:
    rule = rules_rs.rule("close")
    assert rule is not None and rule.near == 3 and rule.file == "test.yaml"
    assert rules_rs.rule("nope") is None
    assert set(rules_rs.groups) >= {"DPRK", "RUSSIA"}


# --- regex safety ----------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_catastrophic_regex_runs_in_linear_time() -> None:
    rs = ruleset(
        "  - name: r\n    all: [BAD]\n",
        "version: 1\ngroups:\n  BAD:\n    aliases: [{re: '(a+)+$'}]\n",
    )
    # Python's re backtracks exponentially here (seconds at 24 characters, doubling with each one);
    # RE2 is linear, so the 20,000 characters matching reads (MAX_TEXT) take milliseconds.
    assert rs.match_text("a" * (MAX_TEXT - 1) + "!") == []
    assert [m.rule for m in rs.match_text("a" * MAX_TEXT)] == ["r"]


# --- loading, replacing, examples ------------------------------------------------------------------


def test_load_rules_reads_files_and_keeps_order(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(dedent(GROUPS), encoding="utf-8")
    b.write_text("version: 1\nrules:\n  - name: pair\n    all: [DPRK, RUSSIA]\n", encoding="utf-8")
    rs = load_rules([a, b])
    assert rs.files == (a, b)
    assert [m.rule for m in rs.match_text("КНДР и Россия")] == ["pair"]


def test_missing_file_is_a_rule_error(tmp_path: Path) -> None:
    with pytest.raises(RuleError) as exc:
        load_rules([tmp_path / "nope.yaml"])
    assert "nope.yaml" in str(exc.value) and "cannot read" in str(exc.value)


def test_parse_rule_text_replaces_one_file_and_keeps_the_others() -> None:
    base = parse_rule_text(dedent(GROUPS), "groups.yaml")
    with_rules = parse_rule_text("version: 1\nrules:\n  - name: a\n    all: [DPRK]\n", "r.yaml", others=base)
    assert [m.rule for m in with_rules.match_text("КНДР")] == ["a"]
    edited = parse_rule_text("version: 1\nrules:\n  - name: b\n    all: [RUSSIA]\n", "r.yaml", others=with_rules)
    assert [m.rule for m in edited.match_text("КНДР и Россия")] == ["b"]
    assert [str(p) for p in edited.files] == ["groups.yaml", "r.yaml"]
    # An invalid edit raises and leaves the old rule set untouched.
    with pytest.raises(RuleError):
        parse_rule_text("version: 1\nrules:\n  - name: c\n    all: [NOPE]\n", "r.yaml", others=edited)
    assert [m.rule for m in edited.match_text("КНДР и Россия")] == ["b"]


def test_edit_that_breaks_another_files_examples_is_refused() -> None:
    groups = "version: 1\ngroups:\n  DPRK:\n    aliases: [КНДР]\n"
    rules = dedent(
        """\
        version: 1
        rules:
          - name: a
            all: [DPRK]
            examples:
              match: ["КНДР сообщила"]
        """
    )
    rs = parse_rule_text(rules, "r.yaml", others=parse_rule_text(groups, "g.yaml"))
    with pytest.raises(RuleError) as exc:
        parse_rule_text("version: 1\ngroups:\n  DPRK:\n    aliases: [Пхеньян]\n", "g.yaml", others=rs)
    [problem] = exc.value.problems
    assert (problem.file, problem.line, problem.path) == ("r.yaml", 6, "rules[a].examples.match[0]")
    assert "did not match but must: 'КНДР сообщила'" in problem.message


EXAMPLES = """
  - name: pair
    all: [DPRK, RUSSIA]
    near: sentence
    examples:
      match:
        - "КНДР и Россия"
        - {title: "Новости", summary: "Пхеньян и Москва договорились"}
        - "Только КНДР"
      no_match:
        - "КНДР. Россия."
        - "Северная Корея и Россия провели учения"
"""


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_failing_examples_are_load_errors_with_line_and_why() -> None:
    with pytest.raises(RuleError) as exc:
        ruleset(EXAMPLES)
    problems = exc.value.problems
    source = dedent(GROUPS) + "rules:\n" + dedent(EXAMPLES)
    assert [(p.path, p.line) for p in problems] == [
        ("rules[pair].examples.match[2]", line_of(source, "Только КНДР")),
        ("rules[pair].examples.no_match[1]", line_of(source, "Северная Корея и Россия провели")),
    ]
    assert "did not match but must: 'Только КНДР' (all: no RUSSIA; found DPRK: «КНДР»)" in problems[0].message
    assert problems[1].message == (
        "matched but must not: 'Северная Корея и Россия провели учения' (DPRK: «Северная Корея», RUSSIA: «Россия»)"
    )
    assert str(problems[0]).startswith(f"test.yaml:{problems[0].line}: rules[pair].examples.match[2]: did not")


def test_examples_of_a_disabled_rule_are_checked_too() -> None:
    with pytest.raises(RuleError, match=r"rules\[x\]\.examples\.match\[0\]"):
        ruleset("  - name: x\n    enabled: false\n    all: [DPRK]\n    examples:\n      match: [Москва]\n")


def test_regex_groups_work_as_any_none_and_exclude_terms() -> None:
    groups = dedent(
        """\
        version: 1
        groups:
          DPRK:
            aliases: [КНДР]
            exclude: [{re: 'кндр-\\d+'}]
          TANK:
            aliases: [{re: '\\bт-\\d{2}\\b'}]
          SPORT:
            aliases: [{re: 'футбол\\w*'}]
        """
    )
    rs = ruleset("  - name: r\n    all: [DPRK]\n    any: [TANK]\n    none: [SPORT]\n", groups)
    assert [m.why_text() for m in rs.match_text("КНДР закупает Т-72")] == ["DPRK: «КНДР», TANK: «Т-72»"]
    assert rs.match_text("КНДР закупает трактора") == []
    assert rs.match_text("КНДР закупает Т-72 для футболистов") == []
    assert rs.match_text("КНДР-2 закупает Т-72") == []  # the exclude regex cancels the DPRK hit


def test_hits_any_group_says_whether_an_item_is_worth_more_work() -> None:
    rs = parse_rule_text(
        dedent(
            """\
            version: 1
            groups:
              DPRK: {aliases: [North Korea], exclude: [North Korea Cup]}
              RUSSIA: {aliases: [Russia]}
              UNUSED: {aliases: [weather]}
              VOLCANO: {aliases: [volcano]}
            rules:
              - {name: pair, all: [DPRK, RUSSIA]}
              - {name: disabled_rule, enabled: false, all: [VOLCANO]}
            """
        ),
        "t.yaml",
    )
    assert rs.hits_any_group("Russia says little")  # a second group of a rule counts, not only its first
    assert rs.hits_any_group("Talks", "North Korea sent a delegation")
    assert not rs.hits_any_group("North Korea Cup final")  # excluded
    assert not rs.hits_any_group("Weather in Busan")  # a group no rule uses
    assert not rs.hits_any_group("Volcano erupts")  # used only by a disabled rule
    assert not rs.hits_any_group("")


PHRASES = """
version: 1
groups:
  DPRK:
    aliases: [N Korea, North Korea, U.S. envoy]
  US:
    aliases: [U S, Kim Yo Jong]
"""


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Talks with N. Korea resumed", {"DPRK": ["N. Korea"]}),
        ("north korea and n–korea", {"DPRK": ["north korea", "n–korea"]}),
        ("a northern Korea; an N.Korea", {"DPRK": ["N.Korea"]}),  # "northern" ends in n but is not "n"
        ("Korea alone, korea at the start", {}),
        ("nKorea, in korea, then n korean", {}),  # the neighbour must be a whole word and so must the anchor
        ("U.S. envoy; the u s; u.s", {"DPRK": ["U.S. envoy"], "US": ["U.S", "u s", "u.s"]}),
        ("US ENVOY. the us", {}),
        ("Kim Yo-jong and kim yo jong, not Kim Yong", {"US": ["Kim Yo-jong", "kim yo jong"]}),
    ],
)
def test_phrases_are_found_with_any_separator_and_only_beside_their_own_words(
    text: str, found: dict[str, list[str]]
) -> None:
    rs = parse_rule_text(PHRASES + "rules:\n  - name: r\n    any: [DPRK, US]\n", "p.yaml")
    matches = rs.match_text(text)
    assert (matches[0].why() if matches else {}) == found
