"""Matrix values reach command lines only after "--": never as options of a program run as root."""

from __future__ import annotations

import re
from pathlib import Path

from builder.matrix.models import Base
from builder.oci.render import render
from builder.oci.rootfs import bootstrap_argv, resolve
from tests.conftest import ROOT

AGENT = {"user": "trove", "uid": 1100, "log_dir": "/var/log/trove", "config_dir": "/etc/trove/conf.d"}


def test_mmdebstrap_takes_the_suite_after_double_dash() -> None:
    base = resolve("debian:bookworm", Base(suite="bookworm", mirror="http://deb.invalid/debian"), None)
    argv = bootstrap_argv(base, Path("/tmp/out.tar"))
    assert argv[argv.index("--") + 1:][:2] == ["bookworm", "/tmp/out.tar"]
    assert all(arg.startswith("--") for arg in argv[1:argv.index("--")])


def test_templates_put_packages_and_users_after_double_dash() -> None:
    exporter = {"name": "x", "user": "exp", "uid": 1200, "packages": ["pkg-a", "pkg-b"], "port": 9,
                "command": ["x"]}
    text = render("exporter.Containerfile.j2", {"base_image": "b", "exporter": exporter, "labels": {}})
    assert "apt-get install -y --no-install-recommends -- pkg-a pkg-b" in text
    assert "groupadd --system --gid 1200 -- exp" in text
    assert re.search(r"useradd --system .* -- exp\b", text)


def test_dib_element_puts_the_user_after_double_dash() -> None:
    script = (ROOT / "elements/guestforge-agent/install.d/60-guestforge-agent").read_text()
    for tool in ("groupadd", "useradd", "usermod"):
        line = re.search(rf"^\s*{tool} .*(\n\s+.*)*?\"\$\{{user\}}\"$", script, re.M)
        assert line and '-- "${user}"' in line.group(), tool
