"""Verification nodes: run the testinfra files a node declares against the artifacts of its parents.

The files come from the node's own declared inputs (``tests/infra/**/test_*.py``), so what
runs is exactly what the verification key hashes.
"""

from __future__ import annotations

from builder.agent.values import AgentTreeArtifact
from builder.errors import BuildError
from builder.graph.step import Artifact, ArtifactFailure, RunContext, Step
from builder.oci.values import ImageArtifact
from builder.paths import REPO
from builder.spec import AgentContext, VerifyContext
from builder.verify.runner import run_suite
from builder.verify.values import SuiteArtifact, SuiteValues

# The images a suite may ask for, by the parent node's kind -> the context's role name.
IMAGE_ROLES = {"datastore": "datastore", "upstream": "datastore", "exporter": "exporter", "debug": "debug",
               "agent-image": "agent", "aio": "aio"}


def _images(step: Step) -> dict[str, str | None]:
    return {IMAGE_ROLES[p.kind]: p.artifact.ref for p in step.parents.values()
            if p.kind in IMAGE_ROLES and isinstance(p.artifact, ImageArtifact)}


def context_for(step: Step) -> VerifyContext:
    """The suites' context from exactly the node's values and its parents' artifacts."""
    values = step.values(SuiteValues)
    agent = None
    if values.agent is not None:
        trees = [p.artifact for p in step.parents_of("agent-tree") if isinstance(p.artifact, AgentTreeArtifact)]
        agent = AgentContext(**values.agent.model_dump(), layer_diff_id=trees[0].diff_id if trees else None)
    return VerifyContext(images=_images(step), cell=values.cell, agent=agent)


class SuiteCheckAction:
    """A verification whose record is a suite run: done while its record says it passed."""

    serial = False

    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def exists(self, artifact: Artifact) -> bool:
        return isinstance(artifact, SuiteArtifact) and artifact.passed


class VerifyAction(SuiteCheckAction):

    def run(self, step: Step) -> SuiteArtifact:
        files = [REPO / f for f in step.values(SuiteValues).suites]
        if not files:
            raise BuildError(f"{step.node.id}: no testinfra files declared", str(step.log))
        junit = step.log.with_suffix(".junit.xml")
        result = run_suite(context_for(step), files, step.log, junit)
        artifact = SuiteArtifact.of(result, files)
        if not result.passed:
            raise ArtifactFailure(result.summary(), str(step.log), artifact)
        return artifact
