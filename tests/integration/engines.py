"""A second Docker engine on this machine, for the shared-cache test: its own data root, exec root,
pidfile, socket and its own bridge. (Not ``--bridge=none``: that makes dockerd delete the shared
``docker0`` bridge of the engine everyone else uses.) It leaves iptables to the first engine: it only
pulls images, it never needs NAT. The bridge's name and subnet are picked per run: two runs on one
machine (a developer's and CI's) must not meet on a fixed name, nor one run trip on what a killed
run left behind.
"""

from __future__ import annotations

import ipaddress
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import docker.errors


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30, text=True).stdout


def _free_subnet() -> str:
    """A /24 in 10.218.0.0/16 that no address on this host is in (the gateway address, CIDR form)."""
    taken = [ipaddress.ip_interface(word).network
             for line in _ip("-4", "-o", "addr").splitlines()
             for word in line.split()[3:4]]
    for third in secrets.SystemRandom().sample(range(1, 255), 254):
        net = ipaddress.ip_network(f"10.218.{third}.0/24")
        if not any(net.overlaps(other) for other in taken):
            return f"10.218.{third}.1/24"
    raise RuntimeError("no free /24 in 10.218.0.0/16 for the second engine's bridge")


@contextmanager
def second_engine() -> Iterator[str]:
    """``DOCKER_HOST`` of a fresh engine (empty image store) for the block's duration."""
    work = Path(tempfile.mkdtemp(prefix="gf18-", dir="/tmp"))  # short: socket paths have a length limit
    bridge = f"gf{secrets.token_hex(4)}"  # 10 of the 15 characters a link name may have
    _ip("link", "add", "name", bridge, "type", "bridge")
    proc = None
    try:
        _ip("addr", "add", _free_subnet(), "dev", bridge)
        _ip("link", "set", bridge, "up")
        host = f"unix://{work}/docker.sock"
        with (work / "dockerd.log").open("ab") as log:
            proc = subprocess.Popen(
                ["dockerd", "--data-root", str(work / "data"), "--exec-root", str(work / "exec"),
                 "--pidfile", str(work / "docker.pid"), "--host", host, "--bridge", bridge,
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
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, timeout=30)
        subprocess.run(["umount", "-R", str(work / "data")], capture_output=True, timeout=60)
        shutil.rmtree(work, ignore_errors=True)
