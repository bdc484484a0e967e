"""Registries a test starts for itself: Debian's ``docker-registry`` (CNCF distribution) with its own
storage, optionally behind TLS with a CA made here and htpasswd (bcrypt) authentication.

Real components only: the registry binary the CI host installs, a certificate chain a client must
verify, a password file the registry checks.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER, PASSWORD = "publisher", "pw-" + "s3cret"


@dataclass(frozen=True)
class Started:
    host: str  # 127.0.0.1:PORT
    root: Path  # the registry's storage
    ca_file: Path | None
    docker_config: Path | None  # a DOCKER_CONFIG directory holding the credentials

    @property
    def scheme(self) -> str:
        return "https" if self.ca_file else "http"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca_and_cert(out: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 signed by it: (ca.crt, server.crt, server.key)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("guestforge test CA")).issuer_name(_name("guestforge test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "ca.crt", out / "server.crt", out / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def docker_config(out: Path, host: str, user: str = USER, password: str = PASSWORD) -> Path:
    """A DOCKER_CONFIG directory as `docker login HOST` leaves it."""
    out.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (out / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return out


@contextmanager
def registry(work: Path, tls: bool = False, auth: bool = False) -> Iterator[Started]:
    """A ``docker-registry`` on a free loopback port for the block's duration (killed after)."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    host = f"127.0.0.1:{port}"
    http: dict[str, object] = {"addr": host, "secret": "test-only"}
    ca = None
    if tls:
        ca, cert, key = make_ca_and_cert(work / "tls")
        http["tls"] = {"certificate": str(cert), "key": str(key)}
    config: dict[str, object] = {
        "version": 0.1, "log": {"level": "warn"}, "http": http,
        "storage": {"filesystem": {"rootdirectory": str(work / "storage")}, "delete": {"enabled": True}},
    }
    creds = None
    if auth:
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
        (work / "htpasswd").write_text(f"{USER}:{hashed}\n")
        config["auth"] = {"htpasswd": {"realm": "guestforge-test", "path": str(work / "htpasswd")}}
        creds = docker_config(work / "docker", host)
    (work / "config.yml").write_text(yaml.safe_dump(config))
    with (work / "registry.log").open("ab") as log:
        proc = subprocess.Popen(["docker-registry", "serve", str(work / "config.yml")], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
    try:
        url = f"{'https' if tls else 'http'}://{host}/v2/"
        for _ in range(100):
            try:
                requests.get(url, verify=str(ca) if ca else True, timeout=2)
                break
            except requests.ConnectionError:
                if proc.poll() is not None:
                    raise RuntimeError(f"docker-registry exited: {(work / 'registry.log').read_text()}") from None
                time.sleep(0.1)
        yield Started(host, work / "storage", ca, creds)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
