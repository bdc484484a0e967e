"""Actions that produce VM and bare-metal nodes: guest bases, per-cell images, image checks, boot tests.

They call the library in this package with exactly the node's declared values and its parents'
artifacts; files land under ``build/artifacts`` (guest bases in ``guest-base/``, a cell's images in
``CELL/``), written completely or not at all.
"""

from __future__ import annotations

import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from builder.agent.values import AgentTreeArtifact
from builder.errors import BuildError
from builder.graph.step import Artifact, RunContext, Step
from builder.oci.engine import Engine
from builder.oci.naming import short
from builder.oci.rootfs import ResolvedBase
from builder.oci.values import ImageArtifact
from builder.plan import Cell
from builder.vm import hostcaps
from builder.vm.boot import boot_and_verify
from builder.vm.images import GuestBase, build_cell_images, build_guest_base
from builder.vm.preload import read_archive
from builder.vm.values import (BootArtifact, BootRecord, BootValues, GuestBaseArtifact, GuestBaseValues,
                               GuestCheckArtifact, GuestCheckValues, GuestImagesArtifact, GuestImageValues)
from builder.vm.verify import image_spec, verify_image


class FilesAction:
    """Artifacts whose ``files`` (role -> path relative to the build dir) are on disk."""

    serial = True  # DIB runs and qemu boots take both cores; one at a time

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.artifacts = ctx.artifacts

    def exists(self, artifact: Artifact) -> bool:
        if not isinstance(artifact, (GuestBaseArtifact, GuestImagesArtifact)):
            return False
        files = artifact.files
        return bool(files) and all((self.ctx.build_dir / p).is_file() for p in files.values())


def _size(step: Step, paths: dict[str, str]) -> int:
    return sum(step.path(p).stat().st_blocks * 512 for p in paths.values())


class GuestBaseAction(FilesAction):
    """DIB: guest OS + container runtime + the agent tree, once per (suite, agent build)."""

    def run(self, step: Step) -> GuestBaseArtifact:
        v, tree = step.values(GuestBaseValues), step.parent(AgentTreeArtifact, "agent-tree")
        b = v.base
        base = ResolvedBase(b.name, b.suite, b.archive, b.security, b.components, b.apt)
        built = build_guest_base(base, v.agent, step.path(tree.path), step.workdir, step.log,
                                 key=step.key, assembly=v.assembly, dpkg_options=list(v.dpkg_options),
                                 agent_version=tree.version)
        out = self.artifacts / "guest-base" / f"{b.suite}-{short(step.key)}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        files = {}
        for role, path in (("tree", built.tree), ("head", built.head), ("boot_grub", built.boot_grub)):
            if path is not None:
                files[role] = step.rel(path.replace(out / path.name))
        return GuestBaseArtifact(key=built.key, suite=built.suite, assembly=built.assembly, fs_uuid=built.fs_uuid,
                                 packages=built.packages, agent=dict(built.agent), files=files,
                                 size=_size(step, files), build_seconds=built.seconds)


def guest_base_from(step: Step, artifact: GuestBaseArtifact) -> GuestBase:
    files = artifact.files
    return GuestBase(key=artifact.key, suite=artifact.suite, assembly=artifact.assembly,
                     tree=step.path(files["tree"]), fs_uuid=artifact.fs_uuid, packages=artifact.packages,
                     agent=artifact.agent, head=step.path(files["head"]) if "head" in files else None,
                     boot_grub=step.path(files["boot_grub"]) if "boot_grub" in files else None)


class GuestImageAction(FilesAction):
    """A cell's vm and/or baremetal images: the guest base + the preloaded datastore and exporter."""

    @property
    def engine(self) -> Engine:
        engine: Engine = self.ctx.engine
        return engine

    def _save(self, image: ImageArtifact, path: Path) -> Path:
        """``docker save`` the parent's image under its keyed tag. The tag is shared by every build dir on
        the engine, and another one may rebuild the same key byte-differently and move it at any moment:
        point it at the recorded image, save, and check that the archive holds that very image."""
        ref, image_id = image.ref, image.id
        for _ in range(3):
            self.engine.tag(image_id, ref)
            with path.open("wb") as out:
                self.engine.save(ref, out)
            if read_archive(path).image_id == image_id:
                return path
        raise BuildError(f"{ref} kept moving away from {image_id} while it was saved (another build of the "
                         "same key on this engine?); run again", str(path))

    def run(self, step: Step) -> GuestImagesArtifact:
        v = step.values(GuestImageValues)
        cell = Cell.from_spec(v.cell, v.image, v.targets)
        datastore = step.parent(ImageArtifact, "datastore", "upstream")
        exporter = step.parent(ImageArtifact, "exporter")
        outdir = self.artifacts / cell.name
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:  # two exports at once: the engine streams both
                saving = [pool.submit(self._save, image, step.workdir / f"{role}.tar")
                          for role, image in (("datastore", datastore), ("exporter", exporter))]
                ds_archive, ex_archive = (f.result() for f in saving)
            base = guest_base_from(step, step.parent(GuestBaseArtifact, "guest-base"))
            built = build_cell_images(base, cell, ds_archive, ex_archive, list(v.targets), outdir, step.log,
                                      inputs={"key": step.key})
        finally:
            for tmp in step.workdir.glob("*.tar"):
                tmp.unlink()
        files: dict[str, str] = {}
        for target, image in built.items():
            files[target] = step.rel(image.image)
            files[f"{target}-manifest"] = step.rel(image.manifest)
            files.update({role: step.rel(p) for role, p in image.files.items()})
        return GuestImagesArtifact(files=files, size=_size(step, files),
                                   preloaded={"datastore": datastore.id, "exporter": exporter.id},
                                   refs={"datastore": datastore.ref, "exporter": exporter.ref},
                                   build_seconds=max((i.seconds for i in built.values()), default=0.0))


class GuestVerifyAction:
    """The image suite against the root filesystem of the vm (qcow2) or baremetal (raw) image."""

    serial = False

    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def exists(self, artifact: Artifact) -> bool:
        return isinstance(artifact, GuestCheckArtifact) and artifact.passed

    def run(self, step: Step) -> GuestCheckArtifact:
        v, images = step.values(GuestCheckValues), step.parent(GuestImagesArtifact, "guest-image")
        target = v.target
        image = step.path(images.files[target])
        refs, ids = images.refs, images.preloaded
        spec = image_spec(cell=v.cell.name, flavor=v.cell.flavor, agent=v.agent,
                          image_ids={refs[role]: ids[role] for role in ("datastore", "exporter")})
        # vm: the qcow2; baremetal: the whole-disk raw and the partition image Ironic deploys with its kernel
        checked = [(image, "qcow2" if target == "vm" else "raw")]
        if target == "baremetal":
            checked.append((step.path(images.files["partition"]), "raw"))
        junits = []
        for path, fmt in checked:
            report = verify_image(path, fmt, spec, step.workdir / path.name, step.log)
            if not report.passed:
                raise BuildError(f"{target} image checks failed for {path.name} (junit: {report.junit})",
                                 str(step.log))
            junits.append(str(report.junit))
        return GuestCheckArtifact(passed=True, images=tuple(step.rel(p) for p, _ in checked), junit=tuple(junits))


class BootAction:
    """Boot the vm image under BIOS (full suite over SSH) and UEFI (to database ready); KVM when usable."""

    serial = True

    def __init__(self, ctx: RunContext):
        self.build_dir = ctx.build_dir
        self._accel: str | None = None
        self._lock = threading.Lock()

    def exists(self, artifact: Artifact) -> bool:
        return isinstance(artifact, BootArtifact) and artifact.passed

    def accel(self, log: Path) -> str:
        """Probe KVM once per boot of the host (cached in the build dir): it takes seconds."""
        with self._lock:
            if self._accel is None:
                boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
                cache = self.build_dir / "hostcaps.json"
                known = json.loads(cache.read_text()) if cache.exists() else {}
                if known.get("boot_id") != boot_id:
                    known = {"boot_id": boot_id, "kvm": hostcaps.probe_kvm(log)}
                    cache.write_text(json.dumps(known) + "\n")
                self._accel = "kvm" if known["kvm"] else "tcg"
            return self._accel

    def run(self, step: Step) -> BootArtifact:
        v, images = step.values(BootValues), step.parent(GuestImagesArtifact, "guest-image")
        cell = Cell.from_spec(v.cell, v.image, ("vm",))
        accel = self.accel(step.log)
        reports: dict[str, BootRecord] = {}
        for firmware in v.firmware:
            report = boot_and_verify(step.path(images.files["vm"]), "qcow2", cell, v.agent, images.preloaded,
                                     step.workdir / firmware, step.log, accel=accel,  # type: ignore[arg-type]
                                     firmware=firmware, run_suite=firmware == "bios")
            reports[firmware] = BootRecord(
                firmware=report.firmware, accel=report.accel, seconds_to_ssh=report.seconds_to_ssh,
                seconds_to_db_ready=report.seconds_to_db_ready, console_log=str(report.console_log),
                passed=report.passed, junit=str(report.junit) if report.junit else None)
            if not report.passed:
                raise BuildError(f"{firmware} boot checks failed (console: {report.console_log})", str(step.log))
        return BootArtifact(passed=True, accel=accel, boots=reports,
                            seconds_to_db_ready={f: r.seconds_to_db_ready for f, r in reports.items()})
