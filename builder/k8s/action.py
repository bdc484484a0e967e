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
from builder.graph.step import RunContext, Step
from builder.k8s.bundle import AgentPlan, Bundle, render
from builder.k8s.validate import problems
from builder.matrix.models import Agent, Resources
from builder.plan import Cell

LOCAL_PREFIX = "guestforge/"
DEFAULT_PREFIX = "localhost/guestforge"


def prefixed(local: str, prefix: str) -> str:
    """``guestforge/postgresql:15-abc`` -> ``PREFIX/postgresql:15-abc``."""
    if not local.startswith(LOCAL_PREFIX):
        raise BuildError(f"internal: {local!r} is not a guestforge image reference")
    return f"{prefix.rstrip('/')}/{local[len(LOCAL_PREFIX):]}"


def agent_plan(agent: Agent, cell: Cell, managers: list[str]) -> AgentPlan:
    """The agent goes into the pod only when it declares it can run there and manages this datastore."""
    manager = manager_for(cell.datastore, cell.flavor)
    if not agent.runs_in_pod:
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


def unchanged(build_dir: Path, artifact: Mapping[str, Any]) -> bool:
    """Every recorded file of the bundle is still there with its digest."""
    files, digests = artifact.get("files") or {}, artifact.get("sha256") or {}
    if not files or set(files) != set(digests):
        return False
    for name, rel in dict(files).items():
        path = build_dir / str(rel)
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digests[name]:
            return False
    return True


def record(step: Step, directory: Path, digests: Mapping[str, str]) -> dict[str, Any]:
    return {"dir": step.rel(directory), "files": {name: step.rel(directory / name) for name in digests},
            "sha256": dict(digests)}


def read_bundle(step: Step, artifact: Mapping[str, Any]) -> dict[str, str]:
    """A recorded bundle's files: name -> text."""
    return {name: step.path(rel).read_text() for name, rel in dict(artifact["files"]).items()}


class BundleAction:
    serial = False

    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def exists(self, artifact: Mapping[str, Any]) -> bool:
        return unchanged(self.ctx.build_dir, artifact)

    def run(self, step: Step) -> dict[str, Any]:
        v = step.node.values
        datastore = step.parent("datastore", "upstream")
        cell = Cell.from_values(v["cell"], v["exporter"], image=datastore.get("upstream"))
        agent = Agent(**v["agent"])
        local = {"datastore": str(datastore["ref"]), "exporter": str(step.parent("exporter")["ref"]),
                 "agent": str(step.parent("agent-image")["ref"])}
        images = {role: prefixed(ref, v["image_prefix"]) for role, ref in local.items()}
        plan = agent_plan(agent, cell, list(step.parent("agent-tree").get("managers", [])))
        bundle = checked(render(cell, agent, images, plan, Resources.model_validate(v["resources"]), step.key),
                         step.log)
        for doc in bundle.documents():
            if yaml.safe_load(yaml.safe_dump(doc)) != doc:
                raise BuildError("bundle does not survive a YAML round trip", str(step.log))
        directory = self.ctx.artifacts / cell.name / "bundle"
        digests = write_bundle(bundle, directory)
        with step.log.open("a") as out:
            out.write(f"bundle {directory}: {', '.join(digests)}\n")
        used = {role: ref for role, ref in images.items() if plan.manager or role != "agent"}
        return {**record(step, directory, digests), "images": used,
                "local": {images[role]: local[role] for role in used}, "agent": plan.manager or plan.omitted}
