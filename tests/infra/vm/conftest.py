"""Fixtures of the VM image suites: what to expect, from the spec guestforge writes (``builder.vm.specs``).

Run by ``builder.vm.verify.verify_image`` (``--hosts=chroot://<mounted root>``, an ``ImageSpec``) and by
``builder.vm.boot.boot_and_verify`` (``--hosts=ssh://...``, a ``BootSpec``), each with ``--gf-vm-spec PATH``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.vm.specs import AgentLayout, BootSpec, ImageSpec


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--gf-vm-spec", type=Path, default=None, help="guestforge VM expectations (JSON)")


def _spec_path(request: pytest.FixtureRequest) -> Path:
    path: Path | None = request.config.getoption("--gf-vm-spec")
    if path is None:
        pytest.skip("no --gf-vm-spec given: these suites run through builder.vm.verify / builder.vm.boot")
    return path


@pytest.fixture(scope="session")
def image_spec(request: pytest.FixtureRequest) -> ImageSpec:
    return ImageSpec.read(_spec_path(request))


@pytest.fixture(scope="session")
def boot_spec(request: pytest.FixtureRequest) -> BootSpec:
    return BootSpec.read(_spec_path(request))


@pytest.fixture(scope="session")
def agent(request: pytest.FixtureRequest) -> AgentLayout:
    """The agent's layout, which both kinds of spec carry."""
    return AgentLayout.model_validate(json.loads(_spec_path(request).read_text())["agent"])
