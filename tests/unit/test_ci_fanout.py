"""The CI fan-out: generated Zuul jobs are committed and current; the GitHub matrix has one entry per job."""

from __future__ import annotations

import json

import pytest
import yaml

from builder.cli.main import main
from tests.conftest import ROOT


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["-m", str(ROOT / "matrix.yaml"), *argv]) == 0
    return capsys.readouterr().out


def test_committed_zuul_jobs_are_current(capsys: pytest.CaptureFixture[str]) -> None:
    generated = run(capsys, "ci", "--all", "--format", "zuul-jobs")
    committed = (ROOT / "ci/zuul.d/cells.yaml").read_text()
    assert generated == committed, "ci/zuul.d/cells.yaml is stale: regenerate it with " \
                                   "`guestforge ci --all --format zuul-jobs > ci/zuul.d/cells.yaml`"


def test_every_job_named_in_the_project_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    docs = yaml.safe_load(run(capsys, "ci", "--all", "--format", "zuul-jobs"))
    jobs = [d["job"]["name"] for d in docs if "job" in d]
    pipeline = next(d["project"] for d in docs if "project" in d)["check"]["jobs"]
    listed = [next(iter(j)) if isinstance(j, dict) else j for j in pipeline]
    assert listed == ["guestforge-plan", *jobs] and len(jobs) == 30


def test_github_matrix_for_all(capsys: pytest.CaptureFixture[str]) -> None:
    include = json.loads(run(capsys, "ci", "--all", "--format", "github"))["include"]
    assert {"cell": "postgresql-15", "target": "oci", "name": "guestforge-oci-postgresql-15"} in include
    assert len(include) == 30


def test_ci_needs_since_or_all(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-m", str(ROOT / "matrix.yaml"), "ci", "--format", "github"]) == 2
