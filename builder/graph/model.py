"""Nodes, their manifests and keys.

A node's key is the sha256 of its manifest: the matrix values it reads, the
digests of the repository files it reads, the versions of the tools that shape
its output, and its parents' keys. Nothing else, so a change elsewhere never
changes it. Manifests are kept so a rebuild can say *why* (``diff_manifests``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from builder.errors import GuestforgeError
from builder.graph.trees import Tree, digest

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Node:
    """One artifact or one verification, declared with exactly its inputs."""

    id: str
    kind: str
    title: str
    cell: str | None = None
    targets: frozenset[str] = frozenset()
    parents: tuple[str, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()

    @property
    def is_verification(self) -> bool:
        return self.kind.startswith("verify")


class Graph:
    """Nodes in dependency order with their manifests and keys computed against one Tree."""

    def __init__(self, nodes: Iterable[Node], tree: Tree, tools: Mapping[str, str]):
        self.nodes: dict[str, Node] = {}
        for node in nodes:
            if node.id in self.nodes:
                raise GuestforgeError(f"internal: node {node.id} declared twice")
            self.nodes[node.id] = node
        self.order = _topological(self.nodes)
        self.manifests: dict[str, Manifest] = {}
        self.keys: dict[str, str] = {}
        for node_id in self.order:
            node = self.nodes[node_id]
            manifest = make_manifest(node, tree, tools, {p: self.keys[p] for p in node.parents})
            self.manifests[node_id] = manifest
            self.keys[node_id] = manifest_key(manifest)

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


def make_manifest(node: Node, tree: Tree, tools: Mapping[str, str], parent_keys: Mapping[str, str]) -> Manifest:
    files = {}
    for rel in node.files:
        data = tree.read(rel)
        files[rel] = digest(data) if data is not None else "missing"
    return {
        "kind": node.kind,
        "values": json.loads(json.dumps(node.values, sort_keys=True)),
        "files": dict(sorted(files.items())),
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
        if section == "files":
            reasons.append(f"file {name} {'added' if a == 'absent' else 'removed' if b == 'absent' else 'changed'}")
        elif section == "parents":
            reasons.append(f"input {name} changed")
        elif section == "tools":
            reasons.append(f"tool {name} {a} -> {b}")
        else:
            reasons.append(f"{name or section}: {a!r} -> {b!r}")
    return reasons
