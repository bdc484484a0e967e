"""Actions that produce the agent tree, the agent sidecar image and the cell's pod spec."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace


from builder.agent.values import AgentTreeArtifact, AgentTreeValues
from builder.graph.step import Artifact, RunContext, Step
from builder.oci.archive import sha256_file
from builder.oci.layers import append_layer
from builder.oci.steps import KEY_LABEL, ImageAction, config_cache, short
from builder.oci.naming import image_ref
from builder.oci.values import AgentImageValues, FileArtifact, ImageArtifact
from builder.agent.bundle import sidecar_containerfile


class FileAction:
    """Artifacts that are files under ``build/artifacts``; they exist while the file has its digest. Their
    ``path`` is recorded relative to the build directory."""

    serial = False

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.artifacts = ctx.artifacts

    def exists(self, artifact: Artifact) -> bool:
        """Small files recorded with their sha256 (a pod spec, rewritten in place by every build of its
        cell) are checked by content; large ones, kept under key-derived names, by size."""
        if not isinstance(artifact, (FileArtifact, AgentTreeArtifact)):
            return False
        path = self.ctx.build_dir / artifact.path
        if not path.is_file() or path.stat().st_size != artifact.size:
            return False
        return not isinstance(artifact, FileArtifact) or sha256_file(path) == f"sha256:{artifact.sha256}"


class AgentTreeAction(FileAction):
    """Build the self-contained agent tree once; keep its tarball under a key-derived name."""

    def run(self, step: Step) -> AgentTreeArtifact:
        from builder.agent.bundle import build_agent_tree, pip_settings

        values = step.values(AgentTreeValues)
        agent = values.agent
        # The index is a keyed input; the host's CA bundle (for TLS-inspecting egress) is transport only.
        pip = replace(pip_settings(agent), index_url=values.pip.index_url)
        base = step.parent(ImageArtifact, "base")
        tree = build_agent_tree(self.ctx.engine, agent, base.ref, step.workdir, step.log, pip=pip, apt=base.apt)
        final = self.artifacts / "agent" / f"agent-tree-{short(step.key)}.tar"
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(tree.path, tmp)          # same file system: no 280 MB copy (a rebuild replaces, never rewrites)
        except OSError:
            shutil.copyfile(tree.path, tmp)
        tmp.replace(final)  # complete or absent, never half-written
        return AgentTreeArtifact(path=step.rel(final), diff_id=tree.diff_id, size=final.stat().st_size,
                                 version=tree.version, python=tree.python, managers=tree.managers,
                                 packages=tree.packages, builder_image=tree.builder_image, reused=tree.reused)


SIDECAR_BASE = "guestforge/agent:sidecar-base"


class AgentImageAction(ImageAction):
    """The agent sidecar: a small image for the agent's user and runtime config, plus the tree layer."""

    def run(self, step: Step) -> ImageArtifact:
        v = step.values(AgentImageValues)
        ref, moving = image_ref(v, step.key)
        base = step.parent(ImageArtifact, "base")
        text = sidecar_containerfile(v.agent, base.ref, v.labels, apt=base.apt)
        # The sidecar's own part stays tagged: an agent change then finds it in the engine's build
        # cache and costs the layer append only, not another apt install.
        pre = self.engine.build({"Containerfile": text.encode()}, SIDECAR_BASE, step.log)
        tree = step.parent(AgentTreeArtifact, "agent-tree")
        result = append_layer(self.engine, pre, step.path(tree.path), ref, step.log,
                              labels={KEY_LABEL: step.key}, comment=f"guestforge agent layer {tree.version}",
                              diff_id=tree.diff_id, config_cache=config_cache(self.ctx))
        return self._artifact(ref, moving, result.image_id, agent_layer=result.diff_id)
