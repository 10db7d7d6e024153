"""Where lockman's words go: one line per message on stderr, results on stdout.

Every message passes a redaction step: a secret the run has handled (password, token) is
replaced before it can reach a terminal or a CI log, whatever code path produced the text.
Then escaping: text a registry wrote (an error code, a certificate identity, a media type in a
message) cannot move the cursor, retitle the window, hide text with bidi controls, forge a
second stderr line or crash the write with a lone surrogate. :func:`one_line` (stderr) shows
control characters as ``\\xNN``; :func:`terminal_safe` (stdout, where JSON goes too) as
``\\uXXXX``, valid inside JSON strings, and lets only lockman's own colour codes pass.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import TextIO

from lockman.model.digest import shorten

# Invisible or unwritable beyond C0: DEL, C1 controls, bidi embedding/override/isolate marks,
# lone surrogates. _UNSAFE group 1: the exact SGR colour codes lockman itself writes (report._c).
_INVISIBLE = r"\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(rf"(\x1b\[(?:0|1|2|31|32)m)|([\x00-\x08\x0b-\x1f{_INVISIBLE}])")
_CONTROL = re.compile(rf"[\x00-\x1f{_INVISIBLE}]")


def terminal_safe(text: str) -> str:
    """``text`` with every character that could control a terminal shown as ``\\uXXXX``.

    Newlines and tabs stay (reports are multi-line); so do lockman's own colour codes.
    """
    return _UNSAFE.sub(lambda m: m.group(1) or f"\\u{ord(m.group(2)):04x}", text)


def one_line(text: str) -> str:
    """Control characters (terminal escapes, newlines that would forge a second line) from
    registry or file content shown as ``\\xNN`` (``\\uXXXX`` beyond 0xff): a stderr message
    stays one honest line."""
    return _CONTROL.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text
    )


_secrets: set[str] = set()


def register_secret(value: str) -> None:
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    for s in sorted(_secrets, key=len, reverse=True):
        text = text.replace(s, "***")
    return text


def out(text: str = "") -> None:
    sys.stdout.write(terminal_safe(redact(text)) + "\n")


def err(text: str) -> None:
    """One line on stderr; under ``--quiet`` only ``error…`` lines get through."""
    if _verbosity == QUIET and not text.startswith("error"):
        return
    sys.stderr.write(one_line(redact(text)) + "\n")
    sys.stderr.flush()


def info(text: str) -> None:
    """A status line on stdout (``xcargo.lock: ok …``) that ``--quiet`` leaves out.

    Output a command exists to produce (digests, reports in JSON or Markdown, diffs) goes
    through :func:`out` and is always printed.
    """
    if _verbosity != QUIET:
        out(text)


QUIET, NORMAL, VERBOSE = 0, 1, 2
_verbosity = NORMAL


def set_verbosity(*, verbose: bool = False, quiet: bool = False) -> None:
    """``-q``: errors only; ``-v``: debug lines (requests, credential sources, retries) too."""
    global _verbosity
    _verbosity = QUIET if quiet else VERBOSE if verbose else NORMAL


def verbosity() -> int:
    return _verbosity


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 image``, ``2 images``: every count lockman prints goes through here."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def short(digest: str) -> str:
    """``sha256:`` plus 12 hex: enough to tell digests apart at a glance."""
    return shorten(digest)


DEBUG_ENV = "LOCKMAN_DEBUG"


class _ConsoleHandler(logging.Handler):
    """Log records as ``warning: …`` / ``debug: …`` lines on stderr, redacted like the rest."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            err(f"{record.levelname.lower()}: {record.getMessage()}")
        except Exception:  # a log line must never break a run
            self.handleError(record)


def _install_handler() -> logging.Logger:
    logger = logging.getLogger("lockman")
    if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
        logger.addHandler(_ConsoleHandler())
    return logger


def configure_logging() -> None:
    """Warnings by default; errors only with ``-q``; debug detail (requests, retries, credential
    sources, mirrors, proxies) with ``-v`` or ``LOCKMAN_DEBUG=1``."""
    logger = _install_handler()
    from lockman import env

    debug = _verbosity == VERBOSE or bool(env.get(DEBUG_ENV))
    level = logging.ERROR if _verbosity == QUIET else logging.DEBUG if debug else logging.WARNING
    logger.setLevel(level)


def use_colour(stream: TextIO | None = None) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org)."""
    stream = sys.stdout if stream is None else stream
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
