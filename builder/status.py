"""Where each node stands against the local index, without running anything (for ``plan``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.graph.execute import stale_reasons
from builder.graph.index import Index
from builder.graph.model import Graph


@dataclass(frozen=True)
class NodeStatus:
    node: str
    kind: str
    target: str | None
    cell: str | None
    key: str
    status: str  # verified | built | failed | stale | new
    why: list[str]
    inputs: dict[str, object]


def node_statuses(graph: Graph, ids: list[str], build_dir: Path) -> list[NodeStatus]:
    index_path = build_dir / "index.sqlite"
    index = Index(index_path) if index_path.exists() else None
    out = []
    try:
        for node_id in graph.closure(ids):
            node, key = graph.nodes[node_id], graph.keys[node_id]
            entry = index.get(key) if index else None
            if entry is not None and entry.ok:
                status, why = ("verified" if graph.is_verification(node_id) else "built"), []
            elif entry is not None:
                status, why = "failed", [f"last attempt failed (log: {entry.log})"]
            elif index is not None and index.latest(node_id) is not None:
                status, why = "stale", stale_reasons(graph, index, node_id)
            else:
                status, why = "new", ["never built" if not graph.is_verification(node_id) else "never verified"]
            manifest = graph.manifests[node_id]
            inputs = {"values": sorted(manifest["values"]), "files": sorted(manifest["files"]),
                      "code": sorted(manifest["code"]),
                      "tools": manifest["tools"], "parents": sorted(manifest["parents"])}
            out.append(NodeStatus(node_id, node.kind, graph.kinds[node.kind].target, node.cell, key, status, why,
                                  inputs))
    finally:
        if index:
            index.close()
    return out
