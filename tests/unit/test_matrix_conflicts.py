"""Cross-field conflicts inside one pod, and derived names two entries share: each names both entries."""

from __future__ import annotations

import pytest

from builder.errors import InputError
from builder.matrix.loader import parse_matrix
from tests.conftest import ROOT

MATRIX = (ROOT / "matrix.yaml").read_text()
PG15 = '"15": {base: "debian:bookworm", packages: [postgresql-15]}'
MARIA = '"10.11": {base: "debian:bookworm", packages: [mariadb-server]}'


def edit(*pairs: tuple[str, str]) -> str:
    text = MATRIX
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


@pytest.mark.parametrize("pairs,expected", [
    ([(MARIA, MARIA + '\n      "10-11": {base: "debian:bookworm", packages: [mariadb-server]}')],
     "versions.10-11: derived Kubernetes name 'mariadb-10-11' is also derived from datastores.mariadb.versions.10.11"),
    ([(PG15, PG15 + '\n      "15-aio": {base: "debian:bookworm", packages: [postgresql-15]}')],
     "versions.15-aio: derived image tag 'guestforge/postgresql:15-aio' is also derived from "
     "datastores.postgresql.versions.15"),
    ([(PG15, PG15 + '\n      "13-bullseye": {base: "debian:bookworm", packages: [postgresql-15]}')],
     "cell name 'postgresql-13-bullseye' is also the selector name of datastores.postgresql.versions.13"),
    ([("  debian:trixie: {suite: trixie}", "  debian:trixie: {suite: trixie}\n  other:trixie: {suite: trixie}")],
     "bases.other:trixie: derived image tag 'guestforge/base:trixie' is also derived from bases.debian:trixie"),
    ([("  redis_exporter:", "  agent:"), ("exporter: redis_exporter", "exporter: agent"),
      ("exporter: redis_exporter", "exporter: agent")], "exporters.agent: 'agent' is reserved"),
    ([("port: 5432", "port: 9187")], "datastores.postgresql.port: port 9187 is also the port of exporter "
                                     "'postgres_exporter'"),
    ([("uid: 999", "uid: 1100")], "datastores.postgresql.uid: uid 1100 is also the uid of the agent (agent.uid)"),
    ([("user: postgres", "user: trove")], "datastores.postgresql.user: user 'trove' is also the user of the agent"),
    ([(PG15, '"15": {base: "debian:bookworm", packages: [postgresql-15], uid: 1200}')],
     "versions.15.uid: uid 1200 is also the uid of exporter 'postgres_exporter'"),
])
def test_conflict_names_both_entries(pairs: list[tuple[str, str]], expected: str) -> None:
    with pytest.raises(InputError) as info:
        parse_matrix(edit(*pairs), "m.yaml")
    assert any(expected in line for line in str(info.value).splitlines()), str(info.value)
