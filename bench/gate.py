"""The CI gate on the default matrix, measured in one run (content-addressed build graph).

    1. cold gate: build + verify everything (fresh build dir, guestforge images and build cache removed)
    2. no-op gate right after                                   target: <= 5 s wall for the whole matrix
    3. agent-only change (a file the agent build reads, so the agent layer's content changes)
                                                                target: <= 20% of the cold gate,
                                                                        zero datastore layers rebuilt
       and the same file touched without changing what it builds (a comment): the agent tree is rebuilt
       to the same digest and the graph cuts off there (early cutoff)
    4. one matrix version changed                               only that cell rebuilt and re-verified

    .venv/bin/python bench/gate.py [--target oci] [--cells GLOB ...] [--keep-engine-cache]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Run, copy_repo, forget_images, guestforge  # noqa: E402

AGENT_FILE = "container_specs/agent/make_runtime.py"
# A real agent change: the tree also drops the standard library's pydoc topics (its layer digest changes).
AGENT_EDIT = ('"turtledemo", "ensurepip")', '"turtledemo", "ensurepip", "pydoc_data")')
CHANGED_CELL = "redis-7.0"
MATRIX_EDIT = ('"7.0": {base: "debian:bookworm", packages: [redis-server]}',
               '"7.0": {base: "debian:bookworm", packages: [redis-server, redis-tools]}')


def datastore_layers(run: Run) -> dict[str, list[str]]:
    layers = {}
    for row in run.report["nodes"]:
        if row["kind"] == "datastore" and row.get("digest"):
            out = subprocess.run(["docker", "image", "inspect", "--format", "{{json .RootFS.Layers}}", row["digest"]],
                                 capture_output=True, text=True, check=True).stdout
            layers[row["cell"]] = json.loads(out)
    return layers


def agent_layer(run: Run) -> str:
    """The agent tree's layer digest in this run (built or reused)."""
    return next((str(n.get("digest") or "") for n in run.report["nodes"] if n["kind"] == "agent-tree"), "")


def redone(run: Run) -> list[str]:
    return sorted(n["node"] for n in run.nodes("built", "verified", "pulled", "failed"))


def seconds_by_kind(run: Run) -> str:
    """Where a step's time went: summed node seconds per node kind (nodes overlap under --jobs)."""
    totals: dict[str, float] = {}
    for n in run.nodes("built", "verified", "pulled", "failed"):
        totals[n["kind"]] = totals.get(n["kind"], 0.0) + float(n.get("seconds") or 0)
    return ", ".join(f"{kind} {sec:.1f}s" for kind, sec in sorted(totals.items(), key=lambda kv: -kv[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="oci", choices=["oci", "vm", "baremetal"])
    parser.add_argument("--cells", nargs="*", default=[])
    parser.add_argument("--jobs", default="2")
    parser.add_argument("--keep-engine-cache", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gf-gate-") as tmp:
        repo, build_dir = copy_repo(Path(tmp) / "repo"), Path(tmp) / "build"
        gate = ["--target", args.target, "-j", args.jobs, *args.cells]
        if not args.keep_engine_cache:
            forget_images()

        cold = guestforge(repo, build_dir, "verify", *gate)
        before = datastore_layers(cold)
        noop = guestforge(repo, build_dir, "verify", *gate)

        agent_file = repo / AGENT_FILE
        if AGENT_EDIT[0] not in agent_file.read_text():
            raise SystemExit(f"bench: {AGENT_FILE} no longer holds {AGENT_EDIT[0]!r}; update AGENT_EDIT")
        agent_file.write_text(agent_file.read_text().replace(*AGENT_EDIT))
        agent = guestforge(repo, build_dir, "verify", *gate)
        after = datastore_layers(agent)
        layers_rebuilt = sum(len(set(after.get(c, [])) - set(layers)) for c, layers in before.items())
        layer_before, layer_after = agent_layer(cold), agent_layer(agent)

        with agent_file.open("a") as f:
            f.write("# bench: a comment, the same agent tree\n")
        cutoff = guestforge(repo, build_dir, "verify", *gate)

        matrix = repo / "matrix.yaml"
        matrix.write_text(matrix.read_text().replace(*MATRIX_EDIT))
        version = guestforge(repo, build_dir, "verify", *gate)

        total = len(cold.report["nodes"])
        print(f"\nGate benchmark: target {args.target}, {total} nodes, jobs={args.jobs}")
        print(f"1. cold gate             {cold.seconds:8.1f} s   exit {cold.exit_code}, "
              f"{len(redone(cold))} nodes built/verified")
        print(f"2. no-op gate            {noop.seconds:8.1f} s   {len(redone(noop))} nodes redone "
              f"(target <= 5 s: {'met' if noop.seconds <= 5 else 'MISSED'})")
        ratio = agent.seconds / cold.seconds if cold.seconds else 0
        print(f"3. agent-only change     {agent.seconds:8.1f} s   {ratio:.1%} of cold "
              f"(target <= 20%: {'met' if ratio <= 0.2 else 'MISSED'}); "
              f"datastore nodes redone: {len([n for n in redone(agent) if n.startswith('datastore:')])}, "
              f"datastore layers rebuilt: {layers_rebuilt}")
        print(f"   agent layer {layer_before[:19]} -> {layer_after[:19]}")
        print(f"   redone: {', '.join(redone(agent))}")
        print(f"   node seconds by kind: {seconds_by_kind(agent)}")
        reused = [n["node"] for n in cutoff.nodes("cached") if n["node"] in redone(agent)]
        print(f"3b. agent file, same tree {cutoff.seconds:8.1f} s   {cutoff.seconds / cold.seconds:.1%} of cold; "
              f"agent layer {agent_layer(cutoff)[:19]}; redone: {', '.join(redone(cutoff)) or 'none'}; "
              f"{len(reused)} nodes below it cut off")
        others = [n for n in redone(version) if CHANGED_CELL not in n]
        print(f"4. one version changed  {version.seconds:8.1f} s   {len(redone(version))} nodes redone, "
              f"{len(others)} outside {CHANGED_CELL}")
        print(f"   redone: {', '.join(redone(version))}")
        ok = all(r.exit_code == 0 for r in (cold, noop, agent, cutoff, version))
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
