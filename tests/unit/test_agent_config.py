"""The agent's run-time configuration: what trove-guestagent is given, and what is refused."""

from __future__ import annotations

import configparser

import pytest

from builder.agent.config import (
    ALREADY_MOUNTED,
    TROVE_MANAGERS,
    AgentConfigError,
    command,
    environment,
    home_dir,
    manager_for,
    runtime_files,
)
from builder.matrix.models import Agent

AGENT = Agent(package="trove", version="26.0.0", entrypoint="trove-guestagent", base="debian:bookworm")
GUEST = "0f4c1b1e-0000-4000-8000-000000000001"


def files(**overrides: object) -> dict[str, str]:
    kwargs: dict[str, object] = dict(guest_id=GUEST, datastore_manager="postgresql", datastore_version="15",
                                     controller_url="rabbit://controller.example.internal:5672/")
    kwargs.update(overrides)
    return runtime_files(AGENT, **kwargs)  # type: ignore[arg-type]


def parse(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return parser


def test_guest_info_names_guest_and_datastore() -> None:
    info = parse(files()["guest_info.conf"])
    assert dict(info["DEFAULT"]) == {"guest_id": GUEST, "datastore_manager": "postgresql",
                                     "datastore_version": "15"}


def test_agent_conf_points_at_the_controller_and_skips_volume_setup() -> None:
    conf = parse(files(service_uid=999)["trove-guestagent.conf"])
    assert conf["DEFAULT"]["transport_url"] == "rabbit://controller.example.internal:5672/"
    assert conf["DEFAULT"]["control_exchange"] == "trove"
    assert "log_file" not in conf["DEFAULT"]          # containers log to stderr
    assert conf["postgresql"]["device_path"] == ALREADY_MOUNTED
    assert conf["postgresql"]["database_service_uname"] == "database"
    assert conf["postgresql"]["database_service_uid"] == "999"


def test_only_two_files_and_no_credentials_unless_given() -> None:
    out = files()
    assert sorted(out) == ["guest_info.conf", "trove-guestagent.conf"]
    text = "".join(out.values()).lower()
    assert "password" not in text and "@" not in text


def test_vm_layout_logs_to_the_log_dir_and_names_the_data_disk() -> None:
    conf = parse(files(datastore_manager="mariadb", log_to_file=True, device_path="/dev/vdb",
                       mount_point="/var/lib/mysql")["trove-guestagent.conf"])
    assert conf["DEFAULT"]["log_dir"] == AGENT.log_dir
    assert conf["DEFAULT"]["log_file"] == "trove-guestagent.log"
    assert conf["mariadb"]["device_path"] == "/dev/vdb"
    assert conf["mariadb"]["mount_point"] == "/var/lib/mysql"


def test_dollar_in_credentials_is_escaped_for_oslo_config() -> None:
    conf = parse(files(controller_url="rabbit://agent:pa$word@10.0.0.1:5672/trove")["trove-guestagent.conf"])
    assert conf["DEFAULT"]["transport_url"] == "rabbit://agent:pa$$word@10.0.0.1:5672/trove"


def test_unknown_manager_is_refused_with_what_the_agent_supports() -> None:
    with pytest.raises(AgentConfigError, match=r"no guest manager for 'redis'.*mariadb, mysql, postgresql"):
        files(datastore_manager="redis")


@pytest.mark.parametrize("field, value", [
    ("guest_id", "abc\ndebug = True"),
    ("datastore_version", "15 ; x"),
    ("controller_url", "http://controller.example.internal/"),
    ("controller_url", "rabbit://host:5672/\n[DEFAULT]"),
    ("device_path", "/dev/vdb\nx"),
    ("service_user", "root\n"),
])
def test_values_that_could_inject_configuration_are_refused(field: str, value: str) -> None:
    with pytest.raises(AgentConfigError):
        files(**{field: value})


def test_manager_for_matrix_flavors() -> None:
    assert manager_for("postgresql", "postgresql") == "postgresql"
    assert manager_for("mariadb", "mysql") == "mariadb"
    assert manager_for("mysql", "mysql") == "mysql"
    assert manager_for("valkey", "redis") == "redis"
    assert {manager_for("postgresql", "postgresql"), manager_for("mariadb", "mysql")} <= TROVE_MANAGERS


def test_command_and_environment_need_no_passwd_entry() -> None:
    assert command(AGENT) == ["/opt/guest-agent-venv/bin/trove-guestagent", "--config-dir=/etc/trove/conf.d"]
    env = environment(AGENT)
    assert env["HOME"] == home_dir(AGENT) == "/var/lib/trove"
    assert env["LC_ALL"] == "C"
    assert not any(k.startswith("LD_") for k in env)         # the tree is wired by rpath, nothing leaks
    assert AGENT.venv not in env["PATH"]                      # base scripts must not find the agent's python3
