"""Append one pre-built layer tarball to an image, byte for byte.

A Containerfile ``COPY``/``ADD`` would make the engine re-create the layer and
stamp fresh directory metadata, so the "same" agent layer would differ per cell.
Instead we take the base image's config, add our deterministic tar's diff_id,
history and labels, and ``docker load`` an archive holding only that config and
that tar: the layer's diff_id is the tarball's sha256 in every image, and the
base image's layers are reused, neither rebuilt nor sent back to the engine
(docker load reads a layer file only for a layer chain it does not have).

The base config is read once per base image with ``docker save`` (the only way to get
its exact bytes, and one that streams the whole image) and kept by image ID, so an
agent change appends to every cell without saving any datastore image again.
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


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def saved_config(source: IO[bytes]) -> bytes:
    """The config of the one image in a ``docker save`` stream; the layers are read past, not kept."""
    held: dict[str, bytes] = {}
    with tarfile.open(fileobj=source, mode="r|") as src:
        for member in src:
            if member.isfile() and member.name.endswith(".json") and "/" not in member.name:
                fobj = src.extractfile(member)
                assert fobj is not None
                held[member.name] = fobj.read()
    manifest = json.loads(held["manifest.json"])
    if len(manifest) != 1:
        raise BuildError(f"expected one image in the saved archive, found {len(manifest)}")
    return held[manifest[0]["Config"]]


def base_config(engine: Engine, image_id: str, cache: Path | None) -> bytes:
    """The image's config exactly as the engine stores it (its sha256 is the image ID), from ``cache``
    when an earlier append saved it there."""
    path = cache / f"{image_id.removeprefix('sha256:')}.json" if cache else None
    if path is not None and path.is_file() and _digest(data := path.read_bytes()) == image_id:
        return data
    data = saved_config(stream(iter(engine.api.get_image(image_id, chunk_size=1 << 20))))
    if _digest(data) != image_id:
        raise BuildError(f"docker save of {image_id} returned a config with another digest")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return data


def write_archive(sink: IO[bytes], config_bytes: bytes, layer_tar: Path, diff_id: str, new_ref: str,
                  labels: Mapping[str, str], comment: str) -> str:
    """Write a ``docker load`` archive: the base config plus ``layer_tar`` on top; return the new config digest.

    The manifest names a file for every layer, but only the new one is in the archive: the engine has
    the base's layers."""
    config: dict[str, Any] = json.loads(config_bytes)
    config["rootfs"]["diff_ids"].append(diff_id)
    config.setdefault("history", []).append({"created": CREATED, "created_by": comment,
                                             "comment": "guestforge appended layer"})
    settings = config.setdefault("config", {})
    settings["Labels"] = {**(settings.get("Labels") or {}), **labels}
    config["created"] = CREATED
    new_config = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_hex = hashlib.sha256(new_config).hexdigest()
    layers = [f"{d.removeprefix('sha256:')}/layer.tar" for d in config["rootfs"]["diff_ids"]]
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as out:
        out.add(str(layer_tar), arcname=layers[-1], recursive=False)
        _add_bytes(out, f"{config_hex}.json", new_config)
        manifest = [{"Config": f"{config_hex}.json", "RepoTags": [new_ref], "Layers": layers}]
        _add_bytes(out, "manifest.json", json.dumps(manifest).encode())
    return "sha256:" + config_hex


def _pipe_chunks(fd: int) -> Iterator[bytes]:
    with os.fdopen(fd, "rb") as reader:
        while chunk := reader.read(1 << 20):
            yield chunk


def append_layer(engine: Engine, base_ref: str, layer_tar: Path, new_ref: str, log: Path,
                 labels: Mapping[str, str] | None = None, comment: str = "guestforge layer",
                 diff_id: str | None = None, config_cache: Path | None = None) -> Appended:
    """Make ``new_ref`` = ``base_ref`` + ``layer_tar`` as its top layer; return the new image ID.

    ``config_cache``: a directory keeping base configs by image ID (see the module docstring)."""
    diff_id = diff_id or sha256_file(layer_tar)
    base = engine.image(base_ref)
    if base is None:
        raise BuildError(f"appending a layer: no image {base_ref} in the engine", str(log))
    config_bytes = base_config(engine, str(base.id), config_cache)
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []
    config_digest: list[str] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb") as sink:
                config_digest.append(write_archive(sink, config_bytes, layer_tar, diff_id, new_ref, labels or {},
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
