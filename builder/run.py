"""The one door for subprocesses: argument lists only, a clean environment, output to a log.

Every external command guestforge runs goes through ``run``. A failure raises
ToolError naming the command (``shlex.join``) and the log to read; a missing
program is reported as such, with the setup command that installs it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from builder.errors import ToolError

# Variables passed through from the caller; everything else is dropped so that
# output never depends on the caller's shell (a hidden input).
_PASSTHROUGH = ("PATH", "HOME", "TMPDIR", "DOCKER_HOST", "http_proxy", "https_proxy", "no_proxy",
                "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: os.environ[k] for k in _PASSTHROUGH if k in os.environ}
    env.update({"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
    env.update(extra or {})
    return env


def run(
    argv: Sequence[str],
    *,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    capture: bool = False,
    timeout: float | None = None,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv``; stream output to ``log`` (appended) unless ``capture``; raise ToolError on failure."""
    argv = [str(a) for a in argv]
    cmd = shlex.join(argv)
    out_file = None
    if log is not None and not capture:
        log.parent.mkdir(parents=True, exist_ok=True)
        out_file = log.open("ab")
        out_file.write(f"\n$ {cmd}\n".encode())
        out_file.flush()
    started = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL if input is None else None,
            input=input,
            stdout=subprocess.PIPE if capture else (out_file or subprocess.DEVNULL),
            stderr=subprocess.PIPE if capture else (subprocess.STDOUT if out_file else subprocess.DEVNULL),
            env=clean_env(env),
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise ToolError(f"{argv[0]}: command not found (run ci/setup-host to install what guestforge needs)") from None
    except subprocess.TimeoutExpired:
        raise ToolError(f"timed out after {timeout:.0f}s: {cmd}" + (f" (log: {log})" if log else "")) from None
    finally:
        if out_file is not None:
            out_file.write(f"# exit after {time.monotonic() - started:.1f}s\n".encode())
            out_file.close()
    if check and proc.returncode != 0:
        detail = ""
        if capture and proc.stderr:
            detail = ": " + proc.stderr.decode(errors="replace").strip().splitlines()[-1][:300]
        where = f" (log: {log})" if log else ""
        raise ToolError(f"command failed with exit {proc.returncode}: {cmd}{detail}{where}")
    return proc


def output(argv: Sequence[str], **kwargs: object) -> str:
    """Run ``argv`` and return its stdout as text."""
    return run(argv, capture=True, **kwargs).stdout.decode().strip()  # type: ignore[arg-type]


@contextmanager
def daemon(argv: Sequence[str], pidfile: Path, log: Path, timeout: float = 120) -> Iterator[None]:
    """Run ``argv``, a program that daemonizes and writes ``pidfile``; while the block runs it runs. Then
    SIGTERM, and SIGKILL after ten seconds."""
    run(argv, log=log, timeout=timeout)
    try:
        yield
    finally:
        if pidfile.exists():
            pid = int(pidfile.read_text().strip())
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.1)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
