"""The flavor registry (pure): env for secrets, exporter env, authenticated queries, version parsing;
and the verification context it is used with."""

from __future__ import annotations

import json

import typing
from pathlib import Path

import pytest

from builder.errors import UsageError
from builder.flavors import FLAVORS, Secrets, flavor, version_matches
from builder.matrix.loader import load_matrix
from builder.matrix.models import Flavor
from builder.paths import CONTAINER_SPECS
from builder.plan import Cell, expand
from builder.verify.pod import VerifyContext
from builder.verify.runner import junit_counts
from tests.conftest import ROOT

CELLS = {c.name: c for c in expand(load_matrix(ROOT / "matrix.yaml"))}
SECRETS = Secrets(password="p'\"$\\w", user="app", user_password="u$er", database="appdb")


def test_every_flavor_has_an_entry() -> None:
    assert set(FLAVORS) == set(typing.get_args(Flavor))
    assert all(FLAVORS[name].name == name for name in FLAVORS)


def test_unknown_flavor_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown flavor 'oracle'"):
        flavor("oracle")


def test_database_env_for_secrets() -> None:
    assert flavor("postgresql").db_env(SECRETS) == {"POSTGRES_PASSWORD": SECRETS.password, "POSTGRES_USER": "app",
                                                    "POSTGRES_DB": "appdb"}
    assert flavor("mysql").db_env(SECRETS) == {"MARIADB_ROOT_PASSWORD": SECRETS.password, "MARIADB_USER": "app",
                                               "MARIADB_PASSWORD": "u$er", "MARIADB_DATABASE": "appdb"}
    assert flavor("redis").db_env(SECRETS) == {"REDIS_PASSWORD": SECRETS.password}
    assert flavor("postgresql").db_env(Secrets(password="x")) == {"POSTGRES_PASSWORD": "x"}


@pytest.mark.parametrize("name", sorted(FLAVORS))
def test_env_refs_name_the_same_variables(name: str) -> None:
    runtime = flavor(name)
    assert set(runtime.db_env_refs()) == set(runtime.db_env(SECRETS))
    assert set(runtime.db_env_refs().values()) <= {"password", "user", "user_password", "database"}


@pytest.mark.parametrize("cell_name", ["postgresql-15", "mariadb-10.11", "redis-7.0", "valkey-8.1"])
def test_queries_keep_the_password_off_the_command_line(cell_name: str) -> None:
    cell = CELLS[cell_name]
    runtime = flavor(cell.flavor)
    command = runtime.query(cell, SECRETS, runtime.ping_statement)
    assert command.argv[0] == cell.client
    assert not [a for a in command.argv if SECRETS.password in a]
    assert list(command.env.values()) == [SECRETS.password]
    assert any("127.0.0.1" in a for a in command.argv) and any(str(cell.port) in a for a in command.argv)
    assert list(runtime.query(cell, SECRETS, "x", password="wrong").env.values()) == ["wrong"]
    assert runtime.query(cell, SECRETS, "x", password="").env == {}


def test_query_argv_per_flavor() -> None:
    pg = flavor("postgresql").query(CELLS["postgresql-15"], SECRETS, "SELECT 1")
    assert "--username=app" in pg.argv and "--dbname=appdb" in pg.argv and pg.argv[-2:] == ("--command", "SELECT 1")
    my = flavor("mysql").query(CELLS["mariadb-10.11"], SECRETS, "SELECT 1", user="app")
    assert "--user=app" in my.argv and "--database=appdb" in my.argv and "--skip-column-names" in my.argv
    rd = flavor("redis").query(CELLS["valkey-8.1"], SECRETS, "SET k 'two words'")
    assert rd.argv[0] == "valkey-cli" and rd.argv[-3:] == ("SET", "k", "two words")


def test_exporter_env() -> None:
    assert flavor("postgresql").exporter_env(CELLS["postgresql-15"], SECRETS) == {
        "DATA_SOURCE_URI": "127.0.0.1:5432/postgres?sslmode=disable", "DATA_SOURCE_USER": "app",
        "DATA_SOURCE_PASS": SECRETS.password}
    assert flavor("mysql").exporter_env(CELLS["mariadb-10.5"], SECRETS) == {
        "DATA_SOURCE_NAME": f"root:{SECRETS.password}@tcp(127.0.0.1:3306)/"}
    assert flavor("redis").exporter_env(CELLS["valkey-8.1"], SECRETS) == {
        "REDIS_ADDR": "redis://127.0.0.1:6379", "REDIS_PASSWORD": SECRETS.password}


def test_exporter_env_takes_kubernetes_references_verbatim() -> None:
    refs = Secrets(password="$(GF_DB_PASSWORD)", user="$(GF_DB_USER)")
    assert flavor("mysql").exporter_env(CELLS["mariadb-11.8"], refs)["DATA_SOURCE_NAME"] == \
        "root:$(GF_DB_PASSWORD)@tcp(127.0.0.1:3306)/"


def test_reported_version() -> None:
    pg, my, rd = flavor("postgresql"), flavor("mysql"), flavor("redis")
    assert pg.reported_version(CELLS["postgresql-15"], "15.14 (Debian 15.14-0+deb12u1)\n") == "15.14"
    assert my.reported_version(CELLS["mariadb-10.11"], "10.11.6-MariaDB-0+deb12u1\n") == "10.11.6-MariaDB-0+deb12u1"
    info = "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.1\r\n"
    assert rd.reported_version(CELLS["valkey-8.1"], info) == "8.1.1"
    assert rd.reported_version(CELLS["redis-7.0"], "# Server\nredis_version:7.0.15\n") == "7.0.15"
    assert pg.reported_version(CELLS["postgresql-15"], "") is None


@pytest.mark.parametrize(("wanted", "reported", "ok"), [
    ("15", "15.14", True), ("13", "15.14", False), ("10.11", "10.11.6-MariaDB-0+deb12u1", True),
    ("10.1", "10.11.6-MariaDB", False), ("10.5", "10.5.29-MariaDB", True), ("8.1", "8.1.1", True),
    ("8.0", "8.1.1", False), ("7.0", "7.0.15", True),
])
def test_version_matches(wanted: str, reported: str, ok: bool) -> None:
    assert version_matches(wanted, reported) is ok


def test_server_process_is_the_start_program() -> None:
    assert flavor("postgresql").server_process(CELLS["postgresql-13"]) == "postgres"
    assert flavor("redis").server_process(CELLS["valkey-8.1"]) == "valkey-server"


def test_generated_secrets_are_random_and_awkward() -> None:
    one, two = Secrets.generate(), Secrets.generate()
    assert one.password != two.password and one.user_password != two.user_password
    assert {"'", '"', "$", "\\"} <= set(one.password)


@pytest.mark.parametrize("name", sorted(FLAVORS))
def test_registry_agrees_with_the_entrypoint(name: str) -> None:
    runtime = flavor(name)
    script = (CONTAINER_SPECS / "flavors" / name / "docker-entrypoint.sh").read_text()
    assert runtime.missing_password_error.removeprefix("error: ") in script
    for variable in [*runtime.db_env_refs(), *runtime.allow_empty_env]:
        if variable.startswith("MARIADB_"):   # loaded as MARIADB_<suffix> by load_env
            assert f"load_env {variable.removeprefix('MARIADB_')}" in script, variable
        else:
            assert variable in script, variable
    if runtime.initdb_dir:
        assert runtime.initdb_dir in script


# -- the verification context ---------------------------------------------------------------------------
def _context(cell: Cell) -> dict[str, object]:
    """The context JSON as the runner writes it."""
    data: dict[str, object] = json.loads(VerifyContext(
        cell=cell.spec(exporter=True), images={"datastore": "d", "exporter": "e", "debug": "g", "agent": None},
        agent={"package": "trove", "version": "26.0.0", "entrypoint": "trove-guestagent", "base": "debian:bookworm",
               "layer_diff_id": "sha256:abc"},
        run_id="r1").model_dump_json())
    return data


def test_verify_context_round_trip() -> None:
    cell = CELLS["mariadb-10.11"]
    ctx = VerifyContext.model_validate(_context(cell))
    assert ctx.cell is not None and ctx.cell.name == "mariadb-10.11" and ctx.cell.start == ("mariadbd",)
    assert ctx.cell == cell.spec(exporter=True)
    assert ctx.cell.exporter is not None and ctx.cell.exporter.up_metric == "mysql_up"
    assert ctx.agent is not None and ctx.agent.uid == 1100 and ctx.run_id == "r1"
    assert ctx.agent.package == "trove" and ctx.agent.layer_diff_id == "sha256:abc"
    assert ctx.image("datastore") == "d"
    with pytest.raises(Exception, match="no agent image"):
        ctx.image("agent")


def test_agent_only_context() -> None:
    ctx = VerifyContext.model_validate({"images": {"agent": "a", "debug": "g"}, "agent": None})
    assert ctx.cell is None and ctx.agent is None


def test_junit_counts(tmp_path: Path) -> None:
    junit = tmp_path / "j.xml"
    junit.write_text('<testsuites><testsuite tests="5" failures="1" errors="0" skipped="2"/>'
                     '<testsuite tests="1" failures="0" errors="1" skipped="0"/></testsuites>')
    counts = junit_counts(junit)
    assert (counts.tests, counts.failures, counts.errors, counts.skipped) == (6, 1, 1, 2)
    missing = junit_counts(tmp_path / "missing.xml", [ROOT / "tests/infra/test_agent.py"])
    assert (missing.tests, missing.idle) == (0, ("tests/infra/test_agent.py",))


def test_a_suite_file_whose_every_test_skipped_is_idle(tmp_path: Path) -> None:
    """A verification whose suite skipped every check of a file checked nothing: that file is idle."""
    junit = tmp_path / "j.xml"
    junit.write_text(
        '<testsuites><testsuite tests="3" failures="0" errors="0" skipped="2">'
        '<testcase classname="tests.infra.test_datastore" name="test_a"/>'
        '<testcase classname="tests.infra.test_exporter" name="test_b"><skipped message="no exporter"/></testcase>'
        '<testcase classname="tests.infra.test_exporter" name="test_c"><skipped message="no exporter"/></testcase>'
        '</testsuite></testsuites>')
    files = [ROOT / "tests/infra/test_datastore.py", ROOT / "tests/infra/test_exporter.py"]
    counts = junit_counts(junit, files)
    assert counts.idle == ("tests/infra/test_exporter.py",)
    assert counts.skips == ("tests.infra.test_exporter::test_b: no exporter",
                            "tests.infra.test_exporter::test_c: no exporter")
