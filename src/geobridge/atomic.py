"""Atomic file output: write to a temporary name beside the target, then rename.

A crash or an error never leaves a half-written file under the final name, and an existing file
is replaced only once its successor is complete. Folders (checkpoints, galleries, worlds) are
replaced so that a kill at any instant is recoverable: readers call :func:`recover_directory`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``target`` on success.

    The temporary name keeps the target's suffix (or ``suffix``) so libraries that pick a format
    from the extension (PIL, pyarrow, numpy) still do the right thing.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    ext = suffix if suffix is not None else "".join(target.suffixes[-1:])
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{ext}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp creates 0600; give the usual file mode
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise _named(err, target)  # noqa: B904 (_named keeps the original as __cause__, or is it)


def _current_umask() -> int:
    """The process umask, read without changing it where Linux allows (setting it races threads)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically and return the target path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``target`` atomically and return the target path."""
    return atomic_write_bytes(target, text.encode(encoding))


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` whole.

    The replacement survives a kill at any instant: the new folder is written as
    ``.NAME.PID-XXXX.tmp``, the old one is renamed to ``.NAME.old-PID``, the new one renamed in,
    and only then is the old one deleted. :func:`recover_directory` (run here first, and by every
    reader) puts back whichever complete folder a kill left behind. An error leaves the old
    folder as it was. One writer per target at a time.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_directory(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}-", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_current_umask())  # mkdtemp creates 0700; outputs are meant to be shared
    try:
        yield tmp
        _share(tmp)
        _swap_in(tmp, target)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _named(err, target)  # noqa: B904 (_named keeps the original as __cause__, or is it)


def _named(err: BaseException, target: Path) -> BaseException:
    """An OSError that names no file (a full disk while writing) now names ``target``."""
    if isinstance(err, OSError) and err.filename is None:
        named = OSError(err.errno, err.strerror or str(err), str(target))
        named.__cause__ = err
        return named
    return err


def _share(folder: Path) -> None:
    """Give everything in ``folder`` the usual modes under the umask (some writers make 0600 files)."""
    mask = _current_umask()
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~mask)


def _swap_in(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` onto ``target``, keeping the old folder as ``.NAME.old-PID`` until done."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        if old.exists() and not target.exists():
            os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def recover_directory(target: str | os.PathLike) -> None:
    """Finish or undo a folder replacement that a kill interrupted, and sweep its leftovers.

    A kill between the two renames leaves no ``target`` but a complete ``.NAME.old-PID``: it is
    renamed back. A kill after them leaves the old copy beside the new one: it is deleted.
    Temporary ``.NAME.*.tmp`` folders of writers that no longer run are deleted. Leftovers of a
    writer that is still running are left alone.
    """
    target = Path(target)
    parent = target.parent
    if not parent.is_dir():
        return
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(?:old-(?P<old>\d+)|(?:(?P<tmp>\d+)-)?\w+\.tmp)$")
    for entry in sorted(parent.iterdir(), key=lambda p: p.name):
        found = pattern.match(entry.name)
        if found is None or not entry.is_dir():
            continue
        pid = int(found["old"] or found["tmp"] or 0)
        if _writer_alive(pid):
            continue
        if found["old"] is not None and not target.exists():
            _rename_back(entry, target)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def _rename_back(old: Path, target: Path) -> None:
    """``old`` -> ``target``, unless another reader (another rank) already did it."""
    try:
        os.replace(old, target)
    except OSError as err:
        if err.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
            raise


def _writer_alive(pid: int) -> bool:
    """Whether another running process has this id (0: unknown writer, taken as gone)."""
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
