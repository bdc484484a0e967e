"""What this build host can do for disk images, found by trying, and which assembly path follows.

* ``device_mapper``: DIB's block-device layer maps partitions with ``kpartx``, which needs the kernel's
  device-mapper (``dmsetup version`` must reach the driver).
* ``kvm``: ``/dev/kvm`` can exist and still be unusable (qemu aborts setting MSRs, or Linux hangs silently),
  so the host's kernel is booted under ``-accel kvm`` until it panics for want of a root filesystem.

The build takes DIB's own block-device path where device-mapper works, else DIB builds the tree and
libguestfs (TCG forced, the direct backend) assembles the disk.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from builder.errors import ToolError
from builder.run import run

Assembly = Literal["dib", "guestfs"]
Accel = Literal["kvm", "tcg"]

# libguestfs with qemu's TCG: works where KVM is absent or broken.
KVM_CPU = ("-cpu", "host", "-smp", "2")

GUESTFS_ENV = {"LIBGUESTFS_BACKEND": "direct", "LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}


def probe_device_mapper(log: Path | None = None) -> bool:
    if not Path("/dev/mapper/control").exists():
        return False
    try:
        return run(["dmsetup", "version"], log=log, check=False, timeout=20).returncode == 0
    except ToolError:
        return False


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
