"""The local index: key -> outcome, artifact, manifest, timings, log (SQLite, under the build dir).

A row is written only when a node finishes, in one transaction, so an
interrupted run (Ctrl-C, kill -9, engine stopped) never leaves an entry that
claims success; the next run simply does the node again. A lock file keeps two
runs on one build directory apart.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from builder.errors import GuestforgeError
from builder.graph.kinds import KINDS, Kind
from builder.graph.step import Artifact

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'failed')),
    artifact TEXT NOT NULL,
    manifest TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL NOT NULL,
    log TEXT
);
CREATE TABLE IF NOT EXISTS latest (
    node_id TEXT PRIMARY KEY,
    key TEXT NOT NULL
);
"""


class LockedError(GuestforgeError):
    exit_code = 3


@dataclass(frozen=True)
class Entry:
    key: str
    node_id: str
    kind: str
    outcome: str
    artifact: Artifact | None   # None: none kept, or recorded in a shape this version no longer reads
    manifest: dict[str, Any]
    started: float
    finished: float
    log: str | None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


class Index:
    """Opened per run; thread-safe for the executor's workers (one connection, serialized)."""

    def __init__(self, path: Path, kinds: Mapping[str, Kind] = KINDS):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.kinds = kinds
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()  # one connection shared by the executor's worker threads

    def close(self) -> None:
        self._db.close()

    def get(self, key: str) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT key, node_id, kind, outcome, artifact, manifest, started, finished, log FROM results "
                "WHERE key=?", (key,),
            ).fetchone()
        if row is None:
            return None
        return Entry(row[0], row[1], row[2], row[3], self._artifact(row[2], row[4]), json.loads(row[5]), row[6],
                     row[7], row[8])

    def _artifact(self, kind: str, text: str) -> Artifact | None:
        record = json.loads(text)
        if not record or kind not in self.kinds:
            return None
        try:
            return self.kinds[kind].load(record)
        except ValidationError:  # written by an older guestforge: as good as absent, so the node runs again
            return None

    def latest(self, node_id: str) -> Entry | None:
        """The last recorded result for this node, whatever its key (to explain staleness)."""
        with self._lock:
            row = self._db.execute("SELECT key FROM latest WHERE node_id=?", (node_id,)).fetchone()
        return self.get(row[0]) if row else None

    def record(self, key: str, node_id: str, kind: str, ok: bool, artifact: Artifact | None,
               manifest: dict[str, Any], started: float, log: str | None) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, node_id, kind, "ok" if ok else "failed",
                 json.dumps(artifact.record() if artifact is not None else {}, sort_keys=True),
                 json.dumps(manifest, sort_keys=True), started, time.time(), log),
            )
            db.execute("INSERT OR REPLACE INTO latest VALUES (?, ?)", (node_id, key))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")


@contextmanager
def build_lock(build_dir: Path) -> Iterator[None]:
    """Hold the build directory exclusively; a second run gets a clear message (exit 3)."""
    build_dir.mkdir(parents=True, exist_ok=True)
    lock_path = build_dir / ".lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise LockedError(
                f"{build_dir} is in use by another guestforge run (pid {holder}); wait for it to finish "
                f"or pass a different --build-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
