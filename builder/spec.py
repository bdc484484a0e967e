"""The specs of a cell, its exporter and its agent, declared once.

The graph's node values are dumps of these models (``model_dump(mode="json")``), the verification
context JSON a suite reads is a ``VerifyContext`` holding them, and the testinfra suites type their
fixtures with them: one shape from the matrix to the check.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from builder.errors import GuestforgeError
from builder.matrix.models import Agent, Exporter, Flavor


class ExporterSpec(Exporter):
    """A metrics exporter as the matrix declares it, with its name."""

    name: str


class CellSpec(BaseModel):
    """One datastore version with defaults and overrides resolved: what a cell's nodes and checks read.
    ``exporter`` is set where a check needs it (verification), never in an image build's values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    datastore: str
    version: str
    flavor: Flavor
    user: str
    uid: int
    port: int
    data_dir: str
    start: tuple[str, ...]
    health: tuple[str, ...]
    client: str
    packages: tuple[str, ...] = ()
    upstream: bool = False      # an upstream image reused unchanged: guestforge's own additions are absent
    exporter: ExporterSpec | None = None


class AgentContext(Agent):
    """The matrix's agent plus what its build produced that a check compares against."""

    layer_diff_id: str | None = None


class VerifyError(GuestforgeError):
    """A cell's containers did not come up as its pod would, or the context lacks what a check needs."""


class VerifyContext(BaseModel):
    """What a verification's suites run against: ``{"run_id", "cell", "images": {datastore, exporter, debug,
    agent, aio}, "agent"}``, written by ``builder.verify.runner`` and read by ``tests/infra/conftest.py``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    images: dict[str, str | None] = {}
    cell: CellSpec | None = None
    agent: AgentContext | None = None
    run_id: str | None = None

    @classmethod
    def load(cls, path: Path) -> VerifyContext:
        return cls.model_validate(json.loads(path.read_text()))

    def image(self, role: str) -> str:
        ref = self.images.get(role)
        if not ref:
            raise VerifyError(f"the verification context names no {role} image")
        return ref
