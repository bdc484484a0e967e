"""The registry of node kinds: each kind's action, the target it serves, and how its image is named.

Adding a kind is one entry here plus its action. The scheduler looks actions up by ``node.kind``; a
node's key hashes the import closure of its kind's ``code`` (the action module and the naming
module), so the registry itself is never part of any closure: adding a kind changes no existing key.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from builder.errors import GuestforgeError
from builder.graph.step import Action, RunContext

TargetName = Literal["oci", "vm", "baremetal"]
NAMING = "builder.oci.naming"


@dataclass(frozen=True)
class Kind:
    """One kind of node. ``action`` is ``module:Class``; the class is built with the run's context."""

    name: str
    action: str
    target: TargetName | None = None   # the target it serves; None: shared by every target
    verification: bool = False
    image: bool = False                # its artifact is an image named by builder.oci.naming

    @property
    def module(self) -> str:
        return self.action.partition(":")[0]

    @property
    def code(self) -> tuple[str, ...]:
        """The modules whose import closure shapes this kind's output."""
        return (self.module, NAMING) if self.image else (self.module,)

    def make(self, ctx: RunContext) -> Action:
        module, _, name = self.action.partition(":")
        cls = getattr(importlib.import_module(module), name)
        action: Action = cls(ctx)
        return action


def _kinds(*kinds: Kind) -> dict[str, Kind]:
    return {k.name: k for k in kinds}


KINDS: Mapping[str, Kind] = _kinds(
    Kind("base", "builder.oci.steps:BaseAction", image=True),
    Kind("debug", "builder.oci.steps:DebugAction", image=True),
    Kind("datastore", "builder.oci.steps:DatastoreAction", image=True),
    Kind("upstream", "builder.oci.steps:UpstreamAction", image=True),
    Kind("exporter", "builder.oci.steps:ExporterAction", image=True),
    Kind("agent-tree", "builder.actions:AgentTreeAction"),
    Kind("agent-image", "builder.actions:AgentImageAction", image=True),
    Kind("aio", "builder.oci.steps:AllInOneAction", target="oci", image=True),
    Kind("bundle", "builder.k8s.action:BundleAction", target="oci"),
    Kind("verify-datastore", "builder.verify.steps:VerifyAction", target="oci", verification=True),
    Kind("verify-agent", "builder.verify.steps:VerifyAction", target="oci", verification=True),
    Kind("verify-aio", "builder.verify.steps:VerifyAction", target="oci", verification=True),
    Kind("verify-bundle", "builder.verify.bundle:VerifyBundleAction", target="oci", verification=True),
    Kind("guest-base", "builder.vm.steps:GuestBaseAction"),
    Kind("guest-image", "builder.vm.steps:GuestImageAction"),
    Kind("verify-vm", "builder.vm.steps:GuestVerifyAction", target="vm", verification=True),
    Kind("verify-baremetal", "builder.vm.steps:GuestVerifyAction", target="baremetal", verification=True),
    Kind("verify-boot", "builder.vm.steps:BootAction", target="vm", verification=True),
    Kind("publish-oci", "builder.publish.actions:PublishImagesAction", target="oci"),
    Kind("publish-disk", "builder.publish.actions:PublishDiskAction"),
)


def kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise GuestforgeError(f"internal: unknown node kind {name!r} (known: {', '.join(KINDS)})") from None


def actions_for(kinds: set[str], ctx: RunContext) -> dict[str, Action]:
    """One action per kind used by a run (kinds sharing a class share nothing: each gets its own)."""
    return {name: kind(name).make(ctx) for name in sorted(kinds)}
