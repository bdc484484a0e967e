"""Shared benchmark plumbing: run guestforge from a throwaway copy of the repository, read its reports.

Benchmarks edit inputs (an agent file, a matrix entry) to measure what a change costs, so they work on a
copy: the keys of a copy's nodes are computed from the copy's files, exactly as in a user's checkout.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
COPIED = ("matrix.yaml", "container_specs", "elements", "builder", "tests/infra", "tests/__init__.py",
          "tests/conftest.py", "pyproject.toml")


def copy_repo(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for rel in COPIED:
        src = REPO / rel
        if src.is_dir():
            shutil.copytree(src, dest / rel, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        else:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest / rel)
    return dest


@dataclass
class Run:
    command: str
    seconds: float
    exit_code: int
    report: dict[str, Any]

    def nodes(self, *statuses: str, kind_prefix: str = "") -> list[dict[str, Any]]:
        return [n for n in self.report["nodes"] if (not statuses or n["status"] in statuses)
                and n["kind"].startswith(kind_prefix)]


def guestforge(repo: Path, build_dir: Path, command: str, *args: str) -> Run:
    """Run ``guestforge COMMAND`` as a user would, from ``repo``; time it end to end."""
    argv = [sys.executable, "-m", "builder.cli.main", command, "--build-dir", str(build_dir), *args]
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=repo, env={"PYTHONPATH": str(repo), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                               "HOME": str(Path.home())},
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.monotonic() - started
    report_path = build_dir / "reports" / f"latest-{command}.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {"nodes": []}
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        show_failed_logs(proc.stderr)
    return Run(command, seconds, proc.returncode, report)


def show_failed_logs(stderr: str) -> None:
    """Print the tail of every failed node's log: the build directory is a temporary one."""
    for match in re.finditer(r"FAILED (\S+): see (\S+)", stderr):
        log = Path(match.group(2))
        if log.is_file():
            tail = log.read_text(errors="replace").splitlines()[-40:]
            print(f"--- {match.group(1)}: last lines of {log}", *tail, sep="\n", file=sys.stderr)


def forget_images() -> None:
    """Remove every guestforge image and the engine's build cache, so the next build is cold."""
    ids = subprocess.run(["docker", "images", "-q", "--filter", "label=io.guestforge.key"], capture_output=True,
                         text=True, check=True).stdout.split()
    listing = subprocess.run(["docker", "images", "--format", "{{.Repository}} {{.ID}}"], capture_output=True,
                             text=True, check=True).stdout.split("\n")
    ids += [line.split()[1] for line in listing if line.startswith("guestforge/")]
    if ids:
        subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], capture_output=True, check=False)
    subprocess.run(["docker", "builder", "prune", "-af"], capture_output=True, check=False)
    subprocess.run(["docker", "image", "prune", "-f"], capture_output=True, check=False)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)
