"""What every command shares: the exit code a set of failures maps to."""

from __future__ import annotations

from collections.abc import Iterable

from lockman.console import err
from lockman.errors import EXIT_OK, EXIT_REGISTRY, EXIT_USAGE, EXIT_VERIFY, LockmanError


def worst(codes: Iterable[int]) -> int:
    """Bad input (2), then untrusted content (1), then an unreachable registry (3).

    Content that failed verification outranks a network failure: retrying would not fix it.
    """
    present = set(codes)
    for code in (EXIT_USAGE, EXIT_VERIFY, EXIT_REGISTRY):
        if code in present:
            return code
    return EXIT_OK


def exit_code_for(errors: Iterable[LockmanError]) -> int:
    return worst(e.exit_code for e in errors)


def report_errors(errors: Iterable[LockmanError]) -> int:
    errors = list(errors)
    for e in errors:
        err(f"error: {e}")
    return exit_code_for(errors)


def naming(what: str, e: LockmanError) -> LockmanError:
    """The error, naming the image ``what`` when it does not already (a network error names
    only a host), so a run with several failing images says which ones."""
    return e.with_subject(what)
