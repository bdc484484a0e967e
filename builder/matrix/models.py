"""The matrix schema: frozen, typed models; every setting and its default declared once.

Validation of single values happens here (types, tokens, unknown keys); checks
that relate values to each other live in ``checks.py``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from builder.matrix.tokens import (
    AbsPath,
    Arg,
    BaseName,
    ImageRef,
    Name,
    PackageName,
    Program,
    PyPIName,
    Quantity,
    Token,
    Url,
    User,
    VersionKey,
)

Target = Literal["oci", "vm", "baremetal"]
Flavor = Literal["postgresql", "mysql", "redis"]
# Strict: an integer field takes an integer written as one, never text ('0777', 'yes') or a boolean.
Port = Annotated[int, Field(strict=True, ge=1, le=65535)]
Uid = Annotated[int, Field(strict=True, ge=100, le=65533, description="below 100: system ranges; 0: root")]
Flag = Annotated[bool, Field(strict=True)]
# An argv for the program itself: its elements may be options, its first (the program) may not.
Argv = Annotated[list[Arg], Field(min_length=1)]
Targets = Annotated[list[Target], Field(min_length=1, description="omit the key for every target")]

ALL_TARGETS: tuple[Target, ...] = ("oci", "vm", "baremetal")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class Base(Strict):
    """A base OS root filesystem, bootstrapped from the Debian archive."""

    distro: Literal["debian"] = "debian"
    suite: Token
    mirror: Url | None = Field(None, description="default: the host's apt sources")
    security_mirror: Url | None = Field(None, description="default: the host's apt sources")
    security: Flag = True
    components: Annotated[list[Token], Field(min_length=1)] = ["main"]
    check_valid_until: Flag = Field(True, description="false: accept a Release file past its Valid-Until (a sid "
                                                      "mirror whose index expired, a snapshot archive); given to "
                                                      "apt while building, never left in an image")
    allow_local_mirror: Flag = Field(False, description="accept file:/// mirrors (read by mmdebstrap on the host)")
    allow_url_credentials: Flag = Field(False, description="accept user:password@ in mirror URLs (they end up "
                                                           "in logs and image layers)")


class Agent(Strict):
    """The guest agent, built once and shipped as a sidecar image and as one top layer."""

    package: PyPIName
    version: Token
    entrypoint: Program
    base: BaseName
    user: User = "trove"
    uid: Uid = 1100
    venv: AbsPath = "/opt/guest-agent-venv"
    config_dir: AbsPath = "/etc/trove/conf.d"
    log_dir: AbsPath = "/var/log/trove"
    index_url: Url | None = Field(None, description="default: the host's pip configuration, else PyPI")
    allow_url_credentials: Flag = Field(False, description="accept user:password@ in index_url (it ends up in "
                                                           "logs and the builder image's history)")
    sources: Flag = Field(False, description="ship each module's .py beside its bytecode: tracebacks show "
                                             "source lines, and the agent layer has about twice the files")
    # Read by the Kubernetes bundle only (its values carry it): excluded from dumps, so it is in no other key.
    runs_in_pod: Flag = Field(False, exclude=True,
                              description="the agent can run as a pod's sidecar under the PSA restricted profile "
                                          "(no root helper, no container engine); Trove 26 cannot")


class Exporter(Strict):
    """A Prometheus exporter sidecar, installed from distro packages."""

    base: BaseName
    packages: Annotated[list[PackageName], Field(min_length=1)]
    command: Argv
    port: Port
    up_metric: Token
    user: User = "exporter"
    uid: Uid = 1200


class Amounts(Strict):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class ContainerResources(Strict):
    """Kubernetes requests and limits of one container; unset fields keep the flavor's default."""

    requests: Amounts = Amounts()
    limits: Amounts = Amounts()


class Resources(Strict):
    """Per-container resources of a cell's Kubernetes bundle (defaults per flavor: builder/k8s/resources.py)."""

    database: ContainerResources = ContainerResources()
    exporter: ContainerResources = ContainerResources()
    agent: ContainerResources = ContainerResources()
    storage: Quantity | None = Field(None, description="the data volume claim's size")


class Overrides(Strict):
    """Datastore settings a single version may override."""

    user: User | None = None
    uid: Uid | None = None
    port: Port | None = None
    data_dir: AbsPath | None = None
    start: Argv | None = None
    health: Argv | None = None
    client: Program | None = None
    exporter: Name | None = None
    targets: Targets | None = None
    resources: Resources | None = None


class Version(Overrides):
    """One version: from distro packages on a base, or an upstream image pinned by digest."""

    base: BaseName | None = None
    packages: list[PackageName] | None = None
    image: ImageRef | None = None


class Datastore(Strict):
    flavor: Flavor
    user: User
    uid: Uid
    port: Port
    data_dir: AbsPath
    start: Argv
    health: Argv
    client: Program
    exporter: Name
    targets: Targets | None = None
    resources: Resources | None = None
    versions: Annotated[dict[VersionKey, Version], Field(min_length=1)]


class Guest(Strict):
    """VM and bare-metal guests: the OS under the agent and the preloaded datastore container."""

    base: BaseName | None = Field(None, description="default: each cell's own base (upstream cells: the agent's)")


class Defaults(Strict):
    targets: Targets = list(ALL_TARGETS)


class Matrix(Strict):
    defaults: Defaults = Defaults()
    guest: Guest = Guest()
    bases: Annotated[dict[BaseName, Base], Field(min_length=1)]
    agent: Agent
    exporters: dict[Name, Exporter]
    datastores: Annotated[dict[Name, Datastore], Field(min_length=1)]
