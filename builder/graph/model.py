"""Nodes, their manifests and keys.

A node's key is the sha256 of its manifest: the matrix values it reads, the
digests of the repository files it reads (templates, elements, suites: declared),
the repository code its action can run (derived: the import closure of its kind's
modules and of its suites, ``builder.graph.code``), the versions of the tools that
shape its output, and its parents' keys. Nothing else, so a change elsewhere never
changes it. Manifests are kept so a rebuild can say *why* (``diff_manifests``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from builder.errors import GuestforgeError
from builder.graph.code import import_closure
from builder.graph.kinds import KINDS, Kind
from builder.graph.step import Node
from builder.graph.trees import Tree, digest

Manifest = dict[str, Any]



class Graph:
    """Nodes in dependency order with their manifests and keys computed against one Tree."""

    def __init__(self, nodes: Iterable[Node], tree: Tree, tools: Mapping[str, str],
                 kinds: Mapping[str, Kind] = KINDS):
        self.nodes: dict[str, Node] = {}
        self.kinds = kinds
        for node in nodes:
            if node.id in self.nodes:
                raise GuestforgeError(f"internal: node {node.id} declared twice")
            if node.kind not in kinds:
                raise GuestforgeError(f"internal: node {node.id} has unknown kind {node.kind!r}")
            if not isinstance(node.values, kinds[node.kind].values):
                raise GuestforgeError(f"internal: node {node.id} carries {type(node.values).__name__}; "
                                      f"kind {node.kind} takes {kinds[node.kind].values.__name__}")
            self.nodes[node.id] = node
        self.order = _topological(self.nodes)
        self.manifests: dict[str, Manifest] = {}
        self.keys: dict[str, str] = {}
        closures: dict[tuple[str, ...], list[str]] = {}
        parsed: dict[str, set[str]] = {}
        for node_id in self.order:
            node = self.nodes[node_id]
            roots = code_roots(node, kinds[node.kind])
            if roots not in closures:
                closures[roots] = import_closure(tree, roots, parsed)
            manifest = make_manifest(node, tree, tools, {p: self.keys[p] for p in node.parents}, closures[roots])
            self.manifests[node_id] = manifest
            self.keys[node_id] = manifest_key(manifest)

    def is_verification(self, node_id: str) -> bool:
        return self.kinds[self.nodes[node_id].kind].verification

    def closure(self, wanted: Iterable[str]) -> list[str]:
        """``wanted`` and all their ancestors, in dependency order."""
        need: set[str] = set()
        stack = list(wanted)
        while stack:
            node_id = stack.pop()
            if node_id not in need:
                need.add(node_id)
                stack.extend(self.nodes[node_id].parents)
        return [n for n in self.order if n in need]

    def children(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {n: [] for n in self.nodes}
        for node in self.nodes.values():
            for parent in node.parents:
                out[parent].append(node.id)
        return out


def _topological(nodes: Mapping[str, Node]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(node_id: str, chain: tuple[str, ...]) -> None:
        if state.get(node_id) == 2:
            return
        if state.get(node_id) == 1:
            raise GuestforgeError(f"internal: dependency cycle {' -> '.join(chain + (node_id,))}")
        if node_id not in nodes:
            raise GuestforgeError(f"internal: {chain[-1]} depends on undeclared node {node_id}")
        state[node_id] = 1
        for parent in nodes[node_id].parents:
            visit(parent, chain + (node_id,))
        state[node_id] = 2
        order.append(node_id)

    for node_id in nodes:
        visit(node_id, ())
    return order


def code_roots(node: Node, kind: Kind) -> tuple[str, ...]:
    """Where a node's code closure starts: its kind's modules and the Python files it declares (suites)."""
    return tuple(sorted({*kind.code, *(f for f in node.files if f.endswith(".py"))}))


def _digests(tree: Tree, paths: Iterable[str]) -> dict[str, str]:
    out = {}
    for rel in sorted(paths):
        data = tree.read(rel)
        out[rel] = digest(data) if data is not None else "missing"
    return out


def make_manifest(node: Node, tree: Tree, tools: Mapping[str, str], parent_keys: Mapping[str, str],
                  code: Iterable[str] = ()) -> Manifest:
    declared = set(node.files)
    return {
        "kind": node.kind,
        "values": node.values.manifest(),
        "files": _digests(tree, declared),
        "code": _digests(tree, set(code) - declared),
        "tools": {t: tools.get(t, "unknown") for t in sorted(node.tools)},
        "parents": dict(sorted(parent_keys.items())),
    }


def manifest_key(manifest: Manifest) -> str:
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def diff_manifests(old: Manifest, new: Manifest) -> list[str]:
    """Human-readable reasons two manifests differ, e.g. ``file container_specs/x changed``."""
    before, after = _flatten(old, ""), _flatten(new, "")
    reasons = []
    for path in sorted(set(before) | set(after)):
        a, b = before.get(path, "absent"), after.get(path, "absent")
        if a == b:
            continue
        section, _, name = path.partition(".")
        change = "added" if a == "absent" else "removed" if b == "absent" else "changed"
        if section == "files":
            reasons.append(f"file {name} {change}")
        elif section == "code":
            reasons.append(f"code {name} {change} (in the import closure of its action)")
        elif section == "parents":
            reasons.append(f"input {name} changed")
        elif section == "tools":
            reasons.append(f"tool {name} {a} -> {b}")
        else:
            reasons.append(f"{name or section}: {a!r} -> {b!r}")
    return reasons
