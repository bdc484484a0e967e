"""Actions that produce OCI nodes: bases, images built from templates, appended layers, upstream pulls."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builder.errors import BuildError
from builder.graph.step import RunContext, Step
from builder.oci.engine import Engine
from builder.oci.layers import append_layer
from builder.oci.naming import image_ref, short
from builder.oci.render import render
from builder.oci.rootfs import ResolvedBase, bootstrap
from builder.paths import CONTAINER_SPECS, REPO

KEY_LABEL = "io.guestforge.key"
__all__ = ["KEY_LABEL", "short"]


def node_image(step: Step) -> tuple[str, str]:
    """(content-addressed ref, moving tag) of the image ``step`` produces."""
    return image_ref(step.node.kind, step.node.values, step.key)


class ImageAction:
    """Common to every action whose artifact is an image in the local engine."""

    serial = False

    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    @property
    def engine(self) -> Engine:
        engine: Engine = self.ctx.engine
        return engine

    def exists(self, artifact: Mapping[str, Any]) -> bool:
        """The image recorded for this key is still in the engine (by ID)."""
        image_id = str(artifact.get("id", ""))
        return bool(image_id) and self.engine.image(image_id) is not None

    def restore(self, artifact: Mapping[str, Any]) -> None:
        """Point the tags back at the recorded image: another build dir may have moved them (same key,
        a base rebuilt byte-differently)."""
        image_id = str(artifact["id"])
        for ref in (artifact.get("ref"), artifact.get("tag")):
            current = self.engine.image(str(ref)) if ref else None
            if ref and (current is None or current.id != image_id):
                self.engine.tag(image_id, str(ref))

    def _artifact(self, step: Step, ref: str, moving: str, image_id: str, **extra: Any) -> dict[str, Any]:
        self.engine.tag(image_id, moving)
        image = self.engine.image(image_id)
        assert image is not None
        return {"ref": ref, "tag": moving, "id": image_id, "size": int(image.attrs.get("Size", 0)),
                "layers": list(image.attrs["RootFS"]["Layers"]), **extra}


class BaseAction(ImageAction):
    """mmdebstrap the suite, import it, delete the tarball (the image is the artifact)."""

    def run(self, step: Step) -> dict[str, Any]:
        v = step.node.values
        resolved = ResolvedBase(v["name"], v["suite"], v["archive"], v["security"], tuple(v["components"]))
        ref, moving = node_image(step)
        tar = step.workdir / "rootfs.tar"
        try:
            bootstrap(resolved, tar, step.log)
            image_id = self.engine.import_rootfs(tar, ref, ['CMD ["bash"]', f"LABEL {KEY_LABEL}={step.key}"],
                                                 step.log)
        finally:
            tar.unlink(missing_ok=True)
        return self._artifact(step, ref, moving, image_id)


class TemplateAction(ImageAction):
    """Render ``template`` with the node's values (+ the base image) and build it."""

    template = ""
    context_dirs: tuple[str, ...] = ()

    def context_files(self, step: Step) -> dict[str, bytes | Path]:
        files: dict[str, bytes | Path] = {}
        for rel in step.node.files:
            for prefix in self.context_dirs:
                directory = prefix.format(**step.node.values.get("cell", {}))
                if rel.startswith(directory + "/") and not rel.endswith(".j2"):
                    files[rel[len(directory) + 1:]] = REPO / rel
        return files

    def run(self, step: Step) -> dict[str, Any]:
        base = step.parent("base")
        text = render(self.template, {"base_image": base["ref"], **step.node.values}, CONTAINER_SPECS)
        (step.workdir / "Containerfile").write_text(text)
        ref, moving = node_image(step)
        files = {**self.context_files(step), "Containerfile": text.encode()}
        image_id = self.engine.build(files, ref, step.log, labels={KEY_LABEL: step.key})
        return self._artifact(step, ref, moving, image_id)


class DebugAction(TemplateAction):
    template = "debug.Containerfile.j2"


class DatastoreAction(TemplateAction):
    template = "datastore.Containerfile.j2"
    context_dirs = ("container_specs/flavors/common", "container_specs/flavors/{flavor}")


class ExporterAction(TemplateAction):
    template = "exporter.Containerfile.j2"


def config_cache(ctx: RunContext) -> Path:
    """Base image configs by image ID (``builder.oci.layers``): an append need not save the base again."""
    return ctx.build_dir / "work" / "image-configs"


class AllInOneAction(ImageAction):
    """Datastore image + the agent tree as one top layer (the same blob in every cell)."""

    def run(self, step: Step) -> dict[str, Any]:
        datastore, tree = step.parent("datastore", "upstream"), step.parent("agent-tree")
        ref, moving = node_image(step)
        labels = {**step.node.values["labels"], KEY_LABEL: step.key, "io.guestforge.agent.layer": tree["diff_id"]}
        result = append_layer(self.engine, datastore["ref"], step.path(tree["path"]), ref, step.log, labels=labels,
                              comment=f"guestforge agent layer {tree.get('version', '')}", diff_id=tree["diff_id"],
                              config_cache=config_cache(self.ctx))
        return self._artifact(step, ref, moving, result.image_id, agent_layer=result.diff_id)


class UpstreamAction(ImageAction):
    """An upstream image pinned by digest: pulled (from a registry the host reaches), never modified."""

    def run(self, step: Step) -> dict[str, Any]:
        image_ref_pinned: str = step.node.values["image"]
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
        ref, moving = node_image(step)
        self.engine.tag(str(image.id), ref)
        return self._artifact(step, ref, moving, str(image.id), upstream=image_ref_pinned)
