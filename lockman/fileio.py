"""File reading and replacing that every writer of lockman shares.

``write_atomic`` is the one way lockman replaces a file (lockfile, xcargo.toml, OCI layout
metadata, cache entries): temp file in the same directory, fsync, rename over, fsync the
directory. A crash at any moment leaves the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import sys
from pathlib import Path
from typing import Any, BinaryIO

from lockman.errors import InputError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


MAX_CONFIG_BYTES = 4 << 20
"""Configuration files (registries.conf, config.json, auth.json): far larger is not one."""
MAX_TEXT_BYTES = 64 << 20
"""xcargo.toml and xcargo.lock: generous, but a bound (``/dev/zero`` is not a lockfile)."""


def read_bounded(path: Path, *, limit: int, what: str) -> bytes | None:
    """The bytes of a file the user names, or None when it does not exist.

    A regular file, or a character device such as ``/dev/null`` (which scripts and test suites
    name to mean "no configuration", and containers/image and docker read as empty). A FIFO,
    directory or socket is refused without blocking; more than ``limit`` bytes (``/dev/zero``,
    a huge file) is refused after reading ``limit + 1``, never read to the end. Other OS errors
    propagate for the caller to word.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
            raise InputError(f"{path}: not a regular file; not {what}")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            try:
                chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            except BlockingIOError:  # a terminal or similar device with nothing to give
                raise InputError(f"{path}: a device with nothing to read; not {what}") from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > limit:
        raise InputError(f"{path}: larger than {limit >> 20} MiB; not {what}")
    return b"".join(chunks)


def read_utf8(path: Path, *, kind: str = "TOML", limit: int = MAX_TEXT_BYTES) -> str | None:
    """The file's text, or None when it does not exist; unreadable or non-UTF-8 is bad input."""
    try:
        data = read_bounded(path, limit=limit, what=f"a {kind} file")
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not valid {kind}: not UTF-8 text") from None


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _named(e: OSError, path: Path) -> OSError:
    """The same error, naming ``path``: "No space left on device" alone does not say where."""
    return OSError(e.errno, e.strerror or str(e), str(path))


def _write_temp(path: Path, data: bytes, durable: bool, dir_fd: int | None = None) -> str:
    """A temp file beside ``path`` holding ``data`` with ``path``'s permissions; its name.

    With ``dir_fd`` (a :class:`SafeDir`), ``path`` is only shown in errors: the file and the
    temp are names in that directory, and a link at ``path`` lends no permissions.
    """
    target: str | Path = path.name if dir_fd is not None else path
    try:
        st = os.stat(target, dir_fd=dir_fd, follow_symlinks=dir_fd is None)
        mode = st.st_mode & 0o777 if stat.S_ISREG(st.st_mode) else _default_mode()
    except FileNotFoundError:
        mode = _default_mode()
    while True:
        name = f".{path.name}.{secrets.token_hex(6)}.tmp"
        tmp = name if dir_fd is not None else str(path.parent / name)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=dir_fd)
            break
        except FileExistsError:
            continue
        except OSError as e:
            raise _named(e, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            if durable:
                os.fsync(f.fileno())
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        if isinstance(e, OSError):
            raise _named(e, path) from None
        raise
    return tmp


_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of dirty pages, do not wait
_sync_file_range: Any = None  # libc's, once looked up; False where there is none


def start_writeback(fd: int) -> bool:
    """Ask the kernel to start writing ``fd``'s dirty pages to disk now, without waiting.

    A blob is fsynced before it gets its final name (as containers/image does), and a fsync of
    64 MiB that sat in the page cache waits for all of it: with four blobs ending together that
    was 0.1-0.2 s of every pull (``benchmarks/pull.py``). Started batch by batch while the
    download goes on, the writing overlaps the download and the fsync finds little left. This
    is git's ``core.fsyncMethod=batch`` and PostgreSQL's ``*_flush_after``: Linux's
    ``sync_file_range(SYNC_FILE_RANGE_WRITE)``, which Python's os module lacks. Advisory only:
    False (and nothing done) elsewhere or when the kernel refuses; the fsync still decides.
    """
    global _sync_file_range
    if _sync_file_range is None:
        _sync_file_range = False
        if sys.platform.startswith("linux"):
            import ctypes  # only for a download to a file, on Linux

            try:
                call = ctypes.CDLL(None, use_errno=True).sync_file_range
            except (AttributeError, OSError):
                pass
            else:
                call.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
                call.restype = ctypes.c_int
                _sync_file_range = call
    if _sync_file_range is False:
        return False
    return bool(_sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE) == 0)  # 0, 0: the whole file


def _fsync_dir(directory: Path) -> None:
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def write_atomic(path: Path, data: bytes | str, *, durable: bool = True) -> None:
    """Replace ``path`` atomically, keeping its permissions; an error names ``path``.

    ``durable=False`` skips the fsyncs, for caches where losing the newest entry in a power cut
    costs nothing but a download.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = _write_temp(path, data, durable)
    try:
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise _named(e, path) from None
        raise
    if durable:
        _fsync_dir(path.parent)


def write_together(files: list[tuple[Path, bytes | str]]) -> None:
    """Replace several files so that either all change or none does (xcargo.toml + xcargo.lock).

    Every new content is written to a temp file first (a full disk fails here, before anything
    is replaced); then each old file is kept under a backup name (a hard link, needing no space)
    and the temps are renamed into place. If a rename fails, the files already replaced get
    their old content back. Errors name the file they concern.
    """
    temps: list[tuple[Path, str]] = []
    try:
        for path, data in files:
            raw = data.encode("utf-8") if isinstance(data, str) else data
            temps.append((path, _write_temp(path, raw, True)))
    except BaseException:
        for _, tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
    backups: list[str] = []
    replaced: list[tuple[Path, str | None]] = []
    try:
        for path, tmp in temps:
            backup: str | None = None
            try:
                if os.path.lexists(path):
                    backup = f"{tmp.removesuffix('.tmp')}.old.tmp"  # swept like any stale temp
                    os.link(path, backup)
                    backups.append(backup)
                os.replace(tmp, path)
            except OSError as e:
                raise _named(e, path) from None
            replaced.append((path, backup))
    except BaseException:
        for path, backup in reversed(replaced):
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, path)  # the old content, as it was
                else:
                    os.unlink(path)  # it did not exist before
        for leftover in [tmp for _, tmp in temps] + backups:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
        raise
    for backup in backups:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(backup)
    for directory in {path.parent for path, _ in files}:
        _fsync_dir(directory)


# -- files in directories other processes can write (an OCI layout, the user cache) -----------
# Opening by name there must not follow a planted symlink (writing registry bytes into any file
# the user can write) nor block on a planted FIFO: open with O_NOFOLLOW and O_NONBLOCK, then
# check with fstat that what was opened is a plain file.

class UnsafePath(InputError):
    """A path in a shared directory is a link, a FIFO or otherwise not a plain file."""


def _opened_regular(fd: int, path: Path, *, single_link: bool = False) -> int:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (single_link and st.st_nlink > 1):
        os.close(fd)
        kind = "a hard-linked file" if stat.S_ISREG(st.st_mode) else "not a regular file"
        raise UnsafePath(f"{path}: {kind}; refusing to use it")
    return fd


def _open(name: str | Path, flags: int, mode: int = 0o666, dir_fd: int | None = None) -> int:
    """``os.open`` that never follows a link at ``name``; with ``dir_fd``, ``name`` is in it."""
    try:
        return os.open(name, flags | _NOFOLLOW, mode, dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafePath(f"{name}: is a symbolic link; refusing to follow it") from None
        raise


def _reader(fd: int, shown: Path) -> BinaryIO:
    return os.fdopen(_opened_regular(fd, shown), "rb")


def open_read(path: Path) -> BinaryIO:
    """Open a plain file for reading without following a link or blocking on a FIFO."""
    return _reader(_open(path, os.O_RDONLY | os.O_NONBLOCK), path)


def refuse_link(path: Path, what: str) -> None:
    """Raise when ``path`` exists as a symbolic link (a shared directory pointing elsewhere)."""
    if path.is_symlink():
        raise UnsafePath(f"{path}: {what} is a symbolic link; refusing to use it")


# -- a directory held open ---------------------------------------------------------------------
# Checking that no part of a path is a link and then opening it by name leaves a window: another
# process can swap a parent directory for a link in between. A SafeDir is a directory file
# descriptor; names are resolved against it (openat, renameat, unlinkat...), one component at a
# time and never through a link, so a swap of any parent after it was opened changes nothing.


class SafeDir:
    """An open directory; every name is one component, looked up without following links."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd, self.path = fd, path
        st = os.fstat(fd)
        self._identity = (st.st_dev, st.st_ino)

    @classmethod
    def open(cls, path: Path) -> SafeDir:
        """The top directory, as the user named it (a link the user chose is theirs to choose)."""
        return cls(os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)), path)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> SafeDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def at(self, name: str) -> Path:
        """The path of ``name`` here, for messages."""
        return self.path / name

    def subdir(self, name: str, *, create: bool = False, what: str | None = None) -> SafeDir:
        """Open (or create) the directory ``name`` here; a link or a non-directory is refused."""
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=self.fd)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=self.fd)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                kind = "is a symbolic link" if self.is_link(name) else "is not a directory"
                raise UnsafePath(f"{self.at(name)}: {what or name} {kind}; refusing to use it") from None
            raise _named(e, self.at(name)) from None
        return SafeDir(fd, self.at(name))

    def still_at(self, parent: SafeDir, name: str) -> bool:
        """Whether ``parent``'s entry ``name`` is still this very directory (not swapped)."""
        try:
            st = os.stat(name, dir_fd=parent.fd, follow_symlinks=False)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._identity  # a link or another directory differs

    def _lstat(self, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def lexists(self, name: str) -> bool:
        return self._lstat(name) is not None

    def is_link(self, name: str) -> bool:
        st = self._lstat(name)
        return st is not None and stat.S_ISLNK(st.st_mode)

    def plain_file_size(self, name: str) -> int | None:
        """The size of ``name`` when it is a plain file (not a link, FIFO...), else None."""
        st = self._lstat(name)
        return st.st_size if st is not None and stat.S_ISREG(st.st_mode) else None

    def names(self) -> list[str]:
        return os.listdir(self.fd)

    def _open(self, name: str, flags: int, mode: int = 0o666) -> int:
        try:
            return _open(name, flags, mode, dir_fd=self.fd)
        except UnsafePath:
            raise UnsafePath(f"{self.at(name)}: is a symbolic link; refusing to follow it") from None

    def open_read(self, name: str) -> BinaryIO:
        """Like :func:`open_read`, for ``name`` in this directory."""
        return _reader(self._open(name, os.O_RDONLY | os.O_NONBLOCK), self.at(name))

    def open_write(self, name: str, *, append: bool) -> BinaryIO:
        """Append to an existing plain, singly-linked file, or create a new one (``O_EXCL``);
        never through a link or into a file hard-linked elsewhere."""
        if append:
            flags = os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK
            fd = _opened_regular(self._open(name, flags), self.at(name), single_link=True)
        else:
            self.unlink(name)  # whatever was there (a link, a FIFO): removed, not written through
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            fd = _opened_regular(self._open(name, flags, _default_mode()), self.at(name), single_link=True)
        return os.fdopen(fd, "wb")

    def unlink(self, name: str) -> None:
        """Remove ``name`` (a file or a link, never followed) if it is there."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)

    def rmdir(self, name: str) -> None:
        """Remove the directory ``name`` if it is empty; anything else keeps it."""
        with contextlib.suppress(OSError):
            os.rmdir(name, dir_fd=self.fd)

    def replace(self, name: str, dest: SafeDir, dest_name: str) -> None:
        """Rename ``name`` here to ``dest_name`` in ``dest``; a link there is replaced, not followed."""
        os.replace(name, dest_name, src_dir_fd=self.fd, dst_dir_fd=dest.fd)

    def fsync(self) -> None:
        os.fsync(self.fd)

    def write_atomic(self, name: str, data: bytes, *, durable: bool = True) -> None:
        """Like :func:`write_atomic`, for ``name`` in this directory."""
        tmp = _write_temp(self.at(name), data, durable, dir_fd=self.fd)
        try:
            self.replace(tmp, self, name)
        except BaseException as e:
            self.unlink(tmp)
            if isinstance(e, OSError):
                raise _named(e, self.at(name)) from None
            raise
        if durable:
            self.fsync()
