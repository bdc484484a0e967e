"""Load YAML into plain data while remembering the line of every node.

PyYAML drops positions and silently accepts duplicate keys; both matter for the
errors we promise ("file:line: field: problem"), so we compose the node graph
ourselves. Mapping keys stay the exact text the user wrote (``10.10`` must not
become the float 10.1); floats stay text for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from builder.errors import InputError, Problem

Path = tuple[str | int, ...]

_FLOAT_TAG = "tag:yaml.org,2002:float"


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


class _Builder:
    def __init__(self, file: str):
        self.file = file
        self.lines: dict[Path, int] = {}
        self.problems: list[Problem] = []
        self._scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, path + (i,)) for i, child in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        if node.tag == _FLOAT_TAG:
            return node.value
        return self._scalars.construct_object(node, deep=True)  # type: ignore[no-untyped-call]

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line = key_node.start_mark.line + 1
                self.problems.append(Problem(self.file, line, format_path(path), "keys must be plain text"))
                continue
            key = str(key_node.value)
            child = path + (key,)
            if key in out:
                first = self.lines[child]
                self.problems.append(
                    Problem(self.file, key_node.start_mark.line + 1, format_path(child),
                            f"duplicate key (first defined on line {first})")
                )
                continue
            self.lines[child] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, child)
        return out


def load_located(text: str, file: str) -> Located:
    """Parse one YAML document; raise InputError for syntax errors and duplicate keys."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        reason = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise InputError([Problem(file, line, "", f"not valid YAML: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise InputError([Problem(file, 1, "", f"not valid YAML: {exc}")]) from None
    if node is None:
        return Located(file, None, {(): 1})
    builder = _Builder(file)
    try:
        data = builder.build(node, ())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 1
        raise InputError([Problem(file, line, "", f"not valid YAML: {exc.problem}")]) from None
    if builder.problems:
        raise InputError(builder.problems)
    return Located(file, data, builder.lines)
