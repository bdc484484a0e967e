"""The registry of node kinds: each kind's values model, action, artifact model and the target it serves.

Adding a kind is one entry here plus its action and its two models. The graph checks every node's
values against its kind's model, the scheduler looks actions up by ``node.kind``, the index and the
remote cache read artifacts back as the kind's model. A node's key hashes the import closure of its
kind's ``code`` (the action module, which imports its models, and the naming module), so the registry
itself is never part of any closure: adding a kind changes no existing key.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from builder.errors import GuestforgeError
from builder.agent.values import AgentTreeArtifact, AgentTreeValues
from builder.graph.step import Action, Artifact, RunContext, Values
from builder.k8s.values import BundleArtifact, BundleCheckArtifact, BundleValues
from builder.oci.values import (AgentImageValues, AllInOneValues, BaseValues, DatastoreValues, DebugValues,
                                ExporterValues, ImageArtifact, UpstreamValues)
from builder.publish.values import PublishDiskValues, PublishedDisk, PublishedImages, PublishImagesValues
from builder.verify.values import SuiteArtifact, SuiteValues
from builder.vm.values import (BootArtifact, BootValues, GuestBaseArtifact, GuestBaseValues, GuestCheckArtifact,
                               GuestCheckValues, GuestImagesArtifact, GuestImageValues)

TargetName = Literal["oci", "vm", "baremetal"]
NAMING = "builder.oci.naming"


@dataclass(frozen=True)
class Kind:
    """One kind of node. ``action`` is ``module:Class``; the class is built with the run's context."""

    name: str
    values: type[Values]
    action: str
    artifact: type[Artifact]
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

    def load(self, record: Mapping[str, object]) -> Artifact:
        """An artifact recorded as JSON (index, remote cache), as this kind's model."""
        return self.artifact.model_validate(record)

    def make(self, ctx: RunContext) -> Action:
        module, _, name = self.action.partition(":")
        cls = getattr(importlib.import_module(module), name)
        action: Action = cls(ctx)
        return action


def _kinds(*kinds: Kind) -> dict[str, Kind]:
    return {k.name: k for k in kinds}


IMAGE = ImageArtifact
KINDS: Mapping[str, Kind] = _kinds(
    Kind("base", BaseValues, "builder.oci.steps:BaseAction", IMAGE, image=True),
    Kind("debug", DebugValues, "builder.oci.steps:DebugAction", IMAGE, image=True),
    Kind("datastore", DatastoreValues, "builder.oci.steps:DatastoreAction", IMAGE, image=True),
    Kind("upstream", UpstreamValues, "builder.oci.steps:UpstreamAction", IMAGE, image=True),
    Kind("exporter", ExporterValues, "builder.oci.steps:ExporterAction", IMAGE, image=True),
    Kind("agent-tree", AgentTreeValues, "builder.actions:AgentTreeAction", AgentTreeArtifact),
    Kind("agent-image", AgentImageValues, "builder.actions:AgentImageAction", IMAGE, image=True),
    Kind("aio", AllInOneValues, "builder.oci.steps:AllInOneAction", IMAGE, target="oci", image=True),
    Kind("bundle", BundleValues, "builder.k8s.action:BundleAction", BundleArtifact, target="oci"),
    Kind("verify-datastore", SuiteValues, "builder.verify.steps:VerifyAction", SuiteArtifact, target="oci",
         verification=True),
    Kind("verify-agent", SuiteValues, "builder.verify.steps:VerifyAction", SuiteArtifact, target="oci",
         verification=True),
    Kind("verify-aio", SuiteValues, "builder.verify.steps:VerifyAction", SuiteArtifact, target="oci",
         verification=True),
    Kind("verify-bundle", SuiteValues, "builder.verify.bundle:VerifyBundleAction", BundleCheckArtifact,
         target="oci", verification=True),
    Kind("guest-base", GuestBaseValues, "builder.vm.steps:GuestBaseAction", GuestBaseArtifact),
    Kind("guest-image", GuestImageValues, "builder.vm.steps:GuestImageAction", GuestImagesArtifact),
    Kind("verify-vm", GuestCheckValues, "builder.vm.steps:GuestVerifyAction", GuestCheckArtifact, target="vm",
         verification=True),
    Kind("verify-baremetal", GuestCheckValues, "builder.vm.steps:GuestVerifyAction", GuestCheckArtifact,
         target="baremetal", verification=True),
    Kind("verify-boot", BootValues, "builder.vm.steps:BootAction", BootArtifact, target="vm", verification=True),
    Kind("publish-oci", PublishImagesValues, "builder.publish.actions:PublishImagesAction", PublishedImages,
         target="oci"),
    Kind("publish-disk", PublishDiskValues, "builder.publish.actions:PublishDiskAction", PublishedDisk),
)


def kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise GuestforgeError(f"internal: unknown node kind {name!r} (known: {', '.join(KINDS)})") from None


def actions_for(kinds: set[str], ctx: RunContext) -> dict[str, Action]:
    """One action per kind used by a run (kinds sharing a class share nothing: each gets its own)."""
    return {name: kind(name).make(ctx) for name in sorted(kinds)}
