"""VM and bare-metal images through the build graph, with real diskimage-builder, libguestfs and qemu.

postgresql-15 is built and verified for ``vm`` and ``baremetal`` in the session's gate directory, on the
real agent tree and the real datastore and exporter images of the OCI gate: guest base, cell images, the
image suite on the qcow2, the raw disk and the partition image, and boots under BIOS and UEFI. The tests
then check the outputs. The DIB block-device path runs only where the host has device-mapper.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pytest

from builder.vm.values import BootArtifact, GuestCheckArtifact, GuestImagesArtifact
from builder.cache.oci_client import Registry
from builder.cli.main import main
from builder.hostenv.apt import host_mirrors
from builder.matrix.models import Matrix
from builder.oci.engine import Engine
from builder.oci.rootfs import resolve
from builder.plan import Cell, expand
from builder.publish.actions import DISK_TYPE
from builder.run import output
from builder.session import RunResult
from builder.vm import hostcaps, images, verify
from tests.integration import standin
from tests.conftest import ROOT
from tests.integration.conftest import run_oci

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CELL = "postgresql-15"


@dataclass(frozen=True)
class Built:
    result: RunResult
    cell: Cell
    files: dict[str, Path]
    ids: dict[str, str]   # role -> preloaded image id
    refs: dict[str, str]  # preloaded ref -> image id
    bridges: tuple[bool, bool]  # the host's docker0 before and after the builds


@pytest.fixture(scope="module")
def device_mapper() -> bool:
    return hostcaps.probe_device_mapper()


@pytest.fixture(scope="module")
def built(gate: RunResult, gate_dir: Path, matrix: Matrix, engine: Engine) -> Built:
    bridge_before = Path("/sys/class/net/docker0").exists()
    result = run_oci(matrix, [CELL], gate_dir, engine=engine, targets=("vm", "baremetal"))
    assert result.ok, [(r.node, r.error, r.log) for r in result.table if r.error]
    artifact = result.outcomes[f"guest:{CELL}"].produced(GuestImagesArtifact)
    return Built(result, next(c for c in expand(matrix) if c.name == CELL),
                 {role: result.path(p) for role, p in artifact.files.items()}, dict(artifact.preloaded),
                 {artifact.refs[r]: artifact.preloaded[r] for r in ("datastore", "exporter")},
                 (bridge_before, Path("/sys/class/net/docker0").exists()))


def test_outputs_and_manifests(built: Built) -> None:
    files = built.files
    info = json.loads(output(["qemu-img", "info", "--output=json", str(files["vm"])]))
    assert files["vm"].suffix == ".qcow2" and info["format"] == "qcow2"
    assert files["baremetal"].suffix == ".raw"
    assert all(files[r].stat().st_size for r in ("partition", "kernel", "ramdisk"))
    key = built.result.graph.keys[f"guest:{CELL}"]
    for manifest_file in (files["vm-manifest"], files["baremetal-manifest"]):
        manifest = json.loads(manifest_file.read_text())
        assert manifest["cell"] == CELL and manifest["inputs"] == {"key": key}
        assert {p["role"]: p["id"] for p in manifest["preloaded_images"]} == built.ids
        assert {"docker.io", "cloud-init", "openssh-server"} <= {p["name"] for p in manifest["packages"]}
        assert manifest["agent"]["version"] == "26.0.0"


def test_disk_boots_both_ways(built: Built) -> None:
    """GPT with a BIOS boot partition, an ESP holding the removable-path UEFI loader, GRUB's MBR code."""
    disk = built.files["baremetal"]
    table = json.loads(output(["sfdisk", "--json", str(disk)]))["partitiontable"]
    assert table["label"] == "gpt"
    types = [p["type"].upper() for p in table["partitions"]]
    assert "21686148-6449-6E6F-744E-656564454649" in types and "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" in types
    with disk.open("rb") as f:
        mbr = f.read(512)
    assert b"GRUB" in mbr and mbr[510:] == b"\x55\xaa"
    esp = next(p for p in table["partitions"] if p["type"].upper().startswith("C12A7328"))
    listing = output(["mdir", "-b", "-i", f"{disk}@@{esp['start'] * 512}", "::/EFI/BOOT"])
    assert "BOOTX64.EFI" in listing.upper()


def test_build_leaves_host_network_alone(built: Built) -> None:
    """The preload dockerd runs in its own network namespace: the host engine's docker0 survives it."""
    before, after = built.bridges
    assert after or not before, "the build removed the host's docker0 bridge"


def test_another_cell_reuses_the_guest_base(built: Built, gate_dir: Path, matrix: Matrix, engine: Engine) -> None:
    """A second cell costs its own image only: the guest base is reused. Its name has a dot in it, as most
    versions' do (``redis-7.0.raw``, not ``redis-7.raw``); its image suite runs on the bare-metal images."""
    second = run_oci(matrix, ["redis-7.0"], gate_dir, engine=engine, targets=("baremetal",))
    assert second.ok, [(r.node, r.error, r.log) for r in second.table if r.error]
    assert second.outcomes["guest-base:debian:bookworm"].status == "cached"
    assert second.outcomes["guest:redis-7.0"].status == "built"
    assert second.outcomes["verify-baremetal:redis-7.0"].status == "verified"
    files = {role: second.path(p) for role, p in second.outcomes["guest:redis-7.0"].produced(GuestImagesArtifact).files.items()}
    assert {role: p.name for role, p in files.items()} == {
        "vm": "redis-7.0.qcow2", "vm-manifest": "redis-7.0.qcow2.manifest.json", "baremetal": "redis-7.0.raw",
        "baremetal-manifest": "redis-7.0.raw.manifest.json", "partition": "redis-7.0.part.raw",
        "kernel": "redis-7.0.vmlinuz", "ramdisk": "redis-7.0.initrd"}
    assert all(p.is_file() and p.stat().st_size for p in files.values())
    for path in files.values():  # gigabytes the later tests do not read
        path.unlink()


def test_images_verified_and_booted(built: Built) -> None:
    outcomes = built.result.outcomes
    assert outcomes[f"verify-vm:{CELL}"].status == "verified"
    bare = outcomes[f"verify-baremetal:{CELL}"]
    assert bare.status == "verified" and len(bare.produced(GuestCheckArtifact).images) == 2  # whole disk and partition image
    boot = outcomes[f"boot-vm:{CELL}"]
    assert boot.status == "verified" and set(boot.produced(BootArtifact).boots) == {"bios", "uefi"}
    print(f"boot to database ready ({boot.produced(BootArtifact).accel}): {boot.produced(BootArtifact).seconds_to_db_ready}")


def test_image_verification_can_fail(built: Built, matrix: Matrix, tmp_path: Path) -> None:
    """A wrong expected digest must fail the suite."""
    refs = {ref: "sha256:" + "0" * 64 for ref in built.refs}
    spec = verify.image_spec(cell=built.cell.name, flavor=built.cell.flavor, agent=matrix.agent, image_ids=refs)
    report = verify.verify_image(built.files["vm"], "qcow2", spec, tmp_path / "verify-bad", tmp_path / "log")
    assert not report.passed
    failed = {case.get("name", "").split("[")[0] for case in ElementTree.parse(report.junit).iter("testcase")
              if case.find("failure") is not None}
    assert "test_preloaded_images" in failed


def test_dib_block_device_path(device_mapper: bool, request: pytest.FixtureRequest, tmp_path: Path,
                               matrix: Matrix, engine: Engine) -> None:
    if not device_mapper:
        pytest.skip("DIB's block-device path needs device-mapper (kpartx maps the partitions); "
                    "this host has none, so it takes the libguestfs path")
    built: Built = request.getfixturevalue("built")
    base = resolve("debian:bookworm", matrix.bases["debian:bookworm"], host_mirrors())
    guest_base = images.build_guest_base(base, matrix.agent, standin.agent_tarball(tmp_path / "agent.tar"),
                                         tmp_path / "base", tmp_path / "log", key="it-dib", assembly="dib")
    assert guest_base.head is None
    archives = {}
    for role, ref in built.result.outcomes[f"guest:{CELL}"].produced(GuestImagesArtifact).refs.items():
        archives[role] = tmp_path / f"{role}.tar"
        with archives[role].open("wb") as f:
            engine.save(ref, f)
    artifacts = images.build_cell_images(guest_base, built.cell, archives["datastore"], archives["exporter"],
                                         ["vm", "baremetal"], tmp_path / "out", tmp_path / "log")
    assert artifacts["vm"].image.exists() and artifacts["baremetal"].files["partition"].exists()
    spec = verify.image_spec(cell=built.cell.name, flavor=built.cell.flavor, agent=matrix.agent,
                             image_ids=built.refs)
    assert verify.verify_image(artifacts["vm"].image, "qcow2", spec, tmp_path / "verify", tmp_path / "log").passed


def test_publish_vm_image_as_an_oci_artifact(built: Built, gate_dir: Path, registry: str) -> None:
    """The qcow2 and its manifest, pushed after the image suite and the boots passed; pulled back intact."""
    prefix = f"gftest-vm-{secrets.token_hex(3)}"
    argv = ["-m", str(ROOT / "matrix.yaml"), "publish", "--registry", f"{registry}/{prefix}", "--target", "vm",
            "--build-dir", str(gate_dir), CELL]
    assert main(argv) == 0
    client, repo = Registry(registry), f"{prefix}/postgresql"
    manifest = client.manifest(repo, "15-vm")
    assert manifest is not None and manifest["artifactType"] == DISK_TYPE
    layers = {layer["annotations"]["org.opencontainers.image.title"]: layer for layer in manifest["layers"]}
    image_manifest = json.loads(built.files["vm-manifest"].read_text())
    assert set(layers) == {built.files["vm"].name, built.files["vm-manifest"].name}
    assert layers[built.files["vm"].name]["digest"] == "sha256:" + image_manifest["image"]["sha256"]
    assert json.loads(client.get_blob(repo, manifest["config"]["digest"])) == image_manifest
    pulled = gate_dir / "pulled.qcow2"
    client.get_blob(repo, layers[built.files["vm"].name]["digest"], pulled)  # checks the digest as it streams
    assert pulled.stat().st_size == built.files["vm"].stat().st_size
    pulled.unlink()
