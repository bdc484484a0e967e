"""Mirrors come from the host's apt sources, in both file formats, ignoring vendor repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.hostenv.apt import MirrorError, host_mirrors


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_deb822_sources_with_vendor_repos_first(tmp_path: Path) -> None:
    write(tmp_path, "sources.list", "deb https://vendor.example/apt cloud-sdk-bookworm main\n")
    write(tmp_path, "sources.list.d/aaa-node.sources",
          "Types: deb\nURIs: https://node.example/node_20.x\nSuites: nodistro\nComponents: main\n")
    write(tmp_path, "sources.list.d/debian.sources",
          "Types: deb\n# comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
          "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
          "Types: deb\nURIs: http://mirror.example/debian-security/\nSuites: bookworm-security\nComponents: main\n")
    mirrors = host_mirrors(tmp_path)
    assert mirrors.archive == "http://mirror.example/debian"
    assert mirrors.security == "http://mirror.example/debian-security"


def test_one_line_format_with_options(tmp_path: Path) -> None:
    write(tmp_path, "sources.list",
          "# deb http://commented.example/debian bookworm main\n"
          "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main contrib\n"
          "deb-src http://m.example/debian bookworm main\n"
          "deb http://m.example/debian-security bookworm-security main\n")
    mirrors = host_mirrors(tmp_path)
    assert (mirrors.archive, mirrors.security) == ("http://m.example/debian", "http://m.example/debian-security")


def test_disabled_stanza_and_no_mirror(tmp_path: Path) -> None:
    write(tmp_path, "sources.list.d/debian.sources",
          "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n")
    with pytest.raises(MirrorError, match="set `mirror:`"):
        host_mirrors(tmp_path)
