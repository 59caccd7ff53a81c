"""Rule examples, checked when rules load: each ``examples.match`` text must match its rule and each
``examples.no_match`` text must not. A failure is a load error that shows why, e.g.::

    rules/x.yaml:57: rules[foo].examples.no_match[2]: matched but must not: 'КНДР и Россия …'
        (DPRK: «КНДР», RUSSIA: «Россия»)

Examples are evaluated against the whole compiled rule set (so a group edited in another file that
breaks this rule's examples is caught too), for every rule whether enabled or not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import Problem

if TYPE_CHECKING:
    from rules.engine import RuleSet

MAX_SHOWN = 80


def _shown(text: str) -> str:
    one_line = " ".join(text.split())
    return repr(one_line if len(one_line) <= MAX_SHOWN else one_line[: MAX_SHOWN - 1] + "…")


def check_examples(ruleset: RuleSet) -> list[Problem]:
    """Every example that does not behave as declared, as a problem with file and line."""
    problems: list[Problem] = []
    for rule in ruleset.rules:
        for ex in rule.examples_match:
            verdict = ruleset.evaluate(rule, ex.title, ex.summary)
            if not verdict.matched:
                problems.append(
                    Problem(
                        rule.file,
                        ex.line,
                        ex.path,
                        f"did not match but must: {_shown(ex.text)} ({verdict.reason})",
                    )
                )
        for ex in rule.examples_no_match:
            verdict = ruleset.evaluate(rule, ex.title, ex.summary)
            if verdict.matched:
                problems.append(
                    Problem(
                        rule.file,
                        ex.line,
                        ex.path,
                        f"matched but must not: {_shown(ex.text)} ({verdict.why_text()})",
                    )
                )
    return problems
