"""Read the Debian archive and security mirrors from the host's own apt configuration.

guestforge never writes a mirror host name into the repository: bases take their
mirror from the matrix or, by default, from the apt sources of the machine the
build runs on (one-line ``.list`` files and deb822 ``.sources`` files).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from builder.errors import GuestforgeError

APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class AptEntry:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


@dataclass(frozen=True)
class Mirrors:
    """Where to fetch a suite from: the archive and (optionally) its security updates."""

    archive: str
    security: str | None


class MirrorError(GuestforgeError):
    exit_code = 2


def _one_line_entries(text: str) -> Iterator[AptEntry]:
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        line = re.sub(r"\[[^\]]*\]", " ", line[4:])  # drop [arch=... signed-by=...]
        parts = line.split()
        if len(parts) >= 2:
            yield AptEntry(parts[0], (parts[1],), tuple(parts[2:]))


def _deb822_entries(text: str) -> Iterator[AptEntry]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0].isspace() and key:
                fields[key] += " " + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            yield AptEntry(uri, tuple(fields.get("suites", "").split()), tuple(fields.get("components", "").split()))


def host_entries(apt_dir: Path = APT_DIR) -> list[AptEntry]:
    """Every enabled ``deb`` entry of the host, in apt's reading order."""
    files = [apt_dir / "sources.list"] + sorted((apt_dir / "sources.list.d").glob("*"))
    entries: list[AptEntry] = []
    for f in files:
        if not f.is_file():
            continue
        text = f.read_text(errors="replace")
        if f.suffix == ".sources":
            entries += _deb822_entries(text)
        elif f.suffix == ".list" or f.name == "sources.list":
            entries += _one_line_entries(text)
    return entries


# Debian's codenames and aliases; an entry for another distribution or a vendor repository
# (``nodistro``, ``cloud-sdk-bookworm``) must not be mistaken for the archive.
_DEBIAN_SUITES = {"buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid", "stable", "testing",
                  "unstable", "oldstable", "oldoldstable"}


def _is_debian(entry: AptEntry) -> bool:
    return "main" in entry.components and any(
        re.sub(r"(-[a-z]+|/updates)$", "", s) in _DEBIAN_SUITES for s in entry.suites
    )


def find_mirrors(entries: Iterable[AptEntry]) -> Mirrors:
    """The first Debian archive mirror and the first security mirror among ``entries``."""
    archive = security = None
    for entry in entries:
        if not _is_debian(entry):
            continue
        is_security = any(s.endswith("-security") or s.endswith("/updates") for s in entry.suites)
        if is_security and security is None:
            security = entry.uri.rstrip("/")
        elif not is_security and archive is None:
            archive = entry.uri.rstrip("/")
    if archive is None:
        raise MirrorError(
            "no Debian archive mirror found in the host's apt sources (/etc/apt/sources.list, "
            "/etc/apt/sources.list.d/); set `mirror:` (and `security_mirror:`) on the base in the matrix"
        )
    return Mirrors(archive, security)


def host_mirrors(apt_dir: Path = APT_DIR) -> Mirrors:
    return find_mirrors(host_entries(apt_dir))
