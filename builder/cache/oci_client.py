"""A minimal OCI distribution (registry v2) client: blobs and manifests over HTTP.

Enough to store and fetch small "record" artifacts; images themselves go through
the Docker engine's push/pull.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import requests

from builder.errors import ToolError

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


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

    def has_blob(self, repo: str, digest: str) -> bool:
        response = self.session.head(f"{self.base}/{repo}/blobs/{digest}", timeout=self.timeout)
        return response.status_code == 200

    def put_blob(self, repo: str, data: bytes | Path) -> tuple[str, int]:
        """Upload ``data`` (bytes or a file, streamed) unless present; return (digest, size)."""
        if isinstance(data, Path):
            h = hashlib.sha256()
            with data.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            digest, size = "sha256:" + h.hexdigest(), data.stat().st_size
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

    def put_manifest(self, repo: str, tag: str, manifest: dict[str, Any]) -> None:
        body = json.dumps(manifest, sort_keys=True).encode()
        self._check(self.session.put(f"{self.base}/{repo}/manifests/{tag}", data=body,
                                     headers={"Content-Type": MANIFEST}, timeout=self.timeout),
                    f"put manifest {repo}:{tag}")
