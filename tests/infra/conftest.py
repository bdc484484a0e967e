"""Fixtures of the testinfra suites: a cell started as its pod would be, and hosts to check it with.

Run by ``builder.verify.runner.run_suite`` with ``--gf-context PATH`` (see VerifyContext). Nothing
starts until a test asks: the database fixture starts the sandbox and the database, the exporter
fixture the exporter, the agent fixture the agent alone. All containers of the run go at session end.

Hosts are testinfra docker hosts: ``db_host`` runs commands in the database container (as its image
user, with only the image's tools); ``sandbox_host`` in the debug sandbox that shares the pod's
network and PID namespaces (ps, ss, curl live there, never in product images).
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import docker
import pytest
import testinfra
from docker.models.containers import Container

from builder.flavors import Command, FlavorRuntime, Secrets, flavor
from builder.matrix.models import Agent
from builder.verify.pod import CellInfo, Pod, VerifyContext, health
from builder.verify.runner import new_run_id

log = logging.getLogger("guestforge.verify")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--gf-context", type=Path, default=None,
                     help="guestforge verification context (JSON: cell, images, agent, run_id)")


# -- context ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def gf_context(request: pytest.FixtureRequest) -> VerifyContext:
    path = request.config.getoption("--gf-context")
    if path is None:
        pytest.skip("no --gf-context given: these suites run through `guestforge verify`")
    return VerifyContext.load(path)


@pytest.fixture(scope="session")
def cell(gf_context: VerifyContext) -> CellInfo:
    if gf_context.cell is None:
        pytest.skip("the context has no cell")
    return gf_context.cell


@pytest.fixture(scope="session")
def runtime(cell: CellInfo) -> FlavorRuntime:
    return flavor(cell.flavor)


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    return docker.from_env(timeout=300)


# -- the pod ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pod(gf_context: VerifyContext, docker_client: docker.DockerClient) -> Iterator[Pod]:
    with Pod(gf_context, gf_context.run_id or new_run_id(), client=docker_client) as started:
        yield started


@pytest.fixture(scope="session")
def secrets(pod: Pod) -> Secrets:
    return pod.secrets


def docker_host(container: Container) -> Any:
    return testinfra.get_host(f"docker://{container.name}")


@pytest.fixture(scope="session")
def sandbox_host(pod: Pod) -> Any:
    return docker_host(pod.sandbox())


@pytest.fixture(scope="session")
def database(pod: Pod) -> Container:
    return pod.database()


@pytest.fixture(scope="session")
def db_host(database: Container) -> Any:
    return docker_host(database)


@pytest.fixture(scope="session")
def exporter(pod: Pod) -> Container:
    return pod.exporter()


CONTROLLER = "rabbit://127.0.0.1:5672/"     # nothing listens there: the agent must keep retrying


@pytest.fixture(scope="session")
def agent_files(gf_context: VerifyContext, pod: Pod) -> Mapping[str, str] | None:
    """The agent's runtime config files from builder.agent.config, pointing at a controller that does
    not exist; None when that module is absent. A test module may override this fixture."""
    try:
        from builder.agent.config import AgentConfigError, manager_for, runtime_files
    except ImportError:
        return None
    if gf_context.agent is None:
        return None
    agent = Agent.model_validate(gf_context.agent.model_dump(exclude={"layer_diff_id"}))
    cell = gf_context.cell
    try:
        files: Mapping[str, str] = runtime_files(
            agent, guest_id=f"gfverify-{pod.run_id}",
            datastore_manager=manager_for(cell.datastore, cell.flavor) if cell else "postgresql",
            datastore_version=cell.version if cell else "0", controller_url=CONTROLLER,
            service_user=cell.user if cell else "database", service_uid=cell.uid if cell else None)
    except AgentConfigError as exc:
        pytest.skip(str(exc))
    return files


@pytest.fixture(scope="session")
def agent(pod: Pod, gf_context: VerifyContext, agent_files: Mapping[str, str] | None) -> Container:
    if gf_context.agent is None or not gf_context.images.get("agent"):
        pytest.skip("the context has no agent image")
    return pod.agent(files=agent_files)


# -- running things in containers -------------------------------------------------------------------------
def run_command(host: Any, command: Command) -> Any:
    """Run ``command`` on a testinfra host: every value quoted by testinfra, the environment set with
    env(1) (the image's sh has no other way), never a shell string built from values."""
    argv = ["env", *(f"{k}={v}" for k, v in command.env.items()), *command.argv]
    return host.run(" ".join(["%s"] * len(argv)), *argv)


Query = Callable[..., Any]


@pytest.fixture(scope="session")
def query(db_host: Any, cell: CellInfo, runtime: FlavorRuntime, secrets: Secrets) -> Query:
    """``query(statement, password=None, user=None, host=db_host)`` -> testinfra CommandResult."""
    def run(statement: str, *, password: str | None = None, user: str | None = None, host: Any = None) -> Any:
        command = runtime.query(cell, secrets, statement, password=password, user=user)
        return run_command(host or db_host, command)
    return run


def processes(host: Any, comm: str) -> list[tuple[int, int, int]]:
    """(pid, euid, ruid) of every process named ``comm`` (ps truncates names to 15 characters), from one
    ps snapshot: testinfra's process module asks ps again per process and attribute, and a short-lived
    child (a database backend, a worker) can exit in between."""
    rows = [line.split(None, 3) for line in host.check_output("ps -eo pid=,euid=,ruid=,comm=").splitlines()]
    return [(int(pid), int(euid), int(ruid)) for pid, euid, ruid, name in rows if name == comm[:15]]


def ok_output(result: Any) -> str:
    """stdout of a command that must succeed; the failure message carries its output."""
    assert result.rc == 0, f"exit {result.rc}: {result.stderr.strip() or result.stdout.strip()}"
    return str(result.stdout).strip()


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def gz(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


def healthy(container: Container) -> bool:
    return health(container) == "healthy"
