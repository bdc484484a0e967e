"""Run testinfra suites (tests/infra) against a cell's images, in a pytest subprocess.

The caller (the build graph) decides which files verify which artifact; this module writes the
context JSON the suites read (``--gf-context``), runs pytest through the one subprocess door, always
removes the run's containers afterwards (even when interrupted), and reads the JUnit report back.
"""

from __future__ import annotations

import secrets
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.errors import ToolError
from builder.paths import REPO
from builder.run import run
from builder.spec import VerifyContext
from builder.verify.pod import cleanup

DEFAULT_TIMEOUT = 1800.0


@dataclass(frozen=True)
class SuiteResult:
    """What one suite run did. ``passed`` is False when any test failed or errored, when none ran, or
    when every test of one of its files was skipped (``idle``): a check that skipped itself checked nothing."""

    passed: bool
    tests: int
    failures: int
    errors: int
    skipped: int
    duration: float
    exit_code: int
    log: Path
    junit: Path
    run_id: str
    skips: tuple[str, ...] = ()   # "test: reason" for every skipped test
    idle: tuple[str, ...] = ()    # suite files none of whose tests ran

    def summary(self) -> str:
        state = "passed" if self.passed else "FAILED"
        idle = f"; every test skipped in {', '.join(self.idle)}" if self.idle else ""
        return (f"{state}: {self.tests} tests, {self.failures} failed, {self.errors} errors, "
                f"{self.skipped} skipped in {self.duration:.1f}s{idle} (log: {self.log})")


def new_run_id() -> str:
    """A short id unique enough to label one run's containers (time + random)."""
    return f"{time.strftime('%H%M%S')}{secrets.token_hex(3)}"


@dataclass(frozen=True)
class JunitCounts:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    skips: tuple[str, ...] = ()
    idle: tuple[str, ...] = ()


def _module(path: Path) -> str:
    return ".".join(path.resolve().relative_to(REPO).with_suffix("").parts)


def junit_counts(junit: Path, test_files: Sequence[Path] = ()) -> JunitCounts:
    """Counts summed over the report's test suites (zeros if unreadable), every skip with its reason, and
    the ``test_files`` of which no test ran (all skipped, or none collected)."""
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return JunitCounts(idle=tuple(str(f.resolve().relative_to(REPO)) for f in test_files))
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests, failures, errors, skipped = (sum(int(s.get(attr, 0)) for s in suites)
                                        for attr in ("tests", "failures", "errors", "skipped"))
    ran: dict[str, int] = {_module(f): 0 for f in test_files}
    skips = []
    for case in root.iter("testcase"):
        classname = case.get("classname", "")
        skip = case.find("skipped")
        if skip is not None:
            skips.append(f"{classname}::{case.get('name')}: {skip.get('message', '')}".strip())
            continue
        for module in ran:
            if classname == module or classname.startswith(module + "."):
                ran[module] += 1
    idle = tuple(str(f.resolve().relative_to(REPO)) for f in test_files if not ran[_module(f)])
    return JunitCounts(tests, failures, errors, skipped, tuple(skips), idle)


def run_suite(context: VerifyContext, test_files: Sequence[Path], log: Path, junit: Path,
              timeout: float = DEFAULT_TIMEOUT, extra_args: Sequence[str] = ()) -> SuiteResult:
    """Run pytest + testinfra on ``test_files`` with ``context``; never raises for failing tests.

    ``context``: ``{"cell": {...}, "images": {"datastore", "exporter", "debug", "agent", "aio"},
    "agent": {...}}`` (see ``builder.verify.pod.VerifyContext``); a ``run_id`` is added when absent.
    The context JSON is written next to ``log``; pytest's output goes to ``log``.
    """
    run_id = context.run_id or new_run_id()
    log.parent.mkdir(parents=True, exist_ok=True)
    junit.parent.mkdir(parents=True, exist_ok=True)
    junit.unlink(missing_ok=True)
    ctx_path = log.with_name(log.stem + ".context.json")
    ctx_path.write_text(context.model_copy(update={"run_id": run_id}).model_dump_json(indent=2) + "\n")
    argv = [sys.executable, "-m", "pytest", "--rootdir", str(REPO), "-p", "no:cacheprovider",
            f"--gf-context={ctx_path}", f"--junitxml={junit}", "-o", "junit_family=xunit2",
            "-o", "log_level=INFO", "-v", *extra_args, *(str(f) for f in test_files)]
    started = time.monotonic()
    try:
        exit_code = run(argv, log=log, cwd=REPO, check=False, timeout=timeout).returncode
    except ToolError as exc:          # timed out: the suite failed, say so in its log
        with log.open("a") as out:
            out.write(f"guestforge: {exc}\n")
        exit_code = -1
    finally:
        cleanup(run_id)
    duration = time.monotonic() - started
    counts = junit_counts(junit, test_files)
    passed = exit_code == 0 and counts.tests > 0 and not counts.failures and not counts.errors and not counts.idle
    return SuiteResult(passed, counts.tests, counts.failures, counts.errors, counts.skipped, duration, exit_code,
                       log, junit, run_id, counts.skips, counts.idle)
