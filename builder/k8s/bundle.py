"""Render a cell's Kubernetes bundle: the documents an operator applies with ``kubectl apply -k``.

A ``StatefulSet`` (one replica, a ``volumeClaimTemplates`` data volume: the form operators use for
databases), a headless ``Service`` (stable DNS for the replica) and a client ``Service``, a Secret
template with every key the pod reads (``builder.k8s.secrets``), the agent's config Secret when the pod
carries an agent, and ``kustomization.yaml``. Pure: images, resources and the agent decision come in.

Every container runs under the PSA "restricted" profile (non-root, seccomp RuntimeDefault, all
capabilities dropped, no privilege escalation) with a read-only root file system; what a server must
write outside its data volume (sockets, a generated config, /tmp) gets an ``emptyDir``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from builder.agent.config import command as agent_command
from builder.agent.config import environment as agent_environment
from builder.flavors import Secrets, flavor
from builder.k8s import resources as res
from builder.k8s.secrets import agent_config_template, credentials_template
from builder.matrix.models import Agent, Resources
from builder.plan import Cell

# Directories each flavor's server writes outside its data volume (the images' entrypoints and servers).
WRITABLE: Mapping[str, tuple[str, ...]] = {
    "postgresql": ("/run/postgresql", "/tmp"),
    "mysql": ("/run/mysqld", "/tmp"),
    "redis": ("/run/guestforge", "/tmp"),
}
_ENV_REF = re.compile(r"\$\((GF_DB_[A-Z_]+)\)")


@dataclass(frozen=True)
class AgentPlan:
    """Whether the pod carries the agent: ``manager`` when it does, else ``omitted`` says why."""

    manager: str | None
    omitted: str = ""


@dataclass(frozen=True)
class Bundle:
    """File name -> text, as written to ``build/artifacts/CELL/bundle/``."""

    files: Mapping[str, str]

    def documents(self) -> list[dict[str, Any]]:
        return [d for text in self.files.values() for d in yaml.safe_load_all(text) if d]


def dns_label(name: str) -> str:
    """``mariadb-10.11`` -> ``mariadb-10-11`` (RFC 1123 label, as Kubernetes names require)."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return label[:63].rstrip("-")


def _secret_env(var: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def restricted(uid: int) -> dict[str, Any]:
    """A container securityContext the PSA "restricted" profile admits, read-only root included."""
    return {"runAsUser": uid, "runAsGroup": uid, "runAsNonRoot": True, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True,
            "seccompProfile": {"type": "RuntimeDefault"}}


def _scratch(prefix: str, paths: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """emptyDir volumes and their mounts for ``paths`` (memory-backed: sockets and small files only)."""
    volumes, mounts = [], []
    for path in paths:
        name = dns_label(f"{prefix}{path.replace('/', '-')}")
        volumes.append({"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}})
        mounts.append({"name": name, "mountPath": path})
    return volumes, mounts


def database_probe(cell: Cell) -> list[str]:
    """A probe that authenticates (no failed login in the server log) or needs no login at all.

    PostgreSQL: ``pg_isready`` never completes a login, and the server does not log one it abandons.
    MariaDB: ``mariadb-admin ping`` as root with the pod's password (MYSQL_PWD, not argv); without it the
    server logs ``Access denied`` on every probe. Redis: health.sh logs in with REDIS_PASSWORD.
    """
    probe = ["health.sh", *cell.health]
    if cell.flavor == "mysql":
        return ["sh", "-c", 'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" exec "$@" --user=root', "probe", *probe]
    return probe


def _exporter_env(cell: Cell, credentials: str) -> list[dict[str, Any]]:
    """The exporter's environment: a variable that is one secret is a secretKeyRef; a composed value
    (mysqld_exporter's DSN) refers to ``GF_DB_*`` variables with ``$(VAR)`` expansion."""
    runtime = flavor(cell.flavor)
    keys = {key: f"GF_DB_{key.upper()}" for key in ("password", "user", "user_password", "database")}
    secrets = Secrets(**{key: f"$({var})" for key, var in keys.items()})
    wanted = runtime.exporter_env(cell, secrets)
    by_var = {var: key for key, var in keys.items()}
    env: list[dict[str, Any]] = []
    direct: list[dict[str, Any]] = []
    needed: set[str] = set()
    for name, value in sorted(wanted.items()):
        whole = _ENV_REF.fullmatch(value)
        if whole:
            direct.append(_secret_env(name, credentials, by_var[whole.group(1)]))
        else:
            needed.update(_ENV_REF.findall(value))
            direct.append({"name": name, "value": value})
    env += [_secret_env(var, credentials, by_var[var]) for var in sorted(needed)]  # defined before use
    return env + direct


def _database(cell: Cell, image: str, credentials: str, resources: Resources) -> tuple[dict[str, Any], list[Any]]:
    runtime = flavor(cell.flavor)
    env = [_secret_env(var, credentials, key) for var, key in sorted(runtime.db_env_refs().items())]
    env += [{"name": k, "value": v} for k, v in sorted(runtime.pod_env(cell.data_dir).items())]
    volumes, mounts = _scratch("db", WRITABLE[cell.flavor])
    # Upstream images carry their own tooling, not our health.sh: the matrix's health argv as it is.
    probe: dict[str, Any] = {"exec": {"command": list(cell.health) if cell.upstream else database_probe(cell)}}
    container = {
        "name": "database", "image": image, "imagePullPolicy": "IfNotPresent", "args": list(cell.start),
        "ports": [{"name": "db", "containerPort": cell.port, "protocol": "TCP"}],
        "env": env, "resources": res.container(resources, "database"), "securityContext": restricted(cell.uid),
        "startupProbe": {**probe, "periodSeconds": 2, "timeoutSeconds": 5, "failureThreshold": 150},
        "readinessProbe": {**probe, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**probe, "periodSeconds": 30, "timeoutSeconds": 10, "failureThreshold": 6},
        "volumeMounts": [{"name": "data", "mountPath": cell.data_dir}, *mounts],
    }
    return container, volumes


def _exporter(cell: Cell, image: str, credentials: str, resources: Resources) -> dict[str, Any]:
    return {
        "name": "exporter", "image": image, "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "metrics", "containerPort": cell.exporter.port, "protocol": "TCP"}],
        "env": _exporter_env(cell, credentials), "resources": res.container(resources, "exporter"),
        "securityContext": restricted(cell.exporter.uid),
        "readinessProbe": {"httpGet": {"path": "/metrics", "port": "metrics"}, "periodSeconds": 30,
                           "timeoutSeconds": 10},
        # A connect only: cheap, and it does not make the exporter query the database.
        "livenessProbe": {"tcpSocket": {"port": "metrics"}, "periodSeconds": 30, "failureThreshold": 3},
    }


def _agent(agent: Agent, image: str, config: str, resources: Resources) -> tuple[dict[str, Any], list[Any]]:
    volumes, mounts = _scratch("agent", (agent.log_dir, "/tmp"))
    volumes.append({"name": "agent-config", "secret": {"secretName": config, "defaultMode": 0o440}})
    container = {
        "name": "guest-agent", "image": image, "imagePullPolicy": "IfNotPresent",
        "command": agent_command(agent),
        "env": [{"name": k, "value": v} for k, v in sorted(agent_environment(agent).items())],
        "resources": res.container(resources, "agent"), "securityContext": restricted(agent.uid),
        "livenessProbe": {"exec": {"command": ["test", "-r", f"{agent.config_dir}/guest_info.conf"]},
                          "periodSeconds": 60},
        "volumeMounts": [{"name": "agent-config", "mountPath": agent.config_dir, "readOnly": True}, *mounts],
    }
    return container, volumes


def render(cell: Cell, agent: Agent, images: Mapping[str, str], plan: AgentPlan, resources: Resources,
           key: str) -> Bundle:
    """The bundle of ``cell``; ``images`` maps datastore/exporter/agent to the references it runs."""
    name = dns_label(cell.name)
    credentials, agent_config = f"{name}-credentials", f"{name}-agent-config"
    selector = {"app.kubernetes.io/instance": name}
    labels = {"app.kubernetes.io/name": dns_label(cell.datastore), "app.kubernetes.io/version": cell.version,
              "app.kubernetes.io/component": "database", "app.kubernetes.io/managed-by": "guestforge", **selector}
    annotations = ({"guestforge.io/agent-manager": plan.manager} if plan.manager
                   else {"guestforge.io/agent": plan.omitted})
    database, volumes = _database(cell, images["datastore"], credentials, resources)
    containers = [database, _exporter(cell, images["exporter"], credentials, resources)]
    if plan.manager:
        sidecar, agent_volumes = _agent(agent, images["agent"], agent_config, resources)
        containers.append(sidecar)
        volumes += agent_volumes
    pod_spec = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": cell.uid, "runAsGroup": cell.uid,
                            "fsGroup": cell.uid, "fsGroupChangePolicy": "OnRootMismatch",
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "automountServiceAccountToken": False, "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 60, "containers": containers, "volumes": volumes,
    }
    statefulset = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {
            "serviceName": f"{name}-headless", "replicas": 1, "selector": {"matchLabels": selector},
            "podManagementPolicy": "OrderedReady", "updateStrategy": {"type": "RollingUpdate"},
            "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec},
            "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": selector}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": resources.storage}}}}],
        },
    }
    db_port = {"name": "db", "port": cell.port, "targetPort": "db", "protocol": "TCP"}
    headless = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": f"{name}-headless", "labels": labels},
                "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": selector,
                         "ports": [db_port]}}
    client = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
              "spec": {"type": "ClusterIP", "selector": selector, "ports": [
                  db_port, {"name": "metrics", "port": cell.exporter.port, "targetPort": "metrics",
                            "protocol": "TCP"}]}}
    header = f"# Generated by guestforge for {cell.name} (key {key}); do not edit.\n"
    files = {
        "statefulset.yaml": header + dump(statefulset),
        "service.yaml": header + dump(client),
        "service-headless.yaml": header + dump(headless),
        "credentials.secret.yaml": header + credentials_template(cell.flavor, credentials, selector),
    }
    if plan.manager:
        files["agent-config.secret.yaml"] = header + agent_config_template(agent_config, selector)
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": sorted(f for f in files if f.endswith(".secret.yaml")) +
                     ["service-headless.yaml", "service.yaml", "statefulset.yaml"]}
    files["kustomization.yaml"] = header + dump(kustomization)
    return Bundle(files)


class _Dumper(yaml.SafeDumper):
    """Plain YAML: no anchors or aliases for the labels that appear twice (readers and tools vary)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(doc: Mapping[str, Any]) -> str:
    return yaml.dump(dict(doc), Dumper=_Dumper, sort_keys=False, default_flow_style=False)
