"""How much of a title or summary is kept and matched (core.models.MAX_TEXT and cap_text)."""

from __future__ import annotations

import pytest

from core.models import MAX_TEXT, cap_text
from rules import parse_rule_text

RULES = "version: 1\ngroups:\n  RU: {aliases: [Russia]}\nrules:\n  - name: ru\n    all: [RU]\n"


@pytest.mark.parametrize(
    ("name", "text", "kept"),
    [
        ("short text is whole", "North Korea and Russia", "North Korea and Russia"),
        ("exactly the cap is whole", "a " * (MAX_TEXT // 2), "a " * (MAX_TEXT // 2)),
        ("cut between words", "x" * (MAX_TEXT - 1) + " tail", "x" * (MAX_TEXT - 1) + " "),
        ("a word across the cap is dropped", "y " * (MAX_TEXT // 2 - 2) + "Russians", "y " * (MAX_TEXT // 2 - 2)),
    ],
)
def test_cap_text_keeps_the_first_max_text_characters_and_no_half_word(name: str, text: str, kept: str) -> None:
    assert cap_text(text) == kept, name
    assert len(cap_text(text)) <= MAX_TEXT


def test_a_word_cut_by_the_cap_does_not_match_as_a_shorter_word() -> None:
    ruleset = parse_rule_text(RULES, "r.yaml")
    before_cap = "y " * (MAX_TEXT // 2 - 5) + "Russia"  # ends inside the cap: matched
    assert [m.rule for m in ruleset.match_text("", before_cap)] == ["ru"]
    across = "y " * (MAX_TEXT // 2 - 3) + "Russians"  # "Russia|ns" straddles character 20,000: not read
    assert len(across) > MAX_TEXT and across[:MAX_TEXT].endswith("Russia")
    assert ruleset.match_text("", across) == []
