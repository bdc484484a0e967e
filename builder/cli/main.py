"""``guestforge`` entry point: option parsing, error-to-exit-code mapping, subcommand registry."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from builder import __version__
from builder.cli import build_cmd, graph_cmd, plan_cmd
from builder.cli.context import CliContext
from builder.errors import GuestforgeError, InputError

EPILOG = """\b
Examples:
  guestforge validate                      # check matrix.yaml
  guestforge plan                          # every cell and target, as a table
  guestforge plan 'postgresql-*' --target oci --format json
"""


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-m", "--matrix", "matrix_path", type=click.Path(path_type=Path), default=Path("matrix.yaml"),
              show_default=True, help="The matrix file.")
@click.version_option(__version__, prog_name="guestforge")
@click.pass_context
def cli(ctx: click.Context, matrix_path: Path) -> None:
    """Build and verify DBaaS guest images (OCI, VM, bare metal) from one matrix."""
    ctx.obj = CliContext(matrix_path=matrix_path)


for command in [*plan_cmd.COMMANDS, *build_cmd.COMMANDS, *graph_cmd.COMMANDS]:
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map our errors to one message and an exit code, never a traceback."""
    try:
        cli.main(args=argv, prog_name="guestforge", standalone_mode=False)
    except GuestforgeError as exc:
        click.echo(str(exc) if isinstance(exc, InputError) else f"guestforge: error: {exc}", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
