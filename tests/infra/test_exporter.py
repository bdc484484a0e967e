"""The metrics-exporter sidecar: in the cell's pod, it reports the database up, as its own user."""

from __future__ import annotations

import re
from typing import Any

import pytest
from docker.models.containers import Container

from builder.verify.pod import CellInfo, ExporterInfo
from tests.infra.conftest import processes, wait_for


@pytest.fixture(scope="module")
def exporter_info(cell: CellInfo) -> ExporterInfo:
    if cell.exporter is None:
        pytest.skip("the cell has no exporter")
    return cell.exporter


def metrics(sandbox_host: Any, port: int) -> str:
    result = sandbox_host.run("curl -fsS --max-time 10 %s", f"http://127.0.0.1:{port}/metrics")
    return str(result.stdout) if result.rc == 0 else ""


def test_reports_the_database_up(exporter: Container, exporter_info: ExporterInfo, sandbox_host: Any) -> None:
    up = re.compile(rf"^{re.escape(exporter_info.up_metric)}(\{{[^}}]*\}})? 1(\.0)?$", re.MULTILINE)
    wait_for(lambda: bool(up.search(metrics(sandbox_host, exporter_info.port))), 60,
             f"{exporter_info.up_metric} 1 on :{exporter_info.port}/metrics", interval=2)


def test_runs_as_its_non_root_user(exporter: Container, exporter_info: ExporterInfo, sandbox_host: Any) -> None:
    program = (exporter_info.command[0] if exporter_info.command else exporter_info.name).rsplit("/", 1)[-1]
    procs = processes(sandbox_host, program)
    assert procs, f"no {program} process in the pod"
    assert {euid for _, euid, _ in procs} == {exporter_info.uid}
