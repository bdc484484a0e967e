"""OCI distribution operations guestforge needs: blobs, manifests, file artifacts, referrers.

Used for the cache's "record" artifacts, disk images published as ORAS-style artifacts, and the
signatures and provenance attached to published images; container images themselves go through the
Docker engine's push/pull. Requests go through ``builder.cache.transport`` (the ``oras`` SDK plus
timeouts, retries and authentication). Every blob is verified against its digest, and an upload
interrupted mid-body is restarted from the beginning, never left half-sent under a digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import requests

from builder.cache.credentials import Credentials
from builder.cache.transport import (AuthError, RegistryError, RegistryOptions, Transport, TransientError,
                                     wait_before)
from builder.errors import UsageError
from builder.oci.archive import sha256_file

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
# What a tag may resolve to: OCI manifests and indexes, and the Docker v2 manifests the engine pushes.
ANY_MANIFEST = ", ".join([MANIFEST, INDEX, "application/vnd.docker.distribution.manifest.v2+json",
                          "application/vnd.docker.distribution.manifest.list.v2+json"])
TITLE = "org.opencontainers.image.title"  # a layer's file name (what `oras pull` writes it as)
_LOCATION = re.compile(r"^(?P<host>[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9a-fA-F:]+\](:[0-9]{1,5})?)"
                       r"(/(?P<prefix>[a-z0-9]+([._/-][a-z0-9]+)*))?/?$")
T = TypeVar("T")
_CUT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError, OSError)

__all__ = ["ANY_MANIFEST", "AuthError", "MANIFEST", "Registry", "RegistryError", "RegistryOptions", "TITLE",
           "parse_location"]


def parse_location(location: str, what: str, default_prefix: str) -> tuple[str, str]:
    """``HOST[:PORT][/PREFIX]`` -> (host, prefix); anything else is the user's error (exit 2)."""
    match = _LOCATION.match(location)
    if match is None or ("." not in match["host"] and ":" not in match["host"]
                         and match["host"] != "localhost"):
        raise UsageError(f"{what}: not a registry location HOST[:PORT][/PREFIX]: {location!r}")
    return match["host"], match["prefix"] or default_prefix


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    """One registry host. ``options`` carries trust and patience; credentials come from the Docker config."""

    def __init__(self, host: str, options: RegistryOptions | None = None, credentials: Credentials | None = None):
        self.host = host
        self.options = options or RegistryOptions()
        self.http = Transport(host, self.options, credentials)

    def _check(self, response: Any, what: str) -> Any:
        if response.status_code >= 400:
            raise RegistryError(f"registry {self.host}: {what} failed: HTTP {response.status_code} "
                                f"{response.text[:200]}")
        return response

    def _again(self, operation: Callable[[], T]) -> T:
        """Run a whole multi-request operation again after a transient failure (an upload cut mid-body)."""
        for attempt in range(self.options.attempts):
            try:
                return operation()
            except TransientError:
                if attempt == self.options.attempts - 1:
                    raise
                time.sleep(wait_before(attempt, self.options))
        raise AssertionError("unreachable")

    def ping(self) -> None:
        """The registry answers the v2 API (a 401 counts: credentials are asked for per repository)."""
        response = self.http.session.get(self.http.url(""), verify=self.http._tls_verify)
        if response.status_code not in (200, 401):
            self._check(response, "ping")

    # -- manifests ---------------------------------------------------------------------------------
    def manifest(self, repo: str, reference: str) -> dict[str, Any] | None:
        response = self.http.do_request(self.http.url(f"{repo}/manifests/{reference}"),
                                        headers={"Accept": ANY_MANIFEST})
        if response.status_code == 404:
            return None
        return dict(self._check(response, f"get manifest {repo}:{reference}").json())

    def manifest_digest(self, repo: str, reference: str) -> str | None:
        """The digest ``repo:reference`` resolves to now; None only when the registry says 404."""
        response = self.http.do_request(self.http.url(f"{repo}/manifests/{reference}"), "HEAD",
                                        headers={"Accept": ANY_MANIFEST})
        if response.status_code == 404:
            return None
        self._check(response, f"head manifest {repo}:{reference}")
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            raise RegistryError(f"registry {self.host}: no Docker-Content-Digest for {repo}:{reference}")
        return str(digest)

    def manifest_raw(self, repo: str, reference: str) -> tuple[bytes, str] | None:
        """A manifest's exact bytes and media type (what a digest is computed over), or None on 404."""
        response = self.http.do_request(self.http.url(f"{repo}/manifests/{reference}"),
                                        headers={"Accept": ANY_MANIFEST})
        if response.status_code == 404:
            return None
        self._check(response, f"get manifest {repo}:{reference}")
        return bytes(response.content), str(response.headers.get("Content-Type", MANIFEST)).split(";")[0]

    def tag(self, repo: str, digest: str, tag: str) -> None:
        """Point ``tag`` at the manifest ``digest`` already in ``repo`` (its bytes unchanged)."""
        found = self.manifest_raw(repo, digest)
        if found is None:
            raise RegistryError(f"registry {self.host}: cannot tag {repo}:{tag}: no manifest {digest}")
        self.put_manifest_raw(repo, tag, *found)

    def put_manifest(self, repo: str, reference: str, manifest: dict[str, Any],
                     media_type: str = MANIFEST) -> str:
        """Store ``manifest`` under ``reference`` (a tag, or its own digest); return its digest."""
        body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        return self.put_manifest_raw(repo, reference, body, media_type)

    def put_manifest_raw(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        digest = _digest(body)
        response = self.http.do_request(self.http.url(f"{repo}/manifests/{reference}"), "PUT", data=body,
                                        headers={"Content-Type": media_type})
        self._check(response, f"put manifest {repo}:{reference}")
        stored = response.headers.get("Docker-Content-Digest")
        if stored and stored != digest:
            raise RegistryError(f"registry {self.host}: stored {repo}:{reference} as {stored}, sent {digest}")
        return digest

    # -- blobs -------------------------------------------------------------------------------------
    def has_blob(self, repo: str, digest: str) -> bool:
        response = self.http.do_request(self.http.url(f"{repo}/blobs/{digest}"), "HEAD")
        if response.status_code == 404:
            return False
        return bool(self._check(response, f"head blob {digest}").status_code == 200)

    def put_blob(self, repo: str, data: bytes | Path) -> tuple[str, int]:
        """Upload ``data`` (bytes, or a file streamed from disk) unless present; return (digest, size)."""
        if isinstance(data, Path):
            digest, size = sha256_file(data), data.stat().st_size
        else:
            digest, size = _digest(data), len(data)
        if not self.has_blob(repo, digest):
            self._again(lambda: self._upload(repo, data, digest, size))
        return digest, size

    def _upload(self, repo: str, data: bytes | Path, digest: str, size: int) -> None:
        start = self._check(self.http.do_request(self.http.url(f"{repo}/blobs/uploads/"), "POST",
                                                 headers={"Content-Length": "0"}), f"start upload to {repo}")
        location = start.headers.get("Location", "")
        if not location:
            raise RegistryError(f"registry {self.host}: upload to {repo} gave no Location")
        if location.startswith("/"):
            location = f"{self.http.scheme}://{self.host}{location}"
        url = f"{location}{'&' if '?' in location else '?'}digest={digest}"
        if isinstance(data, Path):
            with data.open("rb") as body:
                response = self.http.upload(url, body, size)
        else:
            response = self.http.do_request(url, "PUT", data=data,
                                            headers={"Content-Type": "application/octet-stream"})
        self._check(response, f"upload blob {digest} to {repo}")

    def get_blob(self, repo: str, digest: str, out: Path | None = None) -> bytes:
        """The blob's bytes, or (with ``out``) the blob written to ``out``; either way checked against its digest."""
        return self._again(lambda: self._get_blob(repo, digest, out))

    def _get_blob(self, repo: str, digest: str, out: Path | None) -> bytes:
        response = self.http.do_request(self.http.url(f"{repo}/blobs/{digest}"), stream=True)
        self._check(response, f"get blob {digest} from {repo}")
        h = hashlib.sha256()
        tmp = out.with_name(out.name + ".part") if out else None
        sink: IO[bytes] = tmp.open("wb") if tmp else io.BytesIO()
        try:
            with response, sink:
                for chunk in response.iter_content(1 << 20):
                    h.update(chunk)
                    sink.write(chunk)
                data = b"" if tmp else sink.getvalue()  # type: ignore[attr-defined]
        except _CUT as exc:  # a reset mid-body: fetch the blob again
            raise TransientError(f"registry {self.host}: blob {digest} cut off: {exc!r}") from None
        finally:
            if tmp and "sha256:" + h.hexdigest() != digest:
                tmp.unlink(missing_ok=True)
        if "sha256:" + h.hexdigest() != digest:
            raise TransientError(f"registry {self.host}: blob {digest} arrived corrupted")
        if out and tmp:
            tmp.replace(out)
        return data

    # -- artifacts ---------------------------------------------------------------------------------
    def missing(self, repo: str, digest: str) -> list[str]:
        """What of the manifest ``digest`` the registry cannot serve: the manifest itself, or blobs it names
        (config and layers; for an index, the manifests it lists). Empty when complete."""
        found = self.manifest_raw(repo, digest)
        if found is None:
            return [digest]
        if _digest(found[0]) != digest:
            return [f"{digest} (served with other content)"]
        manifest = json.loads(found[0])
        if "manifests" in manifest:
            return [m for entry in manifest["manifests"] for m in self.missing(repo, entry["digest"])]
        blobs = [manifest["config"], *manifest.get("layers", [])]
        return [b["digest"] for b in blobs if not self.has_blob(repo, b["digest"])]

    def put_artifact(self, repo: str, tags: Sequence[str], artifact_type: str, config: bytes,
                     layers: Sequence[tuple[Path, str, dict[str, str]]], subject: dict[str, Any] | None = None,
                     annotations: dict[str, str] | None = None) -> str:
        """An OCI artifact: ``config`` (JSON of ``artifact_type``) and one layer per (file, media type,
        annotations); blobs first, then the manifest by digest, then each of ``tags`` in order (so a
        tag never names a manifest whose blobs are missing). Returns the manifest digest."""
        manifest = self.artifact_manifest(repo, artifact_type, config, layers, subject, annotations)
        digest = self.put_manifest(repo, self.digest_of(manifest), manifest)
        for tag in tags:
            self.put_manifest(repo, tag, manifest)
        return digest

    def artifact_manifest(self, repo: str, artifact_type: str, config: bytes,
                          layers: Sequence[tuple[Path | bytes, str, dict[str, str]]],
                          subject: dict[str, Any] | None = None,
                          annotations: dict[str, str] | None = None,
                          config_type: str | None = None) -> dict[str, Any]:
        """Upload the blobs of an artifact and return its manifest (not stored yet). The config's media
        type is ``artifact_type`` unless ``config_type`` says otherwise."""
        described = []
        for data, media_type, notes in layers:
            digest, size = self.put_blob(repo, data)
            described.append({"mediaType": media_type, "digest": digest, "size": size, "annotations": notes})
        config_digest, config_size = self.put_blob(repo, config)
        manifest: dict[str, Any] = {
            "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": config_type or artifact_type, "digest": config_digest, "size": config_size},
            "layers": described,
        }
        if subject:
            manifest["subject"] = subject
        if annotations:
            manifest["annotations"] = annotations
        return manifest

    @staticmethod
    def digest_of(manifest: dict[str, Any]) -> str:
        return _digest(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode())

    def referrers(self, repo: str, digest: str) -> list[dict[str, Any]] | None:
        """Manifests whose subject is ``digest`` (the OCI 1.1 referrers API), or None when the registry
        has no such API (then the cosign tag-naming scheme is the fallback)."""
        response = self.http.do_request(self.http.url(f"{repo}/referrers/{digest}"),
                                        headers={"Accept": INDEX})
        if response.status_code == 404 and not response.headers.get("Content-Type", "").startswith(INDEX):
            return None
        self._check(response, f"referrers of {digest}")
        return list(response.json().get("manifests", []))

