"""Lint of guestforge's diskimage-builder elements: the DIB element contract (README, phase scripts with
two-digit prefixes, executable, strict shell), plus what guestforge's own elements promise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from builder.oci.rootfs import DPKG_OPTIONS
from builder.paths import ELEMENTS

PHASES = {"root.d", "extra-data.d", "pre-install.d", "install.d", "post-install.d", "post-root.d",
          "block-device.d", "pre-finalise.d", "finalise.d", "cleanup.d"}
OURS = sorted(p for p in ELEMENTS.iterdir() if p.is_dir())


def scripts(element: Path) -> list[Path]:
    return sorted(f for phase in PHASES for f in (element / phase).glob("*") if f.is_file())


def test_elements_exist() -> None:
    names = {p.name for p in OURS}
    assert {"guestforge-guest", "guestforge-agent", "guestforge-datastore", "guestforge-base-tree"} <= names


@pytest.mark.parametrize("element", OURS, ids=lambda p: p.name)
def test_readme(element: Path) -> None:
    readmes = [element / "README.rst", element / "README.md"]
    assert any(r.is_file() and r.read_text().strip() for r in readmes), f"{element.name}: no README"


@pytest.mark.parametrize("element", OURS, ids=lambda p: p.name)
def test_phase_scripts(element: Path) -> None:
    found = scripts(element)
    assert found, f"{element.name}: no phase scripts"
    for script in found:
        where = f"{element.name}/{script.parent.name}/{script.name}"
        assert re.fullmatch(r"\d\d-[a-z0-9][a-z0-9-]*", script.name), f"{where}: needs an NN- prefix"
        assert script.stat().st_mode & 0o111, f"{where}: not executable"
        text = script.read_text()
        assert text.startswith("#!/bin/bash\n"), f"{where}: must be a bash script"
        # set -eu -o pipefail, spelt as DIB's own elements do (and as dib-lint checks it)
        assert re.search(r"^set -eu$", text, re.M) and re.search(r"^set -o pipefail$", text, re.M), \
            f"{where}: missing `set -eu` / `set -o pipefail`"
        assert "DIB_DEBUG_TRACE" in text, f"{where}: does not follow DIB_DEBUG_TRACE"
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0, f"{where}: syntax"


@pytest.mark.parametrize("element", OURS, ids=lambda p: p.name)
def test_environment_files(element: Path) -> None:
    for env in sorted((element / "environment.d").glob("*")):
        assert re.fullmatch(r"\d\d-[a-z0-9-]+\.bash", env.name), f"{element.name}/{env.name}: NN-name.bash"
        assert subprocess.run(["bash", "-n", str(env)], capture_output=True).returncode == 0
        for name in re.findall(r"^export (\w+)=", env.read_text(), re.M):
            assert name.startswith(("DIB_", "DISTRO_NAME", "EFI_BOOT_DIR")), f"{element.name}: {name} is not DIB_*"


@pytest.mark.parametrize("element", OURS, ids=lambda p: p.name)
def test_package_installs_and_deps(element: Path) -> None:
    pkgs = element / "package-installs.yaml"
    if pkgs.exists():
        data = yaml.safe_load(pkgs.read_text())
        assert isinstance(data, dict) and data
        assert all(re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", name) for name in data)
    deps = element / "element-deps"
    if deps.exists():
        known = {p.name for p in OURS} | set(_dib_elements())
        for dep in deps.read_text().split():
            assert dep in known, f"{element.name}: unknown element {dep}"


def _dib_elements() -> list[str]:
    try:
        import diskimage_builder  # type: ignore[import-untyped]
    except ImportError:
        pytest.skip("diskimage-builder is not installed")
    return [p.name for p in (Path(diskimage_builder.__file__).parent / "elements").iterdir() if p.is_dir()]


def test_no_fixed_hosts_in_elements() -> None:
    """Mirrors come from the matrix or the host's apt sources; no element names a host."""
    for f in ELEMENTS.rglob("*"):
        if f.is_file():
            assert not re.search(r"https?://", f.read_text()), f"{f.relative_to(ELEMENTS)} names a URL"


def test_guest_datasources_only_nocloud_and_configdrive() -> None:
    env = (ELEMENTS / "guestforge-guest" / "environment.d" / "10-guestforge-guest.bash").read_text()
    assert 'DIB_GUESTFORGE_DATASOURCES:-"NoCloud, ConfigDrive"' in env


def test_agent_unit_never_root() -> None:
    script = (ELEMENTS / "guestforge-agent" / "install.d" / "60-guestforge-agent").read_text()
    assert "User=${user}" in script and "User=root" not in script
    assert "--config-dir=${conf}" in script


def test_datastore_units_need_their_secret() -> None:
    script = (ELEMENTS / "guestforge-datastore" / "install.d" / "85-guestforge-datastore-units").read_text()
    assert script.count("ConditionPathExists=") == 2
    assert "--pull never" in script


def test_dib_lint(tmp_path: Path) -> None:
    """DIB's own linter over our elements (indentation, set -eu/pipefail, safe sudo, YAML, element-deps)."""
    lint = Path(sys.executable).parent / "dib-lint"
    if not lint.exists():
        pytest.skip("dib-lint is not installed (diskimage-builder)")
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "ELEMENTS_DIR": "elements",
           "LIB_DIR": str(tmp_path), "TMPDIR": str(tmp_path), "LANG": "C.UTF-8"}
    proc = subprocess.run([str(lint)], cwd=ELEMENTS.parent, env=env, capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stdout.splitlines() if line.startswith("ERROR")]
    assert proc.returncode == 0 and not errors, "\n".join(errors) or proc.stdout[-2000:]


def test_preload_dockerd_is_isolated() -> None:
    """The throwaway dockerd must not see the host's mounts or network (with --bridge none it deletes any
    docker0 it can see)."""
    script = (ELEMENTS / "guestforge-datastore" / "post-root.d" / "50-guestforge-preload-images").read_text()
    assert re.search(r"unshare --mount --propagation private --net ", script)
    assert "--bridge none" in script and "--iptables=false" in script


def test_guest_trim_removes_what_dpkg_filters_keep_out(tmp_path: Path) -> None:
    """The post-install trim applies the dpkg filters guestforge passes to files already unpacked:
    excluded files and the directories they empty go, path-include wins, nothing else is touched."""
    root = tmp_path / "root"
    files = {"usr/share/doc/bash/copyright": "c", "usr/share/doc/bash/README.gz": "r",
             "usr/share/doc/bash/examples/x.sh": "x", "usr/share/doc/tzdata/changelog.gz": "l",
             "usr/share/man/man1/ls.1.gz": "m", "usr/share/locale/de/LC_MESSAGES/bash.mo": "d",
             "usr/share/locale/locale.alias": "a", "usr/share/zoneinfo/UTC": "z", "usr/bin/bash": "b"}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    filters = "\n".join(opt.replace("=/", f"={root}/", 1) for opt in DPKG_OPTIONS)
    script = ELEMENTS / "guestforge-guest" / "post-install.d" / "85-guestforge-trim"
    result = subprocess.run([str(script)], env={"DIB_GUESTFORGE_DPKG_FILTERS": filters, "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert left == ["usr", "usr/bin", "usr/bin/bash", "usr/share", "usr/share/doc", "usr/share/doc/bash",
                    "usr/share/doc/bash/copyright", "usr/share/locale", "usr/share/locale/locale.alias",
                    "usr/share/man", "usr/share/zoneinfo", "usr/share/zoneinfo/UTC"]
