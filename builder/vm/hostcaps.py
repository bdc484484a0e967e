"""What this build host can do for disk images, found by trying, and which assembly path follows.

* ``device_mapper``: DIB's block-device layer maps partitions with ``kpartx``, which needs the kernel's
  device-mapper (``dmsetup version`` must reach the driver).
* ``loop_partitions``: ``losetup --partscan`` makes ``loopNpM`` nodes (informational: neither path needs it).
* ``kvm``: ``/dev/kvm`` can exist and still be unusable (qemu aborts setting MSRs, or Linux hangs silently),
  so the host's kernel is booted under ``-accel kvm`` until it panics for want of a root filesystem.
* ``libguestfs``: its appliance starts (TCG forced, the direct backend).

``choose_assembly`` and ``choose_accel`` are pure functions of the probed facts, so their decisions are
tested with faked probes.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from builder.errors import GuestforgeError, ToolError
from builder.run import run

Assembly = Literal["dib", "guestfs"]
Accel = Literal["kvm", "tcg"]

# libguestfs with qemu's TCG: works where KVM is absent or broken.
KVM_CPU = ("-cpu", "host", "-smp", "2")

GUESTFS_ENV = {"LIBGUESTFS_BACKEND": "direct", "LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}


class NoAssemblyPath(GuestforgeError):
    exit_code = 2


@dataclass(frozen=True)
class HostCaps:
    device_mapper: bool
    loop_partitions: bool
    kvm: bool
    libguestfs: bool

    def describe(self) -> str:
        return ", ".join(f"{k.replace('_', '-')}: {'yes' if v else 'no'}" for k, v in vars(self).items())


@dataclass(frozen=True)
class Choice:
    path: Assembly
    reason: str


def choose_assembly(caps: HostCaps, prefer: Assembly | None = None) -> Choice:
    """DIB's own block-device path where device-mapper works; else DIB builds the tree and libguestfs
    assembles the disk. ``prefer`` forces a path (and fails when the host cannot take it)."""
    if prefer == "dib" and not caps.device_mapper:
        raise NoAssemblyPath("the DIB block-device path needs device-mapper (kpartx), which this host lacks")
    if prefer == "guestfs" and not caps.libguestfs:
        raise NoAssemblyPath("the libguestfs path needs a working libguestfs appliance; see libguestfs-test-tool")
    if prefer is not None:
        return Choice(prefer, f"requested ({caps.describe()})")
    if caps.device_mapper:
        return Choice("dib", "device-mapper works, so DIB partitions, formats and installs the bootloader itself")
    if caps.libguestfs:
        return Choice("guestfs", "no device-mapper (DIB's kpartx cannot map partitions): DIB builds the root "
                                 "filesystem on a plain loop device and libguestfs (TCG) writes the partitioned "
                                 "disk and installs GRUB for BIOS and UEFI")
    raise NoAssemblyPath(f"no way to assemble a disk image here ({caps.describe()}): enable device-mapper "
                         "or install libguestfs-tools")


def choose_accel(caps: HostCaps) -> Accel:
    return "kvm" if caps.kvm else "tcg"


# -- probes -------------------------------------------------------------------------------------------
def probe_device_mapper(log: Path | None = None) -> bool:
    if not Path("/dev/mapper/control").exists():
        return False
    try:
        return run(["dmsetup", "version"], log=log, check=False, timeout=20).returncode == 0
    except ToolError:
        return False


def probe_loop_partitions(log: Path | None = None) -> bool:
    with tempfile.TemporaryDirectory(prefix="gf-loopprobe-", dir="/var/tmp") as tmp:
        disk = Path(tmp) / "disk.raw"
        with disk.open("wb") as f:
            f.truncate(8 << 20)
        try:
            run(["sfdisk", "--quiet", str(disk)], input=b"label: gpt\nstart=2048, size=4096\n", log=log,
                capture=True, timeout=30)
            dev = run(["losetup", "--find", "--show", "--partscan", str(disk)], capture=True,
                      timeout=30).stdout.decode().strip()
        except ToolError:
            return False
        try:
            part = Path(f"{dev}p1")
            for _ in range(20):
                if part.exists():
                    return True
                time.sleep(0.1)
            return False
        finally:
            run(["losetup", "--detach", dev], check=False, timeout=30)


def _probe_kernel() -> Path | None:
    kernels = sorted(Path("/boot").glob("vmlinuz-*"))
    return kernels[-1] if kernels else None


def probe_kvm(log: Path | None = None, grace: float = 20.0) -> bool:
    """Boot a Linux kernel (no root: it panics) under ``-accel kvm`` with the boot's CPU model.

    Usable only when the kernel reached its panic: here qemu starts, SeaBIOS even runs, yet Linux never
    prints a line under KVM (and elsewhere qemu aborts setting MSRs). No kernel to try: not usable.
    """
    kernel = _probe_kernel()
    if kernel is None or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    with tempfile.TemporaryDirectory(prefix="gf-kvmprobe-", dir="/var/tmp") as tmp:
        console = Path(tmp) / "console.log"
        argv = ["timeout", f"{grace:.0f}", "qemu-system-x86_64", "-accel", "kvm", *KVM_CPU, "-m", "512",
                "-display", "none", "-nodefaults", "-no-reboot", "-kernel", str(kernel),
                "-append", "console=ttyS0 panic=-1", "-serial", f"file:{console}"]
        try:
            run(argv, log=log, check=False, timeout=grace + 30)
        except ToolError:
            return False
        text = console.read_text(errors="replace") if console.exists() else ""
    return "Kernel panic" in text or "VFS: Unable to mount root" in text


def probe_libguestfs(log: Path | None = None) -> bool:
    try:
        proc = run(["guestfish", "--no-progress-bars", "-a", "/dev/null", "run"], log=log, env=GUESTFS_ENV,
                   check=False, timeout=300)
    except ToolError:
        return False
    return proc.returncode == 0


Probe = Callable[[Path | None], bool]


def probe(log: Path | None = None, *, device_mapper: Probe = probe_device_mapper,
          loop_partitions: Probe = probe_loop_partitions, kvm: Probe = probe_kvm,
          libguestfs: Probe = probe_libguestfs) -> HostCaps:
    """Probe the host (each probe replaceable, for tests)."""
    return HostCaps(device_mapper=device_mapper(log), loop_partitions=loop_partitions(log), kvm=kvm(log),
                    libguestfs=libguestfs(log))
