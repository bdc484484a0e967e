"""What the OCI image nodes read (their values) and what they produce (an image in the engine).

Each image node's values also say how its image is named (``repo_and_tag``): from the values, never
parsed from a node id, so a datastore ``my-sql`` version ``8`` is ``guestforge/my-sql:8``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from builder.graph.step import Artifact, Values
from builder.matrix.models import Agent
from builder.oci.naming import base_repo, datastore_repo, exporter_repo
from builder.spec import CellSpec, ExporterSpec

Labels = dict[str, str]


class BaseValues(Values):
    """A Debian minbase: the suite, its mirrors (decided once, host or matrix) and dpkg's options."""

    name: str
    suite: str
    sources: tuple[str, ...]
    archive: str
    security: str | None
    components: tuple[str, ...]
    dpkg_options: tuple[str, ...]
    apt: tuple[str, ...] = ()

    def repo_and_tag(self) -> tuple[str, str]:
        return base_repo(self.name)


class DebugValues(Values):
    labels: Labels

    def repo_and_tag(self) -> tuple[str, str]:
        return "guestforge/debug", "latest"


class AgentAccount(BaseModel):
    """The agent's account and directories, which the datastore image prepares for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str
    uid: int
    log_dir: str
    config_dir: str


class DatastoreValues(Values):
    cell: CellSpec
    labels: Labels
    agent: AgentAccount

    def repo_and_tag(self) -> tuple[str, str]:
        return datastore_repo(self.cell.datastore, self.cell.version)


class UpstreamValues(Values):
    """An upstream image pinned by digest, standing in for the cell's datastore image."""

    image: str
    cell: CellSpec

    def repo_and_tag(self) -> tuple[str, str]:
        return datastore_repo(self.cell.datastore, self.cell.version)


class ExporterValues(Values):
    exporter: ExporterSpec
    labels: Labels

    def repo_and_tag(self) -> tuple[str, str]:
        return exporter_repo(self.exporter.name)


class CellName(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    datastore: str
    version: str


class AllInOneValues(Values):
    """The datastore image plus the agent layer: only the naming and labels are its own."""

    cell: CellName
    labels: Labels

    def repo_and_tag(self) -> tuple[str, str]:
        return datastore_repo(self.cell.datastore, self.cell.version, allinone=True)


class AgentImageValues(Values):
    agent: Agent
    labels: Labels

    def repo_and_tag(self) -> tuple[str, str]:
        return "guestforge/agent", "latest"


class ImageArtifact(Artifact):
    """An image in the local engine: its content-addressed ref, moving tag and ID."""

    ref: str
    tag: str
    id: str
    size: int
    layers: tuple[str, ...]
    agent_layer: str | None = None    # the agent tree's diff_id, when the image carries it on top
    upstream: str | None = None       # the pinned upstream reference it was pulled from
    apt: tuple[str, ...] = ()         # a base's: the apt options (NAME=VALUE) every build on it passes to apt

    def identity(self) -> str | None:
        return self.id



class FileArtifact(Artifact):
    """A small file under the build dir (relative path), checked by its sha256."""

    path: str
    size: int
    sha256: str

    def identity(self) -> str | None:
        return f"sha256:{self.sha256}"

