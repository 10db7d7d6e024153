"""Where lockman's words go: one line per message on stderr, results on stdout.

Every message passes a redaction step: a secret the run has handled (password, token) is
replaced before it can reach a terminal or a CI log, whatever code path produced the text.
Then :func:`terminal_safe`: text a registry wrote (an error code, a certificate identity, a
media type in a message) cannot move the cursor, retitle the window, hide text with bidi
controls or crash the write with a lone surrogate. Control characters are shown as ``\\uXXXX``
(valid inside JSON strings too); only lockman's own colour codes pass.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import TextIO

# C0 controls but tab and newline, DEL, C1 controls, bidi embedding/override/isolate marks,
# lone surrogates. Group 1: the exact SGR colour codes lockman itself writes (report._c).
_INVISIBLE = r"\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(rf"(\x1b\[(?:0|1|2|31|32)m)|([\x00-\x08\x0b-\x1f{_INVISIBLE}])")
_UNSAFE_LINE = re.compile(rf"()([\x00-\x1f{_INVISIBLE}])")


def _escape(m: re.Match[str]) -> str:
    return m.group(1) or f"\\u{ord(m.group(2)):04x}"


def terminal_safe(text: str, *, one_line: bool = False) -> str:
    """``text`` with every character that could control a terminal shown as ``\\uXXXX``.

    ``one_line`` also escapes newlines and drops the colour allowance: for a message that must
    stay one line (an error), or a single field.
    """
    return (_UNSAFE_LINE if one_line else _UNSAFE).sub(_escape, text)


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
    """One line on stderr, whatever the text holds (a newline in it is shown, not obeyed)."""
    sys.stderr.write(terminal_safe(redact(text), one_line=True) + "\n")
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
