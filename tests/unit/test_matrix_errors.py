"""Every class of bad matrix input: exit 2, one line per problem, file:line: field, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.cli.main import main
from builder.errors import InputError
from builder.matrix.loader import parse_matrix

DIGEST = "sha256:" + "ab" * 32


def problems_of(text: str) -> list[str]:
    with pytest.raises(InputError) as info:
        parse_matrix(text, "m.yaml")
    return str(info.value).splitlines()


def replace(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_small_matrix_is_valid(small_matrix_text: str) -> None:
    matrix, _ = parse_matrix(small_matrix_text, "m.yaml")
    assert list(matrix.datastores["postgresql"].versions) == ["15"]


def test_malformed_yaml_names_line(small_matrix_text: str) -> None:
    text = replace(small_matrix_text, "port: 5432", "port: [5432")
    [msg] = problems_of(text)
    assert msg.startswith("m.yaml:") and "not valid YAML" in msg


def test_unknown_key_suggests_close_match(small_matrix_text: str) -> None:
    text = replace(small_matrix_text, "    client: psql", "    clinet: psql")
    lines = problems_of(text)
    n = line_of(text, "clinet")
    assert f"m.yaml:{n}: datastores.postgresql.clinet: unknown key; did you mean 'client'?" in lines
    assert any("datastores.postgresql.client: missing required field" in p for p in lines)


def test_missing_field_points_at_parent(small_matrix_text: str) -> None:
    text = replace(small_matrix_text, "    uid: 999\n", "")
    [msg] = problems_of(text)
    assert msg == f"m.yaml:{line_of(text, '  postgresql:')}: datastores.postgresql.uid: missing required field"


def test_wrong_types(small_matrix_text: str) -> None:
    text = replace(small_matrix_text, "port: 5432", "port: five")
    text = replace(text, "packages: [postgresql-15]", "packages: postgresql-15")
    lines = problems_of(text)
    assert f"m.yaml:{line_of(text, 'port: five')}: datastores.postgresql.port: wrong type: must be a whole number, got text 'five'" in lines
    assert any(".versions.15.packages: wrong type: must be a list, got text 'postgresql-15'" in p for p in lines)


def test_out_of_range_port(small_matrix_text: str) -> None:
    [msg] = problems_of(replace(small_matrix_text, "port: 5432", "port: 70000"))
    assert "datastores.postgresql.port: out of range" in msg


def test_duplicate_datastore_and_version(small_matrix_text: str) -> None:
    text = small_matrix_text + '      "15": {base: debian:bookworm, packages: [postgresql-15]}\n'
    [msg] = problems_of(text)
    last = len(text.splitlines())
    first = line_of(text, '"15":')
    assert msg == f"m.yaml:{last}: datastores.postgresql.versions.15: duplicate key (first defined on line {first})"
    ds_block = small_matrix_text[small_matrix_text.index("  postgresql:"):]
    text = small_matrix_text + ds_block
    msgs = problems_of(text)
    assert any("datastores.postgresql: duplicate key" in m for m in msgs)


def test_image_without_digest(small_matrix_text: str) -> None:
    text = small_matrix_text + '      "16": {image: "registry.example.internal/postgres:16"}\n'
    [msg] = problems_of(text)
    assert msg.endswith("datastores.postgresql.versions.16.image: image reference has no digest; "
                        "pin it as REF@sha256:<64 hex digits>: 'registry.example.internal/postgres:16'")
    assert msg.startswith(f"m.yaml:{len(text.splitlines())}:")


def test_image_with_digest_is_accepted(small_matrix_text: str) -> None:
    text = small_matrix_text + f'      "16": {{image: "127.0.0.1:5000/lib/postgres:16@{DIGEST}"}}\n'
    matrix, _ = parse_matrix(text, "m.yaml")
    assert matrix.datastores["postgresql"].versions["16"].image.endswith(DIGEST)  # type: ignore[union-attr]


def test_image_with_packages_is_rejected(small_matrix_text: str) -> None:
    text = small_matrix_text + f'      "16": {{image: "reg.internal/pg@{DIGEST}", packages: [x1]}}\n'
    [msg] = problems_of(text)
    assert "versions.16.packages: not allowed together with 'image'" in msg


@pytest.mark.parametrize("bad", ["pg;rm -rf /", "{{ evil }}", "$(id)", "a b", "`x`", "Postgres"])
def test_package_names_must_be_plain(small_matrix_text: str, bad: str) -> None:
    text = replace(small_matrix_text, "packages: [postgresql-15]", f"packages: [postgresql-15, '{bad}']")
    [msg] = problems_of(text)
    assert msg.startswith(f"m.yaml:{line_of(text, bad)}: datastores.postgresql.versions.15.packages[1]: ")
    assert "not a valid package name" in msg and repr(bad) in msg


@pytest.mark.parametrize("field,bad", [("start", "[postgres, '-c', '${x}']"), ("health", "['pg_isready;id']"),
                                       ("client", "'{% x %}'"), ("data_dir", "relative/path")])
def test_values_must_be_plain_tokens(small_matrix_text: str, field: str, bad: str) -> None:
    old = next(line for line in small_matrix_text.splitlines() if line.startswith(f"    {field}:"))
    text = replace(small_matrix_text, old, f"    {field}: {bad}")
    [msg] = problems_of(text)
    assert f"datastores.postgresql.{field}" in msg
    assert any(reason in msg for reason in ("not a plain token", "not an absolute path", "not a program name"))


def test_undefined_references(small_matrix_text: str) -> None:
    text = replace(small_matrix_text, "        base: debian:bookworm", "        base: debian:buster")
    text = replace(text, "    exporter: postgres_exporter", "    exporter: pg_exporter")
    text = replace(text, "  base: debian:bookworm\nexporters", "  base: debian:sid\nexporters")
    lines = problems_of(text)
    assert f"m.yaml:{line_of(text, 'debian:buster')}: datastores.postgresql.versions.15.base: undefined base 'debian:buster' (defined: debian:bookworm)" in lines
    assert f"m.yaml:{line_of(text, 'pg_exporter')}: datastores.postgresql.exporter: undefined exporter 'pg_exporter' (defined: postgres_exporter)" in lines
    assert f"m.yaml:{line_of(text, 'debian:sid')}: agent.base: undefined base 'debian:sid' (defined: debian:bookworm)" in lines


def test_unknown_target_and_duplicate_list_entry(small_matrix_text: str) -> None:
    text = replace(small_matrix_text, "        packages: [postgresql-15]",
                   "        packages: [postgresql-15, postgresql-15]\n        targets: [oci, docker]")
    lines = problems_of(text)
    assert any(".versions.15.targets[1]: must be one of 'oci', 'vm' or 'baremetal'; got 'docker'" in p for p in lines)
    text = replace(small_matrix_text, "        packages: [postgresql-15]", "        packages: [postgresql-15, postgresql-15]")
    [msg] = problems_of(text)
    assert msg.endswith("versions.15.packages[1]: duplicate entry 'postgresql-15' (also at [0])")


def test_every_problem_reported_one_per_line(small_matrix_text: str) -> None:
    text = replace(small_matrix_text, "port: 5432", "port: x")
    text = replace(text, "uid: 999", "uid: y")
    text = replace(text, "    client: psql", "    client: psql\n    colour: blue")
    assert len(problems_of(text)) == 3


def test_empty_and_non_mapping_files() -> None:
    assert problems_of("") == ["m.yaml:1: wrong type: the matrix must be a mapping, got nothing"]
    assert problems_of("- a\n- b\n") == ["m.yaml:1: wrong type: the matrix must be a mapping, got a list"]


def test_cli_exit_code_2_without_traceback(tmp_path: Path, small_matrix_text: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "matrix.yaml"
    bad.write_text(replace(small_matrix_text, "packages: [postgresql-15]", "packages: ['pg;rm -rf /']"))
    for argv in (["-m", str(bad), "plan"], ["validate", str(bad)], ["-m", str(bad), "plan", "--format", "json"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert err.strip() == (f"{bad}:{line_of(bad.read_text(), 'pg;rm')}: datastores.postgresql.versions.15."
                               "packages[0]: not a valid package name: 'pg;rm -rf /'")


def test_cli_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: cannot read matrix: No such file or directory" in capsys.readouterr().err
