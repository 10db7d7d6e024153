"""Finding the programs lockman starts: docker, podman, git, ``docker-credential-*`` helpers.

One lookup for all of them, with Go's ``exec.LookPath`` rule that docker and podman follow
(``exec.ErrDot``, Go 1.19): a program that PATH finds through an empty entry, ``.`` or any other
relative directory is refused, not run. Otherwise a ``docker-credential-desktop`` or ``git``
committed to the repository being checked would run as the user, and a credential helper's
answer would be sent to the registry. ``shutil.which`` and ``subprocess`` both honour such
entries, so nothing in lockman starts a program by bare name: it runs the absolute path found here.
"""

from __future__ import annotations

import os
import stat

from lockman.errors import InputError


class RelativeProgram(InputError):
    """PATH finds the program relative to the current directory (Go's ``exec.ErrDot``)."""


def _executable(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and os.access(path, os.X_OK)


def find(name: str) -> str | None:
    """The absolute path of ``name`` on PATH, None when no PATH entry has it.

    Like Go's ``LookPath``, the first entry that has it decides: when that entry is relative
    (``""``, ``.``, ``bin``) :class:`RelativeProgram` is raised rather than looking further, so a
    planted program is reported, never silently stepped over nor run. ``name`` is a program name:
    one with a ``/`` (a credential helper named ``../x`` in config.json) is refused.
    """
    if not name or "/" in name or name in (".", ".."):
        raise InputError(f"{name!r}: not a program name (no path allowed)")
    for directory in os.get_exec_path():
        candidate = os.path.join(directory or ".", name)
        if not _executable(candidate):
            continue
        if not os.path.isabs(directory):
            raise RelativeProgram(
                f"{name}: PATH finds it in {directory or '(empty entry)'!s}, relative to the current"
                f" directory ({os.path.abspath(candidate)}); refusing to run it, as docker and podman"
                " do: put an absolute directory in PATH"
            )
        return candidate
    return None
