"""Fixtures of the bundle suite: the cell's shipped bundle played on podman, with fresh Secret values.

Run by ``builder.verify.bundle`` with ``--gf-bundle PATH`` (a ``BundleSpec``). The pod is played once
per session and removed at the end, its claim and Secrets with it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.flavors import FlavorRuntime, Secrets, flavor
from builder.spec import CellSpec
from builder.verify.bundle import BundleSpec
from builder.verify.play import PlayedPod, fill_template, load_statefulset, podman_env

READY_WINDOW = 120.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--gf-bundle", type=Path, default=None, help="guestforge bundle verification spec (JSON)")


@pytest.fixture(scope="session")
def spec(request: pytest.FixtureRequest) -> BundleSpec:
    path = request.config.getoption("--gf-bundle")
    if path is None:
        pytest.skip("no --gf-bundle given: this suite runs through `guestforge verify`")
    os.environ.update(podman_env())    # testinfra's podman backend runs podman from this process
    return BundleSpec.load(path)


@pytest.fixture(scope="session")
def bundle_cell(spec: BundleSpec) -> CellSpec:
    return spec.cell


@pytest.fixture(scope="session")
def bundle_runtime(bundle_cell: CellSpec) -> FlavorRuntime:
    return flavor(bundle_cell.flavor)


@pytest.fixture(scope="session")
def credentials() -> Secrets:
    """Fresh values for the Secret template, as a user fills it in (quotes, dollars, backslashes)."""
    return Secrets.generate()


@pytest.fixture(scope="session")
def figures(spec: BundleSpec) -> Iterator[dict[str, Any]]:
    found: dict[str, Any] = {}
    yield found
    Path(spec.figures).write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="session")
def played(spec: BundleSpec, credentials: Secrets, figures: dict[str, Any]) -> Iterator[PlayedPod]:
    bundle = Path(spec.bundle)
    if (bundle / "agent-config.secret.yaml").exists():
        pytest.fail("this harness does not play agent sidecars: podman 4.3 cannot mount a Secret volume "
                    "as a kubelet does (podman#16636; data left base64-encoded)")
    name, values = fill_template(bundle / "credentials.secret.yaml", dataclasses.asdict(credentials))
    pod = PlayedPod(load_statefulset(bundle), {name: values}, spec.run_id, Path(spec.workdir), Path(spec.log))
    try:
        pod.play()
        figures["ready_seconds"] = round(pod.wait_ready(READY_WINDOW), 1)
        yield pod
    finally:
        pod.close()
