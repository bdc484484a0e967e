"""The files a guest receives at boot (cloud-init / config drive): agent configuration and database secret.

Nothing here is in any image. ``guestforge-agent`` starts the agent once its configuration exists in the
config directory; ``guestforge-datastore`` starts the database and exporter once their environment files
exist in ``/etc/guestforge``.
"""

from __future__ import annotations

import secrets as _random
from dataclasses import dataclass

from builder.agent.config import AgentConfigError, manager_for, runtime_files
from builder.flavors import Secrets, flavor
from builder.matrix.models import Agent
from builder.plan import Cell

RUNTIME_DIR = "/etc/guestforge"
DATASTORE_ENV = f"{RUNTIME_DIR}/datastore.env"
EXPORTER_ENV = f"{RUNTIME_DIR}/exporter.env"
DATASTORE_CONTAINER = "gf-datastore"
EXPORTER_CONTAINER = "gf-exporter"


@dataclass(frozen=True)
class RuntimeFile:
    path: str
    content: str
    mode: int = 0o600
    owner: str = "root:root"


def _env_file(values: dict[str, str]) -> str:
    for name, value in values.items():
        if "\n" in value:
            raise ValueError(f"{name}: an environment file value cannot hold a newline")
    return "".join(f"{name}={value}\n" for name, value in values.items())


def datastore_files(cell: Cell, secrets: Secrets) -> list[RuntimeFile]:
    """The database's and the exporter's environment files (Docker ``--env-file``: values verbatim)."""
    rt = flavor(cell.flavor)
    return [RuntimeFile(DATASTORE_ENV, _env_file(rt.db_env(secrets))),
            RuntimeFile(EXPORTER_ENV, _env_file(rt.exporter_env(cell, secrets)))]


def agent_files(agent: Agent, cell: Cell, *, guest_id: str, controller_url: str) -> list[RuntimeFile] | None:
    """The agent's configuration for ``cell`` (None when the agent has no manager for its datastore)."""
    try:
        files = runtime_files(agent, guest_id=guest_id, datastore_manager=manager_for(cell.datastore, cell.flavor),
                              datastore_version=cell.version, controller_url=controller_url,
                              service_user=cell.user, service_uid=cell.uid, log_to_file=True)
    except AgentConfigError:
        return None
    return [RuntimeFile(f"{agent.config_dir}/{name}", content, 0o640, f"root:{agent.user}")
            for name, content in sorted(files.items())]


def unreachable_controller() -> str:
    """A transport URL with fresh credentials on the guest's own loopback, where nothing listens: the agent
    must keep retrying it, and no packet leaves the guest."""
    return f"rabbit://guestforge:{_random.token_hex(16)}@127.0.0.1:5672/"
