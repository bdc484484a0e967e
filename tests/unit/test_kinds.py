"""The registry of node kinds: every kind has an action, and its key's code inputs are its import closure."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from builder.graph.code import import_closure
from builder.graph.kinds import KINDS, Kind
from builder.graph.trees import WorkTree
from tests.conftest import ROOT

# Code that runs a graph but shapes no artifact: never in a node's closure, so editing it changes no key.
NOT_INPUTS = ("builder/graph/execute.py", "builder/graph/kinds.py", "builder/graph/index.py", "builder/session.py",
              "builder/report.py", "builder/progress.py", "builder/status.py", "builder/impact.py",
              # validating a matrix decides whether a build starts, never what it makes
              "builder/matrix/loader.py", "builder/matrix/checks.py", "builder/matrix/yamlsrc.py")


@pytest.mark.parametrize("kind", KINDS.values(), ids=list(KINDS))
def test_kind_action_and_closure(kind: Kind) -> None:
    module, _, name = kind.action.partition(":")
    cls = getattr(importlib.import_module(module), name)
    assert callable(getattr(cls, "run", None)) and callable(getattr(cls, "exists", None))
    closure = import_closure(WorkTree(ROOT), kind.code)
    assert f"{module.replace('.', '/')}.py" in closure
    assert "builder/graph/step.py" in closure and "builder/errors.py" in closure
    assert not [f for f in closure if f in NOT_INPUTS or f.startswith("builder/cli/")], closure
    if kind.image:
        assert "builder/oci/naming.py" in closure


def test_guest_base_closure_holds_the_agent_config() -> None:
    """The guest base writes ``environment()`` into the agent's unit (builder/vm/dib.py)."""
    closure = import_closure(WorkTree(ROOT), KINDS["guest-base"].code)
    assert {"builder/vm/dib.py", "builder/agent/config.py"} <= set(closure)


def test_every_kind_has_frozen_typed_models() -> None:
    """Values and artifacts are typed per kind, frozen, and refuse fields they do not declare."""
    from pydantic import ValidationError

    from builder.graph.step import Artifact, Values

    for k in KINDS.values():
        assert issubclass(k.values, Values) and issubclass(k.artifact, Artifact), k.name
        for model in (k.values, k.artifact):
            assert model.model_config.get("frozen") and model.model_config.get("extra") == "forbid", model
        with pytest.raises(ValidationError):
            k.load({"surely": "not a field"})


def test_graph_refuses_values_of_another_kind() -> None:
    from builder.errors import GuestforgeError
    from builder.graph.model import Graph
    from builder.graph.step import Node
    from builder.oci.values import DebugValues

    node = Node("base:x", "base", "base x", DebugValues(labels={}))
    with pytest.raises(GuestforgeError, match="kind base takes BaseValues"):
        Graph([node], WorkTree(ROOT), {})


def test_index_reads_an_artifact_of_an_older_shape_as_absent(tmp_path: Path) -> None:
    """A record written by an older guestforge is not trusted: the node runs again."""
    from builder.graph.index import Index
    from builder.oci.values import ImageArtifact

    index = Index(tmp_path / "index.sqlite")
    try:
        good = ImageArtifact(ref="guestforge/a:1-k", tag="guestforge/a:1", id="sha256:1", size=1, layers=())
        index.record("k1", "datastore:a", "datastore", True, good, {}, 0.0, None)
        index._db.execute("UPDATE results SET artifact=? WHERE key='k1'", ('{"ref": "x"}',))
        entry = index.get("k1")
        assert entry is not None and entry.ok and entry.artifact is None
        index.record("k2", "datastore:a", "datastore", True, good, {}, 0.0, None)
        again = index.get("k2")
        assert again is not None and again.artifact == good
    finally:
        index.close()


def test_declaring_and_planning_load_no_engine_or_runner() -> None:
    """Every command starts by declaring the graph: that must not load the Docker SDK, the suite runner or
    the tree builder (start-up time of `plan`, `validate`, `affected`, and the keys' import closures)."""
    import subprocess
    import sys

    probe = ("import sys\nfrom builder.cli.main import main\nimport builder.pipeline\n"
             "try:\n    main(['plan'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('docker', 'builder.verify.runner', 'builder.agent.bundle', 'cryptography')"
             " if m in sys.modules), file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr
