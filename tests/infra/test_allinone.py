"""The all-in-one image: the cell's datastore image with the agent tree as one more top layer.

The top layer must be the agent tree's blob (the same diff_id in every cell) on top of the datastore
image's layers, unchanged; inside, next to the running database and on the datastore's base (whatever
its glibc), the agent runs as its own uid and maps nothing from that base.
"""

from __future__ import annotations

import json
import tarfile
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from tests.infra.probes import IMPORT_CHECK
from builder.oci.archive import stream
from builder.flavors import FlavorRuntime, Secrets
from builder.matrix.models import Agent
from builder.verify.pod import Pod, VerifyContext, wait_healthy
from tests.infra.test_agent import MAPS_CHECK, exec_as_agent, load_agent, tree_paths

# Run with the tree's python as the agent: every extension module the tree ships imports on this base,
# and with all of them loaded the process maps no file from outside the tree.
IMPORT_PROBE = IMPORT_CHECK + MAPS_CHECK + r"""
print(json.dumps({'count': count, 'failed': failed, 'uid': os.getuid(), 'gid': os.getgid(), 'outside': outside}))
"""


@pytest.fixture(scope="module")
def aio_agent(request: pytest.FixtureRequest, gf_context: VerifyContext) -> Agent:
    if not gf_context.images.get("aio"):
        pytest.skip("the context has no all-in-one image")
    return load_agent(request)


@pytest.fixture(scope="module")
def layers(gf_context: VerifyContext, docker_client: docker.DockerClient, aio_agent: Agent
           ) -> dict[str, list[str]]:
    return {role: list(docker_client.images.get(gf_context.image(role)).attrs["RootFS"]["Layers"])
            for role in ("aio", "datastore")}


@pytest.fixture(scope="module")
def aio(pod: Pod, runtime: FlavorRuntime, secrets: Secrets, aio_agent: Agent) -> Container:
    """The all-in-one image started as the database it is (own network, labelled for cleanup). The agent
    checks run while the database initialises; the last test waits for it to be healthy."""
    return pod.oneoff(image_role="aio", environment=runtime.db_env(secrets))


@pytest.fixture(scope="module")
def imported(aio: Container, aio_agent: Agent) -> dict[str, Any]:
    """What the import probe reported, run once in the started all-in-one container as the agent."""
    code, out, err = exec_as_agent(aio, aio_agent, [f"{aio_agent.venv}/bin/python3", "-I", "-c", IMPORT_PROBE])
    assert code == 0, err
    facts: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return facts


def test_top_layer_is_the_agent_tree_on_the_unchanged_datastore(layers: dict[str, list[str]],
                                                                 gf_context: VerifyContext) -> None:
    expected = gf_context.agent.layer_diff_id if gf_context.agent else None
    assert expected, "the context names no agent layer"
    assert layers["aio"][-1] == expected
    assert layers["aio"][:-1] == layers["datastore"], "the datastore's layers must be reused, not rebuilt"


def test_agent_runs_as_its_user_next_to_the_database(aio: Container, aio_agent: Agent,
                                                     imported: dict[str, Any]) -> None:
    code, out, err = exec_as_agent(aio, aio_agent, [f"{aio_agent.venv}/bin/{aio_agent.entrypoint}", "--version"])
    assert code == 0, err
    assert out.strip().splitlines()[-1] == aio_agent.version
    assert (imported["uid"], imported["gid"]) == (aio_agent.uid, aio_agent.uid)
    assert imported["count"] > 50 and not imported["failed"], imported["failed"]


def test_agent_maps_nothing_from_the_datastore_base(imported: dict[str, Any]) -> None:
    assert imported["outside"] == [], "mapped from the datastore's base"


def test_agent_files_keep_their_owners(aio: Container, aio_agent: Agent) -> None:
    argv = ["stat", "-c", "%n %u %g %a", aio_agent.venv, aio_agent.config_dir, aio_agent.log_dir]
    result = aio.exec_run(argv, user="0")
    assert result.exit_code == 0, result.output.decode()
    owners = {line.split()[0]: tuple(line.split()[1:]) for line in result.output.decode().splitlines()}
    uid = str(aio_agent.uid)
    assert owners == {aio_agent.venv: ("0", "0", "755"), aio_agent.config_dir: ("0", uid, "750"),
                      aio_agent.log_dir: (uid, uid, "750")}


def test_agent_paths_hold_only_the_verified_agent_layer(docker_client: docker.DockerClient,
                                                       gf_context: VerifyContext, aio_agent: Agent, pod: Pod) -> None:
    """The agent suite scanned this very layer (the top layer, by digest) for keys, credentials and
    configuration, and the datastore suite scanned the layers below. The merged image could only show
    something new under the agent's paths if the datastore image had files there; it may hold the
    agent's empty config and log directories (it creates them for the agent user), nothing else.
    (Re-scanning the merged image here would re-read every cell's whole image for nothing.)"""
    container = docker_client.containers.create(gf_context.image("datastore"), entrypoint=["/nonexistent"],
                                                labels=pod.labels("aio-paths"))
    try:
        found = {path: _entries(container, "/" + path) for path in tree_paths(aio_agent)}
    finally:
        container.remove(force=True, v=True)
    allowed_empty = {aio_agent.config_dir.strip("/"), aio_agent.log_dir.strip("/")}
    unexpected = {path: entries for path, entries in found.items()
                  if entries is not None and (entries or path not in allowed_empty)}
    assert not unexpected, f"the datastore image already has files at the agent's paths: {unexpected}"


def test_serves_as_the_database_with_the_agent_layer(aio: Container) -> None:
    """Last: the database in the same container became healthy, the agent layer broke nothing of it."""
    wait_healthy(aio)


def _entries(container: Container, path: str) -> list[str] | None:
    """What a path holds below itself in a (created) container; None when it does not exist."""
    try:
        chunks, _ = container.get_archive(path)
    except docker.errors.NotFound:
        return None
    with tarfile.open(fileobj=stream(iter(chunks)), mode="r|") as tar:
        return [m.name for m in tar if "/" in m.name.rstrip("/")]
