"""Where lockman's words go: one line per message on stderr, results on stdout.

Every message passes a redaction step: a secret the run has handled (password, token) is
replaced before it can reach a terminal or a CI log, whatever code path produced the text.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

_secrets: set[str] = set()


def register_secret(value: str) -> None:
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    for s in sorted(_secrets, key=len, reverse=True):
        text = text.replace(s, "***")
    return text


def out(text: str = "") -> None:
    sys.stdout.write(redact(text) + "\n")


def err(text: str) -> None:
    sys.stderr.write(redact(text) + "\n")
    sys.stderr.flush()


def short(digest: str) -> str:
    """``sha256:`` plus 12 hex: enough to tell digests apart at a glance."""
    alg, _, hex_ = digest.partition(":")
    return f"{alg}:{hex_[:12]}"


DEBUG_ENV = "LOCKMAN_DEBUG"


class _ConsoleHandler(logging.Handler):
    """Log records as ``warning: …`` / ``debug: …`` lines on stderr, redacted like the rest."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            err(f"{record.levelname.lower()}: {record.getMessage()}")
        except Exception:  # a log line must never break a run
            self.handleError(record)


def configure_logging() -> None:
    """Warnings always; debug detail (credential lookups, mirrors, proxies) with LOCKMAN_DEBUG=1."""
    logger = logging.getLogger("lockman")
    if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
        logger.addHandler(_ConsoleHandler())
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)


def use_colour(stream: TextIO | None = None) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org)."""
    stream = sys.stdout if stream is None else stream
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
