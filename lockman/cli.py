"""Command-line wiring only: flags → command functions → exit codes.

Command modules (and with them httpx, tomlkit, cryptography) are imported inside each command,
so ``lockman --help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from cyclopts import App, Parameter, validators

from lockman import __version__
from lockman.enforce.options import SignatureOptions
from lockman.errors import EXIT_REGISTRY, EXIT_USAGE, LockmanError

# Options docker, git and skopeo users put before the command: the value-taking ones, then flags.
GLOBAL_WITH_VALUE = ("--config", "-c", "--timeout", "--insecure-registry")
GLOBAL_FLAGS = ("--verbose", "-v", "--quiet", "-q")

app = App(
    name="lockman",
    help="Pin the container images of an xcargo project to content digests, and verify them.\n\n"
    "Options that may also come before the command (lockman --config ci/xcargo.toml update), for "
    "the commands that take them:\n"
    "  -c, --config PATH                 xcargo.toml to read\n"
    "  --timeout SECONDS                 how long each registry request may take\n"
    "  --insecure-registry HOST[:PORT]   allow plain HTTP / unverified TLS for it\n"
    "  -v, --verbose / -q, --quiet       say more / only errors\n\n"
    "lockman COMMAND --help lists each command's options.",
    version=__version__,
    version_flags=["--version"],
    # Plain text: rendering help as Markdown would import rich.markdown, markdown-it and pygments,
    # about a third of `lockman --help`'s time.
    help_format="plaintext",
)

ConfigOpt = Annotated[
    Path, Parameter(name=["--config", "-c"], help="xcargo.toml to read; xcargo.lock sits next to it.")
]
# Every command that talks to a registry takes `timeout: TimeoutOpt = DEFAULT_TIMEOUT`.
DEFAULT_TIMEOUT = 30.0
TIMEOUT_RANGE = validators.Number(gt=0, lte=86400)  # seconds: more than nothing, at most a day
TimeoutOpt = Annotated[
    float,
    Parameter(
        name="--timeout",
        help="Seconds each registry request may take; retries stop after a few multiples of it.",
        validator=TIMEOUT_RANGE,
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
# diff and pin make no requests; they take --timeout so scripts can pass it to every command.
UnusedTimeoutOpt = Annotated[
    float,
    Parameter(
        name="--timeout",
        help="Accepted for scripts that pass it to every command; this command makes no requests.",
        validator=TIMEOUT_RANGE,
    ),
]
InsecureOpt = Annotated[
    tuple[str, ...],
    Parameter(
        name="--insecure-registry",
        help="Allow plain HTTP and unverified TLS for this registry, this run only; give the option once "
        "per registry.",
        metavar="HOST[:PORT]",
        show_default=False,
        negative="",
    ),
]


@dataclass(frozen=True)
class Output:
    """How much lockman says on stderr (and of its status lines on stdout)."""

    verbose: Annotated[bool, Parameter(name=["--verbose", "-v"], negative="")] = False
    """Also print requests, credential sources and retries on stderr."""
    quiet: Annotated[bool, Parameter(name=["--quiet", "-q"], negative="")] = False
    """Print errors only (and what the command exists to print: digests, JSON, diffs)."""


OutputOpts = Annotated[Output, Parameter(name="*", group="Output")]
NORMAL_OUTPUT = Output()


def _run(
    factory: Callable[[], Coroutine[Any, Any, int]],
    output: Output = NORMAL_OUTPUT,
    insecure: tuple[str, ...] = (),
) -> int:
    """Run an async command; every LockmanError becomes one stderr line and its exit code."""
    import asyncio

    return _sync(lambda: asyncio.run(factory()), output, insecure)


def _sync(call: Callable[[], int], output: Output = NORMAL_OUTPUT, insecure: tuple[str, ...] = ()) -> int:
    """Run a command; every LockmanError becomes one stderr line and its exit code.

    Settings for the whole run (verbosity, ``LOCKMAN_*`` checks, ``--insecure-registry``) are
    applied here, before the command reads any file.
    """
    from lockman.console import configure_logging, err, set_verbosity

    if output.verbose and output.quiet:
        err("error: --verbose and --quiet are alternatives: give one")
        return EXIT_USAGE
    set_verbosity(verbose=output.verbose, quiet=output.quiet)
    try:
        from lockman import env
        from lockman.registry import hosts

        env.check_all()  # a bad LOCKMAN_* value fails every command the same way
        configure_logging()
        hosts.allow_insecure_for_run(insecure)
        from lockman.launch import command_starting

        command_starting()
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


@app.command(usage="Usage: lockman update [OPTIONS] [IMAGES...]")
def update(
    images: Annotated[
        list[str] | None,
        Parameter(
            help="Update only these images: name, name:tag, name@digest or target triple. Default: all."
        ),
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
    no_vulnerabilities: Annotated[
        bool,
        Parameter(negative="", help="Do not look the SBOMs' packages up in OSV (known vulnerabilities)."),
    ] = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    insecure_registry: InsecureOpt = (),
    signatures: SignatureOpts = NO_SIGNATURE_FLAGS,
    output: OutputOpts = NORMAL_OUTPUT,
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
            vulnerabilities=not no_vulnerabilities,
        ),
        output,
        insecure_registry,
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
    report_moved: Annotated[
        bool,
        Parameter(
            help="Also ask (one HEAD each) whether unpinned tags moved since they were locked: "
            "a warning per moved tag, no failure."
        ),
    ] = False,
    no_cache: NoCacheOpt = False,
    fmt: FormatOpt = "text",
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    insecure_registry: InsecureOpt = (),
    signatures: SignatureOpts = NO_SIGNATURE_FLAGS,
    output: OutputOpts = NORMAL_OUTPUT,
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
            report_moved=report_moved,
        ),
        output,
        insecure_registry,
    )


@app.command(usage="Usage: lockman diff [OPTIONS] OLD [NEW]")
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
    no_vulnerabilities: Annotated[
        bool,
        Parameter(negative="", help="With --insight, do not look the SBOMs' packages up in OSV."),
    ] = False,
    timeout: Annotated[
        float,
        Parameter(
            name="--timeout",
            help="With --insight, how long each registry request may take (seconds); without it this "
            "command makes no requests.",
            validator=TIMEOUT_RANGE,
        ),
    ] = DEFAULT_TIMEOUT,
    insecure_registry: InsecureOpt = (),
    output: OutputOpts = NORMAL_OUTPUT,
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
            vulnerabilities=not no_vulnerabilities,
        ),
        output,
        insecure_registry,
    )


@app.command(usage="Usage: lockman pull [OPTIONS] [IMAGES...]")
def pull(
    images: Annotated[
        list[str], Parameter(help="Locked images to pull (default: all).", show_default=False)
    ] = [],  # noqa: B006
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
        Literal["docker", "podman", "auto"] | None,
        Parameter(help="Engine to load the images into (default: [container].runtime in xcargo.toml)."),
    ] = None,
    no_cache: NoCacheOpt = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    insecure_registry: InsecureOpt = (),
    signatures: SignatureOpts = NO_SIGNATURE_FLAGS,
    output: OutputOpts = NORMAL_OUTPUT,
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
        ),
        output,
        insecure_registry,
    )


@app.command
def pin(
    *,
    config: ConfigOpt = Path("xcargo.toml"),
    write: Annotated[
        bool,
        Parameter(
            negative="",
            help="Rewrite xcargo.toml and the project's Dockerfiles, Cross.toml, workflows and compose "
            "files; without it, show the diff.",
        ),
    ] = False,
    check: Annotated[
        bool,
        Parameter(negative="", help="Fail (exit 1) naming file and line of every reference not pinned."),
    ] = False,
    timeout: UnusedTimeoutOpt = DEFAULT_TIMEOUT,
    output: OutputOpts = NORMAL_OUTPUT,
) -> int:
    """Write the locked digests where the images are named (name:tag@sha256:…), keeping the rest."""
    from lockman.commands import pin as cmd

    return _sync(lambda: cmd.run(config, write=write, check=check), output)


@app.command
def completion(
    shell: Literal["bash", "zsh", "fish", "powershell"], /, *, output: OutputOpts = NORMAL_OUTPUT
) -> int:
    """Print a shell completion script for SHELL (docs/integrations.md)."""
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
        Parameter(
            help="Parallel requests per registry (default: $LOCKMAN_CONCURRENCY, else 16 over HTTP/1.1 "
            "and 64 streams over HTTP/2)."
        ),
    ] = None,
    platform: Annotated[
        str | None,
        Parameter(help="Print the digest of this platform's manifest (os/arch[/variant]), as crane does."),
    ] = None,
    insecure_registry: InsecureOpt = (),
    output: OutputOpts = NORMAL_OUTPUT,
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
    return _run(
        lambda: cmd.run(texts, timeout=timeout, concurrency=concurrency, platform=platform),
        output,
        insecure_registry,
    )



def hoist_global_options(tokens: list[str]) -> list[str]:
    """``lockman --config ci/xcargo.toml update`` → ``lockman update --config ci/xcargo.toml``.

    Only the options above, and only before the first word that is not an option; the command
    then checks them as its own (a command without ``--config`` refuses it as usual).
    """
    moved: list[str] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        name = t.split("=", 1)[0]
        if name in GLOBAL_WITH_VALUE:
            take = 1 if "=" in t else 2
            moved.extend(tokens[i : i + take])
            i += take
        elif t in GLOBAL_FLAGS:
            moved.append(t)
            i += 1
        else:
            break
    if not moved or i >= len(tokens) or tokens[i].startswith("-"):
        return tokens  # no command after them (e.g. `lockman -v --help`): leave as given
    return [tokens[i], *moved, *tokens[i + 1 :]]


def main(argv: list[str] | None = None) -> int:
    """Entry point: usage errors exit 2 with one line, as every other bad input does."""
    from cyclopts.exceptions import CycloptsError, UnknownOptionError, UnusedCliTokensError

    tokens = hoist_global_options(sys.argv[1:] if argv is None else list(argv))
    try:
        command, bound, _ = app.parse_args(tokens, exit_on_error=False, print_error=False)
    except UnknownOptionError as e:
        names = [n for a in e.argument_collection if a.parse for n in a.names]
        return _usage_error(e.command_chain, _unknown_option(e.token.keyword or e.token.value, names))
    except UnusedCliTokensError as e:
        stray = ", ".join(repr(t) for t in e.unused_tokens or ())
        chain = list(e.command_chain or ())
        arguments = app[chain[0]].assemble_argument_collection() if chain else []
        takes = any(a.field_info.kind == a.field_info.POSITIONAL_ONLY for a in arguments)
        said = f"too many arguments: {stray}" if takes else f"takes no arguments, only options: {stray}"
        return _usage_error(chain, said)
    except CycloptsError as e:
        return _usage_error(e.command_chain, " ".join(str(e).split()))
    # `resolve` and `diff` take "-" (stdin) among their arguments, so cyclopts hands them any
    # other word that starts with "-" as well: that is an option they do not have.
    ran = tokens[:1] if tokens and tokens[0] in app and app[tokens[0]].default_command is command else []
    for value in bound.args if ran else ():  # not for `--help`, whose arguments are the command line
        for word in value if isinstance(value, list) else [value]:
            if isinstance(word, str) and word.startswith("-") and word != "-":
                names = [n for a in app[ran[0]].assemble_argument_collection() if a.parse for n in a.names]
                return _usage_error(ran, _unknown_option(word, names))
    result = command(*bound.args, **bound.kwargs)
    return result if isinstance(result, int) else 0


def _unknown_option(option: str, known: list[str]) -> str:
    """The one wording for an option the command does not take, with the nearest it does."""
    import difflib

    near = difflib.get_close_matches(option.split("=", 1)[0], known, n=1, cutoff=0.6)
    return f"unknown option {option}" + (f" (did you mean {near[0]}?)" if near else "")


def _usage_error(command_chain: object, message: str) -> int:
    """One line on stderr naming the command and where its usage is, then exit 2."""
    from lockman.console import err

    chain = list(command_chain) if isinstance(command_chain, (list, tuple)) else []
    command = " ".join(["lockman", *chain])
    err(f"error: {command}: {message} (see `{command} --help`)")
    return EXIT_USAGE


def entry() -> None:
    sys.exit(main())
