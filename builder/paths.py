"""Where the repository's own inputs live (templates, elements, testinfra suites)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONTAINER_SPECS = REPO / "container_specs"
ELEMENTS = REPO / "elements"
INFRA_TESTS = REPO / "tests" / "infra"
