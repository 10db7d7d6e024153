"""Command-line wiring only: flags → command functions → exit codes.

Command modules (and with them httpx, tomlkit, cryptography) are imported inside each command,
so ``lockman --help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

from cyclopts import App, Parameter, validators

from lockman import __version__
from lockman.errors import EXIT_REGISTRY, EXIT_USAGE, LockmanError

app = App(
    name="lockman",
    help="Pin the container images of an xcargo project to content digests, and verify them.",
    version=__version__,
    version_flags=["--version"],
)

ConfigOpt = Annotated[
    Path, Parameter(name=["--config", "-c"], help="xcargo.toml to read; xcargo.lock sits next to it.")
]
# Every command that talks to a registry takes `timeout: TimeoutOpt = DEFAULT_TIMEOUT`.
DEFAULT_TIMEOUT = 30.0
TimeoutOpt = Annotated[
    float,
    Parameter(
        name="--timeout",
        help="Seconds each registry request may take; retries stop after a few multiples of it.",
        validator=validators.Number(gt=0, lte=86400),
    ),
]


def _run(factory: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run an async command; every LockmanError becomes one stderr line and its exit code."""
    from lockman.console import err

    try:
        return asyncio.run(factory())
    except LockmanError as e:
        err(f"error: {e}")
        return e.exit_code
    except KeyboardInterrupt:
        err("error: interrupted")
        return 130
    except OSError as e:
        err(f"error: {e.filename or ''}: {e.strerror or e}")
        return EXIT_REGISTRY


@app.command
def update(
    *,
    config: ConfigOpt = Path("xcargo.toml"),
    check: Annotated[bool, Parameter(help="Change nothing; exit 1 if the lock is not current.")] = False,
    dry_run: Annotated[bool, Parameter(help="Show what would change; write nothing.")] = False,
    keep_going: Annotated[
        bool, Parameter(help="When some images fail, still record those that resolved (exit 3).")
    ] = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
) -> int:
    """Resolve every image xcargo.toml uses and record its digest in xcargo.lock."""
    from lockman.commands import update as cmd

    return _run(lambda: cmd.run(config, check=check, dry_run=dry_run, timeout=timeout, keep_going=keep_going))


@app.command
def verify(
    *,
    config: ConfigOpt = Path("xcargo.toml"),
    offline: Annotated[
        bool, Parameter(help="Only check that the lock matches the config; no network.")
    ] = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
) -> int:
    """Check the lock against the config and every locked digest against its registry."""
    from lockman.commands import verify as cmd

    return _run(lambda: cmd.run(config, offline=offline, timeout=timeout))


@app.command
def resolve(
    references: Annotated[
        list[str],
        Parameter(help="Image references, or - to read them from stdin.", allow_leading_hyphen=True),
    ],
    /,
    *,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    concurrency: Annotated[int, Parameter(help="Parallel requests per registry.")] = 16,
) -> int:
    """Print REF@sha256:… for each reference, in input order."""
    from lockman.commands import resolve as cmd

    texts: list[str] = []
    for r in references:
        if r == "-":
            texts.extend(line.strip() for line in sys.stdin if line.strip() and not line.startswith("#"))
        else:
            texts.append(r)
    if concurrency < 1:
        from lockman.console import err

        err("error: --concurrency must be at least 1")
        return EXIT_USAGE
    return _run(lambda: cmd.run(texts, timeout=timeout, concurrency=concurrency))


def main(argv: list[str] | None = None) -> int:
    """Entry point: usage errors exit 2 with one line, as every other bad input does."""
    from cyclopts.exceptions import CycloptsError

    tokens = sys.argv[1:] if argv is None else argv
    try:
        command, bound, _ = app.parse_args(tokens, exit_on_error=False, print_error=False)
    except CycloptsError as e:
        from lockman.console import err

        msg = " ".join(str(e).split())
        err(f"error: {msg} (see `lockman --help`)")
        return EXIT_USAGE
    result = command(*bound.args, **bound.kwargs)
    return result if isinstance(result, int) else 0


def entry() -> None:
    sys.exit(main())
