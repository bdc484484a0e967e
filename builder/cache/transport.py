"""HTTP to one registry, through the ``oras`` SDK's client: TLS, authentication, timeouts and retries.

``oras.provider.Registry`` brings the session, the repository URL model and the bearer-token flow
(``WWW-Authenticate: Bearer realm=...,scope=...`` answered at the realm with the user's credentials).
What it lacks for unattended publishing is added here, in one place: a timeout on every request
(the SDK sets none), retries with jittered exponential back-off on 5xx, 429 (honouring
``Retry-After``), connection resets and timeouts (the SDK retries only a 500, after 3**n seconds),
basic authentication when that is what the registry asks for, and errors that tell a 401/403 apart
from anything else: an authentication failure is never read as "not there".
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import oras.auth
import oras.provider
import requests
from requests.adapters import HTTPAdapter

from builder.cache.credentials import Credentials, config_path, credentials_for
from builder.errors import ToolError

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_NETWORK = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


@dataclass(frozen=True)
class RegistryOptions:
    """How to reach registries: trust, patience. The same for every registry of one run."""

    ca_file: Path | None = None  # trust these CAs instead of the system's
    insecure: bool = False  # allow plain HTTP and unverified TLS (otherwise only loopback may be plain HTTP)
    timeout: float = 30.0  # seconds to connect, and between two reads
    attempts: int = 5  # tries per request (transient failures only)
    backoff: float = 0.5  # first wait in seconds; doubles per try, jittered
    max_wait: float = 20.0


class RegistryError(ToolError):
    """The registry answered with an error, or could not be reached after every retry."""


class TransientError(RegistryError):
    """A failure worth retrying the whole operation for (a reset mid-upload, a 5xx, a 429)."""


class AuthError(RegistryError):
    """The registry refused: no credentials, wrong ones, or not allowed (401/403)."""


def is_loopback(host: str) -> bool:
    return host.startswith(("127.", "localhost", "[::1]"))


def wait_before(attempt: int, options: RegistryOptions, retry_after: str | None = None) -> float:
    """Seconds to wait before try ``attempt + 1``: ``Retry-After`` when given (capped), else jittered back-off."""
    if retry_after and retry_after.strip().isdigit():
        return min(float(retry_after), options.max_wait)
    return float(min(options.backoff * 2 ** attempt, options.max_wait) * random.uniform(0.5, 1.0))


class _TimeoutAdapter(HTTPAdapter):
    """Every request of the session gets a timeout, also the SDK's own (the token realm request has none)."""

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


class Transport(oras.provider.Registry):  # type: ignore[misc]
    """Requests to one ``HOST[:PORT]``, authenticated and retried. URLs are ``scheme://`` + oras's paths."""

    def __init__(self, host: str, options: RegistryOptions, credentials: Credentials | None = None,
                 lookup: bool = True):
        verify: bool | str = False if options.insecure else (str(options.ca_file) if options.ca_file else True)
        super().__init__(hostname=host, insecure=False, tls_verify=verify, auth_backend="token")
        self.host, self.options = host, options
        self.credentials = credentials if credentials is not None or not lookup else credentials_for(host)
        if self.credentials is not None:
            self.auth.set_basic_auth(self.credentials.username, self.credentials.secret)
        adapter = _TimeoutAdapter(options.timeout)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._basic = False  # the registry asked for basic auth: send it up front from then on
        self._scheme: str | None = None

    # -- where ------------------------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        """https, unless the host is loopback (or ``insecure`` was asked for) and does not speak TLS."""
        if self._scheme is None:
            self._scheme = self._probe_scheme()
            self.prefix = self.auth.prefix = self._scheme
        return self._scheme

    def _probe_scheme(self) -> str:
        plain_ok = self.options.insecure or is_loopback(self.host)
        last = ""
        for attempt in range(self.options.attempts):
            if attempt:
                time.sleep(wait_before(attempt - 1, self.options))
            try:
                self.session.get(f"https://{self.host}/v2/", verify=self._tls_verify)
                return "https"
            except requests.exceptions.SSLError as exc:
                if _not_tls(exc) and plain_ok:
                    return "http"  # the server speaks plain HTTP, which this host may
                if _not_tls(exc):
                    raise RegistryError(f"registry {self.host} speaks plain HTTP; pass --insecure to allow "
                                        "that") from None
                hint = "" if self.options.ca_file else "; pass --ca-file with the CA that signed it"
                raise RegistryError(f"registry {self.host}: TLS failed: {_reason(exc)}{hint}") from None
            except _NETWORK as exc:  # reset or timed out: maybe plain HTTP, maybe the network; try again
                last = _reason(exc)
                if plain_ok and self._speaks_http():
                    return "http"
        raise RegistryError(f"registry {self.host} does not answer: {last}")

    def _speaks_http(self) -> bool:
        try:
            response = self.session.get(f"http://{self.host}/v2/")
        except _NETWORK:
            return False
        return "Docker-Distribution-Api-Version" in response.headers or response.status_code in (200, 401)

    def url(self, path: str) -> str:
        """``path`` below ``/v2/`` on this registry."""
        return f"{self.scheme}://{self.host}/v2/{path}"

    # -- how ---------------------------------------------------------------------------------------
    def do_request(self, url: str, method: str = "GET", data: Any = None, headers: dict[str, str] | None = None,
                   json: Any = None, stream: bool = False) -> requests.Response:
        """The SDK's one door for requests, with retries. A streamed body (a file) is sent once: a
        failure mid-body raises TransientError and the caller restarts its whole operation."""
        if not url.startswith(("http://", "https://")):
            url = f"{self.scheme}://{url.split('://', 1)[-1]}"
        once = hasattr(data, "read")
        last, retry_after = "", None
        for attempt in range(1 if once else self.options.attempts):
            if attempt:
                time.sleep(wait_before(attempt - 1, self.options, retry_after))
                retry_after = None
            try:
                response = self._authenticated(method, url, data, dict(headers or {}), json, stream)
            except _NETWORK as exc:
                last = _reason(exc)
                continue
            if response.status_code not in RETRY_STATUS:
                return response
            retry_after = response.headers.get("Retry-After")
            last = f"HTTP {response.status_code} {response.reason}"
            response.close()
        raise TransientError(f"registry {self.host}: {method} {_path(url)} failed"
                             f"{'' if once else f' {self.options.attempts} times'}: {last}")

    def _send(self, method: str, url: str, data: Any, headers: Mapping[str, str], json: Any,
              stream: bool) -> requests.Response:
        response: requests.Response = self.session.request(
            method, url, data=data, json=json, headers=dict(headers), stream=stream, verify=self._tls_verify)
        return response

    def _authenticated(self, method: str, url: str, data: Any, headers: dict[str, str], json: Any,
                       stream: bool) -> requests.Response:
        if self._basic and self.credentials is not None:
            headers["Authorization"] = "Basic " + self.auth._basic_auth
        elif self.auth.token:
            headers.update(self.auth.get_auth_header())
        response = self._send(method, url, data, headers, json, stream)
        if response.status_code != 401 or hasattr(data, "read"):
            return self._refused(response, method, url)
        challenge = response.headers.get("WWW-Authenticate", "")
        if challenge.lower().startswith("basic") and self.credentials is not None:
            self._basic = True
            headers["Authorization"] = "Basic " + self.auth._basic_auth
        elif challenge.lower().startswith("bearer"):
            headers, changed = self.auth.authenticate_request(response, headers, refresh=True)
            if not changed:
                return self._refused(response, method, url)
        else:
            return self._refused(response, method, url)
        return self._refused(self._send(method, url, data, headers, json, stream), method, url)

    def _refused(self, response: requests.Response, method: str, url: str) -> requests.Response:
        if response.status_code not in (401, 403):
            return response
        where = f"registry {self.host}: {method} {_path(url)}"
        if response.status_code == 403:
            raise AuthError(f"{where}: denied (HTTP 403) to {self._who()}")
        if self.credentials is None:
            raise AuthError(f"{where}: authentication required; log in with `docker login {self.host}` "
                            f"(credentials are read from {config_path()})")
        raise AuthError(f"{where}: the registry refused the credentials of {self._who()} (HTTP 401)")

    def _who(self) -> str:
        if self.credentials is None:
            return "anonymous"
        return f"user {self.credentials.username!r} (from {config_path()})"

    def upload(self, url: str, body: IO[bytes], size: int) -> requests.Response:
        """PUT a file, streamed (the SDK reads a whole blob into memory)."""
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        return self.do_request(url, "PUT", data=body, headers=headers)


def _not_tls(exc: Exception) -> bool:
    """The TLS handshake got an answer that is not TLS (a plain-HTTP server)."""
    return any(marker in str(exc) for marker in ("WRONG_VERSION_NUMBER", "record layer failure",
                                                 "unknown protocol", "packet length too long"))


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Caused by ", "Reason: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return f"{type(exc).__name__}: {text[:200]}"

