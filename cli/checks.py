"""``bot.py check``: validate everything a run would load, and report every problem at once.

Also the two openers every command shares (``load_config_or_report``, ``open_store_or_report``): a bad
config or store is the same clear message whichever command meets it. What the running bot checks too
(``storage_problem``, ``print_problems``) lives below, in store/ and core/, so service/ never imports cli/.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Collection
from pathlib import Path
from typing import IO, TYPE_CHECKING

from core.config import Config, config_doc, load_config, rule_files_despite_problems
from core.dburl import redact
from core.errors import Problem, ProblemError, print_problems
from core.yamlsrc import PathKey, YamlDoc, format_path
from store import Store, StoreError
from store.db import storage_problem

if TYPE_CHECKING:
    from rules import RuleSet


def load_config_or_report(path: str | Path, errors: IO[str] | None = None) -> Config | None:
    """The config at ``path``, or None after printing every problem in it (for the CLI commands)."""
    try:
        return load_config(path)
    except ProblemError as exc:
        print_problems("configuration", exc, errors)
        return None


def open_store_or_report(config: Config, errors: IO[str] | None = None) -> Store | None:
    """The config's store, or None after printing why it cannot be opened (for the CLI commands)."""
    try:
        return Store.open(config.storage_target)
    except StoreError as exc:
        print(f"storage: {exc}", file=errors or sys.stderr)
        return None


def configured_store_or_report(config_path: str, errors: IO[str] | None = None) -> Store | None:
    """The store of the config at ``config_path``, or None after printing why the config or the store
    cannot be used (the commands that need only the store: search, export, labels)."""
    config = load_config_or_report(config_path, errors)
    return None if config is None else open_store_or_report(config, errors)


def store_problem(config: Config) -> str | None:
    """Why the configured store cannot be used: for PostgreSQL, whether it answers at all ("cannot
    connect to postgresql://user@host/db: <reason>"; nothing is migrated, ``check`` only reads); for
    SQLite, :func:`storage_problem`."""
    if config.storage_url is None:
        return storage_problem(config.storage_path)
    from store.backend import backend_for

    try:
        backend_for(config.storage_url).connect().close()
    except StoreError as exc:
        return str(exc)
    return None


def _did_you_mean(name: str, candidates: Collection[str]) -> str:
    lower = {c.lower(): c for c in candidates}
    if name.lower() in lower:
        return f" (did you mean {lower[name.lower()]!r}?)"
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def subscription_rule_problems(config: Config, rule_names: Collection[str]) -> list[Problem]:
    """A configured subscription that follows a rule no rule file defines would silently receive nothing
    from it: each such name is a problem, with the closest defined name."""
    doc = config_doc(config)
    problems = []
    for i, sub in enumerate(config.subscriptions):
        for j, name in enumerate(_raw_rule_names(doc, i, sub.rules)):
            if name != "all" and name not in rule_names:
                path = ("subscriptions", i, "rules", j)
                message = f"unknown rule {name!r}{_did_you_mean(name, rule_names)}; the chat would get nothing from it"
                problems.append(
                    doc.problem(path, message) if doc else Problem(str(config.path), None, "subscriptions", message)
                )
    return problems


def _raw_rule_names(doc: YamlDoc | None, index: int, parsed: tuple[str, ...]) -> list[str]:
    """The names as written (positions matter for line numbers; "all" was dropped when parsing)."""
    try:
        raw = doc.data["subscriptions"][index]["rules"] if doc else None
    except (KeyError, IndexError, TypeError):
        raw = None
    return [str(x) for x in raw] if isinstance(raw, list) else list(parsed)


def config_warnings(config: Config, ruleset: RuleSet | None) -> list[Problem]:
    """What is valid but probably not meant: no admins, no subscriptions, a rule file without rules."""
    doc = config_doc(config)

    def warn(path: PathKey, message: str) -> Problem:
        if doc is not None and tuple(path) in doc.lines:
            return doc.problem(path, message)
        return Problem(str(config.path), None, format_path(path), message)  # the key is absent: no line

    warnings = []
    if not config.admins:
        warnings.append(
            warn(("admins",), "no admins: nobody can edit rules or feeds from chat, and nobody is told of failures")
        )
    if not config.subscriptions:
        warnings.append(
            warn(("subscriptions",), "no subscriptions: alerts go only to chats that subscribe with /subscribe")
        )
    if ruleset is not None:
        with_rules = {rule.file for rule in ruleset.rules}
        for path in config.rule_files:
            if str(path) not in with_rules:
                warnings.append(Problem(str(path), None, "rules", "no rules in this file (it only adds groups)"))
    return warnings


def check_all(config_path: str | Path) -> int:
    """Print every problem in the config and the rules (all of them, in one run, even when the config
    itself has problems) and every warning; 0 when there are no problems (warnings included)."""
    from rules import load_rules

    problems: list[Problem] = []
    config: Config | None = None
    try:
        config = load_config(config_path)
    except ProblemError as exc:
        problems.extend(exc.problems)
    rule_files = config.rule_files if config is not None else rule_files_despite_problems(config_path)
    ruleset = None
    try:
        ruleset = load_rules(rule_files)
    except ProblemError as exc:
        problems.extend(exc.problems)
    warnings: list[Problem] = []
    if config is not None:
        if ruleset is not None:
            problems.extend(subscription_rule_problems(config, {rule.name for rule in ruleset.rules}))
        message = store_problem(config)
        if message:
            key = "storage.url" if config.storage_url is not None else "storage.path"
            problems.append(Problem(str(config.path), None, key, message))
        warnings = config_warnings(config, ruleset)
    if warnings:
        print(f"{len(warnings)} warning(s):", file=sys.stderr)
        for warning in warnings:
            print(f"  {warning}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    assert config is not None and ruleset is not None
    print(
        f"OK: {config.path}: {len(config.feeds)} feeds, {len(config.subscriptions)} configured "
        f"subscriptions; {len(config.rule_files)} rule file(s) with {len(ruleset.rules)} rules and "
        f"{len(ruleset.groups)} groups; store at {redact(str(config.storage_target))}"
        + (f"; {len(warnings)} warning(s)" if warnings else "")
    )
    return 0
