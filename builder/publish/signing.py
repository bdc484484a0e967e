"""Cosign-compatible signatures of manifest digests, made with a key the user supplies.

The signed payload is the "simple signing" JSON cosign writes (``critical.identity.docker-reference``
the repository, ``critical.image.docker-manifest-digest`` the digest, ``critical.type`` "cosign
container image signature"); the signature is ECDSA over its SHA-256, DER, base64. So ``cosign
verify --key cosign.pub``, and containers/image's ``sigstoreSigned`` policy (skopeo, podman), accept
it. Keys are PEM (PKCS#8 or SEC1; an ECDSA P-256 key as cosign makes, or any EC key), public keys
PEM SubjectPublicKeyInfo (``cosign.pub``). A DSSE envelope (for provenance) is signed the same way.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from builder.errors import GuestforgeError, UsageError

SIGNATURE_TYPE = "cosign container image signature"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PASSWORD_ENV = "GUESTFORGE_SIGN_KEY_PASSWORD"  # for an encrypted PEM key


class SignatureError(GuestforgeError):
    """A signature that does not verify, or a payload that does not name the artifact."""


@dataclass(frozen=True)
class Signed:
    payload: bytes
    signature: str  # base64 of the DER ECDSA signature


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    password = os.environ.get(PASSWORD_ENV)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password.encode() if password else None)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"--sign-key {path}: not a readable PEM private key ({exc}); an encrypted key's "
                         f"password goes in {PASSWORD_ENV}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UsageError(f"--sign-key {path}: an ECDSA key is needed (what `cosign generate-key-pair` makes), "
                         f"not {type(key).__name__}")
    return key


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise UsageError(f"--key {path}: not a readable PEM public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise UsageError(f"--key {path}: an ECDSA public key is needed, not {type(key).__name__}")
    return key


def simple_signing_payload(repository: str, digest: str) -> bytes:
    """What cosign signs for ``repository`` (``HOST/REPO``, no tag) at ``digest``."""
    claim = {"critical": {"identity": {"docker-reference": repository},
                          "image": {"docker-manifest-digest": digest}, "type": SIGNATURE_TYPE},
             "optional": None}
    return json.dumps(claim, separators=(",", ":")).encode()


def sign(key: ec.EllipticCurvePrivateKey, payload: bytes) -> Signed:
    return Signed(payload, base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode())


def verify_bytes(key: ec.EllipticCurvePublicKey, payload: bytes, signature: str) -> None:
    try:
        key.verify(base64.b64decode(signature), payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise SignatureError("signature does not verify with the given key") from None


def check_claim(payload: bytes, repository: str, digest: str) -> None:
    """The verified payload names this artifact: its repository and its digest."""
    critical = json.loads(payload).get("critical", {})
    if critical.get("type") != SIGNATURE_TYPE:
        raise SignatureError(f"payload type is {critical.get('type')!r}, not {SIGNATURE_TYPE!r}")
    if critical.get("image", {}).get("docker-manifest-digest") != digest:
        raise SignatureError(f"signature is for {critical.get('image')}, not {digest}")
    if critical.get("identity", {}).get("docker-reference") != repository:
        raise SignatureError(f"signature names {critical.get('identity')}, not {repository}")


# -- DSSE (the envelope in-toto attestations travel in) ---------------------------------------------
def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is signed, so the type cannot be swapped."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def dsse_envelope(key: ec.EllipticCurvePrivateKey | None, payload_type: str, payload: bytes) -> bytes:
    signatures = []
    if key is not None:
        signatures.append({"keyid": "", "sig": sign(key, pae(payload_type, payload)).signature})
    envelope = {"payloadType": payload_type, "payload": base64.b64encode(payload).decode(),
                "signatures": signatures}
    return json.dumps(envelope, separators=(",", ":")).encode()


def open_envelope(key: ec.EllipticCurvePublicKey, envelope: bytes) -> tuple[str, bytes]:
    """(payload type, payload) of an envelope one of whose signatures verifies with ``key``."""
    doc = json.loads(envelope)
    payload_type, payload = str(doc["payloadType"]), base64.b64decode(doc["payload"])
    for entry in doc.get("signatures", []):
        try:
            verify_bytes(key, pae(payload_type, payload), str(entry["sig"]))
            return payload_type, payload
        except SignatureError:
            continue
    raise SignatureError("no signature of the attestation envelope verifies with the given key")
