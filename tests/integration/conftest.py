"""Integration fixtures: the real Docker engine, a real registry on loopback, one shared build dir.

The OCI gate (bases, agent, images) is built once per session into a temporary build
directory and shared by the tests that inspect it; Docker's own layer cache makes
local re-runs faster, but every session starts with an empty guestforge index.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from builder.matrix.loader import load_matrix
from builder.matrix.models import Matrix, Target
from builder.oci.engine import Engine
from builder.session import Options, RunResult, declare_graph, pick, run_graph
from tests.conftest import ROOT

REGISTRY = os.environ.get("GUESTFORGE_TEST_REGISTRY", "127.0.0.1:5000")
# One cell per datastore: the CI gate's representative slice.
GATE_CELLS = ["postgresql-15", "mariadb-10.11", "redis-7.0", "valkey-8.1"]
# Playing a bundle on podman takes about 2.5 minutes (a two-minute watch from Ready): one cell per flavor.
BUNDLE_CELLS = ("postgresql-15", "mariadb-10.11", "redis-7.0")


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine()


@pytest.fixture(scope="session")
def registry() -> str:
    try:
        urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=5).read()
    except OSError as exc:
        pytest.fail(f"no registry at {REGISTRY} ({exc}); ci/setup-host --registry starts one")
    return REGISTRY


@pytest.fixture(scope="session")
def matrix() -> Matrix:
    return load_matrix(ROOT / "matrix.yaml")


def run_oci(matrix: Matrix, selectors: list[str], build_dir: Path, command: str = "verify", engine: Engine | None = None,
            jobs: int = 2, cache: object = None, force: bool = False,
            targets: tuple[Target, ...] = ("oci",), bundles: tuple[str, ...] = ()) -> RunResult:
    """Run the graph as ``guestforge COMMAND --target ...`` would, for ``targets`` of the selected cells;
    of the bundle verifications, only those of ``bundles`` (what a publish needs still runs)."""
    cells = [c for c in pick(matrix, selectors, None)[0] if set(c.targets) & set(targets)]
    graph, wanted = declare_graph(matrix, cells, list(targets), verify=command == "verify")
    wanted = [w for w in wanted if not w.startswith("verify-bundle:") or w.partition(":")[2] in bundles]
    eng = engine or Engine()
    return run_graph(command, graph, wanted, Options(build_dir, jobs=jobs, force=force),
                     lambda: eng, console=Console(stderr=True, force_terminal=False),
                     cache=cache)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def gate_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gate-build")


@pytest.fixture(scope="session")
def gate(matrix: Matrix, gate_dir: Path, engine: Engine) -> Iterator[RunResult]:
    """Build and verify the representative cells once for the session."""
    yield run_oci(matrix, GATE_CELLS, gate_dir, engine=engine, bundles=BUNDLE_CELLS)
