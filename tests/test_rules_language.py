"""Rule files: parsing into dataclasses, and every kind of mistake reported with file, line and path."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from core.errors import Problem, RuleError
from rules import load_rules, parse_rule_text
from rules.language import (
    MAX_ALIASES_PER_GROUP,
    MAX_RULES,
    AllTerm,
    AnyTerm,
    GroupTerm,
    NotTerm,
    parse_file,
)

GROUPS = """\
version: 1
groups:
  DPRK:
    kind: entity
    description: North Korea
    aliases: [КНДР, Пхеньян]
  RUSSIA:
    aliases: [Россия]
  SPORT:
    aliases: [футбол]
"""


def problems_of(text: str, file: str = "rules/x.yaml") -> list[Problem]:
    with pytest.raises(RuleError) as exc:
        parse_rule_text(dedent(text), file)
    return list(exc.value.problems)


def marked_line(text: str) -> int:
    """The line carrying the ``#!`` marker: where the problem must be reported."""
    return next(i for i, line in enumerate(dedent(text).splitlines(), 1) if "#!" in line)


def test_a_valid_file_parses_into_frozen_dataclasses() -> None:
    text = GROUPS + dedent(
        """\
        rules:
          - name: dprk_russia
            description: both
            priority: instant
            scope: [title]
            all: [DPRK, {group: RUSSIA, in: title, min: 2}]
            any: [{any: [DPRK, {not: SPORT}]}, {all: [RUSSIA]}]
            none: [SPORT]
            near: sentence
            min_hits: 2
            examples:
              match: ["КНДР и Россия, Россия"]
              no_match: [{title: "футбол", summary: "КНДР"}]
        """
    )
    rf, problems = parse_file(text, "rules/x.yaml")
    assert problems == []
    [rule] = rf.rules
    assert (rule.name, rule.priority, rule.scope, rule.near, rule.min_hits) == (
        "dprk_russia", "instant", ("title",), "sentence", 2
    )  # fmt: skip
    assert rule.all == (GroupTerm("DPRK"), GroupTerm("RUSSIA", "title", 2))
    assert rule.any == (
        AnyTerm((GroupTerm("DPRK"), NotTerm(GroupTerm("SPORT")))),
        AllTerm((GroupTerm("RUSSIA"),)),
    )
    assert rule.examples_match[0].title == "КНДР и Россия, Россия"
    assert (rule.examples_no_match[0].title, rule.examples_no_match[0].summary) == ("футбол", "КНДР")
    assert (rule.file, rule.line) == ("rules/x.yaml", 12)
    dprk = rf.groups[0]
    assert (dprk.name, dprk.kind, dprk.description, [a.text for a in dprk.aliases]) == (
        "DPRK", "entity", "North Korea", ["КНДР", "Пхеньян"]
    )  # fmt: skip
    with pytest.raises(AttributeError):
        rule.name = "other"  # type: ignore[misc]


def test_defaults() -> None:
    rf, problems = parse_file(GROUPS + "rules:\n  - name: r\n    all: [DPRK]\n", "x.yaml")
    assert problems == []
    [rule] = rf.rules
    assert (rule.priority, rule.enabled, rule.scope, rule.near, rule.min_hits, rule.any, rule.none) == (
        "digest", True, ("title", "summary"), None, 1, (), ()
    )  # fmt: skip
    assert rf.groups[1].kind == "keywords"


def test_a_string_example_goes_to_the_first_field_in_scope() -> None:
    rf, _ = parse_file(
        GROUPS + "rules:\n  - name: r\n    scope: [summary]\n    all: [DPRK]\n    examples:\n      match: [КНДР]\n",
        "x.yaml",
    )
    ex = rf.rules[0].examples_match[0]
    assert (ex.title, ex.summary) == ("", "КНДР")


# Each case: (name, file text with "#!" on the line the problem is reported at, path, message part).
ERRORS = [
    ("unknown top-level key", "version: 1\ngroup:  #!\n  X:\n    aliases: [a]\n", "group",
     "unknown key 'group' (did you mean 'groups'?)"),
    ("missing version", "groups:  #!\n  X:\n    aliases: [abc]\n", "version", "must be 1"),
    ("unknown group key", GROUPS.replace("    kind: entity", "    kind: entity\n    alias: [x]  #!"),
     "groups.DPRK.alias", "unknown key 'alias' (did you mean 'aliases'?)"),
    ("bad kind", GROUPS.replace("kind: entity", "kind: country  #!"), "groups.DPRK.kind",
     "must be 'entity' or 'keywords'"),
    ("empty group", "version: 1\ngroups:\n  X:\n    aliases: []  #!\n", "groups.X.aliases", "is empty"),
    ("group without aliases", "version: 1\ngroups:\n  X:  #!\n    kind: entity\n", "groups.X",
     "a group needs 'aliases'"),
    ("aliases not a list", "version: 1\ngroups:\n  X:\n    aliases: КНДР  #!\n", "groups.X.aliases",
     "must be a list"),
    ("bad group name", "version: 1\ngroups:\n  1X:  #!\n    aliases: [a]\n", "groups.1X",
     "a group name is letters"),
    ("empty alias", "version: 1\ngroups:\n  X:\n    aliases:\n      - ok\n      - ''  #!\n",
     "groups.X.aliases[1]", "empty alias"),
    ("alias without letters", "version: 1\ngroups:\n  X:\n    aliases:\n      - '—'  #!\n",
     "groups.X.aliases[0]", "no letters or digits"),
    ("alias too long", f"version: 1\ngroups:\n  X:\n    aliases:\n      - {'слово ' * 20}  #!\n",
     "groups.X.aliases[0]", "the limit is 100"),
    ("alias wrong type", "version: 1\ngroups:\n  X:\n    aliases:\n      - [a, b]  #!\n",
     "groups.X.aliases[0]", "must be a string"),
    ("prefix too short", "version: 1\ngroups:\n  X:\n    aliases:\n      - ра*  #!\n",
     "groups.X.aliases[0]", "shorter than 3 letters"),
    ("star inside a word", "version: 1\ngroups:\n  X:\n    aliases:\n      - ра*кета  #!\n",
     "groups.X.aliases[0]", "'*' may only end a word"),
    ("exact and prefix", "version: 1\ngroups:\n  X:\n    aliases:\n      - =ракет*  #!\n",
     "groups.X.aliases[0]", "cannot also be a prefix"),
    ("one-syllable Korean prefix", "version: 1\ngroups:\n  X:\n    aliases:\n      - 북  #!\n",
     "groups.X.aliases[0]", "one syllable"),
    ("regex as a string", "version: 1\ngroups:\n  X:\n    aliases:\n      - 're: a+'  #!\n",
     "groups.X.aliases[0]", "write a regex alias as a mapping"),
    ("invalid regex", "version: 1\ngroups:\n  X:\n    aliases:\n      - re: '(abc'  #!\n",
     "groups.X.aliases[0]", "invalid regex (RE2)"),
    ("regex backreference", "version: 1\ngroups:\n  X:\n    aliases:\n      - re: '(a)\\1'  #!\n",
     "groups.X.aliases[0]", "no lookaround or backreferences"),
    ("regex lookahead", "version: 1\ngroups:\n  X:\n    aliases:\n      - re: 'a(?=b)'  #!\n",
     "groups.X.aliases[0]", "no lookaround or backreferences"),
    ("regex too long", f"version: 1\ngroups:\n  X:\n    aliases:\n      - re: '{'a' * 501}'  #!\n",
     "groups.X.aliases[0]", "the limit is 500"),
    ("regex too big for RE2",
     "version: 1\ngroups:\n  X:\n    aliases:\n      - re: '(((a{100}){100}){100})'  #!\n",
     "groups.X.aliases[0]", "invalid regex (RE2)"),
    ("regex matching empty text", "version: 1\ngroups:\n  X:\n    aliases:\n      - re: 'a*'  #!\n",
     "groups.X.aliases[0]", "matches empty text"),
    ("regex mapping with other keys", "version: 1\ngroups:\n  X:\n    aliases:\n      - {re: a, x: 1}  #!\n",
     "groups.X.aliases[0]", "must be {re: 'pattern'}"),
    ("duplicate key in YAML", GROUPS.replace("  SPORT:", "  DPRK:  #!\n    aliases: [x]\n  SPORT:"),
     "DPRK", "duplicate key (first at line 3)"),
    ("rule without name", GROUPS + "rules:\n  - all: [DPRK]  #!\n", "rules[0]", "a rule needs a name"),
    ("rule name is YAML false", GROUPS + "rules:\n  - name: off  #!\n    all: [DPRK]\n", "rules[0].name",
     "quote the name"),
    ("bad rule name", GROUPS + "rules:\n  - name: Big Rule  #!\n    all: [DPRK]\n", "rules[0].name",
     "lowercase letters"),
    ("unknown rule key", GROUPS + "rules:\n  - name: r\n    all: [DPRK]\n    nearby: 5  #!\n",
     "rules[r].nearby", "unknown key 'nearby' (did you mean 'near'?)"),
    ("unknown group reference", GROUPS + "rules:\n  - name: r\n    all:\n      - DPRK\n      - RUSIA  #!\n",
     "rules[r].all[1]", "unknown group 'RUSIA' (did you mean 'RUSSIA'?)"),
    ("unknown group, other case", GROUPS + "rules:\n  - name: r\n    all:\n      - dprk  #!\n",
     "rules[r].all[0]", "(did you mean 'DPRK'?)"),
    ("unknown group in a nested term", GROUPS + "rules:\n  - name: r\n    all:\n      - DPRK\n"
     "      - {any: [RUSSIA, {not: SPRT}]}  #!\n", "rules[r].all[1].any[1].not", "unknown group 'SPRT'"),
    ("rule without all or any", GROUPS + "rules:\n  - name: r  #!\n    none: [SPORT]\n", "rules[r]",
     "needs 'all' and/or 'any'"),
    ("rule that matches everything", GROUPS + "rules:\n  - name: r  #!\n    any: [{not: SPORT}]\n",
     "rules[r]", "would match items that mention none of its groups"),
    ("empty all", GROUPS + "rules:\n  - name: r\n    any: [DPRK]\n    all: []  #!\n", "rules[r].all",
     "is empty"),
    ("all not a list", GROUPS + "rules:\n  - name: r\n    all: DPRK  #!\n", "rules[r].all", "must be a list"),
    ("bad priority", GROUPS + "rules:\n  - name: r\n    all: [DPRK]\n    priority: urgent  #!\n",
     "rules[r].priority", "must be 'instant' or 'digest'"),
    ("bad enabled", GROUPS + "rules:\n  - name: r\n    all: [DPRK]\n    enabled: maybe  #!\n",
     "rules[r].enabled", "must be true or false"),
    ("bad near", GROUPS + "rules:\n  - name: r\n    all: [DPRK]\n    near: far  #!\n", "rules[r].near",
     "a number of words"),
    ("near zero", GROUPS + "rules:\n  - name: r\n    all: [DPRK]\n    near: 0  #!\n", "rules[r].near",
     "a number of words"),
    ("bad min_hits", GROUPS + "rules:\n  - name: r\n    all: [DPRK]\n    min_hits: -1  #!\n",
     "rules[r].min_hits", "from 1 to 100"),
    ("bad scope field", GROUPS + "rules:\n  - name: r\n    all: [DPRK]\n    scope:\n      - body  #!\n",
     "rules[r].scope[0]", "unknown field 'body'"),
    ("bad in", GROUPS + "rules:\n  - name: r\n    all:\n      - {group: DPRK, in: text}  #!\n",
     "rules[r].all[0].in", "must be 'title' or 'summary'"),
    ("bad min", GROUPS + "rules:\n  - name: r\n    all:\n      - {group: DPRK, min: 0}  #!\n",
     "rules[r].all[0].min", "from 1 to 100"),
    ("unknown term key", GROUPS + "rules:\n  - name: r\n    all:\n      - {group: DPRK, mni: 2}  #!\n",
     "rules[r].all[0].mni", "did you mean 'min'?"),
    ("in outside scope", GROUPS + "rules:\n  - name: r  #!\n    scope: [title]\n    all:\n"
     "      - {group: DPRK, in: summary}\n", "rules[r]", "'in: summary' is outside the rule's scope"),
    ("near across fields", GROUPS + "rules:\n  - name: r  #!\n    near: 5\n    all:\n"
     "      - {group: DPRK, in: title}\n      - {group: RUSSIA, in: summary}\n", "rules[r]",
     "'near' needs every term in one field"),
    ("mixed term keys", GROUPS + "rules:\n  - name: r\n    all:\n      - {any: [DPRK], group: RUSSIA}  #!\n",
     "rules[r].all[0]", "has that one key only"),
    ("bad example", GROUPS + "rules:\n  - name: r\n    all: [DPRK]\n    examples:\n      match:\n"
     "        - 42  #!\n", "rules[r].examples.match[0]", "an example is a string"),
    ("unknown examples key", GROUPS + "rules:\n  - name: r\n    all: [DPRK]\n    examples:\n"
     "      matches: [КНДР]  #!\n", "rules[r].examples.matches", "did you mean 'match'?"),
    ("duplicate rule name",
     GROUPS + "rules:\n  - name: r\n    all: [DPRK]\n  - name: r  #!\n    all: [DPRK]\n",
     "rules[r]", "rule 'r' is already defined at rules/x.yaml:"),
    ("YAML syntax error", "version: 1\ngroups:\n  X: [a\n  Y:  #!\n", "", "invalid YAML"),
    ("YAML alias bomb", "version: 1\ngroups:\n  X:\n    aliases: &a [x, y]\n  Y:\n    aliases: *a  #!\n",
     "", "aliases (*name) are not allowed"),
    ("not a mapping", "- just\n- a list\n", "", "expected a mapping"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "text", "path", "message"), ERRORS, ids=[c[0] for c in ERRORS])
def test_invalid_rule_file_is_reported_with_file_line_and_path(name: str, text: str, path: str, message: str) -> None:
    problems = problems_of(text)
    wanted = [p for p in problems if p.path == path and message in p.message]
    assert wanted, [str(p) for p in problems]
    expected_line = marked_line(text) if "#!" in text else wanted[0].line
    assert wanted[0].file == "rules/x.yaml"
    assert wanted[0].line == expected_line, str(wanted[0])
    assert str(wanted[0]).startswith(f"rules/x.yaml:{expected_line}: ")


def test_every_problem_is_reported_at_once() -> None:
    text = GROUPS + dedent(
        """\
        rules:
          - name: a
            all: [DPRKK]
            priority: now
          - name: b
            all: [DPRK]
            near: far
        """
    )
    problems = problems_of(text)
    assert {p.path for p in problems} == {"rules[a].all[0]", "rules[a].priority", "rules[b].near"}


def test_many_errors_in_one_group_are_all_listed() -> None:
    problems = problems_of("version: 1\ngroups:\n  X:\n    aliases: ['', ра*, 북, {re: '(a'}, ok]\n")
    assert [p.path for p in problems] == [f"groups.X.aliases[{i}]" for i in range(4)]


def test_too_many_aliases_in_a_group() -> None:
    aliases = ", ".join(f"w{i}" for i in range(MAX_ALIASES_PER_GROUP + 1))
    [problem] = problems_of(f"version: 1\ngroups:\n  X:\n    aliases: [{aliases}]\n")
    assert problem.path == "groups.X.aliases" and "the limit is 5000" in problem.message


def test_too_many_rules() -> None:
    rules = "".join(f"  - name: r{i}\n    all: [DPRK]\n" for i in range(MAX_RULES + 1))
    problems = problems_of(GROUPS + "rules:\n" + rules)
    assert any(p.path == "rules" and "the limit is 1000" in p.message for p in problems)


def test_duplicate_names_across_files_name_both_places(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(GROUPS + "rules:\n  - name: pair\n    all: [DPRK]\n", encoding="utf-8")
    b.write_text(
        "version: 1\ngroups:\n  DPRK:\n    aliases: [Пхеньян]\nrules:\n  - name: pair\n    all: [DPRK]\n",
        encoding="utf-8",
    )
    with pytest.raises(RuleError) as exc:
        load_rules([a, b])
    messages = {(p.file, p.line, p.path): p.message for p in exc.value.problems}
    assert messages[(str(b), 3, "groups.DPRK")] == f"group 'DPRK' is already defined at {a}:3"
    assert messages[(str(b), 6, "rules[pair]")] == f"rule 'pair' is already defined at {a}:12"


def test_rule_may_use_groups_of_another_file() -> None:
    base = parse_rule_text(GROUPS, "groups.yaml")
    rs = parse_rule_text("version: 1\nrules:\n  - name: r\n    all: [DPRK]\n", "r.yaml", others=base)
    assert rs.rule("r") is not None and "DPRK" in rs.groups


def test_a_deeply_nested_rule_file_is_a_problem_beside_the_others(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("version: 1\nrules:\n  - name: deep\n    all: " + "[" * 10_000 + "\n", encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - name: r\n    all: [NOPE]\n", encoding="utf-8")
    with pytest.raises(RuleError) as exc:
        load_rules([deep, bad])
    problems = {(p.file, p.message) for p in exc.value.problems}
    assert (str(deep), "nested too deeply (limit 100 levels)") in problems
    assert any(file == str(bad) and "NOPE" in message for file, message in problems), "the other file is checked too"


SOURCED = (
    GROUPS
    + """\
rules:
  - name: state_view
    all: [DPRK]
    source: {label: state-media}
  - name: not_wires
    all: [DPRK]
    source: {not_label: [wire, telegram]}
"""
)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ((), ["not_wires"]),  # no labels: not state media, and not a wire either
        (("state-media",), ["state_view", "not_wires"]),
        (("state-media", "wire"), ["state_view"]),
        (("think-tank",), ["not_wires"]),
    ],
)
def test_a_source_condition_requires_or_excludes_the_feeds_labels(labels: tuple[str, ...], expected: list[str]) -> None:
    from core.models import Item

    ruleset = parse_rule_text(SOURCED, "rules/x.yaml")
    item = Item("https://tass.example/rss", "1", "КНДР и Россия", "", labels=labels)
    assert [m.rule for m in ruleset.match(item)] == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{lable: state-media}", "unknown key"),
        ("{label: State Media}", "lower-case letters"),
        ("{label: []}", "must be a label or a list of labels"),
        ("state-media", "must be a mapping with 'label'"),
    ],
)
def test_a_bad_source_condition_is_a_clear_problem(source: str, message: str) -> None:
    text = GROUPS + f"rules:\n  - name: r\n    all: [DPRK]\n    source: {source}\n"
    found = problems_of(text)
    assert any(message in p.message and "source" in str(p) for p in found), [str(p) for p in found]
