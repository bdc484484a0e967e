"""Declare the build graph for a matrix: every node with exactly the inputs it reads.

Pure: no engine, no network. ``affected`` runs this against a git revision and
against the work tree and compares keys, so everything a node's output depends on
must be declared here (values, repository files, tools, parents) and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from builder.graph.model import Node
from builder.graph.trees import Tree
from builder.hostenv.apt import Mirrors
from builder.matrix.models import Agent, Exporter, Matrix, Target
from builder.oci.rootfs import DPKG_OPTIONS, resolve
from builder.plan import Cell

MACROS = "container_specs/_macros.j2"
# Builder code that shapes artifacts is an input like any template: editing it changes the keys of
# what it shapes (and ``affected`` says so), editing the CLI or the scheduler changes nothing.
ENGINE_CODE = ("builder/oci/render.py", "builder/oci/archive.py", "builder/oci/engine.py", "builder/oci/steps.py")
VERIFY_CODE = ("builder/verify/pod.py", "builder/verify/runner.py", "builder/verify/steps.py", "builder/flavors.py",
               "tests/infra/conftest.py")


VM_CODE = ("builder/vm/dib.py", "builder/vm/images.py", "builder/vm/assemble.py", "builder/vm/gpt.py",
           "builder/vm/manifest.py", "builder/vm/steps.py", "builder/oci/rootfs.py")
VM_TOOLS = ("diskimage-builder", "qemu-img", "libguestfs")
PUBLISH_CODE = ("builder/publish/actions.py", "builder/publish/refs.py", "builder/cache/oci_client.py",
                "builder/oci/engine.py")
VM_TARGETS = ("vm", "baremetal")


@dataclass(frozen=True)
class HostInputs:
    """What the build host contributes to outputs: its apt mirrors, pip index and disk assembly path
    (DIB's block-device path where device-mapper works, else libguestfs: the disk layouts differ)."""

    mirrors: Mirrors | None
    pip_index: str | None
    assembly: str = "guestfs"


def _labels(title: str, version: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        "org.opencontainers.image.title": title,
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.vendor": "guestforge",
        **extra,
    }


def cell_values(cell: Cell) -> dict[str, Any]:
    return {
        "name": cell.name, "datastore": cell.datastore, "version": cell.version, "flavor": cell.flavor,
        "user": cell.user, "uid": cell.uid, "port": cell.port, "data_dir": cell.data_dir,
        "start": list(cell.start), "health": list(cell.health), "client": cell.client,
        "packages": list(cell.packages),
    }


def agent_values(agent: Agent) -> dict[str, Any]:
    return agent.model_dump()


def exporter_values(name: str, exporter: Exporter) -> dict[str, Any]:
    return {"name": name, **exporter.model_dump()}


def _targets(cells: Sequence[Cell], *wanted: Target) -> frozenset[str]:
    return frozenset(t for c in cells for t in c.targets if t in wanted) or frozenset(wanted)


class Declarer:
    """Builds the node list for a set of cells; shared nodes (bases, agent, exporters) appear once."""

    def __init__(self, matrix: Matrix, tree: Tree, host: HostInputs):
        self.matrix, self.tree, self.host = matrix, tree, host
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
            values={"name": name, "suite": resolved.suite, "sources": resolved.sources(),
                    "archive": resolved.archive, "security": resolved.security,
                    "components": list(resolved.components), "dpkg_options": list(DPKG_OPTIONS)},
            files=("builder/oci/rootfs.py", "builder/oci/steps.py"), tools=("mmdebstrap", "docker"),
        ))

    def debug(self) -> str:
        return self.add(Node(
            id="debug", kind="debug", title="debug/sandbox image", parents=(self.base(self.matrix.agent.base),),
            values={"labels": _labels("guestforge debug", "1", {"io.guestforge.role": "debug"})},
            files=(MACROS, "container_specs/debug.Containerfile.j2", *ENGINE_CODE), tools=("docker",),
        ))

    def agent_tree(self) -> str:
        agent = self.matrix.agent
        return self.add(Node(
            id="agent-tree", kind="agent-tree", title=f"agent tree {agent.package} {agent.version}",
            parents=(self.base(agent.base),),
            values={"agent": agent_values(agent), "pip": {"index_url": agent.index_url or self.host.pip_index}},
            files=(MACROS, "container_specs/agent-build.Containerfile.j2",
                   *self.tree.files("container_specs/agent"), "builder/agent/bundle.py", "builder/agent/config.py",
                   "builder/actions.py",
                   *ENGINE_CODE),
            tools=("docker",),
        ))

    def agent_image(self) -> str:
        agent = self.matrix.agent
        labels = _labels(f"guestforge {agent.package} guest agent", agent.version,
                         {"io.guestforge.role": "agent", "io.guestforge.agent.version": agent.version})
        return self.add(Node(
            id="agent-image", kind="agent-image", title=f"agent image {agent.package} {agent.version}",
            parents=(self.base(agent.base), self.agent_tree()),
            values={"agent": agent_values(agent), "labels": labels},
            files=(MACROS, "container_specs/agent.Containerfile.j2", "builder/oci/layers.py", "builder/actions.py",
                   *ENGINE_CODE),
            tools=("docker",),
        ))

    def exporter(self, name: str) -> str:
        exporter = self.matrix.exporters[name]
        return self.add(Node(
            id=f"exporter:{name}", kind="exporter", title=f"exporter {name}", parents=(self.base(exporter.base),),
            values={"exporter": exporter_values(name, exporter),
                    "labels": _labels(f"guestforge {name}", "1", {"io.guestforge.role": "exporter",
                                                                  "io.guestforge.exporter": name})},
            files=(MACROS, "container_specs/exporter.Containerfile.j2", *ENGINE_CODE), tools=("docker",),
        ))

    # -- per-cell OCI nodes ---------------------------------------------------------------------
    def datastore(self, cell: Cell) -> str:
        targets = frozenset(cell.targets)
        if cell.image:
            return self.add(Node(
                id=f"datastore:{cell.name}", kind="upstream", title=f"{cell.name} upstream image", cell=cell.name,
                targets=targets, values={"image": cell.image, "cell": cell_values(cell)},
                files=("builder/oci/steps.py",), tools=("docker",),
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
            targets=targets, parents=(self.base(cell.base_name),),
            values={"cell": cell_values(cell), "labels": labels,
                    "agent": {"user": agent.user, "uid": agent.uid, "log_dir": agent.log_dir,
                              "config_dir": agent.config_dir}},
            files=(MACROS, "container_specs/datastore.Containerfile.j2",
                   *self.tree.files("container_specs/flavors/common"),
                   *self.tree.files(f"container_specs/flavors/{cell.flavor}"), *ENGINE_CODE),
            tools=("docker",),
        ))

    def allinone(self, cell: Cell) -> str:
        agent = self.matrix.agent
        return self.add(Node(
            id=f"aio:{cell.name}", kind="aio", title=f"{cell.name} all-in-one image (agent layer on top)",
            cell=cell.name, targets=frozenset(["oci"]), parents=(self.datastore(cell), self.agent_tree()),
            values={"labels": {"io.guestforge.agent.version": agent.version, "io.guestforge.role": "allinone"}},
            files=("builder/oci/layers.py", "builder/oci/engine.py", "builder/oci/steps.py"), tools=("docker",),
        ))

    def pod(self, cell: Cell) -> str:
        return self.add(Node(
            id=f"pod:{cell.name}", kind="pod", title=f"{cell.name} pod spec", cell=cell.name,
            targets=frozenset(["oci"]),
            parents=(self.datastore(cell), self.exporter(cell.exporter_name), self.agent_image(), self.agent_tree()),
            values={"cell": cell_values(cell), "exporter": exporter_values(cell.exporter_name, cell.exporter),
                    "agent": agent_values(self.matrix.agent)},
            files=("builder/oci/podspec.py", "builder/oci/k8s.py", "builder/flavors.py", "builder/actions.py",
                   "builder/agent/config.py"),
        ))

    # -- verification nodes ---------------------------------------------------------------------
    def _infra(self, names: tuple[str, ...]) -> list[str]:
        return [f"tests/infra/{n}" for n in names if self.tree.read(f"tests/infra/{n}") is not None]

    def _verify(self, node_id: str, title: str, cell: Cell | None, parents: tuple[str, ...],
                values: dict[str, Any], suites: tuple[str, ...], support: tuple[str, ...] = (),
                code: tuple[str, ...] = (), kind: str | None = None) -> str:
        """A verification node: ``suites`` are the testinfra files it runs, ``support`` what they import.
        Both are hashed, so a comment in another datastore's suite changes nothing here."""
        run = self._infra(suites)
        return self.add(Node(
            id=node_id, kind=kind or node_id.split(":", 1)[0], title=title, cell=cell.name if cell else None,
            targets=frozenset([values.get("target", "vm" if kind == "verify-boot" else "oci")]), parents=parents,
            values={**values, "suites": run},
            files=(*VERIFY_CODE, *code, *run, *self._infra(support)),
        ))

    def verify_datastore(self, cell: Cell) -> str:
        return self._verify(
            f"verify-datastore:{cell.name}", f"{cell.name} verify database+exporter", cell,
            (self.datastore(cell), self.exporter(cell.exporter_name), self.debug()),
            {"cell": cell_values(cell), "exporter": exporter_values(cell.exporter_name, cell.exporter),
             "upstream": cell.upstream},
            ("test_image_hygiene.py", "test_datastore.py", "test_exporter.py", f"flavors/test_{cell.flavor}.py"),
            ("__init__.py", "flavors/__init__.py"),
        )

    def verify_agent(self) -> str:
        return self._verify(
            "verify-agent", "verify agent image", None, (self.agent_image(), self.agent_tree(), self.debug()),
            {"agent": agent_values(self.matrix.agent)}, ("test_agent.py",),
            ("__init__.py", "test_image_hygiene.py"), ("builder/agent/config.py",),
        )

    def verify_allinone(self, cell: Cell) -> str:
        return self._verify(
            f"verify-aio:{cell.name}", f"{cell.name} verify all-in-one image", cell,
            # The agent and datastore suites scanned the two halves; this one checks how they join.
            (self.allinone(cell), self.datastore(cell), self.agent_tree(), self.debug(),
             self.verify_agent(), self.verify_datastore(cell)),
            {"cell": cell_values(cell), "agent": agent_values(self.matrix.agent)}, ("test_allinone.py",),
            ("__init__.py", "test_agent.py", "test_image_hygiene.py"), ("builder/agent/config.py",),
        )

    # -- VM and bare-metal nodes ----------------------------------------------------------------
    def guest_base(self, cell: Cell) -> str:
        name = self.matrix.guest.base or cell.base_name or self.matrix.agent.base
        resolved = resolve(name, self.matrix.bases[name], self.host.mirrors)
        return self.add(Node(
            id=f"guest-base:{name}", kind="guest-base", title=f"guest base {name} (OS + runtime + agent)",
            targets=frozenset(VM_TARGETS), parents=(self.agent_tree(),),
            values={"base": {"name": name, "suite": resolved.suite, "archive": resolved.archive,
                             "security": resolved.security, "components": list(resolved.components)},
                    "agent": agent_values(self.matrix.agent), "assembly": self.host.assembly,
                    "dpkg_options": list(DPKG_OPTIONS)},
            files=(*self.element_files("guestforge-guest"), *self.element_files("guestforge-agent"),
                   *VM_CODE),
            tools=VM_TOOLS,
        ))

    def guest_images(self, cell: Cell) -> str:
        targets = [t for t in VM_TARGETS if t in cell.targets]
        return self.add(Node(
            id=f"guest:{cell.name}", kind="guest-image", title=f"{cell.name} {' + '.join(targets)} images",
            cell=cell.name, targets=frozenset(targets),
            parents=(self.guest_base(cell), self.datastore(cell), self.exporter(cell.exporter_name)),
            values={"cell": cell_values(cell), "exporter": exporter_values(cell.exporter_name, cell.exporter),
                    "image": cell.image, "targets": targets, "assembly": self.host.assembly},
            files=(*self.element_files("guestforge-base-tree"),
                   *self.element_files("guestforge-datastore"), "builder/vm/preload.py", *VM_CODE),
            tools=VM_TOOLS,
        ))

    def verify_guest_image(self, cell: Cell, target: str) -> str:
        return self._verify(
            f"verify-{target}:{cell.name}", f"{cell.name} verify {target} image", cell, (self.guest_images(cell),),
            {"cell": cell_values(cell), "agent": agent_values(self.matrix.agent), "target": target},
            ("vm/test_guest_image.py",), ("vm/__init__.py", "vm/conftest.py"), ("builder/vm/verify.py",),
        )

    def boot(self, cell: Cell) -> str:
        return self._verify(
            f"boot-vm:{cell.name}", f"{cell.name} boot vm (BIOS, UEFI) and verify", cell,
            (self.guest_images(cell),),
            {"cell": cell_values(cell), "exporter": exporter_values(cell.exporter_name, cell.exporter),
             "agent": agent_values(self.matrix.agent), "image": cell.image, "firmware": ["bios", "uefi"]},
            ("vm/test_guest_boot.py",), ("vm/__init__.py", "vm/conftest.py"),
            ("builder/vm/boot.py", "builder/vm/seed.py", "builder/vm/runtime.py", "builder/agent/config.py"),
            kind="verify-boot",
        )

    # -- publishing -----------------------------------------------------------------------------
    def publish(self, cell: Cell, target: Target, registry: tuple[str, str]) -> str:
        """Push the cell's ``target`` artifacts to ``registry`` (host, prefix); its verifications are parents,
        so nothing unverified is pushed."""
        values = {"registry": registry[0], "prefix": registry[1]}
        if target == "oci":
            return self.add(Node(
                id=f"publish-oci:{cell.name}", kind="publish-oci", title=f"{cell.name} publish OCI images",
                cell=cell.name, targets=frozenset(["oci"]),
                parents=(self.datastore(cell), self.allinone(cell), self.exporter(cell.exporter_name),
                         self.agent_image(), self.pod(cell), self.verify_datastore(cell), self.verify_agent(),
                         self.verify_allinone(cell)),
                values=values, files=PUBLISH_CODE, tools=("docker",),
            ))
        checks = (self.verify_guest_image(cell, target), *([self.boot(cell)] if target == "vm" else []))
        return self.add(Node(
            id=f"publish-{target}:{cell.name}", kind="publish-disk", title=f"{cell.name} publish {target} image",
            cell=cell.name, targets=frozenset([target]), parents=(self.guest_images(cell), *checks),
            values={**values, "target": target, "datastore": cell.datastore, "version": cell.version},
            files=PUBLISH_CODE,
        ))

    # -- selection ------------------------------------------------------------------------------
    def oci(self, cell: Cell, verify: bool) -> list[str]:
        wanted = [self.datastore(cell), self.exporter(cell.exporter_name), self.agent_image(),
                  self.allinone(cell), self.pod(cell)]
        if verify:
            wanted += [self.verify_datastore(cell), self.verify_agent(), self.verify_allinone(cell)]
        return wanted


def declare(matrix: Matrix, cells: Iterable[Cell], targets: Iterable[Target], tree: Tree, host: HostInputs,
            verify: bool, publish: tuple[str, str] | None = None) -> tuple[list[Node], list[str]]:
    """All nodes needed for ``targets`` of ``cells`` and the ids the command asks for; with ``publish``
    (registry host, prefix), the verified artifacts are pushed there too."""
    decl = Declarer(matrix, tree, host)
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
