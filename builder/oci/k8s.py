"""A structural check of the Pod manifests we generate, strict like ``kubectl --dry-run=client``
with server-side field validation: unknown fields, wrong types, bad names and dangling references
are errors. It covers the subset of the Pod API guestforge writes, not all of Kubernetes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
PORT_NAME = re.compile(r"(?=.*[a-z])[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?")
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")

# object type -> field -> expected: a python type, an object type name, or [item type].
SCHEMA: dict[str, dict[str, Any]] = {
    "Pod": {"apiVersion": str, "kind": str, "metadata": "ObjectMeta", "spec": "PodSpec"},
    "ObjectMeta": {"name": str, "labels": dict, "annotations": dict},
    "PodSpec": {"securityContext": "PodSecurityContext", "containers": ["Container"], "volumes": ["Volume"],
                "shareProcessNamespace": bool, "enableServiceLinks": bool,
                "automountServiceAccountToken": bool, "restartPolicy": str},
    "PodSecurityContext": {"runAsNonRoot": bool, "runAsUser": int, "runAsGroup": int, "fsGroup": int,
                           "seccompProfile": "SeccompProfile"},
    "SeccompProfile": {"type": str},
    "Container": {"name": str, "image": str, "args": [str], "command": [str], "ports": ["ContainerPort"],
                  "env": ["EnvVar"], "securityContext": "SecurityContext", "startupProbe": "Probe",
                  "readinessProbe": "Probe", "livenessProbe": "Probe", "volumeMounts": ["VolumeMount"]},
    "ContainerPort": {"name": str, "containerPort": int, "protocol": str},
    "EnvVar": {"name": str, "value": str, "valueFrom": "EnvVarSource"},
    "EnvVarSource": {"secretKeyRef": "KeyRef", "configMapKeyRef": "KeyRef"},
    "KeyRef": {"name": str, "key": str, "optional": bool},
    "SecurityContext": {"runAsUser": int, "runAsGroup": int, "runAsNonRoot": bool,
                        "allowPrivilegeEscalation": bool, "capabilities": "Capabilities",
                        "readOnlyRootFilesystem": bool},
    "Capabilities": {"drop": [str], "add": [str]},
    "Probe": {"exec": "ExecAction", "httpGet": "HTTPGetAction", "tcpSocket": "TCPSocketAction",
              "periodSeconds": int, "timeoutSeconds": int, "failureThreshold": int, "initialDelaySeconds": int},
    "ExecAction": {"command": [str]},
    "HTTPGetAction": {"path": str, "port": (int, str)},
    "TCPSocketAction": {"port": (int, str)},
    "VolumeMount": {"name": str, "mountPath": str, "readOnly": bool},
    "Volume": {"name": str, "persistentVolumeClaim": "PVCSource", "secret": "SecretSource", "emptyDir": "EmptyDir"},
    "PVCSource": {"claimName": str, "readOnly": bool},
    "SecretSource": {"secretName": str, "defaultMode": int},
    "EmptyDir": {"medium": str, "sizeLimit": str},
}
REQUIRED = {"Pod": ("apiVersion", "kind", "metadata", "spec"), "ObjectMeta": ("name",), "PodSpec": ("containers",),
            "Container": ("name", "image"), "ContainerPort": ("containerPort",), "EnvVar": ("name",),
            "KeyRef": ("name", "key"), "VolumeMount": ("name", "mountPath"), "Volume": ("name",),
            "ExecAction": ("command",), "HTTPGetAction": ("port",), "TCPSocketAction": ("port",),
            "PVCSource": ("claimName",), "SecretSource": ("secretName",)}
ONE_OF = {"Probe": ("exec", "httpGet", "tcpSocket"), "Volume": ("persistentVolumeClaim", "secret", "emptyDir"),
          "EnvVarSource": ("secretKeyRef", "configMapKeyRef")}


def _walk(value: Any, kind: Any, path: str, errors: list[str]) -> None:  # noqa: C901 - replaced by issue 16
    if isinstance(kind, list):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list")
            return
        for i, item in enumerate(value):
            _walk(item, kind[0], f"{path}[{i}]", errors)
        return
    if isinstance(kind, str):
        if not isinstance(value, Mapping):
            errors.append(f"{path}: expected an object ({kind})")
            return
        fields = SCHEMA[kind]
        for name in value:
            if name not in fields:
                errors.append(f"{path}.{name}: unknown field in {kind}")
        for name in REQUIRED.get(kind, ()):
            if name not in value:
                errors.append(f"{path}.{name}: required")
        if kind in ONE_OF and sum(k in value for k in ONE_OF[kind]) != 1:
            errors.append(f"{path}: exactly one of {', '.join(ONE_OF[kind])} required")
        for name, item in value.items():
            if name in fields:
                _walk(item, fields[name], f"{path}.{name}" if path else name, errors)
        return
    expected = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, expected) or (bool not in expected and isinstance(value, bool)):
        errors.append(f"{path}: expected {' or '.join(t.__name__ for t in expected)}, got {type(value).__name__}")


def _semantics(doc: Mapping[str, Any], errors: list[str]) -> None:  # noqa: C901 - replaced by issue 16
    if doc.get("apiVersion") != "v1" or doc.get("kind") != "Pod":
        errors.append("apiVersion/kind: expected v1 Pod")
    meta = doc.get("metadata") or {}
    if not DNS_LABEL.fullmatch(str(meta.get("name", ""))):
        errors.append(f"metadata.name: not a DNS-1123 label: {meta.get('name')!r}")
    for key, value in (meta.get("labels") or {}).items():
        if not LABEL_KEY.fullmatch(str(key)) or not isinstance(value, str) or not LABEL_VALUE.fullmatch(value):
            errors.append(f"metadata.labels: invalid label {key}={value!r}")
    spec = doc.get("spec") or {}
    volumes = [v.get("name") for v in spec.get("volumes") or []]
    if len(set(volumes)) != len(volumes):
        errors.append("spec.volumes: duplicate names")
    names = [c.get("name") for c in spec.get("containers") or []]
    if len(set(names)) != len(names):
        errors.append("spec.containers: duplicate names")
    for i, container in enumerate(spec.get("containers") or []):
        where = f"spec.containers[{i}]"
        if not DNS_LABEL.fullmatch(str(container.get("name", ""))):
            errors.append(f"{where}.name: not a DNS-1123 label")
        ports = {p.get("name") for p in container.get("ports") or [] if p.get("name")}
        for p in container.get("ports") or []:
            if not 0 < int(p.get("containerPort", 0)) < 65536:
                errors.append(f"{where}.ports: containerPort out of range")
            if p.get("name") and not PORT_NAME.fullmatch(p["name"]):
                errors.append(f"{where}.ports: invalid port name {p['name']!r}")
        for e in container.get("env") or []:
            if not ENV_NAME.fullmatch(str(e.get("name", ""))):
                errors.append(f"{where}.env: invalid name {e.get('name')!r}")
            if ("value" in e) == ("valueFrom" in e):
                errors.append(f"{where}.env.{e.get('name')}: exactly one of value, valueFrom")
        for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = container.get(probe_name) or {}
            for handler in ("httpGet", "tcpSocket"):
                port = (probe.get(handler) or {}).get("port")
                if isinstance(port, str) and port not in ports:
                    errors.append(f"{where}.{probe_name}.{handler}.port: no container port named {port!r}")
        for m in container.get("volumeMounts") or []:
            if m.get("name") not in volumes:
                errors.append(f"{where}.volumeMounts: no volume named {m.get('name')!r}")
            if not str(m.get("mountPath", "")).startswith("/"):
                errors.append(f"{where}.volumeMounts: mountPath must be absolute")


def check_pod(doc: Any) -> list[str]:
    """Every problem with ``doc`` as a Pod manifest; empty when it would be accepted."""
    errors: list[str] = []
    _walk(doc, "Pod", "", errors)
    if not errors:
        _semantics(doc, errors)
    return errors
