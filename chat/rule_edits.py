"""Rule edits from chat: change a rule file's text, validate it, back-test it, then write it atomically.

An edit is a :class:`Proposal` until someone confirms it: the new text has been parsed together with
the other loaded files (every error with its line, every rule's examples run) and back-tested on the
items stored in the last 7 days. Applying it keeps the previous text in the store's rule history (for
``/undo``) and replaces the file with a temp-file-and-rename, so a crash leaves the old or the new file,
never half of one. At most :data:`MAX_PENDING` proposals wait for confirmation (the oldest is dropped),
each for :data:`PROPOSAL_TTL`; one whose file changed since it was made is refused when confirmed.

The YAML is edited with ruamel.yaml's round-trip mode, so comments and layout that people wrote by
hand survive; the snippets users send are first loaded by the strict loader (no
aliases, no tags, size cap, nesting limit — so the round-trip loader never sees what it could not load).
"""

from __future__ import annotations

import io
import os
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML

from core.errors import Problem, RuleError
from core.models import Item
from core.yamlsrc import YamlProblem, load_yaml
from rules import RuleSet, parse_rule_text

MAX_SNIPPET = 20_000
MAX_ALIASES_PER_EDIT = 50
PROPOSAL_TTL = timedelta(hours=1)
MAX_PENDING = 20


class EditError(ValueError):
    """The edit cannot be built (unknown rule or group, malformed snippet); shown to the user."""


@dataclass(frozen=True, slots=True)
class Proposal:
    token: str
    action: str  # e.g. "rule_edit dprk_russia_military"
    file: Path
    old_text: str
    new_text: str
    ruleset: RuleSet
    added: tuple[Item, ...]  # items of the last 7 days that would now match some rule
    removed: tuple[Item, ...]  # … that match now and would not any more
    author: int


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: keeps comments, order and quoting
    yaml.preserve_quotes = True
    yaml.width = 120
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _load(text: str) -> Any:
    return _yaml().load(text)


def _dump(data: Any) -> str:
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()


def _snippet(text: str, what: str) -> Any:
    """A user's YAML snippet: checked by the strict loader first, then loaded round-trip."""
    if len(text) > MAX_SNIPPET:
        raise EditError(f"The {what} is over {MAX_SNIPPET} characters.")
    if not text.strip():
        raise EditError(f"Send the {what} as YAML after the command (on the next lines).")
    try:
        load_yaml(text, what)
        return _load(text)
    except YamlProblem as exc:  # includes nesting deeper than core.yamlsrc.MAX_YAML_DEPTH
        raise EditError(str(exc.problem)) from None


def file_of_rule(ruleset: RuleSet, name: str) -> Path:
    for source in ruleset.sources:
        if any(rule.name == name for rule in source.rules):
            return Path(source.file)
    raise EditError(f"There is no rule named {name!r}.")


def file_of_group(ruleset: RuleSet, name: str) -> Path:
    for source in ruleset.sources:
        if any(group.name == name for group in source.groups):
            return Path(source.file)
    raise EditError(f"There is no group named {name!r}.")


def _rules_list(data: Any) -> Any:
    rules = data.get("rules") if data is not None else None
    if rules is None:
        data["rules"] = rules = []
    return rules


def _index(rules: Any, name: str) -> int:
    for i, rule in enumerate(rules):
        if isinstance(rule, dict) and rule.get("name") == name:
            return i
    raise EditError(f"There is no rule named {name!r} in that file.")


def rule_yaml(text: str, name: str) -> str:
    """The YAML of one rule as it stands in the file (with its examples)."""
    data = _load(text)
    rules = _rules_list(data)
    return _dump([rules[_index(rules, name)]])


def show_rule(ruleset: RuleSet, name: str) -> str:
    return rule_yaml(file_of_rule(ruleset, name).read_text(encoding="utf-8"), name)


def add_rule(text: str, snippet: str) -> tuple[str, str]:
    new = _snippet(snippet, "rule")
    items = new if isinstance(new, list) else [new]
    if not items or not all(isinstance(r, dict) and isinstance(r.get("name"), str) for r in items):
        raise EditError("A rule is a YAML mapping with at least a name, e.g. name: my_rule")
    data = _load(text)
    rules = _rules_list(data)
    for rule in items:
        rules.append(rule)
    return _dump(data), "rule_add " + ", ".join(str(r["name"]) for r in items)


def edit_rule(text: str, name: str, snippet: str) -> tuple[str, str]:
    new = _snippet(snippet, "rule")
    if isinstance(new, list) and len(new) == 1:
        new = new[0]
    if not isinstance(new, dict):
        raise EditError("Send one rule as a YAML mapping.")
    new.setdefault("name", name)
    data = _load(text)
    rules = _rules_list(data)
    rules[_index(rules, name)] = new
    return _dump(data), f"rule_edit {name}"


def delete_rule(text: str, name: str) -> tuple[str, str]:
    data = _load(text)
    rules = _rules_list(data)
    del rules[_index(rules, name)]
    return _dump(data), f"rule_delete {name}"


def split_aliases(text: str) -> list[str]:
    """Aliases separated by commas or new lines (so multi-word aliases work); else by spaces."""
    parts = text.replace("\n", ",").split(",") if ("," in text or "\n" in text) else text.split()
    aliases = [p.strip() for p in parts if p.strip()]
    if not aliases:
        raise EditError("Give at least one alias.")
    if len(aliases) > MAX_ALIASES_PER_EDIT:
        raise EditError(f"At most {MAX_ALIASES_PER_EDIT} aliases per edit.")
    return aliases


def change_aliases(text: str, group: str, aliases: Sequence[str], *, add: bool) -> tuple[str, str]:
    data = _load(text)
    groups = data.get("groups") if data is not None else None
    if not groups or group not in groups:
        raise EditError(f"There is no group named {group!r} in that file.")
    node = groups[group]
    current = node.get("aliases") if isinstance(node, dict) else node
    if current is None:
        raise EditError(f"Group {group!r} has no alias list.")
    if add:
        for alias in aliases:
            if alias not in current:
                current.append(alias)
    else:
        missing = [a for a in aliases if a not in current]
        if missing:
            raise EditError(f"Not aliases of {group}: {', '.join(missing)}")
        for alias in aliases:
            current.remove(alias)
    verb = "alias_add" if add else "alias_remove"
    return _dump(data), f"{verb} {group}: {', '.join(aliases)}"


def backtest(old: RuleSet, new: RuleSet, items: Sequence[Item]) -> tuple[tuple[Item, ...], tuple[Item, ...]]:
    added, removed = [], []
    for item in items:
        before, after = bool(old.match(item)), bool(new.match(item))
        if after and not before:
            added.append(item)
        elif before and not after:
            removed.append(item)
    return tuple(added), tuple(removed)


def propose(
    current: RuleSet, file: Path, old_text: str, new_text: str, action: str, author: int, recent: Sequence[Item]
) -> Proposal:
    """Validate ``new_text`` as ``file`` with the other loaded files and back-test it. Raises RuleError."""
    ruleset = parse_rule_text(new_text, str(file), others=current)
    added, removed = backtest(current, ruleset, recent)
    return Proposal(secrets.token_hex(6), action, file, old_text, new_text, ruleset, added, removed, author)


@dataclass(slots=True)
class Pending:
    """A proposal awaiting confirmation; once expired only the token's entry is kept, to say so."""

    made_at: datetime
    proposal: Proposal | None


def keep_pending(pending: dict[str, Pending], proposal: Proposal, now: datetime) -> None:
    """Hold ``proposal`` until confirmed: expired ones let go of their rules, the oldest beyond
    :data:`MAX_PENDING` are dropped."""
    for entry in pending.values():
        if now - entry.made_at > PROPOSAL_TTL:
            entry.proposal = None
    pending[proposal.token] = Pending(now, proposal)
    while len(pending) > MAX_PENDING:
        del pending[next(iter(pending))]  # dicts keep insertion order: this is the oldest


def take_pending(pending: dict[str, Pending], token: str, now: datetime) -> Proposal | Literal["expired"] | None:
    """The proposal ``token`` names, removed from ``pending``; "expired" after :data:`PROPOSAL_TTL`; None
    when there is none (applied, cancelled or dropped)."""
    entry = pending.pop(token, None)
    if entry is None:
        return None
    if entry.proposal is None or now - entry.made_at > PROPOSAL_TTL:
        return "expired"
    return entry.proposal


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash leaves either the old file or the new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def problems_text(error: RuleError, limit: int = 10) -> list[str]:
    shown: list[Problem] = list(error.problems[:limit])
    lines = [str(p) for p in shown]
    if len(error.problems) > limit:
        lines.append(f"… and {len(error.problems) - limit} more")
    return lines
