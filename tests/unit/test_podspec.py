"""Pod specs for every default cell: structurally valid, secrets referenced, non-root, agent only where managed."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from builder.matrix.loader import load_matrix
from builder.oci.k8s import check_pod
from builder.oci.naming import dns_label
from builder.oci.podspec import pod_spec, to_yaml
from builder.plan import Cell, expand
from tests.conftest import ROOT

MATRIX = load_matrix(ROOT / "matrix.yaml")
IMAGES = {"datastore": "guestforge/x:1-abc", "exporter": "guestforge/e:abc", "agent": "guestforge/agent:abc"}


def pod_for(name: str, manager: str | None = "postgresql") -> dict[str, Any]:
    cell = next(c for c in expand(MATRIX) if c.name == name)
    rebuilt = Cell.from_spec(cell.spec(exporter=True))
    return pod_spec(rebuilt, MATRIX.agent, IMAGES, manager)


@pytest.mark.parametrize("name", [c.name for c in expand(MATRIX)])
def test_every_default_cell_has_a_valid_pod(name: str) -> None:
    doc = pod_for(name)
    assert check_pod(doc) == []
    assert yaml.safe_load(to_yaml(doc, "k")) == doc
    assert doc["metadata"]["name"] == dns_label(name)
    for container in doc["spec"]["containers"]:
        ctx = container["securityContext"]
        assert ctx["runAsNonRoot"] and ctx["runAsUser"] > 0 and ctx["allowPrivilegeEscalation"] is False
        for env in container.get("env", []):
            if "PASS" in env["name"]:  # a Secret reference, or $(VAR) naming one: never a literal
                assert "secretKeyRef" in env.get("valueFrom", {}) or env["value"].startswith("$(GF_DB_"), env


def test_exporter_reads_the_password_by_reference() -> None:
    doc = pod_for("postgresql-15")
    exporter = next(c for c in doc["spec"]["containers"] if c["name"] == "exporter")
    env = {e["name"]: e for e in exporter["env"]}
    assert env["GF_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "postgresql-15-credentials",
                                                                 "key": "password"}
    assert env["DATA_SOURCE_PASS"]["value"] == "$(GF_DB_PASSWORD)"
    database = doc["spec"]["containers"][0]
    assert {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"} in database["env"]


def test_no_agent_container_without_a_manager() -> None:
    doc = pod_for("redis-7.0", manager=None)
    assert [c["name"] for c in doc["spec"]["containers"]] == ["database", "exporter"]
    assert "omitted" in doc["metadata"]["annotations"]["guestforge.io/agent"]
    assert check_pod(doc) == []


@pytest.mark.parametrize("mutate,problem", [
    (lambda d: d["spec"]["containers"][0].update(imagePullPolicyy="Always"), "unknown field"),
    (lambda d: d["metadata"].update(name="Not_A_Label"), "not a DNS-1123 label"),
    (lambda d: d["spec"]["containers"][0]["volumeMounts"].append({"name": "nope", "mountPath": "/x"}),
     "no volume named 'nope'"),
    (lambda d: d["spec"]["containers"][0]["env"].append({"name": "X", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}),
     "exactly one of value, valueFrom"),
    (lambda d: d["spec"]["containers"][0]["ports"][0].update(containerPort="5432"), "expected int"),
    (lambda d: d["spec"]["containers"][1]["readinessProbe"]["httpGet"].update(port="nope"),
     "no container port named 'nope'"),
    (lambda d: d["spec"]["containers"][0].pop("image"), "image: required"),
])
def test_checker_rejects_broken_pods(mutate: Any, problem: str) -> None:
    doc = copy.deepcopy(pod_for("postgresql-15"))
    mutate(doc)
    assert any(problem in p for p in check_pod(doc)), check_pod(doc)
