"""The ``bundle`` node: render, check and write a cell's Kubernetes bundle to
``build/artifacts/CELL/bundle/``. Its images are named ``PREFIX/NAME:TAG-KEY`` (``--image-prefix``,
default ``localhost/guestforge``: a name no cluster resolves to Docker Hub); ``publish`` writes
``bundle.published/`` with every image pinned by digest."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from builder.agent.config import manager_for
from builder.errors import BuildError
from builder.agent.values import AgentTreeArtifact
from builder.graph.step import Artifact, RunContext, Step
from builder.k8s.bundle import AgentPlan, Bundle, render
from builder.k8s.validate import problems
from builder.k8s.values import BundleArtifact, BundleValues
from builder.matrix.models import Agent
from builder.oci.values import ImageArtifact
from builder.plan import Cell

LOCAL_PREFIX = "guestforge/"
DEFAULT_PREFIX = "localhost/guestforge"


def prefixed(local: str, prefix: str) -> str:
    """``guestforge/postgresql:15-abc`` -> ``PREFIX/postgresql:15-abc``."""
    if not local.startswith(LOCAL_PREFIX):
        raise BuildError(f"internal: {local!r} is not a guestforge image reference")
    return f"{prefix.rstrip('/')}/{local[len(LOCAL_PREFIX):]}"


def agent_plan(agent: Agent, cell: Cell, managers: list[str] | tuple[str, ...], in_pod: bool) -> AgentPlan:
    """The agent goes into the pod only when it declares it can run there and manages this datastore."""
    manager = manager_for(cell.datastore, cell.flavor)
    if not in_pod:
        return AgentPlan(None, f"omitted: {agent.package} {agent.version} needs a root helper (sudo) and a "
                               "container engine API, which a pod under PSA restricted does not give "
                               "(agent.runs_in_pod is false; see README)")
    if manager not in managers:
        return AgentPlan(None, f"omitted: {agent.package} {agent.version} has no manager for {cell.datastore}")
    return AgentPlan(manager)


def write_bundle(bundle: Bundle, directory: Path) -> dict[str, str]:
    """Replace ``directory`` with the bundle's files (complete or absent); name -> sha256.

    The node's record lists ``files`` (name -> path relative to the build dir) and ``sha256`` (name ->
    digest), the form the registry cache stores and restores file by file."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, text in bundle.files.items():
        (tmp / name).write_text(text)
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)
    return {name: hashlib.sha256(text.encode()).hexdigest() for name, text in bundle.files.items()}


def checked(bundle: Bundle, log: Path) -> Bundle:
    found = problems(bundle.documents())
    if found:
        raise BuildError("bundle rejected: " + "; ".join(found), str(log))
    return bundle


def unchanged(build_dir: Path, files: Mapping[str, str], digests: Mapping[str, str]) -> bool:
    """Every recorded file of the bundle is still there with its digest."""
    if not files or set(files) != set(digests):
        return False
    for name, rel in files.items():
        path = build_dir / str(rel)
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digests[name]:
            return False
    return True


def record(step: Step, directory: Path, digests: Mapping[str, str]) -> dict[str, Any]:
    """The ``dir``, ``files`` and ``sha256`` fields of a bundle's record."""
    return {"dir": step.rel(directory), "files": {name: step.rel(directory / name) for name in digests},
            "sha256": dict(digests)}


def read_bundle(step: Step, files: Mapping[str, str]) -> dict[str, str]:
    """A recorded bundle's files: name -> text."""
    return {name: step.path(rel).read_text() for name, rel in files.items()}


class BundleAction:
    serial = False

    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def exists(self, artifact: Artifact) -> bool:
        return isinstance(artifact, BundleArtifact) and unchanged(self.ctx.build_dir, artifact.files,
                                                                  artifact.sha256)

    def run(self, step: Step) -> BundleArtifact:
        v = step.values(BundleValues)
        datastore = step.parent(ImageArtifact, "datastore", "upstream")
        cell = Cell.from_spec(v.cell, image=datastore.upstream)
        local = {"datastore": datastore.ref, "exporter": step.parent(ImageArtifact, "exporter").ref}
        managers: list[str] = []
        if v.agent_in_pod:   # only then are the agent's nodes parents (builder.pipeline)
            local["agent"] = step.parent(ImageArtifact, "agent-image").ref
            managers = list(step.parent(AgentTreeArtifact, "agent-tree").managers)
        images = {role: prefixed(ref, v.image_prefix) for role, ref in local.items()}
        plan = agent_plan(v.agent, cell, managers, v.agent_in_pod)
        bundle = checked(render(cell, v.agent, images, plan, v.resources, step.key), step.log)
        for doc in bundle.documents():
            if yaml.safe_load(yaml.safe_dump(doc)) != doc:
                raise BuildError("bundle does not survive a YAML round trip", str(step.log))
        directory = self.ctx.artifacts / cell.name / "bundle"
        digests = write_bundle(bundle, directory)
        with step.log.open("a") as out:
            out.write(f"bundle {directory}: {', '.join(digests)}\n")
        used = {role: ref for role, ref in images.items() if plan.manager or role != "agent"}
        return BundleArtifact(**record(step, directory, digests), images=used,
                              local={images[role]: local[role] for role in used}, agent=plan.manager or plan.omitted)
