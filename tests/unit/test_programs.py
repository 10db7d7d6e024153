"""Programs lockman starts are never found relative to the current directory (Go's exec.ErrDot).

The attacker commits ``docker-credential-desktop``, ``git`` or ``docker`` to the repository a user
runs lockman in; a PATH with an empty entry, ``.`` or a relative directory would find it. Each
planted program writes a marker file when run: the marker must never appear.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lockman import programs
from lockman.errors import EXIT_USAGE, InputError
from lockman.images import runtime
from lockman.registry.credentials import CredentialStore

REAL_PATH = os.environ.get("PATH", "/usr/bin:/bin")
# PATH spellings that reach the current directory: empty entry first, last, in the middle, ".",
# "./", and a relative directory.
RELATIVE_PATHS = [
    f"{os.pathsep}{REAL_PATH}",
    f"{REAL_PATH}{os.pathsep}",
    f"/nonexistent{os.pathsep}{os.pathsep}{REAL_PATH}",
    f".{os.pathsep}{REAL_PATH}",
    f"./{os.pathsep}{REAL_PATH}",
    f"bin{os.pathsep}{REAL_PATH}",
]
RELATIVE_IDS = ["empty-first", "empty-last", "empty-middle", "dot", "dot-slash", "relative-dir"]


def plant(where: Path, name: str, marker: Path, stdout: str = "") -> Path:
    """An executable ``name`` in ``where`` (and in ``where/bin``) that touches ``marker``."""
    for d in (where, where / "bin"):
        d.mkdir(exist_ok=True)
        prog = d / name
        prog.write_text(f"#!/bin/sh\ntouch {marker}\ncat >/dev/null\nprintf '%s' '{stdout}'\n")
        prog.chmod(0o755)
    return where / name


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The attacker's repository, as the current directory."""
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.chdir(repo)
    return repo


@pytest.mark.parametrize("path", RELATIVE_PATHS, ids=RELATIVE_IDS)
def test_find_refuses_a_program_found_relative_to_cwd(
    checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    plant(checkout, "lockman-planted", tmp_path / "ran")
    monkeypatch.setenv("PATH", path)
    with pytest.raises(programs.RelativeProgram, match=r"relative to the current directory"):
        programs.find("lockman-planted")


def test_find_takes_the_first_absolute_entry_and_ignores_later_relative_ones(
    checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = tmp_path / "good"
    plant(good, "lockman-planted", tmp_path / "ran")
    plant(checkout, "lockman-planted", tmp_path / "ran")
    monkeypatch.setenv("PATH", f"{good}{os.pathsep}{os.pathsep}.")
    assert programs.find("lockman-planted") == str(good / "lockman-planted")
    monkeypatch.setenv("PATH", f"{good}{os.pathsep}{REAL_PATH}")
    assert programs.find("lockman-not-there") is None


def test_find_skips_what_is_not_an_executable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    (a / "tool").mkdir(parents=True)  # a directory named like the program
    b.mkdir()
    (b / "tool").write_text("#!/bin/sh\n")  # not executable
    plant(c, "tool", tmp_path / "ran")
    monkeypatch.setenv("PATH", os.pathsep.join(map(str, (a, b, c))))
    assert programs.find("tool") == str(c / "tool")


@pytest.mark.parametrize("name", ["../x", "bin/x", "/usr/bin/env", "", ".", ".."])
def test_find_takes_names_not_paths(name: str) -> None:
    with pytest.raises(InputError, match="not a program name"):
        programs.find(name)


@pytest.mark.parametrize("path", RELATIVE_PATHS, ids=RELATIVE_IDS)
def test_planted_credential_helper_is_not_run(
    isolated_env: Path, checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    marker = tmp_path / "helper-ran"
    plant(checkout, "docker-credential-desktop", marker, '{"Username":"u","Secret":"planted"}')
    (isolated_env / ".docker").mkdir()
    (isolated_env / ".docker" / "config.json").write_text(json.dumps({"credsStore": "desktop"}))
    monkeypatch.setenv("PATH", path)
    store = CredentialStore()
    assert store.get("reg.example", "team/app") is None  # anonymous, as with a missing helper
    assert not marker.exists()
    # ...and said, as docker says it (the problem is reported when the registry then refuses).
    assert "docker-credential-desktop" in store.problem("reg.example")
    assert "relative to the current directory" in store.problem("reg.example")


def test_credential_helper_name_with_a_path_is_not_run(
    isolated_env: Path, checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "helper-ran"
    plant(checkout / "docker-credential-x", "evil", marker, '{"Username":"u","Secret":"planted"}')
    (isolated_env / ".docker").mkdir()
    (isolated_env / ".docker" / "config.json").write_text(
        json.dumps({"credHelpers": {"reg.example": "x/evil"}})
    )
    monkeypatch.setenv("PATH", f"{checkout}{os.pathsep}{REAL_PATH}")
    store = CredentialStore()
    assert store.get("reg.example") is None
    assert not marker.exists()
    assert "not a program name" in store.problem("reg.example")


@pytest.mark.parametrize("engine", ["docker", "podman", "auto"])
def test_planted_engine_is_refused(
    checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    for name in ("docker", "podman"):
        plant(checkout, name, tmp_path / "ran")
    monkeypatch.setenv("PATH", f".{os.pathsep}/nonexistent")
    with pytest.raises(programs.RelativeProgram, match=r"docker|podman"):
        runtime.choose(engine, source="--runtime")


def test_engine_found_is_an_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plant(tmp_path / "sbin", "podman", tmp_path / "ran")
    monkeypatch.setenv("PATH", str(tmp_path / "sbin"))
    assert runtime.choose("auto", source="x") == ("podman", str(tmp_path / "sbin" / "podman"))


def test_diff_git_rev_never_runs_a_planted_git(checkout: Path, tmp_path: Path, run, monkeypatch) -> None:
    """``lockman diff git:HEAD`` in the attacker's checkout with ``.`` on PATH: exit 2, no git run."""
    env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    subprocess.run(["git", "init", "-q", str(checkout)], check=True, env=env)
    (checkout / "xcargo.toml").write_text('[container]\nimage = "rust:1.70"\n')
    (checkout / "xcargo.lock").write_text("")
    marker = tmp_path / "git-ran"
    plant(checkout, "git", marker)
    monkeypatch.setenv("PATH", f".{os.pathsep}{REAL_PATH}")
    r = run("diff", "git:HEAD", "--config", checkout / "xcargo.toml")
    assert r.code == EXIT_USAGE, r.err
    assert "git: PATH finds it in ." in r.err and "refusing to run it" in r.err
    assert not marker.exists()
