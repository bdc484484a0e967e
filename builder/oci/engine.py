"""The Docker engine, through its API (docker SDK): build, import, inspect, tag, save, load.

Build output streams to the step's log file; a failed step raises BuildError with that log.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors
from docker.models.images import Image

from builder.errors import BuildError, ToolError
from builder.oci.archive import context_tar


class Engine:
    """A connection to the Docker engine; construct one per run (no global client)."""

    def __init__(self, client: docker.DockerClient | None = None):
        try:
            self.client = client or docker.from_env(timeout=900)
            self.client.ping()
        except docker.errors.DockerException as exc:
            raise ToolError(f"the Docker engine does not answer ({exc}); run ci/setup-host to start it") from None
        self.api = self.client.api

    # -- images ---------------------------------------------------------------------------------
    def image(self, ref: str) -> Image | None:
        try:
            return self.client.images.get(ref)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.NullResource:
            return None

    def tag(self, image_id: str, ref: str) -> None:
        repo, _, tag = ref.rpartition(":")
        self.api.tag(image_id, repo, tag)

    def remove(self, ref: str) -> None:
        try:
            self.api.remove_image(ref, force=True, noprune=False)
        except docker.errors.NotFound:
            pass

    # -- producing images -----------------------------------------------------------------------
    def build(self, files: Mapping[str, bytes | Path], tag: str, log: Path,
              labels: Mapping[str, str] | None = None, buildargs: Mapping[str, str] | None = None,
              network_mode: str | None = None, attempts: int = 3) -> str:
        """Build the context ``files`` (must hold ``Containerfile``); return the image ID.

        A build that fails on a transient network error (a mirror resetting the connection, a
        timeout, a hash mismatch while the mirror syncs) is tried again, up to ``attempts`` times;
        any other failure is final at once. Steps that succeeded come from the engine's cache.
        """
        for attempt in range(1, attempts + 1):
            ctx = context_tar(files)
            stream = self.api.build(fileobj=ctx, custom_context=True, dockerfile="Containerfile", tag=tag, rm=True,
                                    forcerm=True, pull=False, decode=True, labels=dict(labels or {}),
                                    buildargs=dict(buildargs or {}), network_mode=network_mode)
            try:
                image_id = _follow(stream, log, f"build of {tag}")
                break
            except StepFailed as exc:
                if attempt == attempts or not _transient(exc.output):
                    raise
                with log.open("a") as out:
                    out.write(f"\n# transient network failure; trying again ({attempt + 1}/{attempts})\n")
                time.sleep(5 * attempt)
        if image_id is None:
            image = self.image(tag)
            if image is None:
                raise BuildError(f"build of {tag} produced no image", str(log))
            image_id = str(image.id)
        return image_id

    def import_rootfs(self, tar: Path, ref: str, changes: list[str], log: Path) -> str:
        """``docker import`` a root filesystem tarball as ``ref``; return the image ID."""
        repo, _, tag = ref.rpartition(":")
        with log.open("a") as out:
            out.write(f"\n$ docker import {tar} {ref}\n")
        try:
            result = self.api.import_image_from_file(str(tar), repository=repo, tag=tag, changes=changes)
        except docker.errors.APIError as exc:
            raise BuildError(f"docker import of {tar} failed: {exc.explanation}", str(log)) from None
        with log.open("a") as out:
            out.write(f"{result}\n")
        image = self.image(ref)
        if image is None:
            raise BuildError(f"docker import of {tar} produced no image", str(log))
        return str(image.id)

    def push(self, image_id: str, ref: str, log: Path) -> str:
        """Tag ``image_id`` as ``ref`` (``HOST/REPO:TAG``), push it, drop the tag; return the manifest digest."""
        repo, _, tag = ref.rpartition(":")
        self.api.tag(image_id, repo, tag)
        digest = None
        try:
            with log.open("a") as out:
                out.write(f"\n$ docker push {ref}\n")
                for line in self.api.push(repo, tag=tag, stream=True, decode=True):
                    if "error" in line:
                        raise ToolError(f"push of {ref} failed: {line['error']}")
                    if line.get("status") not in (None, "Pushing"):  # per-layer outcomes, not progress
                        out.write(f"{line.get('id', '')} {line['status']}\n".lstrip())
                    digest = line.get("aux", {}).get("Digest", digest)
        finally:
            self.api.remove_image(ref, noprune=True)
        if digest is None:
            raise ToolError(f"push of {ref} reported no digest (log: {log})")
        return str(digest)

    def save(self, ref: str, out: IO[bytes]) -> None:
        for chunk in self.api.get_image(ref, chunk_size=1 << 20):
            out.write(chunk)

    def load(self, data: IO[bytes], log: Path) -> None:
        with log.open("a") as out:
            for entry in self.api.load_image(data):
                out.write(json.dumps(entry) + "\n")
                if "error" in entry:
                    raise BuildError(f"docker load failed: {entry['error']}", str(log))

    def version(self) -> str:
        return str(self.api.version().get("Version", "unknown"))


# Output of apt or pip that means "the network failed", not "the build is wrong".
_TRANSIENT = re.compile(
    r"Temporary failure resolving|Could not connect to|Connection (timed out|reset|refused|failed)|"
    r"Failed to fetch|Hash Sum mismatch|Unable to connect to|Network is unreachable|Read timed out|"
    r"ConnectionResetError|RemoteDisconnected|50[234] (Bad Gateway|Service Unavailable|Gateway Time-?out)|"
    r"Undetermined Error|Mirror sync in progress"
)


def _transient(output: str) -> bool:
    return bool(_TRANSIENT.search(output)) and "Unable to locate package" not in output


class StepFailed(BuildError):
    """A build failed; ``output`` is what it printed (to tell transient failures from real ones)."""

    def __init__(self, message: str, log: str, output: str):
        super().__init__(message, log)
        self.output = output


def _follow(stream: Iterator[dict[str, Any]], log: Path, what: str) -> str | None:
    """Write build output to ``log``; raise on an error entry; return the built image ID."""
    image_id = None
    seen: list[str] = []
    with log.open("a") as out:
        out.write(f"\n# {what}\n")
        try:
            for entry in stream:
                if "stream" in entry:
                    out.write(entry["stream"])
                    seen.append(entry["stream"])
                elif "status" in entry:
                    out.write(f"{entry['status']} {entry.get('progress', '')}\n")
                if "aux" in entry and "ID" in entry["aux"]:
                    image_id = entry["aux"]["ID"]
                if "error" in entry:
                    out.write(f"ERROR: {entry['error']}\n")
                    raise StepFailed(f"{what} failed: {entry['error'].strip()[:300]}", str(log),
                                     "".join(seen[-200:]) + entry["error"])
        except docker.errors.APIError as exc:
            out.write(f"ERROR: {exc}\n")
            raise StepFailed(f"{what} failed: {exc.explanation}", str(log), str(exc)) from None
    return image_id
