"""What every command shares: the exit code failures map to; signature options from the
environment; the hooks through which a long run prints while it works."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from lockman import env
from lockman.console import err
from lockman.enforce.options import SignatureOptions
from lockman.errors import EXIT_OK, EXIT_REGISTRY, EXIT_USAGE, EXIT_VERIFY, InputError, LockmanError
from lockman.images.hooks import Hooks
from lockman.progress import progress

if TYPE_CHECKING:
    from lockman.model.insight import Insight
    from lockman.model.vulns import VulnPolicy

CLI_HOOKS = Hooks(tell=err, progress=progress)
"""Notices to stderr as they happen; a progress bar when stderr is a terminal."""


def signature_options(
    flags: SignatureOptions | None = None, timeout: float | None = None
) -> SignatureOptions:
    """The signature flags, with the TUF settings they leave unset taken from ``LOCKMAN_TUF_*``.

    Read here, at the command's edge, so ``lockman.enforce`` depends on its arguments alone;
    ``timeout`` (the global ``--timeout``) bounds each read of the TUF refresh as it does registry reads.
    """
    options = flags or SignatureOptions()
    return replace(
        options,
        tuf_url=options.tuf_url or env.get("LOCKMAN_TUF_URL"),
        tuf_root=options.tuf_root or env.get("LOCKMAN_TUF_ROOT"),
        tuf_offline=options.tuf_offline or bool(env.get("LOCKMAN_TUF_OFFLINE")),
        tuf_timeout=timeout if timeout is not None else options.tuf_timeout,
    )


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


def vuln_policy(config_path: Path) -> VulnPolicy:
    """lockman.toml's ``[vulnerabilities]`` table (next to xcargo.toml); bad values are bad input."""
    import tomlkit

    from lockman.enforce.options import policy_path
    from lockman.fileio import read_utf8
    from lockman.model.vulns import parse_policy

    path = policy_path(config_path)
    text = read_utf8(path)
    if text is None:
        return parse_policy(None, str(path))
    try:
        return parse_policy(tomlkit.parse(text).unwrap().get("vulnerabilities"), str(path))
    except tomlkit.exceptions.ParseError as e:
        raise InputError(f"{path}: invalid TOML ({e})") from None
    except ValueError as e:
        raise InputError(str(e)) from None


def warn_unavailable(insights: Iterable[Insight]) -> None:
    """One warning when OSV could not be asked (the update itself goes on)."""
    for v in (v for i in insights for v in i.vulnerability_results):
        if v.status == "unavailable":
            why = v.notes[0] if v.notes else "no answer"
            err(f"warning: known vulnerabilities not checked: {why}")
            return
