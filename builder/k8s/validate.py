"""Check a bundle as a cluster would: every document against the Kubernetes OpenAPI schemas (strict:
unknown fields are errors) of the oldest and newest versions ``kubernetes-validate`` ships, and every
pod template against the Pod Security Standards' "restricted" profile, which admission enforces."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import kubernetes_validate
from kubernetes_validate.utils import all_versions, latest_version, major_minor

# kubernetes-validate >= 1.25 ships schemas from 1.25 on; the oldest supported cluster we test is that.
OLDEST = "1.25"
NOT_KUBERNETES = {"Kustomization"}   # kustomize's own file: no cluster schema


def versions() -> tuple[str, str]:
    """The oldest and newest Kubernetes versions to validate against."""
    oldest = max(OLDEST, major_minor(all_versions()[0]), key=lambda v: tuple(map(int, v.split("."))))
    return oldest, major_minor(latest_version())


def schema_problems(doc: Mapping[str, Any], version: str) -> list[str]:
    what = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
    try:
        kubernetes_validate.validate(dict(doc), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "(document)"
        return [f"{what}: Kubernetes {version}: {where}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{what}: Kubernetes {version} has no {doc.get('apiVersion')} {doc.get('kind')}"]
    return []


def _container_psa(where: str, c: Mapping[str, Any], pod: Mapping[str, Any]) -> list[str]:
    ctx, pod_ctx = c.get("securityContext") or {}, pod.get("securityContext") or {}
    problems = []
    if ctx.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation must be false")
    if (ctx.get("capabilities") or {}).get("drop") != ["ALL"]:
        problems.append(f"{where}: capabilities must drop ALL")
    if set((ctx.get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"}:
        problems.append(f"{where}: only NET_BIND_SERVICE may be added")
    if not ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")):
        problems.append(f"{where}: runAsNonRoot must be true")
    if ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
        problems.append(f"{where}: runAsUser must not be 0")
    if ctx.get("privileged"):
        problems.append(f"{where}: privileged")
    seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        problems.append(f"{where}: seccompProfile must be RuntimeDefault or Localhost")
    if any(p.get("hostPort") for p in c.get("ports") or []):
        problems.append(f"{where}: hostPort")
    return problems


# Volume types the restricted profile admits.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}


def psa_restricted(pod: Mapping[str, Any], where: str = "pod") -> list[str]:
    """Why ``pod`` (a PodSpec) violates the PSA "restricted" profile; empty when admitted."""
    problems = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            problems.append(f"{where}: {flag}")
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"{where}: volume {volume.get('name')}: {', '.join(sorted(kinds))} not allowed")
    for section in ("initContainers", "containers"):
        for c in pod.get(section) or []:
            problems += _container_psa(f"{where}.{section}[{c.get('name')}]", c, pod)
    return problems


def pod_specs(doc: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    if doc.get("kind") == "Pod":
        yield f"Pod {doc['metadata']['name']}", doc["spec"]
    elif doc.get("kind") in ("StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Job"):
        yield f"{doc['kind']} {doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def problems(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Everything a cluster (1.25 and the newest schema) or PSA "restricted" admission would reject."""
    found: list[str] = []
    for doc in docs:
        if doc.get("kind") in NOT_KUBERNETES:
            continue
        for version in versions():
            found += schema_problems(doc, version)
        for where, spec in pod_specs(doc):
            found += psa_restricted(spec, where)
    return found
