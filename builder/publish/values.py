"""What the publish nodes read (where to push) and record (what the registry holds, by digest)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from builder.graph.step import Artifact, Values


class PublishImagesValues(Values):
    registry: str
    prefix: str


class PublishDiskValues(Values):
    registry: str
    prefix: str
    target: str
    datastore: str
    version: str


class PublishedImage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: str
    tag: str
    digest: str
    pinned: str
    id: str
    signature: str | None = None  # the digest of its attached signature (with --sign-key)
    provenance: str | None = None  # the digest of its attached provenance statement


class PublishedImages(Artifact):
    """The cell's images by role, every pushed ref -> digest, and the pinned Kubernetes bundle (its
    directory, files and their digests, relative to the build dir, as ``builder.k8s.action.record``)."""

    images: dict[str, PublishedImage]
    pushed: dict[str, str]
    dir: str
    files: dict[str, str]
    sha256: dict[str, str]
    digest: str

    def identity(self) -> str | None:
        return self.digest

    def published_refs(self) -> tuple[str, ...]:
        return tuple(i.pinned for i in self.images.values())



class PublishedDisk(Artifact):
    ref: str
    digest: str
    pinned: str
    pushed: dict[str, str]
    uploaded: tuple[str, ...]
    signature: str | None = None
    provenance: str | None = None

    def identity(self) -> str | None:
        return self.digest

    def published_refs(self) -> tuple[str, ...]:
        return (self.pinned,)

