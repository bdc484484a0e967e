"""Play a cell's shipped Kubernetes bundle on podman 4.3 (``podman kube play``), as a kubelet would run it.

What runs is the bundle's own pod template, with the Secret values a user would fill in. podman 4.3
differs from a kubelet in ways that would change what runs; each is worked around here, in the
harness, never in the shipped YAML:

* StatefulSets are not a kind it plays (Pods, Deployments and PVCs only): the harness plays the Pod the
  StatefulSet controller would make for replica 0, with the claim it would bind (``data-NAME-0``).
* A Secret document in the played file is not readable through ``secretKeyRef`` (podman#16269): the
  Secret is created with ``podman secret create``, in the JSON form podman 4.3 reads (key -> base64).
* ``$(VAR)`` dependent environment variables are not expanded (podman#24181): the harness expands them
  by the kubelet's rule (variables defined earlier in the same container only; ``$$`` escapes).
* Annotation values longer than 63 characters are rejected as if they were labels (podman#21663): the
  harness shortens annotation values (annotations change nothing that runs).
* Startup and readiness probes are ignored and liveness probes become healthchecks that need systemd
  timers (podman#12756; absent here): the harness runs the bundle's probes itself, resolving named ports
  (podman turns a named tcpSocket port into a check that always fails).
* Every ``containerPort`` is published on the host's 0.0.0.0, though a kubelet publishes only a
  ``hostPort`` (the bundle has none): the harness drops ``ports`` from the played pod (they are
  informational to a kubelet; probes' named ports are resolved from the shipped template), plays it with
  ``--network none`` and probes it from inside its network namespace, as a kubelet reaches a pod's address.

For isolation on a shared host, the pod, its claim and its Secret carry the run id in their names.
"""

from __future__ import annotations

import base64
import copy
import fcntl
import json
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from builder.errors import ToolError
from builder.run import run

CONTAINERS_CONF = "/etc/guestforge/containers.conf"
LOCK = Path("/tmp/guestforge-podman-play.lock")
LABEL = "io.guestforge.verify"
_REF = re.compile(r"\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")
PROBE_KINDS = ("startupProbe", "readinessProbe", "livenessProbe")


def podman_env() -> dict[str, str]:
    """Root's default rlimits exceed this kind of sandbox's hard limits: containers.conf sets them."""
    return {"CONTAINERS_CONF": CONTAINERS_CONF} if Path(CONTAINERS_CONF).is_file() else {}


def podman(*args: str, log: Path | None = None, check: bool = True, timeout: float = 300) -> str:
    proc = run(["podman", *args], capture=True, check=check, env=podman_env(), timeout=timeout)
    if log is not None:
        with log.open("a") as out:
            out.write(f"$ podman {' '.join(args)}\n{proc.stdout.decode(errors='replace')}"
                      f"{proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode(errors="replace").strip()


@contextmanager
def serialised() -> Iterator[None]:
    """podman's own locking across concurrent pulls, plays and removals is not to be trusted in 4.3."""
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def provide_images(images: Mapping[str, str], log: Path) -> None:
    """Make each ``bundle reference -> local Docker image`` available to podman under the bundle's name
    (no registry: from the Docker engine's store)."""
    with serialised():
        for ref, local in images.items():
            if _exists(ref):   # tags carry the image's content key: an existing one is the same image
                continue
            podman("pull", "-q", f"docker-daemon:{local}", log=log)
            podman("tag", local, ref, log=log)


def _exists(ref: str) -> bool:
    return run(["podman", "image", "exists", ref], check=False, env=podman_env(), capture=True).returncode == 0


def expand(env: list[dict[str, Any]], secrets: Mapping[str, Mapping[str, str]]) -> list[dict[str, Any]]:
    """Resolve secretKeyRefs and ``$(VAR)`` references the way the kubelet does (a reference to a
    variable not defined earlier stays as written; ``$$`` escapes)."""
    known: dict[str, str] = {}
    out = []
    for var in env:
        ref = (var.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            known[var["name"]] = secrets[ref["name"]][ref["key"]]
            out.append(var)
            continue
        value = _REF.sub(lambda m: known.get(m.group(1), m.group(0)), str(var.get("value", "")).replace("$$", "\0"))
        value = value.replace("\0", "$")
        known[var["name"]] = value
        out.append({"name": var["name"], "value": value})
    return out


def replica_pod(statefulset: Mapping[str, Any], run_id: str, secrets: Mapping[str, Mapping[str, str]]
                ) -> tuple[dict[str, Any], dict[str, str], str]:
    """The Pod the StatefulSet controller makes for replica 0, as podman 4.3 must be given it; also the
    renamed Secrets (bundle name -> played name) and the claim's name."""
    name = statefulset["metadata"]["name"]
    template = copy.deepcopy(statefulset["spec"]["template"])
    pod_name = f"{name}-0-{run_id}"[:63].rstrip("-")
    renamed = {secret: f"{secret}-{run_id}" for secret in secrets}
    claims = {}
    for claim in statefulset["spec"].get("volumeClaimTemplates", []):
        claims[claim["metadata"]["name"]] = f"{claim['metadata']['name']}-{name}-0-{run_id}"
    spec = template["spec"]
    spec["volumes"] = [*spec.get("volumes", []),
                       *({"name": vol, "persistentVolumeClaim": {"claimName": claim}} for vol, claim in claims.items())]
    for container in spec["containers"]:
        container.pop("ports", None)
        container["env"] = expand(container.get("env", []), secrets)
        for var in container["env"]:
            ref = (var.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                ref["name"] = renamed[ref["name"]]
    metadata = template.get("metadata", {})
    annotations = {k: (v if len(v) <= 63 else v[:60] + "...") for k, v in metadata.get("annotations", {}).items()}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": pod_name, "labels": {**metadata.get("labels", {}), LABEL: run_id},
                        "annotations": annotations},
           "spec": spec}
    return pod, renamed, claims.get("data", "")


@dataclass
class ProbeResult:
    ok: bool
    detail: str = ""


@dataclass
class PlayedPod:
    """One played replica; ``close`` removes the pod, its Secrets and its claim."""

    statefulset: dict[str, Any]
    secrets: dict[str, dict[str, str]]
    run_id: str
    workdir: Path
    log: Path
    pod: dict[str, Any] = field(default_factory=dict)
    claim: str = ""
    renamed: dict[str, str] = field(default_factory=dict)
    ready_seconds: float | None = None

    def __post_init__(self) -> None:
        self.pod, self.renamed, self.claim = replica_pod(self.statefulset, self.run_id, self.secrets)

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def containers(self) -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in self.pod["spec"]["containers"]}

    def container_name(self, container: str) -> str:
        return f"{self.name}-{container}"   # podman kube play names containers POD-CONTAINER

    # -- life cycle ----------------------------------------------------------------------------
    def play(self) -> None:
        """Create the Secrets (once) and the pod, with the claim bound to the same named volume."""
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.workdir / "pod.yaml"   # holds expanded secret values: private, removed on close
        path.write_text(yaml.safe_dump(self.pod, sort_keys=False))
        path.chmod(0o600)
        with serialised():
            for secret, played in self.renamed.items():
                if not _secret_exists(played):
                    data = {k: base64.b64encode(v.encode()).decode() for k, v in self.secrets[secret].items()}
                    source = self.workdir / f"{played}.json"
                    source.write_text(json.dumps(data))
                    source.chmod(0o600)
                    podman("secret", "create", played, str(source), log=self.log)
                    source.unlink()
            podman("kube", "play", "--network", "none", str(path), log=self.log)
        self.ready_seconds = None

    def delete(self) -> None:
        """Delete the pod (as ``kubectl delete pod``: the claim and its data stay)."""
        with serialised():
            podman("pod", "rm", "--force", "--time", "30", self.name, check=False, log=self.log)

    def close(self) -> None:
        self.delete()
        with serialised():
            for played in self.renamed.values():
                podman("secret", "rm", played, check=False, log=self.log)
            if self.claim:
                podman("volume", "rm", "--force", self.claim, check=False, log=self.log)
        (self.workdir / "pod.yaml").unlink(missing_ok=True)

    # -- what runs -----------------------------------------------------------------------------
    def state(self, container: str) -> dict[str, Any]:
        data = json.loads(podman("container", "inspect", self.container_name(container)))
        return dict(data[0])

    def restarts(self) -> dict[str, int]:
        return {c: int(self.state(c).get("RestartCount", 0)) for c in self.containers}

    def running(self) -> dict[str, bool]:
        return {c: bool(self.state(c)["State"].get("Running")) for c in self.containers}

    def logs(self, container: str) -> str:
        """Everything the container wrote, stdout and stderr."""
        proc = run(["podman", "logs", self.container_name(container)], capture=True, check=False, env=podman_env())
        return proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")

    def exec(self, container: str, argv: list[str], env: Mapping[str, str] | None = None,
             timeout: float = 60) -> tuple[int, str, str]:
        flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
        proc = run(["podman", "exec", *flags, self.container_name(container), *argv], capture=True, check=False,
                   env=podman_env(), timeout=timeout)
        return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")

    def infra_pid(self) -> int:
        data = json.loads(podman("pod", "inspect", self.name))
        infra = data["InfraContainerID"] if isinstance(data, dict) else data[0]["InfraContainerID"]
        return int(podman("container", "inspect", "--format", "{{.State.Pid}}", infra))

    def in_pod_network(self, argv: list[str], timeout: float = 15) -> tuple[int, str]:
        """Run a host program inside the pod's network namespace (only its loopback exists there)."""
        proc = run(["nsenter", f"--target={self.infra_pid()}", "--net", *argv], capture=True, check=False,
                   timeout=timeout)
        return proc.returncode, proc.stdout.decode(errors="replace")

    def http_get(self, port: int, path: str, timeout: float = 10) -> tuple[int, str]:
        return self.in_pod_network(["curl", "-sS", "-f", "-m", str(int(timeout)), f"http://127.0.0.1:{port}{path}"],
                                   timeout=timeout + 5)

    # -- probes, as the kubelet runs them --------------------------------------------------------
    def port_number(self, container: str, port: int | str) -> int:
        if isinstance(port, int):
            return port
        shipped = {c["name"]: c for c in self.statefulset["spec"]["template"]["spec"]["containers"]}
        for p in shipped[container].get("ports", []):
            if p.get("name") == port:
                return int(p["containerPort"])
        raise ToolError(f"{container}: no container port named {port!r}")

    def probe(self, container: str, kind: str) -> ProbeResult:
        """Run ``kind`` (startupProbe, ...) of ``container`` once; a container without it passes."""
        spec = self.containers[container].get(kind)
        if not spec:
            return ProbeResult(True, "no probe")
        timeout = float(spec.get("timeoutSeconds", 1))
        if "exec" in spec:
            code, out, err = self.exec(container, list(spec["exec"]["command"]), timeout=timeout + 5)
            return ProbeResult(code == 0, (out + err).strip()[-300:])
        if "httpGet" in spec:
            port = self.port_number(container, spec["httpGet"]["port"])
            code, _ = self.http_get(port, spec["httpGet"].get("path", "/"), timeout=timeout)
            return ProbeResult(code == 0, f"GET :{port} exit {code}")
        if "tcpSocket" in spec:
            port = self.port_number(container, spec["tcpSocket"]["port"])
            code, _ = self.in_pod_network(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"], timeout=timeout + 5)
            return ProbeResult(code == 0, f"connect :{port} exit {code}")
        return ProbeResult(False, f"unsupported probe {sorted(spec)}")

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds from now until every container's startup and readiness probes pass; raise after
        ``timeout`` or when a container stops."""
        started = time.monotonic()
        pending = {(c, kind) for c in self.containers for kind in ("startupProbe", "readinessProbe")}
        last: dict[tuple[str, str], ProbeResult] = {}
        while pending:
            for c, kind in sorted(pending):
                if kind == "readinessProbe" and (c, "startupProbe") in pending:
                    continue
                result = self.probe(c, kind)
                last[(c, kind)] = result
                if result.ok:
                    pending.discard((c, kind))
            stopped = [c for c, up in self.running().items() if not up]
            if stopped or (pending and time.monotonic() - started > timeout):
                why = "; ".join(f"{c} {k}: {last[(c, k)].detail}" for c, k in sorted(pending) if (c, k) in last)
                logs = {c: podman("logs", "--tail", "30", self.container_name(c), check=False) for c in stopped}
                raise ToolError(f"{self.name} not ready after {time.monotonic() - started:.0f}s "
                                f"(stopped: {stopped or 'none'}; failing: {why}) {logs}")
            if pending:
                time.sleep(1)
        self.ready_seconds = time.monotonic() - started
        return self.ready_seconds


def _secret_exists(name: str) -> bool:
    return run(["podman", "secret", "inspect", name], check=False, capture=True, env=podman_env()).returncode == 0


def load_statefulset(bundle: Path) -> dict[str, Any]:
    doc = yaml.safe_load((bundle / "statefulset.yaml").read_text())
    return dict(doc)


def fill_template(path: Path, values: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """A Secret template from the bundle with every key filled from ``values``; a key the template
    lists that ``values`` lacks is an error (the pod would read it)."""
    doc = yaml.safe_load(path.read_text())
    keys = list(doc.get("stringData", {}))
    missing = [k for k in keys if k not in values]
    if missing:
        raise ToolError(f"{path.name}: no value for {', '.join(missing)}")
    return str(doc["metadata"]["name"]), {k: values[k] for k in keys}
