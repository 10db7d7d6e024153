"""Which container engine pulls images, and the exact command lockman runs for it.

``[container].runtime`` in xcargo.toml names it (``auto``, ``docker``, ``podman``; ``youki`` is
an OCI runtime without an image store, so it cannot pull). ``auto`` means docker when it is on
PATH, else podman. The engine always pulls ``name@sha256:…``, so it checks the digest itself too.
"""

from __future__ import annotations

from lockman import programs
from lockman.errors import InputError

PULL_ENGINES = ("docker", "podman")


def choose(runtime: str, *, source: str) -> tuple[str, str]:
    """The engine to run for ``runtime`` (from ``source``: a flag or a config key): its name and
    the absolute path to start (:func:`lockman.programs.find`: never one relative to the cwd)."""
    if runtime == "auto":
        for engine in PULL_ENGINES:
            exe = programs.find(engine)
            if exe:
                return engine, exe
        raise InputError(f"{source}: runtime auto: neither docker nor podman is on PATH")
    if runtime not in PULL_ENGINES:
        raise InputError(f"{source}: runtime {runtime!r} cannot pull images (use docker or podman)")
    exe = programs.find(runtime)
    if not exe:
        raise InputError(f"{source}: runtime {runtime}: not found on PATH")
    return runtime, exe


def pull_command(engine: str, name: str, digest: str, platform: str | None) -> list[str]:
    """``<engine> pull [--platform P] name@digest``: pulled by digest, never by tag."""
    argv = [engine, "pull"]
    if platform:
        argv += ["--platform", platform]
    return [*argv, f"{name}@{digest}"]
