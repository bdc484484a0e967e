"""Run the nodes a command needs, in dependency order, up to ``jobs`` at a time.

A node whose key is recorded as done (and whose artifact still exists) is
skipped. So is a node whose inputs differ from its last success only in parents
that were rebuilt to the same content (early cutoff: a comment in an agent build
file rebuilds the agent tree, byte-identical, and nothing below it); its result is
recorded under the new key. A failed node blocks only its descendants, never its siblings. Workers
are daemon threads so Ctrl-C ends the run at once; nothing is recorded for a
node that did not finish, so the next run resumes where this one stopped.
"""

from __future__ import annotations

import queue
import re
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from builder.errors import GuestforgeError
from builder.graph.index import Index
from builder.graph.model import Graph, Node, diff_manifests

Status = Literal["built", "verified", "cached", "pulled", "failed", "blocked"]
OK_STATUSES = ("built", "verified", "cached", "pulled")
# An artifact field an action sets when its value alone decides the artifact (a layer's diff_id): a rebuild
# with the same value is the same artifact for every consumer.
CONTENT = "content"


@dataclass(frozen=True)
class Step:
    """What an action gets: its node, key, parents' artifacts, and where to write."""

    node: Node
    key: str
    parents: Mapping[str, dict[str, Any]]
    log: Path
    workdir: Path

    def parent(self, kind: str) -> dict[str, Any]:
        """The artifact of the single parent of ``kind`` (e.g. ``"base"``)."""
        found = [a for pid, a in self.parents.items() if pid.split(":", 1)[0] == kind]
        if len(found) != 1:
            raise GuestforgeError(f"internal: {self.node.id} has {len(found)} parents of kind {kind}")
        return found[0]


class Action(Protocol):
    """How one kind of node is produced. ``serial`` actions never run two at a time (e.g. qemu)."""

    serial: bool

    def run(self, step: Step) -> dict[str, Any]: ...

    def exists(self, artifact: Mapping[str, Any]) -> bool: ...


class RemoteCache(Protocol):
    def fetch(self, node: Node, key: str, log: Path) -> dict[str, Any] | None: ...

    def store(self, node: Node, key: str, artifact: Mapping[str, Any], log: Path) -> None: ...


@dataclass
class Outcome:
    node_id: str
    status: Status
    key: str
    seconds: float = 0.0
    artifact: dict[str, Any] = field(default_factory=dict)
    log: str | None = None
    error: str | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES


class Reporter(Protocol):
    def started(self, node: Node, reasons: list[str]) -> None: ...

    def finished(self, node: Node, outcome: Outcome) -> None: ...


def log_path(logs_dir: Path, node: Node) -> Path:
    """One log file per cell step: ``logs/<cell or shared>/<kind>[-name].log``."""
    name = node.kind if node.cell else node.id.replace(":", "-")
    return logs_dir / (node.cell or "shared") / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.log"


def stale_reasons(graph: Graph, index: Index, node_id: str) -> list[str]:
    previous = index.latest(node_id)
    if previous is None:
        return ["never built" if not graph.nodes[node_id].is_verification else "never verified"]
    if previous.key == graph.keys[node_id]:
        return ["last attempt failed"] if not previous.ok else ["artifact missing"]
    return diff_manifests(previous.manifest, graph.manifests[node_id]) or ["inputs changed"]


def same_artifact(before: Mapping[str, Any], now: Mapping[str, Any]) -> bool:
    """The same artifact: the very record (a parent reused), or a rebuild with the same ``content``."""
    if dict(before) == dict(now):
        return True
    return before.get(CONTENT) is not None and before.get(CONTENT) == now.get(CONTENT)


class Executor:
    def __init__(self, graph: Graph, actions: Mapping[str, Action], index: Index, build_dir: Path,
                 reporter: Reporter, jobs: int = 2, force: bool = False, cache: RemoteCache | None = None):
        self.graph, self.actions, self.index = graph, actions, index
        self.build_dir, self.reporter, self.jobs, self.force, self.cache = build_dir, reporter, jobs, force, cache
        self._serial_busy = False

    def run(self, wanted: list[str]) -> dict[str, Outcome]:
        order = self.graph.closure(wanted)
        pending = list(order)
        done: dict[str, Outcome] = {}
        running: dict[str, bool] = {}
        results: queue.Queue[tuple[Outcome, bool]] = queue.Queue()
        while pending or running:
            progressed = True
            while progressed and len(running) < self.jobs:
                progressed = False
                for node_id in list(pending):
                    if len(running) >= self.jobs:
                        break
                    node = self.graph.nodes[node_id]
                    if any(p not in done for p in node.parents):
                        continue
                    serial = self.actions[node.kind].serial
                    blocked = [p for p in node.parents if not done[p].ok]
                    if not blocked:
                        cached = self._cached(node, done)
                        if cached is None and serial and self._serial_busy:
                            continue
                    pending.remove(node_id)
                    progressed = True
                    if blocked:
                        done[node_id] = Outcome(node_id, "blocked", self.graph.keys[node_id],
                                                error=f"needs {', '.join(blocked)}, which failed")
                        self.reporter.finished(node, done[node_id])
                    elif cached is not None:
                        done[node_id] = cached
                        self.reporter.finished(node, cached)
                    else:
                        running[node_id] = serial
                        self._serial_busy |= serial
                        parents = {p: done[p].artifact for p in node.parents}
                        threading.Thread(target=self._work, args=(node, parents, results), daemon=True,
                                         name=node_id).start()
            if not running:
                if pending:
                    raise GuestforgeError(f"internal: nothing runnable among {pending}")
                break
            outcome, serial = results.get()
            running.pop(outcome.node_id)
            if serial:
                self._serial_busy = False
            done[outcome.node_id] = outcome
            self.reporter.finished(self.graph.nodes[outcome.node_id], outcome)
        return done

    def _cached(self, node: Node, done: Mapping[str, Outcome]) -> Outcome | None:
        """A recorded success for today's key, else one reusable by early cutoff; None under ``--force``."""
        if self.force:
            return None
        key = self.graph.keys[node.id]
        entry = self.index.get(key)
        if entry is not None and entry.ok and self.actions[node.kind].exists(entry.artifact):
            return Outcome(node.id, "cached", key, artifact=entry.artifact, log=entry.log)
        return self._same_content(node, done)

    def _same_content(self, node: Node, done: Mapping[str, Outcome]) -> Outcome | None:
        """Early cutoff: reuse the node's last success when its manifest differs from today's only in parent
        keys, and every such parent now has the artifact it had then (reused as is, or rebuilt with the
        same ``content``). The reuse is recorded under today's key, so the next run is a plain hit."""
        previous = self.index.latest(node.id)
        if previous is None or not previous.ok:
            return None
        old, new = previous.manifest, self.graph.manifests[node.id]
        old_parents, new_parents = old.get("parents", {}), new["parents"]
        if ({k: v for k, v in old.items() if k != "parents"} != {k: v for k, v in new.items() if k != "parents"}
                or set(old_parents) != set(new_parents)):
            return None
        changed = [p for p in new_parents if old_parents[p] != new_parents[p]]
        if not changed:  # the same key: its artifact is gone, so there is nothing to reuse
            return None
        for parent in changed:
            then = self.index.get(old_parents[parent])
            if then is None or not then.ok or not same_artifact(then.artifact, done[parent].artifact):
                return None
        if not self.actions[node.kind].exists(previous.artifact):
            return None
        key = self.graph.keys[node.id]
        self.index.record(key, node.id, node.kind, True, previous.artifact, new, time.time(), previous.log)
        if self.cache:  # other runners look the node up by today's key
            self.cache.store(node, key, previous.artifact, log_path(self.build_dir / "logs", node))
        return Outcome(node.id, "cached", key, artifact=previous.artifact, log=previous.log,
                       reasons=[f"input {p} rebuilt with the same content" for p in changed])

    def _work(self, node: Node, parents: dict[str, dict[str, Any]],
              results: queue.Queue[tuple[Outcome, bool]]) -> None:
        """Produce one node; always put exactly one outcome on ``results`` (or the run would wait forever)."""
        key = self.graph.keys[node.id]
        action = self.actions[node.kind]
        log = log_path(self.build_dir / "logs", node)
        started = time.time()
        reasons: list[str] = []
        try:
            reasons = stale_reasons(self.graph, self.index, node.id) if not self.force else ["--force"]
            self.reporter.started(node, reasons)
            log.parent.mkdir(parents=True, exist_ok=True)
            if log.exists():  # keep the previous attempt (often the failure being fixed)
                log.replace(log.with_name(log.stem + ".previous.log"))
            log.write_text(f"# {node.title}\n# key {key}\n# why: {'; '.join(reasons)}\n")
            artifact = self.cache.fetch(node, key, log) if self.cache else None
            status: Status = "pulled"
            if artifact is None:
                workdir = self.build_dir / "work" / re.sub(r"[^A-Za-z0-9_.-]", "_", node.id)
                workdir.mkdir(parents=True, exist_ok=True)
                artifact = action.run(Step(node, key, parents, log, workdir))
                status = "verified" if node.is_verification else "built"
                if self.cache:
                    self.cache.store(node, key, artifact, log)
            self.index.record(key, node.id, node.kind, True, artifact, self.graph.manifests[node.id], started,
                              str(log))
            outcome = Outcome(node.id, status, key, time.time() - started, artifact, str(log), reasons=reasons)
        except Exception as exc:  # one failing node must not stop the others
            outcome = self._failed(node, key, log, started, reasons, exc)
        results.put((outcome, action.serial))

    def _failed(self, node: Node, key: str, log: Path, started: float, reasons: list[str],
                exc: Exception) -> Outcome:
        message = str(exc) if isinstance(exc, GuestforgeError) else f"internal error: {exc!r}"
        artifact: dict[str, Any] = getattr(exc, "artifact", None) or {}
        try:
            with log.open("a") as out:
                out.write(f"\nFAILED: {message}\n")
                if not isinstance(exc, GuestforgeError):
                    out.write(traceback.format_exc())
            self.index.record(key, node.id, node.kind, False, artifact, self.graph.manifests[node.id], started,
                              str(log))
        except Exception as secondary:  # noqa: BLE001 - still report the original failure
            message += f" (and recording it failed: {secondary!r})"
        return Outcome(node.id, "failed", key, time.time() - started, artifact, str(log), message, reasons)
