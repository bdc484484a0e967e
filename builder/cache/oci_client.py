"""A minimal OCI distribution (registry v2) client: blobs, manifests and file artifacts over HTTP.

Enough to store and fetch the cache's "record" artifacts and to publish disk images as
ORAS-style artifacts; container images themselves go through the Docker engine's push/pull.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from builder.errors import ToolError, UsageError
from builder.oci.archive import sha256_file

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# What a tag may resolve to: OCI manifests and indexes, and the Docker v2 manifests the engine pushes.
ANY_MANIFEST = ", ".join([MANIFEST, "application/vnd.oci.image.index.v1+json",
                          "application/vnd.docker.distribution.manifest.v2+json",
                          "application/vnd.docker.distribution.manifest.list.v2+json"])
TITLE = "org.opencontainers.image.title"  # a layer's file name (what `oras pull` writes it as)
_LOCATION = re.compile(r"^(?P<host>[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9a-fA-F:]+\](:[0-9]{1,5})?)"
                       r"(/(?P<prefix>[a-z0-9]+([._/-][a-z0-9]+)*))?/?$")


def parse_location(location: str, what: str, default_prefix: str) -> tuple[str, str]:
    """``HOST[:PORT][/PREFIX]`` -> (host, prefix); anything else is the user's error (exit 2)."""
    match = _LOCATION.match(location)
    if match is None or ("." not in match["host"] and ":" not in match["host"]
                         and match["host"] != "localhost"):
        raise UsageError(f"{what}: not a registry location HOST[:PORT][/PREFIX]: {location!r}")
    return match["host"], match["prefix"] or default_prefix



class Registry:
    def __init__(self, host: str, timeout: float = 60):
        scheme = "http" if host.startswith(("127.", "localhost", "[::1]")) else "https"
        self.base = f"{scheme}://{host}/v2"
        self.session = requests.Session()
        self.timeout = timeout

    def _check(self, response: requests.Response, what: str) -> requests.Response:
        if response.status_code >= 400:
            raise ToolError(f"registry: {what} failed: HTTP {response.status_code} {response.text[:200]}")
        return response

    def ping(self) -> None:
        try:
            self._check(self.session.get(f"{self.base}/", timeout=self.timeout), "ping")
        except requests.RequestException as exc:
            raise ToolError(f"registry {self.base} does not answer: {exc}") from None

    def manifest(self, repo: str, tag: str) -> dict[str, Any] | None:
        response = self.session.get(f"{self.base}/{repo}/manifests/{tag}", headers={"Accept": MANIFEST},
                                    timeout=self.timeout)
        if response.status_code == 404:
            return None
        return dict(self._check(response, f"get manifest {repo}:{tag}").json())

    def manifest_digest(self, repo: str, tag: str) -> str | None:
        """The digest ``repo:tag`` resolves to now, or None when the registry has no such tag."""
        response = self.session.head(f"{self.base}/{repo}/manifests/{tag}", headers={"Accept": ANY_MANIFEST},
                                     timeout=self.timeout)
        if response.status_code == 404:
            return None
        self._check(response, f"head manifest {repo}:{tag}")
        return response.headers.get("Docker-Content-Digest")

    def has_blob(self, repo: str, digest: str) -> bool:
        response = self.session.head(f"{self.base}/{repo}/blobs/{digest}", timeout=self.timeout)
        return response.status_code == 200

    def put_blob(self, repo: str, data: bytes | Path) -> tuple[str, int]:
        """Upload ``data`` (bytes or a file, streamed) unless present; return (digest, size)."""
        if isinstance(data, Path):
            digest, size = sha256_file(data), data.stat().st_size
        else:
            digest, size = "sha256:" + hashlib.sha256(data).hexdigest(), len(data)
        if self.has_blob(repo, digest):
            return digest, size
        start = self._check(self.session.post(f"{self.base}/{repo}/blobs/uploads/", timeout=self.timeout),
                            f"start upload to {repo}")
        location = start.headers["Location"]
        if location.startswith("/"):
            location = self.base[: -len("/v2")] + location
        sep = "&" if "?" in location else "?"
        if isinstance(data, Path):
            with data.open("rb") as body:
                response = self.session.put(f"{location}{sep}digest={digest}", data=body,
                                            headers={"Content-Type": "application/octet-stream",
                                                     "Content-Length": str(size)}, timeout=None)
        else:
            response = self.session.put(f"{location}{sep}digest={digest}", data=data,
                                        headers={"Content-Type": "application/octet-stream"}, timeout=self.timeout)
        self._check(response, f"upload blob to {repo}")
        return digest, size

    def get_blob(self, repo: str, digest: str, out: Path | None = None) -> bytes:
        response = self.session.get(f"{self.base}/{repo}/blobs/{digest}", stream=out is not None, timeout=None)
        self._check(response, f"get blob {digest}")
        if out is None:
            return response.content
        h = hashlib.sha256()
        tmp = out.with_name(out.name + ".part")
        with tmp.open("wb") as f:
            for chunk in response.iter_content(1 << 20):
                h.update(chunk)
                f.write(chunk)
        if "sha256:" + h.hexdigest() != digest:
            tmp.unlink(missing_ok=True)
            raise ToolError(f"registry: blob {digest} arrived corrupted")
        tmp.replace(out)
        return b""

    def put_manifest(self, repo: str, tag: str, manifest: dict[str, Any]) -> str:
        """Store ``manifest`` under ``tag``; return its digest."""
        body = json.dumps(manifest, sort_keys=True).encode()
        self._check(self.session.put(f"{self.base}/{repo}/manifests/{tag}", data=body,
                                     headers={"Content-Type": MANIFEST}, timeout=self.timeout),
                    f"put manifest {repo}:{tag}")
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def put_artifact(self, repo: str, tags: Sequence[str], artifact_type: str, config: bytes,
                     layers: Sequence[tuple[Path, str, dict[str, str]]]) -> str:
        """An OCI artifact under each of ``tags``: ``config`` (JSON of ``artifact_type``) and one layer per
        (file, media type, annotations). Blobs already in the repository are not sent again. Returns the
        manifest digest (the same for every tag)."""
        described = []
        for path, media_type, notes in layers:
            digest, size = self.put_blob(repo, path)
            described.append({"mediaType": media_type, "digest": digest, "size": size, "annotations": notes})
        config_digest, config_size = self.put_blob(repo, config)
        manifest = {
            "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": artifact_type, "digest": config_digest, "size": config_size},
            "layers": described,
        }
        return [self.put_manifest(repo, tag, manifest) for tag in tags][0]
