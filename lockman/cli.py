"""Command-line wiring only: flags → command functions → exit codes.

Command modules (and with them httpx, tomlkit, cryptography) are imported inside each command,
so ``lockman --help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, Literal

from cyclopts import App, Parameter, validators

from lockman import __version__
from lockman.enforce.options import SignatureOptions
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
NoCacheOpt = Annotated[
    bool, Parameter(name="--no-cache", negative="", help="Neither read nor fill the local manifest cache.")
]
FormatOpt = Annotated[
    Literal["text", "json", "markdown"],
    Parameter(name="--format", help="Report format: text for people, json for bots, markdown for PR bodies."),
]
CommitMessageOpt = Annotated[
    bool,
    Parameter(
        name="--commit-message", negative="", help="Print only a commit message / PR title for the change."
    ),
]
SignatureOpts = Annotated[SignatureOptions, Parameter(name="*", group="Signatures (cosign's flags)")]
NO_SIGNATURE_FLAGS = SignatureOptions()


def _run(factory: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run an async command; every LockmanError becomes one stderr line and its exit code."""
    import asyncio

    return _sync(lambda: asyncio.run(factory()))


def _sync(call: Callable[[], int]) -> int:
    """Run a command; every LockmanError becomes one stderr line and its exit code."""
    from lockman.console import configure_logging, err

    configure_logging()
    try:
        return call()
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
    images: Annotated[
        list[str] | None,
        Parameter(help="Update only these images: name, name:tag or target triple. Default: all."),
    ] = None,
    /,
    *,
    config: ConfigOpt = Path("xcargo.toml"),
    check: Annotated[bool, Parameter(help="Change nothing; exit 1 if the lock is not current.")] = False,
    dry_run: Annotated[bool, Parameter(help="Show what would change; write nothing.")] = False,
    keep_going: Annotated[
        bool, Parameter(help="When some images fail, still record those that resolved (exit 3).")
    ] = False,
    platform: Annotated[
        str | None,
        Parameter(help="Lock this platform's manifest (os/arch[/variant]) instead of the index; all: undo."),
    ] = None,
    repin: Annotated[
        bool, Parameter(help="Move digest pins in xcargo.toml whose tag has moved (and lock them).")
    ] = False,
    fmt: FormatOpt = "text",
    commit_message: CommitMessageOpt = False,
    no_insight: Annotated[
        bool,
        Parameter(negative="", help="Do not look inside moved images (labels, layers, SBOM): the bare diff."),
    ] = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    signatures: SignatureOpts = NO_SIGNATURE_FLAGS,
) -> int:
    """Resolve every image xcargo.toml uses and record its digest in xcargo.lock."""
    from lockman.commands import update as cmd

    return _run(
        lambda: cmd.run(
            config,
            check=check,
            dry_run=dry_run,
            timeout=timeout,
            images=images or (),
            repin=repin,
            fmt=fmt,
            commit_message=commit_message,
            signatures=signatures,
            platform=platform,
            keep_going=keep_going,
            insight=not no_insight,
        )
    )


@app.command
def verify(
    *,
    config: ConfigOpt = Path("xcargo.toml"),
    offline: Annotated[
        bool, Parameter(help="Only check that the lock matches the config; no network.")
    ] = False,
    deep: Annotated[
        bool, Parameter(help="Also stream and hash every config and layer blob (nothing is stored).")
    ] = False,
    no_cache: NoCacheOpt = False,
    fmt: FormatOpt = "text",
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    signatures: SignatureOpts = NO_SIGNATURE_FLAGS,
) -> int:
    """Check the lock against the config, every locked digest against its registry, and
    signatures where a policy (flags or lockman.toml) asks for them."""
    from lockman.commands import verify as cmd

    return _run(
        lambda: cmd.run(
            config,
            offline=offline,
            timeout=timeout,
            signatures=signatures,
            fmt=fmt,
            deep=deep,
            no_cache=no_cache,
        )
    )


@app.command
def diff(
    old: Annotated[
        str, Parameter(help="Old lockfile: a path, - for stdin, or git:REV.", allow_leading_hyphen=True)
    ],
    new: Annotated[
        str | None,
        Parameter(help="New lockfile (default: xcargo.lock next to --config).", allow_leading_hyphen=True),
    ] = None,
    /,
    *,
    config: ConfigOpt = Path("xcargo.toml"),
    fmt: FormatOpt = "text",
    commit_message: CommitMessageOpt = False,
    exit_code: Annotated[
        bool, Parameter(name="--exit-code", negative="", help="Exit 1 when the lockfiles differ.")
    ] = False,
    insight: Annotated[
        bool,
        Parameter(negative="", help="Ask the registries what changed inside moved images (else offline)."),
    ] = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,  # requests only with --insight
) -> int:
    """Show which images moved between two lockfiles (e.g. `lockman diff git:HEAD xcargo.lock`)."""
    from lockman.commands import diff as cmd

    return _sync(
        lambda: cmd.run(
            old,
            new,
            config_path=config,
            fmt=fmt,
            commit_message=commit_message,
            exit_code=exit_code,
            insight=insight,
            timeout=timeout,
        )
    )


@app.command
def pull(
    images: Annotated[list[str], Parameter(help="Locked images to pull (default: all).")] = [],  # noqa: B006
    /,
    *,
    config: ConfigOpt = Path("xcargo.toml"),
    oci_layout: Annotated[
        Path | None, Parameter(help="Write an OCI image layout here instead of using an engine.")
    ] = None,
    platform: Annotated[
        str | None, Parameter(help="Only this platform of multi-platform images (os/arch[/variant]).")
    ] = None,
    runtime: Annotated[
        str | None,
        Parameter(help="docker, podman or auto (default: [container].runtime in xcargo.toml)."),
    ] = None,
    no_cache: NoCacheOpt = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    signatures: SignatureOpts = NO_SIGNATURE_FLAGS,
) -> int:
    """Fetch exactly the locked images, verifying every manifest and blob by digest, and
    signatures where a policy (flags or lockman.toml) asks for them."""
    from lockman.commands import pull as cmd

    return _run(
        lambda: cmd.run(
            config,
            list(images),
            oci_layout=oci_layout,
            platform=platform,
            runtime_name=runtime,
            no_cache=no_cache,
            timeout=timeout,
            signatures=signatures,
        )
    )


@app.command
def pin(
    *,
    config: ConfigOpt = Path("xcargo.toml"),
    write: Annotated[
        bool, Parameter(negative="", help="Rewrite xcargo.toml; without it, show the diff.")
    ] = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,  # no requests here; accepted so scripts can pass it everywhere
) -> int:
    """Write the locked digests into xcargo.toml (image = "name:tag@sha256:…"), keeping comments."""
    from lockman.commands import pin as cmd

    return _sync(lambda: cmd.run(config, write=write))


@app.command
def completion(shell: Literal["bash", "zsh", "fish", "powershell"], /) -> int:
    """Print a shell completion script for SHELL (see README, "Shell completion")."""
    sys.stdout.write(app.generate_completion(prog_name="lockman", shell=shell))
    return 0


@app.command
def resolve(
    references: Annotated[
        list[str],
        Parameter(help="Image references, or - to read them from stdin.", allow_leading_hyphen=True),
    ],
    /,
    *,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    concurrency: Annotated[
        int | None,
        Parameter(help="Parallel requests per registry (default: $LOCKMAN_CONCURRENCY, else 16)."),
    ] = None,
) -> int:
    """Print REF@sha256:… for each reference, in input order."""
    from lockman.commands import resolve as cmd

    texts: list[str] = []
    for r in references:
        if r == "-":
            texts.extend(line.strip() for line in sys.stdin if line.strip() and not line.startswith("#"))
        else:
            texts.append(r)
    if concurrency is not None and concurrency < 1:
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
