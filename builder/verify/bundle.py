"""The ``verify-bundle`` node: play the cell's shipped Kubernetes bundle on podman and run
``tests/infra/bundle/`` against it (``builder.verify.play`` does the playing).

The images come from the Docker engine's store into podman's under the names the bundle uses; no
registry is involved. The suite writes its figures (seconds to Ready, restarts) to a JSON file that the
node's record keeps. Whatever the suite leaves behind (an interrupted run) is removed by run id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from builder.errors import BuildError
from builder.graph.step import ArtifactFailure, Step
from builder.k8s.values import BundleArtifact, BundleCheckArtifact
from builder.paths import REPO
from builder.spec import CellSpec, VerifyContext
from builder.verify.play import LABEL, podman, provide_images, serialised
from builder.verify.runner import new_run_id, run_suite
from builder.verify.steps import SuiteCheckAction
from builder.verify.values import SuiteValues


class BundleSpec(BaseModel):
    """What ``tests/infra/bundle`` reads (``--gf-bundle PATH``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bundle: str            # the bundle directory, as shipped
    cell: CellSpec
    run_id: str
    workdir: str           # private scratch space (the played pod file holds secret values)
    figures: str           # where the suite writes its figures (JSON)
    log: str

    @classmethod
    def load(cls, path: Path) -> BundleSpec:
        return cls.model_validate_json(path.read_text())


def remove_run(run_id: str, log: Path) -> None:
    """Remove the pods, Secrets and volumes of one run (they carry its id)."""
    with serialised():
        for pod in podman("pod", "ls", "-q", "--filter", f"label={LABEL}={run_id}", check=False).split():
            podman("pod", "rm", "--force", pod, check=False, log=log)
        for secret in podman("secret", "ls", "--format", "{{.Name}}", check=False).split():
            if secret.endswith(f"-{run_id}"):
                podman("secret", "rm", secret, check=False, log=log)
        for volume in podman("volume", "ls", "-q", check=False).split():
            if volume.endswith(f"-{run_id}"):
                podman("volume", "rm", "--force", volume, check=False, log=log)


class VerifyBundleAction(SuiteCheckAction):

    def run(self, step: Step) -> BundleCheckArtifact:
        values = step.values(SuiteValues)
        files = [REPO / f for f in values.suites]
        if not files or values.cell is None:
            raise BuildError(f"{step.node.id}: no testinfra files or no cell declared", str(step.log))
        bundle = step.parent(BundleArtifact, "bundle")
        provide_images(bundle.local, step.log)
        run_id = new_run_id()
        cell: CellSpec = values.cell
        spec = BundleSpec(bundle=str(step.path(bundle.dir)), cell=cell, run_id=run_id,
                          workdir=str(step.workdir / "play"), figures=str(step.log.with_suffix(".figures.json")),
                          log=str(step.log.with_suffix(".podman.log")))
        spec_path = step.log.with_suffix(".bundle.json")
        spec_path.write_text(spec.model_dump_json(indent=2) + "\n")
        Path(spec.figures).unlink(missing_ok=True)
        junit = step.log.with_suffix(".junit.xml")
        try:
            result = run_suite(VerifyContext(cell=cell, run_id=run_id), files, step.log, junit,
                               extra_args=[f"--gf-bundle={spec_path}"])
        finally:
            remove_run(run_id, step.log)
        figures: dict[str, Any] = json.loads(Path(spec.figures).read_text()) if Path(spec.figures).is_file() else {}
        artifact = BundleCheckArtifact.of(result, files).model_copy(update={"figures": figures})
        if not result.passed:
            raise ArtifactFailure(result.summary(), str(step.log), artifact)
        return artifact
