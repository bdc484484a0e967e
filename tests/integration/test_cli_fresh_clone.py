"""The README's commands as a newcomer runs them: from a fresh clone, with the default build dir.

The build directory is named relatively (``build``, the default) and later moved: artifacts record
paths relative to it, so the moved directory is still a complete cache.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CELL = "redis-7.0"


def fresh_clone(dest: Path) -> Path:
    """A clone of the repository's committed state plus the working tree's changes (what CI's clean clone
    holds once they are committed)."""
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(dest)], check=True)
    diff = subprocess.run(["git", "-C", str(ROOT), "diff", "HEAD", "--binary"], check=True,
                          capture_output=True).stdout
    if diff:
        subprocess.run(["git", "-C", str(dest), "apply", "--allow-empty", "-"], input=diff, check=True)
    untracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--others", "--exclude-standard"], check=True,
                               capture_output=True, text=True).stdout.split()
    for rel in untracked:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    return dest


def guestforge(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "builder.cli.main", *args], cwd=clone, capture_output=True,
                          text=True, env={"PYTHONPATH": str(clone), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                          "HOME": str(Path.home())}, timeout=1800)


def test_build_with_the_default_build_dir_then_move_it(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path / "guestforge")
    for command in (["validate"], ["plan"], ["affected", "--since", "HEAD"], ["ci", "--all", "--format", "github"]):
        result = guestforge(clone, *command)
        assert result.returncode == 0, (command, result.stderr[-3000:])
    first = guestforge(clone, "build", "--target", "oci", CELL)
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads((clone / "build/reports/latest-build.json").read_text())
    assert report["ok"] and {n["status"] for n in report["nodes"]} <= {"built", "cached"}

    (clone / "build").rename(clone / "moved")
    again = guestforge(clone, "build", "--target", "oci", CELL, "--build-dir", "moved")
    assert again.returncode == 0, again.stderr[-3000:]
    rows = json.loads((clone / "moved/reports/latest-build.json").read_text())["nodes"]
    assert {n["status"] for n in rows} == {"cached"}, {n["node"]: n["status"] for n in rows}
    plan = guestforge(clone, "plan", CELL, "--target", "oci", "--format", "json", "--build-dir", "moved")
    assert plan.returncode == 0, plan.stderr[-3000:]
    statuses = {n["node"]: n["status"] for n in json.loads(plan.stdout)["nodes"]}
    built = {row["node"]: statuses[row["node"]] for row in rows}
    assert set(built.values()) == {"built"}, built
