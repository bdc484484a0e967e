"""Checks that relate matrix values to each other. Pure: they read, never change."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from builder.errors import Problem
from builder.matrix.models import Matrix
from builder.matrix.yamlsrc import Located, Path


def _undefined(kind: str, name: str, defined: Sequence[str]) -> str:
    known = ", ".join(sorted(defined)) or "none"
    return f"undefined {kind} {name!r} (defined: {known})"


def _duplicates(loc: Located, path: Path, items: Sequence[str] | None) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, item in enumerate(items or ()):
        if item in seen:
            yield loc.problem(path + (i,), f"duplicate entry {item!r} (also at [{seen[item]}])")
        seen.setdefault(item, i)


def _version_source(loc: Located, path: Path, base: str | None, packages: list[str] | None,
                    image: str | None) -> Iterator[Problem]:
    if image is not None:
        for field, value in (("base", base), ("packages", packages)):
            if value is not None:
                yield loc.problem(path + (field,), "not allowed together with 'image' (an upstream image "
                                  "brings its own OS and packages)")
        return
    if packages is None:
        yield loc.problem(path, "missing required field: either 'packages' (with 'base') or 'image'")
        return
    if not packages:
        yield loc.problem(path + ("packages",), "must list at least one package")
    if base is None:
        yield loc.problem(path + ("base",), "missing required field (distro-package versions need a base)")


def check_matrix(matrix: Matrix, loc: Located) -> list[Problem]:
    """Every cross-field problem in ``matrix``; empty when it is consistent."""
    problems: list[Problem] = []
    bases, exporters = matrix.bases.keys(), matrix.exporters.keys()

    def need_base(path: Path, name: str | None) -> None:
        if name is not None and name not in bases:
            problems.append(loc.problem(path, _undefined("base", name, list(bases))))

    def need_exporter(path: Path, name: str | None) -> None:
        if name is not None and name not in exporters:
            problems.append(loc.problem(path, _undefined("exporter", name, list(exporters))))

    need_base(("agent", "base"), matrix.agent.base)
    need_base(("guest", "base"), matrix.guest.base)
    problems += _duplicates(loc, ("defaults", "targets"), matrix.defaults.targets)
    for name, base in matrix.bases.items():
        problems += _duplicates(loc, ("bases", name, "components"), base.components)
    for name, exporter in matrix.exporters.items():
        need_base(("exporters", name, "base"), exporter.base)
        problems += _duplicates(loc, ("exporters", name, "packages"), exporter.packages)

    cells: dict[str, Path] = {}
    for ds_name, ds in matrix.datastores.items():
        ds_path: Path = ("datastores", ds_name)
        need_exporter(ds_path + ("exporter",), ds.exporter)
        problems += _duplicates(loc, ds_path + ("targets",), ds.targets)
        for ver_name, ver in ds.versions.items():
            path = ds_path + ("versions", ver_name)
            problems += _version_source(loc, path, ver.base, ver.packages, ver.image)
            need_base(path + ("base",), ver.base)
            need_exporter(path + ("exporter",), ver.exporter)
            problems += _duplicates(loc, path + ("packages",), ver.packages)
            problems += _duplicates(loc, path + ("targets",), ver.targets)
            cell = f"{ds_name}-{ver_name}"
            if cell in cells:
                other = ".".join(str(p) for p in cells[cell])
                problems.append(loc.problem(path, f"cell name {cell!r} is also produced by {other}"))
            cells.setdefault(cell, path)
    return problems
