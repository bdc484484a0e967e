"""Failure isolation, the registry cache, and upstream images, on the real engine and registry."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

from builder.agent.values import AgentTreeArtifact
from builder.k8s.values import BundleArtifact
from builder.oci.values import ImageArtifact
from builder.cache.registry import RegistryCache
from builder.cli.main import main
from builder.matrix.loader import parse_matrix
from builder.matrix.models import Matrix
from builder.oci.engine import Engine
from builder.session import RunResult
from tests.conftest import ROOT
from tests.integration.conftest import run_oci

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def matrix_with(tmp_path: Path, datastore: str, line: str) -> Path:
    """The default matrix plus one version line under ``datastore`` (same shared nodes, so they are reused)."""
    text = (ROOT / "matrix.yaml").read_text()
    anchor = f"  {datastore}:\n"
    head, _, tail = text.partition(anchor)
    marker = "    versions:\n"
    before, _, after = tail.partition(marker)
    path = tmp_path / "matrix.yaml"
    path.write_text(head + anchor + before + marker + f"      {line}\n" + after)
    parse_matrix(path.read_text(), str(path))
    return path


def test_one_failing_cell_blocks_nothing_else(gate: RunResult, gate_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = matrix_with(tmp_path, "redis", '"0.0": {base: "debian:bookworm", packages: [redis-server-nonexistent]}')
    code = main(["-m", str(bad), "build", "--target", "oci", "--build-dir", str(gate_dir), "redis-0.0", "redis-7.0"])
    err = capsys.readouterr().err
    assert code == 1
    assert "FAILED datastore:redis-0.0: see " in err
    report = json.loads((gate_dir / "reports" / "latest-build.json").read_text())
    status = {r["node"]: r["status"] for r in report["nodes"]}
    assert status["datastore:redis-0.0"] == "failed"
    assert status["aio:redis-0.0"] == "blocked" and status["bundle:redis-0.0"] == "blocked"
    assert status["datastore:redis-7.0"] == "cached" and status["bundle:redis-7.0"] == "cached"
    log = Path(next(r["log"] for r in report["nodes"] if r["node"] == "datastore:redis-0.0"))
    assert "redis-server-nonexistent" in log.read_text()


def test_registry_cache_pulls_instead_of_building(registry: str, matrix: Matrix, tmp_path: Path,
                                                  engine: Engine) -> None:
    prefix = f"gftest-{secrets.token_hex(4)}"
    first_dir, second_dir = tmp_path / "runner-a", tmp_path / "runner-b"
    first = run_oci(matrix, ["redis-7.0"], first_dir, engine=engine,
                    cache=RegistryCache(f"{registry}/{prefix}", engine, first_dir))
    assert first.ok and {o.status for o in first.outcomes.values()} <= {"built", "verified", "cached"}
    second = run_oci(matrix, ["redis-7.0"], second_dir, engine=engine,
                     cache=RegistryCache(f"{registry}/{prefix}", engine, second_dir))
    assert second.ok
    assert {o.status for o in second.outcomes.values()} == {"pulled"}, {n: o.status for n, o in second.outcomes.items()}
    tree = second.outcomes["agent-tree"].produced(AgentTreeArtifact)
    assert second.path(tree.path).is_file() and second.path(tree.path).is_relative_to(second_dir)
    assert tree.diff_id == first.outcomes["agent-tree"].produced(AgentTreeArtifact).diff_id
    first_bundle, second_bundle = (r.outcomes["bundle:redis-7.0"].produced(BundleArtifact) for r in (first, second))
    assert {n: second.path(p).read_text() for n, p in second_bundle.files.items()} == \
        {n: first.path(p).read_text() for n, p in first_bundle.files.items()}


def test_upstream_image_pinned_by_digest(gate: RunResult, registry: str, tmp_path: Path, engine: Engine) -> None:
    """Push an image we built to the local registry, declare it upstream-style, verify the cell."""
    source = gate.outcomes["datastore:postgresql-15"].produced(ImageArtifact).ref
    repo = f"{registry}/gftest-upstream/postgres"
    engine.tag(engine.image(source).id, f"{repo}:15")  # type: ignore[union-attr]
    for line in engine.api.push(repo, tag="15", stream=True, decode=True):
        assert "error" not in line, line
    digest = next(d for d in engine.image(f"{repo}:15").attrs["RepoDigests"]  # type: ignore[union-attr]
                  if d.startswith(repo)).split("@", 1)[1]
    # A datastore of its own whose version 15 is the pinned image (the cell's version is checked for real).
    text = (ROOT / "matrix.yaml").read_text()
    block = text[text.index("  postgresql:\n"):text.index("  mariadb:\n")]
    settings = block[:block.index("    versions:\n")].replace("  postgresql:\n", "  pgupstream:\n")
    path = tmp_path / "matrix.yaml"
    path.write_text(text + settings + f'    versions:\n      "15": {{image: "{repo}@{digest}"}}\n')
    result = run_oci(parse_matrix(path.read_text(), str(path))[0], ["pgupstream-15"], gate.report.parent.parent,
                     engine=engine)
    assert result.ok, [(r.node, r.error) for r in result.table if r.error]
    assert result.outcomes["datastore:pgupstream-15"].produced(ImageArtifact).upstream == f"{repo}@{digest}"
    assert result.outcomes["verify-datastore:pgupstream-15"].status == "verified"


def skopeo_raw(ref: str, *flags: str) -> dict[str, object]:
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", *flags, f"docker://{ref}"], check=True,
                         capture_output=True, text=True).stdout
    return dict(json.loads(out))


def test_publish_pushes_verified_images_and_pins_the_bundle(gate: RunResult, gate_dir: Path, registry: str,
                                                        engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    location = f"{registry}/gftest-pub-{secrets.token_hex(3)}"
    argv = ["-m", str(ROOT / "matrix.yaml"), "publish", "--registry", location, "--target", "oci",
            "--build-dir", str(gate_dir), "redis-7.0"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.split()
    report = json.loads((gate_dir / "reports" / "latest-publish.json").read_text())
    status = {r["node"]: r["status"] for r in report["nodes"]}
    assert status.pop("publish-oci:redis-7.0") == "built"
    assert set(status.values()) == {"cached"}  # built and verified by the gate: nothing redone
    published = yaml.safe_load((gate_dir / "artifacts" / "redis-7.0" / "bundle.published" / "statefulset.yaml")
                               .read_text())
    images = {c["name"]: c["image"] for c in published["spec"]["template"]["spec"]["containers"]}
    local = {"database": gate.outcomes["datastore:redis-7.0"].produced(ImageArtifact).id,
             "exporter": gate.outcomes["exporter:redis_exporter"].produced(ImageArtifact).id}
    assert set(images) == set(local)
    for name, ref in images.items():
        assert ref.startswith(f"{location}/") and "@sha256:" in ref and ref in printed
        manifest = skopeo_raw(ref, "--raw")
        assert manifest["config"]["digest"] == local[name]  # type: ignore[index]  # the very image verified
    # The agent layer is one blob in the registry too: the all-in-one image's top layer is the sidecar's.
    aio, agent = skopeo_raw(f"{location}/redis:7.0-aio", "--raw"), skopeo_raw(f"{location}/agent:latest", "--raw")
    assert aio["layers"][-1]["digest"] == agent["layers"][-1]["digest"]  # type: ignore[index]
    # Published already: nothing to do. A registry that lost the images gets them again.
    assert main(argv) == 0
    again = json.loads((gate_dir / "reports" / "latest-publish.json").read_text())
    assert {r["status"] for r in again["nodes"]} == {"cached"}
    digest = images["database"].split("@", 1)[1]
    host, _, path = images["database"].split("@", 1)[0].partition("/")
    requests.delete(f"http://{host}/v2/{path}/manifests/{digest}", timeout=30).raise_for_status()
    assert main(argv) == 0
    third = json.loads((gate_dir / "reports" / "latest-publish.json").read_text())
    assert {r["node"]: r["status"] for r in third["nodes"]}["publish-oci:redis-7.0"] == "built"
    assert skopeo_raw(images["database"], "--raw")["config"]["digest"] == local["database"]  # type: ignore[index]


def test_publish_skips_a_cell_that_failed_and_pushes_the_rest(gate: RunResult, gate_dir: Path, registry: str,
                                                              tmp_path: Path) -> None:
    bad = matrix_with(tmp_path, "redis", '"0.0": {base: "debian:bookworm", packages: [redis-server-nonexistent]}')
    location = f"{registry}/gftest-pub-{secrets.token_hex(3)}"
    code = main(["-m", str(bad), "publish", "--registry", location, "--target", "oci", "--build-dir", str(gate_dir),
                 "redis-0.0", "redis-7.0"])
    assert code == 1
    status = {r["node"]: r["status"] for r in
              json.loads((gate_dir / "reports" / "latest-publish.json").read_text())["nodes"]}
    assert status["publish-oci:redis-0.0"] == "blocked" and status["publish-oci:redis-7.0"] == "built"
    assert skopeo_raw(f"{location}/redis:7.0")["Digest"]
    missing = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{location}/redis:0.0"],
                             capture_output=True, text=True)
    assert missing.returncode != 0
