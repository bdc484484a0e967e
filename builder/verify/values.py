"""What a suite-running verification reads (the testinfra files and the specs its context holds) and
what it records (the run's counts, skips and reports)."""

from __future__ import annotations

from builder.graph.step import Artifact, Values
from builder.matrix.models import Agent
from builder.spec import CellSpec


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

    def skipped_checks(self) -> tuple[str, ...]:
        return self.skips

