"""Which files are read for images: tracked ones, by kind, narrowed by lockman.toml; bounded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lockman.errors import InputError
from lockman.images import sources
from tests.support.project import git

DF = "FROM rust:1.70 AS b\nFROM b\n"


def repo(tmp_path: Path, files: dict[str, str], *, track: bool = True) -> Path:
    (tmp_path / "xcargo.toml").write_text("")
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    git(tmp_path, "init", "-q")
    if track:
        git(tmp_path, "add", "-A")
    return tmp_path


def test_kinds_by_name() -> None:
    assert sources.kind_of("Dockerfile") == "dockerfile"
    assert sources.kind_of("docker/Containerfile.musl") == "dockerfile"
    assert sources.kind_of("ci/base.Dockerfile") == "dockerfile"
    assert sources.kind_of("Dockerfile.md") == "dockerfile"  # Renovate's pattern too
    assert sources.kind_of("Cross.toml") == "cross" and sources.kind_of("cross.toml") is None
    assert sources.kind_of(".github/workflows/ci.yml") == "workflow"
    assert sources.kind_of(".github/workflows/sub/ci.yml") is None
    assert sources.kind_of("action.yml") == sources.kind_of("actions/setup/action.yaml") == "workflow"
    assert sources.kind_of("docker-compose.yml") == sources.kind_of("deploy/compose.prod.yaml") == "compose"
    assert sources.kind_of("README.md") is None


def test_globs() -> None:
    g = sources.glob_regex
    assert g("examples/**").fullmatch("examples/a/b/Dockerfile")
    assert g("**/Dockerfile").fullmatch("Dockerfile") and g("**/Dockerfile").fullmatch("a/b/Dockerfile")
    assert not g("*/Dockerfile").fullmatch("a/b/Dockerfile")


def test_only_tracked_files_are_read(tmp_path: Path) -> None:
    repo(tmp_path, {"Dockerfile": DF})
    (tmp_path / "untracked").mkdir()
    (tmp_path / "untracked" / "Dockerfile").write_text("FROM evil:1\n")
    d = sources.discover(tmp_path)
    assert [(f.ref, f.source) for f in d.found] == [("rust:1.70", "Dockerfile:1")]


def test_outside_git_nothing_is_read(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(DF)
    assert sources.discover(tmp_path).found == ()


def test_every_kind_and_a_cross_dockerfile_with_build_args(tmp_path: Path) -> None:
    repo(
        tmp_path,
        {
            "Cross.toml": '[target.x.dockerfile]\nfile = "docker/cross.df"\nbuild-args = { BASE = "ubuntu:22.04" }\n'
            '[target.y]\nimage = "ghcr.io/cross-rs/y:0.2.5"\n',
            "docker/cross.df": "ARG BASE=ubuntu:20.04\nFROM $BASE\n",
            ".github/workflows/ci.yml": "jobs:\n  a:\n    container: debian:12\n",
            "compose.yaml": "services:\n  db:\n    image: postgres:16\n",
            "Dockerfile": "ARG X\nFROM $X\n",
        },
    )
    d = sources.discover(tmp_path)
    assert sorted((f.ref, f.source) for f in d.found) == [
        ("debian:12", ".github/workflows/ci.yml:3"),
        ("ghcr.io/cross-rs/y:0.2.5", "Cross.toml:5"),
        ("postgres:16", "compose.yaml:3"),
        ("ubuntu:22.04", "docker/cross.df:2"),  # the FROM: the value is Cross.toml's
    ]
    assert [str(u) for u in d.unresolved] == [
        "Dockerfile:2: FROM $X: depends on X, which has no value here; not locked (give the ARG a default)"
    ]


def test_lockman_toml_narrows_kinds_and_paths(tmp_path: Path) -> None:
    repo(
        tmp_path,
        {
            "Dockerfile": "FROM a:1\n",
            "examples/x/Dockerfile": "FROM b:1\n",
            "compose.yml": "services:\n  s:\n    image: c:1\n",
            "lockman.toml": '[sources]\nkinds = ["dockerfile"]\nexclude = ["examples/**"]\n',
        },
    )
    assert [f.ref for f in sources.discover(tmp_path).found] == ["a:1"]
    (tmp_path / "lockman.toml").write_text('[sources]\ninclude = ["examples/**"]\n')
    assert [f.ref for f in sources.discover(tmp_path).found] == ["b:1"]
    (tmp_path / "lockman.toml").write_text('[sources]\nkinds = ["docker"]\n')
    with pytest.raises(InputError, match=r"sources\.kinds: unknown kind 'docker'"):
        sources.discover(tmp_path)


def test_a_huge_tracked_file_is_bad_input_naming_it(tmp_path: Path) -> None:
    repo(tmp_path, {"Dockerfile": "FROM a\n"})
    with open(tmp_path / "Dockerfile", "ab") as f:  # 100 MB, sparse: the bound stops the read
        f.truncate(100 << 20)
    with pytest.raises(InputError, match=r"Dockerfile: larger than 8 MiB; not a dockerfile file"):
        sources.discover(tmp_path)


def test_a_tracked_link_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Dockerfile").write_text("FROM secret:1\n")
    proj = tmp_path / "p"
    proj.mkdir()
    os.symlink(outside / "Dockerfile", proj / "Dockerfile")
    repo(proj, {})
    assert sources.discover(proj).found == ()


def test_invalid_references_are_reported_not_locked(tmp_path: Path) -> None:
    repo(tmp_path, {"Dockerfile": "FROM \x1b[31mevil\nFROM Upper:1\n"})
    d = sources.discover(tmp_path)
    assert d.found == () and [u.line for u in d.unresolved] == [1, 2]


def test_the_config_gains_the_images_and_the_findings(tmp_path: Path) -> None:
    repo(tmp_path, {"Dockerfile": "FROM rust:1.70\nARG X\nFROM $X\n"})
    (tmp_path / "xcargo.toml").write_text('[container]\nimage = "rust:1.70"\n')
    config = sources.load_project(tmp_path / "xcargo.toml")
    assert [(u.name, u.tag, u.source) for u in config.images] == [
        ("rust", "1.70", "container.image"),
        ("rust", "1.70", "Dockerfile:1"),
    ]
    assert config.findings and "depends on X" in config.findings[0]


def test_verify_names_the_file_and_line_of_an_image_the_lock_lacks(tmp_path: Path) -> None:
    from lockman.images.verifier import consistency
    from lockman.model.lockfile import Lockfile

    repo(tmp_path, {"Dockerfile": "FROM rust:1.70\n"})
    config = sources.load_project(tmp_path / "xcargo.toml")
    (p,) = consistency(config, Lockfile())
    assert (
        p.kind == "missing"
        and p.message == "rust:1.70: used by Dockerfile:1 but not in xcargo.lock; run `lockman update`"
    )


def test_images_the_project_builds_itself_can_be_ignored(tmp_path: Path) -> None:
    repo(
        tmp_path,
        {
            "base/Dockerfile": "FROM debian:12\n",
            "Dockerfile": "FROM myorg/base:dev\nFROM localhost/tools\nFROM rust:1.70\n",
            "lockman.toml": '[sources]\nignore = ["myorg/base", "localhost/*"]\n',
        },
    )
    assert [f.ref for f in sources.discover(tmp_path).found] == ["rust:1.70", "debian:12"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[sources\n", "not valid TOML"),
        ("sources = 1\n", "sources: expected a table"),
        ("[sources]\nexclude = 'x'\n", "sources.exclude: expected an array of strings"),
        ("[sources]\ninclude = [1]\n", "sources.include: expected an array of strings"),
    ],
)
def test_a_bad_sources_table_is_bad_input_naming_it(tmp_path: Path, text: str, problem: str) -> None:
    repo(tmp_path, {"lockman.toml": text})
    with pytest.raises(InputError, match=rf"lockman\.toml: {problem}"):
        sources.discover(tmp_path)


def test_a_file_that_is_not_utf8_is_bad_input_naming_it(tmp_path: Path) -> None:
    repo(tmp_path, {"Dockerfile": "FROM a\n"})
    (tmp_path / "Dockerfile").write_bytes(b"FROM \xff\n")
    with pytest.raises(InputError, match=r"Dockerfile: not valid dockerfile: not UTF-8 text$"):
        sources.discover(tmp_path)


def test_tracked_files_deleted_from_the_work_tree_are_skipped(tmp_path: Path) -> None:
    repo(tmp_path, {"Cross.toml": '[target.x]\nimage = "a:1"\n', "Dockerfile": "FROM b:1\n", "compose.yml": ""})
    for name in ("Cross.toml", "Dockerfile", "compose.yml"):
        (tmp_path / name).unlink()
    assert sources.discover(tmp_path).found == ()
