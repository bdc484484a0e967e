"""What a ``docker save`` archive holds: its reference and image ID, read without a Docker engine."""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from builder.errors import BuildError


@dataclass(frozen=True)
class ArchivedImage:
    archive: Path
    ref: str
    image_id: str  # sha256:<hex>, the image config digest (what `docker image inspect .Id` prints)

    def as_dict(self) -> dict[str, str]:
        return {"ref": self.ref, "id": self.image_id}


def read_archive(archive: Path) -> ArchivedImage:
    """The single image in ``archive`` (``docker save`` of one tagged image)."""
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise KeyError("manifest.json")
            manifest = json.load(member)
    except (OSError, KeyError, tarfile.TarError, json.JSONDecodeError) as exc:
        raise BuildError(f"{archive}: not a `docker save` archive ({exc})") from None
    if len(manifest) != 1 or not manifest[0].get("RepoTags"):
        raise BuildError(f"{archive}: expected exactly one tagged image, found {len(manifest)} entries")
    entry = manifest[0]
    # "<hex>.json" (classic) or "blobs/sha256/<hex>" (OCI layout, Docker >= 25)
    hexdigest = Path(entry["Config"]).name.removesuffix(".json")
    return ArchivedImage(archive, entry["RepoTags"][0], f"sha256:{hexdigest}")
