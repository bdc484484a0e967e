"""Boot a guest image under qemu with a NoCloud seed and no route anywhere, then verify it over SSH.

The guest gets a fresh SSH key, the agent's configuration (pointing at a controller on its own loopback,
where nothing listens) and the database secret. Its network is qemu's user-mode network with
``restrict=on``: nothing leaves the VM; the only way in is the forwarded SSH port on the host's loopback.
The image itself is never written: the VM runs on a throw-away qcow2 overlay.
"""

from __future__ import annotations

import secrets as _random
import shlex
import socket
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from builder.errors import BuildError, ToolError
from builder.flavors import Command, Secrets, flavor
from builder.matrix.models import Agent
from builder.paths import INFRA_TESTS
from builder.plan import Cell
from builder.run import daemon, run
from builder.verify.runner import junit_counts
from builder.vm import runtime, seed
from builder.vm.hostcaps import KVM_CPU, Accel
from builder.vm.specs import AgentLayout, BootSpec

Firmware = Literal["bios", "uefi"]
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
BOOT_SUITE = INFRA_TESTS / "vm" / "test_guest_boot.py"


@dataclass(frozen=True)
class BootReport:
    firmware: Firmware
    accel: Accel
    seconds_to_ssh: float
    seconds_to_db_ready: float
    console_log: Path
    passed: bool
    junit: Path | None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def qemu_argv(*, overlay: Path, seed_iso: Path, ssh_port: int, console: Path, pidfile: Path, accel: Accel,
              firmware: Firmware, uefi_vars: Path | None = None, memory_mib: int = 2048, cpus: int = 2) -> list[str]:
    """The qemu command line (pure): q35, virtio disk and NIC, the seed as a CD, serial console to a file."""
    argv = ["qemu-system-x86_64", "-machine", "q35", "-m", str(memory_mib), "-smp", str(cpus),
            "-nodefaults", "-display", "none", "-serial", f"file:{console}", "-pidfile", str(pidfile),
            "-daemonize"]
    argv += ["-accel", "kvm", *KVM_CPU[:2]] if accel == "kvm" else ["-accel", "tcg,thread=multi"]
    if firmware == "uefi":
        if uefi_vars is None:
            raise ValueError("UEFI boot needs a writable copy of the OVMF variables")
        argv += ["-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
                 "-drive", f"if=pflash,format=raw,file={uefi_vars}"]
    argv += ["-drive", f"if=virtio,format=qcow2,file={overlay}",
             "-drive", f"media=cdrom,format=raw,readonly=on,file={seed_iso}",
             "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
             "-device", "virtio-net-pci,netdev=n0"]
    return argv


@dataclass(frozen=True)
class Guest:
    """A running guest reachable over SSH."""

    port: int
    key: Path
    ssh_config: Path
    user: str = seed.VERIFY_USER

    def ssh_argv(self, remote: Sequence[str]) -> list[str]:
        return ["ssh", "-F", str(self.ssh_config), "-i", str(self.key), "-p", str(self.port),
                f"{self.user}@127.0.0.1", shlex.join(remote)]

    def ok(self, remote: Sequence[str], log: Path, timeout: float = 60) -> bool:
        try:
            return run(self.ssh_argv(remote), log=log, check=False, timeout=timeout).returncode == 0
        except ToolError:
            return False


def _wait(what: str, probe: Callable[[], bool], deadline: float, console: Path, step: float = 5.0) -> None:
    while not probe():
        if time.monotonic() > deadline:
            tail = console.read_text(errors="replace")[-2000:] if console.exists() else ""
            raise BuildError(f"guest: timed out waiting for {what}; console tail:\n{tail}", str(console))
        time.sleep(step)


def db_query(cell: Cell, secrets: Secrets) -> Command:
    rt = flavor(cell.flavor)
    return rt.query(cell, secrets, rt.ping_statement)


def in_container(command: Command, container: str = runtime.DATASTORE_CONTAINER) -> list[str]:
    """``docker exec`` of ``command`` in the guest, as root (the login user is not in the docker group)."""
    env = [a for k, v in command.env.items() for a in ("--env", f"{k}={v}")]
    return ["sudo", "docker", "exec", *env, container, *command.argv]


def boot_and_verify(image: Path, image_format: str, cell: Cell, agent: Agent, image_ids: Mapping[str, str],
                    workdir: Path, log: Path, *, accel: Accel, firmware: Firmware = "bios",
                    timeout: float = 1200, run_suite: bool = True) -> BootReport:
    """Boot ``image`` and check it: SSH up, the database answering an authenticated query, then (unless
    ``run_suite`` is false) the testinfra boot suite over SSH. ``image_ids``: ``{"datastore": id,
    "exporter": id}`` of the preloaded images. Returns timings and the suite's verdict."""
    workdir.mkdir(parents=True, exist_ok=True)
    key = workdir / "id_ed25519"
    for old in (key, key.with_suffix(".pub")):
        old.unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "guestforge-boot-test", "-f", str(key)], log=log)
    ssh_config = workdir / "ssh_config"
    ssh_config.write_text("Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
                          "  BatchMode yes\n  ConnectTimeout 10\n  IdentitiesOnly yes\n")
    secrets = Secrets(password=_random.token_hex(12) + "'\"$\\x")
    files = runtime.datastore_files(cell, secrets)
    agent_files = runtime.agent_files(agent, cell, guest_id=str(uuid.uuid4()),
                                      controller_url=runtime.unreachable_controller())
    files += agent_files or []
    seed_iso = seed.write_seed(workdir / "seed.iso", log=log,
                               user_data_text=seed.user_data(key.with_suffix(".pub").read_text(), files),
                               meta_data_text=seed.meta_data(f"gf-{uuid.uuid4().hex[:12]}", cell.name))
    overlay = workdir / "overlay.qcow2"
    overlay.unlink(missing_ok=True)
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", image_format, "-b", str(image.resolve()), str(overlay)],
        log=log)
    uefi_vars = None
    if firmware == "uefi":
        uefi_vars = workdir / "OVMF_VARS.fd"
        uefi_vars.write_bytes(OVMF_VARS.read_bytes())
    console, pidfile = workdir / f"console-{firmware}.log", workdir / "qemu.pid"
    console.unlink(missing_ok=True)
    guest = Guest(free_port(), key, ssh_config)
    argv = qemu_argv(overlay=overlay, seed_iso=seed_iso, ssh_port=guest.port, console=console, pidfile=pidfile,
                     accel=accel, firmware=firmware, uefi_vars=uefi_vars)
    query = in_container(db_query(cell, secrets))
    started = time.monotonic()
    with daemon(argv, pidfile, log):
        deadline = started + timeout
        _wait("SSH", lambda: guest.ok(["true"], log), deadline, console)
        to_ssh = time.monotonic() - started
        _wait("the database", lambda: guest.ok(query, log), deadline, console, step=2.0)
        to_db = time.monotonic() - started
        passed, junit = True, None
        if run_suite:
            spec = BootSpec(
                cell=cell.name, flavor=cell.flavor, query=tuple(query), ping_reply=flavor(cell.flavor).ping_reply,
                datastore_image_id=image_ids["datastore"], exporter_image_id=image_ids["exporter"],
                datastore_container=runtime.DATASTORE_CONTAINER, exporter_port=cell.exporter.port,
                up_metric=cell.exporter.up_metric, agent_configured=agent_files is not None,
                agent=AgentLayout.of(agent)).write(workdir / "boot-spec.json")
            junit = workdir / "boot-junit.xml"
            proc = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(BOOT_SUITE),
                        f"--hosts=ssh://{guest.user}@127.0.0.1:{guest.port}", f"--ssh-config={ssh_config}",
                        f"--ssh-identity-file={key}", f"--gf-vm-spec={spec}", f"--junitxml={junit}"],
                       log=log, check=False, timeout=900)
            passed = proc.returncode == 0 and not junit_counts(junit, [BOOT_SUITE]).idle
    return BootReport(firmware, accel, round(to_ssh, 1), round(to_db, 1), console, passed, junit)
