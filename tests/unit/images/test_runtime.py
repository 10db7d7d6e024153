"""The engine commands lockman runs after verifying: pull flags, the daemon check, the tag that
must name the locked image (issue 27). The engine is a script answering as docker/podman do."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from lockman.errors import VerificationError
from lockman.images import runtime

NAME = "registry.example/team/app"
DIGEST = "sha256:" + "a" * 64

ENGINE = """#!/bin/sh
echo "$*" >> "{log}"
case "$1" in
  version) {version} ;;
  image) case "$5" in
           *@*) echo 'sha256:good ["{pinned}"]' ;;
           *) echo '{tagged}' ;;
         esac ;;
esac
"""


def engine(tmp_path: Path, *, version: str = "echo 5.0", pinned: str = f"{NAME}@{DIGEST}",
           tagged: str = f'sha256:good ["{NAME}@{DIGEST}"]') -> tuple[str, Path]:  # fmt: skip
    log = tmp_path / "calls"
    exe = tmp_path / "engine"
    exe.write_text(ENGINE.format(log=log, version=version, pinned=pinned, tagged=tagged))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return str(exe), log


def test_tagged_once_repo_digests_hold_the_locked_digest(tmp_path: Path) -> None:
    exe, log = engine(tmp_path)
    line = runtime.tag_confirmed("podman", exe, NAME, DIGEST, "1.0")
    assert line == f"{NAME}:1.0 -> {DIGEST} (podman RepoDigests confirm it)"
    assert log.read_text().splitlines()[1] == f"tag sha256:good {NAME}:1.0"  # by ID


def test_docker_familiar_repo_digests_count(tmp_path: Path) -> None:
    exe, _ = engine(tmp_path, pinned=f"rust@{DIGEST}", tagged=f'sha256:good ["rust@{DIGEST}"]')
    assert "confirm" in runtime.tag_confirmed("docker", exe, "docker.io/library/rust", DIGEST, "1.70")


def test_other_bytes_under_the_name_are_never_tagged(tmp_path: Path) -> None:
    exe, log = engine(tmp_path, pinned=f"{NAME}@sha256:{'b' * 64}")
    with pytest.raises(VerificationError, match="not tagged"):
        runtime.tag_confirmed("podman", exe, NAME, DIGEST, "1.0")
    assert not any(c.startswith("tag ") for c in log.read_text().splitlines())


def test_a_tag_that_does_not_name_the_image_afterwards_is_removed(tmp_path: Path) -> None:
    for name, removal in (("podman", f"untag {NAME}:1.0"), ("docker", f"rmi {NAME}:1.0")):
        exe, log = engine(tmp_path, tagged=f'sha256:other ["{NAME}@{DIGEST}"]')
        with pytest.raises(VerificationError, match="tag removed"):
            runtime.tag_confirmed(name, exe, NAME, DIGEST, "1.0")
        assert log.read_text().splitlines()[-1] == removal
        log.unlink()


def test_docker_daemon_must_answer(tmp_path: Path) -> None:
    assert runtime.docker_daemon_answers(engine(tmp_path)[0])
    assert not runtime.docker_daemon_answers(engine(tmp_path, version="exit 1")[0])
    assert not runtime.docker_daemon_answers(str(tmp_path / "missing"))


def test_only_podman_takes_tls_verify() -> None:
    assert runtime.pull_command("podman", NAME, DIGEST, None, tls_verify=False) == [
        "podman", "pull", "--tls-verify=false", f"{NAME}@{DIGEST}",
    ]  # fmt: skip
    assert runtime.pull_command("docker", NAME, DIGEST, None, tls_verify=False) == ["docker", "pull", f"{NAME}@{DIGEST}"]
    assert "insecure-registries" in runtime.insecure_hint("docker", "r.example")
    assert runtime.insecure_hint("podman", "r.example") == ""
