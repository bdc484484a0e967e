"""Conflicts inside one pod: values each fine alone that break a cell together. Pure: reads, never changes.

A cell runs its database, its exporter and the agent side by side (one pod; one all-in-one image holds
the database and agent users), so their ports, users and uids must differ. A problem is reported at the
field that causes it, once however many cells share it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from builder.errors import Problem
from builder.matrix.models import Datastore, Matrix, Version
from builder.matrix.yamlsrc import Located, Path, format_path


def _pick(ds_path: Path, ds: Datastore, ver_path: Path, ver: Version, field: str) -> tuple[Any, Path]:
    value = getattr(ver, field)
    return (value, ver_path + (field,)) if value is not None else (getattr(ds, field), ds_path + (field,))


def _pod(matrix: Matrix, loc: Located, ds_path: Path, ds: Datastore, ver_path: Path,
         ver: Version) -> Iterator[Problem]:
    user, user_at = _pick(ds_path, ds, ver_path, ver, "user")
    uid, uid_at = _pick(ds_path, ds, ver_path, ver, "uid")
    port, port_at = _pick(ds_path, ds, ver_path, ver, "port")
    ex_name, _ = _pick(ds_path, ds, ver_path, ver, "exporter")
    members: list[tuple[str, Path, str, int]] = []
    exporter = matrix.exporters.get(ex_name)
    if exporter is not None:
        ex_path: Path = ("exporters", ex_name)
        members.append((f"exporter {ex_name!r}", ex_path, exporter.user, exporter.uid))
        if exporter.port == port:
            yield loc.problem(port_at, f"port {port} is also the port of exporter {ex_name!r} "
                                       f"({format_path(ex_path + ('port',))}); one pod cannot bind it twice")
    members.append(("the agent", ("agent",), matrix.agent.user, matrix.agent.uid))
    for who, path, other_user, other_uid in members:
        where = format_path(path)
        if other_uid == uid:
            yield loc.problem(uid_at, f"uid {uid} is also the uid of {who} ({where}.uid); "
                                      "each process of a pod runs under its own uid")
        if other_user == user:
            yield loc.problem(user_at, f"user {user!r} is also the user of {who} ({where}.user); "
                                       "each process of a pod runs as its own user")


def _exporter_vs_agent(matrix: Matrix, loc: Located) -> Iterator[Problem]:
    agent = matrix.agent
    for name, exporter in matrix.exporters.items():
        path: Path = ("exporters", name)
        if exporter.uid == agent.uid:
            yield loc.problem(path + ("uid",), f"uid {exporter.uid} is also the agent's (agent.uid)")
        if exporter.user == agent.user:
            yield loc.problem(path + ("user",), f"user {exporter.user!r} is also the agent's (agent.user)")


def check_pods(matrix: Matrix, loc: Located) -> Iterator[Problem]:
    """Port, user and uid conflicts of every cell's pod, and exporter-versus-agent ones once each."""
    yield from _exporter_vs_agent(matrix, loc)
    for ds_name, ds in matrix.datastores.items():
        ds_path: Path = ("datastores", ds_name)
        for ver_name, ver in ds.versions.items():
            yield from _pod(matrix, loc, ds_path, ds, ds_path + ("versions", ver_name), ver)
