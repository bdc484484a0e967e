"""Transient network failures are told apart from real build failures."""

from __future__ import annotations

import pytest

from builder.oci.engine import _transient


@pytest.mark.parametrize("output", [
    "Err:1 http://mirror/debian bookworm InRelease\n  Could not connect to mirror:80 (10.0.0.1). - connect (111)",
    "E: Failed to fetch http://mirror/pool/main/p/x.deb  Hash Sum mismatch",
    "WARNING: Retrying ... ConnectionResetError(104, 'Connection reset by peer')",
    "E: Failed to fetch http://mirror/x  503 Service Unavailable",
])
def test_transient(output: str) -> None:
    assert _transient(output)


@pytest.mark.parametrize("output", [
    "E: Unable to locate package redis-server-nonexistent",
    "ERROR: No matching distribution found for trove==99",
    "/bin/sh: 1: frobnicate: not found",
])
def test_not_transient(output: str) -> None:
    assert not _transient(output)
