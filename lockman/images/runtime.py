"""Which container engine pulls images, the exact commands lockman runs for it, and the check
that what the engine then holds under the configured name is the locked image.

``[container].runtime`` in xcargo.toml names it (``auto``, ``docker``, ``podman``; ``youki`` is
an OCI runtime without an image store, so it cannot pull). ``auto`` means docker when it is on
PATH and its daemon answers, else podman. The engine always pulls ``name@sha256:…``, so it
checks the digest itself too; then the image is tagged ``name:tag`` as the configuration names
it (what a runtime with pull-if-not-present runs), once the engine's ``RepoDigests`` show the
locked digest, and the tag is checked to name that image.
"""

from __future__ import annotations

import json
import shlex
import subprocess

from lockman import programs
from lockman.errors import InputError, RegistryError, VerificationError
from lockman.model import reference

PULL_ENGINES = ("docker", "podman")
DAEMON_TIMEOUT = 10.0  # `docker version` answers in milliseconds when a daemon is there
INSPECT_TIMEOUT = 60.0


def choose(runtime: str, *, source: str) -> tuple[str, str]:
    """The engine to run for ``runtime`` (from ``source``: a flag or a config key): its name and
    the absolute path to start (:func:`lockman.programs.find`: never one relative to the cwd)."""
    if runtime == "auto":
        docker = programs.find("docker")
        if docker and docker_daemon_answers(docker):
            return "docker", docker
        podman = programs.find("podman")
        if podman:
            return "podman", podman
        why = "docker is on PATH but no docker daemon answers" if docker else "docker is not on PATH"
        raise InputError(f"{source}: runtime auto: {why}, and podman is not on PATH")
    if runtime not in PULL_ENGINES:
        raise InputError(f"{source}: runtime {runtime!r} cannot pull images (use docker or podman)")
    exe = programs.find(runtime)
    if not exe:
        raise InputError(f"{source}: runtime {runtime}: not found on PATH")
    return runtime, exe


def docker_daemon_answers(exe: str) -> bool:
    """Whether a docker daemon answers the CLI (DOCKER_HOST, the current context): a docker CLI
    without one (podman's docker shim aside, a CI image with only the client) cannot pull."""
    try:
        done = subprocess.run(
            [exe, "version", "--format", "{{.Server.Version}}"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=DAEMON_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and bool(done.stdout.strip())


def pull_command(
    engine: str, name: str, digest: str, platform: str | None, *, tls_verify: bool = True
) -> list[str]:
    """``<engine> pull [--platform P] name@digest``: pulled by digest, never by tag.
    ``tls_verify=False`` (a registry lockman itself reached over plain HTTP or without TLS
    verification) is passed to podman as ``--tls-verify=false``; docker has no such flag."""
    argv = [engine, "pull"]
    if not tls_verify and engine == "podman":
        argv.append("--tls-verify=false")
    if platform:
        argv += ["--platform", platform]
    return [*argv, f"{name}@{digest}"]


def insecure_hint(engine: str, host: str) -> str:
    """What to do when the engine could not pull from a registry marked insecure: docker takes
    no per-pull flag (podman was given ``--tls-verify=false``)."""
    if engine != "docker":
        return ""
    return (
        f"; {host} is marked insecure (plain HTTP or unverified TLS): docker pulls from it only "
        f'when the daemon\'s "insecure-registries" (/etc/docker/daemon.json) lists it'
    )


def _run(exe: str, argv: list[str], engine: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [exe, *argv[1:]],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=INSPECT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise RegistryError(f"{shlex.join(argv)}: {engine}: cannot run: {why}") from None


def _inspect(engine: str, exe: str, image: str) -> tuple[str, list[str]]:
    """The engine's image ID and RepoDigests for ``image``."""
    argv = [engine, "image", "inspect", "--format", "{{.Id}} {{json .RepoDigests}}", image]
    done = _run(exe, argv, engine)
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or [f"status {done.returncode}"]
        raise RegistryError(f"{shlex.join(argv)}: {engine} failed: {detail[0][:300]}")
    image_id, _, digests = done.stdout.strip().partition(" ")
    try:
        found = json.loads(digests) or []
    except ValueError:
        found = None
    if not image_id or not isinstance(found, list):
        raise RegistryError(f"{shlex.join(argv)}: {engine} answered {done.stdout[:200]!r}")
    return image_id, [d for d in found if isinstance(d, str)]


def _holds(repo_digests: list[str], name: str, digest: str) -> bool:
    """Whether ``name@digest`` is among RepoDigests (docker writes ``rust@…`` for
    ``docker.io/library/rust@…``, podman the full name: compared as parsed references)."""
    for text in repo_digests:
        try:
            ref = reference.parse(text, default_tag=None)
        except InputError:
            continue
        if ref.name == name and ref.digest == digest:
            return True
    return False


def tag_confirmed(engine: str, exe: str, name: str, digest: str, tag: str | None) -> str:
    """After ``pull name@digest``: confirm the engine's RepoDigests hold the locked digest,
    tag that image (by its ID) ``name:tag``, and check the tag names it; a tag that does not is
    removed. Returns the line to print; raises VerificationError when the engine holds other
    bytes under the name."""
    pinned = f"{name}@{digest}"
    image_id, repo_digests = _inspect(engine, exe, pinned)
    if not _holds(repo_digests, name, digest):
        raise VerificationError(
            f"{engine} holds {pinned} without that digest in its RepoDigests "
            f"({', '.join(repo_digests) or 'none'}); not tagged"
        )
    if tag is None:
        return f"{pinned}: {engine} RepoDigests hold the locked digest (no tag to set)"
    tagged = f"{name}:{tag}"
    argv = [engine, "tag", image_id, tagged]
    done = _run(exe, argv, engine)
    if done.returncode != 0:
        raise RegistryError(f"{shlex.join(argv)}: {engine} exited with status {done.returncode}")
    now_id, now_digests = _inspect(engine, exe, tagged)
    if now_id != image_id or not _holds(now_digests, name, digest):
        _run(exe, [engine, "untag" if engine == "podman" else "rmi", tagged], engine)
        raise VerificationError(f"{tagged} does not name {pinned} in {engine} after tagging; tag removed")
    return f"{tagged} -> {digest} ({engine} RepoDigests confirm it)"
