"""The order a publish writes in, so that an interruption at any point leaves every moving tag on a
complete artifact: blobs, then the manifest (by digest), then the key tag, then what is attached to
the digest (signature, provenance), and only then the moving tags — each moved after the registry was
asked whether it serves the whole artifact. A publish cut short is finished by the next one; until
then the moving tags still name the previous, complete, artifact.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from builder.cache.oci_client import Registry
from builder.errors import BuildError


def promote(registry: Registry, repo: str, digest: str, tags: Sequence[str], log: Path) -> None:
    """Point each moving tag in ``tags`` at ``digest`` once the registry serves all of it."""
    missing = registry.missing(repo, digest)
    if missing:
        raise BuildError(f"registry {registry.host}: {repo}@{digest} is incomplete (missing {', '.join(missing)}); "
                         f"moving tags {', '.join(tags)} left where they were", str(log))
    for tag in tags:
        registry.tag(repo, digest, tag)
    with log.open("a") as out:
        out.writelines(f"moved {registry.host}/{repo}:{tag} to {digest}\n" for tag in tags)
