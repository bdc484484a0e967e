"""Benchmark the VM / bare-metal path: cold guest base, each cell with the base cached, sizes, boot time.

    .venv/bin/python bench/vm_images.py [--agent-tarball agent-tree.tar] [--datastore ARCHIVE --exporter ARCHIVE]
                                         [--cells 2] [--boot] [--workdir /var/tmp/gfdev-vm/bench]

Without archives, a stand-in PostgreSQL 15 image and exporter are built from the Debian archive; without an
agent tarball, a stand-in of the real layout is used. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from builder.hostenv.apt import host_mirrors
from builder.matrix.loader import load_matrix
from builder.oci.engine import Engine
from builder.oci.rootfs import bootstrap, resolve
from builder.plan import expand
from builder.vm import boot, hostcaps, images, standin
from builder.vm.preload import read_archive

ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "gfdev-vm-bench-base:bookworm"


def mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp/gfdev-vm/bench"))
    ap.add_argument("--agent-tarball", type=Path)
    ap.add_argument("--agent-version")
    ap.add_argument("--datastore", type=Path)
    ap.add_argument("--exporter", type=Path)
    ap.add_argument("--cells", type=int, default=2, help="cell builds on the cached base (same cell, rebuilt)")
    ap.add_argument("--boot", action="store_true", help="also boot the VM image and time database readiness")
    args = ap.parse_args()

    work: Path = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = work / "bench.log"
    matrix = load_matrix(ROOT / "matrix.yaml")
    cell = next(c for c in expand(matrix) if c.name == "postgresql-15")
    base = resolve("debian:bookworm", matrix.bases["debian:bookworm"], host_mirrors())

    t = time.monotonic()
    caps = hostcaps.probe(log)
    choice = hostcaps.choose_assembly(caps)
    print(f"host: {caps.describe()} -> {choice.path} ({time.monotonic() - t:.0f}s to probe)")
    print(f"  why: {choice.reason}")

    datastore, exporter = args.datastore, args.exporter
    if datastore is None or exporter is None:
        engine = Engine()
        if engine.image(BASE_IMAGE) is None:
            bootstrap(base, work / "rootfs.tar", log)
            engine.import_rootfs(work / "rootfs.tar", BASE_IMAGE, [], log)
        datastore, exporter = work / "datastore.tar", work / "exporter.tar"
        for files, ref, out in ((standin.postgres_context(BASE_IMAGE, "15"), "gfdev-vm-bench-postgres:15", datastore),
                                (standin.exporter_context(BASE_IMAGE), "gfdev-vm-bench-exporter:15", exporter)):
            engine.build(files, ref, log)
            with out.open("wb") as f:
                engine.save(ref, f)
    agent_tarball = args.agent_tarball or standin.agent_tarball(work / "agent.tar")

    guest_base = images.build_guest_base(base, matrix.agent, agent_tarball, work / "base", log,
                                         key="bench-bookworm", assembly=choice.path, agent_version=args.agent_version)
    print(f"cold guest base (bookworm, {choice.path}): {guest_base.seconds:.0f}s, tree {mib(guest_base.tree.stat().st_size)}")

    artifacts = {}
    for i in range(args.cells):
        artifacts = images.build_cell_images(guest_base, cell, datastore, exporter, ["vm", "baremetal"],
                                             work / "out", log, inputs={"bench": str(i)})
        print(f"cell {cell.name} #{i + 1} with the base cached (vm + baremetal): {artifacts['vm'].seconds:.0f}s")
    vm, bm = artifacts["vm"], artifacts["baremetal"]
    print(f"vm image {vm.image.name}: {mib(vm.image.stat().st_size)} (qcow2, uncompressed)")
    print(f"baremetal whole disk {bm.image.name}: {mib(bm.image.stat().st_size)} apparent, "
          f"{mib(bm.image.stat().st_blocks * 512)} allocated")
    part = bm.files["partition"]
    print(f"baremetal partition image {part.name}: {mib(part.stat().st_size)} apparent, "
          f"{mib(part.stat().st_blocks * 512)} allocated; kernel + ramdisk "
          f"{mib(bm.files['kernel'].stat().st_size + bm.files['ramdisk'].stat().st_size)}")

    if args.boot:
        accel = hostcaps.choose_accel(caps)
        ids = {"datastore": read_archive(datastore).image_id, "exporter": read_archive(exporter).image_id}
        for firmware in ("bios", "uefi"):
            report = boot.boot_and_verify(vm.image, "qcow2", cell, matrix.agent, ids, work / f"boot-{firmware}", log,
                                          accel=accel, firmware=firmware, run_suite=False)  # type: ignore[arg-type]
            print(f"boot {firmware}/{accel}: SSH after {report.seconds_to_ssh:.0f}s, "
                  f"database answering after {report.seconds_to_db_ready:.0f}s")


if __name__ == "__main__":
    main()
