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
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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


def run_job(clone: Path, work: Path, branch: str, playbooks: list[str]) -> dict[str, object]:
    (work / "jobdir" / "work").mkdir(parents=True)
    inventory = {"all": {"hosts": {"builder": {"ansible_connection": "local",
                                               "ansible_python_interpreter": sys.executable}}}}
    (work / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    zuul = {"zuul": {"branch": branch, "project": {"src_dir": str(clone)},
                     "executor": {"log_root": str(work / "logs")}}, "guestforge_cache_registry": ""}
    (work / "vars.json").write_text(json.dumps(zuul))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(Path.home()), "LANG": "C.UTF-8",
           "ZUUL_JOBDIR": str(work / "jobdir"), "ANSIBLE_LIBRARY": str(ROOT / "tests" / "zuul" / "library"),
           "ANSIBLE_LOCAL_TEMP": str(work / "ansible-tmp"), "ANSIBLE_NOCOLOR": "1"}
    for playbook in playbooks:
        proc = subprocess.run([str(ANSIBLE), "-i", str(work / "inventory.yaml"), "-e", f"@{work / 'vars.json'}",
                               str(clone / playbook)], capture_output=True, text=True, env=env, timeout=900)
        assert proc.returncode == 0, f"{playbook}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    return dict(json.loads((work / "jobdir" / "work" / "results.json").read_text()))


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
