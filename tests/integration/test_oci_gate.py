"""The OCI gate on the real engine: build + verify one cell per datastore, then the promises around it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bench.common import copy_repo, guestforge
from builder.agent.values import AgentTreeArtifact
from builder.k8s.action import unchanged
from builder.k8s.validate import problems
from builder.k8s.values import BundleArtifact, BundleCheckArtifact
from builder.oci.values import ImageArtifact
from builder.oci.engine import Engine
from builder.session import RunResult
from tests.integration.conftest import BUNDLE_CELLS, GATE_CELLS, run_oci

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_every_gate_node_succeeds(gate: RunResult) -> None:
    failed = {r.node: (r.error, r.log) for r in gate.table if r.status in ("failed", "blocked")}
    assert not failed, failed
    for cell in GATE_CELLS:
        for kind in ("datastore", "aio", "bundle", "verify-datastore", "verify-aio"):
            assert gate.outcomes[f"{kind}:{cell}"].status in ("built", "verified"), (kind, cell)
    for cell in BUNDLE_CELLS:
        assert gate.outcomes[f"verify-bundle:{cell}"].status == "verified", cell
    assert gate.outcomes["verify-agent"].status == "verified"


def test_report_names_digests_sizes_durations(gate: RunResult) -> None:
    report = json.loads(gate.report.read_text())
    assert report["ok"] is True and report["command"] == "verify"
    rows = {r["node"]: r for r in report["nodes"]}
    for cell in GATE_CELLS:
        row = rows[f"datastore:{cell}"]
        assert row["digest"].startswith("sha256:") and row["size"] > 10_000_000 and row["seconds"] > 0
        assert Path(row["log"]).is_file()
        verify = rows[f"verify-datastore:{cell}"]
        assert Path(verify["log"]).read_text().count(" PASSED") >= 10


def test_agent_layer_is_one_blob_on_every_base(gate: RunResult, engine: Engine) -> None:
    tree = gate.outcomes["agent-tree"].produced(AgentTreeArtifact)
    tops = set()
    for cell in GATE_CELLS:
        # By image ID: another build dir of the same key (a test of a fresh clone) may have moved the keyed tags.
        datastore = engine.image(gate.outcomes[f"datastore:{cell}"].produced(ImageArtifact).id)
        aio = engine.image(gate.outcomes[f"aio:{cell}"].produced(ImageArtifact).id)
        assert datastore is not None and aio is not None
        ds_layers, aio_layers = datastore.attrs["RootFS"]["Layers"], aio.attrs["RootFS"]["Layers"]
        assert aio_layers[:-1] == ds_layers  # the datastore layers are reused, not rebuilt
        tops.add(aio_layers[-1])
    agent = engine.image(gate.outcomes["agent-image"].produced(ImageArtifact).id)
    assert agent is not None
    tops.add(agent.attrs["RootFS"]["Layers"][-1])
    assert tops == {tree.diff_id}


def test_bundles_are_valid_and_played_without_restarts(gate: RunResult) -> None:
    for cell in GATE_CELLS:
        artifact = gate.outcomes[f"bundle:{cell}"].produced(BundleArtifact)
        assert unchanged(gate.build_dir, artifact.files, artifact.sha256)
        docs = [d for rel in artifact.files.values() for d in yaml.safe_load_all(gate.path(rel).read_text()) if d]
        assert problems(docs) == []
        if cell in BUNDLE_CELLS:
            figures = gate.outcomes[f"verify-bundle:{cell}"].produced(BundleCheckArtifact).figures
            assert figures["ready_seconds"] < 120 and set(figures["restarts"].values()) == {0}, (cell, figures)
        statefulset = next(d for d in docs if d["kind"] == "StatefulSet")
        containers = {c["name"]: c for c in statefulset["spec"]["template"]["spec"]["containers"]}
        assert set(containers) == {"database", "exporter"}    # Trove 26 cannot run in a pod: no agent
        for c in containers.values():
            assert c["securityContext"]["runAsNonRoot"] is True and c["securityContext"]["runAsUser"] > 0
            for env in c.get("env", []):  # passwords: a Secret reference, or $(VAR) naming one
                if "PASS" in env["name"]:
                    assert "secretKeyRef" in env.get("valueFrom", {}) or env["value"].startswith("$(GF_DB_")


def test_second_run_redoes_nothing(gate: RunResult, gate_dir: Path, matrix: object, engine: Engine) -> None:
    again = run_oci(matrix, GATE_CELLS, gate_dir, engine=engine, bundles=BUNDLE_CELLS)  # type: ignore[arg-type]
    assert {o.status for o in again.outcomes.values()} == {"cached"}
    assert again.seconds < 15


def test_agent_file_touched_same_tree_cuts_off(gate: RunResult, gate_dir: Path, tmp_path: Path) -> None:
    """A comment in a file the agent build reads: the agent tree is rebuilt (its key changed) to the same
    layer digest, and nothing below it is redone -- the gate's results are recorded under the new keys."""
    repo = copy_repo(tmp_path / "repo")
    with (repo / "container_specs" / "agent" / "make_runtime.py").open("a") as f:
        f.write("# a comment: the same agent tree\n")
    run = guestforge(repo, gate_dir, "verify", "--target", "oci", *GATE_CELLS)
    assert run.exit_code == 0
    # The CLI also verifies the bundles of gate cells the fixture left out (the gate plays one per flavor
    # family): those are new, not redone, so only the gate's own nodes are compared.
    status = {n["node"]: n["status"] for n in run.report["nodes"] if n["node"] in gate.outcomes}
    assert status.pop("agent-tree") == "built"
    assert set(status.values()) == {"cached"}, {n: s for n, s in status.items() if s != "cached"}
    assert run.nodes(kind_prefix="agent-tree")[0]["digest"] == gate.outcomes["agent-tree"].produced(AgentTreeArtifact).diff_id
    keys = {n["node"]: n["key"] for n in run.report["nodes"]}
    assert keys["aio:redis-7.0"] != gate.outcomes["aio:redis-7.0"].key, "the key below did change"
    again = guestforge(repo, gate_dir, "verify", "--target", "oci", *GATE_CELLS)
    assert {n["status"] for n in again.report["nodes"]} == {"cached"}
