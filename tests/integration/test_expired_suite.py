"""A base whose suite index has expired (the archive's sid, past its Valid-Until) builds with
``check_valid_until: false``, and no image keeps the build's apt options."""

from __future__ import annotations

import email.utils
import time
import urllib.request
from pathlib import Path

import pytest
from rich.console import Console

from builder.hostenv.apt import host_mirrors
from builder.matrix.loader import parse_matrix
from builder.oci.engine import Engine
from builder.oci.rootfs import MMDEBSTRAP_APT_CONF
from builder.oci.values import ImageArtifact
from builder.session import Options, RunResult, declare_graph, pick, run_graph

pytestmark = [pytest.mark.integration]

MATRIX = """\
defaults:
  targets: [oci]
bases:
  debian:sid: {{suite: sid, security: false, check_valid_until: {check}}}
agent: {{package: trove, version: 26.0.0, entrypoint: trove-guestagent, base: "debian:sid"}}
exporters:
  redis_exporter: {{base: "debian:sid", packages: [prometheus-redis-exporter], command: [prometheus-redis-exporter],
                   port: 9121, up_metric: redis_up}}
datastores:
  valkey:
    flavor: redis
    user: valkey
    uid: 999
    port: 6379
    data_dir: /data
    start: [valkey-server]
    health: [valkey-cli, ping]
    client: valkey-cli
    exporter: redis_exporter
    versions:
      "9.1": {{base: "debian:sid", packages: [valkey-server]}}
"""


def sid_expired() -> bool:
    """The archive's sid InRelease is past its Valid-Until (then apt refuses it unless told otherwise)."""
    mirrors = host_mirrors()
    with urllib.request.urlopen(f"{mirrors.archive.rstrip('/')}/dists/sid/InRelease", timeout=30) as response:
        for raw in response:
            line = raw.decode(errors="replace")
            if line.startswith("Valid-Until:"):
                until = email.utils.parsedate_to_datetime(line.partition(":")[2].strip())
                return bool(until.timestamp() < time.time())
    return False


def build(check: str, build_dir: Path, engine: Engine, wanted: str) -> RunResult:
    matrix, _ = parse_matrix(MATRIX.format(check=check), "expired.yaml")
    cells = pick(matrix, ["valkey-9.1"], None)[0]
    graph, _ = declare_graph(matrix, cells, ["oci"], verify=False)
    return run_graph("build", graph, [wanted], Options(build_dir, jobs=1), lambda: engine,
                     console=Console(stderr=True, force_terminal=False))


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def test_expired_index_builds_with_the_option_and_no_image_keeps_it(engine: Engine, tmp_path: Path) -> None:
    result = build("false", tmp_path / "build", engine, "datastore:valkey-9.1")
    assert result.ok, {n: o.error for n, o in result.outcomes.items() if not o.ok}
    refs = [result.outcomes[n].produced(ImageArtifact).ref for n in ("base:debian:sid", "datastore:valkey-9.1")]
    try:
        base = result.outcomes["base:debian:sid"].produced(ImageArtifact)
        assert base.apt == ("Acquire::Check-Valid-Until=false",)
        for ref in refs:
            listing = engine.client.containers.run(ref, ["ls", "-A", "/etc/apt/apt.conf.d"], remove=True,
                                                   entrypoint=[], user="0").decode()
            assert MMDEBSTRAP_APT_CONF.rsplit("/", 1)[1] not in listing.split(), (ref, listing)
            assert "Valid-Until" not in engine.client.containers.run(
                ref, ["sh", "-c", "apt-config dump | grep -i valid-until || true"], remove=True, entrypoint=[],
                user="0").decode(), ref
    finally:
        for ref in reversed(refs):
            engine.remove(ref)


def test_expired_index_is_refused_without_the_option(engine: Engine, tmp_path: Path) -> None:
    if not sid_expired():
        pytest.skip("the archive's sid index is not expired today: nothing to refuse")
    result = build("true", tmp_path / "build", engine, "base:debian:sid")
    outcome = result.outcomes["base:debian:sid"]
    assert not outcome.ok and outcome.log is not None
    assert "is expired" in (result.build_dir / outcome.log).read_text(), outcome.log
