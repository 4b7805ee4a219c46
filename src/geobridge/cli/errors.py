"""How commands report failures: one line on stderr that says what is wrong and what to do,
and a non-zero exit code, instead of a traceback.

Commands raise :func:`fail` for bad input they detect themselves. Faults of the machine and of
files that any command can meet (a read-only or full disk, a missing permission, a corrupt
weights file) are turned into the same one line in one place, :func:`reported_faults`, which
the app's command group runs every command in. Outputs are written atomically, so nothing is
left half-written.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperGroup

#: What to do about an OSError, by errno.
OS_ADVICE: dict[int, str] = {
    errno.EROFS: "the file system is read-only: write the output to another folder",
    errno.ENOSPC: "the disk is full: free some space or write the output to another disk",
    errno.EDQUOT: "the disk quota is used up: free some space or write the output elsewhere",
    errno.EACCES: "permission denied: check the owner and mode of the file and its folder, or use another one",
    errno.EPERM: "operation not permitted: check the owner and mode of the file and its folder",
    errno.ENOENT: "no such file or folder: check the path",
    errno.EISDIR: "it is a folder where a file was expected: check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EIO: "input/output error: the disk or network share failed; check it and try again",
}
WEIGHTS_ADVICE = "it is truncated or not a safetensors file: save or copy the model again"


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` to stderr and return an Exit to raise."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


#: the optional extras of pyproject.toml and the modules each provides, checked by :func:`require_extra`
EXTRAS: dict[str, tuple[str, ...]] = {
    "serve": ("fastapi", "uvicorn"),
    "build": ("rasterio", "pyrosm", "shapely"),
}


def require_extra(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """At a command's entry: fail with one line naming the extra to install when one of its
    ``modules`` (default: all of ``EXTRAS[extra]``) cannot be imported."""
    import importlib

    for module in modules or EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError:
            raise fail(
                f"{what} needs the optional '{extra}' dependencies ({module} is not installed): "
                f"pip install 'geobridge[{extra}]'"
            ) from None


@contextlib.contextmanager
def reported_faults() -> Iterator[None]:
    """Turn an OSError or a corrupt weights file raised by any command into one error line and exit 1."""
    from safetensors import SafetensorError

    try:
        yield
    except OSError as err:
        raise fail(describe_os_error(err), code=1) from None
    except SafetensorError as err:
        file = _safetensors_file(err) or "a model.safetensors file"
        raise fail(f"cannot read weights {file} ({err}): {WEIGHTS_ADVICE}", code=1) from None


class FaultReportingGroup(TyperGroup):
    """The app's command group: runs every command inside :func:`reported_faults`."""

    # typer hands commands its own typer.Context; the base class names the Context of typer's
    # private vendored click (typer._click), so the override is narrower in name only
    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        with reported_faults():
            return super().invoke(ctx)


def describe_os_error(err: OSError) -> str:
    """``FILE: what happened; what to do`` for an OSError (the file when the error names one)."""
    what = err.strerror or str(err) or type(err).__name__
    files = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
    advice = OS_ADVICE.get(err.errno or -1, "check the file and the disk, then try again")
    return f"{files + ': ' if files else ''}{what}; {advice}"


def _safetensors_file(err: BaseException) -> str | None:
    """The file safetensors was reading: its loaders keep it in a local named ``filename``."""
    tb = err.__traceback__
    found = None
    while tb is not None:
        value = tb.tb_frame.f_locals.get("filename")
        if isinstance(value, str):
            found = value
        tb = tb.tb_next
    return found
