"""Fixtures of the VM image suites: what to expect, from the JSON spec guestforge writes.

Run by ``builder.vm.verify.verify_image`` (``--hosts=chroot://<mounted root>``) and by
``builder.vm.boot.boot_and_verify`` (``--hosts=ssh://...``), each with ``--gf-vm-spec PATH``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--gf-vm-spec", type=Path, default=None, help="guestforge VM image expectations (JSON)")


@pytest.fixture(scope="session")
def spec(request: pytest.FixtureRequest) -> dict[str, Any]:
    path = request.config.getoption("--gf-vm-spec")
    if path is None:
        pytest.skip("no --gf-vm-spec given: these suites run through builder.vm.verify / builder.vm.boot")
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


@pytest.fixture(scope="session")
def agent(spec: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = spec["agent"]
    return value
