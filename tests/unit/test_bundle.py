"""Kubernetes bundles for every default cell: schema-valid (1.25 and newest, strict), PSA restricted,
every Secret key the pod reads in the template, images never on Docker Hub, agent only where it can run."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from builder.cli.main import main
from builder.k8s.action import agent_plan, prefixed
from builder.k8s.bundle import AgentPlan, Bundle, render
from builder.k8s.resources import resolve
from builder.k8s.secrets import keys
from builder.k8s.validate import problems, psa_restricted, versions
from builder.matrix.loader import load_matrix, parse_matrix
from builder.plan import Cell, expand
from builder.verify.play import expand as expand_env
from builder.verify.play import replica_pod
from tests.conftest import ROOT

MATRIX = load_matrix(ROOT / "matrix.yaml")
CELLS = {c.name: c for c in expand(MATRIX)}
PREFIX = "registry.example.internal/dbaas"
IMAGES = {"datastore": f"{PREFIX}/x:1-abc", "exporter": f"{PREFIX}/e:abc", "agent": f"{PREFIX}/agent:abc"}


def bundle_for(name: str, plan: AgentPlan | None = None, cell: Cell | None = None) -> Bundle:
    cell = cell or CELLS[name]
    plan = plan or agent_plan(MATRIX.agent, cell, ["mariadb", "mysql", "postgresql"], MATRIX.agent.runs_in_pod)
    return render(cell, MATRIX.agent, IMAGES, plan, resolve(cell.flavor, cell.resources), "k")


def doc(bundle: Bundle, kind: str, name_suffix: str = "") -> dict[str, Any]:
    return next(d for d in bundle.documents() if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix))


def pod_spec(bundle: Bundle) -> dict[str, Any]:
    spec: dict[str, Any] = doc(bundle, "StatefulSet")["spec"]["template"]["spec"]
    return spec


def test_validated_against_the_oldest_and_newest_schemas() -> None:
    assert versions() == ("1.25", "1.37")


@pytest.mark.parametrize("name", sorted(CELLS))
def test_every_default_cell_has_a_valid_restricted_bundle(name: str) -> None:
    bundle = bundle_for(name)
    assert problems(bundle.documents()) == []
    statefulset = doc(bundle, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 1
    assert [c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]] == ["data"]
    headless = doc(bundle, "Service", "-headless")
    assert headless["spec"]["clusterIP"] == "None" and statefulset["spec"]["serviceName"] == headless["metadata"]["name"]
    kustomization = yaml.safe_load(bundle.files["kustomization.yaml"])
    assert sorted(kustomization["resources"]) == sorted(f for f in bundle.files if f != "kustomization.yaml")
    for container in pod_spec(bundle)["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["resources"]["requests"] and container["resources"]["limits"]  # never BestEffort
        assert container["image"].startswith(PREFIX + "/")
        assert "livenessProbe" in container


@pytest.mark.parametrize("name", sorted(CELLS))
def test_the_secret_template_has_every_key_the_pod_reads(name: str) -> None:
    bundle = bundle_for(name)
    template = doc(bundle, "Secret")
    assert set(template["stringData"].values()) == {""}   # shipped empty: nothing runs on a default password
    refs = {(e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
            for c in pod_spec(bundle)["containers"] for e in c.get("env", []) if "valueFrom" in e}
    assert refs == {(template["metadata"]["name"], k) for k in template["stringData"]}
    text = bundle.files["credentials.secret.yaml"]
    assert all(f"#   {k}" in text for k in template["stringData"])   # each key documented


def test_secret_keys_per_flavor() -> None:
    assert keys("mysql") == ["password", "user", "user_password", "database"]
    assert keys("redis") == ["password"]
    assert keys("postgresql") == ["password", "user", "database"]


def test_trove_26_never_rides_in_a_pod_and_the_bundle_says_why() -> None:
    assert MATRIX.agent.runs_in_pod is False
    assert "runs_in_pod" not in MATRIX.agent.model_dump()     # in no key but the bundle's
    bundle = bundle_for("postgresql-15")
    assert [c["name"] for c in pod_spec(bundle)["containers"]] == ["database", "exporter"]
    why = doc(bundle, "StatefulSet")["metadata"]["annotations"]["guestforge.io/agent"]
    assert "sudo" in why and "runs_in_pod" in why
    assert "agent-config.secret.yaml" not in bundle.files


def test_an_agent_that_can_run_in_a_pod_gets_a_restricted_sidecar_and_its_config_secret() -> None:
    agent = MATRIX.agent
    cell = CELLS["mariadb-10.11"]
    plan = agent_plan(agent, cell, ["mariadb"], in_pod=True)
    assert plan.manager == "mariadb"
    bundle = render(cell, agent, IMAGES, plan, resolve(cell.flavor, ()), "k")
    assert problems(bundle.documents()) == []
    sidecar = pod_spec(bundle)["containers"][-1]
    assert sidecar["name"] == "guest-agent" and sidecar["securityContext"]["runAsUser"] == agent.uid
    assert "agent-config.secret.yaml" in yaml.safe_load(bundle.files["kustomization.yaml"])["resources"]
    assert agent_plan(agent, CELLS["redis-7.0"], ["mariadb"], in_pod=True).manager is None


def test_database_probes_never_fail_a_login() -> None:
    mariadb = pod_spec(bundle_for("mariadb-10.11"))["containers"][0]
    command = mariadb["readinessProbe"]["exec"]["command"]
    assert "MYSQL_PWD" in command[2] and "--user=root" in command[2]   # the password from env, not argv
    postgres = pod_spec(bundle_for("postgresql-15"))["containers"][0]
    assert postgres["livenessProbe"]["exec"]["command"][:2] == ["health.sh", "pg_isready"]  # no TCP poke
    exporter = pod_spec(bundle_for("redis-7.0"))["containers"][1]
    assert exporter["livenessProbe"] == {"tcpSocket": {"port": "metrics"}, "periodSeconds": 30, "failureThreshold": 3}


def test_exporter_reads_secrets_by_reference_and_composes_only_what_it_must() -> None:
    env = {e["name"]: e for e in pod_spec(bundle_for("postgresql-15"))["containers"][1]["env"]}
    assert env["DATA_SOURCE_PASS"]["valueFrom"]["secretKeyRef"]["key"] == "password"
    mysql = pod_spec(bundle_for("mariadb-10.11"))["containers"][1]["env"]
    names = [e["name"] for e in mysql]
    assert names.index("GF_DB_PASSWORD") < names.index("DATA_SOURCE_NAME")   # defined before $(VAR) uses it
    assert "$(GF_DB_PASSWORD)" in next(e["value"] for e in mysql if e["name"] == "DATA_SOURCE_NAME")


def test_resources_default_per_flavor_and_the_matrix_overrides_field_by_field() -> None:
    text = (ROOT / "matrix.yaml").read_text().replace(
        '      "7.0": {base: "debian:bookworm", packages: [redis-server]}',
        '      "7.0": {base: "debian:bookworm", packages: [redis-server], '
        'resources: {database: {limits: {memory: 2Gi}}, storage: 5Gi}}')
    matrix, _ = parse_matrix(text, "matrix.yaml")
    cell = next(c for c in expand(matrix) if c.name == "redis-7.0")
    resources = resolve(cell.flavor, cell.resources)
    assert resources.database.limits.memory == "2Gi" and resources.database.requests.memory == "128Mi"
    assert resources.storage == "5Gi"
    assert resolve("postgresql", ()).database.requests.cpu == "250m"


def test_bad_resource_quantity_names_the_field() -> None:
    text = (ROOT / "matrix.yaml").read_text().replace(
        '      "7.0": {base: "debian:bookworm", packages: [redis-server]}',
        '      "7.0": {base: "debian:bookworm", packages: [redis-server], resources: {storage: "5 GB"}}')
    with pytest.raises(Exception, match="storage.*not a resource quantity"):
        parse_matrix(text, "matrix.yaml")


@pytest.mark.parametrize("mutate,problem", [
    (lambda s: s["containers"][0].update(imagePullPolicyy="Always"), "Additional properties"),
    (lambda s: s["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True),
     "allowPrivilegeEscalation must be false"),
    (lambda s: s["containers"][0]["securityContext"].update(privileged=True), "privileged"),
    (lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "hostPath not allowed"),
    (lambda s: s["containers"][1]["securityContext"]["capabilities"].update(drop=[]), "drop ALL"),
    (lambda s: s["containers"][0]["ports"][0].update(containerPort="5432"), "is not of type 'integer'"),
])
def test_checks_reject_what_a_cluster_would(mutate: Any, problem: str) -> None:
    docs = copy.deepcopy(bundle_for("postgresql-15").documents())
    statefulset = next(d for d in docs if d["kind"] == "StatefulSet")
    mutate(statefulset["spec"]["template"]["spec"])
    found = problems(docs)
    assert any(problem in p for p in found), found


def test_psa_check_reads_pod_level_defaults() -> None:
    spec = pod_spec(bundle_for("redis-7.0"))
    for c in spec["containers"]:
        del c["securityContext"]["seccompProfile"]
    assert psa_restricted(spec) == []          # the pod's RuntimeDefault applies
    del spec["securityContext"]["seccompProfile"]
    assert any("seccompProfile" in p for p in psa_restricted(spec))


def test_bundle_images_never_use_the_bare_local_name() -> None:
    assert prefixed("guestforge/postgresql:15-abc", "localhost/guestforge") == "localhost/guestforge/postgresql:15-abc"
    assert prefixed("guestforge/postgresql:15-abc", "reg.io:5000/x/") == "reg.io:5000/x/postgresql:15-abc"


@pytest.mark.parametrize("prefix", ["guestforge", "Reg.io/x", "reg.io/x y", "http://reg.io/x"])
def test_cli_rejects_a_bad_image_prefix_with_exit_2(prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-m", str(ROOT / "matrix.yaml"), "build", "--image-prefix", prefix, "redis-7.0"]) == 2
    assert "HOST[:PORT]/PATH" in capsys.readouterr().err


# -- the podman harness's derivations (builder.verify.play) ------------------------------------------
def test_dependent_variables_expand_as_the_kubelet_does() -> None:
    env: list[dict[str, Any]] = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
           {"name": "DSN", "value": "root:$(PW)@tcp(127.0.0.1:3306)/ $(LATER) $$(PW)"},
           {"name": "LATER", "value": "x"}]
    out = expand_env(env, {"s": {"password": "p$w'"}})
    assert out[0] == env[0]          # still a reference: podman resolves it from its secret store
    assert out[1]["value"] == "root:p$w'@tcp(127.0.0.1:3306)/ $(LATER) $(PW)"


def test_replica_zero_pod_from_the_statefulset() -> None:
    statefulset = doc(bundle_for("mariadb-10.11"), "StatefulSet")
    pod, renamed, claim = replica_pod(statefulset, "r1", {"mariadb-10-11-credentials": {
        "password": "p", "user": "u", "user_password": "q", "database": "d"}})
    assert pod["metadata"]["name"] == "mariadb-10-11-0-r1" and claim == "data-mariadb-10-11-0-r1"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": claim}} in pod["spec"]["volumes"]
    assert renamed == {"mariadb-10-11-credentials": "mariadb-10-11-credentials-r1"}
    assert all(len(v) <= 63 for v in pod["metadata"]["annotations"].values())
    shipped = statefulset["spec"]["template"]["spec"]["containers"][0]
    played = pod["spec"]["containers"][0]
    assert {k: v for k, v in played.items() if k != "env"} == {k: v for k, v in shipped.items()
                                                               if k not in ("env", "ports")}


@pytest.mark.parametrize("in_pod", [False, True])
def test_bundle_depends_on_the_agent_only_when_a_pod_runs_it(in_pod: bool) -> None:
    """An agent change must not re-render and re-play every cell's bundle when no pod carries the agent."""
    from builder.graph.trees import WorkTree
    from builder.hostenv.apt import Mirrors
    from builder.pipeline import HostInputs, declare

    matrix = MATRIX.model_copy(update={"agent": MATRIX.agent.model_copy(update={"runs_in_pod": in_pod})})
    host = HostInputs(Mirrors("http://mirror.invalid/debian", "http://mirror.invalid/debian-security"), None)
    nodes, _ = declare(matrix, [CELLS["postgresql-15"]], ["oci"], WorkTree(ROOT), host, verify=True)
    parents = {n.id: set(n.parents) for n in nodes}
    agent_nodes = {"agent-image", "agent-tree"}
    assert (agent_nodes <= parents["bundle:postgresql-15"]) is in_pod
    assert not agent_nodes & parents["verify-bundle:postgresql-15"]
