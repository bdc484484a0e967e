"""Versions of the external tools whose behaviour shapes artifacts (they go into cache keys)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import metadata

from builder.errors import GuestforgeError
from builder.run import output


def _first_version(text: str) -> str:
    match = re.search(r"\d+(\.\d+)+([.+~-][0-9A-Za-z.+~-]*)?", text)
    return match.group(0) if match else text.strip()[:40]


def _probe(name: str) -> str:
    if name == "mmdebstrap":
        return _first_version(output(["mmdebstrap", "--version"]))
    if name == "docker":
        from builder.oci.engine import Engine

        return Engine().version()
    if name == "diskimage-builder":
        return metadata.version("diskimage-builder")
    if name == "qemu-img":
        return _first_version(output(["qemu-img", "--version"]))
    if name == "libguestfs":
        return _first_version(output(["guestfish", "--version"]))
    raise GuestforgeError(f"internal: unknown tool {name}")


def tool_versions(names: Iterable[str]) -> dict[str, str]:
    """Probe each tool once; a missing tool reports 'missing' (its nodes will fail with a clear error)."""
    versions = {}
    for name in sorted(set(names)):
        try:
            versions[name] = _probe(name)
        except GuestforgeError:
            versions[name] = "missing"
    return versions
