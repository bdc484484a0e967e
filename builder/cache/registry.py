"""The registry as a shared build cache, keyed by node key.

For every node a small OCI artifact, the *record*, is stored at
``PREFIX/<kind>:<key>.record``: its config is the node's artifact JSON and its
layers are the node's files (agent tarball, pod spec, disk images; paths stored
relative to the build dir). Image nodes also push their image to
``PREFIX/<kind>:<key>``. Before building, the executor asks ``fetch``; a hit is
pulled and recorded locally instead of being built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builder.errors import ToolError
from builder.graph.kinds import kind
from builder.graph.step import Artifact, Node
from builder.oci.engine import Engine
from builder.cache.oci_client import Registry, RegistryOptions, parse_location

RECORD_TYPE = "application/vnd.guestforge.record.v1+json"
FILE_TYPE = "application/octet-stream"


def _file_fields(artifact: Mapping[str, Any]) -> dict[str, str]:
    """Artifact fields that name files: ``path`` and every entry of ``files``."""
    fields = {"path": str(artifact["path"])} if "path" in artifact else {}
    files = artifact.get("files")
    if isinstance(files, Mapping):
        fields.update({f"files.{k}": str(v) for k, v in files.items()})
    return fields


class RegistryCache:
    def __init__(self, location: str, engine: Engine, build_dir: Path, options: RegistryOptions | None = None):
        self.host, self.prefix = parse_location(location, "--cache-registry", "guestforge-cache")
        self.registry = Registry(self.host, options)
        self.registry.ping()
        self.engine, self.build_dir = engine, build_dir.resolve()

    def _repo(self, node: Node) -> str:
        return f"{self.prefix}/{node.kind}"

    def _log(self, log: Path, text: str) -> None:
        with log.open("a") as out:
            out.write(f"cache: {text}\n")

    # -- store --------------------------------------------------------------------------------------
    def store(self, node: Node, key: str, artifact: Artifact, log: Path) -> None:
        """Best effort: a cache that cannot take the node never fails the build."""
        try:
            self._store(node, key, artifact.record(), log)
        except Exception as exc:  # noqa: BLE001 - the cache is an optimisation, never a failure
            self._log(log, f"not stored ({exc!r}); the build itself succeeded")

    def _store(self, node: Node, key: str, artifact: dict[str, Any], log: Path) -> None:
        repo = self._repo(node)
        if "ref" in artifact and "id" in artifact:
            remote = f"{self.host}/{repo}:{key}"
            self.engine.push(str(artifact["id"]), remote, log)
            self._log(log, f"pushed {remote}")
        layers = []
        for field, rel in _file_fields(artifact).items():   # recorded relative to the build dir
            layers.append((self.build_dir / rel, FILE_TYPE, {"io.guestforge.field": field, "io.guestforge.path": rel}))
        config = json.dumps({"node": node.id, "kind": node.kind, "artifact": artifact}, sort_keys=True).encode()
        self.registry.put_artifact(repo, [f"{key}.record"], RECORD_TYPE, config, layers)
        self._log(log, f"stored record {self.host}/{repo}:{key}.record")

    # -- fetch --------------------------------------------------------------------------------------
    def fetch(self, node: Node, key: str, log: Path) -> Artifact | None:
        """A hit's artifact, or None (also when the cache misbehaves: then the node is built)."""
        try:
            record = self._fetch(node, key, log)
            return kind(node.kind).load(record) if record is not None else None
        except Exception as exc:  # noqa: BLE001 - fall back to building
            self._log(log, f"miss ({exc!r}); building")
            return None

    def _fetch(self, node: Node, key: str, log: Path) -> dict[str, Any] | None:
        repo = self._repo(node)
        manifest = self.registry.manifest(repo, f"{key}.record")
        if manifest is None:
            self._log(log, f"miss: no {self.host}/{repo}:{key}.record")
            return None
        record = json.loads(self.registry.get_blob(repo, manifest["config"]["digest"]))
        artifact: dict[str, Any] = record["artifact"]
        for layer in manifest.get("layers", []):
            field = layer["annotations"]["io.guestforge.field"]
            rel = layer["annotations"]["io.guestforge.path"]
            local = self.build_dir / rel
            local.parent.mkdir(parents=True, exist_ok=True)
            self.registry.get_blob(repo, layer["digest"], local)
            if field == "path":
                artifact["path"] = rel
            else:
                artifact.setdefault("files", {})[field.split(".", 1)[1]] = rel
        if "ref" in artifact and "id" in artifact:
            remote = f"{self.host}/{repo}:{key}"
            self.engine.client.images.pull(f"{self.host}/{repo}", tag=key)
            image = self.engine.image(remote)
            if image is None or image.id != artifact["id"]:
                raise ToolError(f"pulled {remote} but its ID is not {artifact['id']}")
            self.engine.tag(str(image.id), str(artifact["ref"]))
            if artifact.get("tag"):
                self.engine.tag(str(image.id), str(artifact["tag"]))
            self.engine.api.remove_image(remote, noprune=True)
        self._log(log, f"hit: pulled {self.host}/{repo}:{key}")
        return artifact
