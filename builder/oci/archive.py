"""Deterministic tar archives: sorted entries, fixed owners and mtimes (same input, same digest)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from builder.errors import GuestforgeError

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


# -- layer tarballs ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Owner:
    """Who owns an entry of a layer and with which permission bits (``None``: keep the source's)."""

    uid: int = 0
    gid: int = 0
    mode: int | None = None


ROOT_DIR = Owner(0, 0, 0o755)


class ArchiveError(GuestforgeError):
    """A tarball cannot be turned into a deterministic layer (unsupported or inconsistent entries)."""


class ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (``docker save``/``export`` streams), so that
    ``tarfile`` can read them sequentially without a temporary file."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks, self._buffer = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = chunk
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def stream(chunks: Iterator[bytes]) -> IO[bytes]:
    """``chunks`` as a buffered binary file object."""
    return io.BufferedReader(ChunkReader(chunks), buffer_size=1 << 20)


def files_tar(files: Mapping[str, bytes | str], uid: int = 0, mode: int = 0o644) -> bytes:
    """A small tar of ``{name: content}`` owned by ``uid`` (config files put into a container)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in sorted(files.items()):
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.gid = len(data), uid, uid
            info.mode = 0o755 if name.endswith(".sh") else mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sha256_file(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes (for an uncompressed layer tar: its diff_id)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def parents(name: str) -> list[str]:
    """Every ancestor directory of a relative path, outermost first: ``a/b/c`` -> ``[a, a/b]``."""
    parts = name.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _relocate(name: str, source_root: str, dest_root: str) -> str | None:
    """``source_root/x`` -> ``dest_root/x``; None for entries outside ``source_root``."""
    while name.startswith("./"):
        name = name[2:]
    name = name.strip("/")
    if name == source_root:
        return dest_root
    if name.startswith(source_root + "/"):
        return dest_root + name[len(source_root):]
    return None


def _entry(src: tarfile.TarFile, member: tarfile.TarInfo | None, name: str,
           owner: Owner) -> tuple[tarfile.TarInfo, IO[bytes] | None]:
    info = tarfile.TarInfo(name)
    data: IO[bytes] | None = None
    if member is None:                      # a declared directory the source does not have
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif member.islnk() or member.isreg():  # hard links are stored as the content again
        content = src.getmember(member.linkname) if member.islnk() else member
        data = src.extractfile(content)
        info.type, info.size, info.mode = tarfile.REGTYPE, content.size, member.mode & 0o1777
    else:
        info.type, info.linkname, info.mode = member.type, member.linkname, member.mode & 0o1777
    if owner.mode is not None:
        info.mode = owner.mode
    info.uid, info.gid = owner.uid, owner.gid
    return info, data


def repack_layer(source: Path, out: Path, *, source_root: str, dest_root: str,
                 directories: Mapping[str, Owner], owners: Mapping[str, Owner] | None = None,
                 mtime: int = EPOCH) -> str:
    """Rewrite the tar ``source`` (e.g. an engine export of one directory) as a deterministic layer tar.

    Entries under ``source_root`` move to ``dest_root`` (relative, no leading slash); everything else in
    ``source`` is dropped. ``directories`` declares directory entries (the parents of ``dest_root`` and
    any extra directory) with their owner and mode, added when ``source`` lacks them. ``owners``
    overrides owner and mode of named entries. All other entries become 0:0 with their permission bits
    kept (set-id bits dropped). Hard links become regular files; device nodes and FIFOs are refused.
    Entries are sorted by name, mtimes set to ``mtime``, user/group names and PAX records cleared, and
    every parent directory must have an entry. Returns the tar's ``sha256:`` digest (its diff_id).
    """
    overrides = {**directories, **(owners or {})}
    source_root, dest_root = source_root.strip("/"), dest_root.strip("/")
    with tarfile.open(source, mode="r:") as src:
        members: dict[str, tarfile.TarInfo] = {}
        for member in src.getmembers():
            name = _relocate(member.name, source_root, dest_root)
            if name is None:
                continue
            if member.ischr() or member.isblk() or member.isfifo():
                raise ArchiveError(f"{member.name}: device nodes and FIFOs cannot go into a layer")
            if name in members:
                raise ArchiveError(f"{member.name}: appears twice in {source}")
            members[name] = member
        for name in directories:
            if name in members and not members[name].isdir():
                raise ArchiveError(f"{name}: declared as a directory but {source} has another kind of entry")
        names = sorted(set(members) | set(directories))
        present = set(names)
        for name in names:
            missing = [p for p in parents(name) if p not in present]
            if missing:
                raise ArchiveError(f"{name}: parent directory {missing[0]} has no entry in the layer")
        tmp = out.with_name(out.name + ".tmp")
        with tmp.open("wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in names:
                info, data = _entry(src, members.get(name), name, overrides.get(name, Owner()))
                tar.addfile(_normalize(info, mtime), data)
        tmp.replace(out)
    return sha256_file(out)
