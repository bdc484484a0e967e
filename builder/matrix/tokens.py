"""Pure validators for the text values a matrix may carry.

Matrix values end up in Containerfiles, shell scripts, DIB environments and
argument lists, so every one is a plain token: no shell metacharacters, no
whitespace, no template syntax. Each validator returns the value or raises
PydanticCustomError with the message the user will read.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

_PATTERNS: dict[str, tuple[re.Pattern[str], str]] = {
    # Debian package names (policy 5.6.1), optionally pinned with =VERSION.
    "package": (re.compile(r"[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?"), "not a valid package name"),
    # PyPI distribution names (PEP 508 name part).
    "pypi": (re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?"), "not a valid Python package name"),
    # One argv element meant for the program itself (start, health, command): may be an option.
    "arg": (re.compile(r"[A-Za-z0-9_@%+=:,./-]+"), "not a plain token (letters, digits and _@%+=:,./- only)"),
    # A simple value that may reach a command line as a positional: never an option.
    "token": (re.compile(r"[A-Za-z0-9_@%+=:,./][A-Za-z0-9_@%+=:,./-]*"),
              "not a plain token (letters, digits and _@%+=:,./- only, not starting with -)"),
    # A program found on PATH or in the agent's venv: a file name, no directory.
    "program": (re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,62}"), "not a program name (a file name, no '/')"),
    # Datastore and exporter names: one image repository path component (OCI distribution grammar).
    "name": (re.compile(r"(?=[a-z])[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"),
             "not a valid name (lower-case letters and digits, joined by single . or _ or by -)"),
    "user": (re.compile(r"[a-z_][a-z0-9_-]{0,31}"),
             "not a valid user name (lower-case letters, digits, _ and -, at most 32 characters)"),
    # Version keys end up in image tags (VERSION-aio-KEY) and Kubernetes names.
    "version": (re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,38}[A-Za-z0-9])?"),
                "not a valid version (at most 40 letters, digits and . _ -, starting and ending with a letter or "
                "digit; it becomes an image tag and a Kubernetes label)"),
    "base": (re.compile(r"[a-z0-9][a-z0-9._-]*(:[a-z0-9][a-z0-9._-]*)?"), "not a valid base name (e.g. debian:bookworm)"),
    "path": (re.compile(r"/[A-Za-z0-9_.@+/-]*"), "not an absolute path of plain characters"),
    # A Kubernetes resource quantity (cpu "250m", "1"; memory "256Mi", "1G").
    "quantity": (re.compile(r"[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?"), "not a resource quantity (250m, 1, 256Mi)"),
    "url": (re.compile(r"(https?|file)://[A-Za-z0-9._~%+:/@-]+"), "not a plain http(s) URL"),
    "image": (
        re.compile(
            r"(?P<name>[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*)"
            r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
            r"@sha256:[0-9a-f]{64}"
        ),
        "not an image reference pinned by digest (REF@sha256:<64 hex digits>)",
    ),
}

_TEMPLATE_MARKS = ("{{", "{%", "{#", "${", "$(", "`")


# Directories a path field must never be: handing one to a service user or a VOLUME breaks the image.
SYSTEM_DIRS = frozenset({
    "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt", "/opt",
    "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/usr/bin", "/usr/lib",
    "/usr/lib64", "/usr/libexec", "/usr/local", "/usr/local/bin", "/usr/local/lib", "/usr/sbin", "/usr/share",
    "/usr/include", "/usr/src", "/var/lib", "/var/log", "/var/run", "/var/tmp", "/var/cache", "/var/spool",
    "/var/mail", "/var/backups", "/var/local", "/var/opt", "/etc/apt", "/etc/ssl", "/etc/systemd", "/etc/sudoers.d",
})
# Kernel and device trees: nothing of ours lives there.
_VIRTUAL = ("/proc/", "/sys/", "/dev/", "/run/systemd/")
RESERVED_USERS = frozenset({"root", "nobody", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news",
                            "uucp", "proxy", "www-data", "backup", "list", "irc", "_apt", "sshd", "messagebus",
                            "systemd-network", "systemd-resolve", "systemd-timesync"})


def path_problem(value: str) -> str | None:
    """Why an absolute-path value is unsafe, or None: '.' / '..' / '//' segments, '/', system directories."""
    trimmed = value.rstrip("/") or "/"
    segments = value.strip("/").split("/")
    if trimmed == "/":
        return "must not be the root directory"
    if any(seg in (".", "..", "") for seg in segments):
        return "must be normalised (no '.', '..' or empty segments)"
    if trimmed in SYSTEM_DIRS:
        return "must not be a system directory"
    if trimmed.startswith(_VIRTUAL):
        return "must not be inside a kernel or device tree"
    return None


def url_problem(value: str) -> str | None:
    """Why a mirror or index URL is unusable, or None. Local (file:) URLs and credentials are opt-ins, checked
    where the opt-in lives; here only the shape."""
    parts = urlsplit(value)
    if parts.scheme == "file":
        return None if parts.netloc == "" and parts.path.startswith("/") else "a file URL must be file:///PATH"
    if not parts.hostname:
        return "has no host name"
    if parts.query or parts.fragment:
        return "must not carry a query or fragment"
    try:
        parts.port  # noqa: B018 (raises on a port that is no number)
    except ValueError:
        return "has an invalid port"
    return None


def check(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid ``kind`` token, else raise a user-facing error."""
    pattern, message = _PATTERNS[kind]
    if pattern.fullmatch(value):
        problem = path_problem(value) if kind == "path" else url_problem(value) if kind == "url" else (
            "is reserved for the system" if kind == "user" and value in RESERVED_USERS else None)
        if problem is None:
            return value
        raise PydanticCustomError("token", "{message}", {"message": f"{problem}: {value!r}"})
    if kind == "image" and "@sha256:" not in value:
        message = "image reference has no digest; pin it as REF@sha256:<64 hex digits>"
    elif any(mark in value for mark in _TEMPLATE_MARKS):
        message += " (template or shell syntax is not allowed)"
    raise PydanticCustomError("token", "{message}", {"message": f"{message}: {value!r}"})


def _validator(kind: str) -> AfterValidator:
    return AfterValidator(lambda value: check(kind, value))


PackageName = Annotated[str, _validator("package")]
PyPIName = Annotated[str, _validator("pypi")]
Token = Annotated[str, _validator("token")]
Arg = Annotated[str, _validator("arg")]
Program = Annotated[str, _validator("program")]
User = Annotated[str, _validator("user")]
Name = Annotated[str, _validator("name")]
VersionKey = Annotated[str, _validator("version")]
BaseName = Annotated[str, _validator("base")]
AbsPath = Annotated[str, _validator("path")]
Url = Annotated[str, _validator("url")]
Quantity = Annotated[str, _validator("quantity")]
ImageRef = Annotated[str, _validator("image")]
