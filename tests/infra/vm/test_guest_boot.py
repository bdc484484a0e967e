"""A booted guest, checked over SSH (testinfra): first boot with no registry reachable.

The guest got, through its NoCloud seed only, an SSH key, the agent's configuration (a controller on its own
loopback, where nothing listens) and the database secret. Expected: no failed unit, the agent up and retrying
its controller without crash-looping, the database running from the preloaded image and answering an
authenticated query, the exporter reporting it up.
"""

from __future__ import annotations

import shlex
import time
from typing import Any

import pytest

from builder.vm.specs import AgentLayout, BootSpec


def sudo(host: Any, command: str) -> Any:
    with host.sudo():
        return host.run(command)


def show(host: Any, unit: str, *props: str) -> dict[str, str]:
    out = sudo(host, f"systemctl show {unit} " + " ".join(f"-p {p}" for p in props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_no_failed_units(host: Any) -> None:
    failed = sudo(host, "systemctl list-units --failed --no-legend --plain").stdout.strip()
    assert failed == "", f"failed units:\n{failed}"


def test_boot_finished(host: Any) -> None:
    state = sudo(host, "systemctl is-system-running --wait").stdout.strip()
    assert state == "running", state
    status = sudo(host, "cloud-init status --long").stdout
    assert "status: done" in status and "error" not in status.lower().split("errors:")[0], status


def test_ssh_host_keys_made_at_first_boot(host: Any) -> None:
    assert host.file("/etc/ssh/ssh_host_ed25519_key.pub").exists
    settings = sudo(host, "sshd -T").stdout
    assert "passwordauthentication no" in settings
    assert "permitrootlogin no" in settings


def test_agent_up_and_retrying(host: Any, boot_spec: BootSpec, agent: AgentLayout) -> None:
    if not boot_spec.agent_configured:
        pytest.skip("the agent has no manager for this datastore; its unit stays unstarted")
    log = f"{agent.log_dir}/{agent.entrypoint}.log"
    deadline = time.monotonic() + 180
    while True:
        text = sudo(host, f"cat {shlex.quote(log)}").stdout
        if "unreachable" in text.lower() or "econnrefused" in text.lower():
            break
        assert time.monotonic() < deadline, f"the agent never reported its unreachable controller:\n{text[-3000:]}"
        time.sleep(5)
    first = show(host, "guest-agent.service", "ActiveState", "MainPID", "NRestarts")
    time.sleep(15)
    later = show(host, "guest-agent.service", "ActiveState", "MainPID", "NRestarts")
    assert first["ActiveState"] == later["ActiveState"] == "active"
    assert first["MainPID"] == later["MainPID"] != "0", "the agent restarted: crash-looping"
    assert later["NRestarts"] == "0"
    owner = host.run(f"ps -o user= -p {later['MainPID']}").stdout.strip()
    assert owner == agent.user


def test_datastore_from_preloaded_image(host: Any, boot_spec: BootSpec) -> None:
    image = sudo(host, f"docker inspect --format '{{{{.Image}}}}' {boot_spec.datastore_container}").stdout.strip()
    assert image == boot_spec.datastore_image_id
    ids = set(sudo(host, "docker images --no-trunc --format '{{.ID}}'").stdout.split())
    assert ids == {boot_spec.datastore_image_id, boot_spec.exporter_image_id}, "an image came from somewhere else"


def test_datastore_answers_authenticated_query(host: Any, boot_spec: BootSpec) -> None:
    result = sudo(host, shlex.join(boot_spec.query[1:]))  # the argv starts with sudo
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == boot_spec.ping_reply


def test_datastore_not_root(host: Any, boot_spec: BootSpec) -> None:
    user = sudo(host, f"docker exec {boot_spec.datastore_container} id -u").stdout.strip()
    assert user not in ("", "0")


def test_exporter_reports_database_up(host: Any, boot_spec: BootSpec) -> None:
    fetch = ("python3 -c 'import sys, urllib.request; "
             f"sys.stdout.write(urllib.request.urlopen(\"http://127.0.0.1:{boot_spec.exporter_port}/metrics\")"
             ".read().decode())'")
    deadline = time.monotonic() + 120
    while True:
        metrics = host.run(fetch).stdout
        if any(line.split()[:2] == [boot_spec.up_metric, "1"] for line in metrics.splitlines() if line.strip()):
            break
        assert time.monotonic() < deadline, f"{boot_spec.up_metric} is not 1"
        time.sleep(5)
