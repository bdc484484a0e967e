"""The CI definitions, checked by the tools their hosts would apply: zizmor (GitHub Actions security audit,
offline) and the GitHub workflow schema (check-jsonschema); Zuul jobs name playbooks that exist and
inherit from jobs that are defined."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT

WORKFLOW = ROOT / "ci" / "github" / "gate.yml"
def _tool(name: str) -> str:
    """A dev tool of the virtualenv running the tests."""
    return str(Path(sys.executable).with_name(name))


def test_github_workflow_passes_zizmor() -> None:
    proc = subprocess.run([_tool("zizmor"), "--offline", "--no-progress", str(WORKFLOW)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings to report" in proc.stdout + proc.stderr


def test_github_workflow_matches_the_schema() -> None:
    proc = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_github_workflow_runs_no_expression_as_shell_code() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    for job in doc["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), f"{step.get('name')}: pass expressions through env"
            uses = step.get("uses", "")
            assert not uses or len(uses.split("@", 1)[1]) == 40, f"{uses}: pin actions to a commit"


def test_zuul_jobs_name_playbooks_and_parents_that_exist() -> None:
    jobs = [entry["job"] for f in sorted((ROOT / "ci" / "zuul.d").glob("*.yaml"))
            for entry in yaml.safe_load(f.read_text()) if "job" in entry]
    names = {job["name"] for job in jobs}
    for job in jobs:
        assert job.get("parent", "base") in names | {"base"}, job["name"]
        for phase in ("pre-run", "run", "post-run"):
            for playbook in [job[phase]] if isinstance(job.get(phase), str) else job.get(phase, []):
                assert (ROOT / playbook).is_file(), f"{job['name']}: {phase} {playbook} is missing"
