"""Registry access for real: Debian's docker-registry behind TLS (a CA made here) with htpasswd auth.

What guestforge pushes is read back by an independent client (skopeo, with the same CA and
credentials); trust and credentials failures are errors that say what to do, never "not there".
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.cache.oci_client import TITLE, AuthError, Registry, RegistryError, RegistryOptions
from builder.cache.credentials import Credentials
from tests.integration.registries import PASSWORD, USER, Started, registry

pytestmark = pytest.mark.integration
ARTIFACT = "application/vnd.guestforge.test.v1+json"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    with registry(tmp_path_factory.mktemp("secure"), tls=True, auth=True) as started:
        yield started


@pytest.fixture
def logged_in(secure: Started, monkeypatch: pytest.MonkeyPatch) -> Started:
    monkeypatch.setenv("DOCKER_CONFIG", str(secure.docker_config))
    return secure


def skopeo(secure: Started, *args: str) -> bytes:
    cert_dir = secure.root.parent / "skopeo-certs"
    cert_dir.mkdir(exist_ok=True)
    assert secure.ca_file is not None
    (cert_dir / "ca.crt").write_bytes(secure.ca_file.read_bytes())
    argv = ["skopeo", *args[:1], "--cert-dir", str(cert_dir), "--creds", f"{USER}:{PASSWORD}", *args[1:]]
    return subprocess.run(argv, check=True, capture_output=True, timeout=120).stdout


def test_artifact_round_trip_checked_by_skopeo(logged_in: Started, tmp_path: Path) -> None:
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(os.urandom(3 << 20))
    client = Registry(logged_in.host, RegistryOptions(ca_file=logged_in.ca_file))
    assert client.http.scheme == "https" and client.http.credentials == Credentials(USER, PASSWORD)
    digest = client.put_artifact("dbaas/postgresql", ["15-vm-abc", "15-vm"], ARTIFACT, b'{"image": "x"}',
                                 [(disk, "application/octet-stream", {TITLE: disk.name})])
    assert client.manifest_digest("dbaas/postgresql", "15-vm") == digest
    raw = skopeo(logged_in, "inspect", "--raw", f"docker://{logged_in.host}/dbaas/postgresql:15-vm")
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    layer = json.loads(raw)["layers"][0]
    assert layer["digest"] == "sha256:" + hashlib.sha256(disk.read_bytes()).hexdigest()
    pulled = tmp_path / "pulled"
    client.get_blob("dbaas/postgresql", layer["digest"], pulled)
    assert pulled.read_bytes() == disk.read_bytes()


def test_an_untrusted_certificate_is_refused_unless_insecure(logged_in: Started) -> None:
    with pytest.raises(RegistryError, match="TLS failed: .*CERTIFICATE_VERIFY_FAILED.*pass --ca-file"):
        Registry(logged_in.host).manifest_digest("dbaas/postgresql", "15-vm")
    insecure = Registry(logged_in.host, RegistryOptions(insecure=True))
    assert insecure.http.scheme == "https"
    insecure.manifest_digest("dbaas/postgresql", "anything")  # no error: TLS unverified, credentials sent


def test_missing_or_wrong_credentials_are_errors_not_absence(secure: Started, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # logged in nowhere
    options = RegistryOptions(ca_file=secure.ca_file)
    with pytest.raises(AuthError, match=f"authentication required; log in with `docker login {secure.host}`"):
        Registry(secure.host, options).manifest_digest("dbaas/postgresql", "15-vm")
    with pytest.raises(AuthError, match="refused the credentials of user 'publisher'"):
        Registry(secure.host, options, Credentials(USER, "wrong")).manifest_digest("dbaas/postgresql", "15-vm")
