"""Signatures, DSSE and provenance without a registry: formats as their specs define them."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from builder.errors import UsageError
from builder.publish.check import parse_ref
from builder.publish.provenance import Input, Source, parent_inputs, statement
from builder.publish.signing import (SignatureError, check_claim, dsse_envelope, load_private_key, open_envelope,
                                     pae, sign, simple_signing_payload, verify_bytes)

DIGEST = "sha256:" + "ab" * 32


def test_pae_matches_the_dsse_spec_example() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_simple_signing_round_trip_and_claims() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    payload = simple_signing_payload("h.io/dbaas/postgresql", DIGEST)
    signed = sign(key, payload)
    verify_bytes(key.public_key(), payload, signed.signature)
    check_claim(payload, "h.io/dbaas/postgresql", DIGEST)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_bytes(ec.generate_private_key(ec.SECP256R1()).public_key(), payload, signed.signature)
    with pytest.raises(SignatureError, match="not sha256:cd"):
        check_claim(payload, "h.io/dbaas/postgresql", "sha256:" + "cd" * 32)
    with pytest.raises(SignatureError, match="names"):
        check_claim(payload, "h.io/dbaas/mariadb", DIGEST)


def test_dsse_envelope_opens_only_with_the_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    envelope = dsse_envelope(key, "application/vnd.in-toto+json", b'{"a": 1}')
    assert open_envelope(key.public_key(), envelope) == ("application/vnd.in-toto+json", b'{"a": 1}')
    with pytest.raises(SignatureError):
        open_envelope(ec.generate_private_key(ec.SECP256R1()).public_key(), envelope)
    swapped = json.loads(envelope) | {"payloadType": "text/plain"}  # the type is signed too
    with pytest.raises(SignatureError):
        open_envelope(key.public_key(), json.dumps(swapped).encode())


def test_a_key_that_is_not_ecdsa_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "rsa.pem"
    path.write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(UsageError, match="an ECDSA key is needed"):
        load_private_key(path)
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(UsageError, match="not a readable PEM private key"):
        load_private_key(tmp_path / "junk.pem")


def test_provenance_statement_names_the_digest_and_the_inputs() -> None:
    inputs = parent_inputs([("datastore:postgresql-15", "datastore", "sha256:" + "11" * 32, "d" * 64),
                            ("agent-tree", "agent-tree", "22" * 32, "a" * 64), ("pod:postgresql-15", "pod", None, "p")])
    assert inputs == [Input("agent-tree", "agent-tree", "sha256:" + "22" * 32, "a" * 64),
                      Input("datastore:postgresql-15", "datastore", "sha256:" + "11" * 32, "d" * 64)]
    doc = statement("h.io/dbaas/postgresql", DIGEST, node="publish-oci:postgresql-15", key="k" * 64,
                    values={"registry": "h.io"}, inputs=inputs, source=Source("abc123", False),
                    started=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc))
    assert doc["_type"] == "https://in-toto.io/Statement/v1"
    assert doc["predicateType"] == "https://slsa.dev/provenance/v1"
    assert doc["subject"] == [{"name": "h.io/dbaas/postgresql", "digest": {"sha256": "ab" * 32}}]
    deps = doc["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert deps[0] == {"name": "guestforge-source", "digest": {"gitCommit": "abc123"}, "annotations": {"clean": False}}
    assert [d["name"] for d in deps[1:]] == ["agent-tree", "datastore:postgresql-15"]
    assert deps[2]["annotations"] == {"kind": "datastore", "key": "d" * 64}   # the parent's key: what rebuilds it


@pytest.mark.parametrize("ref, parsed", [
    ("h.io/dbaas/postgresql:15", ("h.io", "dbaas/postgresql", "15")),
    ("127.0.0.1:5000/a/b@" + DIGEST, ("127.0.0.1:5000", "a/b", DIGEST)),
])
def test_published_references(ref: str, parsed: tuple[str, str, str]) -> None:
    assert parse_ref(ref) == parsed


@pytest.mark.parametrize("ref", ["h.io/dbaas/postgresql", "postgresql:15", "h.io/a/b@sha256:short"])
def test_bad_published_reference_is_a_usage_error(ref: str) -> None:
    with pytest.raises(UsageError, match="--published: not a reference"):
        parse_ref(ref)
