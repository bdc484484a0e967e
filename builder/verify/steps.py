"""Verification nodes: run the testinfra files a node declares against the artifacts of its parents.

The files come from the node's own declared inputs (``tests/infra/**/test_*.py``), so what
runs is exactly what the verification key hashes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from builder.errors import BuildError
from builder.graph.step import ArtifactFailure, RunContext, Step
from builder.paths import REPO
from builder.spec import AgentContext, CellSpec, VerifyContext
from builder.verify.runner import run_suite

# The images a suite may ask for, by the parent node's kind -> the context's role name.
IMAGE_ROLES = {"datastore": "datastore", "upstream": "datastore", "exporter": "exporter", "debug": "debug",
               "agent-image": "agent", "aio": "aio"}


def _images(step: Step) -> dict[str, str]:
    return {IMAGE_ROLES[p.kind]: str(p.artifact["ref"]) for p in step.parents.values()
            if p.kind in IMAGE_ROLES and "ref" in p.artifact}


def context_for(step: Step) -> VerifyContext:
    """The suites' context from exactly the node's values and its parents' artifacts."""
    values = step.node.values
    cell = agent = None
    if "cell" in values:
        cell = CellSpec.model_validate({**values["cell"], "exporter": values.get("exporter")})
    if "agent" in values:
        trees = step.parents_of("agent-tree")
        agent = AgentContext.model_validate({**values["agent"],
                                             "layer_diff_id": trees[0].artifact.get("diff_id") if trees else None})
    return VerifyContext(images=_images(step), cell=cell, agent=agent)


class VerifyAction:
    serial = False

    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def exists(self, artifact: Mapping[str, Any]) -> bool:
        return bool(artifact.get("passed"))

    def run(self, step: Step) -> dict[str, Any]:
        files = [REPO / f for f in step.node.values.get("suites", [])]
        if not files:
            raise BuildError(f"{step.node.id}: no testinfra files declared", str(step.log))
        junit = step.log.with_suffix(".junit.xml")
        result = run_suite(context_for(step), files, step.log, junit)
        artifact = {**result.as_dict(), "suites": [str(f.relative_to(REPO)) for f in files]}
        if not result.passed:
            raise ArtifactFailure(result.summary(), str(step.log), artifact)
        return artifact
