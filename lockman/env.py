"""Every ``LOCKMAN_*`` environment variable, read and checked in one place.

A typo in CI (``LOCKMAN_CONCURRENCY=abc``) must not be silently ignored: every command checks
all of them before it does anything, and a bad value is bad input (exit 2) named the same way
each time: the variable, its value, and what is allowed. An empty value counts as unset.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockman.errors import InputError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Variable:
    name: str
    allowed: str  # what the error message says is allowed
    parse: Callable[[str], Any]  # raises ValueError on a bad value


def _whole(text: str) -> int:
    value = int(text.strip())
    if value < 1:
        raise ValueError(text)
    return value


def _seconds(text: str) -> float:
    value = float(text.strip())
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


def _flag(text: str) -> bool:
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise ValueError(text)


def _directory(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise ValueError(text)
    return path


def _url(text: str) -> str:
    if not text.startswith(("https://", "http://")) or any(c.isspace() for c in text):
        raise ValueError(text)
    return text


def _file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise ValueError(text)
    return path


def _directories(text: str) -> list[Path]:
    return [_directory(p) for p in text.split(os.pathsep) if p]


WHOLE = "a whole number of at least 1"
SECONDS = "a number of seconds, 0 or more"
FLAG = "1, 0, true, false, yes, no, on or off"
DIRECTORY = "a directory (created when missing)"

VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in (
        Variable("LOCKMAN_CONCURRENCY", WHOLE, _whole),
        Variable("LOCKMAN_HTTP2", FLAG, _flag),
        Variable("LOCKMAN_DEBUG", FLAG, _flag),
        Variable("LOCKMAN_RETRY_ATTEMPTS", WHOLE, _whole),
        Variable("LOCKMAN_RETRY_WAIT_INITIAL", SECONDS, _seconds),
        Variable("LOCKMAN_RETRY_WAIT_MAX", SECONDS, _seconds),
        Variable("LOCKMAN_RETRY_JITTER", SECONDS, _seconds),
        Variable("LOCKMAN_RETRY_AFTER_MAX", SECONDS, _seconds),
        Variable("LOCKMAN_LOCK_DIR", DIRECTORY, _directory),
        Variable("LOCKMAN_CACHE_DIR", DIRECTORY, _directory),
        Variable("LOCKMAN_CERTS_D", f"directories separated by {os.pathsep!r}", _directories),
        Variable("LOCKMAN_TUF_URL", "an http:// or https:// URL", _url),
        Variable("LOCKMAN_TUF_ROOT", "an existing file (a TUF root.json)", _file),
        Variable("LOCKMAN_TUF_OFFLINE", FLAG, _flag),
        Variable("LOCKMAN_OSV_URL", "an http:// or https:// URL", _url),
    )
}


def invalid(name: str, value: str, why: str = "") -> InputError:
    """The one message for a bad ``LOCKMAN_*`` value: variable, value, what is allowed."""
    detail = f" ({why})" if why else ""
    allowed = VARIABLES[name].allowed
    return InputError(f"environment variable {name}={value!r} is not valid{detail}: expected {allowed}")


def get(name: str, environ: Any = None) -> Any:
    """The parsed value of ``name``, or None when unset or empty; bad values raise InputError."""
    env = os.environ if environ is None else environ
    text = env.get(name)
    if text is None or text == "":
        return None
    try:
        return VARIABLES[name].parse(text)
    except ValueError:
        raise invalid(name, text) from None


def check_all(environ: Any = None) -> None:
    """Every known variable, so a bad value fails whichever command runs (exit 2)."""
    for name in VARIABLES:
        get(name, environ)
