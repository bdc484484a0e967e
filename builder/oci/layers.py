"""Append one pre-built layer tarball to an image, byte for byte.

A Containerfile ``COPY``/``ADD`` would make the engine re-create the layer and
stamp fresh directory metadata, so the "same" agent layer would differ per cell.
Instead we stream ``docker save`` of the base image, add our deterministic tar
as the top layer, extend the config (diff_ids, history, labels) and ``docker
load`` the result: the layer's diff_id is the tarball's sha256 in every image,
and the base image's layers are reused, not rebuilt (nor sent back to the engine).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from builder.errors import BuildError
from builder.oci.archive import sha256_file, stream
from builder.oci.engine import Engine

CREATED = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class Appended:
    image_id: str
    diff_id: str
    size: int


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def rewrite_archive(source: IO[bytes], sink: IO[bytes], layer_tar: Path, diff_id: str, new_ref: str,
                    labels: Mapping[str, str], comment: str) -> str:
    """Copy a ``docker save`` stream to ``sink`` with ``layer_tar`` appended on top; return the new config digest."""
    held: dict[str, bytes] = {}
    with tarfile.open(fileobj=source, mode="r|") as src, tarfile.open(fileobj=sink, mode="w|",
                                                                       format=tarfile.PAX_FORMAT) as out:
        for member in src:
            if member.isfile() and member.name.endswith(".json") and "/" not in member.name:
                fobj = src.extractfile(member)
                assert fobj is not None
                held[member.name] = fobj.read()
            elif member.name == "repositories" or member.name.endswith("/layer.tar"):
                # The base's layers are in the engine already (it just saved them), and docker load
                # reads a layer file only for a chain it does not have: sending them again would
                # cost a write of the whole base to the engine's temporary directory per image.
                continue
            else:
                out.addfile(member, src.extractfile(member) if member.isfile() else None)
        manifest = json.loads(held["manifest.json"])
        if len(manifest) != 1:
            raise BuildError(f"expected one image in the saved archive, found {len(manifest)}")
        entry = manifest[0]
        config: dict[str, Any] = json.loads(held[entry["Config"]])
        config["rootfs"]["diff_ids"].append(diff_id)
        config.setdefault("history", []).append({"created": CREATED, "created_by": comment,
                                                 "comment": "guestforge appended layer"})
        settings = config.setdefault("config", {})
        settings["Labels"] = {**(settings.get("Labels") or {}), **labels}
        config["created"] = CREATED
        config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        config_hex = hashlib.sha256(config_bytes).hexdigest()
        layer_name = f"{diff_id.split(':', 1)[1]}/layer.tar"
        out.add(str(layer_tar), arcname=layer_name, recursive=False)
        _add_bytes(out, f"{config_hex}.json", config_bytes)
        new_manifest = [{"Config": f"{config_hex}.json", "RepoTags": [new_ref],
                         "Layers": [*entry["Layers"], layer_name]}]
        _add_bytes(out, "manifest.json", json.dumps(new_manifest).encode())
    return "sha256:" + config_hex


def _pipe_chunks(fd: int) -> Iterator[bytes]:
    with os.fdopen(fd, "rb") as reader:
        while chunk := reader.read(1 << 20):
            yield chunk


def append_layer(engine: Engine, base_ref: str, layer_tar: Path, new_ref: str, log: Path,
                 labels: Mapping[str, str] | None = None, comment: str = "guestforge layer",
                 diff_id: str | None = None) -> Appended:
    """Make ``new_ref`` = ``base_ref`` + ``layer_tar`` as its top layer; return the new image ID."""
    diff_id = diff_id or sha256_file(layer_tar)
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []
    config_digest: list[str] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb") as sink:
                saved = stream(iter(engine.api.get_image(base_ref, chunk_size=1 << 20)))
                config_digest.append(rewrite_archive(saved, sink, layer_tar, diff_id, new_ref, labels or {},
                                                     comment))
        except BaseException as exc:  # surfaced below, after the load finishes or fails
            failure.append(exc)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        engine.load(_pipe_chunks(read_fd), log)  # type: ignore[arg-type]
    finally:
        producer.join()
    if failure:
        raise BuildError(f"appending a layer to {base_ref} failed: {failure[0]}", str(log))
    image = engine.image(new_ref)
    if image is None or image.id != config_digest[0]:
        raise BuildError(f"docker load did not produce {new_ref} with config {config_digest[0]}", str(log))
    if image.attrs["RootFS"]["Layers"][-1] != diff_id:
        raise BuildError(f"{new_ref}: top layer is not {diff_id}", str(log))
    return Appended(str(image.id), diff_id, int(image.attrs.get("Size", 0)))
