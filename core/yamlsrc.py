"""Safe YAML loading that remembers where every value came from.

Config and rule files are written by hand, and rule text also arrives from chat, so loading is
strict: only the YAML safe types, no aliases (``*name`` — the "billion laughs" expansion bomb), a size
cap, a nesting limit (the loaders recurse once per level, so ``[[[[…`` would end in RecursionError), and
every value's line number kept so errors can say ``rules/dprk.yaml:42``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from core.errors import Problem

PathKey = tuple[str | int, ...]
MAX_YAML_BYTES = 1_000_000
MAX_YAML_DEPTH = 100  # nesting levels; real config and rule files use fewer than 10


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and nesting deeper than :data:`MAX_YAML_DEPTH`; unknown tags are
    already refused by SafeLoader."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed", event.start_mark)
        if self.depth >= MAX_YAML_DEPTH:  # checked before composing, so no later stage recurses deeper either
            raise _TooDeep(self.peek_event().start_mark.line + 1)  # type: ignore[no-untyped-call]
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


@dataclass(slots=True)
class YamlDoc:
    """Loaded YAML data plus the 1-based line of each mapping key / sequence item."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line(self, path: PathKey) -> int | None:
        """Line of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)

    def problem(self, path: PathKey, message: str, shown_path: str | None = None) -> Problem:
        return Problem(self.file, self.line(path), shown_path or format_path(path), message)


def format_path(path: PathKey) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _record_lines(node: yaml.Node, path: PathKey, lines: dict[PathKey, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _record_lines(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            lines[(*path, i)] = child.start_mark.line + 1
            _record_lines(child, (*path, i), lines)


def load_yaml(text: str | bytes, file: str) -> YamlDoc:
    """Parse one YAML document safely.

    Raises :class:`YamlProblem` (with file and line) on a syntax error, an alias, an unknown tag, a
    document over :data:`MAX_YAML_BYTES`, or nesting deeper than :data:`MAX_YAML_DEPTH`.
    """
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_YAML_BYTES:
        raise YamlProblem(Problem(file, None, "", f"file is {size} bytes; the limit is {MAX_YAML_BYTES}"))
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDoc(file, None, {})
        data = loader.construct_document(node)
    except _TooDeep as exc:
        raise YamlProblem(Problem(file, exc.line, "", f"nested too deeply (limit {MAX_YAML_DEPTH} levels)")) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise YamlProblem(Problem(file, line, "", f"invalid YAML: {message}")) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(Problem(file, None, "", f"invalid YAML: {exc}")) from None
    finally:
        loader.dispose()
    lines: dict[PathKey, int] = {}
    _record_lines(node, (), lines)
    return YamlDoc(file, data, lines)


class YamlProblem(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))
