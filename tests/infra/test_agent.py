"""The agent sidecar image: the pinned agent, laid out as Trove expects, running as its own uid,
carrying no credentials, and -- started with no controller -- staying up and retrying.

trove-guestagent needs a Docker Engine API at start (its datastore managers run the database as a
container and connect when constructed), so the sidecar here gets the engine's socket, as a Trove
guest VM gives it the local one; it only reads (no controller ever asks it to act). Its configuration
comes from builder.agent.config.runtime_files, placed in the config directory before start, as the
pod's Secret would be.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from docker.models.containers import Container

from builder.agent.config import environment, home_dir, runtime_files
from builder.matrix.models import Agent
from builder.oci.archive import files_tar, stream
from builder.verify.pod import Pod, VerifyContext
from tests.infra.conftest import docker_host, wait_for
from tests.infra.test_image_hygiene import PRIVATE_KEY, SECRETISH_ENV

DOCKER_SOCKET = "/var/run/docker.sock"
CONTROLLER = "rabbit://127.0.0.1:5672/"       # in the pod's network namespace nothing listens there
RETRY = re.compile(r"Connection failed: .*\(retrying in [0-9.]+ seconds\)")
# Configuration-like files (not library source, whose docstrings show example URLs such as
# "amqp://guest:guest@localhost//"): a credential here would be one someone meant to use.
CONFIG_SUFFIXES = (".conf", ".ini", ".cfg", ".template", ".yaml", ".yml", ".json", ".toml", ".env", ".properties")
CREDENTIAL_URL = re.compile(rb"\b[a-z][a-z0-9+.-]*://[^\s:/@'\"]+:[^\s@/'\"]+@")
PASSWORD_SETTING = re.compile(rb"^[ \t]*([\w.-]*(?:password|passwd|secret|_pass))[ \t]*[=:][ \t]*([^\s#]+)",
                              re.IGNORECASE | re.MULTILINE)
PLACEHOLDER = re.compile(rb"^(\{\{.*|\{%.*|%\(.*|<.*>|\$\{?\w+\}?|''|\"\"|none|null|changeme_not_set)$",
                         re.IGNORECASE)


# -- shared with test_allinone -------------------------------------------------------------------------------
def load_agent(request: pytest.FixtureRequest) -> Agent:
    """The matrix ``agent:`` as the runner wrote it into the context."""
    path = request.config.getoption("--gf-context")
    context = VerifyContext.load(Path(path)) if path else None
    if context is None or context.agent is None:
        pytest.skip("the context has no agent")
    return Agent.model_validate(context.agent.model_dump(exclude={"layer_diff_id"}))


def tree_paths(agent: Agent) -> tuple[str, ...]:
    """The paths the agent layer owns (relative, as in an export)."""
    return tuple(p.strip("/") for p in (agent.venv, agent.config_dir, agent.log_dir, home_dir(agent)))


def scan_tree(client: docker.DockerClient, image: str, agent: Agent, labels: Mapping[str, str]) -> dict[str, list[str]]:
    """Read the agent's files out of ``image`` (a created, never started container's export) and report
    private keys, credentials in configuration-like files, and anything in the config directory."""
    found: dict[str, list[str]] = {"private_keys": [], "credential_urls": [], "passwords": [], "config_dir": [],
                                   "entries": []}
    paths = tree_paths(agent)
    config = agent.config_dir.strip("/") + "/"
    container = client.containers.create(image, entrypoint=["/nonexistent"], labels=dict(labels))
    try:
        reader = stream(iter(container.export(chunk_size=1 << 20)))
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for member in tar:
                name = member.name.lstrip("./").rstrip("/")
                if not any(name == p or name.startswith(p + "/") for p in paths):
                    continue
                found["entries"].append(name)
                if name.startswith(config):
                    found["config_dir"].append(name)
                if not member.isfile():
                    continue
                extracted = tar.extractfile(member)
                data = extracted.read() if extracted else b""
                if data.startswith(b"\x7fELF"):
                    continue
                if PRIVATE_KEY.search(data):
                    found["private_keys"].append(name)
                if name.endswith(CONFIG_SUFFIXES) and ".dist-info/" not in name:
                    if CREDENTIAL_URL.search(data):
                        found["credential_urls"].append(name)
                    for match in PASSWORD_SETTING.finditer(data):
                        if not PLACEHOLDER.match(match.group(2)):
                            found["passwords"].append(f"{name}: {match.group(1).decode()}")
    finally:
        container.remove(force=True, v=True)
    return found


def exec_as_agent(container: Container, agent: Agent, argv: list[str]) -> tuple[int, str, str]:
    """Run ``argv`` in ``container`` as the agent's uid with its environment: (exit code, stdout, stderr)."""
    result = container.exec_run(argv, user=f"{agent.uid}:{agent.uid}", environment=environment(agent), demux=True)
    out, err = result.output
    return int(result.exit_code), (out or b"").decode(), (err or b"").decode()


# Python run by the tree's interpreter as the agent: ``outside`` lists the files a process (argv[1], else
# this one) maps from outside the tree; a check appends its report.
MAPS_CHECK = r"""
import json, os, sys
pid = sys.argv[1] if len(sys.argv) > 1 else 'self'
maps = {l.split()[5] for l in open(f'/proc/{pid}/maps') if len(l.split()) > 5 and l.split()[5].startswith('/')}
outside = sorted(m for m in maps if not m.startswith(sys.prefix + '/') and not m.startswith('/dev/'))
"""
# Every mapped file must come from the tree.
MAPS_PROBE = MAPS_CHECK + "print(json.dumps(outside))\n"


# -- fixtures -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def matrix_agent(request: pytest.FixtureRequest, gf_context: VerifyContext) -> Agent:
    if not gf_context.images.get("agent"):
        pytest.skip("the context has no agent image")
    return load_agent(request)


@pytest.fixture(scope="module")
def agent_config(matrix_agent: Agent) -> dict[str, str]:
    """Run-time configuration for a guest whose controller does not exist."""
    return runtime_files(matrix_agent, guest_id=str(uuid.uuid4()), datastore_manager="postgresql",
                         datastore_version="1", controller_url=CONTROLLER, service_uid=999)


@pytest.fixture(scope="module")
def sidecar(pod: Pod, gf_context: VerifyContext, matrix_agent: Agent, agent_config: dict[str, str]) -> Container:
    """The agent container in the pod's namespaces, with the engine socket and its configuration."""
    if not os.path.exists(DOCKER_SOCKET):
        pytest.fail(f"trove-guestagent needs a Docker API at start; no engine socket at {DOCKER_SOCKET}")
    sandbox = pod.sandbox()
    container = pod.docker.containers.create(
        gf_context.image("agent"), name=pod.name("agent-sidecar"), labels=pod.labels("agent-sidecar"),
        detach=True, network_mode=f"container:{sandbox.id}", pid_mode=f"container:{sandbox.id}",
        group_add=[os.stat(DOCKER_SOCKET).st_gid], volumes={DOCKER_SOCKET: {"bind": DOCKER_SOCKET, "mode": "rw"}})
    container.put_archive(matrix_agent.config_dir, files_tar(agent_config, matrix_agent.uid))
    container.start()
    return container


@pytest.fixture(scope="module")
def agent_pid(sidecar: Container, sandbox_host: Any, matrix_agent: Agent) -> int:
    """The agent's PID in the pod's PID namespace (seen from the sandbox, which has ps)."""
    found: list[int] = []

    def look() -> bool:
        sidecar.reload()
        assert sidecar.status == "running", "agent exited:\n" + bytes(sidecar.logs()).decode()[-3000:]
        out = sandbox_host.check_output("ps -eo pid=,args=")
        found[:] = [int(line.split()[0]) for line in out.splitlines() if matrix_agent.entrypoint in line]
        return bool(found)
    wait_for(look, 60, "the agent process")
    return found[0]


@pytest.fixture(scope="module")
def sidecar_config(gf_context: VerifyContext, docker_client: docker.DockerClient) -> dict[str, Any]:
    attrs: dict[str, Any] = docker_client.images.get(gf_context.image("agent")).attrs
    return attrs


# -- the image ------------------------------------------------------------------------------------------------
def test_version_is_the_pinned_one(docker_client: docker.DockerClient, gf_context: VerifyContext, pod: Pod,
                                   matrix_agent: Agent) -> None:
    out = docker_client.containers.run(gf_context.image("agent"), ["--version"], remove=True,
                                       network_disabled=True, labels=pod.labels("agent-version"))
    assert bytes(out).decode().strip() == matrix_agent.version


def test_image_config(sidecar_config: dict[str, Any], matrix_agent: Agent) -> None:
    config = sidecar_config["Config"]
    assert config["User"] == f"{matrix_agent.uid}:{matrix_agent.uid}"
    assert config["Entrypoint"] == [f"{matrix_agent.venv}/bin/{matrix_agent.entrypoint}"]
    assert config["Cmd"] == [f"--config-dir={matrix_agent.config_dir}"]
    env = dict(e.partition("=")[::2] for e in config.get("Env") or [])
    for key, value in environment(matrix_agent).items():
        if key != "PATH":
            assert env.get(key) == value, key
    assert not [k for k in env if k.startswith(("LD_", "PYTHONPATH", "PYTHONHOME"))]
    assert not [k for k in env if SECRETISH_ENV.search(k)]


def test_top_layer_is_the_agent_tree(sidecar_config: dict[str, Any], gf_context: VerifyContext) -> None:
    expected = gf_context.agent.layer_diff_id if gf_context.agent else None
    if not expected:
        pytest.skip("the context names no agent layer")
    assert sidecar_config["RootFS"]["Layers"][-1] == expected


def test_no_credentials_or_keys_in_the_agent_tree(docker_client: docker.DockerClient, gf_context: VerifyContext,
                                                  matrix_agent: Agent, pod: Pod) -> None:
    found = scan_tree(docker_client, gf_context.image("agent"), matrix_agent, pod.labels("agent-scan"))
    assert found["entries"], "the agent tree is not in the image"
    assert not found["private_keys"], f"private keys: {found['private_keys']}"
    assert not found["credential_urls"], f"URLs with credentials in configuration files: {found['credential_urls']}"
    assert not found["passwords"], f"password settings with values: {found['passwords']}"
    assert not found["config_dir"], f"the config directory must ship empty: {found['config_dir']}"


# -- the running agent ------------------------------------------------------------------------------------
def test_venv_layout_as_trove_expects(sidecar: Container, matrix_agent: Agent) -> None:
    host = docker_host(sidecar)
    venv = matrix_agent.venv
    entry = host.file(f"{venv}/bin/{matrix_agent.entrypoint}")
    assert entry.is_file and entry.mode & 0o111 and entry.user == "root"
    assert host.file(venv).user == "root" and not host.file(venv).mode & 0o022
    cfg = host.file(f"{venv}/pyvenv.cfg").content_string
    assert f"home = {venv}/runtime/bin" in cfg and "include-system-site-packages = false" in cfg
    assert host.file(f"{venv}/runtime/lib/ld-linux-x86-64.so.2").is_file
    assert host.file(f"{venv}/lib/python3.11/site-packages/{matrix_agent.package}").is_directory
    conf = host.file(matrix_agent.config_dir)
    assert conf.is_directory and conf.uid == 0 and conf.gid == matrix_agent.uid and conf.mode == 0o750
    logs = host.file(matrix_agent.log_dir)
    assert logs.is_directory and logs.uid == matrix_agent.uid and logs.mode == 0o750
    assert host.file(home_dir(matrix_agent)).uid == matrix_agent.uid


def test_runs_as_its_own_uid(agent_pid: int, sandbox_host: Any, matrix_agent: Agent) -> None:
    uid = int(sandbox_host.check_output("ps -o uid= -p %s", str(agent_pid)).strip())
    assert uid == matrix_agent.uid != 0


def test_maps_nothing_from_outside_its_tree(agent_pid: int, sidecar: Container, matrix_agent: Agent) -> None:
    code, out, err = exec_as_agent(sidecar, matrix_agent, [f"{matrix_agent.venv}/bin/python3", "-I", "-c",
                                                           MAPS_PROBE, str(agent_pid)])
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_stays_up_and_keeps_retrying_its_controller(agent_pid: int, sidecar: Container) -> None:
    started = sidecar.attrs["State"]["StartedAt"]
    attempts: list[str] = []

    def retried() -> bool:
        sidecar.reload()
        assert sidecar.status == "running", "agent exited:\n" + bytes(sidecar.logs()).decode()[-3000:]
        attempts[:] = [line for line in bytes(sidecar.logs()).decode(errors="replace").splitlines()
                       if RETRY.search(line)]
        return len(attempts) >= 3
    wait_for(retried, 90, "three reconnect attempts in the agent's log", interval=1)
    sidecar.reload()
    assert sidecar.attrs["State"]["StartedAt"] == started and sidecar.attrs["RestartCount"] == 0
    delays = [float(re.search(r"retrying in ([0-9.]+)", line).group(1)) for line in attempts]  # type: ignore[union-attr]
    assert delays == sorted(delays) and delays[-1] > delays[0], f"no back-off between attempts: {delays}"
    assert "Traceback" not in bytes(sidecar.logs()).decode(errors="replace")


def test_agent_pid_unchanged(agent_pid: int, sandbox_host: Any, matrix_agent: Agent) -> None:
    time.sleep(1)
    out = sandbox_host.check_output("ps -eo pid=,args=")
    assert [int(line.split()[0]) for line in out.splitlines() if matrix_agent.entrypoint in line] == [agent_pid]
