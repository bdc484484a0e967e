"""A second Docker engine on this machine, for the shared-cache test: its own data root, exec root,
pidfile, socket and its own bridge. (Not ``--bridge=none``: that makes dockerd delete the shared
``docker0`` bridge of the engine everyone else uses.) It leaves iptables to the first engine: it only
pulls images, it never needs NAT.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import docker.errors

BRIDGE, BRIDGE_CIDR = "gf18br0", "10.218.18.1/24"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextmanager
def second_engine() -> Iterator[str]:
    """``DOCKER_HOST`` of a fresh engine (empty image store) for the block's duration."""
    work = Path(tempfile.mkdtemp(prefix="gf18-", dir="/tmp"))  # short: socket paths have a length limit
    _ip("link", "add", "name", BRIDGE, "type", "bridge")
    proc = None
    try:
        _ip("addr", "add", BRIDGE_CIDR, "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        host = f"unix://{work}/docker.sock"
        with (work / "dockerd.log").open("ab") as log:
            proc = subprocess.Popen(
                ["dockerd", "--data-root", str(work / "data"), "--exec-root", str(work / "exec"),
                 "--pidfile", str(work / "docker.pid"), "--host", host, "--bridge", BRIDGE,
                 "--iptables=false", "--ip-masq=false", "--storage-driver", "overlay2"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        for _ in range(120):
            try:
                docker.DockerClient(base_url=host, timeout=5).ping()
                break
            except docker.errors.DockerException:
                if proc.poll() is not None:
                    raise RuntimeError(f"second dockerd exited: {(work / 'dockerd.log').read_text()[-2000:]}") from None
                time.sleep(0.5)
        else:
            raise RuntimeError("second dockerd did not answer within 60 s")
        yield host
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, timeout=30)
        subprocess.run(["umount", "-R", str(work / "data")], capture_output=True, timeout=60)
        shutil.rmtree(work, ignore_errors=True)
