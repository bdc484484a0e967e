"""The agent tree, built once with the real engine, runs unchanged on every base and repacks identically.

The tree is appended (builder.oci.layers.append_layer) to minbase images of bullseye (glibc 2.31),
bookworm (2.36) and trixie (2.41) and run there as its uid with no /etc/passwd entry: it must answer
``--version``, import every extension module it ships and map no file from outside itself. Then the
sidecar (container_specs/agent.Containerfile.j2 + the same layer) is started with the run-time
configuration of builder.agent.config and no controller: it must stay up and keep reconnecting.
"""

from __future__ import annotations

import json
import os
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.infra.probes import IMPORT_CHECK
from builder.agent.bundle import AgentTree, build_agent_tree, export_venv, layout, sidecar_containerfile
from builder.agent.config import TROVE_MANAGERS, environment, runtime_files
from builder.matrix.loader import load_matrix
from builder.matrix.models import Agent, Matrix
from builder.oci.archive import files_tar, repack_layer, sha256_file
from builder.oci.engine import Engine
from builder.oci.layers import append_layer
from builder.oci.rootfs import bootstrap, resolve
from builder.hostenv.apt import host_mirrors
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SUITES = ("bullseye", "bookworm", "trixie")
REPO = "guestforge-dev/agent-it"          # every image this module creates lives here
PREFIX = "gfdev-agent-it"                 # and every container starts with this
CONTROLLER = "rabbit://127.0.0.1:5672/"   # nothing listens there: the agent must keep retrying

# Run by the tree's own python, as the agent's uid, on a foreign base.
PROBE = IMPORT_CHECK + r"""
import pwd
maps = {l.split()[5] for l in open('/proc/self/maps') if len(l.split()) > 5 and l.split()[5].startswith('/')}
try:
    pwd.getpwuid(os.getuid()); passwd = True
except KeyError:
    passwd = False
print(json.dumps({'count': count, 'failed': failed, 'passwd': passwd, 'uid': os.getuid(),
                  'outside': sorted(m for m in maps if not m.startswith(sys.prefix + '/'))}))
"""


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return load_matrix(ROOT / "matrix.yaml")


@pytest.fixture(scope="module")
def agent(matrix: Matrix) -> Agent:
    return matrix.agent


@pytest.fixture(scope="module")
def created(engine: Engine) -> Iterator[list[str]]:
    """Image refs this module made; removed at the end (never anything else)."""
    refs: list[str] = []
    yield refs
    for ref in refs:
        engine.remove(ref)


def _base_image(engine: Engine, matrix: Matrix, suite: str, created: list[str], tmp: Path) -> str:
    """A minbase image of ``suite``: the pipeline's or a dev one if present, else bootstrapped here."""
    for ref in (f"guestforge/base:{suite}", f"guestforge-dev/base:{suite}", f"{REPO}-base:{suite}"):
        if engine.image(ref) is not None:
            return ref
    name = next(n for n, b in matrix.bases.items() if b.suite == suite)
    ref = f"{REPO}-base:{suite}"
    tar = tmp / f"{suite}.tar"
    bootstrap(resolve(name, matrix.bases[name], host_mirrors()), tar, tmp / "bootstrap.log")
    engine.import_rootfs(tar, ref, ['CMD ["bash"]'], tmp / "bootstrap.log")
    tar.unlink()
    created.append(ref)
    return ref


@pytest.fixture(scope="module")
def bases(engine: Engine, matrix: Matrix, created: list[str], tmp_path_factory: pytest.TempPathFactory
          ) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("bases")
    return {suite: _base_image(engine, matrix, suite, created, tmp) for suite in SUITES}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("agent")


@pytest.fixture(scope="module")
def tree(engine: Engine, agent: Agent, matrix: Matrix, bases: dict[str, str], workdir: Path) -> AgentTree:
    suite = matrix.bases[agent.base].suite
    started = time.monotonic()
    built = build_agent_tree(engine, agent, bases[suite], workdir, workdir / "build.log",
                             image_repo=REPO, container_prefix=PREFIX)
    print(f"\nagent tree {built.diff_id} {built.size / 1e6:.0f} MB in {time.monotonic() - started:.0f}s")
    return built


def _run(engine: Engine, image: str, argv: list[str], agent: Agent, name: str) -> tuple[int, str, str]:
    container = engine.client.containers.create(image, argv, entrypoint=[], name=name, network_disabled=True,
                                                user=f"{agent.uid}:{agent.uid}", environment=environment(agent))
    try:
        container.start()
        status = int(container.wait(timeout=300)["StatusCode"])
        return (status, bytes(container.logs(stdout=True, stderr=False)).decode(),
                bytes(container.logs(stdout=False, stderr=True)).decode())
    finally:
        container.remove(force=True)


# -- the tree ------------------------------------------------------------------------------------------------
def test_tree_reports_the_pinned_agent(tree: AgentTree, agent: Agent) -> None:
    assert tree.version == agent.version
    assert set(tree.managers) == TROVE_MANAGERS, "update builder.agent.config.TROVE_MANAGERS"
    assert tree.python.startswith("3.11.")
    assert tree.diff_id == sha256_file(tree.path) and tree.size == tree.path.stat().st_size
    assert any(p.startswith(f"{agent.package}=={agent.version}") for p in tree.packages)


def test_tarball_layout_and_owners(tree: AgentTree, agent: Agent) -> None:
    directories, _ = layout(agent)
    with tarfile.open(tree.path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert all(m.mtime == 0 for m in members)
    owned = {m.name: (m.uid, m.gid, m.mode) for m in members if m.uid or m.gid}
    assert owned == {name: (o.uid, o.gid, o.mode) for name, o in directories.items() if o.uid or o.gid}
    venv = agent.venv.strip("/")
    for required in (f"{venv}/bin/{agent.entrypoint}", f"{venv}/pyvenv.cfg", f"{venv}/runtime/bin/python3.11",
                     f"{venv}/runtime/lib/ld-linux-x86-64.so.2", f"{venv}/runtime/lib/libc.so.6"):
        assert required in names
    config = agent.config_dir.strip("/")
    assert not [n for n in names if n.startswith(config + "/")], "the config directory must ship empty"
    # Bytecode only (the matrix leaves agent.sources off): each compiled module is one NAME.pyc, no NAME.py
    # beside it, and no __pycache__ anywhere.
    bytecode = {n.removesuffix("c") for n in names if n.endswith(".pyc")}
    assert len(bytecode) > 5000 and not bytecode & set(names)
    assert not [n for n in names if "/__pycache__" in n]


def test_second_build_reuses_the_tarball(tree: AgentTree, engine: Engine, agent: Agent, bases: dict[str, str],
                                         matrix: Matrix, workdir: Path) -> None:
    again = build_agent_tree(engine, agent, bases[matrix.bases[agent.base].suite], workdir,
                             workdir / "build.log", image_repo=REPO, container_prefix=PREFIX)
    assert again.reused and again.diff_id == tree.diff_id


def test_export_and_repack_twice_give_the_same_digest(tree: AgentTree, engine: Engine, agent: Agent,
                                                      tmp_path: Path) -> None:
    directories, owners = layout(agent)
    digests = []
    for n in range(2):
        export = tmp_path / f"export{n}.tar"
        export_venv(engine, tree.builder_image, agent.venv, export, f"{PREFIX}-export-{n}")
        digests.append(repack_layer(export, tmp_path / f"layer{n}.tar", source_root=Path(agent.venv).name,
                                    dest_root=agent.venv, directories=directories, owners=owners))
    assert digests == [tree.diff_id, tree.diff_id]


# -- on every base -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def on_bases(tree: AgentTree, engine: Engine, bases: dict[str, str], created: list[str],
             workdir: Path) -> dict[str, str]:
    refs = {}
    for suite, base in bases.items():
        ref = f"{REPO}-aio:{suite}"
        created.append(ref)
        append_layer(engine, base, tree.path, ref, workdir / "append.log", diff_id=tree.diff_id)
        refs[suite] = ref
    return refs


def test_agent_layer_is_the_same_blob_on_every_base(on_bases: dict[str, str], engine: Engine,
                                                    tree: AgentTree, bases: dict[str, str]) -> None:
    for suite, ref in on_bases.items():
        image, base = engine.image(ref), engine.image(bases[suite])
        assert image is not None and base is not None
        layers = image.attrs["RootFS"]["Layers"]
        assert layers[-1] == tree.diff_id
        assert layers[:-1] == base.attrs["RootFS"]["Layers"], "the base's layers must be reused as they are"


@pytest.mark.parametrize("suite", SUITES)
def test_runs_on_base_as_its_uid_without_passwd_entry(suite: str, on_bases: dict[str, str], engine: Engine,
                                                      agent: Agent) -> None:
    image = on_bases[suite]
    status, out, err = _run(engine, image, [f"{agent.venv}/bin/{agent.entrypoint}", "--version"], agent,
                            f"{PREFIX}-version-{suite}")
    assert status == 0, err[-2000:]
    assert out.strip() == agent.version
    status, out, err = _run(engine, image, [f"{agent.venv}/bin/python3", "-I", "-c", PROBE], agent,
                            f"{PREFIX}-probe-{suite}")
    assert status == 0, err[-2000:]
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts["uid"] == agent.uid and not facts["passwd"]
    assert facts["count"] > 50 and not facts["failed"], facts["failed"]
    assert not facts["outside"], f"mapped from the {suite} base: {facts['outside']}"


# -- the sidecar, started without a controller ------------------------------------------------------------------
@pytest.fixture(scope="module")
def sidecar(tree: AgentTree, engine: Engine, agent: Agent, matrix: Matrix, bases: dict[str, str],
            created: list[str], workdir: Path) -> str:
    base_ref, ref = f"{REPO}-sidecar-base:{agent.version}", f"{REPO}-sidecar:{agent.version}"
    text = sidecar_containerfile(agent, bases[matrix.bases[agent.base].suite], {})
    engine.build({"Containerfile": text.encode()}, base_ref, workdir / "sidecar.log")
    created.append(ref)   # base_ref stays, like the builder image: it is the next run's build cache
    append_layer(engine, base_ref, tree.path, ref, workdir / "sidecar.log", diff_id=tree.diff_id)
    return ref


@pytest.mark.parametrize("manager", sorted(TROVE_MANAGERS))
def test_sidecar_stays_up_and_retries_its_controller(manager: str, sidecar: str, engine: Engine,
                                                     agent: Agent) -> None:
    socket = "/var/run/docker.sock"
    if not os.path.exists(socket):
        pytest.fail(f"trove-guestagent needs a Docker API at start; this test hands it the engine's {socket}")
    files = runtime_files(agent, guest_id=str(uuid.uuid4()), datastore_manager=manager, datastore_version="1",
                          controller_url=CONTROLLER, service_uid=999)
    container = engine.client.containers.create(
        sidecar, name=f"{PREFIX}-sidecar-{manager}", network_mode="none", group_add=[os.stat(socket).st_gid],
        volumes={socket: {"bind": socket, "mode": "rw"}})
    try:
        container.put_archive(agent.config_dir, files_tar(files, agent.uid))
        container.start()
        deadline, retries, logs = time.monotonic() + 90, 0, ""
        while time.monotonic() < deadline and retries < 4:
            time.sleep(2)
            container.reload()
            assert container.status == "running", "agent exited:\n" + bytes(container.logs()).decode()[-3000:]
            logs = bytes(container.logs()).decode(errors="replace")
            retries = sum(1 for line in logs.splitlines() if "Connection failed" in line and "retrying in" in line)
        assert retries >= 4, f"no reconnect attempts logged:\n{logs[-3000:]}"
        assert "Traceback" not in logs, logs[-3000:]
        status = container.exec_run(["cat", "/proc/1/status"]).output.decode()
        uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        assert uids == [str(agent.uid)] * 4, status
        assert container.attrs["RestartCount"] == 0
    finally:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
