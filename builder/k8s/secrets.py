"""The Secrets a bundle's pod reads: every key, per flavor, with what it is for.

The keys are the fields of ``builder.flavors.Secrets`` that the flavor's containers read (the database's
``secret_env``, and the exporter, which logs in with the same account). The template ships with empty
values: the entrypoints refuse to start without a password, so an unfilled template cannot run a
database nobody chose a password for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from builder.flavors import flavor

KEY_DOCS: Mapping[str, Mapping[str, str]] = {
    "postgresql": {
        "password": "superuser password (required); the exporter logs in with it too",
        "user": "superuser name (required: the exporter logs in as it; postgres is the usual one)",
        "database": "database created at first start; empty means the superuser's name",
    },
    "mysql": {
        "password": "root password (required); the exporter and the probes log in as root with it",
        "user": "an application account created at first start (may be empty: none)",
        "user_password": "that account's password (needed when user is set)",
        "database": "a database created at first start, on which user gets all rights (may be empty)",
    },
    "redis": {
        "password": "the default user's password (required); the exporter and the probes use it",
    },
}

AGENT_KEYS: Mapping[str, str] = {
    "guest_info.conf": "guest_id, datastore_manager, datastore_version (builder.agent.config.runtime_files)",
    "trove-guestagent.conf": "transport_url of the controller's message bus and the datastore section",
}


def keys(flavor_name: str) -> list[str]:
    """The Secret keys a pod of this flavor reads, in the order the template lists them."""
    used = set(flavor(flavor_name).db_env_refs().values())
    return [k for k in KEY_DOCS[flavor_name] if k in used]


def _template(name: str, labels: Mapping[str, str], docs: Mapping[str, str], what: str) -> str:
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "labels": dict(labels)},
                           "type": "Opaque", "stringData": {key: "" for key in docs}}
    width = max(len(k) for k in docs)
    lines = [f"# {what}: fill in every value, then `kubectl apply -k .` (never commit the filled file).",
             *(f"#   {key.ljust(width)}  {text}" for key, text in docs.items())]
    return "\n".join(lines) + "\n" + yaml.safe_dump(doc, sort_keys=False)


def credentials_template(flavor_name: str, name: str, labels: Mapping[str, str]) -> str:
    """The database credentials Secret, every key empty and documented."""
    docs = {k: KEY_DOCS[flavor_name][k] for k in keys(flavor_name)}
    return _template(name, labels, docs, "The database's credentials")


def agent_config_template(name: str, labels: Mapping[str, str]) -> str:
    """The guest agent's config files, as a Secret mounted into its config directory."""
    return _template(name, labels, AGENT_KEYS, "The guest agent's configuration files")
