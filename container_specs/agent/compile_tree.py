"""Turn the Python sources under each DIR into what the agent tree ships (runs inside the agent builder).

Each module is compiled to bytecode with unchecked-hash invalidation, so it stays valid whatever mtimes
the files get when the tree is repacked, and with a fixed hash seed, so the same sources give the same
bytes. Unless --keep-sources, each compiled module then ships as its bytecode alone (NAME.pyc where
NAME.py was, no __pycache__): the same code and start-up time in 45 % fewer files, and the layer's cost in
every consumer grows with its file count (Docker unpacks 16,600 small files in 10.5 s, one 280 MB file in
2.2 s). Tracebacks keep file names and line numbers, not the source lines. Files that are not Python 3.11
(templates, Python 2 leftovers) are skipped and keep their source.

The builder runs it twice: on site-packages in a layer of its own right after pip (it depends on nothing
but what pip installed, so a change to the bundling step compiles nothing of it again), and from
make_runtime.py on the bundled standard library.

Usage: python3.11 compile_tree.py [--keep-sources] DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import compileall
import os
import py_compile
import re
import shutil
import sys
from pathlib import Path

EXCLUDE = re.compile(r"/(lib2to3/tests|jinja2/asyncsupport|.*_py2)")


def compile_dir(path: Path) -> None:
    compileall.compile_dir(str(path), quiet=1, force=True, workers=0, rx=EXCLUDE,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


def drop_sources(root: Path) -> int:
    """Replace each compiled NAME.py by its bytecode as NAME.pyc (a sourceless module); return how many."""
    tag = f".{sys.implementation.cache_tag}.pyc"
    replaced = 0
    for cache in sorted(root.rglob("__pycache__"), reverse=True):
        for pyc in sorted(cache.glob(f"*{tag}")):
            source = cache.parent / (pyc.name[: -len(tag)] + ".py")
            if source.is_file() and not source.is_symlink():
                pyc.replace(source.with_suffix(".pyc"))
                source.unlink()
                replaced += 1
        shutil.rmtree(cache)  # left: bytecode whose source is not a plain file; it would never be read
    return replaced


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep-sources", action="store_true", help="ship NAME.py beside its bytecode")
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    args = parser.parse_args()
    if os.environ.get("PYTHONHASHSEED") != "0":   # the seed orders set constants in the bytecode
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0", "LC_ALL": "C"})
    for path in args.dirs:
        compile_dir(path)
        if not args.keep_sources:
            print(f"compile_tree: {path}: {drop_sources(path)} modules ship as bytecode only", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
