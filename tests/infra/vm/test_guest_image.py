"""The guest image's root filesystem, checked without booting it (testinfra, chroot backend, read-only).

What every VM and bare-metal image of a cell must hold: the agent as Trove lays it out and enabled, the
cell's images preloaded with the expected digests, cloud-init limited to NoCloud and ConfigDrive, SSH with
keys only, no credentials, no private keys, no SSH host keys, and no service running as root.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest

from builder.vm.specs import AgentLayout, ImageSpec

WANTS = "/etc/systemd/system/multi-user.target.wants"


def read(host: Any, path: str) -> str:
    f = host.file(path)
    assert f.exists, f"{path} is missing"
    return str(f.content_string)


# -- the agent -------------------------------------------------------------------------------------------------
def test_agent_tree_installed(host: Any, agent: AgentLayout) -> None:
    entry = host.file(f"{agent.venv}/bin/{agent.entrypoint}")
    assert entry.exists and entry.mode & 0o111, "the agent's entry point is missing or not executable"
    assert entry.uid == 0, "the agent's code must belong to root, not to the agent"


def test_agent_user(host: Any, agent: AgentLayout) -> None:
    user = host.user(agent.user)
    assert user.exists
    assert user.uid == agent.uid != 0
    assert user.shell in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
    assert "docker" in user.groups, "the agent drives the datastore through the Docker API"


def test_agent_unit(host: Any, agent: AgentLayout) -> None:
    unit = read(host, "/etc/systemd/system/guest-agent.service")
    assert f"ExecStart={agent.venv}/bin/{agent.entrypoint} --config-dir={agent.config_dir}" in unit
    assert f"User={agent.user}" in unit and "User=root" not in unit
    assert re.search(r"^Restart=(always|on-failure)$", unit, re.M)
    assert host.file(f"{WANTS}/guest-agent.service").is_symlink, "guest-agent.service is not enabled"


def test_agent_dirs(host: Any, agent: AgentLayout) -> None:
    conf = host.file(agent.config_dir)
    assert conf.is_directory and conf.uid == 0 and conf.mode & 0o007 == 0
    assert conf.listdir() == [], "the agent's configuration arrives at boot; the image must hold none"
    logs = host.file(agent.log_dir)
    assert logs.is_directory and logs.user == agent.user
    assert agent.log_dir in read(host, "/etc/logrotate.d/guest-agent")


# -- the preloaded images ------------------------------------------------------------------------------------
def test_preloaded_images(host: Any, image_spec: ImageSpec) -> None:
    repos = json.loads(read(host, "/var/lib/docker/image/overlay2/repositories.json"))["Repositories"]
    for ref, image_id in image_spec.image_ids.items():
        name = ref.rsplit(":", 1)[0]
        assert repos.get(name, {}).get(ref) == image_id, f"{ref} is not preloaded as {image_id}"
        config = host.file(f"/var/lib/docker/image/overlay2/imagedb/content/sha256/{image_id.split(':', 1)[1]}")
        assert config.exists
        assert "sha256:" + hashlib.sha256(config.content).hexdigest() == image_id, f"{ref}: config digest"


def test_preloaded_layers_unpacked(host: Any) -> None:
    """Layers are already extracted (overlay2): the first boot has nothing to pull or unpack."""
    assert host.file("/var/lib/docker/overlay2").is_directory
    assert len(host.file("/var/lib/docker/overlay2").listdir()) > 1


def test_no_build_time_engine_state(host: Any) -> None:
    for path in ("/var/lib/docker/network", "/var/lib/docker/engine-id", "/var/tmp/guestforge-preload"):
        assert not host.file(path).exists, f"{path}: engine state from the build"
    containers = host.file("/var/lib/docker/containers")
    assert not containers.exists or containers.listdir() == []


def test_datastore_units(host: Any, image_spec: ImageSpec) -> None:
    unit = read(host, "/etc/systemd/system/guestforge-datastore.service")
    assert "ConditionPathExists=/etc/guestforge/datastore.env" in unit
    assert "--pull never" in unit
    (ref,) = [r for r in image_spec.image_ids if r in unit]
    assert ref
    assert host.file(f"{WANTS}/guestforge-datastore.service").is_symlink
    exporter = read(host, "/etc/systemd/system/guestforge-exporter.service")
    assert "ConditionPathExists=/etc/guestforge/exporter.env" in exporter


def test_datastore_runs_as_non_root(host: Any, image_spec: ImageSpec) -> None:
    for ref, image_id in image_spec.image_ids.items():
        config = json.loads(read(host, "/var/lib/docker/image/overlay2/imagedb/content/sha256/"
                                        + image_id.split(":", 1)[1]))
        user = config.get("config", {}).get("User", "")
        assert user.split(":")[0] not in ("", "root", "0"), f"{ref} runs as root"


# -- cloud-init ----------------------------------------------------------------------------------------------
def test_cloud_init_datasources(host: Any, image_spec: ImageSpec) -> None:
    files = ["/etc/cloud/cloud.cfg"] + sorted(
        f"/etc/cloud/cloud.cfg.d/{n}" for n in host.file("/etc/cloud/cloud.cfg.d").listdir() if n.endswith(".cfg"))
    effective = None
    for path in files:
        for match in re.finditer(r"^datasource_list:\s*\[([^\]]*)\]", read(host, path), re.M):
            listed = [d.strip().strip("'\"") for d in match.group(1).split(",") if d.strip()]
            assert set(listed) <= set(image_spec.datasources), f"{path} lists {listed}"
            effective = listed
    assert effective == list(image_spec.datasources)


# -- SSH and credentials -------------------------------------------------------------------------------------
def test_sshd_keys_only(host: Any) -> None:
    main = read(host, "/etc/ssh/sshd_config")
    first = next(line for line in main.splitlines() if line.strip() and not line.startswith("#"))
    assert first.startswith("Include /etc/ssh/sshd_config.d/"), "drop-ins must come first (first value wins)"
    settings: dict[str, str] = {}
    for name in sorted(host.file("/etc/ssh/sshd_config.d").listdir()):
        for line in read(host, f"/etc/ssh/sshd_config.d/{name}").splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, value = line.partition(" ")
                settings.setdefault(key.lower(), value.strip().lower())
    assert settings.get("passwordauthentication") == "no"
    assert settings.get("kbdinteractiveauthentication") == "no"
    assert settings.get("permitrootlogin") in ("no", "prohibit-password")


def test_no_ssh_host_keys(host: Any) -> None:
    keys = [n for n in host.file("/etc/ssh").listdir() if n.startswith("ssh_host_")]
    assert keys == [], f"host keys baked into the image: {keys}"


def test_host_keys_made_at_first_boot(host: Any) -> None:
    unit = read(host, "/etc/systemd/system/guestforge-ssh-host-keys.service")
    assert "ExecStart=/usr/bin/ssh-keygen -A" in unit and "Before=ssh.service" in unit
    assert host.file(f"{WANTS}/guestforge-ssh-host-keys.service").is_symlink


def test_no_passwords(host: Any) -> None:
    for line in read(host, "/etc/shadow").splitlines():
        name, hashed = line.split(":")[:2]
        assert hashed.startswith(("!", "*")), f"{name} can log in with a password (or none)"


def test_no_private_keys(host: Any) -> None:
    # A PEM block on a line of its own: a key file, not code that names the marker (cryptography's ssh.py).
    found = host.run("grep -rlIE --exclude-dir=docker -e '^-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----$' "
                     "/etc /root /home /opt /usr/local /var/lib")
    assert found.stdout.strip() == "", f"private keys in the image:\n{found.stdout}"


def test_no_runtime_secrets(host: Any) -> None:
    assert not host.file("/etc/guestforge/datastore.env").exists
    assert not host.file("/etc/guestforge/exporter.env").exists
    found = host.run("grep -rlI -e 'transport_url' -e 'rabbit://' /etc")
    assert found.stdout.strip() == "", f"message-bus settings in the image:\n{found.stdout}"


def test_machine_id_blank(host: Any) -> None:
    machine_id = host.file("/etc/machine-id")
    assert not machine_id.exists or machine_id.content_string.strip() in ("", "uninitialized")


def test_trimmed_like_the_oci_bases(host: Any) -> None:
    """No docs but copyright files, no man pages, no message catalogues; and dpkg keeps it so."""
    assert "path-exclude=/usr/share/doc/*" in read(host, "/etc/dpkg/dpkg.cfg.d/guestforge-trim")
    found = host.run("find /usr/share/doc /usr/share/man /usr/share/locale -type f "
                     "! -name copyright ! -name locale.alias")
    assert found.rc == 0 and found.stdout.strip() == "", f"untrimmed files:\n{found.stdout[:2000]}"


# -- boot ------------------------------------------------------------------------------------------------------
def test_serial_console(host: Any) -> None:
    assert "console=ttyS0" in read(host, "/etc/default/grub")
    assert host.file("/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service").is_symlink


@pytest.mark.parametrize("platform", ["i386-pc", "x86_64-efi"])
def test_grub_for_both_firmwares(host: Any, platform: str) -> None:
    assert host.file(f"/usr/lib/grub/{platform}").is_directory


def test_kernel_and_ramdisk(host: Any) -> None:
    names = host.file("/boot").listdir()
    assert any(n.startswith("vmlinuz-") for n in names) and any(n.startswith("initrd.img-") for n in names)
