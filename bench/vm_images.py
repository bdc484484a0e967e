"""VM and bare-metal guest images through the build graph: cold guest base, each cell on the cached base, boot.

    .venv/bin/python bench/vm_images.py [--cells postgresql-15 mariadb-10.11 redis-7.0] [--boot] [--jobs 2]

Runs ``guestforge`` as a user would, from a copy of the repository into a fresh build directory:
``build --target oci`` for the cells (their datastore and exporter images and the agent tree are what
the guests preload; timed apart), then ``build --target vm`` (the guest base of the cells' suite once,
then each cell's vm + baremetal images on it), then with ``--boot`` ``verify --target vm`` for the first
cell (image suite, BIOS and UEFI boots). Targets: cold guest base <= 6 min, each cell <= 60 s.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Run, copy_repo, guestforge, table  # noqa: E402
from builder.vm.values import BootArtifact
from builder.graph.index import Index  # noqa: E402
from builder.report import human_size  # noqa: E402

BASE_TARGET, CELL_TARGET = 360, 60


def step_seconds(log: Path) -> list[tuple[str, float]]:
    """(command, seconds) for every command the cell's log records (``$ cmd`` ... ``# exit after Ns``)."""
    steps, command = [], ""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("$ "):
            command = line[2:].split()[0].rsplit("/", 1)[-1]
        elif (m := re.match(r"# exit after ([0-9.]+)s", line)) and command:
            steps.append((command, float(m.group(1))))
    return steps


def row(run: Run, node: str) -> dict[str, object]:
    return next((r for r in run.report["nodes"] if r["node"] == node), {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="*", default=["postgresql-15", "mariadb-10.11", "redis-7.0"])
    parser.add_argument("--boot", action="store_true", help="also verify (and boot) the first cell's vm image")
    parser.add_argument("--jobs", default="2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gf-vm-bench-", dir="/var/tmp") as tmp:
        repo, build_dir = copy_repo(Path(tmp) / "repo"), Path(tmp) / "build"
        oci = guestforge(repo, build_dir, "build", "--target", "oci", "-j", args.jobs, *args.cells)
        vm = guestforge(repo, build_dir, "build", "--target", "vm", "-j", args.jobs, *args.cells)
        print(f"\nVM/bare-metal images: {len(args.cells)} cells; their OCI images first: {oci.seconds:.0f}s "
              f"(exit {oci.exit_code}); vm + baremetal build {vm.seconds:.0f}s (exit {vm.exit_code})")
        for base in vm.nodes(kind_prefix="guest-base"):
            seconds = float(base["seconds"])
            print(f"cold guest base {base['node']}: {seconds:.0f}s "
                  f"(target <= {BASE_TARGET}s: {'met' if seconds <= BASE_TARGET else 'MISSED'}), "
                  f"{human_size(base['size'])}")
        rows = []
        for cell in args.cells:
            r = row(vm, f"guest:{cell}")
            seconds = float(r.get("seconds") or 0)  # type: ignore[arg-type]
            steps = step_seconds(Path(str(r["log"]))) if r.get("log") else []
            rows.append([cell, str(r.get("status")), f"{seconds:.1f}s",
                         "met" if r.get("status") == "built" and seconds <= CELL_TARGET else "MISSED",
                         human_size(r.get("size")),  # type: ignore[arg-type]
                         ", ".join(f"{c} {s:.0f}s" for c, s in steps)])
        print("\neach cell on the cached base (vm qcow2 + baremetal raw, partition image, kernel, ramdisk):")
        print(table(rows, ["cell", "status", "time", f"<= {CELL_TARGET}s", "allocated", "commands"]))
        if args.boot:
            cell = args.cells[0]
            verify = guestforge(repo, build_dir, "verify", "--target", "vm", "-j", args.jobs, cell)
            print(f"\nverify --target vm {cell}: {verify.seconds:.0f}s (exit {verify.exit_code}); "
                  f"image suite {float(row(verify, f'verify-vm:{cell}').get('seconds') or 0):.0f}s")  # type: ignore[arg-type]
            index = Index(build_dir / "index.sqlite")
            try:
                boot = index.latest(f"boot-vm:{cell}")
            finally:
                index.close()
            if boot is not None and boot.ok and isinstance(boot.artifact, BootArtifact):
                for firmware, b in boot.artifact.boots.items():
                    print(f"boot {firmware}/{b.accel}: SSH after {b.seconds_to_ssh:.0f}s, "
                          f"database answering after {b.seconds_to_db_ready:.0f}s")
            return 0 if verify.exit_code == 0 and vm.exit_code == 0 else 1
        return 0 if vm.exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
