"""What an action sees: its node, its key, its parents' artifacts, where to write.

This module is what action modules import from the graph package, and nothing here imports the
scheduler: a node's key hashes the import closure of its action (``builder.graph.code``), so the
scheduler, the CLI and the index must stay out of that closure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from builder.errors import BuildError, GuestforgeError

if TYPE_CHECKING:
    from builder.cache.transport import RegistryOptions

# An artifact field an action sets when its value alone decides the artifact (a layer's diff_id): a rebuild
# with the same value is the same artifact for every consumer.
CONTENT = "content"

Artifact = dict[str, Any]


@dataclass(frozen=True)
class Parent:
    """One parent of a step: its node id, its kind (the node's, never parsed from the id), its artifact."""

    node_id: str
    kind: str
    artifact: Artifact


@dataclass(frozen=True)
class Step:
    """What an action gets: its node, key, parents' artifacts, and where to write.

    Paths an artifact records are relative to the build directory (``rel``); ``path`` resolves them, so a
    build directory can be moved or named relatively.
    """

    node: Any  # builder.graph.model.Node (typed loosely here so this module stays a leaf)
    key: str
    parents: Mapping[str, Parent]
    log: Path
    workdir: Path
    build_dir: Path

    def parent(self, *kinds: str) -> Artifact:
        """The artifact of the single parent whose node kind is one of ``kinds``."""
        found = [p.artifact for p in self.parents.values() if p.kind in kinds]
        if len(found) != 1:
            raise GuestforgeError(f"internal: {self.node.id} has {len(found)} parents of kind {'/'.join(kinds)}")
        return found[0]

    def parents_of(self, *kinds: str) -> list[Parent]:
        return [p for p in self.parents.values() if p.kind in kinds]

    def path(self, rel: str | Path) -> Path:
        """A recorded path (relative to the build dir; absolute ones from older records pass through)."""
        return self.build_dir / rel

    def rel(self, path: Path) -> str:
        """``path`` as an artifact records it: relative to the build directory."""
        return str(path.resolve().relative_to(self.build_dir))


class RunContext:
    """What every action of one run shares: the (absolute) build directory, on first use the engine, how
    to reach registries and the key publishing signs with (neither is an input of any key)."""

    def __init__(self, build_dir: Path, engine: Callable[[], Any] | None = None,
                 registry: RegistryOptions | None = None, sign_key: Path | None = None):
        self.build_dir = build_dir.resolve()
        self.registry, self.sign_key = registry, sign_key
        self._engine_factory = engine
        self._engine: Any = None

    @property
    def artifacts(self) -> Path:
        return self.build_dir / "artifacts"

    @property
    def engine(self) -> Any:  # builder.oci.engine.Engine
        if self._engine is None:
            if self._engine_factory is None:
                raise GuestforgeError("internal: this run has no container engine")
            self._engine = self._engine_factory()
        return self._engine


class Action(Protocol):
    """How one kind of node is produced. ``serial`` actions never run two at a time (e.g. qemu)."""

    serial: bool

    def run(self, step: Step) -> Artifact: ...

    def exists(self, artifact: Mapping[str, Any]) -> bool: ...


class ArtifactFailure(BuildError):
    """A step that failed but produced a record worth keeping (a verification's counts and junit)."""

    def __init__(self, message: str, log: str | None, artifact: Artifact):
        super().__init__(message, log)
        self.artifact = artifact
