"""Run the nodes a command needs, in dependency order, up to ``jobs`` at a time.

The order comes from ``graphlib.TopologicalSorter`` (``get_ready``/``done``). Deciding whether a
node is already done is a pure read of the index: a node whose key is recorded as done (and whose
artifact still exists) is skipped; so is a node whose inputs differ from its last success only in
parents that were rebuilt to the same content (early cutoff: a comment in an agent build file
rebuilds the agent tree, byte-identical, and nothing below it). Every write — the index row, the
remote cache, the log — happens in a worker thread, never on the scheduler. A failed node blocks
only its descendants, never its siblings. Workers are daemon threads so Ctrl-C ends the run at once;
nothing is recorded for a node that did not finish, so the next run resumes where this one stopped.
"""

from __future__ import annotations

import graphlib
import queue
import re
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from builder.errors import GuestforgeError
from builder.graph.index import Entry, Index
from builder.graph.model import Graph, diff_manifests
from builder.graph.step import A, Action, Artifact, ArtifactFailure, Node, Parent, Step

Status = Literal["built", "verified", "cached", "pulled", "failed", "blocked"]
OK_STATUSES = ("built", "verified", "cached", "pulled")


class RemoteCache(Protocol):
    def fetch(self, node: Node, key: str, log: Path) -> Artifact | None: ...

    def store(self, node: Node, key: str, artifact: Artifact, log: Path) -> None: ...


@dataclass
class Outcome:
    node_id: str
    status: Status
    key: str
    seconds: float = 0.0
    artifact: Artifact | None = None  # a failure may keep one too (a verification's counts)
    log: str | None = None
    error: str | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    def produced(self, model: type[A]) -> A:
        """The artifact as ``model`` (its kind's artifact model), for callers that know the kind."""
        if not isinstance(self.artifact, model):
            raise GuestforgeError(f"internal: {self.node_id} recorded {type(self.artifact).__name__}, "
                                  f"not {model.__name__}")
        return self.artifact


class Reporter(Protocol):
    def started(self, node: Node, reasons: list[str]) -> None: ...

    def finished(self, node: Node, outcome: Outcome) -> None: ...


def _artifact_of(outcome: Outcome) -> Artifact:
    if outcome.artifact is None:
        raise GuestforgeError(f"internal: {outcome.node_id} succeeded without an artifact")
    return outcome.artifact


def log_path(logs_dir: Path, node: Node) -> Path:
    """One log file per cell step: ``logs/<cell or shared>/<kind>[-name].log``."""
    name = node.kind if node.cell else node.id.replace(":", "-")
    return logs_dir / (node.cell or "shared") / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.log"


def stale_reasons(graph: Graph, index: Index, node_id: str) -> list[str]:
    previous = index.latest(node_id)
    if previous is None:
        return ["never built" if not graph.is_verification(node_id) else "never verified"]
    if previous.key == graph.keys[node_id]:
        return ["last attempt failed"] if not previous.ok else ["artifact missing"]
    return diff_manifests(previous.manifest, graph.manifests[node_id]) or ["inputs changed"]


def same_artifact(before: Artifact | None, now: Artifact | None) -> bool:
    """The same artifact: the very record (a parent reused), or a rebuild with the same ``content``."""
    if before is None or now is None:
        return False
    if before == now:
        return True
    return before.content() is not None and before.content() == now.content()


@dataclass(frozen=True)
class Reuse:
    """A cache decision: the recorded ``entry`` stands for today's key (``cutoff``: recorded under an older
    key, to be recorded under today's by the worker)."""

    entry: Entry
    cutoff: list[str] = field(default_factory=list)


class Executor:
    def __init__(self, graph: Graph, actions: Mapping[str, Action], index: Index, build_dir: Path,
                 reporter: Reporter, jobs: int = 2, force: bool = False, cache: RemoteCache | None = None):
        self.graph, self.actions, self.index = graph, actions, index
        self.build_dir, self.reporter, self.jobs, self.force, self.cache = build_dir, reporter, jobs, force, cache

    def run(self, wanted: list[str]) -> dict[str, Outcome]:
        order = self.graph.closure(wanted)
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter(
            {n: self.graph.nodes[n].parents for n in order})
        sorter.prepare()
        done: dict[str, Outcome] = {}
        ready: dict[str, Reuse | str | None] = {}   # node id -> its decision: reuse, "blocked", or build
        running: dict[str, bool] = {}                # node id -> holds the serial slot
        results: queue.Queue[Outcome] = queue.Queue()
        while sorter.is_active():
            for node_id in sorter.get_ready():
                ready[node_id] = self._decide(self.graph.nodes[node_id], done)
            for node_id in self._startable(ready, running):
                decision = ready.pop(node_id)
                node = self.graph.nodes[node_id]
                if isinstance(decision, str):
                    self._finish(sorter, done, Outcome(node_id, "blocked", self.graph.keys[node_id], error=decision))
                    continue
                running[node_id] = decision is None and self.actions[node.kind].serial
                threading.Thread(target=self._work, args=(node, done, decision, results), daemon=True,
                                 name=node_id).start()
            if not running:
                if ready:
                    raise GuestforgeError(f"internal: nothing runnable among {sorted(ready)}")
                continue
            outcome = results.get()
            running.pop(outcome.node_id)
            self._finish(sorter, done, outcome)
        return done

    def _decide(self, node: Node, done: Mapping[str, Outcome]) -> Reuse | str | None:
        blocked = [p for p in node.parents if not done[p].ok]
        if blocked:
            return f"needs {', '.join(blocked)}, which failed"
        return self._reusable(node, done)

    def _startable(self, ready: Mapping[str, Reuse | str | None], running: Mapping[str, bool]) -> list[str]:
        """Ready nodes that may start now: reuses and blocked nodes at once; builds within ``jobs``, one
        serial action at a time."""
        out: list[str] = []
        slots = self.jobs - len(running)
        serial_busy = any(running.values())
        for node_id, decision in ready.items():
            if decision is not None:
                out.append(node_id)
                continue
            if slots <= 0:
                continue
            if self.actions[self.graph.nodes[node_id].kind].serial:
                if serial_busy:
                    continue
                serial_busy = True
            slots -= 1
            out.append(node_id)
        return out

    def _finish(self, sorter: graphlib.TopologicalSorter[str], done: dict[str, Outcome], outcome: Outcome) -> None:
        done[outcome.node_id] = outcome
        sorter.done(outcome.node_id)
        self.reporter.finished(self.graph.nodes[outcome.node_id], outcome)

    # -- cache decisions: reads only ---------------------------------------------------------------
    def _reusable(self, node: Node, done: Mapping[str, Outcome]) -> Reuse | None:
        """A recorded success for today's key, else one reusable by early cutoff; None under ``--force``."""
        if self.force:
            return None
        entry = self.index.get(self.graph.keys[node.id])
        if (entry is not None and entry.ok and entry.artifact is not None
                and self.actions[node.kind].exists(entry.artifact)):
            return Reuse(entry)
        return self._same_content(node, done)

    def _same_content(self, node: Node, done: Mapping[str, Outcome]) -> Reuse | None:
        """Early cutoff: the node's last success, when its manifest differs from today's only in parent keys
        and every such parent now has the artifact it had then (reused as is, or rebuilt with the same
        ``content``)."""
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
        if previous.artifact is None or not self.actions[node.kind].exists(previous.artifact):
            return None
        return Reuse(previous, [f"input {p} rebuilt with the same content" for p in changed])

    # -- workers: every write happens here ----------------------------------------------------------
    def _work(self, node: Node, done: Mapping[str, Outcome], reuse: Reuse | None,
              results: queue.Queue[Outcome]) -> None:
        """Produce (or re-record) one node; always put exactly one outcome on ``results``."""
        key = self.graph.keys[node.id]
        log = log_path(self.build_dir / "logs", node)
        started = time.time()
        reasons: list[str] = []
        try:
            if reuse is not None:
                outcome = self._record_reuse(node, key, reuse, log)
            else:
                reasons = stale_reasons(self.graph, self.index, node.id) if not self.force else ["--force"]
                outcome = self._produce(node, key, done, log, started, reasons)
        except Exception as exc:  # one failing node must not stop the others
            outcome = self._failed(node, key, log, started, reasons, exc)
        results.put(outcome)

    def _record_reuse(self, node: Node, key: str, reuse: Reuse, log: Path) -> Outcome:
        """Put a reused artifact back in place (an image's tags) and record an early-cutoff reuse under
        today's key, so the next run is a plain hit."""
        entry = reuse.entry
        assert entry.artifact is not None  # a reuse was decided on an existing artifact
        restore = getattr(self.actions[node.kind], "restore", None)
        if restore is not None:
            restore(entry.artifact)
        if reuse.cutoff:
            self.index.record(key, node.id, node.kind, True, entry.artifact, self.graph.manifests[node.id],
                              time.time(), entry.log)
            if self.cache:  # other runners look the node up by today's key
                self.cache.store(node, key, entry.artifact, log)
        shown = str(self.build_dir / entry.log) if entry.log else None
        return Outcome(node.id, "cached", key, artifact=entry.artifact, log=shown, reasons=reuse.cutoff)

    def _produce(self, node: Node, key: str, done: Mapping[str, Outcome], log: Path, started: float,
                 reasons: list[str]) -> Outcome:
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
            parents = {p: Parent(p, self.graph.nodes[p].kind, _artifact_of(done[p]), self.graph.keys[p])
                       for p in node.parents}
            artifact = self.actions[node.kind].run(Step(node, key, parents, log, workdir, self.build_dir))
            if not isinstance(artifact, self.graph.kinds[node.kind].artifact):
                raise GuestforgeError(f"internal: {node.kind} produced a {type(artifact).__name__}")
            status = "verified" if self.graph.is_verification(node.id) else "built"
            if self.cache:
                self.cache.store(node, key, artifact, log)
        self.index.record(key, node.id, node.kind, True, artifact, self.graph.manifests[node.id], started,
                          self._rel(log))
        return Outcome(node.id, status, key, time.time() - started, artifact, str(log), reasons=reasons)

    def _rel(self, path: Path) -> str:
        """Paths the index keeps are relative to the build directory (it may move)."""
        try:
            return str(path.relative_to(self.build_dir))
        except ValueError:
            return str(path)

    def _failed(self, node: Node, key: str, log: Path, started: float, reasons: list[str],
                exc: Exception) -> Outcome:
        message = str(exc) if isinstance(exc, GuestforgeError) else f"internal error: {exc!r}"
        artifact = exc.artifact if isinstance(exc, ArtifactFailure) else None
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a") as out:
                out.write(f"\nFAILED: {message}\n")
                if not isinstance(exc, GuestforgeError):
                    out.write(traceback.format_exc())
            self.index.record(key, node.id, node.kind, False, artifact, self.graph.manifests[node.id], started,
                              self._rel(log))
        except Exception as secondary:  # noqa: BLE001 - still report the original failure
            message += f" (and recording it failed: {secondary!r})"
        return Outcome(node.id, "failed", key, time.time() - started, artifact, str(log), message, reasons)
