"""Registry HTTP without a registry: authentication (basic, bearer token), retries, and errors that tell
401/403 apart from "not there". A scripted server on loopback answers; every request is recorded."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from builder.cache.credentials import Credentials, credentials_for
from builder.cache.oci_client import AuthError, Registry, RegistryError, RegistryOptions
from builder.cache.transport import TransientError, wait_before
from builder.errors import UsageError

DIGEST = "sha256:" + "ab" * 32
FAST = RegistryOptions(attempts=4, backoff=0.01, max_wait=0.05, timeout=5)


@dataclass
class Seen:
    method: str
    path: str
    auth: str


@dataclass
class Script:
    """``answer(method, path, auth) -> (status, headers, body)``; every request is appended to ``seen``."""

    answer: Callable[[str, str, str], tuple[int, dict[str, str], bytes]]
    seen: list[Seen] = field(default_factory=list)


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            auth = self.headers.get("Authorization", "")
            script.seen.append(Seen(self.command, self.path, auth))
            status, headers, body = script.answer(self.command, self.path, auth)
            if status == 0:  # a reset: no answer at all
                self.close_connection = True
                return
            self.send_response(status)
            for k, v in {"Docker-Distribution-Api-Version": "registry/2.0", **headers}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_PUT = do_POST = _any

        def log_message(self, *args: object) -> None:
            return None

    return Handler


@pytest.fixture
def serve() -> Iterator[Callable[[Script], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(script: Script) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return f"127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


FOUND = (200, {"Docker-Content-Digest": DIGEST}, b"")


def test_bearer_token_flow_asks_the_realm_with_the_users_credentials(serve: Callable[[Script], str]) -> None:
    host = ""

    def answer(method: str, path: str, auth: str) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/token"):
            assert "scope=repository%3Ap%2Fdb%3Apull" in path and "service=reg" in path
            return (200, {}, json.dumps({"token": "T1"}).encode()) if auth == basic("ann", "pw") else (401, {}, b"")
        if auth == "Bearer T1":
            return FOUND
        challenge = f'Bearer realm="http://{host}/token",service="reg",scope="repository:p/db:pull"'
        return 401, {"WWW-Authenticate": challenge}, b""

    script = Script(answer)
    host = serve(script)
    registry = Registry(host, FAST, Credentials("ann", "pw"))
    assert registry.manifest_digest("p/db", "15") == DIGEST
    assert registry.manifest_digest("p/db", "16") == DIGEST  # the token is reused: no second realm request
    assert [s.path.split("?")[0] for s in script.seen if s.path.startswith("/token")] == ["/token"]


def test_basic_auth_when_the_registry_asks_for_it(serve: Callable[[Script], str]) -> None:
    def answer(method: str, path: str, auth: str) -> tuple[int, dict[str, str], bytes]:
        if auth == basic("ann", "pw"):
            return FOUND
        return 401, {"WWW-Authenticate": 'Basic realm="Registry Realm"'}, b""

    script = Script(answer)
    registry = Registry(serve(script), FAST, Credentials("ann", "pw"))
    assert registry.manifest_digest("p/db", "15") == DIGEST
    assert registry.manifest_digest("p/db", "16") == DIGEST
    assert [s.auth for s in script.seen if "/manifests/" in s.path] == ["", basic("ann", "pw"), basic("ann", "pw")]


@pytest.mark.parametrize("status, creds, message", [
    (401, None, "authentication required; log in with `docker login"),
    (401, Credentials("ann", "wrong"), "refused the credentials of user 'ann'"),
    (403, Credentials("ann", "pw"), "denied (HTTP 403) to user 'ann'"),
])
def test_a_refusal_is_an_error_never_not_there(serve: Callable[[Script], str], status: int,
                                               creds: Credentials | None, message: str,
                                               monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no credentials on file for the None case
    registry = Registry(serve(Script(lambda m, p, a: (status, {"WWW-Authenticate": 'Basic realm="r"'}, b""))),
                        FAST, creds)
    with pytest.raises(AuthError, match=message.replace("(", r"\(").replace(")", r"\)")):
        registry.manifest_digest("p/db", "15")


def test_not_found_is_none(serve: Callable[[Script], str]) -> None:
    assert Registry(serve(Script(lambda m, p, a: (404, {}, b""))), FAST).manifest_digest("p/db", "15") is None


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_answers_are_retried(serve: Callable[[Script], str], status: int) -> None:
    def answer(method: str, path: str, auth: str) -> tuple[int, dict[str, str], bytes]:
        tries = len([s for s in script.seen if "/manifests/" in s.path])
        return (status, {"Retry-After": "0"}, b"") if "/manifests/" in path and tries < 3 else FOUND

    script = Script(answer)
    assert Registry(serve(script), FAST).manifest_digest("p/db", "15") == DIGEST
    assert len([s for s in script.seen if "/manifests/" in s.path]) == 3


def test_retries_are_bounded(serve: Callable[[Script], str]) -> None:
    script = Script(lambda m, p, a: (503, {}, b"") if "/manifests/" in p else (200, {}, b""))
    with pytest.raises(TransientError, match="failed 4 times: HTTP 503"):
        Registry(serve(script), FAST).manifest_digest("p/db", "15")
    assert len([s for s in script.seen if "/manifests/" in s.path]) == 4


def test_backoff_grows_and_honours_retry_after() -> None:
    options = RegistryOptions(backoff=1, max_wait=20)
    assert [wait_before(n, options) <= 2 ** n for n in range(4)] == [True] * 4
    assert wait_before(6, options) <= 20
    assert wait_before(0, options, "7") == 7 and wait_before(0, options, "99") == 20


def test_a_blob_upload_cut_mid_body_restarts_from_the_beginning(serve: Callable[[Script], str],
                                                                tmp_path: Path) -> None:
    puts: list[str] = []

    def answer(method: str, path: str, auth: str) -> tuple[int, dict[str, str], bytes]:
        if method == "HEAD" or path == "/v2/":
            return (404 if method == "HEAD" else 200), {}, b""
        if method == "POST":
            return 202, {"Location": f"/v2/p/db/blobs/uploads/u{len(puts)}"}, b""
        puts.append(path)
        return (0, {}, b"") if len(puts) == 1 else (201, {}, b"")

    blob = tmp_path / "disk.raw"
    blob.write_bytes(b"disk" * 1000)
    digest, size = Registry(serve(Script(answer)), FAST).put_blob("p/db", blob)
    assert size == 4000
    assert puts == [f"/v2/p/db/blobs/uploads/u0?digest={digest}", f"/v2/p/db/blobs/uploads/u1?digest={digest}"]


def test_a_client_error_is_reported_not_retried(serve: Callable[[Script], str]) -> None:
    script = Script(lambda m, p, a: (400, {}, b'{"errors": [{"code": "MANIFEST_INVALID"}]}'))
    with pytest.raises(RegistryError, match="HTTP 400 .*MANIFEST_INVALID"):
        Registry(serve(script), FAST).put_manifest("p/db", "15", {"schemaVersion": 2})
    assert len(script.seen) == 1  # one PUT (the failed TLS handshake alone said: plain HTTP)


def _config(tmp_path: Path, config: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def test_credentials_from_the_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = base64.b64encode(b"ann:s3:cret").decode()
    path = _config(tmp_path, {"auths": {"https://reg.example:5000/v1/": {"auth": auth},
                                        "other.example": {"username": "bob", "password": "pw"}}})
    assert credentials_for("reg.example:5000", path) == Credentials("ann", "s3:cret")
    assert credentials_for("other.example", path) == Credentials("bob", "pw")
    assert credentials_for("nobody.example", path) is None
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert credentials_for("localhost:5000") is None
    assert "s3:cret" not in repr(credentials_for("reg.example:5000"))


def test_credential_helpers_run_through_the_subprocess_door(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-fake"
    helper.write_text('#!/bin/sh\nread host\n[ "$host" = "reg.example" ] || { echo "credentials not found"; exit 1; }\n'
                      'echo \'{"ServerURL": "reg.example", "Username": "ci", "Secret": "tok"}\'\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    path = _config(tmp_path, {"credHelpers": {"reg.example": "fake"}, "credsStore": "fake"})
    assert credentials_for("reg.example", path) == Credentials("ci", "tok")
    assert credentials_for("elsewhere.example", path) is None  # the store has none: anonymous


def test_a_broken_docker_config_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="auths.h.example.auth: not base64 of USER:PASSWORD"):
        credentials_for("h.example", _config(tmp_path, {"auths": {"h.example": {"auth": "bm9jb2xvbg=="}}}))
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(UsageError, match="not a readable Docker config"):
        credentials_for("h.example", tmp_path / "config.json")
