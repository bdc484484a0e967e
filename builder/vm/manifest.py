"""The manifest written next to every VM and bare-metal image: what is inside and what it was built from."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SCHEMA = 1


def dpkg_packages(dib_manifest: Path) -> tuple[tuple[str, str], ...]:
    """``(name, version)`` of every installed package, from DIB's ``dib-manifest-dpkg-*`` file."""
    data = json.loads(dib_manifest.read_text())
    pkgs = {(p["package"], p["version"]) for p in data["packages"] if p.get("status", "").startswith("ii")}
    return tuple(sorted(pkgs))


def image_manifest(*, cell: str, target: str, image: Path, image_sha256: str, image_format: str,
                   files: Mapping[str, Path],
                   guest_base: Mapping[str, Any], agent: Mapping[str, str],
                   preloaded: Sequence[Mapping[str, str]], packages: Sequence[tuple[str, str]],
                   inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest as plain data (sorted, so equal inputs give equal text)."""
    return {
        "schema": SCHEMA,
        "cell": cell,
        "target": target,
        "image": {"file": image.name, "format": image_format, "sha256": image_sha256,
                  "bytes": image.stat().st_size},
        "files": {role: path.name for role, path in sorted(files.items())},
        "guest_base": dict(sorted(guest_base.items())),
        "agent": dict(sorted(agent.items())),
        "preloaded_images": sorted((dict(p) for p in preloaded), key=lambda p: p["role"]),
        "packages": [{"name": n, "version": v} for n, v in sorted(packages)],
        "inputs": dict(sorted(inputs.items())),
    }


def write_manifest(path: Path, manifest: Mapping[str, Any]) -> Path:
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path
