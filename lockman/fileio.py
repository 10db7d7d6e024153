"""File reading and replacing that every writer of lockman shares.

``write_atomic`` is the one way lockman replaces a file (lockfile, xcargo.toml, OCI layout
metadata, cache entries): temp file in the same directory, fsync, rename over, fsync the
directory. A crash at any moment leaves the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from lockman.errors import InputError


def read_utf8(path: Path, *, kind: str = "TOML") -> str | None:
    """The file's text, or None when it does not exist; unreadable or non-UTF-8 is bad input."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not valid {kind}: not UTF-8 text") from None


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, data: bytes | str, *, durable: bool = True) -> None:
    """Replace ``path`` atomically, keeping its permissions.

    ``durable=False`` skips the fsyncs, for caches where losing the newest entry in a power cut
    costs nothing but a download.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = _default_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
