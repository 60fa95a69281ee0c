"""Files replaced atomically: a temporary file created exclusively beside the target, renamed into place.

Every file bus389 writes for someone else to read (reports, blocklists, rejected rows, config files
with secrets) goes through here, so that:

- the temporary file is new (``O_CREAT | O_EXCL | O_NOFOLLOW``, a random name in the target's folder):
  a file or symbolic link planted at a guessable name is never written through;
- the target is replaced by ``rename``, which replaces a symbolic link at the target itself, never the
  file it points to; a reader sees the old file or the whole new one;
- a private file is 0600 from its first byte; any other keeps the user's umask (``0666 & ~umask``)
  unless the caller asks for a mode (a resolver must read the blocklist);
- every failure is one :class:`~bus389.errors.BusError` line naming the path, never a traceback.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from bus389.errors import BusError, InputError

__all__ = ["ErrorFactory", "commit_file", "stage_file", "write_file"]

ErrorFactory = Callable[[str], BusError]
"""Builds the error a caller raises (``StoreError`` for the blocklist, ``ConfigError`` for a config)."""

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _describe(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


def stage_file(
    path: Path,
    data: bytes,
    *,
    private: bool = False,
    make_parents: bool = False,
    error: ErrorFactory = InputError,
) -> Path:
    """Write ``data`` to a new temporary file beside ``path`` (synced) and return the temporary's path.

    ``private``: mode 0600 from the first byte; otherwise ``0666`` less the umask. The caller renames it
    over ``path`` with :func:`commit_file` once it should take effect, or unlinks it.
    """
    path = path.expanduser()
    folder = path.parent
    try:
        if make_parents:
            folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, _FLAGS, 0o600 if private else 0o666)
    except (FileExistsError, NotADirectoryError):
        raise error(f"cannot write {path}: {folder} is not a folder") from None
    except OSError as exc:
        raise error(f"cannot write {path}: {_describe(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            if private:
                os.fchmod(fd, 0o600)  # exactly 0600, whatever the umask took away
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise error(f"cannot write {path}: {_describe(exc)}") from None
    return tmp


def commit_file(tmp: Path, path: Path, *, mode: int | None = None, error: ErrorFactory = InputError) -> None:
    """Rename the staged ``tmp`` over ``path`` (and sync the folder); ``tmp`` is removed on failure."""
    path = path.expanduser()
    try:
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if path.is_dir():
            raise error(f"cannot write {path}: it is a folder") from None
        raise error(f"cannot write {path}: {_describe(exc)}") from None
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise error(f"wrote {path} but cannot sync its folder: {_describe(exc)}") from None


def write_file(
    path: Path,
    data: bytes,
    *,
    private: bool = False,
    mode: int | None = None,
    make_parents: bool = False,
    error: ErrorFactory = InputError,
) -> None:
    """Replace ``path`` with ``data`` atomically and durably (see the module docstring)."""
    tmp = stage_file(path, data, private=private, make_parents=make_parents, error=error)
    commit_file(tmp, path, mode=mode, error=error)
