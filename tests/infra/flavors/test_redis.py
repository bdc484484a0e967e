"""The Redis / Valkey runtime contract (the official images'): command-line pass-through, password."""

from __future__ import annotations

from typing import Any

import pytest
from docker.models.containers import Container

from builder.flavors import FlavorRuntime, Secrets
from builder.verify.pod import CellInfo, Pod, wait_exit
from tests.infra.conftest import Query, docker_host, ok_output, processes, run_command


@pytest.fixture(scope="module", autouse=True)
def _only_redis(cell: CellInfo) -> None:
    if cell.flavor != "redis":
        pytest.skip(f"{cell.name} is not a redis-flavor cell")
    if cell.upstream:
        pytest.skip("REDIS_PASSWORD is guestforge's contract; upstream redis/valkey images have none")


def _query(container: Container, cell: CellInfo, runtime: FlavorRuntime, secrets: Secrets, statement: str) -> str:
    return ok_output(run_command(docker_host(container), runtime.query(cell, secrets, statement)))


def test_the_password_stays_off_the_server_command_line(sandbox_host: Any, db_host: Any, cell: CellInfo,
                                                        runtime: FlavorRuntime, secrets: Secrets) -> None:
    server = runtime.server_process(cell)
    procs = processes(sandbox_host, server)
    assert procs, f"no {server} process in the pod"
    for pid, _, _ in procs:
        assert secrets.password not in sandbox_host.check_output("tr '\\0' ' ' < /proc/%s/cmdline", str(pid))
    # The server's environment too (the entrypoint unsets the variable before exec; the server then
    # reuses that memory for its process title). Only the server's user may read it: read it from
    # inside the database container, where a permission error fails the command.
    pids = db_host.check_output(
        "for d in /proc/[0-9]*; do if [ \"$(cat $d/comm 2>/dev/null)\" = %s ]; then echo ${d#/proc/}; fi; done",
        server).split()
    assert pids, f"no {server} process visible in the database container"
    for pid in pids:
        assert secrets.password not in db_host.check_output("tr '\\0' '\\n' < /proc/%s/environ", pid)


def test_command_line_passes_through(pod: Pod, cell: CellInfo, runtime: FlavorRuntime, secrets: Secrets) -> None:
    """`docker run IMAGE redis-server --appendonly yes` (or valkey-server) takes effect."""
    container = pod.oneoff(environment=runtime.db_env(secrets), command=[cell.start[0], "--appendonly", "yes"])
    pod.wait_ready(container, secrets)
    assert _query(container, cell, runtime, secrets, "CONFIG GET appendonly").splitlines() == ["appendonly", "yes"]
    pod.remove(container)


def test_options_alone_get_the_server_prepended(pod: Pod, cell: CellInfo, runtime: FlavorRuntime) -> None:
    """`docker run IMAGE --maxmemory 12mb`, with the password from a file."""
    secrets = Secrets(password="from-a-file\"'$\\")
    container = pod.oneoff(environment={"REDIS_PASSWORD_FILE": "/tmp/gf-password"},
                           files={"/tmp": {"gf-password": secrets.password}}, command=["--maxmemory", "12mb"])
    pod.wait_ready(container, secrets)
    assert _query(container, cell, runtime, secrets, "CONFIG GET maxmemory").splitlines() == \
        ["maxmemory", str(12 * 1024 * 1024)]
    pod.remove(container)


def test_a_config_file_argument_is_kept(pod: Pod, cell: CellInfo, runtime: FlavorRuntime, secrets: Secrets) -> None:
    """`docker run IMAGE redis-server /path/app.conf`: the file applies, the password still does."""
    container = pod.oneoff(environment=runtime.db_env(secrets), command=[cell.start[0], "/tmp/app.conf"],
                           files={"/tmp": {"app.conf": "databases 7\n"}})
    pod.wait_ready(container, secrets)
    assert _query(container, cell, runtime, secrets, "CONFIG GET databases").splitlines() == ["databases", "7"]
    pod.remove(container)


def test_persistence_files_land_in_the_data_volume(query: Query, db_host: Any, cell: CellInfo) -> None:
    ok_output(query("SET gf_persist yes"))
    assert ok_output(query("SAVE")) == "OK"
    assert db_host.file(f"{cell.data_dir}/dump.rdb").exists


def test_missing_password_refusal_is_one_line(pod: Pod, runtime: FlavorRuntime) -> None:
    code, logs = wait_exit(pod.oneoff())
    lines = [line for line in logs.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1, logs
