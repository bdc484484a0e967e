"""VM and bare-metal guest images: one guest base per (suite, agent build), then each cell on top of it.

    build_guest_base   DIB: debian-minimal + guestforge-guest + guestforge-agent -> a tree tarball (and, on
                       the libguestfs path, GRUB installed once: the disk head and /boot/grub every cell reuses)
    build_cell_images  DIB: guestforge-base-tree (that tarball) + guestforge-datastore (preloaded images)
                       -> root filesystem -> qcow2 (vm), raw whole disk + partition image + kernel + ramdisk
                       (baremetal), each with its manifest

Both are functions of their arguments plus a work directory and a log path: no global state, nothing read
from the caller's environment. Which assembly path to take is an argument (``session.host_inputs``: device-mapper or not).
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.errors import BuildError
from builder.matrix.models import Agent, Target
from builder.oci.archive import sha256_file
from builder.oci.rootfs import ResolvedBase
from builder.plan import Cell
from builder.run import output, run
from builder.vm import assemble, dib
from builder.vm.hostcaps import Assembly
from builder.vm.manifest import dpkg_packages, image_manifest, write_manifest
from builder.vm.preload import ArchivedImage, read_archive

# Fixed namespace: a guest base's root filesystem UUID is derived from its key (same key, same UUID).
_FS_UUID_NAMESPACE = uuid.UUID("6f1c3a52-6b0e-4d8e-9a51-3f5f1d0c7e21")
VM_TARGETS: tuple[Target, ...] = ("vm", "baremetal")


@dataclass(frozen=True)
class GuestBase:
    """A built guest base: everything a cell's image needs from the OS + runtime + agent build."""

    key: str
    suite: str
    assembly: Assembly
    tree: Path  # DIB's -t tar output
    fs_uuid: str
    packages: tuple[tuple[str, str], ...]
    agent: Mapping[str, str]
    head: Path | None = None  # libguestfs path: disk up to the root partition (MBR code, BIOS boot, ESP)
    boot_grub: Path | None = None  # libguestfs path: tarball of /boot/grub
    seconds: float = 0.0

    def describe(self) -> dict[str, str]:
        return {"key": self.key, "suite": self.suite, "assembly": self.assembly, "fs_uuid": self.fs_uuid}


@dataclass(frozen=True)
class ImageArtifact:
    """One target's output for one cell: the image, its companions and its manifest."""

    target: Target
    image: Path
    manifest: Path
    files: Mapping[str, Path] = field(default_factory=dict)  # role -> path (partition, kernel, ramdisk)
    seconds: float = 0.0

    @property
    def allocated_bytes(self) -> int:
        return sum(p.stat().st_blocks * 512 for p in (self.image, *self.files.values()))


def fs_uuid_for(key: str) -> str:
    return str(uuid.uuid5(_FS_UUID_NAMESPACE, key))


def build_guest_base(base: ResolvedBase, agent: Agent, agent_tarball: Path, workdir: Path, log: Path, *,
                     key: str, assembly: Assembly, dpkg_options: Sequence[str] = (),
                     agent_version: str | None = None) -> GuestBase:
    """Build the guest base for ``base`` with the agent from ``agent_tarball`` under ``workdir``."""
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    fs_uuid = fs_uuid_for(key)
    out = workdir / "guest-base"
    types = ("tar", "raw") if assembly == "guestfs" else ("tar",)
    job = dib.DibJob(("guestforge-guest", "guestforge-agent"), types, out,
                     env={**dib.base_env(base), **dib.trim_env(dpkg_options), **dib.agent_env(agent, agent_tarball)},
                     block_device=dib.tree_block_device(fs_uuid))
    dib.disk_image_create(job, workdir, log)
    head = boot_grub = None
    if assembly == "guestfs":
        head, boot_grub = workdir / "boot-head.raw", workdir / "boot-grub.tar"
        fs_image = _output(out, ".raw")
        try:
            assemble.build_boot_template(fs_image, head, boot_grub, log)
        finally:
            fs_image.unlink(missing_ok=True)
    packages = dpkg_packages(out.parent / f"{out.name}.d" / "dib-manifests" / f"dib-manifest-dpkg-{out.name}")
    agent_info = {"package": agent.package, "version": agent_version or agent.version,
                  "entrypoint": agent.entrypoint, "venv": agent.venv, "tarball": agent_tarball.name}
    return GuestBase(key=key, suite=base.suite, assembly=assembly, tree=_output(out, ".tar"), fs_uuid=fs_uuid,
                     packages=packages, agent=agent_info, head=head, boot_grub=boot_grub,
                     seconds=round(time.monotonic() - started, 1))


def datastore_env(cell: Cell, datastore: ArchivedImage, exporter: ArchivedImage | None) -> dict[str, str]:
    """Settings for the ``guestforge-datastore`` element, from the cell and its image archives."""
    env = {
        "DIB_GUESTFORGE_DATASTORE_NAME": cell.name,
        "DIB_GUESTFORGE_DATASTORE_FLAVOR": cell.flavor,
        "DIB_GUESTFORGE_DATASTORE_UID": str(cell.uid),
        "DIB_GUESTFORGE_DATASTORE_DATA_DIR": cell.data_dir,
        "DIB_GUESTFORGE_DATASTORE_ARCHIVE": str(datastore.archive),
        "DIB_GUESTFORGE_DATASTORE_IMAGE": datastore.ref,
        "DIB_GUESTFORGE_DATASTORE_IMAGE_ID": datastore.image_id,
    }
    if exporter is not None:
        env.update({
            "DIB_GUESTFORGE_EXPORTER_ARCHIVE": str(exporter.archive),
            "DIB_GUESTFORGE_EXPORTER_IMAGE": exporter.ref,
            "DIB_GUESTFORGE_EXPORTER_IMAGE_ID": exporter.image_id,
        })
    return env


def build_cell_images(guest_base: GuestBase, cell: Cell, datastore_archive: Path, exporter_archive: Path | None,
                      targets: Sequence[Target], outdir: Path, log: Path, *,
                      inputs: Mapping[str, Any] | None = None) -> dict[Target, ImageArtifact]:
    """The ``vm`` and/or ``baremetal`` images of ``cell`` on ``guest_base``, written to ``outdir``."""
    wanted = [t for t in VM_TARGETS if t in targets]
    if not wanted:
        return {}
    started = time.monotonic()
    datastore = read_archive(datastore_archive)
    exporter = read_archive(exporter_archive) if exporter_archive else None
    outdir.mkdir(parents=True, exist_ok=True)
    work = outdir / f".{cell.name}.work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {"DIB_RELEASE": guest_base.suite, "DIB_GUESTFORGE_BASE_TREE": str(guest_base.tree),
           **datastore_env(cell, datastore, exporter)}
    out = work / cell.name
    try:
        if guest_base.assembly == "guestfs":
            disk, fs_image = _cell_guestfs(guest_base, env, out, work, log)
        else:
            disk, fs_image = _cell_dib(guest_base, env, out, work, log)
        preloaded = [{"role": "datastore", **datastore.as_dict()}]
        if exporter is not None:
            preloaded.append({"role": "exporter", **exporter.as_dict()})
        common: dict[str, Any] = {
            "cell": cell.name, "guest_base": guest_base.describe(), "agent": guest_base.agent,
            "preloaded": preloaded, "packages": guest_base.packages, "inputs": dict(inputs or {}),
        }
        artifacts: dict[Target, ImageArtifact] = {}
        # Hashing the images (gigabytes) runs beside the qcow2 conversion rather than after it.
        with ThreadPoolExecutor(max_workers=2) as pool:
            raw_sha = pool.submit(_hex_sha256, disk) if "baremetal" in wanted else None
            if "vm" in wanted:
                qcow2 = outdir / f"{cell.name}.qcow2"
                assemble.to_qcow2(disk, qcow2, log)
                manifest = write_manifest(outdir / f"{cell.name}.qcow2.manifest.json",
                                          image_manifest(target="vm", image=qcow2, image_format="qcow2", files={},
                                                         image_sha256=_hex_sha256(qcow2), **common))
                artifacts["vm"] = ImageArtifact("vm", qcow2, manifest)
            if raw_sha is not None:
                files = {"partition": outdir / f"{cell.name}.part.raw", "kernel": outdir / f"{cell.name}.vmlinuz",
                         "ramdisk": outdir / f"{cell.name}.initrd"}
                raw = outdir / f"{cell.name}.raw"
                sha = raw_sha.result()
                disk.replace(raw)
                fs_image.replace(files["partition"])
                _output(out, ".vmlinuz").replace(files["kernel"])
                _output(out, ".initrd").replace(files["ramdisk"])
                manifest = write_manifest(outdir / f"{cell.name}.raw.manifest.json",
                                          image_manifest(target="baremetal", image=raw, image_format="raw",
                                                         files=files, image_sha256=sha, **common))
                artifacts["baremetal"] = ImageArtifact("baremetal", raw, manifest, files)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = round(time.monotonic() - started, 1)
    return {t: ImageArtifact(a.target, a.image, a.manifest, a.files, seconds) for t, a in artifacts.items()}


def _output(out: Path, extension: str) -> Path:
    """DIB's output ``out`` + ``extension``: ``mariadb-10.11`` -> ``mariadb-10.11.raw`` (``with_suffix``
    would take ``.11`` for a suffix and give ``mariadb-10.raw``)."""
    return out.with_name(out.name + extension)


def _hex_sha256(path: Path) -> str:
    return sha256_file(path).split(":", 1)[1]


def _cell_guestfs(base: GuestBase, env: dict[str, str], out: Path, work: Path, log: Path) -> tuple[Path, Path]:
    """DIB writes the cell's root filesystem; the disk is the base's head plus that filesystem."""
    if base.head is None or base.boot_grub is None:
        raise BuildError(f"guest base {base.key} was built for the DIB path; rebuild it for libguestfs")
    env = {**env, "DIB_GUESTFORGE_BOOT_GRUB": str(base.boot_grub), "DIB_GUESTFORGE_ESP_LABEL": assemble.ESP_LABEL}
    job = dib.DibJob(("guestforge-base-tree", "guestforge-datastore", "baremetal"), ("raw",), out, env=env,
                     no_base=True, block_device=dib.tree_block_device(base.fs_uuid))
    dib.disk_image_create(job, work, log)
    fs_image = _output(out, ".raw")
    disk = work / "disk.raw"
    assemble.disk_from_template(base.head, fs_image, disk, log)
    return disk, fs_image


def _cell_dib(base: GuestBase, env: dict[str, str], out: Path, work: Path, log: Path) -> tuple[Path, Path]:
    """DIB's own block-device path: DIB partitions (GPT: ESP, BIOS boot, root), formats and installs GRUB
    for BIOS and UEFI; the partition image is the root partition copied out of the raw disk."""
    env = {**env, "DIB_SKIP_GRUB_PACKAGE_INSTALL": "True"}  # GRUB for both firmwares is in the tree
    job = dib.DibJob(("guestforge-base-tree", "guestforge-datastore", "vm", "block-device-efi", "bootloader",
                      "baremetal"), ("raw",), out, env=env, no_base=True, block_device=None)
    dib.disk_image_create(job, work, log)
    disk = _output(out, ".raw")
    fs_image = work / "root.raw"
    table = json.loads(output(["sfdisk", "--json", str(disk)], log=log))["partitiontable"]
    root = next(p for p in table["partitions"] if p["type"].upper() == assemble.LINUX_GUID)
    sector = int(table.get("sectorsize", assemble.SECTOR))
    run(["dd", f"if={disk}", f"of={fs_image}", "bs=4M", "conv=sparse", "iflag=skip_bytes,count_bytes",
         f"skip={root['start'] * sector}", f"count={root['size'] * sector}"], log=log)
    return disk, fs_image
