"""OCI images for the whole default matrix, cold then warm.

Prints per cell: build and verify time, image sizes, the agent layer's digest in the cell's all-in-one
image; and the bytes of unique layers against the sum of image sizes (what layer sharing saves).

    .venv/bin/python bench/oci_matrix.py [--cells GLOB ...] [--keep-engine-cache]

Cold means: a fresh build directory, every guestforge image removed and the engine's build cache pruned.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, Run, copy_repo, forget_images, guestforge, table  # noqa: E402
from builder.matrix.loader import load_matrix  # noqa: E402
from builder.plan import expand, select  # noqa: E402
from builder.report import human_size  # noqa: E402


def top_layer(image_id: str) -> str:
    out = subprocess.run(["docker", "image", "inspect", "--format", "{{json .RootFS.Layers}}", image_id],
                         capture_output=True, text=True, check=True).stdout
    return str(json.loads(out)[-1])


def rows_by_node(run: Run) -> dict[str, dict[str, object]]:
    return {str(n["node"]): n for n in run.report["nodes"]}


def per_cell(cells: list[str], build: Run, verify: Run) -> list[list[str]]:
    b, v = rows_by_node(build), rows_by_node(verify)
    out = []
    for cell in cells:
        ds, aio = b.get(f"datastore:{cell}", {}), b.get(f"aio:{cell}", {})
        ver = v.get(f"verify-datastore:{cell}", {}), v.get(f"verify-aio:{cell}", {})
        seconds = [float(str(r.get("seconds", 0))) for r in (ds, aio, *ver)]
        out.append([cell, f"{seconds[0]:.1f}s", f"{seconds[1]:.1f}s", f"{sum(seconds[2:]):.1f}s",
                    human_size(int(str(ds.get("size") or 0))), human_size(int(str(aio.get("size") or 0))),
                    str(aio.get("digest", ""))[7:19]])
    return out


def sharing(build: Run, matrix_cells: Sequence[object]) -> tuple[int, int]:
    """(unique layer bytes, sum of shipped image sizes) from the report's image sizes."""
    rows = rows_by_node(build)
    size = {n: int(r.get("size") or 0) for n, r in rows.items()}  # type: ignore[call-overload]
    unique = sum(v for n, v in size.items() if n.startswith("base:"))
    shipped = 0
    for cell in matrix_cells:
        name, base = cell.name, f"base:{cell.base_name}"  # type: ignore[attr-defined]
        unique += size.get(f"datastore:{name}", 0) - size.get(base, 0)
        shipped += size.get(f"datastore:{name}", 0) + size.get(f"aio:{name}", 0)
    for node, value in size.items():
        if node.startswith("exporter:"):
            shipped += value
            unique += value - size.get("base:debian:bookworm", 0)
    shipped += size.get("agent-image", 0)
    unique += size.get("agent-image", 0) - size.get("base:debian:bookworm", 0)  # includes the agent layer, once
    return unique, shipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="*", default=[])
    parser.add_argument("--keep-engine-cache", action="store_true", help="do not remove images (not truly cold)")
    parser.add_argument("--jobs", default="2")
    args = parser.parse_args()
    cells = select(expand(load_matrix(REPO / "matrix.yaml")), args.cells, "oci")
    names = [c.name for c in cells]
    with tempfile.TemporaryDirectory(prefix="gf-bench-") as tmp:
        repo, build_dir = copy_repo(Path(tmp) / "repo"), Path(tmp) / "build"
        if not args.keep_engine_cache:
            forget_images()
        common = ["--target", "oci", "-j", args.jobs, *names]
        cold_build = guestforge(repo, build_dir, "build", *common)
        cold_verify = guestforge(repo, build_dir, "verify", *common)
        warm_build = guestforge(repo, build_dir, "build", *common)
        warm_verify = guestforge(repo, build_dir, "verify", *common)
        print(f"\nOCI matrix: {len(names)} cells, jobs={args.jobs}")
        print(f"cold: build {cold_build.seconds:.0f}s (exit {cold_build.exit_code}), "
              f"verify {cold_verify.seconds:.0f}s (exit {cold_verify.exit_code})")
        print(f"warm: build {warm_build.seconds:.1f}s, verify {warm_verify.seconds:.1f}s "
              f"({len(warm_verify.nodes('cached'))} of {len(warm_verify.report['nodes'])} nodes cached)\n")
        header = ["cell", "datastore build", "aio build", "verify", "datastore size", "aio size", "aio image"]
        print(table(per_cell(names, cold_build, cold_verify), header))
        tree = rows_by_node(cold_build).get("agent-tree", {})
        print(f"\nagent layer (top layer of every all-in-one image and of the sidecar): {tree.get('digest') or ''}"
              f" {human_size(tree.get('size'))}")  # type: ignore[arg-type]
        print("top layer of each all-in-one image (read from the engine):")
        tops = set()
        for r in cold_build.report["nodes"]:
            if r["kind"] == "aio" and r.get("digest"):
                top = top_layer(str(r["digest"]))
                tops.add(top)
                print(f"  {r['cell']:<15} {top}")
        print(f"  -> {len(tops)} distinct agent layer digest(s) across {len(names)} cells")
        unique, shipped = sharing(cold_build, cells)
        print(f"\nunique layer bytes {human_size(unique)} vs sum of image sizes {human_size(shipped)} "
              f"({shipped / max(unique, 1):.1f}x shared)")
        return 0 if cold_verify.exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
