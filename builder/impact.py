"""Change impact: which cells and targets a change affects, by comparing node keys.

Every node is declared twice with the same code, once against the files of a git
revision and once against the work tree; a node is affected when its key differs.
Because keys hash exactly a node's inputs, this is exact: a README edit affects
nothing, a PostgreSQL template edit only PostgreSQL cells, builder code that shapes
every artifact everything (and the report says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import InputError
from builder.graph.model import Graph, diff_manifests
from builder.graph.trees import GitTree, Tree, WorkTree
from builder.matrix.loader import parse_matrix
from builder.matrix.models import ALL_TARGETS, Matrix
from builder.pipeline import HostInputs, declare
from builder.plan import expand

# Tool versions are the same on both sides of a comparison; affected never needs to probe them.
SAME_TOOLS: dict[str, str] = {}


@dataclass(frozen=True)
class CellTarget:
    cell: str
    target: str
    nodes: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass
class Impact:
    since: str
    touched: list[str]
    affected: list[CellTarget]
    unaffected: list[str]
    file_effects: dict[str, str] = field(default_factory=dict)
    everything: bool = False
    notes: list[str] = field(default_factory=list)


def _graph(matrix: Matrix, tree: Tree, host: HostInputs) -> tuple[Graph, dict[tuple[str, str], list[str]]]:
    """The full verification graph and, per (cell, target), the nodes its gate runs."""
    cells = expand(matrix)
    nodes, _ = declare(matrix, cells, ALL_TARGETS, tree, host, verify=True)
    graph = Graph(nodes, tree, SAME_TOOLS)
    per: dict[tuple[str, str], list[str]] = {}
    for cell in cells:
        for target in cell.targets:
            _, wanted = declare(matrix, [cell], [target], tree, host, verify=True)
            per[(cell.name, target)] = graph.closure(wanted)
    return graph, per


def _matrix_at(tree: Tree, path: str) -> Matrix | None:
    text = tree.read(path)
    if text is None:
        return None
    try:
        return parse_matrix(text, path)[0]
    except InputError:
        return None


def affected(repo: Path, since: str, matrix_path: str, matrix: Matrix, host: HostInputs) -> Impact:
    old_tree = GitTree(repo, since)
    try:
        touched = old_tree.changed_since()
        now, now_per = _graph(matrix, WorkTree(repo), host)
        old_matrix = _matrix_at(old_tree, matrix_path)
        old = _graph(old_matrix, old_tree, host)[0] if old_matrix else None
    finally:
        old_tree.close()
    impact = Impact(since=since, touched=touched, affected=[], unaffected=[])
    if old is None:
        impact.notes.append(f"{matrix_path} did not exist or was invalid at {since}: every cell counts as affected")
    changed: dict[str, list[str]] = {}
    for node_id, key in now.keys.items():
        if old is None or node_id not in old.keys:
            changed[node_id] = ["new node"]
        elif old.keys[node_id] != key:
            changed[node_id] = diff_manifests(old.manifests[node_id], now.manifests[node_id])
    for (cell, target), closure in now_per.items():
        hit = [n for n in closure if n in changed]
        if hit:
            reasons = sorted({f"{n}: {r}" for n in hit for r in changed[n] if not r.startswith("input ")})
            impact.affected.append(CellTarget(cell, target, tuple(hit), tuple(reasons)))
        else:
            impact.unaffected.append(f"{cell}/{target}")
    impact.file_effects, impact.everything = _file_effects(now, now_per, touched, matrix_path)
    return impact


def _file_effects(now: Graph, now_per: dict[tuple[str, str], list[str]], touched: list[str],
                  matrix_path: str) -> tuple[dict[str, str], bool]:
    """What each changed file reaches: (file -> effect, whether one shapes every cell target)."""
    effects: dict[str, str] = {}
    everything = False
    readers: dict[str, set[str]] = {}   # file -> the nodes that read it (declared) or run it (code closure)
    for node_id, manifest in now.manifests.items():
        for rel in (*manifest["files"], *manifest["code"]):
            readers.setdefault(rel, set()).add(node_id)
    children = now.children()
    for rel in touched:
        if rel == matrix_path:
            effects[rel] = "the matrix: the cells whose values changed"
            continue
        reach = _downstream(readers.get(rel, set()), children)
        cells = {ct for ct, closure in now_per.items() if reach.intersection(closure)}
        if not reach:
            effects[rel] = "shapes no artifact"
        elif len(cells) == len(now_per):
            effects[rel] = f"shapes every artifact ({len(readers[rel])} nodes read it directly)"
            everything = True
        else:
            effects[rel] = f"{len(cells)} of {len(now_per)} cell targets ({len(readers[rel])} nodes read it)"
    return effects, everything


def _downstream(start: set[str], children: dict[str, list[str]]) -> set[str]:
    seen, stack = set(start), list(start)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def job_name(cell: str, target: str) -> str:
    return f"guestforge-{target}-{cell}".replace(".", "-")
