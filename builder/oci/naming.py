"""How node images are named on the engine: ``guestforge/REPO:TAG-KEY`` plus a moving ``guestforge/REPO:TAG``.

The repository and moving tag come from the node's values (``repo_and_tag``, see ``builder.oci.values``);
this module adds the key.
"""

from __future__ import annotations

import re
from typing import Protocol


class Named(Protocol):
    def repo_and_tag(self) -> tuple[str, str]: ...


def base_repo(name: str) -> tuple[str, str]:
    """A base ``debian:bookworm`` is ``guestforge/base:bookworm``."""
    return "guestforge/base", name.split(":")[-1]


def datastore_repo(datastore: str, version: str, allinone: bool = False) -> tuple[str, str]:
    return f"guestforge/{datastore}", version + ("-aio" if allinone else "")


def exporter_repo(name: str) -> tuple[str, str]:
    return f"guestforge/{name}", "latest"


def dns_label(name: str) -> str:
    """``mariadb-10.11`` -> ``mariadb-10-11`` (RFC 1123 label, as Kubernetes names require)."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return label[:63].rstrip("-")


def short(key: str) -> str:
    return key[:12]


def image_ref(values: Named, key: str) -> tuple[str, str]:
    """(content-addressed ref, moving convenience tag) for a node's image."""
    repo, tag = values.repo_and_tag()
    return (f"{repo}:{tag}-{short(key)}" if tag != "latest" else f"{repo}:{short(key)}"), f"{repo}:{tag}"
