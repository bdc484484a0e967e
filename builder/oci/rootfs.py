"""Base OS images from the Debian archive: mmdebstrap (minbase) -> tarball -> ``docker import``.

No registry is involved, so this works air-gapped given an archive mirror.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.hostenv.apt import MirrorError, Mirrors
from builder.matrix.models import Base
from builder.run import run

# Suites that have no -updates/-security companions.
_ROLLING = {"sid", "unstable", "experimental"}

# Keep images small: no docs (but keep copyright files), man pages, locales. mmdebstrap writes these
# into /etc/dpkg/dpkg.cfg.d so every image built FROM the base inherits them.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/lintian/*",
)


# The apt options a base may ask for (``Base.check_valid_until``), as NAME=VALUE. A fixed set written here,
# never a matrix string: each reaches apt on a command line (bootstrap, image builds) or in an apt.conf
# file that the guest build removes again.
EXPIRED_INDEX_OK = "Acquire::Check-Valid-Until=false"
# mmdebstrap writes every --aptopt into this file of the root filesystem; apt options are for the build only.
MMDEBSTRAP_APT_CONF = "/etc/apt/apt.conf.d/99mmdebstrap"


def apt_options(base: Base) -> tuple[str, ...]:
    return () if base.check_valid_until else (EXPIRED_INDEX_OK,)


def apt_conf_lines(options: tuple[str, ...]) -> list[str]:
    """``NAME=VALUE`` options as apt.conf lines (``NAME "VALUE";``)."""
    return [f'{name} "{value}";' for name, _, value in (o.partition("=") for o in options)]


@dataclass(frozen=True)
class ResolvedBase:
    """A base with its mirrors decided: the inputs that shape its root filesystem."""

    name: str
    suite: str
    archive: str
    security: str | None
    components: tuple[str, ...]
    apt: tuple[str, ...] = ()    # apt options (NAME=VALUE) for building on this base, never left in an image

    def sources(self) -> list[str]:
        comps = " ".join(self.components)
        lines = [f"deb {self.archive} {self.suite} {comps}"]
        if self.suite not in _ROLLING:
            lines.append(f"deb {self.archive} {self.suite}-updates {comps}")
            if self.security:
                lines.append(f"deb {self.security} {self.suite}-security {comps}")
        return lines


def resolve(name: str, base: Base, host: Mirrors | None) -> ResolvedBase:
    """Matrix mirrors win; otherwise the host's apt sources decide."""
    archive = base.mirror or (host.archive if host else None)
    if archive is None:
        raise MirrorError(f"base {name!r}: no mirror configured and none found in the host's apt sources")
    security = (base.security_mirror or (host.security if host else None)) if base.security else None
    return ResolvedBase(name, base.suite, archive.rstrip("/"), security, tuple(base.components), apt_options(base))


def bootstrap_argv(base: ResolvedBase, out_tar: Path) -> list[str]:
    """mmdebstrap's command line; "--" before the positionals, so no matrix value can be an option of a
    program that runs as root."""
    argv = ["mmdebstrap", "--variant=minbase", "--format=tar", "--aptopt=Acquire::Retries \"3\""]
    argv += [f"--aptopt={line.rstrip(';')}" for line in apt_conf_lines(base.apt)]
    argv += [f"--dpkgopt={opt}" for opt in DPKG_OPTIONS]
    # The apt options served the bootstrap; no image built on the base inherits them.
    argv.append(f'--customize-hook=rm -f "$1{MMDEBSTRAP_APT_CONF}"')
    return [*argv, "--", base.suite, str(out_tar), *base.sources()]


def bootstrap(base: ResolvedBase, out_tar: Path, log: Path, epoch: int = 0) -> None:
    """Write a minbase root filesystem tarball for ``base`` to ``out_tar``."""
    run(bootstrap_argv(base, out_tar), log=log, env={"SOURCE_DATE_EPOCH": str(epoch)})
