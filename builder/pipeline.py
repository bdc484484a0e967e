"""Declare the build graph for a matrix: every node with exactly the inputs it reads.

Pure: no engine, no network. ``affected`` runs this against a git revision and
against the work tree and compares keys, so everything a node's output depends on
is declared here (values, the templates, elements and suites it reads, tools,
parents) and nothing else. The Python code a node runs is not listed: its key
hashes the import closure of its kind's action (``builder.graph.code``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from builder.agent.values import AgentTreeValues, PipIndex
from builder.graph.step import Node
from builder.graph.trees import Tree
from builder.hostenv.apt import Mirrors
from builder.matrix.models import Matrix, Target
from builder.oci.rootfs import DPKG_OPTIONS, resolve
from builder.oci.values import (AgentAccount, AgentImageValues, AllInOneValues, BaseValues, CellName,
                                DatastoreValues, DebugValues, ExporterValues, UpstreamValues)
from builder.k8s.resources import resolve as resolve_resources
from builder.k8s.values import BundleValues
from builder.plan import Cell
from builder.publish.values import PublishDiskValues, PublishImagesValues
from builder.verify.values import SuiteValues
from builder.spec import ExporterSpec
from builder.vm.values import BootValues, GuestBaseValues, GuestCheckValues, GuestImageValues, GuestOS
from builder.vm.hostcaps import Assembly
from builder.vm.values import Target as VmTarget

MACROS = "container_specs/_macros.j2"
VM_TOOLS = ("diskimage-builder", "qemu-img", "libguestfs")
VM_TARGETS: tuple[VmTarget, ...] = ("vm", "baremetal")
DEFAULT_IMAGE_PREFIX = "localhost/guestforge"   # see builder.k8s.action
# pytest loads these for every suite under tests/infra (rootdir first), without an import.
INFRA_CONFTESTS = ("tests/conftest.py", "tests/infra/conftest.py")


@dataclass(frozen=True)
class HostInputs:
    """What the build host contributes to outputs: its apt mirrors, pip index and disk assembly path
    (DIB's block-device path where device-mapper works, else libguestfs: the disk layouts differ)."""

    mirrors: Mirrors | None
    pip_index: str | None
    assembly: Assembly = "guestfs"


def _labels(title: str, version: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        "org.opencontainers.image.title": title,
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.vendor": "guestforge",
        **extra,
    }


class Declarer:
    """Builds the node list for a set of cells; shared nodes (bases, agent, exporters) appear once."""

    def __init__(self, matrix: Matrix, tree: Tree, host: HostInputs, image_prefix: str | None = None):
        self.matrix, self.tree, self.host = matrix, tree, host
        self.image_prefix = image_prefix or DEFAULT_IMAGE_PREFIX
        self.nodes: dict[str, Node] = {}

    def element_files(self, name: str) -> list[str]:
        """An element's files, minus its README: DIB never reads it, so it shapes no image."""
        return [f for f in self.tree.files(f"elements/{name}") if not f.rsplit("/", 1)[-1].startswith("README")]

    def add(self, node: Node) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    # -- shared nodes ---------------------------------------------------------------------------
    def base(self, name: str) -> str:
        resolved = resolve(name, self.matrix.bases[name], self.host.mirrors)
        return self.add(Node(
            id=f"base:{name}", kind="base", title=f"base {name}",
            values=BaseValues(name=name, suite=resolved.suite, sources=tuple(resolved.sources()),
                              archive=resolved.archive, security=resolved.security,
                              components=resolved.components, dpkg_options=DPKG_OPTIONS, apt=resolved.apt),
            tools=("mmdebstrap", "docker"),
        ))

    def debug(self) -> str:
        return self.add(Node(
            id="debug", kind="debug", title="debug/sandbox image", parents=(self.base(self.matrix.agent.base),),
            values=DebugValues(labels=_labels("guestforge debug", "1", {"io.guestforge.role": "debug"})),
            files=(MACROS, "container_specs/debug.Containerfile.j2"), tools=("docker",),
        ))

    def agent_tree(self) -> str:
        agent = self.matrix.agent
        return self.add(Node(
            id="agent-tree", kind="agent-tree", title=f"agent tree {agent.package} {agent.version}",
            parents=(self.base(agent.base),),
            values=AgentTreeValues(agent=agent, pip=PipIndex(index_url=agent.index_url or self.host.pip_index)),
            files=(MACROS, "container_specs/agent-build.Containerfile.j2", *self.tree.files("container_specs/agent")),
            tools=("docker",),
        ))

    def agent_image(self) -> str:
        agent = self.matrix.agent
        labels = _labels(f"guestforge {agent.package} guest agent", agent.version,
                         {"io.guestforge.role": "agent", "io.guestforge.agent.version": agent.version})
        return self.add(Node(
            id="agent-image", kind="agent-image", title=f"agent image {agent.package} {agent.version}",
            parents=(self.base(agent.base), self.agent_tree()),
            values=AgentImageValues(agent=agent, labels=labels),
            files=(MACROS, "container_specs/agent.Containerfile.j2"),
            tools=("docker",),
        ))

    def exporter(self, name: str) -> str:
        exporter = self.matrix.exporters[name]
        return self.add(Node(
            id=f"exporter:{name}", kind="exporter", title=f"exporter {name}", parents=(self.base(exporter.base),),
            values=ExporterValues(exporter=ExporterSpec(name=name, **exporter.model_dump()),
                                  labels=_labels(f"guestforge {name}", "1", {"io.guestforge.role": "exporter",
                                                                             "io.guestforge.exporter": name})),
            files=(MACROS, "container_specs/exporter.Containerfile.j2"), tools=("docker",),
        ))

    # -- per-cell OCI nodes ---------------------------------------------------------------------
    def datastore(self, cell: Cell) -> str:
        if cell.image:
            return self.add(Node(
                id=f"datastore:{cell.name}", kind="upstream", title=f"{cell.name} upstream image", cell=cell.name,
                values=UpstreamValues(image=cell.image, cell=cell.spec()), tools=("docker",),
            ))
        assert cell.base_name is not None
        agent = self.matrix.agent
        labels = _labels(f"guestforge {cell.datastore} {cell.version}", cell.version, {
            "io.guestforge.role": "datastore", "io.guestforge.cell": cell.name,
            "io.guestforge.datastore": cell.datastore, "io.guestforge.version": cell.version,
            "io.guestforge.flavor": cell.flavor,
        })
        return self.add(Node(
            id=f"datastore:{cell.name}", kind="datastore", title=f"{cell.name} datastore image", cell=cell.name,
            parents=(self.base(cell.base_name),),
            values=DatastoreValues(cell=cell.spec(), labels=labels, agent=AgentAccount(
                user=agent.user, uid=agent.uid, log_dir=agent.log_dir, config_dir=agent.config_dir)),
            files=(MACROS, "container_specs/datastore.Containerfile.j2",
                   *self.tree.files("container_specs/flavors/common"),
                   *self.tree.files(f"container_specs/flavors/{cell.flavor}")),
            tools=("docker",),
        ))

    def allinone(self, cell: Cell) -> str:
        agent = self.matrix.agent
        return self.add(Node(
            id=f"aio:{cell.name}", kind="aio", title=f"{cell.name} all-in-one image (agent layer on top)",
            cell=cell.name, parents=(self.datastore(cell), self.agent_tree()),
            values=AllInOneValues(cell=CellName(datastore=cell.datastore, version=cell.version),
                                  labels={"io.guestforge.agent.version": agent.version,
                                          "io.guestforge.role": "allinone"}),
            tools=("docker",),
        ))

    def bundle(self, cell: Cell) -> str:
        """The agent's nodes are parents only when a pod can run the agent: otherwise no file of the bundle
        depends on them, and an agent change must not re-render (and re-play) every cell's bundle."""
        in_pod = self.matrix.agent.runs_in_pod
        return self.add(Node(
            id=f"bundle:{cell.name}", kind="bundle", title=f"{cell.name} Kubernetes bundle", cell=cell.name,
            parents=(self.datastore(cell), self.exporter(cell.exporter_name),
                     *((self.agent_image(), self.agent_tree()) if in_pod else ())),
            values=BundleValues(cell=cell.spec(exporter=True), agent=self.matrix.agent,
                                agent_in_pod=self.matrix.agent.runs_in_pod, image_prefix=self.image_prefix,
                                resources=resolve_resources(cell.flavor, cell.resources)),
        ))

    # -- verification nodes ---------------------------------------------------------------------
    def suites(self, *names: str) -> tuple[str, ...]:
        """The testinfra files a verification runs (those that exist under ``tests/infra``)."""
        return tuple(f"tests/infra/{n}" for n in names if self.tree.read(f"tests/infra/{n}") is not None)

    def _verify(self, kind: str, node_id: str, title: str, cell: Cell | None, parents: tuple[str, ...],
                values: SuiteValues | GuestCheckValues | BootValues) -> str:
        """A verification node: its ``suites`` are the testinfra files it runs (what they import, and the
        conftest files pytest loads, are hashed too), so a comment in another datastore's suite changes
        nothing here."""
        run = values.suites
        conftests = [c for c in (*INFRA_CONFTESTS, *{f"{s.rsplit('/', 1)[0]}/conftest.py" for s in run})
                     if self.tree.read(c) is not None]
        return self.add(Node(
            id=node_id, kind=kind, title=title, cell=cell.name if cell else None, parents=parents,
            values=values, files=tuple(dict.fromkeys((*run, *conftests))),
        ))

    def verify_datastore(self, cell: Cell) -> str:
        return self._verify(
            "verify-datastore", f"verify-datastore:{cell.name}", f"{cell.name} verify database+exporter", cell,
            (self.datastore(cell), self.exporter(cell.exporter_name), self.debug()),
            SuiteValues(cell=cell.spec(exporter=True), suites=self.suites(
                "test_image_hygiene.py", "test_datastore.py", "test_exporter.py", f"flavors/test_{cell.flavor}.py")),
        )

    def verify_bundle(self, cell: Cell) -> str:
        """Play the shipped bundle on podman (``builder.verify.bundle``); the images' own suites come first."""
        return self._verify(
            "verify-bundle", f"verify-bundle:{cell.name}", f"{cell.name} verify Kubernetes bundle on podman", cell,
            # The play reads its images from the bundle's record: the bundle is what decides them.
            (self.bundle(cell), self.datastore(cell), self.exporter(cell.exporter_name), self.verify_datastore(cell)),
            SuiteValues(cell=cell.spec(exporter=True), suites=self.suites("bundle/test_bundle.py")),
        )

    def verify_agent(self) -> str:
        return self._verify(
            "verify-agent", "verify-agent", "verify agent image", None,
            (self.agent_image(), self.agent_tree(), self.debug()),
            SuiteValues(agent=self.matrix.agent, suites=self.suites("test_agent.py")),
        )

    def verify_allinone(self, cell: Cell) -> str:
        return self._verify(
            "verify-aio", f"verify-aio:{cell.name}", f"{cell.name} verify all-in-one image", cell,
            # The agent and datastore suites scanned the two halves; this one checks how they join.
            (self.allinone(cell), self.datastore(cell), self.agent_tree(), self.debug(),
             self.verify_agent(), self.verify_datastore(cell)),
            SuiteValues(cell=cell.spec(), agent=self.matrix.agent, suites=self.suites("test_allinone.py")),
        )

    # -- VM and bare-metal nodes ----------------------------------------------------------------
    def guest_base(self, cell: Cell) -> str:
        name = self.matrix.guest.base or cell.base_name or self.matrix.agent.base
        resolved = resolve(name, self.matrix.bases[name], self.host.mirrors)
        return self.add(Node(
            id=f"guest-base:{name}", kind="guest-base", title=f"guest base {name} (OS + runtime + agent)",
            parents=(self.agent_tree(),),
            values=GuestBaseValues(
                base=GuestOS(name=name, suite=resolved.suite, archive=resolved.archive, security=resolved.security,
                             components=resolved.components, apt=resolved.apt),
                agent=self.matrix.agent, assembly=self.host.assembly, dpkg_options=DPKG_OPTIONS),
            files=(*self.element_files("guestforge-guest"), *self.element_files("guestforge-agent")),
            tools=VM_TOOLS,
        ))

    def guest_images(self, cell: Cell) -> str:
        targets = tuple(t for t in VM_TARGETS if t in cell.targets)
        return self.add(Node(
            id=f"guest:{cell.name}", kind="guest-image", title=f"{cell.name} {' + '.join(targets)} images",
            cell=cell.name,
            parents=(self.guest_base(cell), self.datastore(cell), self.exporter(cell.exporter_name)),
            values=GuestImageValues(cell=cell.spec(exporter=True), image=cell.image, targets=targets,
                                    assembly=self.host.assembly),
            files=(*self.element_files("guestforge-base-tree"), *self.element_files("guestforge-datastore")),
            tools=VM_TOOLS,
        ))

    def verify_guest_image(self, cell: Cell, target: VmTarget) -> str:
        return self._verify(
            f"verify-{target}", f"verify-{target}:{cell.name}", f"{cell.name} verify {target} image", cell,
            (self.guest_images(cell),),
            GuestCheckValues(cell=cell.spec(), agent=self.matrix.agent, target=target,
                             suites=self.suites("vm/test_guest_image.py")),
        )

    def boot(self, cell: Cell) -> str:
        return self._verify(
            "verify-boot", f"boot-vm:{cell.name}", f"{cell.name} boot vm (BIOS, UEFI) and verify", cell,
            (self.guest_images(cell),),
            BootValues(cell=cell.spec(exporter=True), agent=self.matrix.agent, image=cell.image,
                       firmware=("bios", "uefi"), suites=self.suites("vm/test_guest_boot.py")),
        )

    # -- publishing -----------------------------------------------------------------------------
    def publish(self, cell: Cell, target: Target, registry: tuple[str, str]) -> str:
        """Push the cell's ``target`` artifacts to ``registry`` (host, prefix); its verifications are parents,
        so nothing unverified is pushed."""
        host, prefix = registry
        if target == "oci":
            return self.add(Node(
                id=f"publish-oci:{cell.name}", kind="publish-oci", title=f"{cell.name} publish OCI images",
                cell=cell.name,
                parents=(self.datastore(cell), self.allinone(cell), self.exporter(cell.exporter_name),
                         self.agent_image(), self.bundle(cell), self.verify_datastore(cell), self.verify_agent(),
                         self.verify_allinone(cell), self.verify_bundle(cell)),
                values=PublishImagesValues(registry=host, prefix=prefix), tools=("docker",),
            ))
        checks = (self.verify_guest_image(cell, target), *([self.boot(cell)] if target == "vm" else []))
        return self.add(Node(
            id=f"publish-{target}:{cell.name}", kind="publish-disk", title=f"{cell.name} publish {target} image",
            cell=cell.name, parents=(self.guest_images(cell), *checks),
            values=PublishDiskValues(registry=host, prefix=prefix, target=target, datastore=cell.datastore,
                                     version=cell.version),
        ))

    # -- selection ------------------------------------------------------------------------------
    def oci(self, cell: Cell, verify: bool) -> list[str]:
        wanted = [self.datastore(cell), self.exporter(cell.exporter_name), self.agent_image(),
                  self.allinone(cell), self.bundle(cell)]
        if verify:
            wanted += [self.verify_datastore(cell), self.verify_agent(), self.verify_allinone(cell),
                       self.verify_bundle(cell)]
        return wanted


def declare(matrix: Matrix, cells: Iterable[Cell], targets: Iterable[Target], tree: Tree, host: HostInputs,
            verify: bool, publish: tuple[str, str] | None = None,
            image_prefix: str | None = None) -> tuple[list[Node], list[str]]:
    """All nodes needed for ``targets`` of ``cells`` and the ids the command asks for; with ``publish``
    (registry host, prefix), the verified artifacts are pushed there too. ``image_prefix``: where the
    Kubernetes bundles of this (unpublished) build say their images are."""
    decl = Declarer(matrix, tree, host, image_prefix)
    wanted: list[str] = []
    for cell in cells:
        for target in targets:
            if target not in cell.targets:
                continue
            if publish is not None:
                wanted.append(decl.publish(cell, target, publish))
                continue
            if target == "oci":
                wanted += decl.oci(cell, verify)
            else:
                wanted.append(decl.guest_images(cell))
                if verify:
                    wanted.append(decl.verify_guest_image(cell, target))
                    if target == "vm":
                        wanted.append(decl.boot(cell))
    return list(decl.nodes.values()), list(dict.fromkeys(wanted))
