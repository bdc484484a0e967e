"""Pure validators for the text values a matrix may carry.

Matrix values end up in Containerfiles, shell scripts, DIB environments and
argument lists, so every one is a plain token: no shell metacharacters, no
whitespace, no template syntax. Each validator returns the value or raises
PydanticCustomError with the message the user will read.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

_PATTERNS: dict[str, tuple[re.Pattern[str], str]] = {
    # Debian package names (policy 5.6.1), optionally pinned with =VERSION.
    "package": (re.compile(r"[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?"), "not a valid package name"),
    # PyPI distribution names (PEP 508 name part).
    "pypi": (re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?"), "not a valid Python package name"),
    # One argv element or simple value.
    "token": (re.compile(r"[A-Za-z0-9_@%+=:,./-]+"), "not a plain token (letters, digits and _@%+=:,./- only)"),
    "name": (re.compile(r"[a-z][a-z0-9_-]{0,62}"), "not a valid name (lower-case letters, digits, _ and -)"),
    "version": (re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,62}"), "not a valid version (letters, digits, . _ + -)"),
    "base": (re.compile(r"[a-z0-9][a-z0-9._-]*(:[a-z0-9][a-z0-9._-]*)?"), "not a valid base name (e.g. debian:bookworm)"),
    "path": (re.compile(r"/([A-Za-z0-9_.@+-]+/?)*"), "not an absolute path of plain characters"),
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


def check(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid ``kind`` token, else raise a user-facing error."""
    pattern, message = _PATTERNS[kind]
    if pattern.fullmatch(value):
        return value
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
Name = Annotated[str, _validator("name")]
VersionKey = Annotated[str, _validator("version")]
BaseName = Annotated[str, _validator("base")]
AbsPath = Annotated[str, _validator("path")]
Url = Annotated[str, _validator("url")]
Quantity = Annotated[str, _validator("quantity")]
ImageRef = Annotated[str, _validator("image")]
