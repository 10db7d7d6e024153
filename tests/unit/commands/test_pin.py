"""``lockman pin`` on a project's Dockerfiles and YAML, from a lock written by hand (no registry)."""

from __future__ import annotations

from pathlib import Path

from lockman.model import lockfile
from lockman.model.lockfile import LockedImage, Lockfile
from tests.support.project import git

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def project(tmp_path: Path, lock: bool = True) -> Path:
    (tmp_path / "xcargo.toml").write_text("")
    (tmp_path / "Dockerfile").write_text("FROM rust:1.70 AS b  # base\nARG X\nFROM b\nFROM 'alpine'\n")
    (tmp_path / "compose.yml").write_text('services:\n  a: {image: "rust:1.70"}  # same image\n')
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    if lock:
        entries = (LockedImage("rust", "1.70", D1, source="Dockerfile:1; compose.yml:2"),)
        (tmp_path / "xcargo.lock").write_text(lockfile.dumps(Lockfile(entries)))
    return tmp_path / "xcargo.toml"


def test_check_names_every_unpinned_reference(tmp_path: Path, run) -> None:
    cfg = project(tmp_path, lock=False)
    r = run("pin", "--check", "--config", cfg)
    assert r.code == 1
    assert r.err.splitlines() == [
        f"error: {tmp_path}/Dockerfile:1: rust:1.70 is not pinned to a digest",
        f"error: {tmp_path}/compose.yml:2: rust:1.70 is not pinned to a digest",
        f"error: {tmp_path}/Dockerfile:4: FROM: invalid reference \"'alpine'\": invalid repository name"
        f" \"'alpine'\"; not locked",
    ]


def test_show_then_write_only_the_references(tmp_path: Path, run) -> None:
    cfg = project(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM rust:1.70 AS b  # base\r\nFROM b\r\n")
    before = {p: (tmp_path / p).read_bytes() for p in ("Dockerfile", "compose.yml", "xcargo.lock")}
    shown = run("pin", "--config", cfg)
    assert shown.code == 0 and f"+FROM rust:1.70@{D1} AS b  # base" in shown.out
    assert {p: (tmp_path / p).read_bytes() for p in before} == before  # showing writes nothing
    w = run("pin", "--write", "--config", cfg)
    assert w.code == 0, w.err
    assert (
        tmp_path / "Dockerfile"
    ).read_bytes() == f"FROM rust:1.70@{D1} AS b  # base\r\nFROM b\r\n".encode()
    assert (
        tmp_path / "compose.yml"
    ).read_text() == f'services:\n  a: {{image: "rust:1.70@{D1}"}}  # same image\n'
    (entry,) = lockfile.loads((tmp_path / "xcargo.lock").read_text()).images
    assert entry.pinned and entry.digest == D1
    assert run("pin", "--check", "--config", cfg).code == 0
    assert run("pin", "--write", "--config", cfg).code == 0  # nothing left: a no-op


def test_an_image_missing_from_the_lock_changes_nothing(tmp_path: Path, run) -> None:
    cfg = project(tmp_path)
    (tmp_path / "compose.yml").write_text("services:\n  a:\n    image: postgres:16\n")
    before = {p: (tmp_path / p).read_bytes() for p in ("Dockerfile", "compose.yml", "xcargo.lock")}
    r = run("pin", "--write", "--config", cfg)
    assert r.code == 1 and "no entry for postgres:16 (compose.yml:3)" in r.err
    assert {p: (tmp_path / p).read_bytes() for p in before} == before


def test_terminal_escapes_in_a_from_line_are_shown_escaped(tmp_path: Path, run) -> None:
    (tmp_path / "xcargo.toml").write_text("")
    (tmp_path / "Dockerfile").write_text("FROM \x1b]0;owned\x07\x1b[2Jevil:1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    for args in (("pin", "--check"), ("update", "--dry-run")):
        r = run(*args, "--config", tmp_path / "xcargo.toml")
        assert "\x1b" not in r.err + r.out and "\x07" not in r.err + r.out
        assert "Dockerfile:1: FROM: invalid reference" in r.err and "\\x1b" in r.err
    assert run("pin", "--check", "--config", tmp_path / "xcargo.toml").code == 1


def test_no_lock_is_an_error(tmp_path: Path, run) -> None:
    r = run("pin", "--write", "--config", project(tmp_path, lock=False))
    assert r.code == 1 and "no lockfile; run `lockman update` first" in r.err


def test_pins_and_references_built_from_parts_are_left_alone(tmp_path: Path, run) -> None:
    cfg = project(tmp_path)
    text = f"ARG R=rust\nARG T=1.70\nFROM $R:$T\nFROM rust:1.70@{D1}\n"
    (tmp_path / "Dockerfile").write_text(text)
    (tmp_path / "compose.yml").write_text("services: {}\n")
    r = run("pin", "--write", "--config", cfg)
    assert r.code == 0, r.err
    assert (tmp_path / "Dockerfile").read_text() == text
    assert f"notice: {tmp_path}/Dockerfile:3: rust:1.70 is not written in one piece" in r.err
