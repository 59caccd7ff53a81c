"""The RE2 pre-filter: a field with none of a regex's required literals skips the RE2 pass, and matching
is exactly what it was without the pre-filter."""

from __future__ import annotations

from textwrap import dedent

import pytest

from core.models import Item
from rules import parse_rule_text
from rules.engine import required_literals


@pytest.mark.parametrize(
    ("pattern", "literals"),
    [
        ("российско[-‐‑–]корейск", {"российско"}),
        ("미사일|포탄|파병", {"미사일", "포탄", "파병"}),
        ("(?:foo)?bar", {"bar"}),  # an optional part is not required
        ("x*yz", {"yz"}),
        ("(kim|putin)+ met", {" met"}),
        ("Ab(c|d)", {"ab"}),  # the text is lowercased: so are the literals
        ("т-\\d{2,3}", {"т-"}),
        ("ab|c.", {"ab", "c"}),
        ("\\d+", None),  # nothing literal: RE2 always runs
        ("[кх]ндр", {"ндр"}),  # a class breaks the run
        ("a?|b", None),
        ("\\pL+", None),  # syntax Python's parser does not read
    ],
)
def test_required_literals(pattern: str, literals: set[str] | None) -> None:
    found = required_literals(pattern)
    assert (set(found) if found is not None else None) == literals


GROUPS = """\
version: 1
groups:
  DPRK:
    kind: entity
    aliases: [КНДР, {re: 'северо[-‐‑–]?корейск'}]
  TIES:
    aliases: [{re: 'российско[-‐‑–]корейск'}]
  KOREAN:
    aliases: [{re: '미사일|파병'}]
rules:
  - name: ties
    all: [TIES]
  - name: korean
    all: [KOREAN]
  - name: dprk
    all: [DPRK]
"""
TEXTS = [
    "Российско-корейский договор вступил в силу",
    "российско–корейские учения",
    "Северокорейские войска в Курске",
    "북한 파병 논란",
    "Танк Т-90 и т-72 на параде",  # no literal of any regex: the RE2 pass is skipped
    "Погода в Москве: без осадков",
    "северокорейская делегация",  # the optional hyphen: no literal spans it
]


def test_matches_are_the_same_with_and_without_the_prefilter() -> None:
    rules = parse_rule_text(dedent(GROUPS), "t.yaml")
    item = [Item("https://f.example/", str(n), text, "", None, None, None, "f") for n, text in enumerate(TEXTS)]
    with_filter = [rules.match(i) for i in item]
    sets = [s for s in vars(rules._scanner).values() if hasattr(s, "literals")]
    assert sets and any(s.literals for s in sets)  # the pre-filter is on (4 literals: at most 4 a set)
    for s in sets:
        s.literals = None
    without = [rules.match(i) for i in item]
    assert with_filter == without
    assert [bool(m) for m in with_filter] == [True, True, True, True, False, False, True]


def test_no_prefilter_where_the_literal_checks_would_cost_as_much_as_re2() -> None:
    many = (
        "version: 1\ngroups:\n  K: {aliases: [{re: '미사일|포탄|탄약|파병|잠수함|전투기|군사'}]}\n"
        "rules:\n  - {name: k, all: [K]}\n"
    )
    rules = parse_rule_text(many, "k.yaml")
    sets = [s for s in vars(rules._scanner).values() if hasattr(s, "literals") and s.regexes]
    assert sets and all(s.literals is None for s in sets)  # 7 substring scans: RE2 runs instead
    text = Item("https://f.example/", "1", "북한 잠수함 공개", "", None, None, None, "f")
    assert [m.rule for m in rules.match(text)] == ["k"]
