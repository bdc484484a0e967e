"""Requests and limits per container: defaults per flavor, overridden field by field by the matrix's
``resources:`` (datastore, then version). Both requests and limits are set, so pods are Guaranteed
or Burstable, never BestEffort, and namespaces whose ResourceQuota demands limits accept them."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from builder.matrix.models import Flavor, Resources

Container = str  # "database" | "exporter" | "agent"

_SMALL = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}
_AGENT = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "384Mi"}}
DEFAULTS: dict[Flavor, dict[str, Any]] = {
    "postgresql": {"database": {"requests": {"cpu": "250m", "memory": "256Mi"},
                                "limits": {"cpu": "1", "memory": "1Gi"}},
                   "exporter": _SMALL, "agent": _AGENT, "storage": "1Gi"},
    "mysql": {"database": {"requests": {"cpu": "250m", "memory": "384Mi"},
                           "limits": {"cpu": "1", "memory": "1Gi"}},
              "exporter": _SMALL, "agent": _AGENT, "storage": "1Gi"},
    "redis": {"database": {"requests": {"cpu": "100m", "memory": "128Mi"},
                           "limits": {"cpu": "500m", "memory": "512Mi"}},
              "exporter": _SMALL, "agent": _AGENT, "storage": "1Gi"},
}


def resolve(flavor: Flavor, layers: Iterable[Resources]) -> Resources:
    """The flavor's defaults with each layer's set fields on top (later layers win)."""
    merged = copy.deepcopy(DEFAULTS[flavor])
    for layer in layers:
        data = layer.model_dump(exclude_none=True)
        if "storage" in data:
            merged["storage"] = data["storage"]
        for container in ("database", "exporter", "agent"):
            for kind, amounts in data.get(container, {}).items():
                merged[container][kind].update(amounts)
    return Resources.model_validate(merged)


def container(resources: Resources, name: Container) -> dict[str, dict[str, str]]:
    """The ``resources:`` block of one container."""
    block: dict[str, dict[str, str]] = getattr(resources, name).model_dump(exclude_none=True)
    return {kind: amounts for kind, amounts in block.items() if amounts}
