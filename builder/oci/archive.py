"""Deterministic tar archives: sorted entries, fixed owners and mtimes (same input, same digest)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from pathlib import Path

EPOCH = 0


def _normalize(info: tarfile.TarInfo, mtime: int) -> tarfile.TarInfo:
    info.mtime = mtime
    info.uname = info.gname = ""
    info.pax_headers = {}
    return info


def context_tar(files: Mapping[str, bytes | Path], mtime: int = EPOCH) -> io.BytesIO:
    """A build context from ``{name: content or source path}``; file modes kept, all else fixed."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            src = files[name]
            data = src.read_bytes() if isinstance(src, Path) else src
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = (src.stat().st_mode & 0o777) if isinstance(src, Path) else 0o644
            tar.addfile(_normalize(info, mtime), io.BytesIO(data))
    buf.seek(0)
    return buf
