"""Publishing, without a registry: locations, remote names, pinned bundles, and where publish sits in the graph."""

from __future__ import annotations

import pytest

from builder.cache.oci_client import parse_location
from builder.cli.main import main
from builder.errors import GuestforgeError, UsageError
from builder.hostenv.apt import Mirrors
from builder.matrix.loader import load_matrix
from builder.pipeline import HostInputs
from builder.plan import expand
from builder.publish.refs import pin_pod_images, pinned, remote_ref
from builder.session import declare_graph
from tests.conftest import ROOT

HOST = HostInputs(Mirrors("http://mirror.invalid/debian", "http://mirror.invalid/debian-security"), None)
TOOLS = {"docker": "20.10", "mmdebstrap": "1.3", "diskimage-builder": "3.43", "qemu-img": "7.2", "libguestfs": "1.48"}
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("location, expected", [
    ("127.0.0.1:5000/dbaas", ("127.0.0.1:5000", "dbaas")),
    ("registry.example.internal/guestforge/ci", ("registry.example.internal", "guestforge/ci")),
    ("localhost:5000", ("localhost:5000", "default")),
    ("[::1]:5000/x-y", ("[::1]:5000", "x-y")),
])
def test_registry_locations(location: str, expected: tuple[str, str]) -> None:
    assert parse_location(location, "--registry", "default") == expected


@pytest.mark.parametrize("location", ["dbaas", "http://127.0.0.1:5000/x", "127.0.0.1:5000/UPPER", "host.io/-x",
                                      "host.io/a;rm -rf /", ""])
def test_bad_registry_location_is_a_usage_error(location: str) -> None:
    with pytest.raises(UsageError, match="--registry: not a registry location"):
        parse_location(location, "--registry", "default")


def test_cli_rejects_bad_registry_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-m", str(ROOT / "matrix.yaml"), "publish", "--registry", "not a registry", "redis-7.0"]) == 2
    err = capsys.readouterr().err
    assert "--registry: not a registry location" in err and "Traceback" not in err


def test_remote_names_mirror_local_ones() -> None:
    assert remote_ref("guestforge/postgresql:15-0123456789ab", "127.0.0.1:5000", "dbaas") == \
        "127.0.0.1:5000/dbaas/postgresql:15-0123456789ab"
    assert pinned("127.0.0.1:5000/dbaas/postgresql:15-aio", DIGEST) == f"127.0.0.1:5000/dbaas/postgresql@{DIGEST}"
    assert pinned("registry.example.internal/a/b:1", DIGEST) == f"registry.example.internal/a/b@{DIGEST}"
    with pytest.raises(GuestforgeError):
        remote_ref("someone/else:1", "h.io", "p")


def test_pod_images_are_pinned_and_nothing_is_left_pointing_home() -> None:
    doc = {"spec": {"initContainers": [{"name": "init", "image": "guestforge/a:1"}],
                    "containers": [{"name": "db", "image": "guestforge/a:1"}, {"name": "x", "image": "guestforge/b:2"}]}}
    out = pin_pod_images(doc, {"guestforge/a:1": f"h.io/p/a@{DIGEST}", "guestforge/b:2": f"h.io/p/b@{DIGEST}"})
    assert [c["image"] for c in out["spec"]["containers"]] == [f"h.io/p/a@{DIGEST}", f"h.io/p/b@{DIGEST}"]
    assert out["spec"]["initContainers"][0]["image"] == f"h.io/p/a@{DIGEST}"
    assert doc["spec"]["containers"][0]["image"] == "guestforge/a:1"  # the input is not changed
    with pytest.raises(GuestforgeError, match="container x runs guestforge/b:2"):
        pin_pod_images(doc, {"guestforge/a:1": f"h.io/p/a@{DIGEST}"})


def test_workload_images_are_pinned_in_the_pod_template() -> None:
    doc = {"kind": "StatefulSet", "spec": {"template": {"spec": {"containers": [
        {"name": "db", "image": "localhost/guestforge/a:1"}]}}}}
    out = pin_pod_images(doc, {"localhost/guestforge/a:1": f"h.io/p/a@{DIGEST}"})
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == f"h.io/p/a@{DIGEST}"


def graph_for(cells: list[str], targets: list[str], publish: tuple[str, str] | None):  # type: ignore[no-untyped-def]
    matrix = load_matrix(ROOT / "matrix.yaml")
    chosen = [c for c in expand(matrix) if c.name in cells]
    return declare_graph(matrix, chosen, targets, verify=True, host=HOST, tools=TOOLS,  # type: ignore[arg-type]
                         publish=publish)


def test_publish_waits_for_every_verification_of_what_it_pushes() -> None:
    graph, wanted = graph_for(["postgresql-15"], ["oci", "vm", "baremetal"], ("127.0.0.1:5000", "dbaas"))
    assert wanted == ["publish-oci:postgresql-15", "publish-vm:postgresql-15", "publish-baremetal:postgresql-15"]
    oci = set(graph.nodes["publish-oci:postgresql-15"].parents)
    assert {"verify-datastore:postgresql-15", "verify-aio:postgresql-15", "verify-agent",
            "verify-bundle:postgresql-15"} <= oci
    assert {"datastore:postgresql-15", "aio:postgresql-15", "exporter:postgres_exporter", "agent-image",
            "bundle:postgresql-15"} <= oci
    assert "boot-vm:postgresql-15" in graph.nodes["publish-vm:postgresql-15"].parents
    assert "verify-baremetal:postgresql-15" in graph.nodes["publish-baremetal:postgresql-15"].parents


def test_publishing_changes_no_other_key_and_each_registry_has_its_own() -> None:
    plain, _ = graph_for(["redis-7.0"], ["oci"], None)
    one, _ = graph_for(["redis-7.0"], ["oci"], ("127.0.0.1:5000", "dbaas"))
    other, _ = graph_for(["redis-7.0"], ["oci"], ("127.0.0.1:5000", "staging"))
    assert {n: k for n, k in one.keys.items() if not n.startswith("publish")} == plain.keys
    assert one.keys["publish-oci:redis-7.0"] != other.keys["publish-oci:redis-7.0"]
