"""What the VM and bare-metal nodes read and produce: guest bases, a cell's disk images, their checks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from builder.graph.step import Artifact, Values
from builder.matrix.models import Agent
from builder.spec import CellSpec
from builder.vm.hostcaps import Assembly

Target = Literal["vm", "baremetal"]
Firmware = Literal["bios", "uefi"]


class GuestOS(BaseModel):
    """The guest's Debian suite and mirrors (decided once, host or matrix)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    suite: str
    archive: str
    security: str | None
    components: tuple[str, ...]
    apt: tuple[str, ...] = ()   # apt options for the build (builder.oci.rootfs.apt_options), not in the guest


class GuestBaseValues(Values):
    base: GuestOS
    agent: Agent
    assembly: Assembly
    dpkg_options: tuple[str, ...]


class GuestImageValues(Values):
    """A cell (with its exporter) on a guest base, for ``targets``."""

    cell: CellSpec
    image: str | None
    targets: tuple[Target, ...]
    assembly: Assembly


class GuestCheckValues(Values):
    """The offline image suite for one target."""

    cell: CellSpec
    agent: Agent
    target: Target
    suites: tuple[str, ...]


class BootValues(Values):
    cell: CellSpec
    agent: Agent
    image: str | None
    firmware: tuple[Firmware, ...]
    suites: tuple[str, ...]


class GuestBaseArtifact(Artifact):
    """A built guest base; ``files`` (role -> path relative to the build dir): tree, head, boot_grub."""

    key: str
    suite: str
    assembly: Assembly
    fs_uuid: str
    packages: tuple[tuple[str, str], ...]
    agent: dict[str, str]
    files: dict[str, str]
    size: int
    build_seconds: float


class GuestImagesArtifact(Artifact):
    """A cell's disk images and companions (role -> path relative to the build dir) and the image IDs and
    refs it preloaded (role -> value)."""

    files: dict[str, str]
    size: int
    preloaded: dict[str, str]
    refs: dict[str, str]
    build_seconds: float


class GuestCheckArtifact(Artifact):
    passed: bool
    images: tuple[str, ...]
    junit: tuple[str, ...]


class BootRecord(BaseModel):
    """One boot: ``builder.vm.boot.BootReport`` as recorded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    firmware: Firmware
    accel: str
    seconds_to_ssh: float
    seconds_to_db_ready: float
    console_log: str
    passed: bool
    junit: str | None


class BootArtifact(Artifact):
    passed: bool
    accel: str
    boots: dict[str, BootRecord]
    seconds_to_db_ready: dict[str, float]
