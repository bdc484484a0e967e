"""Actions that produce the agent tree and the agent sidecar image."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from collections.abc import Mapping
from typing import Any

from builder.graph.step import CONTENT, RunContext, Step
from builder.matrix.models import Agent
from builder.oci.archive import sha256_file
from builder.oci.layers import append_layer
from builder.oci.steps import KEY_LABEL, ImageAction, config_cache, node_image, short
from builder.agent.bundle import sidecar_containerfile


class FileAction:
    """Artifacts that are files under ``build/artifacts``; they exist while the file has its digest. Their
    ``path`` is recorded relative to the build directory."""

    serial = False

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.artifacts = ctx.artifacts

    def exists(self, artifact: Mapping[str, Any]) -> bool:
        """Small files recorded with their sha256 (a pod spec, rewritten in place by every build of its
        cell) are checked by content; large ones, kept under key-derived names, by size."""
        if not artifact.get("path"):
            return False
        path = self.ctx.build_dir / str(artifact["path"])
        if not path.is_file() or path.stat().st_size != artifact.get("size"):
            return False
        return "sha256" not in artifact or sha256_file(path) == f"sha256:{artifact['sha256']}"


class AgentTreeAction(FileAction):
    """Build the self-contained agent tree once; keep its tarball under a key-derived name."""

    def run(self, step: Step) -> dict[str, Any]:
        from builder.agent.bundle import build_agent_tree, pip_settings

        agent = Agent(**step.node.values["agent"])
        # The index is a keyed input; the host's CA bundle (for TLS-inspecting egress) is transport only.
        pip = replace(pip_settings(agent), index_url=step.node.values["pip"]["index_url"])
        tree = build_agent_tree(self.ctx.engine, agent, step.parent("base")["ref"], step.workdir, step.log, pip=pip)
        final = self.artifacts / "agent" / f"agent-tree-{short(step.key)}.tar"
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(tree.path, tmp)          # same file system: no 280 MB copy (a rebuild replaces, never rewrites)
        except OSError:
            shutil.copyfile(tree.path, tmp)
        tmp.replace(final)  # complete or absent, never half-written
        # The tarball's digest decides everything consumers read (version, managers, packages come from
        # probing those bytes): a rebuild to the same digest lets the graph cut off below it.
        return {**tree.as_dict(), "path": step.rel(final), "size": final.stat().st_size, CONTENT: tree.diff_id}


SIDECAR_BASE = "guestforge/agent:sidecar-base"


class AgentImageAction(ImageAction):
    """The agent sidecar: a small image for the agent's user and runtime config, plus the tree layer."""

    def run(self, step: Step) -> dict[str, Any]:
        ref, moving = node_image(step)
        v = step.node.values
        text = sidecar_containerfile(Agent(**v["agent"]), step.parent("base")["ref"], v["labels"])
        # The sidecar's own part stays tagged: an agent change then finds it in the engine's build
        # cache and costs the layer append only, not another apt install.
        pre = self.engine.build({"Containerfile": text.encode()}, SIDECAR_BASE, step.log)
        tree = step.parent("agent-tree")
        result = append_layer(self.engine, pre, step.path(tree["path"]), ref, step.log,
                              labels={KEY_LABEL: step.key}, comment=f"guestforge agent layer {tree.get('version')}",
                              diff_id=tree["diff_id"], config_cache=config_cache(self.ctx))
        return self._artifact(step, ref, moving, result.image_id, agent_layer=result.diff_id)
