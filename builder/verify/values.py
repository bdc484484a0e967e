"""What a suite-running verification reads (the testinfra files and the specs its context holds) and
what it records (the run's counts, skips and reports)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Self

from builder.graph.step import Artifact, Values
from builder.matrix.models import Agent
from builder.paths import REPO
from builder.spec import CellSpec

if TYPE_CHECKING:  # the runner pulls in the Docker SDK: not for the graph's declaration
    from builder.verify.runner import SuiteResult


class SuiteValues(Values):
    """The suites a verification runs (``tests/infra`` paths) and the specs its context passes them."""

    suites: tuple[str, ...]
    cell: CellSpec | None = None
    agent: Agent | None = None


class SuiteArtifact(Artifact):
    """One suite run's record (``builder.verify.runner.SuiteResult``) and the files it ran."""

    passed: bool
    tests: int
    failures: int
    errors: int
    skipped: int
    duration: float
    exit_code: int
    log: str
    junit: str
    run_id: str
    skips: tuple[str, ...] = ()
    idle: tuple[str, ...] = ()
    suites: tuple[str, ...] = ()

    @classmethod
    def of(cls, result: SuiteResult, files: Sequence[Path]) -> Self:
        """The record of ``result``, a run of ``files`` (paths under the repository)."""
        return cls(passed=result.passed, tests=result.tests, failures=result.failures, errors=result.errors,
                   skipped=result.skipped, duration=round(result.duration, 1), exit_code=result.exit_code,
                   log=str(result.log), junit=str(result.junit), run_id=result.run_id, skips=result.skips,
                   idle=result.idle, suites=tuple(str(f.relative_to(REPO)) for f in files))

    def skipped_checks(self) -> tuple[str, ...]:
        return self.skips

