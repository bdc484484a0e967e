"""The record of a run: one row per node (status, key, digest, size, duration, log), as JSON and a table."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from builder.graph.execute import Outcome
from builder.graph.model import Graph


@dataclass(frozen=True)
class Row:
    node: str
    kind: str
    target: str | None   # the target its kind serves (builder.graph.kinds); None: shared by every target
    cell: str | None
    title: str
    status: str
    key: str
    digest: str | None
    size: int | None
    seconds: float
    log: str | None
    error: str | None
    why: list[str]
    skipped: list[str]   # a verification's skipped checks, each "test: reason"


def rows(graph: Graph, outcomes: Mapping[str, Outcome]) -> list[Row]:
    out = []
    for node_id in graph.order:
        if node_id not in outcomes:
            continue
        node, o = graph.nodes[node_id], outcomes[node_id]
        a = o.artifact
        out.append(Row(node_id, node.kind, graph.kinds[node.kind].target, node.cell, node.title, o.status, o.key,
                       a.identity() if a else None, a.stored_bytes() if a else None, round(o.seconds, 2), o.log,
                       o.error, o.reasons, list(a.skipped_checks()) if a else []))
    return out


def write_report(build_dir: Path, command: str, table: list[Row], seconds: float) -> Path:
    reports = build_dir / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    body = {
        "command": command,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(seconds, 2),
        "ok": all(r.status not in ("failed", "blocked") for r in table),
        "nodes": [asdict(r) for r in table],
    }
    path = reports / f"{stamp}-{command}.json"
    path.write_text(json.dumps(body, indent=2) + "\n")
    (reports / f"latest-{command}.json").write_text(path.read_text())
    return path


def human_size(size: int | None) -> str:
    if not size:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1000
    return str(size)


def print_table(console: Console, table: list[Row]) -> None:
    t = Table(title="guestforge results")
    for col in ("node", "status", "digest", "size", "time"):
        t.add_column(col, overflow="fold")
    styles = {"failed": "red", "blocked": "yellow", "cached": "dim"}
    for r in table:
        status = r.status if not r.error else f"{r.status}: {r.error[:160]}"
        t.add_row(r.node, f"[{styles.get(r.status, 'green')}]{status}[/]", (r.digest or "")[:19],
                  human_size(r.size), f"{r.seconds:.1f}s")
    console.print(t)
