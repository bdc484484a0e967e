"""Every datastore cell, started as its pod: the database works, as its non-root user, and keeps data.

The flavor's own contract (environment variables, init scripts, command-line pass-through) is in
flavors/test_<flavor>.py. The restart check comes last: it restarts the database under the pod.
"""

from __future__ import annotations

from typing import Any

import pytest
from docker.models.containers import Container

from builder.flavors import FlavorRuntime, Secrets, version_matches
from builder.verify.pod import CellInfo, Pod, has_healthcheck, wait_exit
from tests.infra.conftest import Query, docker_host, healthy, ok_output, processes, run_command, wait_for

# Per flavor: (statement, expected output or None) steps of a create/insert/select/delete round trip.
ROUND_TRIPS: dict[str, list[tuple[str, str | None]]] = {
    "postgresql": [
        ("CREATE TABLE gf_round_trip (id int PRIMARY KEY, name text NOT NULL)", None),
        ("INSERT INTO gf_round_trip VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma')", None),
        ("SELECT id, name FROM gf_round_trip ORDER BY id", "1\talpha\n2\tbeta\n3\tgamma"),
        ("DELETE FROM gf_round_trip WHERE id = 2", None),
        ("SELECT id, name FROM gf_round_trip ORDER BY id", "1\talpha\n3\tgamma"),
        ("DROP TABLE gf_round_trip", None),
    ],
    "mysql": [
        ("CREATE TABLE gf_round_trip (id int PRIMARY KEY, name varchar(20) NOT NULL) ENGINE=InnoDB", None),
        ("INSERT INTO gf_round_trip VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma')", None),
        ("SELECT id, name FROM gf_round_trip ORDER BY id", "1\talpha\n2\tbeta\n3\tgamma"),
        ("DELETE FROM gf_round_trip WHERE id = 2", None),
        ("SELECT id, name FROM gf_round_trip ORDER BY id", "1\talpha\n3\tgamma"),
        ("DROP TABLE gf_round_trip", None),
    ],
    "redis": [
        ("RPUSH gf_round_trip alpha beta gamma", "3"),
        ("LRANGE gf_round_trip 0 -1", "alpha\nbeta\ngamma"),
        ("LREM gf_round_trip 0 beta", "1"),
        ("LRANGE gf_round_trip 0 -1", "alpha\ngamma"),
        ("DEL gf_round_trip", "1"),
        ("EXISTS gf_round_trip", "0"),
    ],
}

# Per flavor: write a marker, read it back (expected output "survives").
MARKER: dict[str, tuple[list[str], str]] = {
    "postgresql": (["CREATE TABLE gf_marker (v text)", "INSERT INTO gf_marker VALUES ('survives')"],
                   "SELECT v FROM gf_marker"),
    "mysql": (["CREATE TABLE gf_marker (v varchar(20)) ENGINE=InnoDB", "INSERT INTO gf_marker VALUES ('survives')"],
              "SELECT v FROM gf_marker"),
    "redis": (["SET gf_marker survives"], "GET gf_marker"),
}


def test_database_becomes_healthy(database: Container, cell: CellInfo) -> None:
    if cell.upstream and not has_healthcheck(database):
        pytest.skip("the upstream image declares no HEALTHCHECK")
    assert healthy(database), "the image's HEALTHCHECK did not report healthy"


def test_authenticated_query(query: Query, runtime: FlavorRuntime) -> None:
    assert ok_output(query(runtime.ping_statement)) == runtime.ping_reply


def test_round_trip_returns_the_right_rows(query: Query, cell: CellInfo) -> None:
    for statement, expected in ROUND_TRIPS[cell.flavor]:
        out = ok_output(query(statement))
        if expected is not None:
            assert out == expected, f"{statement!r} returned {out!r}, expected {expected!r}"


def test_wrong_password_is_rejected(query: Query, runtime: FlavorRuntime) -> None:
    result = query(runtime.ping_statement, password="not-the-password")
    assert result.rc != 0 or result.stdout.strip() != runtime.ping_reply, "a wrong password was accepted"
    result = query(runtime.ping_statement, password="")
    assert result.rc != 0 or result.stdout.strip() != runtime.ping_reply, "no password was accepted"


def test_reports_the_cell_version(query: Query, cell: CellInfo, runtime: FlavorRuntime) -> None:
    reported = runtime.reported_version(cell, ok_output(query(runtime.version_statement)))
    assert reported is not None and version_matches(cell.version, reported), \
        f"{cell.name}: the server reports version {reported!r}"


def test_server_runs_as_the_non_root_service_user(sandbox_host: Any, database: Container, cell: CellInfo,
                                                  runtime: FlavorRuntime) -> None:
    procs = processes(sandbox_host, runtime.server_process(cell))
    assert procs, f"no {runtime.server_process(cell)} process in the pod"
    assert {euid for _, euid, _ in procs} == {cell.uid}
    assert {ruid for _, _, ruid in procs} == {cell.uid}


def test_nothing_in_the_database_container_runs_as_root(sandbox_host: Any, database: Container) -> None:
    # The sandbox's PID namespace holds every container of the pod; the database container's
    # processes are the ones whose root is its root filesystem (ps shows what docker top shows).
    top = database.top(ps_args="-o pid,uid,comm")
    rows = [line for line in top["Processes"]]
    uid_col = top["Titles"].index("UID")
    assert rows and all(str(row[uid_col]) != "0" for row in rows), f"root processes: {rows}"


def test_listens_on_all_addresses(sandbox_host: Any, database: Container, cell: CellInfo) -> None:
    assert sandbox_host.socket(f"tcp://0.0.0.0:{cell.port}").is_listening, \
        f"the server does not listen on 0.0.0.0:{cell.port}"


def test_password_is_not_on_any_command_line(sandbox_host: Any, database: Container, secrets: Secrets) -> None:
    args = sandbox_host.check_output("ps -eww -o args")
    assert secrets.password not in args


def test_refuses_to_start_without_a_password(pod: Pod, cell: CellInfo, runtime: FlavorRuntime) -> None:
    if cell.upstream and cell.flavor == "redis":
        pytest.skip("the official redis/valkey images start without a password by design")
    code, logs = wait_exit(pod.oneoff())
    assert code != 0, "the database started with no password and no explicit allow-empty variable"
    if not cell.upstream:     # guestforge's message: one line, naming the variables and the ways out
        assert logs.strip().splitlines()[-1].startswith(runtime.missing_password_error), logs


def test_starts_without_a_password_when_told_to(pod: Pod, cell: CellInfo, runtime: FlavorRuntime) -> None:
    if cell.upstream and cell.flavor == "redis":
        pytest.skip("the official redis/valkey images have no allow-empty variable")
    container = pod.oneoff(environment=runtime.allow_empty_env)
    pod.wait_ready(container, Secrets(password=""))
    result = run_command(docker_host(container), runtime.query(cell, Secrets(password=""), runtime.ping_statement))
    assert ok_output(result) == runtime.ping_reply
    pod.remove(container)


def test_data_survives_a_database_restart(pod: Any, query: Query, cell: CellInfo, database: Container) -> None:
    writes, read = MARKER[cell.flavor]
    for statement in writes:
        ok_output(query(statement))
    started_before = database.attrs["State"]["StartedAt"]
    pod.restart_database()
    database.reload()
    assert database.attrs["State"]["StartedAt"] != started_before, "the container did not restart"
    wait_for(lambda: query(read).rc == 0, 30, "the database after restart")
    assert ok_output(query(read)) == "survives"
