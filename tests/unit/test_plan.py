"""Expanding the default matrix and selecting cells."""

from __future__ import annotations

import json

import pytest

from builder.cli.main import main
from builder.errors import UsageError
from builder.matrix.loader import load_matrix
from builder.plan import expand, select
from tests.conftest import ROOT

DEFAULT_CELLS = ["postgresql-13", "postgresql-15", "postgresql-17", "mariadb-10.5", "mariadb-10.11",
                 "mariadb-11.8", "redis-6.0", "redis-7.0", "redis-8.0", "valkey-8.1"]


def test_default_matrix_has_the_ten_cells() -> None:
    cells = expand(load_matrix(ROOT / "matrix.yaml"))
    assert [c.name for c in cells] == DEFAULT_CELLS
    pg15 = next(c for c in cells if c.name == "postgresql-15")
    assert pg15.base is not None and pg15.base.suite == "bookworm"
    assert pg15.packages == ("postgresql-15",) and pg15.user == "postgres" and pg15.exporter.up_metric == "pg_up"


def test_plan_json_lists_cells_with_targets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-m", str(ROOT / "matrix.yaml"), "plan", "--format", "json"]) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert [c["cell"] for c in cells] == DEFAULT_CELLS
    assert all(c["targets"] == ["oci", "vm", "baremetal"] for c in cells)


def test_selectors_are_globs_over_name_and_suite() -> None:
    cells = expand(load_matrix(ROOT / "matrix.yaml"))
    assert [c.name for c in select(cells, ["postgresql-*"])] == DEFAULT_CELLS[:3]
    assert [c.name for c in select(cells, ["*-trixie"])] == ["postgresql-17", "mariadb-11.8", "redis-8.0", "valkey-8.1"]
    assert [c.name for c in select(cells, ["redis-7.0", "valkey-*"], "oci")] == ["redis-7.0", "valkey-8.1"]


def test_selector_matching_nothing_is_an_error() -> None:
    cells = expand(load_matrix(ROOT / "matrix.yaml"))
    with pytest.raises(UsageError, match="selector matches no cell: mysql-8"):
        select(cells, ["postgresql-15", "mysql-8"])


def test_version_overrides_and_target_defaults(small_matrix_text: str, tmp_path: object) -> None:
    from builder.matrix.loader import parse_matrix

    text = small_matrix_text + "        port: 5433\n        targets: [oci]\n"
    matrix, _ = parse_matrix(text, "m.yaml")
    [cell] = expand(matrix)
    assert cell.port == 5433 and cell.targets == ("oci",) and cell.user == "postgres"


def test_cell_rebuilt_from_declared_values() -> None:
    from dataclasses import replace

    from builder.plan import Cell

    for cell in expand(load_matrix(ROOT / "matrix.yaml")):
        rebuilt = Cell.from_spec(cell.spec(exporter=True), cell.image, cell.targets)
        assert rebuilt == replace(cell, base=None, base_name=None)
