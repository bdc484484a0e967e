"""Registry credentials from the Docker client's config, the way `docker login` left them.

Read once per host: ``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``), then for the
host a ``credHelpers`` entry, inline ``auths`` (``auth`` = base64 ``user:secret``, or ``username`` and
``password``), then the ``credsStore``. Helpers (``docker-credential-NAME get``) run through the
subprocess door. No credentials is not an error: anonymous access may be enough.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path

from builder.errors import ToolError, UsageError
from builder.run import run


@dataclass(frozen=True)
class Credentials:
    username: str
    secret: str  # a password, or an identity token when username is "<token>"

    def __repr__(self) -> str:  # never print a secret in a log or a traceback
        return f"Credentials(username={self.username!r}, secret=***)"


def config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _host_key(entry: str) -> str:
    """``https://h:5000/v2/`` -> ``h:5000``: config keys may carry a scheme and a path."""
    for scheme in ("https://", "http://"):
        entry = entry.removeprefix(scheme)
    return entry.split("/", 1)[0]


def _same_hosts(host: str) -> set[str]:
    names = {host}
    if host.startswith("localhost"):
        names.add(host.replace("localhost", "127.0.0.1", 1))
    elif host.startswith("127.0.0.1"):
        names.add(host.replace("127.0.0.1", "localhost", 1))
    return names


def _helper(name: str, host: str) -> Credentials | None:
    proc = run([f"docker-credential-{name}", "get"], input=host.encode(), capture=True, check=False, timeout=60)
    if proc.returncode != 0:
        text = (proc.stdout + proc.stderr).decode(errors="replace").strip()
        if "credentials not found" in text.lower():
            return None
        raise ToolError(f"credential helper docker-credential-{name} failed for {host}: {text[:200]}")
    payload = json.loads(proc.stdout)
    return Credentials(str(payload["Username"]), str(payload["Secret"]))


def _inline(path: Path, host: str, entry: object) -> Credentials | None:
    if not isinstance(entry, dict):
        raise UsageError(f"{path}: auths.{host}: not a mapping")
    if entry.get("identitytoken"):
        return Credentials("<token>", str(entry["identitytoken"]))
    if entry.get("auth"):
        try:
            user, sep, secret = base64.b64decode(str(entry["auth"]), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise UsageError(f"{path}: auths.{host}.auth: not base64 of USER:PASSWORD")
        return Credentials(user, secret)
    if entry.get("username") and entry.get("password"):
        return Credentials(str(entry["username"]), str(entry["password"]))
    return None


def credentials_for(host: str, path: Path | None = None) -> Credentials | None:
    """The credentials the Docker client would send to ``host`` (``HOST[:PORT]``), or None."""
    path = path or config_path()
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable Docker config: {exc}") from None
    if not isinstance(config, dict):
        raise UsageError(f"{path}: not a Docker config (a JSON object)")
    names = _same_hosts(host)
    for key, helper in (config.get("credHelpers") or {}).items():
        if _host_key(key) in names:
            return _helper(str(helper), host)
    for key, entry in (config.get("auths") or {}).items():
        if _host_key(key) in names:
            found = _inline(path, key, entry)
            if found is not None:
                return found
    if config.get("credsStore"):
        return _helper(str(config["credsStore"]), host)
    return None
