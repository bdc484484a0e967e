"""The error hierarchy. ``str(err)`` is the message; the CLI adds the exit code."""

from __future__ import annotations

from dataclasses import dataclass


class GuestforgeError(Exception):
    """Base of every error guestforge raises on purpose."""

    exit_code = 1


class UsageError(GuestforgeError):
    """The user asked for something that cannot be (bad selector, bad flag combination)."""

    exit_code = 2


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input file, located to file, line and field path."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        line = f"{self.line}:" if self.line else ""
        return f"{self.file}:{line} {where}{self.message}"


class InputError(GuestforgeError):
    """An input file is invalid; carries every problem found, one per line."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class ToolError(GuestforgeError):
    """An external command failed or is missing."""


class BuildError(GuestforgeError):
    """A build or verification step failed; the log file says why."""

    def __init__(self, message: str, log: str | None = None):
        self.log = log
        super().__init__(f"{message} (log: {log})" if log else message)


class RunFailed(GuestforgeError):
    """Some nodes of a build or verify run failed; the others finished. Exit code 1."""
