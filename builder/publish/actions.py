"""Actions that publish a cell's verified artifacts to a registry.

``publish-oci``: the datastore, all-in-one, exporter and agent images, pushed by the engine under the
local names (content tag and moving tag), and the cell's Kubernetes bundle copied to ``bundle.published/``
with every image pinned by digest.
``publish-disk``: a cell's vm or baremetal files as one OCI artifact, each file a layer titled with its
name (``oras pull`` writes them back out), the image manifest as config.

A publish node's parents include the verifications of what it pushes, so nothing unverified is pushed
and a failed cell blocks only its own publish. It exists while the registry still serves every tag at
the recorded digest: a wiped registry is published again.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping

import yaml

from builder.cache.oci_client import TITLE, AuthError, Registry, RegistryError, RegistryOptions
from builder.graph.step import Artifact, RunContext, Step
from builder.oci.engine import Engine
from builder.k8s.action import checked, read_bundle, record, unchanged, write_bundle
from builder.k8s.bundle import Bundle, dump
from builder.k8s.values import BundleArtifact
from builder.oci.naming import short
from builder.oci.values import ImageArtifact
from builder.publish.values import (PublishDiskValues, PublishedDisk, PublishedImage, PublishedImages,
                                    PublishImagesValues)
from builder.vm.values import GuestImagesArtifact
from builder.publish.attach import attach, subject_of
from builder.publish.order import promote
from builder.publish.provenance import Source, git_source, parent_inputs, statement
from builder.publish.refs import pin_pod_images, pinned, remote_ref
from builder.publish.signing import load_private_key

IMAGE_ROLES = ("datastore", "aio", "exporter", "agent-image")  # parent kinds whose images a cell ships
DISK_TYPE = "application/vnd.guestforge.disk-image.v1+json"
DISK_MEDIA = {".qcow2": "application/vnd.guestforge.disk.qcow2", ".raw": "application/vnd.guestforge.disk.raw",
              ".json": "application/json"}


def _split(ref: str) -> tuple[str, str, str]:
    """``HOST/REPO:TAG`` -> (host, repo, tag)."""
    host, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":")
    return host, repo, tag


def _still_there(pushed: Mapping[str, str], options: RegistryOptions | None) -> bool:
    """Every ``ref -> digest`` still resolves to that digest in its registry. A registry that refuses
    (401/403) raises: that is no answer to "is it there", and pushing again would not help."""
    registries: dict[str, Registry] = {}
    for ref, digest in pushed.items():
        host, repo, tag = _split(ref)
        try:
            registry = registries.setdefault(host, Registry(host, options))
            if registry.manifest_digest(repo, tag) != digest:
                return False
        except AuthError:
            raise
        except RegistryError:  # unreachable after retries: publish again (and fail there, loudly)
            return False
    return True


class _Attaching:
    """Provenance (always) and a signature (with ``--sign-key``) for each digest a publish pushes."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self._source: Source | None = None

    def attach(self, step: Step, registry: Registry, repo: str, digest: str) -> dict[str, str]:
        started = datetime.datetime.now(datetime.timezone.utc)
        if self._source is None:
            self._source = git_source()
        subject = subject_of(registry, repo, digest)
        inputs = parent_inputs((p.node_id, p.kind, p.artifact.identity(), p.key) for p in step.parents.values())
        doc = statement(subject.repository, digest, node=step.node.id, key=step.key,
                        values=step.node.values.manifest(), inputs=inputs, source=self._source, started=started)
        key = load_private_key(self.ctx.sign_key) if self.ctx.sign_key else None
        attached = attach(registry, subject, doc, key)
        with step.log.open("a") as out:
            out.writelines(f"attached {kind} {d} to {subject.repository}@{digest}\n" for kind, d in attached.items())
        return attached


class PublishImagesAction(_Attaching):
    serial = False

    def __init__(self, ctx: RunContext):
        super().__init__(ctx)
        self.artifacts = ctx.artifacts

    @property
    def engine(self) -> Engine:
        engine: Engine = self.ctx.engine
        return engine

    def exists(self, artifact: Artifact) -> bool:
        return (isinstance(artifact, PublishedImages) and unchanged(self.ctx.build_dir, artifact.files, artifact.sha256)
                and _still_there(artifact.pushed, self.ctx.registry))

    def run(self, step: Step) -> PublishedImages:
        values = step.values(PublishImagesValues)
        host, prefix = values.registry, values.prefix
        pushed: dict[str, str] = {}  # remote ref -> manifest digest
        images: dict[str, PublishedImage] = {}  # by role
        by_local: dict[str, str] = {}  # local ref -> pinned remote (for the bundle)
        registry = Registry(host, self.ctx.registry)
        for role in IMAGE_ROLES:  # blobs, manifest and key tag of every image (the engine pushes them)
            local = step.parent(ImageArtifact, *((role, "upstream") if role == "datastore" else (role,)))
            ref, tag = remote_ref(local.ref, host, prefix), remote_ref(local.tag, host, prefix)
            digest = self.engine.push(local.id, ref, step.log)
            pushed[ref] = digest
            attached = self.attach(step, registry, _split(ref)[1], digest)
            images[role] = PublishedImage(ref=ref, tag=tag, digest=digest, pinned=pinned(ref, digest), id=local.id,
                                          **attached)
            by_local[local.ref] = images[role].pinned
        bundle = step.parent(BundleArtifact, "bundle")
        pins = {ref: by_local[local] for ref, local in bundle.local.items()}
        files = {}
        for name, text in read_bundle(step, bundle.files).items():
            if name == "statefulset.yaml":
                header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
                text = header + dump(pin_pod_images(yaml.safe_load(text), pins))
            files[name] = text
        published = checked(Bundle(files), step.log)
        path = self.artifacts / (step.node.cell or "shared") / "bundle.published"
        digests = write_bundle(published, path)
        for image in images.values():  # moving tags last, each onto a complete artifact
            _, repo, moving = _split(image.tag)
            promote(registry, repo, image.digest, [moving], step.log)
            pushed[image.tag] = image.digest
        with step.log.open("a") as out:
            out.writelines(f"published {i.pinned} ({i.tag})\n" for i in images.values())
        return PublishedImages(**record(step, path, digests), images=images, pushed=pushed,
                               digest=images["datastore"].digest)


class PublishDiskAction(_Attaching):
    serial = False

    def exists(self, artifact: Artifact) -> bool:
        return isinstance(artifact, PublishedDisk) and _still_there(artifact.pushed, self.ctx.registry)

    def run(self, step: Step) -> PublishedDisk:
        v = step.values(PublishDiskValues)
        target, files = v.target, step.parent(GuestImagesArtifact, "guest-image").files
        roles = ["vm"] if target == "vm" else ["baremetal", "partition", "kernel", "ramdisk"]
        layers = []
        for role in roles:
            path = step.path(files[role])
            layers.append((path, DISK_MEDIA.get(path.suffix, "application/octet-stream"),
                           {TITLE: path.name, "io.guestforge.role": role}))
        manifest = step.path(files[f"{target}-manifest"])
        layers.append((manifest, DISK_MEDIA[".json"], {TITLE: manifest.name,
                                                        "io.guestforge.role": "manifest"}))
        config = json.dumps(json.loads(manifest.read_text()), sort_keys=True).encode()
        host, prefix = v.registry, v.prefix
        registry = Registry(host, self.ctx.registry)
        repo = f"{prefix}/{v.datastore}"
        tags = [f"{v.version}-{target}-{short(step.key)}", f"{v.version}-{target}"]
        described = registry.artifact_manifest(repo, DISK_TYPE, config, layers)  # blobs
        digest = registry.put_manifest(repo, registry.digest_of(described), described)  # manifest, by digest
        registry.put_manifest(repo, tags[0], described)  # key tag
        attached = self.attach(step, registry, repo, digest)
        promote(registry, repo, digest, tags[1:], step.log)  # moving tag last
        ref = f"{host}/{repo}:{tags[0]}"
        with step.log.open("a") as out:
            out.write(f"published {pinned(ref, digest)} ({len(layers)} files)\n")
        return PublishedDisk(ref=ref, digest=digest, pinned=pinned(ref, digest),
                             pushed={f"{host}/{repo}:{tag}": digest for tag in tags},
                             uploaded=tuple(step.rel(p) for p, _, _ in layers), **attached)
