"""What the agent-tree node reads and what it produces: the tree's tarball and what probing it found."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from builder.graph.step import Artifact, Values
from builder.matrix.models import Agent


class PipIndex(BaseModel):
    """The package index pip uses: a keyed input (the host's CA bundle is transport only, not here)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index_url: str | None


class AgentTreeValues(Values):
    agent: Agent
    pip: PipIndex


class AgentTreeArtifact(Artifact):
    """The tree's layer tarball (``path``, relative to the build dir) and what its probe reported."""

    path: str
    diff_id: str
    size: int
    version: str
    python: str
    managers: tuple[str, ...]
    packages: tuple[str, ...] = ()
    builder_image: str = ""
    reused: bool = False

    def content(self) -> str | None:
        # Its digest decides everything consumers read (version, managers, packages come from probing
        # those bytes): a rebuild to the same digest is the same tree.
        return self.diff_id

    def identity(self) -> str | None:
        return self.diff_id

