"""Rule files → frozen dataclasses, with every problem collected (file, line, rule/group name).

This module reads the YAML (through :func:`core.yamlsrc.load_yaml`: safe types, no aliases, size cap,
line numbers) and checks everything that can be checked one file at a time: keys, types, names, the
alias syntax (each alias is expanded by :mod:`rules.morph` here, so a bad alias is reported with its
line), regex safety. :func:`check_references` adds the checks across files (duplicate names, unknown
groups with a "did you mean" hint). Examples are checked after compilation, by :mod:`rules.examples`.

Nothing here raises on the first problem: each function returns what it could parse plus the list of
problems, and the loader raises one :class:`core.errors.RuleError` carrying all of them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import re2
import yaml

from core.errors import Problem
from core.models import Field, Priority, label_problem
from core.yamlsrc import PathKey, YamlDoc, YamlProblem, load_yaml
from rules.morph import AliasError, Variant, alias_variants

MAX_ALIAS_CHARS = 100
MAX_REGEX_CHARS = 500
MAX_ALIASES_PER_GROUP = 5_000
MAX_RULES = 1_000
MAX_NEAR = 1_000
MAX_TERM_DEPTH = 8
REGEX_MAX_MEM = 8 << 20  # bytes of RE2 program memory per regex: refuses huge alternations

FIELDS: tuple[Field, ...] = ("title", "summary")
RULE_NAME_RE = re.compile(r"^[a-z0-9_]{1,64}$")
GROUP_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")

_TOP_KEYS = ("version", "groups", "rules", "score")
_GROUP_KEYS = ("kind", "description", "aliases", "exclude")
_RULE_KEYS = (
    "name", "description", "priority", "enabled", "scope", "all", "any", "none", "near", "min_hits",
    "min_score", "examples", "source",
)  # fmt: skip
_SOURCE_KEYS = ("label", "not_label")
_TERM_KEYS = ("group", "in", "min")
_EXAMPLE_KEYS = ("title", "summary")

AliasKind = Literal["plain", "exact", "regex"]


@dataclass(frozen=True, slots=True)
class Alias:
    """One alias as written, plus what it compiles to (variants, or a regex pattern)."""

    text: str  # as written, without the leading "=" or the "re:" key
    kind: AliasKind
    variants: tuple[Variant, ...] = field(default=(), repr=False, compare=False)
    line: int | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return {"plain": self.text, "exact": "=" + self.text, "regex": "re: " + self.text}[self.kind]


@dataclass(frozen=True, slots=True)
class Group:
    """A named alias group: an entity (DPRK) or a keyword list (MILITARY) — they behave the same."""

    name: str
    kind: Literal["entity", "keywords"]
    description: str
    aliases: tuple[Alias, ...]
    exclude: tuple[Alias, ...]
    file: str
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class GroupTerm:
    """A group reference, optionally restricted to one field and/or needing ``min`` distinct hits."""

    group: str
    in_field: Field | None = None
    min: int = 1
    line: int | None = field(default=None, compare=False)
    path: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class AllTerm:
    terms: tuple[Term, ...]


@dataclass(frozen=True, slots=True)
class AnyTerm:
    terms: tuple[Term, ...]


@dataclass(frozen=True, slots=True)
class NotTerm:
    term: Term


Term: TypeAlias = GroupTerm | AllTerm | AnyTerm | NotTerm
Near: TypeAlias = int | Literal["sentence"] | None


@dataclass(frozen=True, slots=True)
class Example:
    title: str
    summary: str
    line: int | None = field(default=None, compare=False)
    path: str = field(default="", compare=False)  # e.g. "rules[foo].examples.no_match[2]"

    @property
    def text(self) -> str:
        return " / ".join(x for x in (self.title, self.summary) if x)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    description: str
    priority: Priority
    enabled: bool
    scope: tuple[Field, ...]
    all: tuple[Term, ...]
    any: tuple[Term, ...]
    none: tuple[Term, ...]
    near: Near
    min_hits: int
    examples_match: tuple[Example, ...]
    examples_no_match: tuple[Example, ...]
    file: str
    line: int | None = field(default=None, compare=False)
    min_score: float | None = None  # drop this rule's match when the item's relevance score is lower
    source: SourceCondition | None = None  # ``source: {label: ..., not_label: ...}``: which outlets count


@dataclass(frozen=True, slots=True)
class SourceCondition:
    """A rule's ``source:`` condition over the item's feed labels (``feeds[].labels`` in config.yaml):
    at least one of ``labels`` (when given) and none of ``not_labels``. Text with no source (``/test``)
    has no labels."""

    labels: tuple[str, ...] = ()
    not_labels: tuple[str, ...] = ()

    def allows(self, item_labels: Iterable[str]) -> bool:
        have = set(item_labels)
        return (not self.labels or not have.isdisjoint(self.labels)) and have.isdisjoint(self.not_labels)


@dataclass(frozen=True, slots=True)
class RuleFile:
    """What one rule file defines (the unit that a chat edit replaces)."""

    file: str
    groups: tuple[Group, ...]
    rules: tuple[Rule, ...]
    score: str | None = None  # the score weights file named by ``score:``, relative to this file
    score_line: int | None = field(default=None, compare=False)


# --- parsing ---------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def fail(self, path: PathKey, shown: str, message: str) -> None:
        self.problems.append(self.doc.problem(path, message, shown))

    def keys(self, value: dict[Any, Any], path: PathKey, shown: str, allowed: Sequence[str]) -> None:
        for key in value:
            if key not in allowed:
                hint = _did_you_mean(str(key), allowed)
                where = f"{shown}.{key}" if shown else str(key)
                self.fail((*path, key), where, f"unknown key {key!r}{hint}; allowed: {', '.join(allowed)}")


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    cands = list(candidates)
    lower = {c.lower(): c for c in cands}
    if name.lower() in lower:
        return f" (did you mean {lower[name.lower()]!r}?)"
    close = difflib.get_close_matches(name, cands, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_file(text: str, file: str) -> tuple[RuleFile, list[Problem]]:
    """Parse and validate one rule file on its own; returns what parsed plus every problem."""
    try:
        doc = load_yaml(text, file)
    except YamlProblem as exc:
        return RuleFile(file, (), ()), [exc.problem]
    r = _Reader(doc)
    r.problems.extend(_duplicate_keys(text, file))
    data = doc.data
    if data is None:
        r.fail((), "", "the file is empty; expected 'version: 1' and 'groups:' and/or 'rules:'")
        return RuleFile(file, (), ()), r.problems
    if not isinstance(data, dict):
        r.fail((), "", f"expected a mapping with 'version', 'groups', 'rules', got {_type(data)}")
        return RuleFile(file, (), ()), r.problems
    r.keys(data, (), "", _TOP_KEYS)
    version = data.get("version")
    if version != 1:
        r.fail(("version",), "version", f"must be 1 (the rule language version), got {version!r}")
    groups = _parse_groups(r, data.get("groups"))
    rules = _parse_rules(r, data.get("rules"))
    score = data.get("score")
    if score is not None and (not isinstance(score, str) or not score.strip() or not score.endswith(".json")):
        r.fail(("score",), "score", f"must name a score weights file (*.json, from `bot.py train`), got {score!r}")
        score = None
    line = doc.line(("score",)) if score is not None else None
    return RuleFile(file, tuple(groups), tuple(rules), score, line), r.problems


def _type(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _duplicate_keys(text: str, file: str) -> list[Problem]:
    """Duplicate mapping keys (YAML silently keeps the last one; here it is an error)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []  # load_yaml already reported it
    out: list[Problem] = []
    stack: list[yaml.Node] = [node] if node is not None else []
    while stack:
        n = stack.pop()
        if isinstance(n, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in n.value:
                if isinstance(k, yaml.ScalarNode):
                    line = k.start_mark.line + 1
                    if k.value in seen:
                        out.append(Problem(file, line, str(k.value), f"duplicate key (first at line {seen[k.value]})"))
                    else:
                        seen[k.value] = line
                stack.append(v)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
    return sorted(out, key=lambda p: p.line or 0)


def _parse_groups(r: _Reader, raw: Any) -> list[Group]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        r.fail(("groups",), "groups", f"must be a mapping of group names to groups, got {_type(raw)}")
        return []
    out: list[Group] = []
    for name, body in raw.items():
        path: PathKey = ("groups", name)
        shown = f"groups.{name}"
        if not isinstance(name, str) or not GROUP_NAME_RE.match(name):
            r.fail(path, shown, "a group name is letters, digits, '_' or '-', starting with a letter")
            continue
        if not isinstance(body, dict):
            r.fail(path, shown, f"must be a mapping with 'aliases', got {_type(body)}")
            continue
        r.keys(body, path, shown, _GROUP_KEYS)
        kind = body.get("kind", "keywords")
        if kind not in ("entity", "keywords"):
            r.fail((*path, "kind"), f"{shown}.kind", f"must be 'entity' or 'keywords', got {kind!r}")
            kind = "keywords"
        description = body.get("description", "")
        if not isinstance(description, str):
            r.fail((*path, "description"), f"{shown}.description", "must be a string")
            description = ""
        if "aliases" not in body:
            r.fail(path, shown, "a group needs 'aliases' (a list of words or phrases)")
        aliases = _parse_aliases(r, body.get("aliases"), (*path, "aliases"), f"{shown}.aliases", True)
        exclude = _parse_aliases(r, body.get("exclude"), (*path, "exclude"), f"{shown}.exclude", False)
        out.append(Group(name, kind, description, tuple(aliases), tuple(exclude), r.doc.file, r.doc.line(path)))
    return out


def _parse_aliases(r: _Reader, raw: Any, path: PathKey, shown: str, required: bool) -> list[Alias]:
    if raw is None:
        if required:
            return []
        return []
    if not isinstance(raw, list):
        r.fail(path, shown, f"must be a list, got {_type(raw)}")
        return []
    if required and not raw:
        r.fail(path, shown, "is empty: a group needs at least one alias")
    if len(raw) > MAX_ALIASES_PER_GROUP:
        r.fail(path, shown, f"has {len(raw)} entries; the limit is {MAX_ALIASES_PER_GROUP}")
        return []
    out: list[Alias] = []
    for i, item in enumerate(raw):
        p: PathKey = (*path, i)
        s = f"{shown}[{i}]"
        try:
            out.append(parse_alias(item, r.doc.line(p)))
        except AliasError as exc:
            r.fail(p, s, str(exc))
    return out


def parse_alias(item: Any, line: int | None = None) -> Alias:
    """One alias entry: ``"text"``, ``"=text"``, ``"word*"`` or ``{re: 'pattern'}``."""
    if isinstance(item, dict):
        if set(item) != {"re"}:
            raise AliasError(f"a mapping alias must be {{re: 'pattern'}}, got keys {sorted(map(str, item))}")
        pattern = item["re"]
        if not isinstance(pattern, str) or not pattern:
            raise AliasError("'re' must be a non-empty string (write regex in single quotes)")
        compile_regex(pattern)
        return Alias(pattern, "regex", (), line)
    if isinstance(item, bool) or not isinstance(item, str | int):
        raise AliasError(f"an alias must be a string, got {_type(item)}")
    text = str(item).strip()
    if not text:
        raise AliasError("empty alias")
    if len(text) > MAX_ALIAS_CHARS:
        raise AliasError(f"alias is {len(text)} characters long; the limit is {MAX_ALIAS_CHARS}")
    if text.startswith("re:"):
        raise AliasError("write a regex alias as a mapping: - re: '...' (in single quotes)")
    if text.startswith("="):
        body = text[1:].strip()
        if not body:
            raise AliasError("empty exact alias '='")
        return Alias(body, "exact", alias_variants(body, exact=True), line)
    return Alias(text, "plain", alias_variants(text), line)


@dataclass(frozen=True, slots=True)
class CompiledRegex:
    """A ``re:`` alias compiled with RE2; a leading/trailing ``\\b`` is checked Unicode-aware."""

    pattern: str
    regex: Any
    word_start: bool
    word_end: bool


def compile_regex(pattern: str) -> CompiledRegex:
    """Compile a user regex with RE2 (linear time, no backreferences or lookaround), size-capped.

    The field text it runs on is lowercased with ``ё`` → ``е``, so the pattern is matched
    case-insensitively and its ``ё`` is folded too. RE2's ``\\b`` is ASCII-only; a ``\\b`` at the very
    start or end of the pattern is therefore removed and checked by the engine with Unicode word
    characters, so ``\\bт-\\d+\\b`` works on Cyrillic.
    """
    if len(pattern) > MAX_REGEX_CHARS:
        raise AliasError(f"regex is {len(pattern)} characters long; the limit is {MAX_REGEX_CHARS}")
    body = pattern.replace("ё", "е").replace("Ё", "Е")
    word_start = body.startswith("\\b")
    if word_start:
        body = body[2:]
    word_end = body.endswith("\\b") and not body.endswith("\\\\b")
    if word_end:
        body = body[:-2]
    options = re2.Options()
    options.max_mem = REGEX_MAX_MEM
    options.log_errors = False
    options.case_sensitive = False
    try:
        regex = re2.compile(body, options)
    except re2.error as exc:
        msg = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        if "perl operator" in msg or "escape" in msg:
            msg += " (RE2 has no lookaround or backreferences)"
        raise AliasError(f"invalid regex (RE2): {msg}") from None
    if regex.search("") is not None:
        raise AliasError("the regex matches empty text, so it would match everywhere")
    return CompiledRegex(pattern, regex, word_start, word_end)


def _parse_rules(r: _Reader, raw: Any) -> list[Rule]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        r.fail(("rules",), "rules", f"must be a list of rules, got {_type(raw)}")
        return []
    if len(raw) > MAX_RULES:
        r.fail(("rules",), "rules", f"has {len(raw)} rules; the limit is {MAX_RULES}")
        return []
    out: list[Rule] = []
    for i, body in enumerate(raw):
        rule = _parse_rule(r, body, ("rules", i))
        if rule is not None:
            out.append(rule)
    return out


def _parse_rule(r: _Reader, body: Any, path: PathKey) -> Rule | None:
    index = path[-1]
    if not isinstance(body, dict):
        r.fail(path, f"rules[{index}]", f"a rule must be a mapping with 'name', got {_type(body)}")
        return None
    name = body.get("name")
    if "name" not in body:
        r.fail(path, f"rules[{index}]", "a rule needs a name (lowercase letters, digits and '_')")
        name = f"#{index}"
    elif not isinstance(name, str) or not RULE_NAME_RE.match(name):
        hint = " (YAML reads off/on/yes/no as true/false: quote the name)" if isinstance(name, bool) else ""
        r.fail((*path, "name"), f"rules[{index}].name",
               f"a rule needs a name of lowercase letters, digits and '_' (got {name!r}){hint}")  # fmt: skip
        name = f"#{index}"
    shown = f"rules[{name}]"
    problems_before = len(r.problems)
    r.keys(body, path, shown, _RULE_KEYS)

    def sub(key: str) -> tuple[PathKey, str]:
        return (*path, key), f"{shown}.{key}"

    description = body.get("description", "")
    if not isinstance(description, str):
        r.fail(*sub("description"), "must be a string")
        description = ""
    priority = body.get("priority", "digest")
    if priority not in ("instant", "digest"):
        r.fail(*sub("priority"), f"must be 'instant' or 'digest', got {priority!r}")
        priority = "digest"
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        r.fail(*sub("enabled"), f"must be true or false, got {enabled!r}")
        enabled = True
    scope = _parse_scope(r, body.get("scope", list(FIELDS)), *sub("scope"))
    terms: dict[str, tuple[Term, ...]] = {}
    for key in ("all", "any", "none"):
        raw = body.get(key, [])
        p, s = sub(key)
        if not isinstance(raw, list):
            r.fail(p, s, f"must be a list of group names or terms, got {_type(raw)}")
            raw = []
        elif key in body and not raw:
            r.fail(p, s, "is empty; leave it out instead")
        parsed = [_parse_term(r, t, (*p, i), f"{s}[{i}]", 0) for i, t in enumerate(raw)]
        terms[key] = tuple(t for t in parsed if t is not None)
    if "all" not in body and "any" not in body:
        r.fail(path, shown, "a rule needs 'all' and/or 'any' (the groups that must match)")
    near: Near = None
    if "near" in body:
        raw_near = body["near"]
        if raw_near == "sentence":
            near = "sentence"
        elif isinstance(raw_near, int) and not isinstance(raw_near, bool) and 1 <= raw_near <= MAX_NEAR:
            near = raw_near
        else:
            r.fail(*sub("near"), f"must be a number of words (1–{MAX_NEAR}) or 'sentence', got {raw_near!r}")
    min_hits = body.get("min_hits", 1)
    if isinstance(min_hits, bool) or not isinstance(min_hits, int) or not 1 <= min_hits <= 100:
        r.fail(*sub("min_hits"), f"must be a whole number from 1 to 100, got {min_hits!r}")
        min_hits = 1
    min_score = body.get("min_score")
    if min_score is not None and (
        isinstance(min_score, bool) or not isinstance(min_score, int | float) or not 0 < min_score < 1
    ):
        r.fail(*sub("min_score"), f"must be a number between 0 and 1 (exclusive), got {min_score!r}")
        min_score = None
    ex_match, ex_no = _parse_examples(r, body.get("examples"), *sub("examples"), scope)
    source = _parse_source(r, body.get("source"), *sub("source")) if "source" in body else None
    rule = Rule(
        name=name, description=description, priority=priority, enabled=enabled, scope=scope,
        all=terms["all"], any=terms["any"], none=terms["none"], near=near, min_hits=min_hits,
        examples_match=ex_match, examples_no_match=ex_no, file=r.doc.file, line=r.doc.line(path),
        min_score=float(min_score) if min_score is not None else None, source=source,
    )  # fmt: skip
    if len(r.problems) == problems_before:
        for message in _semantic_problems(rule):
            r.fail(path, shown, message)
    return rule


def _parse_source(r: _Reader, raw: Any, path: PathKey, shown: str) -> SourceCondition | None:
    """``source: {label: state-media}`` or ``{label: [wire, state-media], not_label: telegram}``."""
    if not isinstance(raw, dict) or not raw:
        r.fail(path, shown, f"must be a mapping with 'label' and/or 'not_label', got {_type(raw)}")
        return None
    r.keys(raw, path, shown, _SOURCE_KEYS)
    out: dict[str, tuple[str, ...]] = {}
    for key in _SOURCE_KEYS:
        value = raw.get(key, [])
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or (key in raw and not values):
            r.fail((*path, key), f"{shown}.{key}", f"must be a label or a list of labels, got {_type(value)}")
            values = []
        good = []
        for i, label in enumerate(values):
            problem = label_problem(label)
            if problem:
                r.fail((*path, key, i), f"{shown}.{key}[{i}]", problem)
            else:
                good.append(label)
        out[key] = tuple(good)
    return SourceCondition(labels=out["label"], not_labels=out["not_label"])


def _parse_scope(r: _Reader, raw: Any, path: PathKey, shown: str) -> tuple[Field, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        r.fail(path, shown, "must be a list of fields: title, summary")
        return FIELDS
    out: list[Field] = []
    for i, f in enumerate(raw):
        if f not in FIELDS:
            r.fail((*path, i), f"{shown}[{i}]", f"unknown field {f!r}; fields are: title, summary")
        elif f not in out:
            out.append(f)
    return tuple(out) or FIELDS


def _parse_term(r: _Reader, raw: Any, path: PathKey, shown: str, depth: int) -> Term | None:
    if depth > MAX_TERM_DEPTH:
        r.fail(path, shown, f"terms nest more than {MAX_TERM_DEPTH} levels deep")
        return None
    if isinstance(raw, str):
        return GroupTerm(raw, None, 1, r.doc.line(path), shown)
    if not isinstance(raw, dict) or not raw:
        r.fail(path, shown, f"a term is a group name or a mapping, got {_type(raw)}")
        return None
    nest = [k for k in ("all", "any", "not") if k in raw]
    if nest:
        if len(raw) != 1:
            r.fail(path, shown, f"a '{nest[0]}' term has that one key only, got {sorted(map(str, raw))}")
            return None
        key = nest[0]
        value = raw[key]
        if key == "not":
            inner = _parse_term(r, value, (*path, key), f"{shown}.not", depth + 1)
            return NotTerm(inner) if inner is not None else None
        if not isinstance(value, list) or not value:
            r.fail((*path, key), f"{shown}.{key}", f"must be a non-empty list of terms, got {_type(value)}")
            return None
        subs = [_parse_term(r, t, (*path, key, i), f"{shown}.{key}[{i}]", depth + 1) for i, t in enumerate(value)]
        kept = tuple(t for t in subs if t is not None)
        if len(kept) != len(subs):
            return None
        return AllTerm(kept) if key == "all" else AnyTerm(kept)
    r.keys(raw, path, shown, (*_TERM_KEYS, "all", "any", "not"))
    group = raw.get("group")
    if not isinstance(group, str):
        r.fail(path, shown, "a term mapping needs 'group: NAME' (or all/any/not)")
        return None
    fld = raw.get("in")
    if fld is not None and fld not in FIELDS:
        r.fail((*path, "in"), f"{shown}.in", f"must be 'title' or 'summary', got {fld!r}")
        fld = None
    mn = raw.get("min", 1)
    if isinstance(mn, bool) or not isinstance(mn, int) or not 1 <= mn <= 100:
        r.fail((*path, "min"), f"{shown}.min", f"must be a whole number from 1 to 100, got {mn!r}")
        mn = 1
    return GroupTerm(group, fld, mn, r.doc.line(path), shown)


def _parse_examples(
    r: _Reader, raw: Any, path: PathKey, shown: str, scope: tuple[Field, ...]
) -> tuple[tuple[Example, ...], tuple[Example, ...]]:
    if raw is None:
        return (), ()
    if not isinstance(raw, dict):
        r.fail(path, shown, f"must be a mapping with 'match' and/or 'no_match', got {_type(raw)}")
        return (), ()
    r.keys(raw, path, shown, ("match", "no_match"))
    out: dict[str, list[Example]] = {"match": [], "no_match": []}
    for key in ("match", "no_match"):
        items = raw.get(key, [])
        if not isinstance(items, list):
            r.fail((*path, key), f"{shown}.{key}", f"must be a list of texts, got {_type(items)}")
            continue
        for i, item in enumerate(items):
            p: PathKey = (*path, key, i)
            s = f"{shown}.{key}[{i}]"
            line = r.doc.line(p)
            if isinstance(item, str):
                # A plain string is the text of the rule's first field in scope.
                title, summary = (item, "") if scope[0] == "title" else ("", item)
                out[key].append(Example(title, summary, line, s))
            elif isinstance(item, dict):
                r.keys(item, p, s, _EXAMPLE_KEYS)
                title, summary = item.get("title", ""), item.get("summary", "")
                if not isinstance(title, str) or not isinstance(summary, str) or not (title or summary):
                    r.fail(p, s, "an example mapping needs 'title' and/or 'summary' strings")
                    continue
                out[key].append(Example(title, summary, line, s))
            else:
                r.fail(p, s, f"an example is a string or {{title, summary}}, got {_type(item)}")
    return tuple(out["match"]), tuple(out["no_match"])


# --- semantic checks -------------------------------------------------------------------------------


def iter_group_terms(terms: Iterable[Term], positive: bool = True) -> Iterable[tuple[GroupTerm, bool]]:
    """Every group term under ``terms`` with whether it counts positively (not under a ``not``)."""
    for t in terms:
        if isinstance(t, GroupTerm):
            yield t, positive
        elif isinstance(t, AllTerm | AnyTerm):
            yield from iter_group_terms(t.terms, positive)
        else:
            yield from iter_group_terms((t.term,), not positive)


def _satisfied_without_hits(term: Term) -> bool:
    if isinstance(term, GroupTerm):
        return False
    if isinstance(term, AllTerm):
        return all(_satisfied_without_hits(t) for t in term.terms)
    if isinstance(term, AnyTerm):
        return any(_satisfied_without_hits(t) for t in term.terms)
    return not _satisfied_without_hits(term.term)


def _semantic_problems(rule: Rule) -> list[str]:
    out: list[str] = []
    if (rule.all or rule.any) and (
        all(_satisfied_without_hits(t) for t in rule.all)
        and (not rule.any or any(_satisfied_without_hits(t) for t in rule.any))
    ):
        out.append("the rule would match items that mention none of its groups; add a positive term")
    for term, _ in iter_group_terms((*rule.all, *rule.any, *rule.none)):
        if term.in_field is not None and term.in_field not in rule.scope:
            out.append(f"{term.path}: 'in: {term.in_field}' is outside the rule's scope {list(rule.scope)}")
    if rule.near is not None:
        fields = {t.in_field for t, pos in iter_group_terms((*rule.all, *rule.any)) if pos and t.in_field}
        if len(fields) > 1:
            out.append("'near' needs every term in one field, but the terms name both title and summary")
    return out


def check_references(files: Sequence[RuleFile]) -> list[Problem]:
    """Checks across all loaded files: unique group and rule names, known group references, limits."""
    problems: list[Problem] = []
    groups: dict[str, Group] = {}
    for rf in files:
        for g in rf.groups:
            first = groups.get(g.name)
            if first is not None:
                problems.append(
                    Problem(
                        g.file,
                        g.line,
                        f"groups.{g.name}",
                        f"group {g.name!r} is already defined at {first.file}:{first.line}",
                    )
                )
            else:
                groups[g.name] = g
    rules: dict[str, Rule] = {}
    total = 0
    for rf in files:
        for rule in rf.rules:
            total += 1
            first_rule = rules.get(rule.name)
            if first_rule is not None and not rule.name.startswith("#"):
                problems.append(
                    Problem(
                        rule.file,
                        rule.line,
                        f"rules[{rule.name}]",
                        f"rule {rule.name!r} is already defined at {first_rule.file}:{first_rule.line}",
                    )
                )
            else:
                rules[rule.name] = rule
            for term, _ in iter_group_terms((*rule.all, *rule.any, *rule.none)):
                if term.group not in groups:
                    hint = _did_you_mean(term.group, groups)
                    problems.append(Problem(rule.file, term.line, term.path, f"unknown group {term.group!r}{hint}"))
    with_score = [rf for rf in files if rf.score is not None]
    for rf in with_score[1:]:
        first_file = with_score[0]
        where = f"{first_file.file}:{first_file.score_line}"
        message = f"a score model is already named by {where}; only one file may name one"
        problems.append(Problem(rf.file, rf.score_line, "score", message))
    if not with_score:
        for rule in rules.values():
            if rule.min_score is not None:
                problems.append(
                    Problem(rule.file, rule.line, f"rules[{rule.name}].min_score",
                            "min_score needs a score model: name its weights file with a top-level 'score:' key")
                )  # fmt: skip
    if total > MAX_RULES:
        problems.append(Problem(files[-1].file, None, "rules", f"{total} rules in all; the limit is {MAX_RULES}"))
    return problems


def group_index(files: Sequence[RuleFile]) -> Mapping[str, Group]:
    out: dict[str, Group] = {}
    for rf in files:
        for g in rf.groups:
            out.setdefault(g.name, g)
    return out
