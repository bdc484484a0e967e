"""A cache shared across engines, for real: runner A gates the default slice (postgresql-15, OCI) on the
main engine with ``--cache-registry``; runner B, on a second dockerd with an empty image store and its
own build dir, gates the same slice and builds nothing: every node, verifications included, is pulled
by key. Heavy (runner A builds the slice): the one test of its kind."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import docker
import pytest

from builder.cli.main import main
from tests.conftest import ROOT
from tests.integration.engines import second_engine

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SLICE = "postgresql-15"


def gate(build_dir: Path, cache: str) -> tuple[float, dict[str, dict[str, object]]]:
    started = time.monotonic()
    code = main(["-m", str(ROOT / "matrix.yaml"), "verify", "--target", "oci", "--build-dir", str(build_dir),
                 "-j", "1", "--cache-registry", cache, SLICE])
    seconds = time.monotonic() - started
    assert code == 0, f"gate failed; see {build_dir}/logs"
    report = json.loads((build_dir / "reports" / "latest-verify.json").read_text())
    return seconds, {row["node"]: row for row in report["nodes"]}


def test_runner_b_on_another_engine_builds_nothing(registry: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cache = f"{registry}/gftest-shared-{secrets.token_hex(4)}"
    a_seconds, a_nodes = gate(tmp_path / "runner-a", cache)
    with second_engine() as host:
        monkeypatch.setenv("DOCKER_HOST", host)
        assert docker.DockerClient(base_url=host).images.list() == []  # an empty store: nothing to reuse
        b_seconds, b_nodes = gate(tmp_path / "runner-b", cache)
        images = len(docker.DockerClient(base_url=host).images.list())
    statuses = {node: row["status"] for node, row in b_nodes.items()}
    pulled_bytes = sum(int(row.get("size") or 0) for row in b_nodes.values())  # type: ignore[call-overload]
    print(f"runner A: {len(a_nodes)} nodes in {a_seconds:.0f} s "
          f"({sum(r['status'] in ('built', 'verified') for r in a_nodes.values())} built or verified); "
          f"runner B: {sum(s == 'pulled' for s in statuses.values())} pulled, "
          f"{sum(s in ('built', 'verified') for s in statuses.values())} built, {pulled_bytes / 1e6:.0f} MB "
          f"in {b_seconds:.0f} s; {images} images in B's engine")
    assert set(statuses) == set(a_nodes)
    assert set(statuses.values()) == {"pulled"}, statuses
    assert images > 0 and b_seconds < a_seconds
