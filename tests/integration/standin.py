"""Stand-ins for tests and benchmarks: an agent tarball and a datastore image, made locally.

The real agent tarball comes from ``builder.agent.bundle`` and the real datastore images from the OCI
build; these stand-ins have the same *shape* (paths, runtime contract) so the VM path can be built and
booted before, and independently of, those builds. Nothing here is used by a product build.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

# A tiny agent: reads its config dir, keeps trying to reach the controller named there (with a growing
# back-off), logs each attempt, and never exits on its own -- the behaviour of the real agent when its
# message bus is unreachable.
_FAKE_AGENT = '''#!/usr/bin/python3
"""guestforge stand-in for trove-guestagent (tests only)."""
import argparse, configparser, glob, os, socket, sys, time
from urllib.parse import urlparse

VERSION = "{version}"
parser = argparse.ArgumentParser()
parser.add_argument("--config-dir", default="/etc/trove/conf.d")
parser.add_argument("--version", action="store_true")
args = parser.parse_args()
if args.version:
    print(VERSION)
    sys.exit(0)
conf = configparser.ConfigParser(interpolation=None, strict=False)
conf.read(sorted(glob.glob(os.path.join(args.config_dir, "*.conf"))))
url = urlparse(conf.get("DEFAULT", "transport_url", fallback="rabbit://127.0.0.1:5672/"))
host, port = url.hostname or "127.0.0.1", url.port or 5672
log_dir = conf.get("DEFAULT", "log_dir", fallback="/var/log/trove")
log = open(os.path.join(log_dir, "trove-guestagent.log"), "a", buffering=1)
def say(msg):
    line = time.strftime("%Y-%m-%dT%H:%M:%S ") + msg
    print(line, flush=True)
    log.write(line + "\\n")
say(f"trove-guestagent {{VERSION}} starting; controller {{host}}:{{port}}")
delay = 1.0
while True:
    try:
        socket.create_connection((host, port), timeout=5).close()
        say("controller reachable")
        delay = 1.0
    except OSError as exc:
        say(f"controller unreachable ({{exc}}); retrying in {{delay:.0f}}s")
    time.sleep(delay)
    delay = min(delay * 2, 30.0)
'''


def agent_tarball(out: Path, *, version: str = "0.0.0-standin", entrypoint: str = "trove-guestagent",
                  venv: str = "/opt/guest-agent-venv") -> Path:
    """Write a deterministic stand-in agent tarball (root-relative paths, root-owned, mtime 0)."""
    root = venv.strip("/")
    files: dict[str, bytes] = {
        f"{root}/bin/{entrypoint}": _FAKE_AGENT.format(version=version).encode(),
        f"{root}/pyvenv.cfg": b"home = /usr/bin\ninclude-system-site-packages = false\n",
        f"{root}/VERSION": f"{version}\n".encode(),
    }
    dirs = sorted({root, f"{root}/bin", "etc", "etc/trove", "etc/trove/conf.d", "var", "var/log",
                   "var/log/trove"})
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted([*dirs, *files]):
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if name in files:
                info.size = len(files[name])
                info.mode = 0o755 if "/bin/" in name else 0o644
                tar.addfile(info, io.BytesIO(files[name]))
            else:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
    return out


# A datastore image honouring the PostgreSQL runtime contract of the official images (POSTGRES_PASSWORD,
# POSTGRES_USER, POSTGRES_DB, PGDATA), built from a local base image: no registry involved.
_PG_ENTRYPOINT = r'''#!/bin/sh
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "error: POSTGRES_PASSWORD is not set; refusing to initialise a database without a password" >&2
        exit 1
    fi
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256
    rm -f "$pwfile"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ -n "${POSTGRES_DB:-}" ] && [ "${POSTGRES_DB}" != postgres ]; then
        postgres -D "$PGDATA" --single postgres <<EOF
CREATE DATABASE "${POSTGRES_DB}";
EOF
    fi
fi
exec "$@" -D "$PGDATA"
'''

_PG_CONTAINERFILE = """FROM {base}
# The matrix's uid, as the real images have it: the guest's data directory belongs to it.
RUN groupadd --system --gid {uid} postgres \\
 && useradd --system --uid {uid} --gid {uid} --home-dir /var/lib/postgresql --shell /bin/sh postgres
RUN apt-get update && apt-get install -y --no-install-recommends {packages} \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
ENV PATH=/usr/lib/postgresql/{major}/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY entrypoint.sh /usr/local/bin/entrypoint.sh
RUN install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data
USER postgres
ENTRYPOINT ["/bin/sh", "/usr/local/bin/entrypoint.sh"]
CMD ["postgres"]
"""

_EXPORTER_CONTAINERFILE = """FROM {base}
RUN apt-get update && apt-get install -y --no-install-recommends prometheus-postgres-exporter \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
USER nobody
ENTRYPOINT ["prometheus-postgres-exporter"]
"""


def postgres_context(base: str, major: str, uid: int = 999) -> dict[str, bytes]:
    """Build context files for a stand-in PostgreSQL datastore image (server user ``uid``)."""
    containerfile = _PG_CONTAINERFILE.format(base=base, packages=f"postgresql-{major}", major=major, uid=uid)
    return {"Containerfile": containerfile.encode(), "entrypoint.sh": _PG_ENTRYPOINT.encode()}


def exporter_context(base: str) -> dict[str, bytes]:
    return {"Containerfile": _EXPORTER_CONTAINERFILE.format(base=base).encode()}

