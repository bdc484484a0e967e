"""The Zuul plan job, run by ``ansible-playbook`` the way a Zuul executor runs it: the job's pre-run
(setup) and run (plan) playbooks against the node (here: localhost), with the ``zuul`` variables Zuul
sets, and ``zuul_return`` writing the job's result where the executor reads it. A change to one cell
in the clone must come back as exactly that cell's child jobs, each defined in ci/zuul.d/cells.yaml.

The clone reuses this checkout's virtualenv through a stand-in ``.venv/bin/guestforge`` (what a CI
cache of the venv gives): ci/setup-host sees it current and skips the pip install.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from builder.session import RunResult
from tests.conftest import ROOT
from tests.integration.test_cli_fresh_clone import fresh_clone

pytestmark = pytest.mark.integration
ANSIBLE = Path(sys.executable).with_name("ansible-playbook")


def stand_in_venv(clone: Path) -> None:
    bin_dir = clone / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "guestforge").write_text(
        f'#!/bin/sh\nPYTHONPATH="{clone}" exec "{sys.executable}" -m builder.cli.main "$@"\n')
    (bin_dir / "guestforge").chmod(0o755)
    (clone / ".venv" / ".guestforge-stamp").write_text(
        hashlib.sha256((clone / "pyproject.toml").read_bytes()).hexdigest() + "\n")


def run_job(clone: Path, work: Path, branch: str, playbooks: list[str],
            extra: dict[str, str] | None = None, expect_rc: int = 0) -> dict[str, object]:
    """Run ``playbooks`` in order as the job's phases; the last one must exit ``expect_rc``, the others 0.
    Returns what ``zuul_return`` wrote (empty if nothing)."""
    (work / "jobdir" / "work").mkdir(parents=True, exist_ok=True)
    inventory = {"all": {"hosts": {"builder": {"ansible_connection": "local",
                                               "ansible_python_interpreter": sys.executable}}}}
    (work / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    zuul = {"zuul": {"branch": branch, "project": {"src_dir": str(clone)},
                     "executor": {"log_root": str(work / "logs")}}, "guestforge_cache_registry": "", **(extra or {})}
    (work / "vars.json").write_text(json.dumps(zuul))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(Path.home()), "LANG": "C.UTF-8",
           "ZUUL_JOBDIR": str(work / "jobdir"), "ANSIBLE_LIBRARY": str(ROOT / "tests" / "zuul" / "library"),
           "ANSIBLE_LOCAL_TEMP": str(work / "ansible-tmp"), "ANSIBLE_NOCOLOR": "1"}
    for n, playbook in enumerate(playbooks, 1):
        proc = subprocess.run([str(ANSIBLE), "-i", str(work / "inventory.yaml"), "-e", f"@{work / 'vars.json'}",
                               str(clone / playbook)], capture_output=True, text=True, env=env, timeout=1800)
        rc = expect_rc if n == len(playbooks) else 0
        assert (proc.returncode == 0) is (rc == 0), f"{playbook}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    results = work / "jobdir" / "work" / "results.json"
    return dict(json.loads(results.read_text())) if results.is_file() else {}


def test_plan_job_returns_the_child_jobs_of_a_change(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path / "src")
    subprocess.run(["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam",
                    "wip", "--allow-empty"], check=True)
    branch = subprocess.run(["git", "-C", str(clone), "rev-parse", "--abbrev-ref", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "-C", str(clone), "update-ref", f"refs/remotes/origin/{branch}", "HEAD"], check=True)
    matrix = clone / "matrix.yaml"
    matrix.write_text(matrix.read_text().replace(
        '"7.0": {base: "debian:bookworm", packages: [redis-server]}',
        '"7.0": {base: "debian:bookworm", packages: [redis-server, redis-tools]}'))
    subprocess.run(["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam",
                    "redis 7.0: redis-tools"], check=True)
    stand_in_venv(clone)
    results = run_job(clone, tmp_path, branch, ["ci/playbooks/setup.yaml", "ci/playbooks/plan.yaml"])
    children = results["zuul"]["child_jobs"]  # type: ignore[index]
    defined = {entry["job"]["name"] for entry in yaml.safe_load((ROOT / "ci/zuul.d/cells.yaml").read_text())
               if "job" in entry}
    assert children and set(children) <= defined, children
    assert sorted(children) == sorted(f"guestforge-{target}-redis-7-0" for target in ("oci", "vm", "baremetal"))


def linked_copy(src: Path, dest: Path) -> Path:
    """A build dir moved elsewhere (hard links), with its own index: the job's run must not write the gate's."""
    def copy(s: str, d: str) -> None:
        if Path(s).name.startswith("index.sqlite") or "/reports/" in s:
            shutil.copy2(s, d)
        else:
            os.link(s, d)
    shutil.copytree(src, dest, copy_function=copy, symlinks=True)
    return dest


def test_cell_job_runs_the_cli_and_collects_the_report(tmp_path: Path, gate: RunResult) -> None:
    """setup -> cell -> collect for one cell, on a build dir where the gate already verified it (a warm
    cache): the job runs `verify` through ansible, nothing is redone, and the logs and report come back."""
    clone = fresh_clone(tmp_path / "src")
    stand_in_venv(clone)
    build = linked_copy(gate.build_dir, tmp_path / "build")
    job = {"guestforge_cell": "redis-7.0", "guestforge_target": "oci", "guestforge_build_dir": str(build)}
    run_job(clone, tmp_path, "main", ["ci/playbooks/setup.yaml", "ci/playbooks/cell.yaml",
                                      "ci/playbooks/collect.yaml"], job)
    report = json.loads((build / "reports" / "latest-verify.json").read_text())
    assert report["ok"] and {r["cell"] for r in report["nodes"]} == {None, "redis-7.0"}
    assert {r["node"]: r["status"] for r in report["nodes"] if r["status"] != "cached"} == {}
    with tarfile.open(tmp_path / "logs" / "guestforge-logs.tar.gz") as packed:
        assert "reports/latest-verify.json" in packed.getnames()


def test_a_failing_cell_fails_its_job(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path / "src")
    stand_in_venv(clone)
    job = {"guestforge_cell": "no-such-cell-1", "guestforge_target": "oci", "guestforge_build_dir": "build"}
    run_job(clone, tmp_path, "main", ["ci/playbooks/setup.yaml", "ci/playbooks/cell.yaml"], job, expect_rc=2)
