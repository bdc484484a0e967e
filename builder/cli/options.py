"""Options shared by the commands that run the graph (build, verify, publish)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from builder.matrix.models import ALL_TARGETS

F = TypeVar("F", bound=Callable[..., Any])


_PREFIX = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+")


def _image_prefix(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A registry host with a path: a bare ``guestforge`` would resolve to Docker Hub."""
    if value is not None and not _PREFIX.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not HOST[:PORT]/PATH (e.g. registry.example.internal/dbaas)")
    return value


def graph_options(func: F) -> F:
    decorators = [
        click.argument("selectors", nargs=-1),
        click.option("--target", type=click.Choice(ALL_TARGETS), help="Only this target (default: each cell's targets)."),
        click.option("--build-dir", type=click.Path(path_type=Path, resolve_path=True), default=Path("build"),
                     show_default=True,
                     help="Images' index, logs, reports and file artifacts."),
        click.option("-j", "--jobs", type=click.IntRange(1, 64), default=min(4, os.cpu_count() or 2),
                     show_default=True, help="Independent nodes run in parallel up to this many."),
        click.option("--force", is_flag=True, help="Redo every node even when its key is already done."),
        click.option("--cache-registry", metavar="HOST:PORT/PREFIX", default=None,
                     help="Shared cache: pull nodes whose key is there instead of building, push what is built."),
        click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path, resolve_path=True),
                     default=None, help="Trust registries' TLS certificates signed by these CAs (PEM) instead of "
                     "the system's."),
        click.option("--insecure", is_flag=True,
                     help="Allow plain HTTP and unverified TLS to registries (loopback may always be plain HTTP)."),
        click.option("--image-prefix", metavar="HOST[:PORT]/PATH", default=None, callback=_image_prefix,
                     help="Where the Kubernetes bundles of this build name their images (PREFIX/NAME:TAG-KEY; "
                          "default localhost/guestforge, which no cluster pulls: push there first). "
                          "`publish` pins its own registry's digests instead."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func
