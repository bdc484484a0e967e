"""The loader's bounds: hostile bytes are refused at their line, in bounded time and memory."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from builder.errors import InputError
from builder.matrix.loader import parse_matrix

BOMB = b'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n' + b"".join(
    b"%c: &%c [%s]\n" % (98 + i, 98 + i, b",".join([b"*%c" % (97 + i)] * 10)) for i in range(7))

CASES = {
    "self alias": (b"x: &a [*a]\n", 1, "cycle"),
    "3000 flow levels": (b"x: " + b"[" * 3000 + b"]" * 3000, 1, "nested deeper than 32"),
    "block nesting": (b"".join(b" " * i + b"a:\n" for i in range(100)), 32, "nested deeper than 32"),
    "alias bomb": (BOMB, 4, "aliases expand to more than 10000"),
    "5000 digits": (b"a: 1\nx: " + b"9" * 5000, 2, "more than 18 digits"),
    "latin-1": ("a: 1\nx: caf\xe9\n".encode("latin-1"), 2, "not UTF-8"),
    "utf-16": ("x: 1\n".encode("utf-16"), 1, "UTF-16"),
    "nul": (b"a: 1\nb: 2\nc: \x00\n", 3, "U+0000"),
    "escape": (b"a: 1\nb: \x1b[31m\n", 2, "U+001B"),
    "python tag": (b"a: 1\nb: !!python/object/apply:os.system [id]\n", 2, "tags are not allowed"),
    "local tag": (b"a: !x 1\n", 1, "tags are not allowed"),
    "too big": (b"#" * (64 * 1024 + 1), 1, "larger than 64 KiB"),
}


@pytest.mark.parametrize("name", CASES)
def test_refused_at_its_line(name: str) -> None:
    data, line, fragment = CASES[name]
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(InputError) as info:
        parse_matrix(data, "m.yaml")
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    first = info.value.problems[0]
    assert fragment in first.message and first.line == line, str(info.value)
    assert elapsed < 2 and peak < 64 * 2**20


@pytest.mark.parametrize("literal", ["yes", "on", "0777", "54:32", "0x10", "1_000"])
def test_yaml11_literals_are_not_integers(small_matrix_text: str, literal: str) -> None:
    text = small_matrix_text.replace("port: 5432", f"port: {literal}", 1)
    with pytest.raises(InputError) as info:
        parse_matrix(text, "m.yaml")
    assert f"port: wrong type: must be a whole number, got text '{literal}' (YAML 1.1" in str(info.value)
