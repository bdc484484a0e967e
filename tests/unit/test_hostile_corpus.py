"""The hostile corpus (tests/unit/hostile/CLASS/*.yaml, expectations in EXPECTED): every file is rejected
with its problem at the expected line, in bounded time and memory, and through the CLI with exit 2 and
one located line per problem, never a traceback."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from builder.cli.main import main

HOSTILE = Path(__file__).parent / "hostile"
EXPECTED = {
    file: (int(line), fragment)
    for file, line, fragment in (row.split("\t") for row in (HOSTILE / "EXPECTED").read_text().splitlines()
                                 if row and not row.startswith("#"))
}
LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>[1-9][0-9]*): \S")


def test_every_file_has_an_expectation() -> None:
    files = {str(p.relative_to(HOSTILE)) for p in HOSTILE.rglob("*.yaml")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rejected_at_its_line(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Through the CLI entry point: exit 2, nothing on stdout, every stderr line FILE:LINE: ..., the expected
    problem at its line; under 2 s of CPU, and (bounds class, traced: it slows everything down) under 64 MiB."""
    line, fragment = EXPECTED[name]
    path = HOSTILE / name
    traced = name.startswith("bounds/")
    if traced:
        tracemalloc.start()
    start = time.process_time()  # CPU, not wall: a busy neighbour on a shared machine must not fail this
    code = main(["validate", str(path)])
    elapsed = time.process_time() - start
    peak = tracemalloc.get_traced_memory()[1] if traced else 0
    tracemalloc.stop()
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "", captured.err
    lines = captured.err.splitlines()
    assert lines and all((m := LOCATED.match(text)) and m["file"] == str(path) for text in lines), captured.err
    assert any(text.startswith(f"{path}:{line}: ") and fragment in text for text in lines), captured.err
    assert elapsed < 2.0 and peak < 64 * 2**20, (elapsed, peak)


def test_cli_process_over_the_corpus() -> None:
    """One real process over every file: exit 2 each time, no traceback, peak RSS under 256 MiB."""
    code = ("import resource, sys\nfrom builder.cli.main import main\n"
            "codes = {main(['validate', f]) for f in sys.argv[1:]}\n"
            "print(*sorted(codes), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    proc = subprocess.run([sys.executable, "-c", code, *(str(HOSTILE / n) for n in sorted(EXPECTED))],
                          capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in proc.stderr and proc.returncode == 0, proc.stderr[-2000:]
    exit_code, rss_kib = (int(x) for x in proc.stdout.split())
    assert exit_code == 2
    assert rss_kib < 256 * 1024
