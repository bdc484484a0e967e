"""A NoCloud seed (an ISO labelled ``cidata``): SSH key, runtime files, nothing else."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from builder.run import run
from builder.vm.runtime import RuntimeFile

VERIFY_USER = "gfverify"


def user_data(ssh_public_key: str, files: Sequence[RuntimeFile], user: str = VERIFY_USER) -> str:
    """``#cloud-config``: one key-only sudo user (no default user, no password) and the runtime files."""
    config: dict[str, Any] = {
        "users": [{
            "name": user,
            "gecos": "guestforge verification",
            "shell": "/bin/bash",
            "lock_passwd": True,
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "ssh_authorized_keys": [ssh_public_key.strip()],
        }],
        "ssh_pwauth": False,
        "write_files": [{
            "path": f.path,
            "encoding": "b64",
            "content": base64.b64encode(f.content.encode()).decode(),
            "permissions": f"0{f.mode:o}",
            "owner": f.owner,
        } for f in files],
    }
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=True)


def meta_data(instance_id: str, hostname: str) -> str:
    return yaml.safe_dump({"instance-id": instance_id, "local-hostname": hostname}, sort_keys=True)


def write_seed(iso: Path, *, user_data_text: str, meta_data_text: str, log: Path) -> Path:
    """Write the NoCloud seed ISO (volume ``cidata``)."""
    src = iso.with_suffix(".d")
    src.mkdir(parents=True, exist_ok=True)
    (src / "user-data").write_text(user_data_text)
    (src / "meta-data").write_text(meta_data_text)
    for f in src.iterdir():
        f.chmod(0o600)
    run(["genisoimage", "-quiet", "-output", str(iso), "-volid", "cidata", "-joliet", "-rock",
         str(src / "user-data"), str(src / "meta-data")], log=log)
    return iso
