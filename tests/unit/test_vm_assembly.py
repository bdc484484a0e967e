"""Disk layout, DIB environment, seed and qemu command lines: pure functions, no tools run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from builder.matrix.models import Agent
from builder.oci.rootfs import ResolvedBase
from builder.vm import assemble, boot, dib, seed
from builder.vm.images import fs_uuid_for
from builder.vm.runtime import RuntimeFile

MIB = 1 << 20
AGENT = Agent(package="trove", version="26.0.0", entrypoint="trove-guestagent", base="debian:bookworm")


def test_layout_is_aligned_and_ordered() -> None:
    lay = assemble.layout(3_000_000_000)
    assert lay.bios_start == MIB and lay.bios_size == MIB
    assert lay.esp_start == 2 * MIB and lay.root_start == lay.esp_start + lay.esp_size
    assert lay.root_size >= 3_000_000_000 and lay.root_size % MIB == 0
    assert lay.disk_size == lay.root_start + lay.root_size + MIB
    # The head every cell reuses does not depend on the root filesystem's size.
    assert assemble.layout(10 * MIB).root_start == lay.root_start


def test_sfdisk_script() -> None:
    script = assemble.layout(64 * MIB).sfdisk_script().splitlines()
    assert script[0] == "label: gpt"
    assert "start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649" in script[1]
    assert "type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B" in script[2]
    assert script[3].startswith(f"start={assemble.layout(1).root_start // 512}, size={64 * MIB // 512}")


def test_guestfish_installs_both_firmwares(tmp_path: Path) -> None:
    script = assemble.guestfish_script(tmp_path / "grub.tar")
    assert "--target=i386-pc" in script and "--target=x86_64-efi" in script and "--removable" in script
    assert script.index("grub-mkconfig") < script.index("tar-out /boot/grub")


def test_copy_sparse_skips_zeroes(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"\0" * MIB + b"x" * 10 + b"\0" * (MIB - 10) + b"y" * MIB)
    with dst.open("wb") as f:
        f.truncate(3 * MIB)
    with src.open("rb") as s, dst.open("r+b") as d:
        assemble._copy_sparse(s, d, 0, 3 * MIB)
    assert dst.read_bytes() == src.read_bytes()


def test_base_env_from_resolved_base() -> None:
    base = ResolvedBase("debian:bookworm", "bookworm", "http://mirror.invalid/debian",
                        "http://mirror.invalid/debian-security", ("main",))
    env = dib.base_env(base)
    assert env["DIB_RELEASE"] == "bookworm"
    assert env["DIB_DISTRIBUTION_MIRROR"] == "http://mirror.invalid/debian"
    assert env["DIB_DEBIAN_SECURITY_MIRROR"] == "http://mirror.invalid/debian-security"
    lines = env["DIB_APT_SOURCES_CONF"].splitlines()
    assert lines[0] == "default:deb http://mirror.invalid/debian bookworm main"
    assert lines[2] == "security:deb http://mirror.invalid/debian-security bookworm-security main"


def test_base_env_without_security() -> None:
    env = dib.base_env(ResolvedBase("debian:sid", "sid", "http://mirror.invalid/debian", None, ("main",)))
    assert "DIB_DEBIAN_SECURITY_MIRROR" not in env
    assert env["DIB_APT_SOURCES_CONF"] == "default:deb http://mirror.invalid/debian sid main\n"


def test_agent_env() -> None:
    env = dib.agent_env(AGENT, Path("/x/agent.tar"))
    assert env["DIB_GUESTFORGE_AGENT_UID"] == "1100" and env["DIB_GUESTFORGE_AGENT_USER"] == "trove"
    assert env["DIB_GUESTFORGE_AGENT_VENV"] == "/opt/guest-agent-venv"
    assert "LC_ALL=C" in env["DIB_GUESTFORGE_AGENT_ENVIRONMENT"].split()


def test_tree_block_device_has_fixed_uuid() -> None:
    uuid = fs_uuid_for("key-1")
    assert uuid == fs_uuid_for("key-1") != fs_uuid_for("key-2")
    config = yaml.safe_load(dib.tree_block_device(uuid))
    assert config[1]["mkfs"]["uuid"] == uuid and "partitioning" not in str(config)


def test_dib_job_argv() -> None:
    job = dib.DibJob(("a", "b"), ("tar", "raw"), Path("/out/x"), no_base=True)
    assert job.argv("dic") == ["dic", "-a", "amd64", "-o", "/out/x", "-t", "tar,raw", "-n", "a", "b"]


def test_user_data() -> None:
    text = seed.user_data("ssh-ed25519 AAAA test", [RuntimeFile("/etc/guestforge/datastore.env", "A='$\"\n")])
    assert text.startswith("#cloud-config\n")
    data = yaml.safe_load(text)
    (user,) = data["users"]
    assert user["lock_passwd"] is True and user["ssh_authorized_keys"] == ["ssh-ed25519 AAAA test"]
    assert data["ssh_pwauth"] is False
    (f,) = data["write_files"]
    assert f["encoding"] == "b64" and f["permissions"] == "0600" and f["owner"] == "root:root"


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_qemu_argv_has_no_route_out(tmp_path: Path, firmware: str) -> None:
    argv = boot.qemu_argv(overlay=tmp_path / "o.qcow2", seed_iso=tmp_path / "s.iso", ssh_port=2222,
                          console=tmp_path / "c.log", pidfile=tmp_path / "q.pid", accel="tcg",
                          firmware=firmware, uefi_vars=tmp_path / "vars.fd")  # type: ignore[arg-type]
    net = argv[argv.index("-netdev") + 1]
    assert "restrict=on" in net and "hostfwd=tcp:127.0.0.1:2222-:22" in net
    assert ("pflash" in " ".join(argv)) == (firmware == "uefi")
    assert "tcg,thread=multi" in argv


def test_qemu_argv_uefi_needs_vars(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        boot.qemu_argv(overlay=tmp_path, seed_iso=tmp_path, ssh_port=1, console=tmp_path, pidfile=tmp_path,
                       accel="kvm", firmware="uefi")
