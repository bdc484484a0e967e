"""Signatures and provenance on published artifacts, checked by an implementation other than ours:
securesystemslib verifies the cosign signature and the DSSE envelope (its own PAE), found where the
cosign spec puts them. (skopeo's ``sigstoreSigned`` policy would be the natural second verifier, but
Debian 12 builds skopeo with sigstore disabled: "Debian-local change: sigstore disabled".) Then
``guestforge verify --published`` on a signed disk artifact, with the right key and a wrong one, and
the artifact pulled back as files by the oras SDK's own ``pull`` (what ``oras pull`` does)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import oras.client
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError
from securesystemslib.signer import Signature, SSlibKey

from builder.cache.oci_client import MANIFEST, Registry
from builder.cli.main import main
from builder.graph.step import RunContext
from builder.publish.attach import attach, subject_of
from builder.publish.actions import PublishDiskAction
from builder.publish.signing import load_private_key
from tests.integration.registries import Started, registry
from tests.integration.test_registry_faults import disk_step

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    with registry(tmp_path_factory.mktemp("signing")) as started:
        yield started


def key_pair(out: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = out / f"{name}.key", out / f"{name}.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def tiny_image(client: Registry, repo: str, tag: str) -> str:
    """A one-file OCI image pushed by digest and tag; its manifest digest."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]}
                         }).encode()
    layer_digest, layer_size = client.put_blob(repo, layer)
    config_digest, config_size = client.put_blob(repo, config)
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                           "size": config_size},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest,
                            "size": layer_size}]}
    digest = client.put_manifest(repo, client.digest_of(manifest), manifest)
    client.put_manifest(repo, tag, manifest)
    return digest


def cosign_signature(client: Registry, repo: str, digest: str) -> tuple[bytes, str]:
    """(payload, base64 signature) found where cosign looks: tag ``sha256-<hex>.sig``, the simplesigning layer."""
    manifest = client.manifest(repo, digest.replace(":", "-") + ".sig")
    assert manifest is not None
    layer = next(x for x in manifest["layers"] if x["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json")
    return client.get_blob(repo, layer["digest"]), layer["annotations"]["dev.cosignproject.cosign/signature"]


KEYID = "guestforge-test"  # DSSE and cosign leave the keyid empty; securesystemslib matches keys by it


def sslib_key(public: Path) -> SSlibKey:
    key = serialization.load_pem_public_key(public.read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return SSlibKey.from_crypto(key, keyid=KEYID)


def test_signature_and_attestation_verify_with_securesystemslib(plain: Started, tmp_path: Path) -> None:
    """securesystemslib (the in-toto project's crypto and DSSE) checks what our signer made, read the way
    the cosign spec lays it out; skopeo reads the signature artifact as a plain OCI manifest."""
    client = Registry(plain.host)
    digest = tiny_image(client, "dbaas/tiny", "1")
    private, public = key_pair(tmp_path, "signer")
    _, other = key_pair(tmp_path, "other")
    provenance = {"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "x", "digest": {"sha256": "0"}}]}
    attached = attach(client, subject_of(client, "dbaas/tiny", digest), provenance, load_private_key(private))
    payload, signature = cosign_signature(client, "dbaas/tiny", digest)
    claim = json.loads(payload)["critical"]
    assert claim == {"identity": {"docker-reference": f"{plain.host}/dbaas/tiny"},
                     "image": {"docker-manifest-digest": digest}, "type": "cosign container image signature"}
    sslib_key(public).verify_signature(Signature(KEYID, base64.b64decode(signature).hex()), payload)
    with pytest.raises(UnverifiedSignatureError):
        sslib_key(other).verify_signature(Signature(KEYID, base64.b64decode(signature).hex()), payload)
    att = client.manifest("dbaas/tiny", digest.replace(":", "-") + ".att")
    assert att is not None and client.digest_of(att) == attached["provenance"] and att["subject"]["digest"] == digest
    doc = json.loads(client.get_blob("dbaas/tiny", att["layers"][0]["digest"]))
    for entry in doc["signatures"]:
        entry["keyid"] = KEYID  # a hint outside what is signed
    envelope = Envelope.from_dict(doc)
    assert envelope.payload_type == "application/vnd.in-toto+json"
    envelope.verify([sslib_key(public)], 1)
    with pytest.raises(VerificationError):
        envelope.verify([sslib_key(other)], 1)
    assert json.loads(envelope.pae().split(b" ", 4)[4]) == provenance
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          f"docker://{plain.host}/dbaas/tiny:{digest.replace(':', '-')}.sig"],
                         check=True, capture_output=True, timeout=60).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == attached["signature"]


def test_verify_published_disk_artifact(plain: Started, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    private, public = key_pair(tmp_path, "signer")
    _, other = key_pair(tmp_path, "other")
    action = PublishDiskAction(RunContext(tmp_path / "build", sign_key=private))
    published = action.run(disk_step(tmp_path / "build", plain.host, 1))
    assert published.signature and published.provenance
    ref = f"{plain.host}/dbaas/postgresql:15-vm"
    assert main(["verify", "--published", ref, "--key", str(public)]) == 0
    out = capsys.readouterr().out
    assert published.digest in out and "FAIL" not in out and out.count("  ok ") == 3
    assert main(["verify", "--published", ref, "--key", str(other)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  no valid signature (signature does not verify with the given key)" in out
    assert "FAIL  no valid provenance" in out
    pulled = oras.client.OrasClient(hostname=plain.host, insecure=True).pull(target=ref, outdir=str(tmp_path / "out"))
    assert sorted(Path(p).name for p in pulled) == ["postgresql-15.qcow2", "postgresql-15.vm.manifest.json"]
    assert (tmp_path / "out" / "postgresql-15.qcow2").read_bytes() == \
        (tmp_path / "build" / "artifacts" / "postgresql-15" / "postgresql-15.qcow2").read_bytes()
    client = Registry(plain.host)
    envelope = client.get_blob("dbaas/postgresql", client.manifest(
        "dbaas/postgresql", published.provenance)["layers"][0]["digest"])  # type: ignore[index]
    statement = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
    assert statement["subject"][0]["digest"]["sha256"] == published.digest.split(":")[1]
    definition = statement["predicate"]["buildDefinition"]
    assert definition["internalParameters"]["key"] == disk_step(tmp_path / "b2", plain.host, 1).key
    assert definition["externalParameters"]["values"]["datastore"] == "postgresql"
    assert definition["resolvedDependencies"][0]["name"] == "guestforge-source"
