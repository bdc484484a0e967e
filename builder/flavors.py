"""What code must know about each flavor's runtime contract: one registry entry per flavor.

A flavor (``postgresql``, ``mysql``, ``redis``) is the runtime contract a datastore image implements
(container_specs/flavors/<flavor>/docker-entrypoint.sh). This module says, as data and pure
functions (no Docker, no I/O), which environment variables carry the secrets, how the exporter
sidecar reaches the database, and how to run an authenticated query with the image's own client.
The verifier and the pod-spec generator both read it.

    runtime = flavor("postgresql")
    env = runtime.db_env(secrets)                     # {"POSTGRES_PASSWORD": ..., ...}
    refs = runtime.db_env_refs()                      # {"POSTGRES_PASSWORD": "password", ...}
    cmd = runtime.query(cell, secrets, "SELECT 1")    # Command(argv=[psql ...], env={PGPASSWORD: ...})
"""

from __future__ import annotations

import secrets as _random
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from builder.errors import UsageError
from builder.matrix.models import Flavor

SecretKey = Literal["password", "user", "user_password", "database"]

INITDB_DIR = "/docker-entrypoint-initdb.d"


@dataclass(frozen=True)
class Secrets:
    """The credentials a cell runs with; generated per run, passed as environment, never baked.

    ``password`` is the administrator's (PostgreSQL superuser, MariaDB root, Redis default user).
    ``user`` / ``user_password`` / ``database``: an application account and database where the flavor
    has them (PostgreSQL: ``user`` names the superuser itself; Redis has none).

    For a Kubernetes pod spec, pass ``$(VAR)`` references as values: the env functions below put
    values in verbatim (no quoting or encoding), so dependent-variable expansion works.
    """

    password: str
    user: str = ""
    user_password: str = ""
    database: str = ""

    @classmethod
    def generate(cls) -> Secrets:
        """Random secrets; the passwords hold quote, dollar and backslash characters on purpose, so a
        quoting mistake anywhere between environment and server shows up as a failed login."""
        return cls(
            password=_random.token_hex(12) + "'\"$\\x",
            user="gf_app",
            user_password=_random.token_hex(12) + "'$",
            database="gf_db",
        )


@dataclass(frozen=True)
class Command:
    """An argument list to run inside the database container, with the environment it needs."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


class CellLike(Protocol):
    """The cell settings the runtime knowledge depends on (``builder.plan.Cell`` has them)."""

    @property
    def datastore(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def client(self) -> str: ...

    @property
    def start(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class FlavorRuntime:
    """The runtime contract of one flavor, as data; behaviour that differs lives in the subclasses."""

    name: Flavor
    # Environment variable -> the Secrets field it carries (pod specs turn these into secretKeyRefs).
    secret_env: Mapping[str, SecretKey]
    # The explicit opt-in that lets the server start without a password, and what it must say without.
    allow_empty_env: Mapping[str, str]
    missing_password_error: str
    # Where first-start scripts go (*.sql, *.sh), or None when the flavor has no such directory.
    initdb_dir: str | None
    # The statement that makes the server report its version (see ``reported_version``).
    version_statement: str
    # A trivial statement and the reply that proves an authenticated session.
    ping_statement: str
    ping_reply: str

    def db_env(self, secrets: Secrets) -> dict[str, str]:
        """The database container's environment for ``secrets`` (empty fields left out)."""
        return {var: getattr(secrets, key) for var, key in self.secret_env.items() if getattr(secrets, key)}

    def db_env_refs(self) -> dict[str, SecretKey]:
        """Environment variable -> Secrets field, for pod specs that reference a Secret."""
        return dict(self.secret_env)

    def server_process(self, cell: CellLike) -> str:
        """The server's process name (``ps -o comm``): the start command's program."""
        return cell.start[0].rsplit("/", 1)[-1]

    def admin(self, secrets: Secrets) -> str:
        """The administrator account the checks log in as."""
        raise NotImplementedError

    def query(self, cell: CellLike, secrets: Secrets, statement: str, *, password: str | None = None,
              user: str | None = None) -> Command:
        """Run ``statement`` with the cell's client over TCP on the loopback, as the administrator or
        ``user``; ``password`` overrides the secret one ("" for none; a wrong one to check it is
        refused). Output is plain: one row per line, columns tab-separated, no headers."""
        raise NotImplementedError

    def exporter_env(self, cell: CellLike, secrets: Secrets) -> dict[str, str]:
        """The exporter sidecar's environment: how it reaches the database in the same pod."""
        raise NotImplementedError

    def pod_env(self, data_dir: str) -> dict[str, str]:
        """Extra environment for a Kubernetes pod, where the data volume's root is a mount point."""
        return {}

    def reported_version(self, cell: CellLike, output: str) -> str | None:
        """The server version in the output of ``version_statement``, or None when absent."""
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        return lines[0].split()[0] if lines else None


def _password_env(name: str, password: str) -> dict[str, str]:
    return {name: password} if password else {}


def version_matches(wanted: str, reported: str) -> bool:
    """``15`` matches ``15.14``; ``10.11`` matches ``10.11.6-MariaDB...`` but not ``10.1.2``."""
    return reported == wanted or reported.startswith(wanted + ".") or reported.startswith(wanted + "-")


@dataclass(frozen=True)
class PostgreSQL(FlavorRuntime):
    def pod_env(self, data_dir: str) -> dict[str, str]:
        # A volume's root may hold lost+found, which initdb refuses; the data goes one level down.
        return {"PGDATA": f"{data_dir.rstrip('/')}/pgdata"}

    def admin(self, secrets: Secrets) -> str:
        return secrets.user or "postgres"

    def query(self, cell: CellLike, secrets: Secrets, statement: str, *, password: str | None = None,
              user: str | None = None) -> Command:
        argv = (cell.client, "--host=127.0.0.1", f"--port={cell.port}", f"--username={user or self.admin(secrets)}",
                f"--dbname={secrets.database or self.admin(secrets)}", "--no-psqlrc", "--no-password",
                "--tuples-only", "--no-align", "--field-separator=\t", "-v", "ON_ERROR_STOP=1",
                "--command", statement)
        return Command(argv, _password_env("PGPASSWORD", secrets.password if password is None else password))

    def exporter_env(self, cell: CellLike, secrets: Secrets) -> dict[str, str]:
        # URI, user and password apart: the exporter assembles (and escapes) the DSN itself.
        return {"DATA_SOURCE_URI": f"127.0.0.1:{cell.port}/postgres?sslmode=disable",
                "DATA_SOURCE_USER": self.admin(secrets), "DATA_SOURCE_PASS": secrets.password}


@dataclass(frozen=True)
class MySQL(FlavorRuntime):
    def admin(self, secrets: Secrets) -> str:
        return "root"

    def query(self, cell: CellLike, secrets: Secrets, statement: str, *, password: str | None = None,
              user: str | None = None) -> Command:
        database = (f"--database={secrets.database}",) if secrets.database else ()
        argv = (cell.client, "--protocol=tcp", "--host=127.0.0.1", f"--port={cell.port}",
                f"--user={user or self.admin(secrets)}", *database, "--batch", "--skip-column-names",
                "--execute", statement)
        # MYSQL_PWD keeps the password off the command line.
        return Command(argv, _password_env("MYSQL_PWD", secrets.password if password is None else password))

    def exporter_env(self, cell: CellLike, secrets: Secrets) -> dict[str, str]:
        # mysqld_exporter up to 0.14 (Debian bookworm) reads a go-sql-driver DSN; it takes the
        # password verbatim up to the last "@".
        return {"DATA_SOURCE_NAME": f"root:{secrets.password}@tcp(127.0.0.1:{cell.port})/"}


@dataclass(frozen=True)
class Redis(FlavorRuntime):
    def admin(self, secrets: Secrets) -> str:
        return "default"

    def query(self, cell: CellLike, secrets: Secrets, statement: str, *, password: str | None = None,
              user: str | None = None) -> Command:
        # The statement is a command line (``SET k v``); REDISCLI_AUTH keeps the password off argv.
        # Output is raw (the client is not on a terminal); an error reply still exits 0.
        who = ("--user", user) if user else ()
        argv = (cell.client, "-h", "127.0.0.1", "-p", str(cell.port), *who, *shlex.split(statement))
        return Command(argv, _password_env("REDISCLI_AUTH", secrets.password if password is None else password))

    def exporter_env(self, cell: CellLike, secrets: Secrets) -> dict[str, str]:
        return {"REDIS_ADDR": f"redis://127.0.0.1:{cell.port}", "REDIS_PASSWORD": secrets.password}

    def reported_version(self, cell: CellLike, output: str) -> str | None:
        # INFO server: Valkey also reports a Redis-compatible redis_version; the datastore's own wins.
        fields = dict(line.strip().partition(":")[::2] for line in output.splitlines() if ":" in line)
        return fields.get(f"{cell.datastore}_version") or fields.get("redis_version")


FLAVORS: Mapping[Flavor, FlavorRuntime] = {
    "postgresql": PostgreSQL(
        name="postgresql",
        secret_env={"POSTGRES_PASSWORD": "password", "POSTGRES_USER": "user", "POSTGRES_DB": "database"},
        allow_empty_env={"POSTGRES_HOST_AUTH_METHOD": "trust"},
        missing_password_error="error: POSTGRES_PASSWORD is not set",
        initdb_dir=INITDB_DIR,
        version_statement="SHOW server_version",
        ping_statement="SELECT 1",
        ping_reply="1",
    ),
    "mysql": MySQL(
        name="mysql",
        secret_env={"MARIADB_ROOT_PASSWORD": "password", "MARIADB_USER": "user",
                    "MARIADB_PASSWORD": "user_password", "MARIADB_DATABASE": "database"},
        allow_empty_env={"MARIADB_ALLOW_EMPTY_ROOT_PASSWORD": "1"},
        missing_password_error="error: MARIADB_ROOT_PASSWORD is not set",
        initdb_dir=INITDB_DIR,
        version_statement="SELECT VERSION()",
        ping_statement="SELECT 1",
        ping_reply="1",
    ),
    "redis": Redis(
        name="redis",
        secret_env={"REDIS_PASSWORD": "password"},
        allow_empty_env={"REDIS_ALLOW_EMPTY_PASSWORD": "yes"},
        missing_password_error="error: REDIS_PASSWORD is not set",
        initdb_dir=None,
        version_statement="INFO server",
        ping_statement="PING",
        ping_reply="PONG",
    ),
}


def flavor(name: str) -> FlavorRuntime:
    """The registry entry for ``name``; an unknown flavor is a usage error naming the known ones."""
    try:
        return FLAVORS[name]  # type: ignore[index]
    except KeyError:
        raise UsageError(f"unknown flavor {name!r} (known: {', '.join(FLAVORS)})") from None
