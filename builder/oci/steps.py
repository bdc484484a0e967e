"""Actions that produce OCI nodes: bases, images built from templates, appended layers, upstream pulls."""

from __future__ import annotations

from pathlib import Path

from builder.agent.values import AgentTreeArtifact
from builder.errors import BuildError
from builder.graph.step import Artifact, RunContext, Step
from builder.oci.engine import Engine
from builder.oci.layers import append_layer
from builder.oci.naming import image_ref, short
from builder.oci.render import render
from builder.oci.rootfs import ResolvedBase, bootstrap
from builder.oci.values import (AllInOneValues, BaseValues, DatastoreValues, DebugValues, ExporterValues,
                                ImageArtifact, UpstreamValues)
from builder.paths import CONTAINER_SPECS, REPO

KEY_LABEL = "io.guestforge.key"
__all__ = ["KEY_LABEL", "short"]


def node_image(step: Step, values: BaseValues | DebugValues | DatastoreValues | UpstreamValues | ExporterValues
               | AllInOneValues) -> tuple[str, str]:
    """(content-addressed ref, moving tag) of the image ``step`` produces."""
    return image_ref(values, step.key)


class ImageAction:
    """Common to every action whose artifact is an image in the local engine."""

    serial = False

    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    @property
    def engine(self) -> Engine:
        engine: Engine = self.ctx.engine
        return engine

    def exists(self, artifact: Artifact) -> bool:
        """The image recorded for this key is still in the engine (by ID)."""
        return isinstance(artifact, ImageArtifact) and self.engine.image(artifact.id) is not None

    def restore(self, artifact: Artifact) -> None:
        """Point the tags back at the recorded image: another build dir may have moved them (same key,
        a base rebuilt byte-differently)."""
        assert isinstance(artifact, ImageArtifact)
        for ref in (artifact.ref, artifact.tag):
            current = self.engine.image(ref)
            if current is None or current.id != artifact.id:
                self.engine.tag(artifact.id, ref)

    def _artifact(self, ref: str, moving: str, image_id: str, agent_layer: str | None = None,
                  upstream: str | None = None) -> ImageArtifact:
        self.engine.tag(image_id, moving)
        image = self.engine.image(image_id)
        assert image is not None
        return ImageArtifact(ref=ref, tag=moving, id=image_id, size=int(image.attrs.get("Size", 0)),
                             layers=tuple(image.attrs["RootFS"]["Layers"]), agent_layer=agent_layer,
                             upstream=upstream)


class BaseAction(ImageAction):
    """mmdebstrap the suite, import it, delete the tarball (the image is the artifact)."""

    def run(self, step: Step) -> ImageArtifact:
        v = step.values(BaseValues)
        resolved = ResolvedBase(v.name, v.suite, v.archive, v.security, v.components, v.apt)
        ref, moving = node_image(step, v)
        tar = step.workdir / "rootfs.tar"
        try:
            bootstrap(resolved, tar, step.log)
            image_id = self.engine.import_rootfs(tar, ref, ['CMD ["bash"]', f"LABEL {KEY_LABEL}={step.key}"],
                                                 step.log)
        finally:
            tar.unlink(missing_ok=True)
        return self._artifact(ref, moving, image_id).model_copy(update={"apt": v.apt})


class TemplateAction(ImageAction):
    """Render ``template`` with the node's values (+ the base image) and build it; the files under the
    node's ``context_dirs`` (declared inputs) are the build context."""

    template = ""
    values_model: type[DebugValues | DatastoreValues | ExporterValues] = DebugValues

    def context_dirs(self, values: DebugValues | DatastoreValues | ExporterValues) -> tuple[str, ...]:
        return ()

    def run(self, step: Step) -> ImageArtifact:
        values = step.values(self.values_model)
        base = step.parent(ImageArtifact, "base")
        text = render(self.template, {"base_image": base.ref, "apt_options": list(base.apt),
                                      **values.model_dump(mode="json")}, CONTAINER_SPECS)
        (step.workdir / "Containerfile").write_text(text)
        ref, moving = node_image(step, values)
        files: dict[str, bytes | Path] = {}
        for rel in step.node.files:
            for directory in self.context_dirs(values):
                if rel.startswith(directory + "/") and not rel.endswith(".j2"):
                    files[rel[len(directory) + 1:]] = REPO / rel
        files["Containerfile"] = text.encode()
        image_id = self.engine.build(files, ref, step.log, labels={KEY_LABEL: step.key})
        return self._artifact(ref, moving, image_id)


class DebugAction(TemplateAction):
    template = "debug.Containerfile.j2"


class DatastoreAction(TemplateAction):
    template = "datastore.Containerfile.j2"
    values_model = DatastoreValues

    def context_dirs(self, values: DebugValues | DatastoreValues | ExporterValues) -> tuple[str, ...]:
        assert isinstance(values, DatastoreValues)
        return ("container_specs/flavors/common", f"container_specs/flavors/{values.cell.flavor}")


class ExporterAction(TemplateAction):
    template = "exporter.Containerfile.j2"
    values_model = ExporterValues


def config_cache(ctx: RunContext) -> Path:
    """Base image configs by image ID (``builder.oci.layers``): an append need not save the base again."""
    return ctx.build_dir / "work" / "image-configs"


class AllInOneAction(ImageAction):
    """Datastore image + the agent tree as one top layer (the same blob in every cell)."""

    def run(self, step: Step) -> ImageArtifact:
        values = step.values(AllInOneValues)
        datastore = step.parent(ImageArtifact, "datastore", "upstream")
        tree = step.parent(AgentTreeArtifact, "agent-tree")
        ref, moving = node_image(step, values)
        labels = {**values.labels, KEY_LABEL: step.key, "io.guestforge.agent.layer": tree.diff_id}
        result = append_layer(self.engine, datastore.ref, step.path(tree.path), ref, step.log, labels=labels,
                              comment=f"guestforge agent layer {tree.version}", diff_id=tree.diff_id,
                              config_cache=config_cache(self.ctx))
        return self._artifact(ref, moving, result.image_id, agent_layer=result.diff_id)


class UpstreamAction(ImageAction):
    """An upstream image pinned by digest: pulled (from a registry the host reaches), never modified."""

    def run(self, step: Step) -> ImageArtifact:
        values = step.values(UpstreamValues)
        image_ref_pinned = values.image
        image = self.engine.image(image_ref_pinned)
        if image is None:
            with step.log.open("a") as out:
                out.write(f"pulling {image_ref_pinned}\n")
            try:
                self.engine.client.images.pull(image_ref_pinned)
            except Exception as exc:
                raise BuildError(f"cannot pull {image_ref_pinned}: {exc}", str(step.log)) from None
            image = self.engine.image(image_ref_pinned)
        if image is None:
            raise BuildError(f"{image_ref_pinned} not present after pull", str(step.log))
        ref, moving = node_image(step, values)
        self.engine.tag(str(image.id), ref)
        return self._artifact(ref, moving, str(image.id), upstream=image_ref_pinned)
