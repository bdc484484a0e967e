"""A Kubernetes Pod per cell: database, exporter and agent containers sharing one network namespace.

Mirrors what ``guestforge verify`` starts on Docker. Secrets are referenced
(``secretKeyRef``, a Secret volume for the agent's config), never inlined; every
container runs as a non-root uid with privilege escalation off and all
capabilities dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from builder.flavors import Secrets, flavor
from builder.matrix.models import Agent
from builder.oci.naming import dns_label
from builder.plan import Cell


def _secret_env(var: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _hardened(uid: int) -> dict[str, Any]:
    return {"runAsUser": uid, "runAsGroup": uid, "runAsNonRoot": True, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]}}


def pod_spec(cell: Cell, agent: Agent, images: Mapping[str, str],
             agent_manager: str | None) -> dict[str, Any]:
    """The Pod for ``cell``; ``images`` maps ``datastore``/``exporter``/``agent`` to image references.

    ``agent_manager`` is the agent's datastore manager for this cell, or None when the agent has none
    (Trove 26 manages no Redis): then the pod has no agent container and an annotation says why.
    """
    runtime = flavor(cell.flavor)
    name = dns_label(cell.name)
    credentials = f"{name}-credentials"
    db_env = [_secret_env(var, credentials, key) for var, key in sorted(runtime.db_env_refs().items())]
    db_env += [{"name": k, "value": v} for k, v in sorted(runtime.pod_env(cell.data_dir).items())]
    # The exporter reads the same Secret; its own variables refer to those with $(VAR) expansion.
    refs = {key: f"GF_DB_{key.upper()}" for key in ("password", "user", "user_password", "database")}
    exporter_secrets = Secrets(**{key: f"$({var})" for key, var in refs.items()})
    exporter_env = [_secret_env(var, credentials, key) for key, var in refs.items()
                    if key in runtime.db_env_refs().values()]
    exporter_env += [{"name": k, "value": v} for k, v in sorted(runtime.exporter_env(cell, exporter_secrets).items())
                     if v != "$()"]
    labels = {"app.kubernetes.io/name": dns_label(cell.datastore), "app.kubernetes.io/version": cell.version,
              "app.kubernetes.io/component": "database", "app.kubernetes.io/managed-by": "guestforge",
              "guestforge.io/cell": name}
    database = {
        "name": "database",
        "image": images["datastore"],
        "args": list(cell.start),
        "ports": [{"name": "db", "containerPort": cell.port, "protocol": "TCP"}],
        "env": db_env,
        "securityContext": _hardened(cell.uid),
        "startupProbe": {"exec": {"command": ["health.sh", *cell.health]}, "periodSeconds": 5, "failureThreshold": 60},
        "readinessProbe": {"exec": {"command": ["health.sh", *cell.health]}, "periodSeconds": 10,
                           "timeoutSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "db"}, "periodSeconds": 20, "failureThreshold": 6},
        "volumeMounts": [{"name": "data", "mountPath": cell.data_dir}],
    }
    if cell.upstream:  # upstream images carry their own probe tooling, not our health.sh
        database["readinessProbe"] = {"tcpSocket": {"port": "db"}, "periodSeconds": 10}
        del database["startupProbe"]
    exporter = {
        "name": "exporter",
        "image": images["exporter"],
        "ports": [{"name": "metrics", "containerPort": cell.exporter.port, "protocol": "TCP"}],
        "env": exporter_env,
        "securityContext": _hardened(cell.exporter.uid),
        "readinessProbe": {"httpGet": {"path": "/metrics", "port": "metrics"}, "periodSeconds": 15},
    }
    agent_container = {
        "name": "guest-agent",
        "image": images["agent"],
        "securityContext": _hardened(agent.uid),
        "volumeMounts": [{"name": "agent-config", "mountPath": agent.config_dir, "readOnly": True},
                         {"name": "agent-logs", "mountPath": agent.log_dir}],
    }
    containers: list[dict[str, Any]] = [database, exporter]
    volumes: list[dict[str, Any]] = [{"name": "data", "persistentVolumeClaim": {"claimName": f"{name}-data"}}]
    annotations = {}
    if agent_manager:
        containers.append(agent_container)
        volumes += [{"name": "agent-config", "secret": {"secretName": f"{name}-agent-config", "defaultMode": 0o440}},
                    {"name": "agent-logs", "emptyDir": {}}]
        annotations["guestforge.io/agent-manager"] = agent_manager
    else:
        annotations["guestforge.io/agent"] = f"omitted: the guest agent has no manager for {cell.datastore}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "fsGroup": cell.uid,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "shareProcessNamespace": False,
            "enableServiceLinks": False,
            "automountServiceAccountToken": False,
            "containers": containers,
            "volumes": volumes,
        },
    }


def to_yaml(doc: Mapping[str, Any], key: str) -> str:
    header = f"# Generated by guestforge (key {key}); do not edit.\n"
    return header + yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False)
