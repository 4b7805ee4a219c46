"""The ``geobridge`` command: one sub-command per job.

Each job's commands live in their own module here and are added by its ``register(app)``.
Heavy imports (torch, models) happen inside the commands, so ``geobridge --help`` stays fast.
"""

from __future__ import annotations

import sys

import typer

from geobridge import __version__
from geobridge.cli import (
    build,
    convert,
    data,
    demo,
    evaluate,
    explain,
    models,
    plan,
    retrieval,
    serve,
    train,
    world,
)
from geobridge.cli.errors import FaultReportingGroup

app = typer.Typer(
    name="geobridge",
    help=(
        "Multi-view, cross-modal geo-localization: render an embedded world, train GeoBridge-style "
        "models, evaluate them with the benchmarks' exact protocols, and locate drone, street, "
        "satellite, map or text queries among geo-tagged references."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=FaultReportingGroup,  # every command's OSError / corrupt weights: one error line
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"geobridge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """geobridge command line."""


for _module in (world, data, train, plan, evaluate, retrieval, serve, build, explain, demo, convert, models):
    _module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
