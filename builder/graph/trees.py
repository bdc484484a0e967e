"""Read repository files from the work tree or from a git revision, through one interface.

Manifests hash files through a ``Tree`` so that ``guestforge affected --since REV``
can compute every node's key as of REV with the same code that computes it now.
"""

from __future__ import annotations

import hashlib
import subprocess
from functools import cache
from pathlib import Path
from typing import Protocol

from builder.errors import UsageError
from builder.run import output


class Tree(Protocol):
    def read(self, rel: str) -> bytes | None: ...

    def files(self, rel_dir: str) -> list[str]: ...


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class WorkTree:
    """Files as they are on disk now."""

    def __init__(self, root: Path):
        self.root = root

    def read(self, rel: str) -> bytes | None:
        path = self.root / rel
        return path.read_bytes() if path.is_file() else None

    def files(self, rel_dir: str) -> list[str]:
        base = self.root / rel_dir
        if not base.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root)) for p in base.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        )


class GitTree:
    """Files as committed at ``rev`` (read with one ``git cat-file --batch`` process)."""

    def __init__(self, root: Path, rev: str):
        self.root = root
        try:
            self.commit = output(["git", "-C", str(root), "rev-parse", "--verify", f"{rev}^{{commit}}"])
        except Exception:
            raise UsageError(f"not a git revision in {root}: {rev!r}") from None
        listing = output(["git", "-C", str(root), "ls-tree", "-r", "--name-only", self.commit])
        self._paths = sorted(listing.splitlines())
        self._proc: subprocess.Popen[bytes] | None = None

    @cache  # noqa: B019 - one GitTree per command run
    def read(self, rel: str) -> bytes | None:
        if rel not in self._paths:
            return None
        proc = self._cat()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(f"{self.commit}:{rel}\n".encode())
        proc.stdin.flush()
        header = proc.stdout.readline().split()
        size = int(header[2])
        data = proc.stdout.read(size)
        proc.stdout.read(1)
        return data

    def files(self, rel_dir: str) -> list[str]:
        prefix = rel_dir.rstrip("/") + "/"
        return [p for p in self._paths if p.startswith(prefix) and "__pycache__" not in p]

    def changed_since(self) -> list[str]:
        """Paths that differ between this revision and the work tree (committed or not)."""
        diff = output(["git", "-C", str(self.root), "diff", "--name-only", self.commit])
        untracked = output(["git", "-C", str(self.root), "ls-files", "--others", "--exclude-standard"])
        return sorted(set(diff.splitlines()) | set(untracked.splitlines()))

    def _cat(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            self._proc = subprocess.Popen(["git", "-C", str(self.root), "cat-file", "--batch"],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return self._proc

    def close(self) -> None:
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            self._proc.wait()
            self._proc = None

