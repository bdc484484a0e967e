"""Every name guestforge derives from the matrix, checked for grammar and uniqueness before anything runs.

Cells name build directories, logs and selectors; datastores, exporters and bases name image repositories
and moving tags (``builder.oci.naming``); cells name Kubernetes objects (DNS-1123 labels). Two entries that
derive the same name would overwrite each other's images or objects, so each collision names both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from builder.errors import Problem
from builder.matrix.models import Matrix
from builder.matrix.yamlsrc import Located, Path, format_path
from builder.oci.naming import base_repo, datastore_repo, dns_label, exporter_repo

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# Repositories guestforge itself names (agent sidecar, bases, debug helper): no datastore or exporter may.
RESERVED = frozenset({"agent", "base", "debug"})
# Kubernetes objects named CELL-SUFFIX, the longest suffix first.
_K8S_SUFFIXES = ("-agent-config", "-credentials", "-data")


class _Registry:
    """First entry to derive each name, so a second one can say whom it collides with."""

    def __init__(self, loc: Located):
        self.loc = loc
        self.seen: dict[tuple[str, str], Path] = {}
        self.problems: list[Problem] = []

    def claim(self, kind: str, name: str, path: Path) -> None:
        first = self.seen.setdefault((kind, name), path)
        if first != path:
            self.problems.append(self.loc.problem(path, f"derived {kind} {name!r} is also derived from "
                                                        f"{format_path(first)}"))


def _reserved(matrix: Matrix, loc: Located) -> Iterator[Problem]:
    for section, names in (("datastores", matrix.datastores), ("exporters", matrix.exporters)):
        for name in names:
            if name in RESERVED:
                yield loc.problem((section, name), f"{name!r} is reserved (guestforge/{name} is guestforge's own "
                                                   f"image); reserved: {', '.join(sorted(RESERVED))}")


def _cell_names(matrix: Matrix, reg: _Registry) -> None:
    for ds_name, ds in matrix.datastores.items():
        for ver_name, ver in ds.versions.items():
            path: Path = ("datastores", ds_name, "versions", ver_name)
            cell = f"{ds_name}-{ver_name}"
            reg.claim("cell name", cell, path)
            label = dns_label(cell)
            if len(cell) + max(map(len, _K8S_SUFFIXES)) > 63:
                reg.problems.append(reg.loc.problem(path, f"cell name {cell!r} is too long for its Kubernetes "
                                                          "names (at most 50 characters)"))
            reg.claim("Kubernetes name", label, path)
            suite = matrix.bases[ver.base].suite if ver.base in matrix.bases else "upstream"
            reg.claim("selector name", f"{cell}-{suite}", path)
            for allinone in (False, True):
                repo, tag = datastore_repo(ds_name, ver_name, allinone)
                reg.claim("image tag", f"{repo}:{tag}", path)


def check_names(matrix: Matrix, loc: Located) -> list[Problem]:
    """Reserved names, and every derived name that two entries share."""
    reg = _Registry(loc)
    for name in matrix.bases:
        reg.claim("image tag", ":".join(base_repo(name)), ("bases", name))
    for name in matrix.exporters:
        reg.claim("image tag", ":".join(exporter_repo(name)), ("exporters", name))
    _cell_names(matrix, reg)
    # A selector name claims NAME-SUITE, which must not be another cell's name either.
    cells = {name: path for (kind, name), path in reg.seen.items() if kind == "cell name"}
    for (kind, name), path in list(reg.seen.items()):
        if kind == "selector name" and name in cells:
            reg.problems.append(loc.problem(cells[name], f"cell name {name!r} is also the selector name of "
                                                         f"{format_path(path)} (CELL-SUITE)"))
    return [*_reserved(matrix, loc), *reg.problems]
