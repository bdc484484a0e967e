"""Start a cell the way its Kubernetes pod would, on Docker, for the testinfra suites.

A sandbox container (the debug image, ``sleep infinity`` under docker-init) owns the network and PID
namespaces, like a pod's pause container; the database, exporter and agent containers join them
(``network_mode=container:<sandbox>``, ``pid_mode=container:<sandbox>``), so a database restart
leaves the others' network in place and the sandbox's ``ps`` sees every process. The data lives in a
named volume, like a PVC. Secrets arrive as environment, generated per run. Every container and
volume carries the label ``io.guestforge.verify=<run id>``; ``Pod.close`` removes them and
``cleanup(run_id)`` removes whatever an interrupted run left behind. Containers start lazily: an
agent-only verification never starts a database.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from builder.oci.archive import files_tar
from builder.flavors import FlavorRuntime, Secrets, flavor
from builder.spec import CellSpec, ExporterSpec
from builder.spec import VerifyContext as VerifyContext
from builder.spec import VerifyError as VerifyError

LABEL = "io.guestforge.verify"
ROLE_LABEL = "io.guestforge.verify.role"
# Verification polls health faster than the image's 10s default: the first check runs one interval after
# start (this engine's API has no start_interval), so the interval bounds how long a ready database waits.
HEALTH_INTERVAL_NS = 5 * 10**8
log = logging.getLogger("guestforge.verify")


# The names the suites have always used for the specs (declared once, in builder.spec).
CellInfo = CellSpec
ExporterInfo = ExporterSpec


# -- containers ----------------------------------------------------------------------------------------
def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text)


def container_logs(container: Container, tail: int = 40) -> str:
    try:
        return bytes(container.logs(tail=tail)).decode(errors="replace")
    except docker.errors.APIError:
        return ""


def health(container: Container) -> str | None:
    container.reload()
    state = container.attrs.get("State", {})
    return (state.get("Health") or {}).get("Status")


def wait_healthy(container: Container, timeout: float = 180) -> None:
    """Wait for the image's HEALTHCHECK to report healthy; fail early when the container stops."""
    deadline = time.monotonic() + timeout
    while True:
        status = health(container)
        state = container.attrs["State"]
        if status == "healthy":
            return
        if not state.get("Running"):
            raise VerifyError(f"{container.name} exited with {state.get('ExitCode')} before becoming healthy:\n"
                              + container_logs(container))
        if status is None:
            raise VerifyError(f"{container.name}: the image declares no HEALTHCHECK")
        if time.monotonic() > deadline:
            raise VerifyError(f"{container.name} not healthy after {timeout:.0f}s (health {status}):\n"
                              + container_logs(container))
        time.sleep(0.25)


def has_healthcheck(container: Container) -> bool:
    test = (container.attrs.get("Config", {}).get("Healthcheck") or {}).get("Test") or []
    return bool(test) and test != ["NONE"]


def wait_exit(container: Container, timeout: float = 120) -> tuple[int, str]:
    """Wait for ``container`` to stop; return its exit code and full log."""
    result = container.wait(timeout=timeout)
    return int(result.get("StatusCode", -1)), bytes(container.logs()).decode(errors="replace")


@dataclass
class Pod:
    """One cell's containers for one verification run. Use as a context manager (always closes)."""

    context: VerifyContext
    run_id: str
    secrets: Secrets = field(default_factory=Secrets.generate)
    client: docker.DockerClient | None = None
    _containers: dict[str, Container] = field(default_factory=dict, init=False, repr=False)
    _oneoffs: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = docker.from_env(timeout=300)

    # -- plumbing --------------------------------------------------------------------------------
    @property
    def docker(self) -> docker.DockerClient:
        assert self.client is not None
        return self.client

    @property
    def cell(self) -> CellInfo:
        if self.context.cell is None:
            raise VerifyError("the verification context has no cell")
        return self.context.cell

    @property
    def flavor(self) -> FlavorRuntime:
        return flavor(self.cell.flavor)

    def name(self, role: str) -> str:
        cell = self.context.cell.name if self.context.cell else "agent"
        return _safe(f"gfverify-{self.run_id}-{cell}-{role}")

    def labels(self, role: str) -> dict[str, str]:
        return {LABEL: self.run_id, ROLE_LABEL: role}

    def _member(self, role: str, image: str, **kwargs: Any) -> Container:
        """Create (not start) a container in the sandbox's namespaces."""
        sandbox = self.sandbox()
        return self.docker.containers.create(
            image, name=self.name(role), labels=self.labels(role), detach=True,
            network_mode=f"container:{sandbox.id}", pid_mode=f"container:{sandbox.id}", **kwargs)

    # -- the pod's containers ---------------------------------------------------------------------
    def network(self) -> str:
        """The run's own internal bridge network: isolated from other containers and from the
        outside (no check needs either), and independent of the engine's default bridge."""
        name = self.name("net")
        if not self.docker.networks.list(names=[name]):
            self.docker.networks.create(name, driver="bridge", internal=True, labels=self.labels("net"))
        return name

    def sandbox(self) -> Container:
        """The namespace holder (debug image): ps, curl and ip for the checks."""
        if "sandbox" not in self._containers:
            log.info("starting sandbox %s", self.name("sandbox"))
            hostname = self.context.cell.name if self.context.cell else "agent"
            self._containers["sandbox"] = self.docker.containers.run(
                self.context.image("debug"), ["sleep", "infinity"], name=self.name("sandbox"),
                labels=self.labels("sandbox"), detach=True, init=True, network=self.network(),
                hostname=_safe(hostname)[:63])
        return self._containers["sandbox"]

    def volume(self) -> str:
        """The data volume (created once; kept across database restarts)."""
        name = self.name("data")
        try:
            self.docker.volumes.get(name)
        except docker.errors.NotFound:
            self.docker.volumes.create(name, labels=self.labels("data"))
        return name

    def database(self) -> Container:
        """The database container, started and healthy."""
        if "database" not in self._containers:
            log.info("starting database %s", self.name("database"))
            container = self._member(
                "database", self.context.image("datastore"), environment=self.flavor.db_env(self.secrets),
                volumes={self.volume(): {"bind": self.cell.data_dir, "mode": "rw"}},
                healthcheck={"interval": HEALTH_INTERVAL_NS})
            self._containers["database"] = container
            container.start()
            self.wait_ready(container)
        return self._containers["database"]

    def wait_ready(self, container: Container, secrets: Secrets | None = None, timeout: float = 180) -> None:
        """Wait until the database in ``container`` serves: healthy by its image's HEALTHCHECK or, for
        an image without one (upstream images), until an authenticated ping answers."""
        container.reload()
        if has_healthcheck(container):
            wait_healthy(container, timeout)
            return
        command = self.flavor.query(self.cell, secrets or self.secrets, self.flavor.ping_statement)
        deadline = time.monotonic() + timeout
        while True:
            container.reload()
            if not container.attrs["State"].get("Running"):
                raise VerifyError(f"{container.name} exited with {container.attrs['State'].get('ExitCode')}:\n"
                                  + container_logs(container))
            code, out = container.exec_run(list(command.argv), environment=dict(command.env))
            if code == 0 and bytes(out).decode(errors="replace").strip() == self.flavor.ping_reply:
                return
            if time.monotonic() > deadline:
                raise VerifyError(f"{container.name} did not answer within {timeout:.0f}s:\n"
                                  + container_logs(container))
            time.sleep(1)

    def exporter(self) -> Container:
        """The metrics exporter, started after the database (as the pod's probes order them)."""
        if "exporter" not in self._containers:
            self.database()
            log.info("starting exporter %s", self.name("exporter"))
            container = self._member("exporter", self.context.image("exporter"),
                                     environment=self.flavor.exporter_env(self.cell, self.secrets))
            self._containers["exporter"] = container
            container.start()
        return self._containers["exporter"]

    def agent(self, files: Mapping[str, str] | None = None, environment: Mapping[str, str] | None = None,
              command: Sequence[str] | None = None, image_role: str = "agent") -> Container:
        """The agent sidecar; ``files`` (name -> text) are placed in the agent's config dir before start,
        as a mounted Secret/ConfigMap would be. It does not start the database."""
        if "agent" not in self._containers:
            agent = self.context.agent
            if agent is None:
                raise VerifyError("the verification context has no agent")
            log.info("starting agent %s", self.name("agent"))
            container = self._member("agent", self.context.image(image_role), environment=dict(environment or {}),
                                     command=list(command) if command else None)
            if files:
                container.put_archive(agent.config_dir, files_tar(files, uid=agent.uid, mode=0o640))
            self._containers["agent"] = container
            container.start()
        return self._containers["agent"]

    def restart_database(self, timeout: int = 60) -> None:
        """Restart the database container (same volume, same namespaces) and wait until healthy."""
        container = self.database()
        log.info("restarting database %s", container.name)
        container.restart(timeout=timeout)
        self.wait_ready(container)

    def oneoff(self, image_role: str = "datastore", environment: Mapping[str, str] | None = None,
               command: Sequence[str] | None = None, files: Mapping[str, Mapping[str, bytes | str]] | None = None,
               start: bool = True) -> Container:
        """A standalone container outside the pod (own network), for contract checks such as
        "refuses to start without a password". ``files``: {directory: {name: content}} placed before
        start. Labelled like the pod's containers, so ``close`` removes it."""
        self._oneoffs += 1
        role = f"oneoff{self._oneoffs}"
        container = self.docker.containers.create(
            self.context.image(image_role), command=list(command) if command else None, name=self.name(role),
            labels=self.labels(role), environment=dict(environment or {}), detach=True,
            network=self.network(), healthcheck={"interval": HEALTH_INTERVAL_NS})
        self._containers[role] = container
        for directory, entries in (files or {}).items():
            container.put_archive(directory, files_tar(entries))
        if start:
            container.start()
        return container

    def remove(self, container: Container) -> None:
        """Remove one container of this pod now (its anonymous volumes too)."""
        for role, known in list(self._containers.items()):
            if known.id == container.id:
                del self._containers[role]
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass

    def close(self) -> None:
        """Remove every container and volume of this run."""
        self._containers.clear()
        cleanup(self.run_id, self.client)

    def __enter__(self) -> Pod:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cleanup(run_id: str | None = None, client: docker.DockerClient | None = None, attempts: int = 5) -> int:
    """Remove the containers, volumes and networks of verification run ``run_id`` (every run when
    None): the members first, then the sandboxes that own their namespaces, then volumes and networks.
    Tolerates a concurrent cleanup of the same run (an interrupted suite tears down while its runner
    does) by retrying until nothing is left. Returns how many containers went."""
    client = client or docker.from_env(timeout=300)
    selector = {"label": f"{LABEL}={run_id}" if run_id else LABEL}
    removed: set[str] = set()
    for attempt in range(attempts):
        containers = client.containers.list(all=True, filters=selector)
        volumes = client.volumes.list(filters=selector)
        networks = client.networks.list(filters=selector)
        if not (containers or volumes or networks):
            break
        if attempt:
            time.sleep(1)
        containers.sort(key=lambda c: c.labels.get(ROLE_LABEL) == "sandbox")
        for container in containers:
            if _quietly(container.remove, force=True, v=True):
                removed.add(container.id)
        for volume in volumes:
            _quietly(volume.remove, force=True)
        for network in networks:
            _quietly(network.remove)
    else:
        left = [c.name for c in client.containers.list(all=True, filters=selector)]
        left += [v.name for v in client.volumes.list(filters=selector)]
        left += [n.name for n in client.networks.list(filters=selector)]
        if left:
            log.warning("verification run %s: could not remove %s", run_id or "(all)", ", ".join(left))
    return len(removed)


def _quietly(action: Any, **kwargs: Any) -> bool:
    """Run a removal; a missing object or one already being removed (409) is not an error here."""
    try:
        action(**kwargs)
        return True
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as exc:
        if exc.status_code != 409:
            log.warning("%s", exc)
        return False
