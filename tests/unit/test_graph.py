"""The build graph: keys from exactly the declared inputs, skip what is done, isolate failures, lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ConfigDict

from builder.errors import BuildError
from builder.graph.execute import Executor, Outcome
from builder.graph.index import Index, LockedError, build_lock
from builder.graph.kinds import Kind
from builder.graph.model import Graph, diff_manifests
from builder.graph.step import Action, Artifact, Node, Step, Values


class FreeValues(Values):
    """Any values (a test's stand-in for a kind's model)."""

    model_config = ConfigDict(frozen=True, extra="allow")


class FakeArtifact(Artifact):
    id: str
    parents: tuple[str, ...]
    out: str | None = None

    def content(self) -> str | None:
        return self.out


KINDS = {"base": Kind("base", FreeValues, "pkg.base:Action", FakeArtifact),
         "ds": Kind("ds", FreeValues, "pkg.ds:Action", FakeArtifact),
         "verify": Kind("verify", FreeValues, "pkg.verify:Action", FakeArtifact, verification=True)}


def v(**values: object) -> FreeValues:
    return FreeValues(**values)


class DictTree:
    def __init__(self, files: dict[str, bytes]):
        self.files_ = files

    def read(self, rel: str) -> bytes | None:
        return self.files_.get(rel)

    def files(self, rel_dir: str) -> list[str]:
        return sorted(f for f in self.files_ if f.startswith(rel_dir + "/"))


class Reporter:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.outcomes: dict[str, Outcome] = {}

    def started(self, node: Node, reasons: list[str]) -> None:
        self.seen.append(node.id)

    def finished(self, node: Node, outcome: Outcome) -> None:
        self.outcomes[node.id] = outcome


class FakeAction:
    serial = False

    def __init__(self, fail: set[str] | None = None):
        self.fail = fail or set()
        self.ran: list[str] = []
        self.present = True

    def run(self, step: Step) -> FakeArtifact:
        self.ran.append(step.node.id)
        if step.node.id in self.fail:
            raise BuildError("boom", str(step.log))
        return FakeArtifact(id=f"id-{step.key[:8]}", parents=tuple(sorted(step.parents)))

    def exists(self, artifact: Artifact) -> bool:
        return self.present


def nodes() -> list[Node]:
    return [
        Node("base:a", "base", "base a", v(suite="bookworm"), files=("rootfs.py",)),
        Node("ds:pg", "ds", "pg", v(pkgs=["pg"]), cell="pg", parents=("base:a",), files=("pg.j2",)),
        Node("ds:redis", "ds", "redis", v(pkgs=["redis"]), cell="redis", parents=("base:a",),
             files=("redis.j2",)),
        Node("verify:pg", "verify", "verify pg", v(), cell="pg", parents=("ds:pg",), files=("test_pg.py",)),
    ]


FILES = {"rootfs.py": b"1", "pg.j2": b"FROM x", "redis.j2": b"FROM y", "test_pg.py": b"def test(): pass"}


def graph(files: dict[str, bytes] | None = None, node_list: list[Node] | None = None) -> Graph:
    return Graph(node_list or nodes(), DictTree(files or FILES), {"docker": "20.10"}, KINDS)


def test_key_changes_only_with_own_inputs() -> None:
    before = graph()
    after = graph({**FILES, "redis.j2": b"FROM z", "README.md": b"new"})
    assert before.keys["ds:pg"] == after.keys["ds:pg"]
    assert before.keys["verify:pg"] == after.keys["verify:pg"]
    assert before.keys["ds:redis"] != after.keys["ds:redis"]
    bumped = graph({**FILES, "rootfs.py": b"2"})
    assert all(bumped.keys[n] != before.keys[n] for n in before.keys)  # parent key flows to children
    test_change = graph({**FILES, "test_pg.py": b"def test(): assert 0"})
    assert [n for n in before.keys if before.keys[n] != test_change.keys[n]] == ["verify:pg"]


def test_diff_explains_why() -> None:
    a, b = graph(), graph({**FILES, "pg.j2": b"FROM other"})
    assert diff_manifests(a.manifests["ds:pg"], b.manifests["ds:pg"]) == ["file pg.j2 changed"]
    c = Graph([*nodes()[:1], Node("ds:pg", "ds", "pg", v(pkgs=["pg", "x"]), parents=("base:a",),
                                  files=("pg.j2",))], DictTree(FILES), {"docker": "20.10"}, KINDS)
    assert diff_manifests(a.manifests["ds:pg"], c.manifests["ds:pg"]) == ["pkgs: ['pg'] -> ['pg', 'x']"]


def test_code_inputs_are_the_import_closure_of_the_action() -> None:
    """A module the action imports (directly, lazily in a function, or through a package initialiser) is a
    key input; one it does not import, or imports only for type checking, is not."""
    code = {
        "builder/__init__.py": b"",
        "builder/graph/__init__.py": b"",
        "builder/graph/execute.py": b"from builder.graph import step\n",        # the scheduler
        "builder/graph/step.py": b"import builder.errors\n",
        "builder/errors.py": b"",
        "builder/ds.py": b"from builder.graph.step import Step\ndef run():\n    from builder import helper\n",
        "builder/helper.py": b"from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import builder.cli\n",
        "builder/cli.py": b"import builder.graph.execute\n",
    }
    kinds = {**KINDS, "ds": Kind("ds", FreeValues, "builder.ds:Action", FakeArtifact)}
    listed = [Node("ds:pg", "ds", "pg", v(pkgs=["pg"]), files=("pg.j2",))]

    def build(files: dict[str, bytes]) -> Graph:
        return Graph(listed, DictTree({**FILES, **code, **files}), {}, kinds)

    before = build({})
    assert sorted(before.manifests["ds:pg"]["code"]) == [
        "builder/__init__.py", "builder/ds.py", "builder/errors.py", "builder/graph/__init__.py",
        "builder/graph/step.py", "builder/helper.py"]
    after = build({"builder/helper.py": code["builder/helper.py"] + b"# changed\n"})
    assert diff_manifests(before.manifests["ds:pg"], after.manifests["ds:pg"]) == [
        "code builder/helper.py changed (in the import closure of its action)"]
    for untouched in ("builder/cli.py", "builder/graph/execute.py"):
        assert build({untouched: b"# edited\n"}).keys == before.keys


def run(tmp_path: Path, g: Graph, action: FakeAction, wanted: list[str], force: bool = False,
        jobs: int = 2) -> tuple[dict[str, Outcome], Reporter]:
    reporter = Reporter()
    index = Index(tmp_path / "index.sqlite", KINDS)
    try:
        actions: dict[str, Action] = {"base": action, "ds": action, "verify": action}
        out = Executor(g, actions, index, tmp_path, reporter, jobs=jobs, force=force).run(wanted)
    finally:
        index.close()
    return out, reporter


def test_second_run_skips_everything(tmp_path: Path) -> None:
    action = FakeAction()
    first, _ = run(tmp_path, graph(), action, ["verify:pg", "ds:redis"])
    assert {o.status for o in first.values()} == {"built", "verified"}
    assert sorted(action.ran) == ["base:a", "ds:pg", "ds:redis", "verify:pg"]
    action.ran.clear()
    second, _ = run(tmp_path, graph(), action, ["verify:pg", "ds:redis"])
    assert action.ran == [] and {o.status for o in second.values()} == {"cached"}
    action.present = False  # artifacts deleted behind our back: rebuild
    run(tmp_path, graph(), action, ["ds:redis"])
    assert action.ran == ["base:a", "ds:redis"]


def test_changed_input_rebuilds_only_that_cell(tmp_path: Path) -> None:
    action = FakeAction()
    run(tmp_path, graph(), action, ["verify:pg", "ds:redis"])
    action.ran.clear()
    run(tmp_path, graph({**FILES, "pg.j2": b"FROM changed"}), action, ["verify:pg", "ds:redis"])
    assert action.ran == ["ds:pg", "verify:pg"]


def test_failure_blocks_descendants_only(tmp_path: Path) -> None:
    action = FakeAction(fail={"ds:pg"})
    out, _ = run(tmp_path, graph(), action, ["verify:pg", "ds:redis"])
    assert out["ds:pg"].status == "failed" and "boom" in (out["ds:pg"].error or "")
    assert out["verify:pg"].status == "blocked"
    assert out["ds:redis"].status == "built"
    log = Path(out["ds:pg"].log or "")
    assert "FAILED: boom" in log.read_text()
    action.fail.clear()  # failures are not cached: the next run retries
    action.ran.clear()
    out, _ = run(tmp_path, graph(), action, ["verify:pg", "ds:redis"])
    assert action.ran == ["ds:pg", "verify:pg"] and out["verify:pg"].status == "verified"


def test_force_rebuilds(tmp_path: Path) -> None:
    action = FakeAction()
    run(tmp_path, graph(), action, ["ds:pg"])
    action.ran.clear()
    run(tmp_path, graph(), action, ["ds:pg"], force=True)
    assert action.ran == ["base:a", "ds:pg"]


class ContentAction(FakeAction):
    """Artifacts that name their content: the base's is its ``out`` value, whatever its key."""

    def run(self, step: Step) -> FakeArtifact:
        artifact = super().run(step)
        out = step.node.values.model_dump().get("out")
        return artifact.model_copy(update={"out": out})


def content_graph(rootfs: bytes = b"1", out: str = "tree-1", pg: bytes = b"FROM x") -> Graph:
    listed = nodes()
    listed[0] = Node("base:a", "base", "base a", v(suite="bookworm", out=out), files=("rootfs.py",))
    return graph({**FILES, "rootfs.py": rootfs, "pg.j2": pg}, listed)


def test_parent_rebuilt_to_the_same_content_cuts_off(tmp_path: Path) -> None:
    action = ContentAction()
    run(tmp_path, content_graph(), action, ["verify:pg", "ds:redis"])
    action.ran.clear()
    changed = content_graph(rootfs=b"1 # a comment")
    out, _ = run(tmp_path, changed, action, ["verify:pg", "ds:redis"])
    assert action.ran == ["base:a"], "only the changed node is rebuilt"
    assert {out[n].status for n in ("ds:pg", "ds:redis", "verify:pg")} == {"cached"}
    assert out["ds:pg"].reasons == ["input base:a rebuilt with the same content"]
    assert out["ds:pg"].key == changed.keys["ds:pg"] != content_graph().keys["ds:pg"]
    action.ran.clear()
    again, _ = run(tmp_path, changed, action, ["verify:pg", "ds:redis"])
    assert action.ran == [] and {o.status for o in again.values()} == {"cached"}


def test_parent_rebuilt_to_other_content_rebuilds_below(tmp_path: Path) -> None:
    action = ContentAction()
    run(tmp_path, content_graph(), action, ["verify:pg", "ds:redis"])
    action.ran.clear()
    run(tmp_path, content_graph(rootfs=b"2", out="tree-2"), action, ["verify:pg", "ds:redis"])
    assert sorted(action.ran) == ["base:a", "ds:pg", "ds:redis", "verify:pg"]


def test_no_cutoff_when_own_inputs_changed_too_or_forced(tmp_path: Path) -> None:
    action = ContentAction()
    run(tmp_path, content_graph(), action, ["verify:pg", "ds:redis"])
    action.ran.clear()
    run(tmp_path, content_graph(rootfs=b"1 # a", pg=b"FROM other"), action, ["verify:pg", "ds:redis"])
    assert action.ran == ["base:a", "ds:pg", "verify:pg"]
    action.ran.clear()
    run(tmp_path, content_graph(rootfs=b"1 # b", pg=b"FROM other"), action, ["verify:pg"], force=True)
    assert action.ran == ["base:a", "ds:pg", "verify:pg"]


def test_no_cutoff_without_a_content_field(tmp_path: Path) -> None:
    action = FakeAction()   # artifacts carry no content: a rebuilt parent is a different parent
    run(tmp_path, content_graph(), action, ["ds:pg"])
    action.ran.clear()
    run(tmp_path, content_graph(rootfs=b"1 # a comment"), action, ["ds:pg"])
    assert action.ran == ["base:a", "ds:pg"]


def test_parallel_independent_nodes(tmp_path: Path) -> None:
    class Slow(FakeAction):
        def run(self, step: Step) -> FakeArtifact:
            time.sleep(0.3)
            return super().run(step)

    many = [Node(f"n{i}", "ds", f"n{i}", v(i=i)) for i in range(4)]
    started = time.monotonic()
    out, _ = run(tmp_path, graph(node_list=many), Slow(), [n.id for n in many], jobs=4)
    assert time.monotonic() - started < 1.0 and all(o.status == "built" for o in out.values())


def test_lock_refuses_second_run(tmp_path: Path) -> None:
    with build_lock(tmp_path):
        with pytest.raises(LockedError, match="in use by another guestforge run"):
            with build_lock(tmp_path):
                pass
    with build_lock(tmp_path):  # released after use
        pass


def test_killed_run_leaves_no_success_entry(tmp_path: Path) -> None:
    """kill -9 in the middle of a node: the index has no entry for it and the next run builds it."""
    script = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from tests.unit.test_graph import graph, FakeAction, run
from pathlib import Path
class Hang(FakeAction):
    def run(self, step):
        if step.node.id == "ds:pg":
            print("hanging", flush=True); time.sleep(60)
        return super().run(step)
run(Path({str(tmp_path)!r}), graph(), Hang(), ["ds:pg"], jobs=1)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"hanging"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    index = Index(tmp_path / "index.sqlite")
    g = graph()
    assert index.get(g.keys["base:a"]) is not None and index.get(g.keys["ds:pg"]) is None
    index.close()
    action = FakeAction()
    run(tmp_path, g, action, ["ds:pg"])
    assert action.ran == ["ds:pg"]


def test_previous_attempt_log_is_kept(tmp_path: Path) -> None:
    failing = FakeAction(fail={"ds:pg"})
    out, _ = run(tmp_path, graph(), failing, ["ds:pg"])
    log = Path(out["ds:pg"].log or "")
    run(tmp_path, graph(), FakeAction(), ["ds:pg"])
    assert "FAILED: boom" in log.with_name(log.stem + ".previous.log").read_text()
    assert "FAILED" not in log.read_text()
