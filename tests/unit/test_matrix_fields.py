"""Single-field rules: paths, names, users, uids, versions, options, mirrors, targets."""

from __future__ import annotations

import pytest

from builder.errors import InputError
from builder.matrix.loader import parse_matrix


def problems(text: str) -> str:
    with pytest.raises(InputError) as info:
        parse_matrix(text, "m.yaml")
    return str(info.value)


@pytest.mark.parametrize("old,new,fragment", [
    ("data_dir: /var/lib/postgresql/data", "data_dir: /var/lib/postgresql/../../../etc", "must be normalised"),
    ("data_dir: /var/lib/postgresql/data", "data_dir: /", "must not be the root directory"),
    ("data_dir: /var/lib/postgresql/data", "data_dir: /usr", "must not be a system directory"),
    ("data_dir: /var/lib/postgresql/data", "data_dir: /proc/1", "kernel or device tree"),
    ("entrypoint: trove-guestagent", "entrypoint: ../../../bin/sh", "not a program name"),
    ("user: postgres", "user: root", "reserved for the system"),
    ("user: postgres", "user: " + "a" * 33, "at most 32 characters"),
    ("uid: 999", "uid: 0", "out of range"),
    ("uid: 999", "uid: 99", "out of range"),
    ("suite: bookworm", "suite: --customize-hook=reboot", "not starting with -"),
    ("start: [postgres]", "start: [-c, x]", "must not start with '-'"),
    ('"15":', '"15+dfsg":', "not a valid version"),
    ("  postgresql:", "  valkey_:", "not a valid name"),
    ("bookworm: {suite: bookworm}", "bookworm: {suite: bookworm, mirror: 'file:///etc/shadow'}", "allow_local_mirror"),
    ("bookworm: {suite: bookworm}", "bookworm: {suite: bookworm, mirror: 'https://u:p@h/debian'}", "credentials"),
    ("bookworm: {suite: bookworm}", "bookworm: {suite: bookworm, mirror: 'ftp://h/debian'}", "http(s) URL"),
])
def test_field_rules(small_matrix_text: str, old: str, new: str, fragment: str) -> None:
    assert old in small_matrix_text
    assert fragment in problems(small_matrix_text.replace(old, new, 1))


def test_opt_ins_accept_local_mirror_and_credentials(small_matrix_text: str) -> None:
    text = small_matrix_text.replace("bookworm: {suite: bookworm}", "bookworm: {suite: bookworm, mirror: "
                                     "'file:///srv/debian', allow_local_mirror: true}", 1)
    parse_matrix(text, "m.yaml")


def test_empty_targets(small_matrix_text: str) -> None:
    assert "versions.15.targets: must not be empty" in problems(
        small_matrix_text.replace("packages: [postgresql-15]", "packages: [postgresql-15]\n        targets: []"))
    assert "defaults.targets: must not be empty" in problems("defaults: {targets: []}\n" + small_matrix_text)
