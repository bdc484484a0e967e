"""What the agent receives at run time: its command, its environment and its configuration files.

Nothing here is baked into an image. In a pod the files are mounted into the config directory (a
Secret), in a VM cloud-init or the config drive writes them. What ``trove-guestagent`` (trove 26) needs
to start, read from its ``trove/cmd/guest.py``:

* ``guest_id`` and a ``datastore_manager`` it registers (mysql, mariadb, postgresql: trove 26 has no
  redis manager) -- ``guest_info.conf``, which Trove itself injects;
* ``sudo`` on PATH (its root helper is hard-coded): it runs ``sudo groupadd``/``useradd`` for the
  database service user (an "already exists" answer is fine), ``sudo mkdir``/``chown`` for the
  datastore's config directory, and formats and mounts ``device_path`` unless ``/etc/mtab`` already
  lists it (``grep`` through ``/bin/sh``);
* a Docker Engine API (``DOCKER_HOST`` or ``/var/run/docker.sock``): the datastore managers run the
  database as a container and connect when they are constructed;
* a transport URL. Then it starts its RPC server and keeps reconnecting to the message bus with a
  growing back-off (oslo.messaging: 1 s, 3 s, 5 s, ... up to 30 s), without exiting.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from builder.errors import GuestforgeError
from builder.matrix.models import Agent

# The managers trove 26.0.0 registers (trove/common/constants.py, REGISTRY_EXT_DEFAULTS). The tree build
# reads the real list from the built agent (AgentTree.managers); an integration test keeps them equal.
TROVE_MANAGERS = frozenset({"mariadb", "mysql", "postgresql"})

# A device every Linux mount table lists. In a container the orchestrator mounts the data volume, so
# the agent must not format or mount anything: naming a mounted device makes that start-up step a no-op.
ALREADY_MOUNTED = "proc"

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_VALUE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
_TRANSPORT = re.compile(r"(rabbit|amqp|kafka)://[A-Za-z0-9._~%!$&'()*+,;=:@/-]+")


class AgentConfigError(GuestforgeError):
    """The agent cannot be configured as asked (unknown manager, unsafe value)."""

    exit_code = 2


def home_dir(agent: Agent) -> str:
    """The agent's home (Trove's ``/var/lib/trove``), part of the tree, owned by the agent."""
    return f"/var/lib/{agent.user}"


def command(agent: Agent) -> list[str]:
    """The agent's argv, as Trove's ``guest-agent.service`` runs it."""
    return [f"{agent.venv}/bin/{agent.entrypoint}", f"--config-dir={agent.config_dir}"]


def environment(agent: Agent) -> dict[str, str]:
    """The environment the agent runs with; needs no /etc/passwd entry for its uid.

    ``LC_ALL=C`` keeps glibc on its built-in locale (a C.UTF-8 locale would be read from the base's
    /usr/lib/locale, written by another glibc); Python runs in UTF-8 mode regardless. The same values
    reach the commands the agent starts, whose output Trove parses in English anyway.
    """
    return {
        "HOME": home_dir(agent),
        "PATH": PATH,    # not the venv's bin: scripts of the base must not find the agent's python3
        "LC_ALL": "C",
        "PYTHONUTF8": "1",
    }


def manager_for(datastore: str, flavor: str) -> str:
    """Trove's datastore manager for a matrix datastore: its flavor, except that MariaDB has its own."""
    if flavor == "mysql":
        return "mariadb" if datastore == "mariadb" else "mysql"
    return flavor


def _value(what: str, value: str) -> str:
    if not _VALUE.fullmatch(value):
        raise AgentConfigError(f"{what} {value!r}: not a plain value (letters, digits and _@%+=:,./- only)")
    return value


def _ini(sections: dict[str, dict[str, str]]) -> str:
    lines = ["# Written by guestforge at deployment time; not part of any image."]
    for section, values in sections.items():
        lines.append(f"\n[{section}]")
        lines += [f"{key} = {value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def runtime_files(agent: Agent, *, guest_id: str, datastore_manager: str, datastore_version: str,
                  controller_url: str, service_user: str = "database", service_uid: int | None = None,
                  device_path: str = ALREADY_MOUNTED, mount_point: str | None = None, log_to_file: bool = False,
                  debug: bool = False, managers: Collection[str] = TROVE_MANAGERS) -> dict[str, str]:
    """The files for the agent's config directory: ``{file name: content}``.

    ``controller_url`` is the oslo.messaging transport URL of the controller's message bus
    (``rabbit://[user:password@]host:port/[vhost]``); it may carry credentials, which is why these
    files exist only at run time. ``service_user``/``service_uid``: the database service account the
    agent ensures (``sudo useradd``; an existing one is kept). ``device_path``/``mount_point``: the data
    volume; the default names a device that is always mounted, so nothing is formatted (containers);
    a VM with a data disk passes it (e.g. ``/dev/vdb``). ``log_to_file``: log to ``log_dir`` (VMs)
    instead of stderr (containers).
    """
    if datastore_manager not in managers:
        raise AgentConfigError(
            f"{agent.package} {agent.version} has no guest manager for {datastore_manager!r} "
            f"(it registers: {', '.join(sorted(managers))}); its agent cannot serve this datastore")
    if not _TRANSPORT.fullmatch(controller_url):
        raise AgentConfigError(f"controller_url {controller_url!r}: not a transport URL "
                               "(rabbit://[user:password@]host:port/[vhost])")
    guest_info = {
        "guest_id": _value("guest_id", guest_id),
        "datastore_manager": datastore_manager,
        "datastore_version": _value("datastore_version", datastore_version),
    }
    default = {
        "transport_url": controller_url.replace("$", "$$"),   # oslo.config expands $name
        "control_exchange": "trove",
        "debug": str(debug),
    }
    if log_to_file:
        default.update(log_dir=agent.log_dir, log_file=f"{agent.entrypoint}.log")
    datastore = {"database_service_uname": _value("service_user", service_user),
                 "device_path": _value("device_path", device_path)}
    if service_uid is not None:
        datastore["database_service_uid"] = str(service_uid)
    if mount_point is not None:
        datastore["mount_point"] = _value("mount_point", mount_point)
    return {
        "guest_info.conf": _ini({"DEFAULT": guest_info}),
        "trove-guestagent.conf": _ini({"DEFAULT": default, datastore_manager: datastore}),
    }
