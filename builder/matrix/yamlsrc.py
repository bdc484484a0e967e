"""Load YAML into plain data while remembering the line of every node, in bounded time and memory.

PyYAML drops positions, silently accepts duplicate keys, resolves YAML 1.1 literals (``yes`` -> True,
``0777`` -> 511, ``54:32`` -> 3272), constructs any tag it knows, and recurses without bound through
nesting and self-referencing aliases. So we only let it compose nodes (with a depth limit and no tags)
and build the data ourselves: YAML 1.2 core scalars (decimal integers of at most 18 digits, ``true`` /
``false``, ``null``), everything else text, mapping keys exactly as written (``10.10`` must not become
the float 10.1), aliases expanded up to a node budget and never into themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from builder.errors import InputError, Problem

Path = tuple[str | int, ...]

MAX_DEPTH = 32
MAX_NODES = 10_000
MAX_INT_DIGITS = 18

_INT = re.compile(r"[-+]?[0-9]+")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


def format_path(path: Path) -> str:
    """``('a', 'b', 1, 'c')`` -> ``a.b[1].c``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Located:
    """Parsed data plus the 1-based line of each path (key line for mapping entries)."""

    file: str
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """Line of the deepest known ancestor of ``path`` (a missing key points at its parent)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1

    def problem(self, path: Path, message: str) -> Problem:
        return Problem(self.file, self.line_of(path), format_path(path), message)


class _Refused(Exception):
    """A bound or rule the composer or builder enforces; carries the 1-based line."""

    def __init__(self, line: int, message: str, path: Path = ()):
        super().__init__(message)
        self.line, self.message, self.path = line, message, path


class _Loader(yaml.SafeLoader):
    """SafeLoader's parser and composer with a nesting bound and no tags (nothing is constructed)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def _line(self) -> int:
        return int(self.get_mark().line) + 1  # type: ignore[no-untyped-call]

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: N803 (PyYAML's name)
        # The scanner re-checks every open '[' per token: bound it before it turns quadratic.
        if self.flow_level >= MAX_DEPTH:
            raise _Refused(self._line(), f"nested deeper than {MAX_DEPTH} levels")
        super().fetch_flow_collection_start(TokenClass)  # type: ignore[no-untyped-call]

    def add_indent(self, column: int) -> bool:
        if len(self.indents) >= MAX_DEPTH:
            raise _Refused(self._line(), f"nested deeper than {MAX_DEPTH} levels")
        return super().add_indent(column)  # type: ignore[no-untyped-call,no-any-return]

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1
        tag = getattr(event, "tag", None)
        if tag is not None:
            raise _Refused(line, f"YAML tags are not allowed (found {tag!r}); write plain values")
        if self._depth >= MAX_DEPTH:
            raise _Refused(line, f"nested deeper than {MAX_DEPTH} levels")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def scalar(node: yaml.ScalarNode, line: int) -> Any:
    """A YAML 1.2 core-schema value for a plain scalar; quoted and block scalars are always text."""
    value = str(node.value)
    if node.style is not None:
        return value
    if value in _NULLS:
        return None
    if value in _BOOLS:
        return _BOOLS[value]
    if _INT.fullmatch(value) and not (len(value.lstrip("+-")) > 1 and value.lstrip("+-").startswith("0")):
        if len(value.lstrip("+-")) > MAX_INT_DIGITS:
            raise _Refused(line, f"integer has more than {MAX_INT_DIGITS} digits")
        return int(value)
    return value


class _Builder:
    """Nodes to plain data: aliases expanded within MAX_NODES and MAX_DEPTH, never into themselves."""

    def __init__(self, file: str):
        self.file = file
        self.lines: dict[Path, int] = {}
        self.problems: list[Problem] = []
        self._count = 0
        self._open: set[int] = set()
        self._seen: set[int] = set()

    def build(self, node: yaml.Node, path: Path, via: int | None = None) -> Any:
        """``via``: inside an alias's expansion, the line of the alias (the anchor's lines say nothing
        about where a problem in the copy is)."""
        if via is None and id(node) in self._seen:
            via = self.lines.get(path) or self.lines.get(path[:-1], 1)
        self._seen.add(id(node))
        line = via or node.start_mark.line + 1
        self.lines.setdefault(path, line)
        self._count += 1
        if self._count > MAX_NODES:
            raise _Refused(self.lines[path], f"aliases expand to more than {MAX_NODES} values", path)
        if len(path) > MAX_DEPTH:
            raise _Refused(self.lines[path], f"nested deeper than {MAX_DEPTH} levels (through aliases)", path)
        if isinstance(node, yaml.ScalarNode):
            return scalar(node, line)
        if id(node) in self._open:
            raise _Refused(self.lines[path], "alias refers to a node that contains it (a cycle)", path)
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path, via)
            return [self.build(child, path + (i,), via) for i, child in enumerate(node.value)]
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path, via: int | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line = via or key_node.start_mark.line + 1
                self.problems.append(Problem(self.file, line, format_path(path), "keys must be plain text"))
                continue
            key = str(key_node.value)
            child = path + (key,)
            if key in out:
                first = self.lines[child]
                self.problems.append(
                    Problem(self.file, via or key_node.start_mark.line + 1, format_path(child),
                            f"duplicate key (first defined on line {first})")
                )
                continue
            self.lines[child] = via or key_node.start_mark.line + 1
            out[key] = self.build(value_node, child, via)
        return out


def _compose(text: str) -> yaml.Node | None:
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]


def load_located(text: str, file: str) -> Located:
    """Parse one YAML document; raise InputError for syntax errors, duplicate keys and refused input."""
    try:
        node = _compose(text)
        if node is None:
            return Located(file, None, {(): 1})
        builder = _Builder(file)
        data = builder.build(node, ())
    except _Refused as exc:
        raise InputError([Problem(file, exc.line, format_path(exc.path), exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        reason = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise InputError([Problem(file, line, "", f"not valid YAML: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise InputError([Problem(file, 1, "", f"not valid YAML: {exc}")]) from None
    if builder.problems:
        raise InputError(builder.problems)
    return Located(file, data, builder.lines)
