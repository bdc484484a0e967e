"""Expand a matrix into cells (one datastore version each) and select among them."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from builder.errors import GuestforgeError, UsageError
from builder.matrix.models import Base, Datastore, Exporter, Flavor, Matrix, Resources, Target, Version
from builder.spec import CellSpec, ExporterSpec


@dataclass(frozen=True)
class Cell:
    """Everything one datastore version needs, with defaults and overrides resolved."""

    name: str
    datastore: str
    version: str
    flavor: Flavor
    user: str
    uid: int
    port: int
    data_dir: str
    start: tuple[str, ...]
    health: tuple[str, ...]
    client: str
    exporter_name: str
    exporter: Exporter
    targets: tuple[Target, ...]
    base_name: str | None = None
    base: Base | None = None
    packages: tuple[str, ...] = ()
    image: str | None = None
    # The matrix's ``resources:`` layers, datastore first then version (builder/k8s/resources.py merges them).
    resources: tuple[Resources, ...] = ()

    @property
    def upstream(self) -> bool:
        """True when the database comes from an upstream image rather than distro packages."""
        return self.image is not None

    @property
    def aliases(self) -> tuple[str, ...]:
        """Names a selector may match: ``postgresql-15`` and ``postgresql-15-bookworm``."""
        return (self.name, f"{self.name}-{self.base.suite}") if self.base else (self.name, f"{self.name}-upstream")

    def exporter_spec(self) -> ExporterSpec:
        return ExporterSpec(name=self.exporter_name, **self.exporter.model_dump())

    def spec(self, exporter: bool = False) -> CellSpec:
        """The cell's spec (``builder.spec``); with its exporter for the checks that need one."""
        return CellSpec(name=self.name, datastore=self.datastore, version=self.version, flavor=self.flavor,
                        user=self.user, uid=self.uid, port=self.port, data_dir=self.data_dir, start=self.start,
                        health=self.health, client=self.client, packages=self.packages, upstream=self.upstream,
                        exporter=self.exporter_spec() if exporter else None)

    @classmethod
    def from_spec(cls, spec: CellSpec, image: str | None = None, targets: Sequence[Target] = ()) -> Cell:
        """A cell rebuilt from a node's declared spec (with its exporter), so an action uses exactly
        what its key hashes and nothing else."""
        if spec.exporter is None:
            raise GuestforgeError(f"internal: the spec of {spec.name} carries no exporter")
        ex = spec.exporter
        return cls(name=spec.name, datastore=spec.datastore, version=spec.version, flavor=spec.flavor,
                   user=spec.user, uid=spec.uid, port=spec.port, data_dir=spec.data_dir, start=spec.start,
                   health=spec.health, client=spec.client, exporter_name=ex.name,
                   exporter=Exporter(**ex.model_dump(exclude={"name"})), targets=tuple(targets),
                   packages=spec.packages, image=image)

    def source(self) -> dict[str, object]:
        """Where the database comes from, as plain data."""
        if self.image:
            return {"image": self.image}
        assert self.base is not None
        return {"base": self.base_name, "suite": self.base.suite, "packages": list(self.packages)}


def _cell(matrix: Matrix, ds_name: str, ds: Datastore, ver_name: str, ver: Version) -> Cell:
    def pick(field: str) -> Any:
        value = getattr(ver, field)
        return value if value is not None else getattr(ds, field)

    targets = ver.targets or ds.targets or matrix.defaults.targets
    exporter_name = str(pick("exporter"))
    return Cell(
        name=f"{ds_name}-{ver_name}",
        datastore=ds_name,
        version=ver_name,
        flavor=ds.flavor,
        user=str(pick("user")),
        uid=int(pick("uid")),
        port=int(pick("port")),
        data_dir=str(pick("data_dir")),
        start=tuple(pick("start")),
        health=tuple(pick("health")),
        client=str(pick("client")),
        exporter_name=exporter_name,
        exporter=matrix.exporters[exporter_name],
        targets=tuple(targets),
        base_name=ver.base,
        base=matrix.bases[ver.base] if ver.base else None,
        packages=tuple(ver.packages or ()),
        image=ver.image,
        resources=tuple(r for r in (ds.resources, ver.resources) if r is not None),
    )


def expand(matrix: Matrix) -> list[Cell]:
    """All cells of a validated matrix, in matrix order."""
    return [
        _cell(matrix, ds_name, ds, ver_name, ver)
        for ds_name, ds in matrix.datastores.items()
        for ver_name, ver in ds.versions.items()
    ]


def select(cells: Sequence[Cell], selectors: Iterable[str], target: Target | None = None) -> list[Cell]:
    """Cells matching any glob selector (all when none given) that want ``target``.

    A selector that matches no cell is an error: a typo must not silently build nothing.
    """
    selectors = list(selectors)
    chosen = []
    unmatched = set(selectors)
    for cell in cells:
        hits = [s for s in selectors if any(fnmatch.fnmatchcase(a, s) for a in cell.aliases)]
        unmatched.difference_update(hits)
        if (hits or not selectors) and (target is None or target in cell.targets):
            chosen.append(cell)
    if unmatched:
        known = ", ".join(c.name for c in cells)
        raise UsageError(f"selector matches no cell: {', '.join(sorted(unmatched))} (cells: {known})")
    return chosen
