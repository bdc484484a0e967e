"""One command run: matrix -> cells -> declared graph -> executor -> report.

Spec (matrix, cells) stays apart from context (build dir, engine, index); the CLI
and the tests call ``run_graph``/``declare_graph`` directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from builder.cache.transport import RegistryOptions
from builder.graph.execute import Executor, Outcome, RemoteCache
from builder.graph.index import Index, build_lock
from builder.graph.kinds import actions_for
from builder.graph.model import Graph
from builder.graph.step import RunContext
from builder.graph.trees import Tree, WorkTree
from builder.hostenv.apt import MirrorError, host_mirrors
from builder.hostenv.pip import host_index_url
from builder.hostenv.tools import tool_versions
from builder.matrix.models import ALL_TARGETS, Matrix, Target
from builder.paths import REPO
from builder.pipeline import HostInputs, declare
from builder.plan import Cell, expand, select
from builder.progress import ConsoleReporter
from builder.report import Row, print_table, rows, write_report


@dataclass(frozen=True)
class Options:
    """``build_dir`` is made absolute here, once: every path below it is recorded relative to it."""

    build_dir: Path
    jobs: int = 2
    force: bool = False
    cache_registry: str | None = None
    registry: RegistryOptions = RegistryOptions()  # trust and patience for every registry this run talks to
    sign_key: Path | None = None  # publish signs what it pushes with this key

    def __post_init__(self) -> None:
        object.__setattr__(self, "build_dir", self.build_dir.resolve())


def host_inputs() -> HostInputs:
    try:
        mirrors = host_mirrors()
    except MirrorError:
        mirrors = None  # only an error if a base without its own mirror is declared
    from builder.vm.hostcaps import probe_device_mapper

    return HostInputs(mirrors, host_index_url(), "dib" if probe_device_mapper() else "guestfs")


def declare_graph(matrix: Matrix, cells: Sequence[Cell], targets: Sequence[Target], verify: bool,
                  tree: Tree | None = None, host: HostInputs | None = None,
                  tools: Mapping[str, str] | None = None,
                  publish: tuple[str, str] | None = None,
                  image_prefix: str | None = None) -> tuple[Graph, list[str]]:
    nodes, wanted = declare(matrix, cells, targets, tree or WorkTree(REPO), host or host_inputs(), verify,
                            publish, image_prefix)
    versions = tools if tools is not None else tool_versions(t for n in nodes for t in n.tools)
    return Graph(nodes, tree or WorkTree(REPO), versions), wanted


def pick(matrix: Matrix, selectors: Sequence[str], target: Target | None) -> tuple[list[Cell], list[Target]]:
    cells = select(expand(matrix), selectors, target)
    return cells, [target] if target else list(ALL_TARGETS)


@dataclass
class RunResult:
    graph: Graph
    outcomes: dict[str, Outcome]
    table: list[Row]
    report: Path
    seconds: float
    build_dir: Path

    def path(self, rel: str) -> Path:
        """A path an artifact recorded (relative to the build directory), made absolute."""
        return self.build_dir / rel

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes.values())


def run_graph(command: str, graph: Graph, wanted: list[str], options: Options,
              engine: Callable[[], object] | None = None, console: Console | None = None,
              cache: RemoteCache | None = None) -> RunResult:
    """Execute ``wanted`` (and what it needs) under the build-dir lock; write the JSON report. ``engine``
    makes the container engine connection, on first use (default: ``builder.oci.engine.Engine``)."""
    console = console or Console(stderr=True)
    started = time.monotonic()
    if engine is None:
        from builder.oci.engine import Engine

        engine = Engine
    with build_lock(options.build_dir):
        index = Index(options.build_dir / "index.sqlite")
        try:
            closure = graph.closure(wanted)
            actions = actions_for({graph.nodes[n].kind for n in closure}, RunContext(options.build_dir, engine,
                                                                                options.registry, options.sign_key))
            with ConsoleReporter(console, len(closure)) as reporter:
                executor = Executor(graph, actions, index, options.build_dir, reporter,
                                    jobs=options.jobs, force=options.force, cache=cache)
                outcomes = executor.run(wanted)
        finally:
            index.close()
    seconds = time.monotonic() - started
    table = rows(graph, outcomes)
    report = write_report(options.build_dir, command, table, seconds)
    print_table(console, table)
    return RunResult(graph, outcomes, table, report, seconds, options.build_dir)
