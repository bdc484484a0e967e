"""Repacking an exported directory as a deterministic layer tar (builder.oci.archive.repack_layer)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from builder.oci.archive import ROOT_DIR, ArchiveError, Owner, parents, repack_layer, sha256_file


def _export(path: Path, entries: Sequence[tuple[str, str, bytes | str | None]], mtime: int = 1_700_000_000,
            uid: int = 0) -> Path:
    """A tar like the engine's get_archive: (name, kind, data) with kind file|dir|symlink|hardlink|fifo."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname = mtime, uid, uid, "someone"
            payload = None
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o775
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(data)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, str(data)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            else:
                raw = data.encode() if isinstance(data, str) else (data or b"")
                info.size, info.mode = len(raw), 0o4755 if name.endswith(".sh") else 0o644
                payload = io.BytesIO(raw)
            tar.addfile(info, payload)
    return path


TREE = [
    ("venv", "dir", None),
    ("venv/bin", "dir", None),
    ("venv/bin/python3", "symlink", "python3.11"),
    ("venv/bin/run.sh", "file", "#!/bin/sh\n"),
    ("venv/lib", "dir", None),
    ("venv/lib/a.py", "file", "print(1)\n"),
    ("venv/lib/b.py", "hardlink", "venv/lib/a.py"),
]
DIRS = {"opt": ROOT_DIR, "etc": ROOT_DIR, "etc/app": ROOT_DIR, "etc/app/conf.d": Owner(0, 1100, 0o750),
        "var": ROOT_DIR, "var/log": ROOT_DIR, "var/log/app": Owner(1100, 1100, 0o750)}


def _repack(tmp_path: Path, entries: Sequence[tuple[str, str, bytes | str | None]], name: str = "out.tar",
            **export: int) -> tuple[str, Path]:
    src = _export(tmp_path / f"src-{name}", entries, **export)
    out = tmp_path / name
    return repack_layer(src, out, source_root="venv", dest_root="/opt/venv", directories=DIRS,
                        owners={"opt/venv": ROOT_DIR}), out


def _members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return tar.getmembers()


def test_layout_owners_and_order(tmp_path: Path) -> None:
    digest, out = _repack(tmp_path, TREE, uid=4242)
    members = _members(out)
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names[:2] == ["etc", "etc/app"] and "opt" in names and "opt/venv/lib/b.py" in names
    by_name = {m.name: m for m in members}
    assert all(m.mtime == 0 and m.uname == "" and m.gname == "" for m in members)
    assert (by_name["opt/venv/lib/a.py"].uid, by_name["opt/venv/lib/a.py"].gid) == (0, 0)   # code is root's
    assert (by_name["var/log/app"].uid, by_name["var/log/app"].mode) == (1100, 0o750)
    assert (by_name["etc/app/conf.d"].uid, by_name["etc/app/conf.d"].gid) == (0, 1100)
    assert by_name["opt"].mode == 0o755 and by_name["opt/venv"].mode == 0o755
    assert by_name["opt/venv/bin/run.sh"].mode == 0o755                 # set-uid dropped, x kept
    assert by_name["opt/venv/bin/python3"].issym() and by_name["opt/venv/bin/python3"].linkname == "python3.11"
    assert by_name["opt/venv/lib/b.py"].isreg()                          # hard link stored as a file
    with tarfile.open(out) as tar:
        extracted = tar.extractfile("opt/venv/lib/b.py")
        assert extracted is not None and extracted.read() == b"print(1)\n"
    assert digest == sha256_file(out) and digest.startswith("sha256:")


def test_same_content_same_digest_whatever_order_mtime_or_owner(tmp_path: Path) -> None:
    first, _ = _repack(tmp_path, TREE, name="a.tar")
    second, _ = _repack(tmp_path, list(reversed(TREE[2:])) + TREE[:2], name="b.tar", mtime=5, uid=1000)
    assert first == second
    changed, _ = _repack(tmp_path, [*TREE[:-2], ("venv/lib/a.py", "file", "print(2)\n"), TREE[-1]], name="c.tar")
    assert changed != first


def test_every_parent_needs_an_entry(tmp_path: Path) -> None:
    src = _export(tmp_path / "src.tar", TREE)
    with pytest.raises(ArchiveError, match="parent directory var/lib"):
        repack_layer(src, tmp_path / "out.tar", source_root="venv", dest_root="opt/venv",
                     directories={**DIRS, "var/lib/app": Owner(1100, 1100, 0o750)})


def test_devices_and_fifos_are_refused(tmp_path: Path) -> None:
    src = _export(tmp_path / "src.tar", [*TREE, ("venv/pipe", "fifo", None)])
    with pytest.raises(ArchiveError, match="FIFO"):
        repack_layer(src, tmp_path / "out.tar", source_root="venv", dest_root="opt/venv", directories=DIRS)


def test_entries_outside_the_source_root_are_dropped(tmp_path: Path) -> None:
    src = _export(tmp_path / "src.tar", [*TREE, ("other", "dir", None), ("other/x", "file", "x")])
    repack_layer(src, tmp_path / "out.tar", source_root="venv", dest_root="opt/venv", directories=DIRS)
    assert not any(m.name.startswith("other") for m in _members(tmp_path / "out.tar"))


def test_parents() -> None:
    assert parents("a/b/c") == ["a", "a/b"]
    assert parents("a") == []
