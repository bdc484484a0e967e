"""The MariaDB runtime contract (the official mariadb image's): environment, accounts, init scripts."""

from __future__ import annotations

import re

import pytest
from docker.models.containers import Container

from builder.flavors import FlavorRuntime, Secrets
from builder.verify.pod import CellInfo, Pod, wait_healthy
from tests.infra.conftest import Query, docker_host, gz, ok_output, run_command


@pytest.fixture(scope="module", autouse=True)
def _only_mysql(cell: CellInfo) -> None:
    if cell.flavor != "mysql":
        pytest.skip(f"{cell.name} is not a mysql-flavor cell")


def _query(container: Container, cell: CellInfo, runtime: FlavorRuntime, secrets: Secrets, statement: str,
           user: str | None = None, password: str | None = None) -> str:
    command = runtime.query(cell, secrets, statement, user=user, password=password)
    return ok_output(run_command(docker_host(container), command))


def test_no_anonymous_users_and_no_test_database(query: Query) -> None:
    assert ok_output(query("SELECT COUNT(*) FROM mysql.user WHERE User = ''")) == "0"
    assert ok_output(query("SHOW DATABASES LIKE 'test'")) == ""
    accounts = ok_output(query("SELECT CONCAT(User, '@', Host) FROM mysql.user ORDER BY 1")).splitlines()
    assert not [a for a in accounts if a.startswith(("mysql@", "root@127", "root@::"))], accounts


def test_application_user_owns_its_database(query: Query, secrets: Secrets) -> None:
    out = ok_output(query("SELECT CURRENT_USER(), DATABASE()", user=secrets.user, password=secrets.user_password))
    assert out == f"{secrets.user}@%\t{secrets.database}"
    denied = query("SELECT COUNT(*) FROM mysql.user", user=secrets.user, password=secrets.user_password)
    assert denied.rc != 0, "the application user can read mysql.user"


def test_root_can_log_in_over_the_network(query: Query) -> None:
    assert ok_output(query("SELECT CURRENT_USER()")) == "root@%"


def test_random_root_password_is_generated_and_printed(pod: Pod, cell: CellInfo, runtime: FlavorRuntime) -> None:
    container = pod.oneoff(environment={"MARIADB_RANDOM_ROOT_PASSWORD": "1"})
    wait_healthy(container)      # the password is unknown until the log shows it
    logs = bytes(container.logs()).decode(errors="replace")
    found = re.search(r"GENERATED ROOT PASSWORD: (\S+)", logs)
    assert found, "no generated root password in the log"
    generated = Secrets(password=found.group(1))
    assert _query(container, cell, runtime, generated, "SELECT CURRENT_USER()") == "root@%"
    refused = run_command(docker_host(container), runtime.query(cell, Secrets(password=""), "SELECT 1"))
    assert refused.rc != 0
    pod.remove(container)


INIT_FILES: dict[str, bytes | str] = {
    "10-schema.sql": "CREATE TABLE gf_init (n int AUTO_INCREMENT PRIMARY KEY, source varchar(10));\n"
                     "INSERT INTO gf_init (source) VALUES ('sql');\n",
    "20-data.sql.gz": gz("INSERT INTO gf_init (source) VALUES ('sql.gz');\n"),
    "30-script.sh": ("#!/bin/sh\nset -e\nmariadb --protocol=socket --user=root \"--database=$MARIADB_DATABASE\" "
                     "-e \"INSERT INTO gf_init (source) VALUES ('sh')\"\n"),
    "README": "ignored\n",
}
INIT_SECRETS = Secrets(password="from-a-file'\\$", database="gf_init_db")


@pytest.fixture(scope="module")
def initialised(pod: Pod) -> Container:
    """Initialised through the MySQL-named aliases, the root password from a file, and scripts."""
    container = pod.oneoff(
        environment={"MYSQL_ROOT_PASSWORD_FILE": "/tmp/gf-password", "MYSQL_DATABASE": INIT_SECRETS.database},
        files={"/docker-entrypoint-initdb.d": INIT_FILES, "/tmp": {"gf-password": INIT_SECRETS.password}})
    pod.wait_ready(container, INIT_SECRETS)
    return container


def test_init_scripts_run_in_order(initialised: Container, cell: CellInfo, runtime: FlavorRuntime) -> None:
    rows = _query(initialised, cell, runtime, INIT_SECRETS, "SELECT source FROM gf_init ORDER BY n")
    assert rows.splitlines() == ["sql", "sql.gz", "sh"]


def test_restart_keeps_data_and_skips_initialisation(pod: Pod, initialised: Container, cell: CellInfo,
                                                     runtime: FlavorRuntime) -> None:
    initialised.restart(timeout=30)
    pod.wait_ready(initialised, INIT_SECRETS)
    assert _query(initialised, cell, runtime, INIT_SECRETS, "SELECT COUNT(*) FROM gf_init") == "3"
    logs = bytes(initialised.logs()).decode(errors="replace")
    assert logs.count("init process complete") == 1
    assert "skipping initialisation" in logs
