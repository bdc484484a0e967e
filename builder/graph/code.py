"""Code inputs derived, not listed: the repository Python files a node's action can execute.

A node's key hashes every repository module in the import closure of its action module (and of the
testinfra suites it runs), read through a ``Tree`` so ``affected --since REV`` derives the closure as of
REV with the same code. Imports are found with ``ast`` anywhere in a module (a function-level import
runs too); imports under ``if TYPE_CHECKING:`` never run and are skipped. Importing ``a.b.c`` runs
``a/__init__.py`` and ``a/b/__init__.py`` too, so package initialisers are part of the closure.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from builder.graph.trees import Tree

# Top-level packages whose modules are repository files (everything else is a dependency or stdlib).
LOCAL_PACKAGES = ("builder", "tests")


def module_file(tree: Tree, module: str) -> str | None:
    """``builder.oci.steps`` -> ``builder/oci/steps.py`` (or the package's ``__init__.py``)."""
    rel = module.replace(".", "/")
    for candidate in (f"{rel}.py", f"{rel}/__init__.py"):
        if tree.read(candidate) is not None:
            return candidate
    return None


def file_module(rel: str) -> str:
    """``builder/oci/steps.py`` -> ``builder.oci.steps``."""
    parts = rel[:-3].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(source: bytes, module: str, is_package: bool) -> set[str]:
    """Module names ``source`` imports at run time (``from a import b`` yields ``a`` and ``a.b``)."""
    try:
        parsed = ast.parse(source)
    except SyntaxError:
        return set()
    skip: set[int] = set()
    for node in ast.walk(parsed):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    names: set[str] = set()
    for node in ast.walk(parsed):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".", 1)[0] in LOCAL_PACKAGES}


def _with_packages(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def import_closure(tree: Tree, roots: Iterable[str], parsed: dict[str, set[str]] | None = None) -> list[str]:
    """Repository files (sorted) executed by importing ``roots`` (module names or ``.py`` paths). ``parsed``
    caches each file's imports across calls on one tree."""
    parsed = {} if parsed is None else parsed
    seen: set[str] = set()
    stack: list[str] = []
    for root in roots:
        stack.append(file_module(root) if root.endswith(".py") else root)
    while stack:
        for module in _with_packages(stack.pop()):
            rel = module_file(tree, module)
            if rel is None or rel in seen:
                continue
            seen.add(rel)
            if rel not in parsed:
                source = tree.read(rel)
                assert source is not None
                parsed[rel] = _imported(source, module, rel.endswith("__init__.py"))
            stack.extend(parsed[rel])
    return sorted(seen)
