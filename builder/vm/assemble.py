"""Whole-disk images from a root filesystem image, without device-mapper or loop partition scanning.

DIB builds a cell's root filesystem (ext4, on a plain loop device) -- that file is also the partition image
Ironic deploys. Here it becomes a GPT disk that boots under BIOS and UEFI:

    p1  BIOS boot (1 MiB, GRUB's core image for BIOS)
    p2  EFI system partition (FAT, GRUB for UEFI at the removable path EFI/BOOT/BOOTX64.EFI)
    p3  root (the filesystem image, copied block for block; last, so cloud-init can grow it)

The host writes the partition table (``builder.vm.gpt``) and copies the filesystem in (``e2image`` copies
only used blocks, at the partition's offset). Once per guest base, libguestfs (TCG forced) formats the
ESP, installs GRUB for both firmwares from the image's own GRUB packages and writes ``grub.cfg`` -- the only
steps that need a kernel that sees partitions. Every cell of that base reuses the result: the disk's head
(MBR boot code, BIOS boot partition, ESP) and ``/boot/grub``, since its root filesystem has the same UUID.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from builder.errors import ToolError
from builder.vm import gpt
from builder.vm.gpt import Partition
from builder.vm.hostcaps import GUESTFS_ENV
from builder.run import output, run

SECTOR = 512
MIB = 1 << 20
BIOS_BOOT_GUID = "21686148-6449-6E6F-744E-656564454649"
ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_GUID = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
ESP_LABEL = "ESP"


@dataclass(frozen=True)
class Layout:
    """Partition offsets and sizes in bytes, all MiB-aligned."""

    bios_start: int
    bios_size: int
    esp_start: int
    esp_size: int
    root_start: int
    root_size: int
    disk_size: int

    def partitions(self) -> list[Partition]:
        return [Partition(self.bios_start, self.bios_size, BIOS_BOOT_GUID, "bios-boot"),
                Partition(self.esp_start, self.esp_size, ESP_GUID, "esp"),
                Partition(self.root_start, self.root_size, LINUX_GUID, "root")]


def _round_up(n: int, unit: int = MIB) -> int:
    return -(-n // unit) * unit


def layout(root_bytes: int, esp_mib: int = 100) -> Layout:
    """The disk layout for a root filesystem of ``root_bytes``."""
    bios_start, bios_size = MIB, MIB
    esp_start, esp_size = bios_start + bios_size, esp_mib * MIB
    root_start = esp_start + esp_size
    root_size = _round_up(root_bytes)
    disk_size = root_start + root_size + MIB  # room for the backup GPT
    return Layout(bios_start, bios_size, esp_start, esp_size, root_start, root_size, disk_size)


def fs_size(fs_image: Path, log: Path) -> int:
    """The size in bytes of the ext4 filesystem in ``fs_image`` (not of the file)."""
    fields = {}
    for line in output(["dumpe2fs", "-h", str(fs_image)], log=log).splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return int(fields["Block count"]) * int(fields["Block size"])


def guestfish_script(grub_tar: Path) -> str:
    """Commands for the one libguestfs appliance run: ESP, GRUB for BIOS and UEFI, grub.cfg; then the
    resulting ``/boot/grub`` is saved to ``grub_tar`` for the cells."""
    return "\n".join([
        "run",
        f"mkfs vfat /dev/sda2 label:{ESP_LABEL}",
        "mount /dev/sda3 /",
        "mkdir-p /boot/efi",
        "mount /dev/sda2 /boot/efi",
        'command "grub-install --target=i386-pc --modules=part_gpt /dev/sda"',
        'command "grub-install --target=x86_64-efi --efi-directory=/boot/efi --bootloader-id=debian '
        '--removable --no-nvram --no-uefi-secure-boot"',
        'command "grub-mkconfig -o /boot/grub/grub.cfg"',
        f"tar-out /boot/grub {grub_tar}",
        "umount-all",
        "",
    ])


def _write_disk(fs_image: Path, disk: Path, lay: Layout, log: Path) -> None:
    """Root filesystem (used blocks only) at its partition's offset, then the partition table."""
    disk.parent.mkdir(parents=True, exist_ok=True)
    disk.unlink(missing_ok=True)
    run(["e2image", "-ra", "-O", str(lay.root_start), str(fs_image), str(disk)], log=log)
    head, tail = gpt.table(lay.disk_size, lay.partitions())
    with disk.open("r+b") as f:
        f.truncate(lay.disk_size)
        f.write(head)
        f.seek(lay.disk_size - len(tail))
        f.write(tail)


def build_boot_template(fs_image: Path, head: Path, grub_tar: Path, log: Path, esp_mib: int = 100) -> Layout:
    """Install GRUB (BIOS and UEFI) once, on a disk made from a guest base's root filesystem.

    Keeps what every cell of that base reuses: ``head``, the disk before the root partition (MBR boot code,
    BIOS boot partition with GRUB's core image, the ESP), and ``grub_tar``, the root filesystem's
    ``/boot/grub``. GRUB finds the root filesystem by UUID, which is the same for the base and its cells.
    """
    lay = layout(fs_size(fs_image, log), esp_mib)
    disk = head.with_name(head.name + ".full.raw")
    try:
        _write_disk(fs_image, disk, lay, log)
        # On a loaded host grub-install in the appliance once failed to see its own BIOS boot partition
        # ("embedding is not possible"); the same disk installed on a second run: retry once, from scratch.
        for attempt in (1, 2):
            try:
                run(["guestfish", "--no-progress-bars", "--format=raw", "-a", str(disk)],
                    input=guestfish_script(grub_tar).encode(), env=GUESTFS_ENV, log=log, timeout=1800)
                break
            except ToolError:
                if attempt == 2:
                    raise
                _write_disk(fs_image, disk, lay, log)
        with disk.open("rb") as src, head.open("wb") as dst:
            _copy_sparse(src, dst, 0, lay.root_start)
            dst.truncate(lay.root_start)
    finally:
        disk.unlink(missing_ok=True)
    return lay


def disk_from_template(head: Path, fs_image: Path, disk: Path, log: Path, esp_mib: int = 100) -> Layout:
    """A cell's bootable disk: the base's ``head`` (bootloaders, ESP) and the cell's root filesystem."""
    lay = layout(fs_size(fs_image, log), esp_mib)
    if head.stat().st_size != lay.root_start:
        raise ValueError(f"{head}: {head.stat().st_size} bytes, expected {lay.root_start} for this layout")
    _write_disk(fs_image, disk, lay, log)
    with head.open("rb") as src, disk.open("r+b") as dst:
        boot_code = src.read(MBR_BOOT_CODE)
        _copy_sparse(src, dst, MIB, lay.root_start)  # after the primary GPT: partitions 1 and 2
        dst.seek(0)
        dst.write(boot_code)  # the table came with a fresh protective MBR; GRUB's boot code goes back in
    return lay


MBR_BOOT_CODE = 440


def _copy_sparse(src: BinaryIO, dst: BinaryIO, start: int, end: int, chunk: int = MIB) -> None:
    """Copy ``[start, end)`` from ``src`` to the same offsets in ``dst``, skipping all-zero chunks."""
    zero = bytes(chunk)
    pos = start
    src.seek(pos)
    while pos < end:
        data = src.read(min(chunk, end - pos))
        if not data:
            break
        if data != zero[: len(data)]:
            dst.seek(pos)
            dst.write(data)
        pos += len(data)


def to_qcow2(raw: Path, qcow2: Path, log: Path) -> None:
    """Uncompressed clusters. zstd compression makes a third of the size (postgresql-15: 604 MB against 1.9 GB)
    but costs each cell 6-8 s more here (qemu-img 11-14 s against 4-6 s), against a 60 s budget per cell."""
    run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "compat=1.1", str(raw), str(qcow2)], log=log)
