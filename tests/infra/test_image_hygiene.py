"""Image hygiene of the cell's product images (datastore, exporter): what they contain and declare.

File checks read the image's whole filesystem (``docker export`` of a created, never started
container), so files unreadable to the image's user are seen too; config checks read the image
config. Nothing here needs a running database.
"""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass, field
from typing import Any

import docker
import pytest

from builder.oci.archive import stream
from builder.verify.pod import LABEL, CellInfo, VerifyContext

PRODUCT_IMAGES = ["datastore", "exporter"]
# A PEM private key block (header, base64 body, footer), not merely the header text that TLS libraries
# carry as a string constant.
PRIVATE_KEY = re.compile(rb"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----\r?\n"
                         rb"([A-Za-z0-9+/=:, -]*\r?\n)*[A-Za-z0-9+/=]{16,}\r?\n"
                         rb"([A-Za-z0-9+/=:, -]*\r?\n)*-----END ([A-Z0-9]+ )*PRIVATE KEY-----")
SSH_SERVERS = ("usr/sbin/sshd", "usr/sbin/dropbear", "etc/ssh/sshd_config")
SECRETISH_ENV = re.compile(r"PASS|PWD|SECRET|TOKEN|CREDENTIAL|PRIVATE|API_?KEY", re.IGNORECASE)
SCAN_LIMIT = 16 << 20          # private keys are small; skip content scans of bigger files


@dataclass
class ImageFiles:
    """What a scan of an image's filesystem found."""

    names: set[str] = field(default_factory=set, repr=False)
    private_keys: list[str] = field(default_factory=list)
    shadow: bytes | None = field(default=None, repr=False)   # None: the image has no /etc/shadow


def scan_image(client: docker.DockerClient, image: str, run_id: str) -> ImageFiles:
    container = client.containers.create(image, entrypoint=["/nonexistent"], labels={LABEL: run_id})
    found = ImageFiles()
    try:
        reader = stream(iter(container.export(chunk_size=1 << 20)))
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for member in tar:
                name = member.name.lstrip("./")
                found.names.add(name)
                if not member.isfile() or member.size > SCAN_LIMIT:
                    continue
                extracted = tar.extractfile(member)
                data = extracted.read() if extracted else b""
                if name == "etc/shadow":
                    found.shadow = data
                # Compiled objects are skipped: crypto libraries (libgnutls) embed published
                # self-test key pairs; a deployable private key is a file of its own.
                if not data.startswith(b"\x7fELF") and PRIVATE_KEY.search(data):
                    found.private_keys.append(name)
    finally:
        container.remove(force=True, v=True)
    return found


@pytest.fixture(scope="module", params=PRODUCT_IMAGES)
def role(request: pytest.FixtureRequest, gf_context: VerifyContext) -> str:
    role: str = request.param
    if not gf_context.images.get(role):
        pytest.skip(f"the context has no {role} image")
    return role


_scans: dict[str, ImageFiles] = {}


@pytest.fixture(scope="module")
def files(role: str, gf_context: VerifyContext, docker_client: docker.DockerClient, pod: Any) -> ImageFiles:
    image = gf_context.image(role)
    if image not in _scans:
        _scans[image] = scan_image(docker_client, image, pod.run_id)
    return _scans[image]


@pytest.fixture(scope="module")
def config(role: str, gf_context: VerifyContext, docker_client: docker.DockerClient) -> dict[str, Any]:
    attrs: dict[str, Any] = docker_client.images.get(gf_context.image(role)).attrs
    return dict(attrs["Config"])


# -- filesystem ----------------------------------------------------------------------------------------
def test_no_package_manager_state(files: ImageFiles) -> None:
    leftovers = sorted(n for n in files.names if
                       (n.startswith("var/lib/apt/lists/") and not n.endswith(("/", "lists/partial", "lists/lock")))
                       or re.fullmatch(r"var/cache/apt/[^/]+\.bin|var/cache/apt/archives/[^/]+\.deb", n)
                       or n in ("var/log/dpkg.log", "var/log/apt/history.log", "var/log/apt/term.log",
                                "var/log/apt/eipp.log.xz", "usr/sbin/policy-rc.d"))
    assert not leftovers, f"package-manager state left in the image: {leftovers[:10]}"


def test_no_ssh_server(files: ImageFiles) -> None:
    names = files.names
    found = [n for n in SSH_SERVERS if n in names]
    assert not found, f"an SSH server ships in the image: {found}"


def test_no_private_keys(files: ImageFiles) -> None:
    keys = files.private_keys
    assert not keys, f"private keys ship in the image: {keys}"


def test_no_account_has_a_password(files: ImageFiles) -> None:
    # Every Debian image has /etc/shadow (root's entry at least): a scan that never read it checked nothing.
    assert files.shadow is not None and b"root:" in files.shadow, "the scan did not read /etc/shadow"
    with_hash = [line.split(b":")[0].decode() for line in files.shadow.splitlines()
                 if line.count(b":") >= 2 and line.split(b":")[1][:1] not in (b"*", b"!", b"")]
    assert not with_hash, f"accounts with a password hash in /etc/shadow: {with_hash}"


# -- image config ----------------------------------------------------------------------------------------
def test_no_secret_defaults_in_env(config: dict[str, Any]) -> None:
    env = [e for e in config.get("Env") or [] if SECRETISH_ENV.search(e.partition("=")[0])]
    assert not env, f"password-like variables baked into the image: {[e.partition('=')[0] for e in env]}"


def test_runs_as_non_root_numeric_user(role: str, config: dict[str, Any], cell: CellInfo) -> None:
    user = str(config.get("User") or "")
    uid = user.partition(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"image user {user!r}: must be a numeric non-root uid"
    expected = cell.uid if role == "datastore" else (cell.exporter.uid if cell.exporter else None)
    if expected is not None and not _upstream(role, cell):
        assert int(uid) == expected


def test_labels(role: str, config: dict[str, Any], cell: CellInfo) -> None:
    labels: dict[str, str] = config.get("Labels") or {}
    if _upstream(role, cell):
        pytest.skip("an upstream image is reused unchanged")
    assert any(k.startswith("org.opencontainers.image.") for k in labels), f"no OCI labels: {sorted(labels)}"
    if role == "datastore":
        assert labels.get("io.guestforge.datastore") == cell.datastore
        assert labels.get("io.guestforge.version") == cell.version
    # Every image guestforge builds carries its node key (a sha256), so an image names its own build.
    assert re.fullmatch(r"[0-9a-f]{64}", labels.get("io.guestforge.key", "")), labels.get("io.guestforge.key")


def test_datastore_runtime_contract(gf_context: VerifyContext, docker_client: docker.DockerClient,
                                    cell: CellInfo) -> None:
    if cell.upstream:
        pytest.skip("an upstream image is reused unchanged")
    config = docker_client.images.get(gf_context.image("datastore")).attrs["Config"]
    assert config.get("Entrypoint") == ["docker-entrypoint.sh"]
    assert config.get("Cmd") == list(cell.start)
    assert cell.data_dir in (config.get("Volumes") or {})
    assert f"{cell.port}/tcp" in (config.get("ExposedPorts") or {})
    assert (config.get("Healthcheck") or {}).get("Test") == ["CMD", "health.sh", *cell.health]


def _upstream(role: str, cell: CellInfo) -> bool:
    """An upstream datastore image is reused unchanged: guestforge's labels and entrypoint are absent."""
    return role == "datastore" and cell.upstream
