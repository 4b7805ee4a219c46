"""How commands report bad input: one line on stderr that says what is wrong and what to do,
and a non-zero exit code, instead of a traceback."""

from __future__ import annotations

import typer


class UserError(Exception):
    """An error caused by the user's input; its message says what to do."""


def fail(message: str, code: int = 2) -> "typer.Exit":
    """Print ``error: message`` to stderr and return an Exit to raise."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)
