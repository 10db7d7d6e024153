"""Error types that map one-to-one onto lockman's documented exit codes.

Every failure a user can cause or meet is one of these; the CLI prints ``str(error)`` as a
single line on stderr and exits with ``error.exit_code``. Anything else is a bug.

The class is the kind of failure; callers branch on ``isinstance`` and reports take
``kind`` from the class, never from the text. Instances carry the facts as fields
(``subject``, ``where``, ``registry``, ``status``, ``code``, ``attempts``), and the one line is rendered
from them (as go-containerregistry's ``transport.Error`` does)::

    LockmanError                  exit 2  the base; also any failure without a kind of its own
    ├── InputError                exit 2  bad input: reference, config, lockfile, flag
    │   └── InvalidReference              not the distribution grammar
    ├── VerificationError         exit 1  content that cannot be trusted   kind "unverifiable"
    │   ├── DigestMismatch                bytes do not hash to the digest  "digest-mismatch"
    │   ├── DescriptorMismatch            not the media type or size said  "media-type-mismatch"
    │   │   └── SizeMismatch              not the size its descriptor says
    │   ├── TooLarge                      over a size limit                "too-large"
    │   ├── UnsupportedMediaType          a manifest type lockman refuses  "unsupported-media-type"
    │   ├── NotServed                     a locked digest answered 404     "not-served"
    │   └── VulnerabilityRefused          a known vulnerability the policy refuses  "vulnerability"
    └── RegistryError             exit 3  unreachable, refused, failing    "registry"
        ├── NotFound                      the registry does not have it    "not-served"
        └── AuthError                     authentication failed/required   "registry"
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, Self

EXIT_OK = 0
EXIT_VERIFY = 1
EXIT_USAGE = 2
EXIT_REGISTRY = 3


class LockmanError(Exception):
    """Base class; the exit code says which kind of failure it is.

    ``message`` is what went wrong; the line starts with the subject (the image or file) and
    the registry when they are set (``registry: image: message``, or ``image: message`` when
    the image's name shows its registry), and ends with the attempts when there were retries.
    ``where`` is the place inside the subject (``manifests[3]``), printed after it: pure code
    that checks a document knows the place but not whose document it is, so it raises with
    ``where`` alone and the caller that knows adds the subject (:meth:`with_subject`).
    ``in_message=True`` says the message itself names them (it reads better that way).
    """

    exit_code: ClassVar[int] = EXIT_USAGE
    kind: ClassVar[str] = "error"

    def __init__(
        self,
        message: str = "",
        *,
        subject: str | None = None,
        where: str | None = None,
        registry: str | None = None,
        status: int | None = None,
        code: str | None = None,
        attempts: int = 1,
        in_message: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.subject = subject  # the image (familiar reference) or file the error is about
        self.where = where  # the place inside the subject: manifests[3], config, (layer sha256:…)
        self.registry = registry  # the registry that answered, or could not be reached
        self.status = status  # the HTTP status, when a response said it
        self.code = code  # the registry's error code (MANIFEST_UNKNOWN, DENIED, ...)
        self.attempts = attempts  # requests made before giving up
        self._head: tuple[str, ...] = () if in_message else _head(_place(subject, where), registry)

    def __str__(self) -> str:
        note = f" (gave up after {self.attempts} attempts)" if self.attempts > 1 else ""
        return ": ".join((*self._head, self.message + note))

    def names(self, subject: str) -> bool:
        """Whether the error is already about ``subject`` (an image with a digest is about the
        image's name too)."""
        return self.subject is not None and subject in self.subject

    def with_subject(self, subject: str) -> Self:
        """The error naming ``subject`` in front, unless it already names it (a network error
        names only a host); a copy, as one error may be shared by several callers."""
        if self.names(subject):
            return self
        named = self._copy()
        named.subject = subject
        if self.subject is None and self.where is not None and self._head:  # placed, not named
            named._head = _head(_place(subject, self.where), self.registry)
        else:
            named._head = (subject, *self._head)
        return named

    def _copy(self) -> Self:
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.args = self.args
        return new


@contextmanager
def about(subject: str) -> Iterator[None]:
    """Errors raised inside the block name ``subject`` (see :meth:`LockmanError.with_subject`):
    the one place that knows the image wraps the pure code that does not."""
    try:
        yield
    except LockmanError as e:
        raise e.with_subject(subject) from None


def _place(subject: str | None, where: str | None) -> str | None:
    """``image manifests[3]``: the subject, then the place inside it."""
    if where is None:
        return subject
    return where if subject is None else f"{subject} {where}"


def _head(subject: str | None, registry: str | None) -> tuple[str, ...]:
    if subject is None:
        return () if registry is None else (registry,)
    if registry is None or subject.startswith(f"{registry}/"):
        return (subject,)
    return (registry, subject)


class InputError(LockmanError):
    """Bad input: a malformed reference, config, lockfile or flag (exit 2)."""

    exit_code = EXIT_USAGE


class InvalidReference(InputError):
    """An image reference that does not follow the distribution grammar."""


class VerificationError(LockmanError):
    """Content that cannot be trusted: digest mismatch, bad signature, drift (exit 1)."""

    exit_code = EXIT_VERIFY
    kind = "unverifiable"


class DigestMismatch(VerificationError):
    """Bytes that do not hash to the digest they were asked for or announced under."""

    kind = "digest-mismatch"


class DescriptorMismatch(VerificationError):
    """Content that is not the media type or size its descriptor (or Content-Type) says."""

    kind = "media-type-mismatch"


class SizeMismatch(DescriptorMismatch):
    """Content that is not the size its descriptor says: like a digest mismatch, tampering."""


class TooLarge(VerificationError):
    """Content over a size limit (declared or sent): refused rather than buffered."""

    kind = "too-large"


class UnsupportedMediaType(VerificationError):
    """A manifest of a type lockman does not accept (Docker schema 1, unknown types)."""

    kind = "unsupported-media-type"


class NotServed(VerificationError):
    """A locked digest (manifest or blob) the registry answers 404 for: what the lock pins is
    gone from it, a verification failure in ``verify`` and ``pull`` alike (exit 1). A network
    failure or a 5xx stays a :class:`RegistryError` (exit 3)."""

    kind = "not-served"

    @classmethod
    def of(cls, e: NotFound) -> NotServed:
        """The registry's 404 (NotFound), as a failure of the locked content."""
        out = cls.__new__(cls)
        out.__dict__.update(e.__dict__)  # the same facts and the same line; another kind
        out.args = e.args
        return out


class VulnerabilityRefused(VerificationError):
    """A new digest introduces a known vulnerability lockman.toml's ``[vulnerabilities]`` refuses."""

    kind = "vulnerability"


class RegistryError(LockmanError):
    """The registry could not be reached, refused us, or kept failing (exit 3)."""

    exit_code = EXIT_REGISTRY
    kind = "registry"


class NotFound(RegistryError):
    """The registry does not have the manifest, blob (or the repository)."""

    kind = "not-served"


class AuthError(RegistryError):
    """Authentication failed or is required (exit 3). Never carries the secret."""
