"""Content digests: ``<algorithm>:<hex>``, the one place their grammar and their arithmetic live.

Pure: no I/O. The grammar is the OCI image spec's and distribution's (go-digest):

    digest     := algorithm ":" encoded
    algorithm  := component ( [+._-] component )*      component := [A-Za-z][A-Za-z0-9]*
    encoded    := 64 lowercase hex for sha256 | 128 lowercase hex for sha512

Only the registered algorithms are accepted: an unknown one could never be verified, so it is an
error rather than something to pass along. Lowercase hex only: ``sha256:ABC…`` names the same
bytes but is not the string a registry, a lockfile or a Renovate PR compares against.

:class:`Digest` is a ``str`` subclass whose constructor validates: every instance is well formed,
and it still goes wherever a digest string went (lockfile, JSON, URLs, comparisons with plain
strings), so code can move to it one expression at a time.
"""

from __future__ import annotations

import hashlib
import re

from lockman.errors import DigestMismatch, InvalidReference

DIGEST_RE = re.compile(r"(?P<alg>[A-Za-z][A-Za-z0-9]*(?:[+._-][A-Za-z][A-Za-z0-9]*)*):(?P<hex>.+)")
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_LOWER_HEX = re.compile(r"[0-9a-f]+")


def shorten(text: str, n: int = 12, *, prefix: bool = True) -> str:
    """A digest's text cut to ``n`` hex characters for display: ``sha256:`` plus ``n`` hex, or the
    hex alone when ``prefix`` is false.

    12 with the algorithm is what lockman prints to tell digests apart; 7 without it is what
    Renovate (and so lockman's commit messages and PR bodies) shows. Text, not a :class:`Digest`:
    printing never refuses what it is handed (a report may show a documented example or an
    edited lockfile value), so nothing is validated here.
    """
    algorithm, _, hex_ = text.partition(":")
    return f"{algorithm}:{hex_[:n]}" if prefix else hex_[:n]


def digest_problem(text: str) -> str | None:
    """What is wrong with ``text`` as a digest, or None when it is a registered algorithm with good hex.

    The reason alone, so a caller parsing a larger text (``name@digest``) can word the error for it.
    """
    m = DIGEST_RE.fullmatch(text)
    if not m:
        return "expected 'sha256:<64 hex>'"
    alg, hex_ = m.group("alg"), m.group("hex")
    if alg not in DIGEST_HEX_LENGTHS:
        return f"unsupported digest algorithm {alg!r} (sha256 and sha512 are supported)"
    want = DIGEST_HEX_LENGTHS[alg]
    if len(hex_) != want or not _LOWER_HEX.fullmatch(hex_):
        return f"{alg} needs {want} lowercase hex characters"
    return None


class Digest(str):
    """A well-formed content digest such as ``sha256:e3b0c4…``; equal to its plain string."""

    __slots__ = ()

    def __new__(cls, text: str, *, what: str = "digest") -> Digest:
        if type(text) is cls:
            return text
        why = digest_problem(text) if isinstance(text, str) else "expected 'sha256:<64 hex>'"
        if why is not None:
            raise InvalidReference(f"invalid {what} {text!r}: {why}")
        return super().__new__(cls, text)

    @classmethod
    def parse(cls, text: str, *, what: str = "digest") -> Digest:
        """``text`` as a Digest; :class:`InvalidReference` naming ``what`` and the problem if malformed."""
        return cls(text, what=what)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of ``data`` under a registered ``algorithm``."""
        if algorithm not in DIGEST_HEX_LENGTHS:
            raise InvalidReference(
                f"unsupported digest algorithm {algorithm!r} (sha256 and sha512 are supported)"
            )
        return super().__new__(cls, f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}")

    @property
    def algorithm(self) -> str:
        return self.partition(":")[0]

    @property
    def hex(self) -> str:
        return self.partition(":")[2]

    def short(self, n: int = 12, *, prefix: bool = True) -> str:
        """The first ``n`` hex characters, after ``sha256:`` unless ``prefix`` is false."""
        return shorten(self, n, prefix=prefix)

    def verify(self, data: bytes) -> bool:
        """Whether ``data`` hashes to this digest (under this digest's algorithm)."""
        return Digest.of(data, self.algorithm) == self

    def check(self, data: bytes, subject: str | None = None) -> None:
        """Raise :class:`DigestMismatch` (about ``subject``) unless ``data`` hashes to this digest."""
        actual = Digest.of(data, self.algorithm)
        if actual != self:
            raise DigestMismatch(f"digest mismatch: expected {self}, got {actual}", subject=subject)
