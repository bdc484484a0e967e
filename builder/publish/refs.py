"""Where published artifacts go, and the Kubernetes manifests that point at them. Pure: no engine, no network.

Remote names mirror the local ones, so a user who knows ``guestforge/postgresql:15-KEY`` finds
``HOST/PREFIX/postgresql:15-KEY`` (and the moving ``HOST/PREFIX/postgresql:15``) in the registry.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from builder.errors import GuestforgeError

LOCAL_PREFIX = "guestforge/"


def remote_ref(local: str, host: str, prefix: str) -> str:
    """``guestforge/postgresql:15-abc`` -> ``HOST/PREFIX/postgresql:15-abc``."""
    if not local.startswith(LOCAL_PREFIX):
        raise GuestforgeError(f"internal: {local!r} is not a guestforge image reference")
    return f"{host}/{prefix}/{local[len(LOCAL_PREFIX):]}"


def pinned(ref: str, digest: str) -> str:
    """``HOST/REPO:TAG`` + digest -> ``HOST/REPO@DIGEST`` (what a pod should run: immutable)."""
    path, slash, last = ref.rpartition("/")  # the tag's colon is in the last component (a port's is not)
    return f"{path}{slash}{last.split(':', 1)[0]}@{digest}"


def pin_pod_images(doc: Mapping[str, Any], images: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``doc`` (a Pod, or a workload with a pod template) whose container images are replaced
    per ``images`` (reference in the manifest -> pinned).

    Every container must be covered: a pod half pointing at the build host would not run anywhere else.
    """
    out = copy.deepcopy(dict(doc))
    spec = out["spec"]["template"]["spec"] if "template" in out["spec"] else out["spec"]
    for section in ("initContainers", "containers"):
        for container in spec.get(section, []):
            if container["image"] not in images:
                raise GuestforgeError(f"internal: pod container {container['name']} runs {container['image']}, "
                                      "which this publish did not push")
            container["image"] = images[container["image"]]
    return out
