"""Bytes to text before YAML sees them: a size bound, strict UTF-8 and no control characters, each
problem at its own line (the YAML reader would report the first one at line 1, or at none)."""

from __future__ import annotations

import re

from builder.errors import InputError, Problem

MAX_BYTES = 64 * 1024
MAX_REPORTED = 20

# What YAML 1.2 calls printable (c-printable), minus nothing: tab, newlines and the rest.
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _line_at(data: bytes | str, index: int) -> int:
    if isinstance(data, bytes):
        return data.count(b"\n", 0, index) + 1
    return data.count("\n", 0, index) + 1


def too_big(file: str) -> InputError:
    return InputError([Problem(file, 1, "", f"file is larger than {MAX_BYTES // 1024} KiB; refusing to parse it")])


def decode(data: bytes, file: str) -> str:
    """``data`` as text, or InputError naming the line of every undecodable byte or control character."""
    if len(data) > MAX_BYTES:
        raise too_big(file)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError([Problem(file, 1, "", "not UTF-8 text (a UTF-16 byte-order mark); save the file as UTF-8")])
    problems: list[Problem] = []
    text = ""
    pos = 0
    while True:
        try:
            text += data[pos:].decode("utf-8")
            break
        except UnicodeDecodeError as exc:
            bad = pos + exc.start
            problems.append(Problem(file, _line_at(data, bad), "",
                                    f"not UTF-8 text: byte 0x{data[bad]:02x} cannot be decoded; save the file as UTF-8"))
            text += data[pos:bad].decode("utf-8") + "\ufffd"
            pos = pos + exc.end
            if len(problems) >= MAX_REPORTED:
                break
    if problems:
        raise InputError(problems)
    return check_text(text, file)


def check_text(text: str, file: str) -> str:
    """``text`` without a leading byte-order mark, or InputError locating every control character."""
    if len(text) > MAX_BYTES:
        raise too_big(file)
    if text.startswith("\ufeff"):
        text = text[1:]
    problems = [Problem(file, _line_at(text, match.start()), "",
                        f"control character U+{ord(match.group()):04X} is not allowed in a matrix")
                for _, match in zip(range(MAX_REPORTED), _NOT_PRINTABLE.finditer(text), strict=False)]
    if problems:
        raise InputError(problems)
    return text
