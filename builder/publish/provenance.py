"""SLSA v1 provenance for a published artifact, as an in-toto v1 statement whose subject is its digest.

What it records is what the publish node knows: its key (which hashes every input), its values, the
parents it published from with their digests, guestforge's version, and the source tree's git
revision and whether it was clean (a dirty tree's artifact cannot be rebuilt from the revision).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from builder import __version__
from builder.errors import ToolError
from builder.paths import REPO
from builder.run import output

STATEMENT = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
BUILD_TYPE = "urn:guestforge:publish:v1"
BUILDER_ID = "urn:guestforge:builder"


@dataclass(frozen=True)
class Source:
    revision: str  # a commit id, or "unknown" outside a git checkout
    clean: bool


@dataclass(frozen=True)
class Input:
    """A parent of the published node, with the digest that names its content and the key it was made
    under (which hashes every input of that parent: rebuilding it needs exactly that key)."""

    node: str
    kind: str
    digest: str  # sha256:...
    key: str = ""


def git_source() -> Source:
    try:
        revision = output(["git", "-C", str(REPO), "rev-parse", "HEAD"], timeout=30)
        dirty = output(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"], timeout=60)
    except ToolError:
        return Source("unknown", False)
    return Source(revision, not dirty)


def parent_inputs(parents: Iterable[tuple[str, str, str | None, str]]) -> list[Input]:
    """(node id, kind, the digest its artifact is identified by, its key) -> the parents that have a digest."""
    return sorted((Input(node, kind, digest if ":" in digest else f"sha256:{digest}", key)
                   for node, kind, digest, key in parents if digest), key=lambda i: i.node)


def statement(repository: str, digest: str, *, node: str, key: str, values: Mapping[str, Any],
              inputs: Iterable[Input], source: Source, started: datetime.datetime) -> dict[str, Any]:
    algorithm, _, hexdigest = digest.partition(":")
    dependencies: list[dict[str, Any]] = [
        {"name": "guestforge-source", "digest": {"gitCommit": source.revision},
         "annotations": {"clean": source.clean}}]
    for item in inputs:
        kind, _, value = item.digest.partition(":")
        annotations = {"kind": item.kind, **({"key": item.key} if item.key else {})}
        dependencies.append({"name": item.node, "digest": {kind: value}, "annotations": annotations})
    finished = datetime.datetime.now(datetime.timezone.utc)
    return {
        "_type": STATEMENT,
        "subject": [{"name": repository, "digest": {algorithm: hexdigest}}],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"node": node, "values": dict(values)},
                "internalParameters": {"key": key},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"guestforge": __version__}},
                "metadata": {"invocationId": key, "startedOn": _time(started), "finishedOn": _time(finished)},
            },
        },
    }


def _time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
