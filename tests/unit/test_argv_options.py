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


def test_expired_index_option_reaches_apt_on_command_lines_and_stays_out_of_images() -> None:
    """``check_valid_until: false``: mmdebstrap and every image build's apt get it; no image keeps a file."""
    from builder.oci.rootfs import MMDEBSTRAP_APT_CONF, apt_conf_lines
    from builder.vm.dib import base_env

    plain = resolve("debian:sid", Base(suite="sid", mirror="http://deb.invalid/debian"), None)
    expired = resolve("debian:sid", Base(suite="sid", mirror="http://deb.invalid/debian", check_valid_until=False),
                      None)
    assert plain.apt == () and expired.apt == ("Acquire::Check-Valid-Until=false",)
    for base in (plain, expired):
        argv = bootstrap_argv(base, Path("/tmp/out.tar"))
        options = argv[:argv.index("--")]
        assert f'--customize-hook=rm -f "$1{MMDEBSTRAP_APT_CONF}"' in options
        assert ('--aptopt=Acquire::Check-Valid-Until "false"' in options) is bool(base.apt)
    assert apt_conf_lines(expired.apt) == ['Acquire::Check-Valid-Until "false";']
    assert "DIB_GUESTFORGE_APT_CONF" not in base_env(plain)
    assert base_env(expired)["DIB_GUESTFORGE_APT_CONF"] == 'Acquire::Check-Valid-Until "false";\n'
    exporter = {"name": "x", "user": "exp", "uid": 1200, "packages": ["p"], "port": 9, "command": ["x"]}
    for options_, update in (([], "apt-get update"),
                             (list(expired.apt), "apt-get -o Acquire::Check-Valid-Until=false update")):
        text = render("exporter.Containerfile.j2", {"base_image": "b", "exporter": exporter, "labels": {},
                                                    "apt_options": options_})
        assert re.search(rf"(^|&& ){re.escape(update)}\b", text, re.M), text


def test_guest_build_writes_the_apt_options_and_removes_them_before_the_image() -> None:
    root_d = (ROOT / "elements/guestforge-guest/root.d/50-guestforge-apt-options").read_text()
    cleanup = (ROOT / "elements/guestforge-guest/cleanup.d/80-guestforge-apt-options").read_text()
    path = "/etc/apt/apt.conf.d/60guestforge-build"
    assert path in root_d and f'rm -f "${{TARGET_ROOT}}{path}"' in cleanup
    # DIB runs one phase's scripts of all elements in name order: after the bootstrap that makes the root,
    # before the first script that runs apt-get update in it.
    import importlib.util
    spec = importlib.util.find_spec("diskimage_builder")
    assert spec is not None and spec.origin is not None
    elements = Path(spec.origin).parent / "elements"
    ours = "50-guestforge-apt-options"
    bootstrap = sorted(p.name for p in (elements / "debootstrap/root.d").iterdir())
    updates = sorted(p.name for p in (elements / "debian-minimal/root.d").iterdir() if "apt-get" in p.read_text())
    assert bootstrap and updates and max(bootstrap) < ours < min(updates), (bootstrap, updates)
