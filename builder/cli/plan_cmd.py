"""``guestforge validate`` and ``guestforge plan``: read-only views of the matrix."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from builder.cli.context import CliContext
from builder.matrix.loader import load_matrix
from builder.matrix.models import ALL_TARGETS
from builder.plan import Cell, expand
from builder.session import declare_graph, pick
from builder.status import node_statuses

TARGET = click.Choice(ALL_TARGETS)


def cell_record(cell: Cell, targets: tuple[str, ...]) -> dict[str, object]:
    return {
        "cell": cell.name,
        "datastore": cell.datastore,
        "version": cell.version,
        "flavor": cell.flavor,
        "source": cell.source(),
        "exporter": cell.exporter_name,
        "targets": list(targets),
    }


@click.command(epilog="""\b
Examples:
  guestforge validate
  guestforge validate other-matrix.yaml
""")
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.pass_obj
def validate(obj: CliContext, file: Path | None) -> None:
    """Check a matrix file; print every problem as FILE:LINE: FIELD: MESSAGE (exit 2)."""
    path = file or obj.matrix_path
    matrix = load_matrix(path)
    cells = expand(matrix)
    click.echo(f"{path}: ok ({len(cells)} cells, {sum(len(c.targets) for c in cells)} cell targets)")


@click.command(epilog="""\b
Examples:
  guestforge plan
  guestforge plan 'postgresql-*' 'redis-7.0'
  guestforge plan '*-bookworm' --target vm --format json
  guestforge plan postgresql-15 --nodes          # every node: built, verified, or stale and why
""")
@click.argument("selectors", nargs=-1)
@click.option("--target", type=TARGET, help="Only this target.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--nodes", "show_nodes", is_flag=True, help="Also list the build graph's nodes with their status.")
@click.option("--build-dir", type=click.Path(path_type=Path, resolve_path=True), default=Path("build"),
              show_default=True)
@click.pass_obj
def plan(obj: CliContext, selectors: tuple[str, ...], target: str | None, fmt: str, show_nodes: bool,
         build_dir: Path) -> None:
    """Show the cells (datastore x version) and targets SELECTORS pick (globs; default all).

    With --nodes (always in JSON), each node of the build graph with its key and status against the
    build directory's index: built, verified, failed, new, or stale with the inputs that changed.
    """
    matrix = obj.matrix()
    cells, targets = pick(matrix, selectors, target)  # type: ignore[arg-type]
    rows = [cell_record(c, (target,) if target else c.targets) for c in cells]
    statuses = []
    if show_nodes or fmt == "json":
        graph, wanted = declare_graph(matrix, cells, targets, verify=True)
        statuses = node_statuses(graph, wanted, build_dir)
    if fmt == "json":
        click.echo(json.dumps({"cells": rows, "nodes": [asdict(s) for s in statuses]}, indent=2))
        return
    table = Table(title=f"{len(rows)} cells")
    for column in ("cell", "source", "exporter", "targets"):
        table.add_column(column)
    for cell, row in zip(cells, rows, strict=True):
        source = cell.image or f"{cell.base_name}: {' '.join(cell.packages)}"
        table.add_row(cell.name, source, cell.exporter_name, " ".join(row["targets"]))  # type: ignore[arg-type]
    console = Console()
    console.print(table)
    if show_nodes:
        nodes = Table(title=f"{len(statuses)} nodes ({build_dir})")
        for column in ("node", "key", "status", "why"):
            nodes.add_column(column, overflow="fold")
        colour = {"verified": "green", "built": "green", "failed": "red", "stale": "yellow", "new": "cyan"}
        for s in statuses:
            nodes.add_row(s.node, s.key[:12], f"[{colour[s.status]}]{s.status}[/]", "; ".join(s.why))
        console.print(nodes)


COMMANDS = [validate, plan]
