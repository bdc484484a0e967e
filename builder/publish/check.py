"""``guestforge verify --published REF --key PUB``: a published artifact, checked end to end from the
registry alone: the reference resolves, the registry serves the whole artifact, a signature made
with the key names this repository and digest, and a provenance statement signed with the same key
has this digest as its subject. Written against the cosign and DSSE formats, not against our signer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from builder.cache.oci_client import Registry, RegistryOptions
from builder.errors import UsageError
from builder.publish.attach import DSSE, Subject, attached, subject_of
from builder.publish.provenance import IN_TOTO_PAYLOAD, SLSA_PROVENANCE, STATEMENT
from builder.publish.signing import (SIGNATURE_ANNOTATION, SIMPLE_SIGNING, SignatureError, check_claim,
                                     load_public_key, open_envelope, verify_bytes)

_REF = re.compile(r"^(?P<host>[^/]+)/(?P<repo>[a-z0-9._/-]+?)(:(?P<tag>[A-Za-z0-9_.-]+))?"
                  r"(@(?P<digest>sha256:[0-9a-f]{64}))?$")


@dataclass
class Checked:
    """What was checked of one published reference; ``problems`` empty means it passed."""

    ref: str
    digest: str = ""
    passed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse_ref(ref: str) -> tuple[str, str, str]:
    """``HOST/REPO:TAG`` or ``HOST/REPO@sha256:...`` -> (host, repo, tag or digest)."""
    match = _REF.match(ref)
    if match is None or not (match["tag"] or match["digest"]):
        raise UsageError(f"--published: not a reference HOST/REPO:TAG or HOST/REPO@sha256:...: {ref!r}")
    return match["host"], match["repo"], match["digest"] or match["tag"]


def verify_published(ref: str, public_key: Path, options: RegistryOptions | None = None) -> Checked:
    host, repo, reference = parse_ref(ref)
    key = load_public_key(public_key)
    registry = Registry(host, options)
    out = Checked(ref)
    digest = registry.manifest_digest(repo, reference)
    if digest is None:
        out.problems.append(f"{ref} is not in the registry")
        return out
    out.digest = digest
    missing = registry.missing(repo, digest)
    (out.problems if missing else out.passed).append(
        f"missing from the registry: {', '.join(missing)}" if missing else "the registry serves every blob")
    subject = subject_of(registry, repo, digest)
    _signature(registry, subject, key, out)
    _provenance(registry, subject, key, out)
    return out


def _signature(registry: Registry, subject: Subject, key: ec.EllipticCurvePublicKey, out: Checked) -> None:
    reasons = []
    for layer, payload in attached(registry, subject, SIMPLE_SIGNING):
        try:
            signature = str(layer.get("annotations", {}).get(SIGNATURE_ANNOTATION, ""))
            verify_bytes(key, payload, signature)
            check_claim(payload, subject.repository, out.digest)
        except SignatureError as exc:
            reasons.append(str(exc))
            continue
        out.passed.append("signature verifies with the key and names this repository and digest")
        return
    out.problems.append("no valid signature" + (f" ({'; '.join(reasons)})" if reasons else " attached"))


def _provenance(registry: Registry, subject: Subject, key: ec.EllipticCurvePublicKey, out: Checked) -> None:
    reasons = []
    for _, envelope in attached(registry, subject, DSSE):
        try:
            payload_type, payload = open_envelope(key, envelope)
        except SignatureError as exc:
            reasons.append(str(exc))
            continue
        statement = json.loads(payload)
        digests = [s.get("digest", {}) for s in statement.get("subject", [])]
        algorithm, _, hexdigest = out.digest.partition(":")
        if payload_type != IN_TOTO_PAYLOAD or statement.get("_type") != STATEMENT:
            reasons.append(f"not an in-toto statement ({payload_type})")
        elif statement.get("predicateType") != SLSA_PROVENANCE:
            reasons.append(f"predicate is {statement.get('predicateType')}, not SLSA provenance v1")
        elif {algorithm: hexdigest} not in digests:
            reasons.append(f"provenance subject is {digests}, not {out.digest}")
        else:
            out.passed.append("SLSA v1 provenance signed with the key, subject = digest")
            return
    out.problems.append("no valid provenance" + (f" ({'; '.join(reasons)})" if reasons else " attached"))
