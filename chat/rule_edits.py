"""Rule edits from chat: change a rule file's text, validate it, back-test it, then write it atomically.

An edit is a :class:`Proposal` until someone confirms it: the new text has been parsed together with
the other loaded files (every error with its line, every rule's examples run) and back-tested on the
items stored in the last 7 days — overall, and per subscription (what each chat would have received
before and after, :class:`Backtest`; a structured result, so the reply and later fields are built from
it). Applying it keeps the previous text in the store's rule history (for ``/undo``) and replaces the
file with a temp-file-and-rename, so a crash leaves the old or the new file, never half of one. At most
:data:`MAX_PENDING` proposals wait for confirmation (the oldest is dropped), each for
:data:`PROPOSAL_TTL`.

Nothing an edit does to delivery is silent:
- a rule it deletes or renames is followed through the subscriptions (:meth:`Proposal.follow_updates`,
  applied in the same store transaction as the history entry, so ``/undo`` restores them), or the edit
  is refused (:func:`blocked_subscriptions`): a chat that follows only that rule would fall back to all
  rules, and config.yaml's subscriptions are not rewritten from chat;
- an edit that would send far more (:func:`surge`) needs a second press;
- a proposal remembers the text of every rule file (:func:`snapshot`) and is refused at apply time if
  any of them changed (:func:`changed_files`): it was validated against files that are gone, and its
  RuleSet would silently drop the other change from the running rules.

The YAML is edited as text, not dumped whole: ruamel.yaml's round-trip dump of the whole document
rewrote five unrelated hunks of rules/dprk_russia.yaml on the first ``/rule_add`` (``{all: [...]}``
inside a flow list lost its braces; long flow lists were re-wrapped), and neither ``width`` nor the
flow-style settings prevent both. So only the edited rule (or the new rule, or the alias items) is
dumped, and spliced in at its own line range found from the node's line marks; the result is loaded
back and compared with the edited document, and only an unusual layout falls back to the whole dump.
The snippets users send are first loaded by the strict loader (no aliases, no tags, size cap, nesting
limit — so the round-trip loader never sees what it could not load).
"""

from __future__ import annotations

import io
import os
import secrets
import tempfile
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq

from core.errors import Problem, RuleError
from core.models import Item
from core.yamlsrc import YamlProblem, load_yaml
from rules import RuleSet, parse_rule_text
from store import Subscription

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
    effect: Backtest
    author: int
    files: Mapping[str, str | None]  # every rule file's text when proposed: applied only if all are unchanged
    renames: Mapping[str, str | None] = field(default_factory=dict)  # rules it renames (→ new) or deletes (→ None)

    def follow_updates(self, subs: Sequence[Subscription]) -> dict[str, tuple[str, ...]]:
        """The subscriptions whose rule lists the edit changes: chat → its rule list after the edit."""
        updates = ((s, follow_after(s.rules, self.renames)) for s in subs)
        return {s.chat_id: rules for s, rules in updates if rules != s.rules}

    @property
    def added(self) -> tuple[Item, ...]:
        return self.effect.added

    @property
    def removed(self) -> tuple[Item, ...]:
        return self.effect.removed


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


@dataclass(frozen=True, slots=True)
class Edit:
    """A rule file's new text, what it does, and the rules it renames (old → new) or deletes (old → None)."""

    text: str
    action: str
    renames: dict[str, str | None] = field(default_factory=dict)


# -- splicing: only the edited lines change (see the module docstring) ---------------------------------


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_filler(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _item_lines(lines: list[str], start: int) -> tuple[int, int, int] | None:
    """(dash column, first line, end line) of the block-sequence item starting on line ``start``: it goes
    on while lines are blank, comments or indented deeper than its dash; blank and comment lines at its
    end belong to what follows. None if the line does not start with a dash."""
    if start >= len(lines) or not lines[start].lstrip(" ").startswith("-"):
        return None
    col = _indent(lines[start])
    end = start + 1
    while end < len(lines) and (_is_filler(lines[end]) or _indent(lines[end]) > col):
        end += 1
    while end > start + 1 and _is_filler(lines[end - 1]):
        end -= 1
    return col, start, end


def _block(obj: Any, col: int) -> list[str]:
    """``obj`` dumped as one block-sequence item with its dash at column ``col``."""
    text = textwrap.dedent(_dump([obj]))
    return [(" " * col + line) if line.strip() else line for line in text.splitlines(keepends=True)]


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return [(_plain(k), _plain(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _finish(text: str, lines: list[str] | None, data: Any) -> str:
    """The spliced ``lines`` if they load to ``data``; else the whole document dumped."""
    if lines is not None:
        spliced = "".join(lines)
        try:
            if _plain(_load(spliced)) == _plain(data):
                return spliced
        except Exception:  # a splice that does not even load: fall back to the dump
            pass
    return _dump(data)


def _with_newline(lines: list[str], at: int) -> None:
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"


def rule_yaml(text: str, name: str) -> str:
    """The YAML of one rule as it stands in the file (with its examples)."""
    data = _load(text)
    rules = _rules_list(data)
    return _dump([rules[_index(rules, name)]])


def show_rule(ruleset: RuleSet, name: str) -> str:
    return rule_yaml(file_of_rule(ruleset, name).read_text(encoding="utf-8"), name)


def _rule_span(lines: list[str], rules: Any, index: int) -> tuple[int, int, int] | None:
    if rules.fa.flow_style():
        return None
    return _item_lines(lines, rules.lc.item(index)[0])


def add_rule(text: str, snippet: str) -> Edit:
    new = _snippet(snippet, "rule")
    items = new if isinstance(new, list) else [new]
    if not items or not all(isinstance(r, dict) and isinstance(r.get("name"), str) for r in items):
        raise EditError("A rule is a YAML mapping with at least a name, e.g. name: my_rule")
    data = _load(text)
    rules = _rules_list(data)
    span = _rule_span(text.splitlines(keepends=True), rules, len(rules) - 1) if len(rules) else None
    for rule in items:
        rules.append(rule)
    lines: list[str] | None = None
    if span is not None:
        col, _, end = span
        lines = text.splitlines(keepends=True)
        _with_newline(lines, end)
        added = [line for rule in items for line in ["\n", *_block(rule, col)]]
        lines[end:end] = added
    return Edit(_finish(text, lines, data), "rule_add " + ", ".join(str(r["name"]) for r in items))


def edit_rule(text: str, name: str, snippet: str) -> Edit:
    new = _snippet(snippet, "rule")
    if isinstance(new, list) and len(new) == 1:
        new = new[0]
    if not isinstance(new, dict):
        raise EditError("Send one rule as a YAML mapping.")
    if "name" not in new:
        new.insert(0, "name", name)  # type: ignore[attr-defined]  # a round-trip CommentedMap
    data = _load(text)
    rules = _rules_list(data)
    index = _index(rules, name)
    span = _rule_span(text.splitlines(keepends=True), rules, index)
    rules[index] = new
    lines: list[str] | None = None
    if span is not None:
        col, start, end = span
        lines = text.splitlines(keepends=True)
        _with_newline(lines, end)
        lines[start:end] = _block(new, col)
    renamed = str(new["name"])
    renames: dict[str, str | None] = {name: renamed} if renamed != name else {}
    action = f"rule_edit {name}" + (f" (renamed {renamed})" if renames else "")
    return Edit(_finish(text, lines, data), action, renames)


def delete_rule(text: str, name: str) -> Edit:
    data = _load(text)
    rules = _rules_list(data)
    index = _index(rules, name)
    span = _rule_span(text.splitlines(keepends=True), rules, index) if len(rules) > 1 else None
    del rules[index]
    lines: list[str] | None = None
    if span is not None:
        _col, start, end = span
        lines = text.splitlines(keepends=True)
        while end < len(lines) and not lines[end].strip():  # the blank lines that separated it go too
            end += 1
        del lines[start:end]
    return Edit(_finish(text, lines, data), f"rule_delete {name}", {name: None})


def split_aliases(text: str) -> list[str]:
    """Aliases separated by commas or new lines (so multi-word aliases work); else by spaces."""
    parts = text.replace("\n", ",").split(",") if ("," in text or "\n" in text) else text.split()
    aliases = [p.strip() for p in parts if p.strip()]
    if not aliases:
        raise EditError("Give at least one alias.")
    if len(aliases) > MAX_ALIASES_PER_EDIT:
        raise EditError(f"At most {MAX_ALIASES_PER_EDIT} aliases per edit.")
    return aliases


def _flow_end(line: str, col: int) -> int | None:
    """The index after the ``]`` closing the flow list that opens at ``line[col]``, if on this line."""
    depth, quote = 0, ""
    for i in range(col, len(line)):
        char = line[i]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


Span = tuple[int, int, int]  # (dash column, first line, end line) of a block-sequence item


def _item_spans(lines: list[str], seq: Any) -> list[Span] | None:
    """Each item's span in a block sequence, read before the sequence is changed (the marks are not
    renumbered when items are removed); None for a flow or empty sequence or an unusual layout."""
    if not isinstance(seq, CommentedSeq) or seq.fa.flow_style() or not seq:
        return None
    spans = [_item_lines(lines, seq.lc.item(i)[0]) for i in range(len(seq))]
    return None if any(span is None for span in spans) else [span for span in spans if span is not None]


def _alias_lines(text: str, current: Any, before: list[Any], spans: list[Span] | None) -> list[str] | None:
    """``text`` with the alias list ``current`` (it held ``before``, at ``spans``) changed in place: block
    lists get or lose item lines, a one-line flow list is rewritten on its line."""
    lines = text.splitlines(keepends=True)
    if isinstance(current, CommentedSeq) and current.fa.flow_style():
        line, col = current.lc.line, current.lc.col
        end = _flow_end(lines[line], col) if line < len(lines) else None
        if end is None:
            return None
        flow = CommentedSeq(list(current))
        flow.fa.set_flow_style()
        out = io.StringIO()
        _yaml().dump(flow, out)
        lines[line] = lines[line][:col] + out.getvalue().strip() + lines[line][end:]
        return lines
    if spans is None or not current:
        return None
    kept = {id(v) for v in current}
    gone = [span for value, span in zip(before, spans, strict=True) if id(value) not in kept]
    col, _, at = spans[-1]
    added = [v for v in current if all(v is not b for b in before)]
    if added:
        _with_newline(lines, at)
        lines[at:at] = [line for v in added for line in _block(v, col)]
    for _col, start, end in reversed(gone):
        del lines[start:end]
    return lines


def change_aliases(text: str, group: str, aliases: Sequence[str], *, add: bool) -> Edit:
    data = _load(text)
    groups = data.get("groups") if data is not None else None
    if not groups or group not in groups:
        raise EditError(f"There is no group named {group!r} in that file.")
    node = groups[group]
    current = node.get("aliases") if isinstance(node, dict) else node
    if current is None:
        raise EditError(f"Group {group!r} has no alias list.")
    before = list(current)
    spans = _item_spans(text.splitlines(keepends=True), current)
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
    lines = _alias_lines(text, current, before, spans)
    return Edit(_finish(text, lines, data), f"{verb} {group}: {', '.join(aliases)}")


@dataclass(frozen=True, slots=True)
class SubscriptionEffect:
    """What one subscription would have received from the items of the back-test, before and after."""

    chat: str
    title: str | None
    rules_before: tuple[str, ...]  # empty = all rules
    rules_after: tuple[str, ...]
    before: tuple[Item, ...]
    after: tuple[Item, ...]

    @property
    def gained(self) -> tuple[Item, ...]:
        kept = {id(i) for i in self.before}
        return tuple(i for i in self.after if id(i) not in kept)

    @property
    def lost(self) -> tuple[Item, ...]:
        kept = {id(i) for i in self.after}
        return tuple(i for i in self.before if id(i) not in kept)


@dataclass(frozen=True, slots=True)
class Backtest:
    """An edit's effect on the items of the last 7 days: overall, and per subscription."""

    items: int  # items back-tested
    added: tuple[Item, ...]  # items that would now match some rule
    removed: tuple[Item, ...]  # … that match now and would not any more
    subscriptions: tuple[SubscriptionEffect, ...]

    @property
    def sent_before(self) -> int:
        return sum(len(s.before) for s in self.subscriptions)

    @property
    def sent_after(self) -> int:
        return sum(len(s.after) for s in self.subscriptions)


SURGE_FACTOR = 3  # an edit that would send more than 3× what the subscriptions got in 7 days …
SURGE_MIN = 5  # … (and at least this many more items) …
SURGE_ITEMS = 50  # … or more than 50 more items, needs a second confirmation


def surge(
    effect: Backtest, *, factor: float = SURGE_FACTOR, minimum: int = SURGE_MIN, items: int = SURGE_ITEMS
) -> bool:
    """Whether the edit would send so much more that it needs an explicit second confirmation."""
    before, after = effect.sent_before, effect.sent_after
    return after - before > items or (after > factor * before and after - before >= minimum)


def follow_after(rules: tuple[str, ...], renames: Mapping[str, str | None]) -> tuple[str, ...]:
    """A subscription's rule list once renamed rules carry their new name and deleted ones are gone."""
    out: list[str] = []
    for name in rules:
        new = renames.get(name, name)
        if new is not None and new not in out:
            out.append(new)
    return tuple(out)


def removed_rules(old: RuleSet, new: RuleSet, renames: Mapping[str, str | None]) -> dict[str, str | None]:
    """Every rule name the edit takes away: to its new name when renamed, else to None."""
    names = {r.name for r in new.rules}
    return {r.name: renames.get(r.name) for r in old.rules if r.name not in names}


def blocked_subscriptions(subs: Sequence[Subscription], renames: Mapping[str, str | None]) -> list[str]:
    """Why the edit cannot update these subscriptions (one line each): config.yaml's are not edited from
    chat, and one that would be left with no rule would silently get every rule."""
    problems = []
    for sub in subs:
        touched = [r for r in sub.rules if r in renames]
        if not touched:
            continue
        who = f"{sub.chat_title or sub.chat_id} ({sub.chat_id})" if sub.chat_title else sub.chat_id
        if sub.source == "config":
            problems.append(f"{who} follows {', '.join(touched)} in config.yaml: change config.yaml first")
        elif not follow_after(sub.rules, renames):
            problems.append(
                f"{who} follows only {', '.join(touched)}: /subscribe it to other rules (or /unsubscribe it) first"
            )
    return problems


def _receives(mode: str, follows: tuple[str, ...], matched: tuple[tuple[str, str], ...]) -> bool:
    """Whether a subscription gets an item with these (rule, priority) matches, as the store queues it:
    a followed rule's match goes to the digest; an "instant"-only subscription gets instant ones only."""
    followed = [priority for rule, priority in matched if not follows or rule in follows]
    return "instant" in followed if mode == "instant" else bool(followed)


def backtest(
    old: RuleSet,
    new: RuleSet,
    items: Sequence[Item],
    subs: Sequence[Subscription] = (),
    renames: Mapping[str, str | None] | None = None,
) -> Backtest:
    """Match ``items`` with both rule sets: which items gain or lose a match, and what each subscription
    (its rule list updated by ``renames``) would have received before and after."""
    renames = dict(renames or {})
    before = [tuple((m.rule, m.priority) for m in old.match(item)) for item in items]
    after = [tuple((m.rule, m.priority) for m in new.match(item)) for item in items]
    added = tuple(i for i, b, a in zip(items, before, after, strict=True) if a and not b)
    removed = tuple(i for i, b, a in zip(items, before, after, strict=True) if b and not a)
    effects = []
    for sub in subs:
        if sub.paused:
            continue
        rules_after = follow_after(sub.rules, renames)
        effects.append(
            SubscriptionEffect(
                sub.chat_id,
                sub.chat_title,
                sub.rules,
                rules_after,
                tuple(i for i, m in zip(items, before, strict=True) if _receives(sub.mode, sub.rules, m)),
                tuple(i for i, m in zip(items, after, strict=True) if _receives(sub.mode, rules_after, m)),
            )
        )
    return Backtest(len(items), added, removed, tuple(effects))


def snapshot(paths: Iterable[Path]) -> dict[str, str | None]:
    """The text of each rule file now (None when it cannot be read), to tell later whether any changed."""
    texts: dict[str, str | None] = {}
    for path in paths:
        try:
            texts[str(Path(path))] = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            texts[str(Path(path))] = None
    return texts


def changed_files(proposal: Proposal, paths: Iterable[Path]) -> list[str]:
    """The rule files that differ from when ``proposal`` was made (changed, added or removed)."""
    now = snapshot({*paths, *(Path(p) for p in proposal.files)})
    return sorted(Path(p).name for p in now if now[p] != proposal.files.get(p))


def propose(
    current: RuleSet,
    file: Path,
    old_text: str,
    edit: Edit,
    author: int,
    recent: Sequence[Item],
    subs: Sequence[Subscription] = (),
    files: Mapping[str, str | None] | None = None,
) -> Proposal:
    """Validate the edit's text as ``file`` with the other loaded files and back-test it, per
    subscription. Raises RuleError (invalid) or EditError (it would break subscriptions)."""
    ruleset = parse_rule_text(edit.text, str(file), others=current)
    renames = removed_rules(current, ruleset, edit.renames)
    blocked = blocked_subscriptions(subs, renames)
    if blocked:
        raise EditError(
            f"{edit.action} would stop deliveries; nothing was changed. Subscriptions follow the rule:\n"
            + "\n".join(f"• {line}" for line in blocked)
        )
    effect = backtest(current, ruleset, recent, subs, renames)
    snap = dict(files) if files is not None else snapshot(current.files)
    return Proposal(
        secrets.token_hex(6), edit.action, file, old_text, edit.text, ruleset, effect, author, snap, renames
    )


@dataclass(slots=True)
class Pending:
    """A proposal awaiting confirmation; once expired only the token's entry is kept, to say so."""

    made_at: datetime
    proposal: Proposal | None


def keep_pending(
    pending: dict[str, Pending], proposal: Proposal, now: datetime, *, made_at: datetime | None = None
) -> None:
    """Hold ``proposal`` until confirmed (``made_at``: when it was first proposed, for one put back
    after a first press): expired ones let go of their rules, the oldest beyond :data:`MAX_PENDING`
    are dropped."""
    for entry in pending.values():
        if now - entry.made_at > PROPOSAL_TTL:
            entry.proposal = None
    pending[proposal.token] = Pending(made_at or now, proposal)
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
