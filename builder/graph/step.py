"""What an action sees: its node, its key, its parents' artifacts, where to write.

This module is what action modules import from the graph package, and nothing here imports the
scheduler: a node's key hashes the import closure of its action (``builder.graph.code``), so the
scheduler, the CLI and the index must stay out of that closure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from builder.errors import BuildError, GuestforgeError

if TYPE_CHECKING:
    from builder.cache.transport import RegistryOptions


class Values(BaseModel):
    """What a node reads from the matrix and the host, typed per kind (``builder.graph.kinds``).

    Its ``model_dump(mode="json")`` is the ``values`` section of the node's manifest, so every field is
    an input of the key and nothing an action reads escapes it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    def manifest(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Artifact(BaseModel):
    """What a node produced, typed per kind; the index and the remote cache keep its JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def content(self) -> str | None:
        """A digest that alone decides the artifact for every consumer (a layer's diff_id), if there is
        one: a rebuild with the same content lets the graph cut off below it."""
        return None

    def record(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def identity(self) -> str | None:
        """The digest a report shows for it (an image ID, a layer's diff_id, a manifest digest)."""
        return None

    def stored_bytes(self) -> int | None:
        size = getattr(self, "size", None)
        return size if isinstance(size, int) else None

    def skipped_checks(self) -> tuple[str, ...]:
        """Checks a verification skipped, each ``test: reason``."""
        return ()

    def published_refs(self) -> tuple[str, ...]:
        """References by digest a publish produced."""
        return ()


A = TypeVar("A", bound=Artifact)
V = TypeVar("V", bound=Values)


@dataclass(frozen=True)
class Node:
    """One artifact or one verification, declared with exactly its inputs."""

    id: str
    kind: str
    title: str
    values: Values
    cell: str | None = None
    parents: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()


@dataclass(frozen=True)
class Parent:
    """One parent of a step: its node id, its kind (the node's, never parsed from the id), its artifact
    and the key it was made under (provenance names it)."""

    node_id: str
    kind: str
    artifact: Artifact
    key: str = ""


@dataclass(frozen=True)
class Step:
    """What an action gets: its node, key, parents' artifacts, and where to write.

    Paths an artifact records are relative to the build directory (``rel``); ``path`` resolves them, so a
    build directory can be moved or named relatively.
    """

    node: Node
    key: str
    parents: Mapping[str, Parent]
    log: Path
    workdir: Path
    build_dir: Path

    def values(self, model: type[V]) -> V:
        """The node's values as its kind's model (the registry guarantees it; this makes it typed)."""
        values = self.node.values
        if not isinstance(values, model):
            raise GuestforgeError(f"internal: {self.node.id} carries {type(values).__name__}, not {model.__name__}")
        return values

    def parent(self, model: type[A], *kinds: str) -> A:
        """The artifact of the single parent whose node kind is one of ``kinds``, as ``model``."""
        found = [p.artifact for p in self.parents.values() if p.kind in kinds]
        if len(found) != 1:
            raise GuestforgeError(f"internal: {self.node.id} has {len(found)} parents of kind {'/'.join(kinds)}")
        if not isinstance(found[0], model):
            raise GuestforgeError(f"internal: {self.node.id}'s {'/'.join(kinds)} parent produced a "
                                  f"{type(found[0]).__name__}, not a {model.__name__}")
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

    def exists(self, artifact: Artifact) -> bool: ...


class ArtifactFailure(BuildError):
    """A step that failed but produced a record worth keeping (a verification's counts and junit)."""

    def __init__(self, message: str, log: str | None, artifact: Artifact):
        super().__init__(message, log)
        self.artifact = artifact
