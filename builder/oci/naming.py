"""How node images are named on the engine: ``guestforge/REPO:TAG-KEY`` plus a moving ``guestforge/REPO:TAG``.

The repository and moving tag come from the node's values (``repo_and_tag``, see ``builder.oci.values``);
this module adds the key.
"""

from __future__ import annotations

from typing import Protocol


class Named(Protocol):
    def repo_and_tag(self) -> tuple[str, str]: ...


def short(key: str) -> str:
    return key[:12]


def image_ref(values: Named, key: str) -> tuple[str, str]:
    """(content-addressed ref, moving convenience tag) for a node's image."""
    repo, tag = values.repo_and_tag()
    return (f"{repo}:{tag}-{short(key)}" if tag != "latest" else f"{repo}:{short(key)}"), f"{repo}:{tag}"
