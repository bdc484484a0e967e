"""Build the agent tree once: builder image (tree + probe) -> exported venv -> deterministic tarball.

The builder image (``container_specs/agent-build.Containerfile.j2``) installs the agent into a venv
and makes that venv self-contained (``container_specs/agent/make_runtime.py``): Debian's CPython and
every shared library it needs, glibc and its loader included, wired by PT_INTERP and rpath. The
builder then runs the finished tree chrooted into a directory that holds nothing else (no libc, no
shell, no /etc/passwd, no /proc) as the agent's uid: if it answers ``--version`` there, it needs
nothing from any base; what it reported is kept as the facts file. The venv is exported from the
image and repacked as a layer tarball with sorted entries, fixed mtimes and owners, so the same inputs
give the same diff_id. (The verification suites then run that tarball on real bases and check that it
maps no file from them.)
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import docker.errors

from builder.agent.config import home_dir
from builder.errors import BuildError
from builder.hostenv.pip import CONFIG_FILES, config_value, host_index_url
from builder.matrix.models import Agent
from builder.oci.archive import ROOT_DIR, Owner, parents, repack_layer, sha256_file, stream
from builder.oci.engine import Engine
from builder.oci.render import render
from builder.paths import CONTAINER_SPECS

TEMPLATE = "agent-build.Containerfile.j2"
SPEC_FILES = ("compile_tree.py", "make_runtime.py")
# In the builder image: the directory that holds the tree (at the venv's path) and nothing else, and
# where make_runtime.py writes what the tree reported when run alone there.
TREE_ROOT = "/agent-tree"
FACTS = "/usr/local/lib/guestforge/agent-facts.json"
TARBALL = "agent-tree.tar"
MANIFEST = "agent-tree.json"
# Package data the agent never reads and that carries sample secrets, by distribution (paths relative to
# site-packages): Trove's configuration templates for datastores its guest agent has no manager for
# (cassandra's holds a default keystore password).
PRUNE: dict[str, tuple[str, ...]] = {
    "trove": tuple(f"trove/templates/{name}" for name in
                   ("cassandra", "couchbase", "couchdb", "db2", "mongodb", "percona", "pxc", "redis", "vertica")),
}
# Bump when the repacking (layout, owners, modes) changes, so cached tarballs are not reused.
REPACK_VERSION = 1


@dataclass(frozen=True)
class PipSettings:
    """How pip inside the builder reaches its index: ``None`` means pip's default."""

    index_url: str | None = None
    cert: Path | None = None     # a CA bundle to trust (e.g. a TLS-inspecting egress proxy's)


@dataclass(frozen=True)
class AgentTree:
    """The built tree: ``path`` is the layer tarball every consumer unpacks or appends unchanged."""

    path: Path
    diff_id: str                 # sha256 of the (uncompressed) tarball: its diff_id as an OCI layer
    size: int
    version: str                 # what ``<entrypoint> --version`` printed
    python: str
    managers: tuple[str, ...]    # datastore managers the agent registers (trove: REGISTRY_EXT_DEFAULTS)
    packages: tuple[str, ...] = field(default=(), repr=False)   # name==version of everything in the venv
    builder_image: str = ""
    reused: bool = False

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(path=str(self.path), managers=list(self.managers), packages=list(self.packages))
        return data


# -- inputs --------------------------------------------------------------------------------------------
def pip_settings(agent: Agent, environ: Mapping[str, str] | None = None,
                 files: tuple[Path, ...] = CONFIG_FILES) -> PipSettings:
    """The matrix's ``index_url``, else the host's (PIP_INDEX_URL, then pip.conf); the host's CA bundle.

    ``file://`` locations mean nothing inside a build container and are ignored; a matrix
    ``index_url`` that is one is an error.
    """
    env = os.environ if environ is None else environ
    if agent.index_url and not agent.index_url.startswith(("http://", "https://")):
        raise BuildError(f"agent.index_url {agent.index_url!r}: a build container cannot read a local index; "
                         "serve it over http(s) or leave index_url unset")
    index = agent.index_url
    if index is None:
        from_env = (env.get("PIP_INDEX_URL") or "").split()
        if from_env and from_env[0].startswith(("http://", "https://")):
            index = from_env[0]
        else:
            index = host_index_url(files)
    cert_value = env.get("PIP_CERT") or config_value("cert", files)
    cert = Path(cert_value) if cert_value and Path(cert_value).is_file() else None
    return PipSettings(index, cert)


def template_context(agent: Agent, base_image: str, pip: PipSettings, apt: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "base_image": base_image,
        "apt_options": list(apt),
        "agent": agent.model_dump(),
        "pip": {"index_url": pip.index_url, "cert": pip.cert is not None},
        "prune": list(PRUNE.get(agent.package, ())),
        "tree": {"root": TREE_ROOT, "venv_parent": str(PurePosixPath(agent.venv).parent), "facts": FACTS},
        "labels": {
            "org.opencontainers.image.title": f"guestforge {agent.package} agent builder",
            "org.opencontainers.image.version": agent.version,
            "io.guestforge.role": "agent-build",
        },
    }


def sidecar_containerfile(agent: Agent, base_image: str, labels: Mapping[str, str], apt: Sequence[str] = ()) -> str:
    """The agent sidecar's own part (user, sudo, environment); the tree is appended to it as a layer."""
    from builder.agent.config import environment

    return render("agent.Containerfile.j2", {"base_image": base_image, "agent": agent.model_dump(),
                                             "agent_env": environment(agent), "labels": dict(labels),
                                             "apt_options": list(apt)})


def context_files(agent: Agent, base_image: str, pip: PipSettings, apt: Sequence[str] = ()) -> dict[str, bytes | Path]:
    """The builder image's build context: the rendered Containerfile and ``container_specs/agent/``."""
    files: dict[str, bytes | Path] = {
        "Containerfile": render(TEMPLATE, template_context(agent, base_image, pip, apt)).encode(),
    }
    for name in SPEC_FILES:
        files[f"agent/{name}"] = CONTAINER_SPECS / "agent" / name
    if pip.cert is not None:
        files["agent/pip-cert.pem"] = pip.cert
    return files


# -- the layout of the tarball ---------------------------------------------------------------------------
def layout(agent: Agent) -> tuple[dict[str, Owner], dict[str, Owner]]:
    """(directories to declare, owner overrides) of the agent layer, as Trove lays the agent out.

    Code is root's; the agent (uid, gid = uid) owns its log directory and home; the config directory
    is root's and readable by the agent's group only (its files arrive at run time).
    """
    uid = agent.uid
    rel = {name: path.strip("/") for name, path in
           (("venv", agent.venv), ("config", agent.config_dir), ("log", agent.log_dir), ("home", home_dir(agent)))}
    directories: dict[str, Owner] = {}
    for path in rel.values():
        for parent in parents(path):
            directories.setdefault(parent, ROOT_DIR)
    directories[rel["config"]] = Owner(0, uid, 0o750)
    directories[rel["log"]] = Owner(uid, uid, 0o750)
    directories[rel["home"]] = Owner(uid, uid, 0o750)
    owners = {rel["venv"]: ROOT_DIR}
    return directories, owners


# -- the build ---------------------------------------------------------------------------------------------
def export_venv(engine: Engine, image_id: str, venv: str, out: Path, name: str) -> dict[str, Any]:
    """Stream ``venv`` out of the image (``docker cp``-style archive) into ``out``; return the probe's facts."""
    container = engine.client.containers.create(image_id, ["/bin/true"], name=name, network_disabled=True,
                                                labels={"io.guestforge.role": "agent-export"})
    try:
        chunks, _ = container.get_archive(TREE_ROOT + venv, chunk_size=1 << 20)
        with out.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
        chunks, _ = container.get_archive(FACTS)
        with tarfile.open(fileobj=stream(iter(chunks)), mode="r|") as tar:
            member = next(m for m in tar if m.isfile())
            facts: dict[str, Any] = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
    except (docker.errors.APIError, StopIteration, ValueError) as exc:
        raise BuildError(f"cannot export {venv} and {FACTS} from the agent builder image: {exc}") from None
    finally:
        container.remove(force=True)
    return facts


def _cached(workdir: Path, image_id: str) -> AgentTree | None:
    manifest, tarball = workdir / MANIFEST, workdir / TARBALL
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    if data.get("builder_image") != image_id or data.get("repack") != REPACK_VERSION or not tarball.is_file():
        return None
    if sha256_file(tarball) != data.get("diff_id"):
        return None
    return AgentTree(path=tarball, diff_id=data["diff_id"], size=tarball.stat().st_size, version=data["version"],
                     python=data["python"], managers=tuple(data["managers"]), packages=tuple(data["packages"]),
                     builder_image=image_id, reused=True)


def build_agent_tree(engine: Engine, agent: Agent, base_image: str, workdir: Path, log: Path, *,
                     pip: PipSettings | None = None, image_repo: str = "guestforge/agent-build",
                     container_prefix: str = "guestforge-agent", network_mode: str | None = None,
                     apt: Sequence[str] = ()) -> AgentTree:
    """Build (or reuse) the agent tree for ``agent`` on ``base_image``; the tarball lands in ``workdir``.

    The builder image is tagged ``{image_repo}:{agent.version}``; its layers are the build cache (the
    pip install is its own layer). When ``workdir`` already holds the tarball of the same builder image
    (same image ID, same repack version, same digest), it is returned without exporting again.
    ``network_mode``: the build containers' network (default: the engine's bridge). ``apt``: the base's
    apt options (``builder.oci.rootfs.apt_options``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    pip = pip if pip is not None else pip_settings(agent)
    started = time.monotonic()
    image_id = engine.build(context_files(agent, base_image, pip, apt), f"{image_repo}:{agent.version}", log,
                            network_mode=network_mode)
    cached = _cached(workdir, image_id)
    if cached is not None:
        with log.open("a") as f:
            f.write(f"\n# agent tree reused: {cached.path} {cached.diff_id}\n")
        return cached
    export = workdir / "export.tar"
    tarball = workdir / TARBALL
    try:
        facts = export_venv(engine, image_id, agent.venv, export, f"{container_prefix}-export-{os.getpid()}")
        if facts.get("version") != agent.version:
            raise BuildError(f"{agent.entrypoint} --version printed {facts.get('version')!r}, the matrix pins "
                             f"{agent.version}", str(log))
        directories, owners = layout(agent)
        diff_id = repack_layer(export, tarball, source_root=Path(agent.venv).name,
                               dest_root=agent.venv.strip("/"), directories=directories, owners=owners)
    finally:
        export.unlink(missing_ok=True)
    tree = AgentTree(path=tarball, diff_id=diff_id, size=tarball.stat().st_size, version=facts["version"],
                     python=facts["python"], managers=tuple(facts["managers"]),
                     packages=tuple(facts["packages"]), builder_image=image_id)
    manifest = {**tree.as_dict(), "repack": REPACK_VERSION}
    del manifest["reused"]
    (workdir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    with log.open("a") as f:
        f.write(f"\n# agent tree {diff_id} ({tree.size} bytes) in {time.monotonic() - started:.1f}s\n")
    return tree
