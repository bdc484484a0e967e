"""Verify an image without booting it: mount its root filesystem read-only and run the testinfra suite in it.

The root filesystem is found in a partition image (the file is the filesystem) or in a whole-disk image
(the Linux partition of its GPT). A qcow2 image is seen as raw through a read-only FUSE export by
qemu-storage-daemon rather than converted: a copy would cost the image's size in disk and the seconds to write
it. The mount is a plain read-only loop mount with an offset (no partition scanning needed), always undone.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from builder.errors import BuildError, ToolError
from builder.matrix.models import Agent
from builder.vm.specs import AgentLayout, ImageSpec
from builder.paths import INFRA_TESTS
from builder.run import daemon, run
from builder.verify.runner import junit_counts
from builder.vm.assemble import LINUX_GUID, SECTOR

IMAGE_SUITE = INFRA_TESTS / "vm" / "test_guest_image.py"


@dataclass(frozen=True)
class VerifyReport:
    image: Path
    passed: bool
    junit: Path

    def as_dict(self) -> dict[str, object]:
        return {"image": str(self.image), "passed": self.passed, "junit": str(self.junit)}


def root_offset(raw: Path, log: Path) -> tuple[int, int] | None:
    """(offset, size) in bytes of the root (Linux) partition of a GPT disk; None when ``raw`` has no table."""
    proc = run(["sfdisk", "--json", str(raw)], log=log, capture=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    table = json.loads(proc.stdout)["partitiontable"]
    sector = int(table.get("sectorsize", SECTOR))
    for part in table.get("partitions", []):
        if part["type"].upper() == LINUX_GUID:
            return int(part["start"]) * sector, int(part["size"]) * sector
    raise BuildError(f"{raw}: no Linux root partition in its partition table")


@contextmanager
def raw_view(image: Path, image_format: str, workdir: Path, log: Path) -> Iterator[Path]:
    """``image`` as a raw file without copying it: itself when raw, a read-only FUSE export when qcow2."""
    if image_format == "raw":
        yield image
        return
    if image_format != "qcow2":
        raise BuildError(f"{image}: cannot verify a {image_format!r} image (qcow2 or raw)")
    view, pidfile = workdir / "image.raw", workdir / "image.pid"
    view.unlink(missing_ok=True)
    view.touch()  # FUSE mounts the export over this file
    pidfile.unlink(missing_ok=True)
    blockdevs = [{"driver": "file", "node-name": "file", "filename": str(image.resolve()), "read-only": True},
                 {"driver": "qcow2", "node-name": "disk", "file": "file", "read-only": True}]
    export = {"type": "fuse", "id": "view", "node-name": "disk", "mountpoint": str(view.resolve()),
              "writable": False}
    argv = ["qemu-storage-daemon"]
    for blockdev in blockdevs:
        argv += ["--blockdev", json.dumps(blockdev)]
    argv += ["--export", json.dumps(export), "--pidfile", str(pidfile), "--daemonize"]
    try:
        with daemon(argv, pidfile, log, timeout=60):  # it unmounts the export when it ends
            yield view
    finally:
        if str(view.resolve()) in Path("/proc/self/mounts").read_text().split():  # the daemon had to be killed
            run(["umount", "--lazy", str(view)], log=log, check=False)
        pidfile.unlink(missing_ok=True)
        view.unlink(missing_ok=True)


@contextmanager
def mounted_root(image: Path, image_format: str, workdir: Path, log: Path) -> Iterator[Path]:
    """Mount the root filesystem of ``image`` read-only; yield the mount point."""
    workdir.mkdir(parents=True, exist_ok=True)
    mnt = workdir / "root"
    mnt.mkdir(exist_ok=True)
    try:
        with raw_view(image, image_format, workdir, log) as raw:
            opts = "ro,loop,noload"
            where = root_offset(raw, log)
            if where is not None:
                opts += f",offset={where[0]},sizelimit={where[1]}"
            run(["mount", "-t", "ext4", "-o", opts, str(raw), str(mnt)], log=log)
            try:
                yield mnt
            finally:
                try:
                    run(["umount", str(mnt)], log=log)
                except ToolError:
                    run(["umount", "--lazy", str(mnt)], log=log, check=False)
    finally:
        try:
            mnt.rmdir()  # only ever an empty directory: never a recursive delete near a mount point
        except OSError:
            pass


def image_spec(*, cell: str, flavor: str, agent: Agent, image_ids: Mapping[str, str],
               datasources: tuple[str, ...] = ("NoCloud", "ConfigDrive")) -> ImageSpec:
    """What the image suite expects of a cell's guest."""
    return ImageSpec(cell=cell, flavor=flavor, image_ids=dict(image_ids), datasources=datasources,
                     agent=AgentLayout.of(agent))


def verify_image(image: Path, image_format: str, spec: ImageSpec, workdir: Path, log: Path) -> VerifyReport:
    """Run the testinfra image suite against ``image``'s root filesystem (chroot backend, as root)."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec_file = spec.write(workdir / "image-spec.json")
    junit = workdir / "image-junit.xml"
    with mounted_root(image, image_format, workdir, log) as root:
        proc = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(IMAGE_SUITE),
                    f"--hosts={root}", "--connection=chroot", f"--gf-vm-spec={spec_file}", f"--junitxml={junit}"],
                   log=log, check=False, timeout=900)
    # Exit 0 with every check skipped checked nothing: that is a failure too.
    return VerifyReport(image, proc.returncode == 0 and not junit_counts(junit, [IMAGE_SUITE]).idle, junit)
