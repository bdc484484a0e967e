"""Disk layout, DIB environment, seed and qemu command lines: pure functions, no tools run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from builder.matrix.models import Agent
from builder.oci.rootfs import ResolvedBase
from builder.agent.config import environment
from builder.vm import assemble, boot, dib, gpt, seed
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


def test_gpt_matches_the_layout_and_is_deterministic(tmp_path: Path) -> None:
    lay = assemble.layout(64 * MIB)
    head, tail = gpt.table(lay.disk_size, lay.partitions())
    assert len(head) == 34 * 512 and len(tail) == 33 * 512
    assert head[510:512] == b"\x55\xaa" and head[450] == 0xEE  # protective MBR
    assert head[512:520] == b"EFI PART" and tail[-512:-504] == b"EFI PART"
    assert (head, tail) == gpt.table(lay.disk_size, lay.partitions())
    disk = tmp_path / "disk.raw"
    with disk.open("wb") as f:
        f.truncate(lay.disk_size)
        f.write(head)
        f.seek(lay.disk_size - len(tail))
        f.write(tail)
    # sfdisk reads it back: checksums, both headers, every partition where the layout put it.
    verify = subprocess.run(["sfdisk", "--verify", str(disk)], capture_output=True, text=True)
    assert verify.returncode == 0 and "no errors detected" in verify.stdout.lower() and not verify.stderr, \
        verify.stdout + verify.stderr  # sfdisk reports a corrupt primary or backup table on stderr
    table = json.loads(subprocess.run(["sfdisk", "--json", str(disk)], check=True, capture_output=True,
                                      text=True).stdout)["partitiontable"]
    assert table["label"] == "gpt"
    assert [(p["start"], p["size"], p["type"], p["name"]) for p in table["partitions"]] == [
        (2048, 2048, assemble.BIOS_BOOT_GUID, "bios-boot"),
        (4096, 100 * 2048, assemble.ESP_GUID, "esp"),
        (lay.root_start // 512, 64 * 2048, assemble.LINUX_GUID, "root")]


def test_gpt_refuses_partitions_outside_the_disk() -> None:
    lay = assemble.layout(64 * MIB)
    with pytest.raises(ValueError, match="does not fit"):
        gpt.table(lay.disk_size - MIB, lay.partitions())


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


def test_disk_from_template_holds_head_table_and_filesystem(tmp_path: Path) -> None:
    """Real e2image and sfdisk on small files: the head's boot code, a valid GPT (primary and backup) and
    the root filesystem at its partition's offset."""
    fs, head, disk, log = tmp_path / "root.ext4", tmp_path / "head.raw", tmp_path / "disk.raw", tmp_path / "log"
    with fs.open("wb") as f:
        f.truncate(16 * MIB)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "gf-test", str(fs)], check=True)
    lay = assemble.layout(16 * MIB)
    with head.open("wb") as f:
        f.write(b"\xeb\x63GRUB-CODE".ljust(440, b"\x90"))
        f.seek(lay.esp_start)
        f.write(b"ESP-CONTENT")
        f.truncate(lay.root_start)
    assemble.disk_from_template(head, fs, disk, log)
    assert disk.stat().st_size == lay.disk_size
    table = json.loads(subprocess.run(["sfdisk", "--json", str(disk)], check=True, capture_output=True,
                                      text=True).stdout)["partitiontable"]
    assert [(p["start"] * 512, p["size"] * 512) for p in table["partitions"]] == \
        [(lay.bios_start, lay.bios_size), (lay.esp_start, lay.esp_size), (lay.root_start, lay.root_size)]
    verify = subprocess.run(["sfdisk", "--verify", str(disk)], capture_output=True, text=True)
    assert verify.returncode == 0 and "no errors detected" in verify.stdout.lower() and not verify.stderr, \
        verify.stdout + verify.stderr
    data = disk.read_bytes()
    assert data[:11] == b"\xeb\x63GRUB-CODE" and data[510:512] == b"\x55\xaa"
    assert data[lay.esp_start:lay.esp_start + 11] == b"ESP-CONTENT"
    assert data[lay.root_start + 1080:lay.root_start + 1082] == b"\x53\xef"  # ext4 superblock magic
    assert data[-512:-504] == b"EFI PART"  # the backup GPT header, in the last sector


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
    # The same declaration as the sidecar image's ENV lines, HOME and PATH included.
    assert env["DIB_GUESTFORGE_AGENT_ENVIRONMENT"].split() == [f"{k}={v}" for k, v in sorted(environment(AGENT).items())]


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
