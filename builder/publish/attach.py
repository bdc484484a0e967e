"""Signatures and provenance attached to a published manifest digest, where cosign and the OCI 1.1
referrers API look for them.

Each attachment is an OCI manifest whose ``subject`` is the artifact (a registry with the referrers
API lists it under the artifact's digest), laid out as cosign lays it out: the signature as a
``simplesigning`` layer carrying its signature in an annotation, the provenance as a DSSE envelope
layer. Registries without the referrers API (CNCF distribution 2.8, for one) get cosign's tag
scheme too: ``sha256-<hex>.sig`` and ``sha256-<hex>.att`` in the artifact's repository.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from builder.cache.oci_client import Registry
from builder.publish.provenance import IN_TOTO_PAYLOAD, SLSA_PROVENANCE
from builder.publish.signing import (SIGNATURE_ANNOTATION, SIMPLE_SIGNING, dsse_envelope, sign,
                                     simple_signing_payload)

IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
PREDICATE_ANNOTATION = "predicateType"


@dataclass(frozen=True)
class Subject:
    """The artifact attached to: where it is and its manifest descriptor."""

    host: str
    repo: str
    digest: str
    media_type: str
    size: int

    @property
    def repository(self) -> str:
        return f"{self.host}/{self.repo}"

    def tag(self, suffix: str) -> str:
        return self.digest.replace(":", "-") + "." + suffix

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def subject_of(registry: Registry, repo: str, digest: str) -> Subject:
    found = registry.manifest_raw(repo, digest)
    if found is None:
        raise LookupError(f"{registry.host}/{repo}@{digest} is not in the registry")
    return Subject(registry.host, repo, digest, found[1], len(found[0]))


def _config(layer: bytes) -> bytes:
    """An image config naming the one layer (cosign's attachments are images of one layer)."""
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    return json.dumps({"architecture": "", "os": "", "config": {}, "rootfs": {"type": "layers",
                                                                           "diff_ids": [diff_id]}},
                      sort_keys=True).encode()


def _put(registry: Registry, subject: Subject, artifact_type: str, layer: bytes, media_type: str,
         notes: dict[str, str], suffix: str, tag_fallback: bool) -> str:
    manifest = registry.artifact_manifest(subject.repo, artifact_type, _config(layer), [(layer, media_type, notes)],
                                          subject.descriptor(), config_type=IMAGE_CONFIG)
    digest = registry.put_manifest(subject.repo, registry.digest_of(manifest), manifest)
    if tag_fallback:
        registry.put_manifest(subject.repo, subject.tag(suffix), manifest)
    return digest


def attach(registry: Registry, subject: Subject, provenance: dict[str, Any],
           key: ec.EllipticCurvePrivateKey | None) -> dict[str, str]:
    """Attach the provenance (signed when ``key`` is given) and the signature; return their digests."""
    fallback = registry.referrers(subject.repo, subject.digest) is None
    envelope = dsse_envelope(key, IN_TOTO_PAYLOAD, json.dumps(provenance, sort_keys=True).encode())
    out = {"provenance": _put(registry, subject, DSSE, envelope, DSSE, {PREDICATE_ANNOTATION: SLSA_PROVENANCE},
                              "att", fallback)}
    if key is not None:
        signed = sign(key, simple_signing_payload(subject.repository, subject.digest))
        out["signature"] = _put(registry, subject, SIMPLE_SIGNING, signed.payload, SIMPLE_SIGNING,
                                {SIGNATURE_ANNOTATION: signed.signature}, "sig", fallback)
    return out


def attached(registry: Registry, subject: Subject, layer_type: str) -> Iterator[tuple[dict[str, Any], bytes]]:
    """Every (layer descriptor, layer bytes) of type ``layer_type`` attached to ``subject``: via the
    referrers API when the registry has it, else via cosign's tags."""
    listed = registry.referrers(subject.repo, subject.digest)
    if listed is not None:
        digests = [m["digest"] for m in listed if m.get("artifactType") == layer_type]
    else:
        suffix = "sig" if layer_type == SIMPLE_SIGNING else "att"
        digests = [subject.tag(suffix)]
    for reference in digests:
        found = registry.manifest(subject.repo, reference)
        for layer in (found or {}).get("layers", []):
            if layer.get("mediaType") == layer_type:
                yield layer, registry.get_blob(subject.repo, layer["digest"])
