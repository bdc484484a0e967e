"""The registry of node kinds: every kind has an action, and its key's code inputs are its import closure."""

from __future__ import annotations

import importlib

import pytest

from builder.graph.code import import_closure
from builder.graph.kinds import KINDS, Kind
from builder.graph.trees import WorkTree
from tests.conftest import ROOT

# Code that runs a graph but shapes no artifact: never in a node's closure, so editing it changes no key.
NOT_INPUTS = ("builder/graph/execute.py", "builder/graph/kinds.py", "builder/graph/index.py", "builder/session.py",
              "builder/report.py", "builder/progress.py", "builder/status.py", "builder/impact.py")


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
