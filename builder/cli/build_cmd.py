"""``guestforge build`` and ``guestforge verify``: run the graph for the selected cells and targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from builder.cli.context import CliContext
from builder.cache.oci_client import parse_location
from builder.cache.transport import RegistryOptions
from builder.cli.options import graph_options
from builder.errors import GuestforgeError, RunFailed, UsageError
from builder.session import Options, RunResult, declare_graph, pick, run_graph


def execute(obj: CliContext, command: str, selectors: tuple[str, ...], target: str | None, build_dir: Path,
            jobs: int, force: bool, cache_registry: str | None, ca_file: Path | None, insecure: bool,
            image_prefix: str | None, publish: tuple[str, str] | None = None,
            sign_key: Path | None = None) -> RunResult:
    matrix = obj.matrix()
    cells, targets = pick(matrix, selectors, target)  # type: ignore[arg-type]
    graph, wanted = declare_graph(matrix, cells, targets, verify=command in ("verify", "publish"), publish=publish,
                                  image_prefix=image_prefix)
    if not wanted:
        raise GuestforgeError(f"nothing to {command}: the selected cells want none of {', '.join(targets)}")
    registry = RegistryOptions(ca_file=ca_file, insecure=insecure)
    options = Options(build_dir=build_dir, jobs=jobs, force=force, cache_registry=cache_registry,
                      registry=registry, sign_key=sign_key)
    from builder.oci.engine import Engine   # the Docker SDK only for the commands that run a graph

    engine = Engine()
    cache = None
    if cache_registry:
        from builder.cache.registry import RegistryCache

        cache = RegistryCache(cache_registry, engine, build_dir, registry)
    return run_graph(command, graph, wanted, options, lambda: engine, console=Console(stderr=True), cache=cache)


def finish(result: RunResult) -> None:
    """Name every failed node with its log; raise (exit 1) if any failed or was blocked."""
    bad = [r for r in result.table if r.status in ("failed", "blocked")]
    click.echo(f"report: {result.report}", err=True)
    for row in bad:
        if row.status == "failed":
            click.echo(f"FAILED {row.node}: see {row.log}", err=True)
    if bad:
        failed = sum(r.status == "failed" for r in bad)
        raise RunFailed(f"{failed} node(s) failed and {len(bad) - failed} were blocked by them; "
                        f"the other {len(result.table) - len(bad)} finished")


@click.command(epilog="""\b
Examples:
  guestforge build --target oci postgresql-15
  guestforge build 'redis-*' -j 2
  guestforge build --target oci --force mariadb-10.11
""")
@graph_options
@click.pass_obj
def build(obj: CliContext, /, **kwargs: Any) -> None:
    """Build the artifacts of the selected cells (globs; default all), skipping what is already built."""
    finish(execute(obj, "build", **kwargs))


@click.command(epilog="""\b
Examples:
  guestforge verify --target oci postgresql-15
  guestforge verify --target oci '*-bookworm'
  guestforge verify --published registry.example.internal/dbaas/postgresql:15 --key cosign.pub
""")
@click.option("--published", metavar="HOST/REPO:TAG", multiple=True,
              help="Instead of building: check a published artifact in its registry (complete, signed with "
                   "--key, provenance for its digest). Repeatable.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The public key (PEM) --published signatures must verify with.")
@graph_options
@click.pass_obj
def verify(obj: CliContext, /, published: tuple[str, ...], key: Path | None, **kwargs: Any) -> None:
    """Verify the selected cells with testinfra (building what is missing); skip what already passed."""
    if published:
        check_published(published, key, RegistryOptions(ca_file=kwargs["ca_file"], insecure=kwargs["insecure"]))
        return
    finish(execute(obj, "verify", **kwargs))


def check_published(refs: tuple[str, ...], key: Path | None, options: RegistryOptions) -> None:
    if key is None:
        raise UsageError("--published needs --key: the public key its signatures must verify with")
    from builder.publish.check import verify_published

    failed = 0
    for ref in refs:
        checked = verify_published(ref, key, options)
        click.echo(f"{ref}: {checked.digest or 'not found'}")
        click.echo("".join(f"  ok    {line}\n" for line in checked.passed)
                   + "".join(f"  FAIL  {line}\n" for line in checked.problems), nl=False)
        failed += bool(checked.problems)
    if failed:
        raise RunFailed(f"{failed} of {len(refs)} published reference(s) failed verification")


@click.command(epilog="""\b
Examples:
  guestforge publish --registry 127.0.0.1:5000/dbaas --target oci postgresql-15
  guestforge publish --registry registry.example.internal/guestforge 'mariadb-*'
  guestforge publish --registry 127.0.0.1:5000/dbaas --target vm postgresql-15   # qcow2 as an OCI artifact
""")
@click.option("--registry", required=True, metavar="HOST[:PORT]/PREFIX",
              help="Where to push. Credentials: the Docker client's (`docker login HOST`, DOCKER_CONFIG).")
@click.option("--sign-key", type=click.Path(exists=True, dir_okay=False, path_type=Path, resolve_path=True),
              default=None, help="Sign each pushed manifest with this ECDSA key (PEM; cosign-compatible) and sign "
              "its provenance. Without it the provenance is attached unsigned.")
@graph_options
@click.pass_obj
def publish(obj: CliContext, /, registry: str, sign_key: Path | None, **kwargs: Any) -> None:
    """Verify the selected cells (skipping what already passed), then push what passed to a registry.

    OCI: the datastore, all-in-one, exporter and agent images under their local names, and the cell's
    Kubernetes bundle pinned to them by digest (build/artifacts/CELL/bundle.published/). vm and baremetal: the
    disk files as an OCI artifact (HOST/PREFIX/DATASTORE:VERSION-TARGET). A cell that fails its
    verification is not pushed; the others are.
    """
    location = parse_location(registry, "--registry", "guestforge")
    if sign_key is not None:
        from builder.publish.signing import load_private_key

        load_private_key(sign_key)  # a bad key is the user's error, found before anything is built
    result = execute(obj, "publish", publish=location, sign_key=sign_key, **kwargs)
    for outcome in result.outcomes.values():
        if outcome.ok and outcome.node_id.startswith("publish-"):
            pushed = outcome.artifact.published_refs() if outcome.artifact else ()
            click.echo("\n".join(f"{outcome.node_id}: {p}" for p in pushed))
    finish(result)


COMMANDS = [build, verify, publish]
