"""diskimage-builder invocations: the environment each element reads, and the one way DIB is run.

Everything an element sees comes from here as ``DIB_*`` variables built from typed inputs (the resolved
base, the matrix agent, a cell); nothing leaks in from the caller's shell (``builder.run`` cleans it).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import ToolError
from builder.agent.config import environment as agent_environment
from builder.matrix.models import Agent
from builder.oci.rootfs import ResolvedBase, apt_conf_lines
from builder.paths import ELEMENTS
from builder.run import run

# A single root filesystem on a plain loop device, no partition table: works without device-mapper or
# loop partition scanning, and its raw output *is* the partition image Ironic deploys. The UUID is fixed per
# guest base so that the GRUB installed once for the base finds every cell's root filesystem.
ROOT_LABEL = "cloudimg-rootfs"


def tree_block_device(fs_uuid: str) -> str:
    return f"""- local_loop:
    name: image0
- mkfs:
    name: mkfs_root
    base: image0
    type: ext4
    label: {ROOT_LABEL}
    uuid: {fs_uuid}
    mount:
      mount_point: /
      fstab:
        options: "defaults"
        fsck-passno: 1
"""


@dataclass(frozen=True)
class DibJob:
    """One ``disk-image-create`` run: elements, output types and the element environment."""

    elements: tuple[str, ...]
    image_types: tuple[str, ...]
    output: Path  # DIB's -o: the path without extension
    env: Mapping[str, str] = field(default_factory=dict)
    no_base: bool = False  # -n: skip DIB's `base` element (the tree already has it)
    block_device: str | None = None  # a block-device YAML; None: the elements' own (block-device-efi)

    def argv(self, program: str) -> list[str]:
        argv = [program, "-a", "amd64", "-o", str(self.output), "-t", ",".join(self.image_types)]
        if self.no_base:
            argv.append("-n")
        return [*argv, *self.elements]


def base_env(base: ResolvedBase) -> dict[str, str]:
    """Release and mirrors for ``debian-minimal``, from the resolved base (matrix or host apt sources)."""
    names = ("default", "updates", "security")
    # Rolling suites (sid) have no updates or security lines: fewer sources than names.
    lines = [f"{name}:{line}" for name, line in zip(names, base.sources(), strict=False)]
    env = {
        "DIB_RELEASE": base.suite,
        "DIB_DISTRIBUTION_MIRROR": base.archive,
        "DIB_DEBIAN_COMPONENTS": ",".join(base.components),
        "DIB_APT_SOURCES_CONF": "\n".join(lines) + "\n",
    }
    if base.security:
        env["DIB_DEBIAN_SECURITY_MIRROR"] = base.security
    if base.apt:   # guestforge-guest writes them for the build's apt and removes them before the image is made
        env["DIB_GUESTFORGE_APT_CONF"] = "\n".join(apt_conf_lines(base.apt)) + "\n"
    return env


def trim_env(filters: Sequence[str]) -> dict[str, str]:
    """dpkg path filters for ``guestforge-guest``: the OCI bases' list (``builder.oci.rootfs.DPKG_OPTIONS``,
    through the guest base node), so one list decides what no guestforge image carries."""
    return {"DIB_GUESTFORGE_DPKG_FILTERS": "\n".join(filters)}


def agent_env(agent: Agent, tarball: Path) -> dict[str, str]:
    """Settings for the ``guestforge-agent`` element, from the matrix's ``agent:``."""
    return {
        "DIB_GUESTFORGE_AGENT_TARBALL": str(tarball),
        "DIB_GUESTFORGE_AGENT_USER": agent.user,
        "DIB_GUESTFORGE_AGENT_UID": str(agent.uid),
        "DIB_GUESTFORGE_AGENT_VENV": agent.venv,
        "DIB_GUESTFORGE_AGENT_ENTRYPOINT": agent.entrypoint,
        "DIB_GUESTFORGE_AGENT_CONFIG_DIR": agent.config_dir,
        "DIB_GUESTFORGE_AGENT_LOG_DIR": agent.log_dir,
        "DIB_GUESTFORGE_AGENT_ENVIRONMENT": " ".join(f"{k}={v}" for k, v in sorted(agent_environment(agent).items())),
    }


def program() -> str:
    """``disk-image-create`` from this interpreter's environment, else from PATH."""
    beside = Path(sys.executable).parent / "disk-image-create"
    if beside.exists():
        return str(beside)
    found = shutil.which("disk-image-create")
    if found is None:
        raise ToolError("disk-image-create: command not found (run ci/setup-host to install diskimage-builder)")
    return found


def disk_image_create(job: DibJob, workdir: Path, log: Path, elements_path: Sequence[Path] = (ELEMENTS,)) -> None:
    """Run DIB for ``job``; its scratch space (tmpfs mounts, build dirs) lives under ``workdir``."""
    scratch = workdir / "dib-tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    job.output.parent.mkdir(parents=True, exist_ok=True)
    env = {
        "ELEMENTS_PATH": ":".join(str(p) for p in elements_path),
        "TMP_DIR": str(scratch),
        "DIB_IMAGE_CACHE": str(workdir / "dib-cache"),
        "DIB_DEBUG_TRACE": "0",
        # DIB's own python helpers (dib-block-device, element-info) come from the same environment.
        "PATH": f"{Path(sys.executable).parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        **job.env,
    }
    if job.block_device is not None:
        config = workdir / f"{job.output.name}.block-device.yaml"
        config.write_text(job.block_device)
        env["DIB_BLOCK_DEVICE_CONFIG"] = f"file://{config}"
    run(job.argv(program()), log=log, env=env, cwd=workdir)
