"""The pip index the host is configured to use (its pip.conf files), for builds inside containers.

Only http(s) indexes are returned: a ``file://`` location on the host means nothing
inside a build container. ``None`` means pip's own default.
"""

from __future__ import annotations

import configparser
from pathlib import Path

CONFIG_FILES = (Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf"), Path.home() / ".pip/pip.conf",
                Path.home() / ".config/pip/pip.conf")


def host_index_url(files: tuple[Path, ...] = CONFIG_FILES) -> str | None:
    found = None
    for path in files:  # later files override earlier ones, as in pip
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except configparser.Error:
            continue
        for section in ("global", "install"):
            value = parser.get(section, "index-url", fallback=None)
            if value and value.strip().split()[0].startswith(("http://", "https://")):
                found = value.strip().split()[0]
    return found
