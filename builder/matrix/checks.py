"""Checks that relate matrix values to each other. Pure: they read, never change."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

from builder.errors import Problem
from builder.matrix.conflicts import check_pods
from builder.matrix.models import Matrix
from builder.matrix.names import check_names
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


def _program_first(loc: Located, path: Path, argv: Sequence[str] | None) -> Iterator[Problem]:
    if argv and argv[0].startswith("-"):
        yield loc.problem(path + (0,), f"the first element is the program and must not start with '-': {argv[0]!r}")


def _url(loc: Located, path: Path, url: str | None, local_ok: bool, credentials_ok: bool) -> Iterator[Problem]:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme == "file" and not local_ok:
        yield loc.problem(path, f"must be an http(s) URL; a file:// mirror needs 'allow_local_mirror: true': {url!r}")
    if (parts.username or parts.password) and not credentials_ok:
        yield loc.problem(path, "credentials in a URL end up in logs and image layers; remove them or set "
                                "'allow_url_credentials: true'")


def _references(matrix: Matrix, loc: Located) -> Iterator[Problem]:
    bases, exporters = list(matrix.bases), list(matrix.exporters)

    def need(kind: str, defined: list[str], path: Path, name: str | None) -> Iterator[Problem]:
        if name is not None and name not in defined:
            yield loc.problem(path, _undefined(kind, name, defined))

    yield from need("base", bases, ("agent", "base"), matrix.agent.base)
    yield from need("base", bases, ("guest", "base"), matrix.guest.base)
    for name, exporter in matrix.exporters.items():
        yield from need("base", bases, ("exporters", name, "base"), exporter.base)
    for ds_name, ds in matrix.datastores.items():
        yield from need("exporter", exporters, ("datastores", ds_name, "exporter"), ds.exporter)
        for ver_name, ver in ds.versions.items():
            path = ("datastores", ds_name, "versions", ver_name)
            yield from need("base", bases, path + ("base",), ver.base)
            yield from need("exporter", exporters, path + ("exporter",), ver.exporter)


def _fields(matrix: Matrix, loc: Located) -> Iterator[Problem]:
    yield from _duplicates(loc, ("defaults", "targets"), matrix.defaults.targets)
    yield from _url(loc, ("agent", "index_url"), matrix.agent.index_url, False, matrix.agent.allow_url_credentials)
    for name, base in matrix.bases.items():
        yield from _duplicates(loc, ("bases", name, "components"), base.components)
        for field in ("mirror", "security_mirror"):
            yield from _url(loc, ("bases", name, field), getattr(base, field), base.allow_local_mirror,
                            base.allow_url_credentials)
    for name, exporter in matrix.exporters.items():
        yield from _duplicates(loc, ("exporters", name, "packages"), exporter.packages)
        yield from _program_first(loc, ("exporters", name, "command"), exporter.command)
    for ds_name, ds in matrix.datastores.items():
        ds_path: Path = ("datastores", ds_name)
        yield from _duplicates(loc, ds_path + ("targets",), ds.targets)
        for field in ("start", "health"):
            yield from _program_first(loc, ds_path + (field,), getattr(ds, field))
        for ver_name, ver in ds.versions.items():
            path = ds_path + ("versions", ver_name)
            yield from _version_source(loc, path, ver.base, ver.packages, ver.image)
            yield from _duplicates(loc, path + ("packages",), ver.packages)
            yield from _duplicates(loc, path + ("targets",), ver.targets)
            for field in ("start", "health"):
                yield from _program_first(loc, path + (field,), getattr(ver, field))


def check_matrix(matrix: Matrix, loc: Located) -> list[Problem]:
    """Every cross-field problem in ``matrix``; empty when it is consistent."""
    return [*_references(matrix, loc), *_fields(matrix, loc), *check_names(matrix, loc), *check_pods(matrix, loc)]
