"""The cell's Kubernetes bundle, as shipped, on a real pod runtime (podman ``kube play``).

Order matters: the checks run on the first played pod, then the pod is deleted and played again on the
same claim (data must survive), then the re-played pod is watched for two minutes from Ready: every
probe keeps passing and nothing restarts. Queries compare stdout only (clients warn on stderr).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import testinfra

from builder.flavors import FlavorRuntime, Secrets
from builder.spec import CellSpec
from builder.verify.play import PlayedPod
from tests.infra.bundle.conftest import READY_WINDOW

MARKER = {
    "postgresql": (["CREATE TABLE gf_bundle (v text)", "INSERT INTO gf_bundle VALUES ('survives')"],
                   "SELECT v FROM gf_bundle"),
    "mysql": (["CREATE TABLE gf_bundle (v varchar(20)) ENGINE=InnoDB", "INSERT INTO gf_bundle VALUES ('survives')"],
              "SELECT v FROM gf_bundle"),
    "redis": (["SET gf_bundle survives"], "GET gf_bundle"),
}
# What a failed login leaves in each server's log; a probe must never cause one.
AUTH_FAILURES = ("Access denied", "authentication failed", "Aborted connection", "incomplete startup packet",
                 "NOAUTH", "WRONGPASS")


def query(pod: PlayedPod, runtime: FlavorRuntime, cell: CellSpec, secrets: Secrets, statement: str,
          password: str | None = None) -> tuple[int, str]:
    command = runtime.query(cell, secrets, statement, password=password)
    code, out, _err = pod.exec("database", list(command.argv), dict(command.env))
    return code, out.strip()


def process_status(pod: PlayedPod, container: str) -> dict[str, str]:
    pid = pod.state(container)["State"]["Pid"]
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_every_container_is_running_and_ready(played: PlayedPod, figures: dict[str, Any]) -> None:
    assert played.ready_seconds is not None and played.ready_seconds < READY_WINDOW
    assert all(played.running().values()), played.running()
    assert played.restarts() == {c: 0 for c in played.containers}


def test_security_context_in_force_is_the_yamls(played: PlayedPod) -> None:
    pod_ctx = played.pod["spec"].get("securityContext", {})
    for name, container in played.containers.items():
        ctx = {**pod_ctx, **container.get("securityContext", {})}
        status = process_status(played, name)
        assert status["Uid"].split()[:2] == [str(ctx["runAsUser"])] * 2, (name, status["Uid"])
        assert status["Gid"].split()[0] == str(ctx["runAsGroup"]), (name, status["Gid"])
        assert status["NoNewPrivs"] == "1", name
        assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0, name
        assert status["Seccomp"] == "2", name     # a filter: the runtime's default profile
        inspect = played.state(name)
        assert inspect["HostConfig"]["ReadonlyRootfs"] is ctx["readOnlyRootFilesystem"], name


def test_root_file_system_is_read_only_and_scratch_dirs_are_writable(played: PlayedPod) -> None:
    host = testinfra.get_host(f"podman://{played.container_name('database')}")
    denied = host.run("echo x > /gf-write-probe")
    assert denied.rc != 0 and "Read-only file system" in denied.stderr, denied.stderr
    for mount in played.containers["database"]["volumeMounts"]:
        probe = f"{mount['mountPath']}/.gf-write-probe"
        assert host.run("touch %s && rm %s", probe, probe).rc == 0, mount["mountPath"]


def test_database_answers_with_the_secrets_password(played: PlayedPod, bundle_runtime: FlavorRuntime,
                                                      bundle_cell: CellSpec, credentials: Secrets) -> None:
    code, out = query(played, bundle_runtime, bundle_cell, credentials, bundle_runtime.ping_statement)
    assert code == 0 and out.splitlines()[-1:] == [bundle_runtime.ping_reply], out


def test_database_refuses_a_wrong_password(played: PlayedPod, bundle_runtime: FlavorRuntime,
                                           bundle_cell: CellSpec, credentials: Secrets) -> None:
    code, out = query(played, bundle_runtime, bundle_cell, credentials, bundle_runtime.ping_statement,
                      password="wrong-" + credentials.password)
    assert code != 0 or bundle_runtime.ping_reply not in out.splitlines(), out


def test_exporter_reports_the_database_up(played: PlayedPod, bundle_cell: CellSpec) -> None:
    assert bundle_cell.exporter is not None
    metric = f"{bundle_cell.exporter.up_metric} 1"
    deadline = time.monotonic() + 60
    while True:
        code, out = played.http_get(bundle_cell.exporter.port, "/metrics")
        if code == 0 and metric in out.splitlines():
            return
        assert time.monotonic() < deadline, f"exporter: no '{metric}' (curl exit {code})"
        time.sleep(2)


def test_data_survives_deleting_and_replaying_the_pod(played: PlayedPod, bundle_runtime: FlavorRuntime,
                                                      bundle_cell: CellSpec, credentials: Secrets,
                                                      figures: dict[str, Any]) -> None:
    writes, read = MARKER[bundle_cell.flavor]
    for statement in writes:
        code, out = query(played, bundle_runtime, bundle_cell, credentials, statement)
        assert code == 0, out
    before = played.state("database")["Id"]
    played.delete()
    played.play()
    figures["replay_ready_seconds"] = round(played.wait_ready(READY_WINDOW), 1)
    assert played.state("database")["Id"] != before, "the pod was not re-created"
    code, out = query(played, bundle_runtime, bundle_cell, credentials, read)
    assert code == 0 and out.splitlines()[-1:] == ["survives"], out


def test_zero_restarts_and_passing_probes_for_two_minutes(played: PlayedPod, figures: dict[str, Any]) -> None:
    """From Ready on, every readiness and liveness probe keeps passing and no container restarts."""
    started = time.monotonic()
    failures = []
    while time.monotonic() - started < 120:
        for name in played.containers:
            for kind in ("readinessProbe", "livenessProbe"):
                result = played.probe(name, kind)
                if not result.ok:
                    failures.append(f"{name} {kind}: {result.detail}")
        time.sleep(10)
    restarts = played.restarts()
    figures["restarts"] = restarts
    figures["window_seconds"] = round(time.monotonic() - started, 1)
    assert not failures, failures
    assert all(played.running().values()) and restarts == {c: 0 for c in played.containers}, restarts


def test_probes_leave_no_failed_logins_in_the_server_log(played: PlayedPod) -> None:
    log = played.logs("database")
    bad = [line for line in log.splitlines() if any(mark in line for mark in AUTH_FAILURES)]
    # The wrong-password check ran against the first pod, not this one: any line here is a probe's.
    assert not bad, bad[:5]


@pytest.mark.parametrize("doc", ["statefulset.yaml"])
def test_played_pod_is_the_bundles_template(played: PlayedPod, doc: str) -> None:
    """The harness changed names, expanded variables and dropped the (informational) ports only: images,
    commands, probes, resources and security contexts are the shipped ones."""
    shipped = json.loads(json.dumps(played.statefulset["spec"]["template"]["spec"]))
    for name, container in played.containers.items():
        original = next(c for c in shipped["containers"] if c["name"] == name)
        for field in ("image", "args", "command", "resources", "securityContext", "readinessProbe",
                      "livenessProbe", "startupProbe", "volumeMounts"):
            assert container.get(field) == original.get(field), (name, field)
