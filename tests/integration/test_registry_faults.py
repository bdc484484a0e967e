"""Publishing through a faulty network: resets at random points, injected 500s and 429s, stalls past
the read timeout, bounded in count. Each publish either completes after retries or fails with an
error (exit 1); at no point does the moving tag name an artifact the registry cannot serve whole,
and the next publish with the faults gone completes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from builder.cache.oci_client import Registry, RegistryOptions
from builder.errors import GuestforgeError
from builder.graph.step import Node, Parent, RunContext, Step
from builder.publish.actions import PublishDiskAction
from builder.publish.values import PublishDiskValues
from builder.vm.values import GuestImagesArtifact
from tests.integration.faults import FAULTS, FaultProxy
from tests.integration.registries import registry

pytestmark = pytest.mark.integration
PATIENT = RegistryOptions(timeout=1.5, attempts=6, backoff=0.05, max_wait=0.5)


def disk_step(build_dir: Path, host: str, round_: int) -> Step:
    """A publish-vm step for a vm image of 4 MiB whose content (and key) changes every round."""
    cell = build_dir / "artifacts" / "postgresql-15"
    cell.mkdir(parents=True, exist_ok=True)
    (cell / "postgresql-15.qcow2").write_bytes(os.urandom(4 << 20))
    (cell / "postgresql-15.vm.manifest.json").write_text(json.dumps({"round": round_}))
    files = {"vm": "artifacts/postgresql-15/postgresql-15.qcow2",
             "vm-manifest": "artifacts/postgresql-15/postgresql-15.vm.manifest.json"}
    values = PublishDiskValues(registry=host, prefix="dbaas", target="vm", datastore="postgresql", version="15")
    node = Node(id="publish-vm:postgresql-15", kind="publish-disk", title="publish", values=values,
                cell="postgresql-15", parents=("guest-image:postgresql-15",))
    log = build_dir / "logs" / f"publish-{round_}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    image = GuestImagesArtifact(files=files, size=4 << 20, preloaded={}, refs={}, build_seconds=0.0)
    parents = {"guest-image:postgresql-15": Parent("guest-image:postgresql-15", "guest-image", image)}
    return Step(node, f"{round_:02d}" + "ab" * 31, parents, log, build_dir / "work", build_dir)


def test_publish_survives_faults_and_never_moves_a_tag_onto_a_partial_artifact(tmp_path: Path) -> None:
    with registry(tmp_path / "registry") as reg, FaultProxy(reg.host, seed=18, budget=16, rate=0.3) as proxy:
        action = PublishDiskAction(RunContext(tmp_path / "build", registry=PATIENT))
        direct = Registry(reg.host)  # the registry itself, past the proxy
        completed: list[str] = []
        failed = 0
        # At least 8 rounds, more (up to 24) until every kind of fault hit at least once and 10 in all: how many
        # connections and chunks a round makes depends on the host's speed, so a fixed count is not enough.
        for round_ in range(24):
            if round_ >= 8 and len(proxy.faults) >= 10 and set(proxy.faults) == set(FAULTS):
                break
            try:
                completed.append(action.run(disk_step(tmp_path / "build", proxy.host, round_)).digest)
            except GuestforgeError as exc:
                assert exc.exit_code == 1
                print(f"publish {round_} failed: {exc}")
                failed += 1
            moving = direct.manifest_digest("dbaas/postgresql", "15-vm")
            if moving is not None:
                assert moving in completed and direct.missing("dbaas/postgresql", moving) == []
        proxy.enabled = False
        last = action.run(disk_step(tmp_path / "build", proxy.host, 99))
        assert direct.manifest_digest("dbaas/postgresql", "15-vm") == last.digest
        assert direct.missing("dbaas/postgresql", last.digest) == []
    print(f"faults injected: {len(proxy.faults)} ({', '.join(sorted(set(proxy.faults)))}); "
          f"publishes completed {len(completed)}, failed {failed}")
    assert len(proxy.faults) >= 10 and set(proxy.faults) == set(FAULTS)
    assert len(completed) >= 4  # retries carried most publishes through
