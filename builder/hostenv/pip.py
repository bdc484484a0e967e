"""The pip index the host is configured to use (its pip.conf files), for builds inside containers.

Only http(s) indexes are returned: a ``file://`` location on the host means nothing
inside a build container. ``None`` means pip's own default.
"""

from __future__ import annotations

import configparser
from pathlib import Path

CONFIG_FILES = (Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf"), Path.home() / ".pip/pip.conf",
                Path.home() / ".config/pip/pip.conf")


def config_value(key: str, files: tuple[Path, ...] = CONFIG_FILES) -> str | None:
    """``key`` from the host's pip.conf files ([global] or [install]); later files win, as in pip."""
    found = None
    for path in files:
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except configparser.Error:
            continue
        for section in ("global", "install"):
            value = parser.get(section, key, fallback=None)
            if value and value.strip():
                found = value.strip()
    return found


def host_index_url(files: tuple[Path, ...] = CONFIG_FILES) -> str | None:
    value = (config_value("index-url", files) or "").split()
    return value[0] if value and value[0].startswith(("http://", "https://")) else None
