"""What the VM suites (``tests/infra/vm``) expect, as typed models written to the JSON file each suite
run gets with ``--gf-vm-spec``: the builder writes them, the suites' fixtures read them back."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from builder.matrix.models import Agent

S = TypeVar("S", bound="VmSpec")


class VmSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def write(self, path: Path) -> Path:
        path.write_text(self.model_dump_json(indent=2) + "\n")
        return path

    @classmethod
    def read(cls: type[S], path: Path) -> S:
        return cls.model_validate_json(path.read_text())


class AgentLayout(VmSpec):
    """Where the agent lives in a guest and whom it runs as."""

    user: str
    uid: int
    venv: str
    entrypoint: str
    config_dir: str
    log_dir: str

    @classmethod
    def of(cls, agent: Agent) -> AgentLayout:
        return cls(user=agent.user, uid=agent.uid, venv=agent.venv, entrypoint=agent.entrypoint,
                   config_dir=agent.config_dir, log_dir=agent.log_dir)


class ImageSpec(VmSpec):
    """The image suite's expectations of a guest's root filesystem (``vm/test_guest_image.py``)."""

    cell: str
    flavor: str
    image_ids: dict[str, str]            # preloaded image reference -> image ID
    datasources: tuple[str, ...]
    agent: AgentLayout


class BootSpec(VmSpec):
    """The boot suite's expectations of a booted guest (``vm/test_guest_boot.py``)."""

    cell: str
    flavor: str
    query: tuple[str, ...]               # the authenticated database query, as run over SSH (starts with sudo)
    ping_reply: str
    datastore_image_id: str
    exporter_image_id: str
    datastore_container: str
    exporter_port: int
    up_metric: str
    agent_configured: bool
    agent: AgentLayout
