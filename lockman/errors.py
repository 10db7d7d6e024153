"""Error types that map one-to-one onto lockman's documented exit codes.

Every failure a user can cause or meet is one of these; the CLI prints ``str(error)`` as a
single line on stderr and exits with ``error.exit_code``. Anything else is a bug.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_VERIFY = 1
EXIT_USAGE = 2
EXIT_REGISTRY = 3


class LockmanError(Exception):
    """Base class; the exit code says which kind of failure it is."""

    exit_code = EXIT_USAGE


class InputError(LockmanError):
    """Bad input: a malformed reference, config, lockfile or flag (exit 2)."""

    exit_code = EXIT_USAGE


class InvalidReference(InputError):
    """An image reference that does not follow the distribution grammar."""


class VerificationError(LockmanError):
    """Content that cannot be trusted: digest mismatch, bad signature, drift (exit 1)."""

    exit_code = EXIT_VERIFY


class RegistryError(LockmanError):
    """The registry could not be reached, refused us, or kept failing (exit 3)."""

    exit_code = EXIT_REGISTRY


class AuthError(RegistryError):
    """Authentication failed or is required (exit 3). Never carries the secret."""
