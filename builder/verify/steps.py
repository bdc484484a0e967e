"""Verification nodes: run the testinfra files a node declares against the artifacts of its parents.

The files come from the node's own declared inputs (``tests/infra/**/test_*.py``), so what
runs is exactly what the verification key hashes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builder.errors import BuildError
from builder.graph.execute import Action, Step
from builder.paths import REPO
from builder.verify.runner import run_suite


def _images(step: Step) -> dict[str, str]:
    wanted = {"datastore": "datastore", "exporter": "exporter", "debug": "debug", "agent-image": "agent",
              "aio": "aio"}
    images = {}
    for parent_id, artifact in step.parents.items():
        kind = parent_id.split(":", 1)[0]
        if kind in wanted and "ref" in artifact:
            images[wanted[kind]] = str(artifact["ref"])
    return images


def context_for(step: Step) -> dict[str, Any]:
    values = step.node.values
    context: dict[str, Any] = {"images": _images(step)}
    if "cell" in values:
        context["cell"] = {**values["cell"], "upstream": bool(values.get("upstream"))}
        if "exporter" in values:
            context["cell"]["exporter"] = dict(values["exporter"])
    if "agent" in values:
        tree = next((a for p, a in step.parents.items() if p == "agent-tree"), {})
        context["agent"] = {**values["agent"], "layer_diff_id": tree.get("diff_id")}
    return context


class VerifyAction:
    serial = False

    def __init__(self, build_dir: Path):
        self.build_dir = build_dir

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
            error = BuildError(result.summary(), str(step.log))
            error.artifact = artifact  # type: ignore[attr-defined]
            raise error
        return artifact


def verification_actions(build_dir: Path) -> dict[str, Action]:
    action = VerifyAction(build_dir)
    return {"verify-datastore": action, "verify-agent": action, "verify-aio": action}
