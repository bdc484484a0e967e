"""Turn a venv made by the builder's python3.11 into a self-contained tree (runs inside the builder image).

After this script, VENV holds:

    VENV/runtime/bin/python3.11          Debian's interpreter, PT_INTERP and DT_RPATH rewired into the tree
    VENV/runtime/lib/ld-linux-x86-64.so.2, libc.so.6, ...   every shared library anything in the tree needs
    VENV/runtime/lib/python3.11/         the complete standard library (lib-dynload included)
    VENV/bin, VENV/lib/python3.11/site-packages   the venv, pointing at VENV/runtime/bin

Nothing outside VENV is consulted at run time: the interpreter is loaded by the bundled ld.so, the
executable's DT_RPATH covers every object without its own DT_RUNPATH, and the bundled directory is appended
to every DT_RUNPATH found (manylinux wheels). No LD_LIBRARY_PATH is needed, so none leaks into the
processes the agent starts. The standard library is compiled here, site-packages by the builder's layer
before this one, both by compile_tree.py (bytecode only, unless --keep-sources).

Last, the finished tree alone is probed. The builder keeps it in a directory of its own (ROOT/VENV; VENV is
a symlink there, so every path written into the tree is the final one): run there by chroot(8) as the
agent's uid, with nothing else present (no libc, no /etc/passwd, no /proc), it must answer ``--version``;
what it reports (version, Python, datastore managers, distributions) goes to --facts.

Usage: python3.11 make_runtime.py --venv /opt/guest-agent-venv --entrypoint trove-guestagent
           --root /agent-tree --probe-uid 1100 --facts FILE [--prune RELPATH ...] [--keep-sources]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

PYVER = "3.11"
SYSTEM_PYTHON = Path(f"/usr/bin/python{PYVER}")
SYSTEM_STDLIB = Path(f"/usr/lib/python{PYVER}")
LOADER = "ld-linux-x86-64.so.2"
# Always bundled: the C library and its companions, even if no object names them today. Nothing else of
# glibc's is: the files NSS module is built into libc.so.6, and the agent runs with LC_ALL=C (glibc's
# built-in locale), so neither locale files nor iconv modules are read from the base.
ALWAYS = ("libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1",
          "libresolv.so.2", "libgcc_s.so.1", "libstdc++.so.6")
# Not needed at run time, and the only places where test keys and sample credentials live.
PRUNE_DIRS = ("tests", "test", "idlelib", "tkinter", "turtledemo", "ensurepip")
# Debian's own bytecode of its standard library is timestamp-based: compiled again in the tree instead.
STDLIB_SKIP = (*PRUNE_DIRS, "__pycache__")
COMPILE = Path(__file__).with_name("compile_tree.py")
LDD_LINE = re.compile(r"^\s*(\S+)(?:\s+=>\s+(\S+|not found))?\s+\(0x[0-9a-f]+\)\s*$")


def log(msg: str) -> None:
    print(f"make_runtime: {msg}", flush=True)


def is_elf(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def elf_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if is_elf(p))


def out(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def ldd(path: Path) -> dict[str, Path]:
    """soname -> resolved path for every library ``path`` loads (transitively), per the builder's ld.so."""
    deps: dict[str, Path] = {}
    proc = subprocess.run(["ldd", str(path)], capture_output=True, text=True)
    text = proc.stdout + proc.stderr
    if "not a dynamic executable" in text or "statically linked" in text:
        return deps
    if proc.returncode != 0:
        raise SystemExit(f"ldd {path} failed: {text.strip()}")
    for line in text.splitlines():
        m = LDD_LINE.match(line)
        if not m:
            continue
        name, target = m.group(1), m.group(2)
        if name.startswith("linux-vdso"):
            continue
        if target == "not found":
            raise SystemExit(f"{path}: needs {name}, which the builder cannot resolve")
        if target is None:  # the loader line: /lib64/ld-linux-x86-64.so.2 (0x...)
            deps[Path(name).name] = Path(name)
        else:
            deps[name] = Path(target)
    return deps


def copy_stdlib(dest: Path) -> None:
    def ignore(directory: str, names: list[str]) -> set[str]:
        return {n for n in names if n in STDLIB_SKIP or n.startswith("config-") or n == "dist-packages"}

    shutil.copytree(SYSTEM_STDLIB, dest, symlinks=True, ignore=ignore)


def make_runtime(venv: Path) -> Path:
    runtime = venv / "runtime"
    if runtime.exists():
        shutil.rmtree(runtime)
    (runtime / "bin").mkdir(parents=True)
    libdir = runtime / "lib"
    libdir.mkdir()
    python = runtime / "bin" / f"python{PYVER}"
    shutil.copy2(SYSTEM_PYTHON, python)
    copy_stdlib(libdir / f"python{PYVER}")
    return runtime


def repoint_venv(venv: Path, runtime: Path) -> None:
    """Make the venv's interpreter the bundled one (pyvenv.cfg ``home`` and the bin/ symlinks)."""
    cfg = venv / "pyvenv.cfg"
    lines = []
    for line in cfg.read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if key == "home":
            line = f"home = {runtime / 'bin'}"
        elif key == "executable":
            line = f"executable = {runtime / 'bin' / f'python{PYVER}'}"
        elif key == "command":
            line = f"command = {runtime / 'bin' / f'python{PYVER}'} -m venv {venv}"
        lines.append(line)
    cfg.write_text("\n".join(lines) + "\n")
    bindir = venv / "bin"
    for name in ("python", "python3", f"python{PYVER}"):
        link = bindir / name
        if link.is_symlink() or link.exists():
            link.unlink()
    os.symlink(f"../runtime/bin/python{PYVER}", bindir / f"python{PYVER}")
    os.symlink(f"python{PYVER}", bindir / "python3")
    os.symlink(f"python{PYVER}", bindir / "python")
    # Activation scripts are for interactive shells and name the builder's paths; the agent needs none.
    for script in bindir.glob("activate*"):
        script.unlink()
    for script in bindir.glob("Activate.ps1"):
        script.unlink()


def prune(venv: Path, extra: list[str]) -> None:
    site = venv / "lib" / f"python{PYVER}" / "site-packages"
    for rel in extra:
        target = site / rel
        if not target.exists():
            raise SystemExit(f"--prune {rel}: not in {site}")
        shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
    for name in PRUNE_DIRS:
        for d in sorted(site.rglob(name), reverse=True):
            if d.is_dir() and not d.is_symlink():
                shutil.rmtree(d)


def bundle_libraries(venv: Path, runtime: Path) -> list[str]:
    """Copy into runtime/lib every library an ELF object of the tree needs that lives outside the tree."""
    libdir = runtime / "lib"
    needed: dict[str, Path] = {}
    tree = venv.resolve()   # venv is a symlink to the tree's own root (see --root)
    for elf in elf_files(venv):
        for soname, path in ldd(elf).items():
            if not path.resolve().is_relative_to(tree):
                needed.setdefault(soname, path)
    system_dirs = [Path("/lib/x86_64-linux-gnu"), Path("/usr/lib/x86_64-linux-gnu")]
    for soname in ALWAYS:
        if soname not in needed:
            found = next((d / soname for d in system_dirs if (d / soname).exists()), None)
            if found is None:
                raise SystemExit(f"{soname} not found in the builder")
            needed[soname] = found
    # The always-bundled libraries' own dependencies (libstdc++ -> libgcc_s, libm).
    for soname, path in list(needed.items()):
        for dep, dep_path in ldd(path).items():
            needed.setdefault(dep, dep_path)
    for soname, path in sorted(needed.items()):
        shutil.copy2(path.resolve(), libdir / soname)
    return sorted(needed)


def runpath(elf: Path) -> str:
    return out(["patchelf", "--print-rpath", str(elf)]).strip()


def rewire(venv: Path, runtime: Path) -> None:
    libdir = runtime / "lib"
    python = runtime / "bin" / f"python{PYVER}"
    subprocess.run(["patchelf", "--set-interpreter", str(libdir / LOADER), "--force-rpath",
                    "--set-rpath", str(libdir), str(python)], check=True)
    # Objects with their own DT_RUNPATH (wheels repaired by auditwheel) do not consult the executable's
    # DT_RPATH: append the bundled directory to theirs.
    for elf in elf_files(venv):
        if elf.parent == libdir or elf == python:
            continue
        rp = runpath(elf)
        if rp and str(libdir) not in rp.split(":"):
            subprocess.run(["patchelf", "--set-rpath", f"{rp}:{libdir}", str(elf)], check=True)
        if interpreter(elf):  # an executable shipped by a wheel
            subprocess.run(["patchelf", "--set-interpreter", str(libdir / LOADER), str(elf)], check=True)


def interpreter(elf: Path) -> str | None:
    proc = subprocess.run(["patchelf", "--print-interpreter", str(elf)], capture_output=True, text=True)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def compile_stdlib(venv: Path, runtime: Path, keep_sources: bool) -> None:
    """Compile the bundled standard library with the tree's own interpreter (site-packages already are)."""
    argv = [str(venv / "bin" / "python3"), str(COMPILE), *(["--keep-sources"] if keep_sources else []),
            str(runtime / "lib" / f"python{PYVER}")]
    subprocess.run(argv, check=True)


# Run by the tree's interpreter in the probe root: what the built agent is, from the agent itself.
FACTS_SCRIPT = """
import importlib.metadata as md, json, platform
import ssl, ctypes, sqlite3, lzma, bz2, zlib, hashlib, _decimal, uuid, pyexpat, readline, curses
from trove.common.constants import REGISTRY_EXT_DEFAULTS as managers
print(json.dumps({'python': platform.python_version(), 'managers': sorted(managers),
                  'packages': sorted(f"{d.metadata['Name']}=={d.version}" for d in md.distributions())}))
"""


def check_root(root: Path, venv: Path) -> None:
    """The venv must live in ``root`` at its own path (``venv`` is a symlink to it), and nothing else there."""
    inside = root / venv.relative_to("/")
    if not inside.is_dir() or inside.resolve() != venv.resolve():
        raise SystemExit(f"--root {root}: {venv} must resolve to {inside}")
    path = root
    for part in venv.relative_to("/").parts:
        if (entries := sorted(os.listdir(path))) != [part]:
            raise SystemExit(f"--root {root}: {path} must hold only {part}, it holds {entries[:5]}")
        path = path / part


def probe(root: Path, venv: Path, entrypoint: str, uid: int) -> dict[str, object]:
    """Run the finished tree chrooted into ``root``, with nothing else around it, as ``uid``: a file it
    needs from outside itself (a library, the loader, a module) is simply not there."""
    chroot = ["/usr/sbin/chroot", f"--userspec={uid}:{uid}", str(root)]
    env = {"LC_ALL": "C", "PYTHONUTF8": "1", "HOME": "/"}   # LC_ALL=C: glibc's built-in locale

    def run(argv: list[str]) -> str:
        proc = subprocess.run([*chroot, *argv], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"the tree alone, as uid {uid}: {' '.join(argv[:2])} exited with "
                             f"{proc.returncode}:\n{proc.stderr.strip()[-2000:]}")
        return proc.stdout.strip()

    version = run([f"{venv}/bin/{entrypoint}", "--version"]).splitlines()
    facts: dict[str, object] = json.loads(run([f"{venv}/bin/python3", "-I", "-c", FACTS_SCRIPT]).splitlines()[-1])
    facts["version"] = version[-1].strip() if version else ""
    log(f"{entrypoint} --version, alone as uid {uid}: {facts['version']}")
    return facts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--venv", type=Path, required=True)
    parser.add_argument("--entrypoint", required=True)
    parser.add_argument("--root", type=Path, required=True,
                        help="the directory that holds the tree at the venv's path, and nothing else")
    parser.add_argument("--probe-uid", type=int, required=True, help="the agent's uid, to probe the tree as")
    parser.add_argument("--facts", type=Path, required=True, help="where to write what the probe reported")
    parser.add_argument("--keep-sources", action="store_true", help="ship NAME.py beside its bytecode")
    parser.add_argument("--prune", action="append", default=[], metavar="RELPATH",
                        help="package data to drop, relative to site-packages (repeatable)")
    args = parser.parse_args()
    venv: Path = args.venv
    check_root(args.root, venv)
    runtime = make_runtime(venv)
    repoint_venv(venv, runtime)
    prune(venv, args.prune)
    libs = bundle_libraries(venv, runtime)
    log(f"bundled {len(libs)} libraries: {' '.join(libs)}")
    rewire(venv, runtime)
    compile_stdlib(venv, runtime, args.keep_sources)
    facts = probe(args.root, venv, args.entrypoint, args.probe_uid)
    args.facts.parent.mkdir(parents=True, exist_ok=True)
    args.facts.write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
