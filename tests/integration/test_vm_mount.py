"""Mounting an image's root filesystem for the image suite: real mkfs, qemu-img, qemu-storage-daemon, mount."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from builder.vm import assemble
from builder.vm.verify import mounted_root

pytestmark = pytest.mark.integration

MIB = 1 << 20


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A partition image holding ``/etc/marker``, the whole disk around it, and that disk as qcow2."""
    work = tmp_path_factory.mktemp("vm-mount")
    tree, fs, head, disk = work / "tree", work / "root.ext4", work / "head.raw", work / "disk.raw"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "marker").write_text("guestforge\n")
    with fs.open("wb") as f:
        f.truncate(16 * MIB)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(fs)], check=True)
    with head.open("wb") as f:
        f.truncate(assemble.layout(16 * MIB).root_start)
    assemble.disk_from_template(head, fs, disk, work / "log")
    assemble.to_qcow2(disk, work / "disk.qcow2", work / "log")
    return {"partition": fs, "raw": disk, "qcow2": work / "disk.qcow2"}


def _mounts() -> str:
    return Path("/proc/mounts").read_text()


@pytest.mark.parametrize("role", ["partition", "raw", "qcow2"])
def test_root_filesystem_is_mounted_and_released(images: dict[str, Path], role: str, tmp_path: Path) -> None:
    fmt = "qcow2" if role == "qcow2" else "raw"
    workdir = tmp_path / "work"
    with mounted_root(images[role], fmt, workdir, tmp_path / "log") as root:
        assert (root / "etc" / "marker").read_text() == "guestforge\n"
        mounts = {line.split()[1]: line.split()[2] for line in _mounts().splitlines()}
        assert mounts[str(root)] == "ext4"
        if role == "qcow2":  # read through a FUSE export of the qcow2, not a converted copy
            assert mounts[str(workdir / "image.raw")].startswith("fuse")
    assert str(workdir) not in _mounts()
    assert sorted(p.name for p in workdir.iterdir()) == []


def test_unknown_format_is_refused(images: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(Exception, match="cannot verify a 'vmdk' image"):
        with mounted_root(images["raw"], "vmdk", tmp_path / "work", tmp_path / "log"):
            pass
