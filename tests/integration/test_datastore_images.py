"""The testinfra suites can fail: images that break their contract, or carry planted problems, are caught.

Builds on the session's gate (tests/integration/conftest.py): derived images are tagged
guestforge-dev/ds-it* and removed here, nothing else touched.
"""

from __future__ import annotations

import base64
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from builder.oci.values import ImageArtifact
from builder.matrix.models import Matrix
from builder.oci.engine import Engine
from builder.oci.render import render
from builder.paths import INFRA_TESTS
from builder.plan import Cell, expand
from builder.session import RunResult
from builder.verify.pod import LABEL
from builder.spec import VerifyContext
from builder.verify.runner import SuiteResult, run_suite
from tests.infra.test_image_hygiene import scan_image

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = "guestforge-dev/ds-it"
AWKWARD_LABEL = 'a "quoted" $HOME \\ value'


@pytest.fixture(scope="module")
def created(engine: Engine) -> Iterator[list[str]]:
    refs: list[str] = []
    yield refs
    for ref in reversed(refs):
        engine.remove(ref)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ds-it")


@pytest.fixture(scope="module")
def images(gate: RunResult) -> dict[str, dict[str, str]]:
    """{cell: {datastore, exporter, debug}} from the gate's build."""
    out = {}
    for node_id, outcome in gate.outcomes.items():
        if node_id.startswith("datastore:"):
            cell = node_id.split(":", 1)[1]
            exporter = next(p for p in gate.graph.nodes[f"bundle:{cell}"].parents if p.startswith("exporter:"))
            out[cell] = {"datastore": outcome.produced(ImageArtifact).ref, "exporter": gate.outcomes[exporter].produced(ImageArtifact).ref,
                         "debug": gate.outcomes["debug"].produced(ImageArtifact).ref}
    return out


def suite_files(cell: Cell) -> list[Path]:
    return [INFRA_TESTS / "test_image_hygiene.py", INFRA_TESTS / "test_datastore.py",
            INFRA_TESTS / "flavors" / f"test_{cell.flavor}.py", INFRA_TESTS / "test_exporter.py"]


def verify(cell: Cell, images: dict[str, str], workdir: Path, tag: str) -> SuiteResult:
    context = VerifyContext(cell=cell.spec(exporter=True), images={**images, "agent": None, "aio": None})
    return run_suite(context, suite_files(cell), workdir / f"{tag}.log", workdir / f"{tag}.xml")


def failed_tests(junit: Path) -> set[str]:
    return {case.get("name", "") for case in ET.parse(junit).getroot().iter("testcase")
            if case.find("failure") is not None or case.find("error") is not None}


def leftovers(run_id: str) -> list[str]:
    client = docker.from_env()
    selector = {"label": f"{LABEL}={run_id}"}
    return ([c.name for c in client.containers.list(all=True, filters=selector)]
            + [v.name for v in client.volumes.list(filters=selector)]
            + [n.name for n in client.networks.list(filters=selector)])


def test_labels_reach_the_image_unmangled(gate: RunResult, engine: Engine, created: list[str],
                                         workdir: Path) -> None:
    """Label values are data: quotes, $ and backslashes survive the Containerfile parser unchanged."""
    base = gate.outcomes["base:debian:bookworm"].produced(ImageArtifact).ref
    text = render("debug.Containerfile.j2", {"base_image": base, "labels": {"org.opencontainers.image.description":
                                                                           AWKWARD_LABEL}})
    engine.build({"Containerfile": text.encode()}, f"{REPO}:labels", workdir / "build.log",
                 labels={"io.guestforge.key": "it-0123abcd"})
    created.append(f"{REPO}:labels")
    image = engine.image(f"{REPO}:labels")
    assert image is not None
    labels = image.attrs["Config"]["Labels"]
    assert labels["org.opencontainers.image.description"] == AWKWARD_LABEL
    assert labels["io.guestforge.key"] == "it-0123abcd"


def test_an_image_that_ignores_its_password_fails_verification(images: dict[str, dict[str, str]], matrix: Matrix,
                                                              engine: Engine, created: list[str],
                                                              workdir: Path) -> None:
    """The suites can fail: a Redis image whose entrypoint drops the password must not pass."""
    real = images["redis-7.0"]["datastore"]
    broken = _derive(engine, real, [
        'ENTRYPOINT ["env", "-u", "REDIS_PASSWORD", "REDIS_ALLOW_EMPTY_PASSWORD=yes", "docker-entrypoint.sh"]'],
        f"{REPO}:broken-redis", created, workdir)
    cell = next(c for c in expand(matrix) if c.name == "redis-7.0")
    result = verify(cell, {**images["redis-7.0"], "datastore": broken}, workdir, "broken-redis")
    assert not result.passed
    failed = failed_tests(result.junit)
    assert "test_wrong_password_is_rejected" in failed
    assert "test_datastore_runtime_contract" in failed
    assert leftovers(result.run_id) == []


def _derive(engine: Engine, base: str, lines: list[str], ref: str, created: list[str], workdir: Path,
            files: dict[str, bytes | Path] | None = None) -> str:
    text = "\n".join([f"FROM {base}", *lines]) + "\n"
    engine.build({"Containerfile": text.encode(), **(files or {})}, ref, workdir / "build.log")
    created.append(ref)
    return ref


def test_hygiene_scan_finds_planted_problems(images: dict[str, dict[str, str]], engine: Engine,
                                            created: list[str], workdir: Path) -> None:
    body = base64.encodebytes(os.urandom(96)).decode()
    pem = f"-----BEGIN {'PRIVATE'} KEY-----\n{body}-----END {'PRIVATE'} KEY-----\n"
    planted = _derive(engine, images["redis-7.0"]["debug"], [
        "COPY key.pem /etc/app/key.pem",
        "RUN mkdir -p /var/lib/apt/lists /etc/ssh && touch /var/lib/apt/lists/x_Packages /etc/ssh/sshd_config",
    ], f"{REPO}:planted", created, workdir, {"key.pem": pem.encode()})
    found = scan_image(docker.from_env(), planted, "it-scan")
    assert found.private_keys == ["etc/app/key.pem"]
    assert "var/lib/apt/lists/x_Packages" in found.names and "etc/ssh/sshd_config" in found.names
    clean = scan_image(docker.from_env(), images["redis-7.0"]["datastore"], "it-scan")
    assert clean.private_keys == [] and not any(n.startswith("var/lib/apt/lists/") and n.endswith("Packages")
                                                for n in clean.names)
