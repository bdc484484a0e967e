"""The PostgreSQL runtime contract (the official postgres image's): environment, init scripts, auth."""

from __future__ import annotations

from typing import Any

import pytest
from docker.models.containers import Container

from builder.flavors import FlavorRuntime, Secrets
from builder.verify.pod import CellInfo, Pod
from tests.infra.conftest import Query, docker_host, gz, ok_output, run_command


@pytest.fixture(scope="module", autouse=True)
def _only_postgresql(cell: CellInfo) -> None:
    if cell.flavor != "postgresql":
        pytest.skip(f"{cell.name} is not a postgresql cell")


def _major(cell: CellInfo) -> int:
    return int(cell.version.split(".")[0])


def test_superuser_and_database_come_from_the_environment(query: Query, secrets: Secrets) -> None:
    assert ok_output(query("SELECT current_user, current_database()")) == f"{secrets.user}\t{secrets.database}"
    assert ok_output(query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")) == "t"


def test_host_connections_need_a_password(query: Query, cell: CellInfo) -> None:
    method = "scram-sha-256" if _major(cell) >= 14 else "md5"
    rules = ok_output(query("SELECT type, address, auth_method FROM pg_hba_file_rules WHERE type = 'host'"))
    assert f"host\tall\t{method}" in rules.splitlines(), rules
    assert "trust" not in rules
    stored = ok_output(query("SELECT left(rolpassword, 5) FROM pg_authid WHERE rolname = current_user"))
    assert stored.startswith("SCRAM" if method == "scram-sha-256" else "md5"), stored


def test_listens_on_every_address(query: Query) -> None:
    assert ok_output(query("SHOW listen_addresses")) == "*"


INIT_FILES: dict[str, bytes | str] = {
    "10-schema.sql": "CREATE TABLE gf_init (source text);\nINSERT INTO gf_init VALUES ('sql');\n",
    "20-data.sql.gz": gz("INSERT INTO gf_init VALUES ('sql.gz');\n"),
    "30-script.sh": ("#!/bin/sh\nset -e\npsql -v ON_ERROR_STOP=1 --username \"$POSTGRES_USER\" "
                     "--dbname \"$POSTGRES_DB\" -c \"INSERT INTO gf_init VALUES ('sh')\"\n"),
    "40-sourced.sh": "gf_sourced=yes\n",   # not executable: sourced by the entrypoint
    "README": "ignored\n",
}


INIT_SECRETS = Secrets(password="from-a-file'$", user="gf_init_user", database="gf_init_db")
PGDATA = "/var/lib/postgresql/data/pgdata"      # a subdirectory of the volume, as on Kubernetes


@pytest.fixture(scope="module")
def initialised(pod: Pod, runtime: FlavorRuntime) -> Container:
    """A database initialised with scripts, the password from a file, extra initdb arguments and PGDATA
    in a subdirectory of the volume."""
    env = {**runtime.db_env(INIT_SECRETS), "POSTGRES_PASSWORD_FILE": "/tmp/gf-password",
           "POSTGRES_INITDB_ARGS": "--data-checksums", "PGDATA": PGDATA}
    del env["POSTGRES_PASSWORD"]
    container = pod.oneoff(environment=env, files={"/docker-entrypoint-initdb.d": INIT_FILES,
                                                   "/tmp": {"gf-password": INIT_SECRETS.password}})
    pod.wait_ready(container, INIT_SECRETS)
    return container


def _init_query(container: Container, cell: CellInfo, runtime: FlavorRuntime, statement: str) -> str:
    return ok_output(run_command(docker_host(container), runtime.query(cell, INIT_SECRETS, statement)))


def test_init_scripts_run_in_order(initialised: Container, cell: CellInfo, runtime: FlavorRuntime) -> None:
    rows = _init_query(initialised, cell, runtime, "SELECT source FROM gf_init ORDER BY ctid")
    assert rows.splitlines() == ["sql", "sql.gz", "sh"]


def test_initdb_args_and_pgdata_apply(initialised: Container, cell: CellInfo, runtime: FlavorRuntime) -> None:
    assert _init_query(initialised, cell, runtime, "SHOW data_checksums") == "on"
    assert _init_query(initialised, cell, runtime, "SHOW data_directory") == PGDATA


def test_restart_keeps_data_and_skips_initialisation(pod: Pod, initialised: Container, cell: CellInfo,
                                                     runtime: FlavorRuntime) -> None:
    initialised.restart(timeout=30)
    pod.wait_ready(initialised, INIT_SECRETS)
    rows = _init_query(initialised, cell, runtime, "SELECT count(*) FROM gf_init")
    assert rows == "3", "the init scripts ran again (or the data is gone)"
    logs = bytes(initialised.logs()).decode(errors="replace")
    assert logs.count("init process complete") == 1
    assert "skipping initialisation" in logs


def test_entrypoint_passes_server_options_through(pod: Pod, cell: CellInfo, runtime: FlavorRuntime,
                                                   secrets: Secrets) -> None:
    container = pod.oneoff(environment=runtime.db_env(secrets), command=["-c", "max_connections=42"])
    pod.wait_ready(container, secrets)
    host: Any = docker_host(container)
    assert ok_output(run_command(host, runtime.query(cell, secrets, "SHOW max_connections"))) == "42"
    pod.remove(container)
