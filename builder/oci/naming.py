"""How node images are named on the engine: ``guestforge/REPO:TAG-KEY`` plus a moving ``guestforge/REPO:TAG``.

Named from the node's kind and values (never parsed from its id): a datastore ``my-sql`` version ``8`` is
``guestforge/my-sql:8``, not ``guestforge/my:sql-8``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from builder.errors import GuestforgeError

LOCAL_PREFIX = "guestforge/"


def short(key: str) -> str:
    return key[:12]


def repo_and_tag(kind: str, values: Mapping[str, Any]) -> tuple[str, str]:
    """(repository, moving tag) of a node's image."""
    if kind == "base":
        return "guestforge/base", str(values["name"]).split(":")[-1]
    if kind in ("datastore", "upstream", "aio"):
        cell = values["cell"]
        return f"guestforge/{cell['datastore']}", str(cell["version"]) + ("-aio" if kind == "aio" else "")
    if kind == "exporter":
        return f"guestforge/{values['exporter']['name']}", "latest"
    if kind == "agent-image":
        return "guestforge/agent", "latest"
    if kind == "debug":
        return "guestforge/debug", "latest"
    raise GuestforgeError(f"internal: node kind {kind!r} names no image")


def image_ref(kind: str, values: Mapping[str, Any], key: str) -> tuple[str, str]:
    """(content-addressed ref, moving convenience tag) for a node's image."""
    repo, tag = repo_and_tag(kind, values)
    return (f"{repo}:{tag}-{short(key)}" if tag != "latest" else f"{repo}:{short(key)}"), f"{repo}:{tag}"
