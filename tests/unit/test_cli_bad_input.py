"""The bad-input corpus (testdata/bad-input): exit 2, one line naming file, key and problem.

Every command that reads the file is run against every case; the files beside it (the other of
xcargo.toml / xcargo.lock) must be byte-identical afterwards and no new file may appear.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from tests.support.paths import ROOT as REPO

CORPUS = REPO / "testdata" / "bad-input"
EXPECT = tomllib.loads((CORPUS / "expect.toml").read_text())
D0 = "sha256:" + "0" * 64
GOOD_CONFIG = '[container]\nimage = "example.invalid/a:1"\n'
GOOD_LOCK = f'version = 1\n\n[[image]]\nname = "example.invalid/a"\ntag = "1"\ndigest = "{D0}"\n'
COMMANDS = [
    ["update"],
    ["update", "--check"],
    ["update", "--dry-run"],
    ["update", "--keep-going"],
    ["verify"],
]


def test_every_corpus_file_has_an_expectation() -> None:
    for kind in ("xcargo", "lockfile"):
        assert sorted(p.name for p in (CORPUS / kind).iterdir()) == sorted(EXPECT[kind])


def _check(run, tmp_path: Path, bad: Path, key: str, problem: str, commands: list[list[str]]) -> None:
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for cmd in commands:
        r = run(*cmd, "--config", tmp_path / "xcargo.toml")
        assert r.code == 2, (cmd, r.out, r.err)
        assert r.err.count("\n") == 1 and r.err.startswith("error: "), r.err
        assert "Traceback" not in r.err
        assert not any(c < " " for c in r.err[:-1]), "control characters from the file reach the terminal"
        assert f"{bad}: " in r.err, r.err
        if key:
            assert f": {key}: " in r.err, r.err
        assert problem in r.err, r.err
        assert len(r.err) < 400, "an absurd input is not echoed in full"
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written


@pytest.mark.parametrize("name", sorted(EXPECT["xcargo"]))
def test_bad_config(tmp_path: Path, run, name: str) -> None:
    key, problem = EXPECT["xcargo"][name]
    shutil.copy(CORPUS / "xcargo" / name, tmp_path / "xcargo.toml")
    (tmp_path / "xcargo.lock").write_text(GOOD_LOCK)
    commands = [*COMMANDS, ["verify", "--offline"]]
    _check(run, tmp_path, tmp_path / "xcargo.toml", key, problem, commands)


@pytest.mark.parametrize("name", sorted(EXPECT["lockfile"]))
def test_bad_lockfile(tmp_path: Path, run, name: str) -> None:
    key, problem = EXPECT["lockfile"][name]
    (tmp_path / "xcargo.toml").write_text(GOOD_CONFIG)
    shutil.copy(CORPUS / "lockfile" / name, tmp_path / "xcargo.lock")
    commands = [*COMMANDS, ["verify", "--offline"]]
    _check(run, tmp_path, tmp_path / "xcargo.lock", key, problem, commands)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "soon"])
@pytest.mark.parametrize("command", ["update", "verify", "resolve", "pull", "diff", "pin"])
def test_bad_timeout_is_usage_error(tmp_path: Path, run, command: str, value: str) -> None:
    (tmp_path / "xcargo.toml").write_text(GOOD_CONFIG)
    config = ["--config", str(tmp_path / "xcargo.toml")]
    args = {"resolve": ["example.invalid/a:1"], "diff": [str(tmp_path / "xcargo.lock"), *config]}
    r = run(command, *args.get(command, config), "--timeout", value)
    assert r.code == 2 and r.err.count("\n") == 1 and "--timeout" in r.err, r.err


def test_offline_commands_accept_timeout(tmp_path: Path, run) -> None:
    (tmp_path / "xcargo.toml").write_text(GOOD_CONFIG)
    (tmp_path / "xcargo.lock").write_text(GOOD_LOCK)
    lock = tmp_path / "xcargo.lock"
    assert run("diff", lock, lock, "--timeout", "3", "--config", tmp_path / "xcargo.toml").code == 0
    assert run("pin", "--timeout", "3", "--config", tmp_path / "xcargo.toml").code == 0
    assert run("verify", "--offline", "--timeout", "3", "--config", tmp_path / "xcargo.toml").code == 0
