"""What the bundle nodes read and record."""

from __future__ import annotations

from typing import Any

from builder.graph.step import Artifact, Values
from builder.matrix.models import Agent, Resources
from builder.spec import CellSpec
from builder.verify.values import SuiteArtifact


class BundleValues(Values):
    """A cell's bundle: the cell with its exporter, the agent (and whether it can run in a pod), where
    the images are said to be, and the resolved requests and limits."""

    cell: CellSpec
    agent: Agent
    agent_in_pod: bool
    image_prefix: str
    resources: Resources


class BundleArtifact(Artifact):
    """The bundle's files (name -> path relative to the build dir, and name -> sha256), the image
    references it runs by role, and each of those references' local image."""

    dir: str
    files: dict[str, str]
    sha256: dict[str, str]
    images: dict[str, str] = {}
    local: dict[str, str] = {}
    agent: str = ""

    def identity(self) -> str | None:
        digest = self.sha256.get("statefulset.yaml")
        return f"sha256:{digest}" if digest else None


class BundleCheckArtifact(SuiteArtifact):
    """A bundle suite's record plus its figures (seconds to Ready, restarts over the watch)."""

    figures: dict[str, Any] = {}
