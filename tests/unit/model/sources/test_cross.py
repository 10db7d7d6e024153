"""Cross.toml: target images in every form cross-rs accepts, and the Dockerfiles it builds."""

from __future__ import annotations

import pytest

from lockman.errors import InputError
from lockman.model.sources import cross, splice

TEXT = """\
[build]
dockerfile = "docker/Dockerfile"
[target.aarch64-unknown-linux-gnu]
image = "ghcr.io/cross-rs/aarch64-unknown-linux-gnu:0.2.5" # a comment
[target.x86_64-unknown-linux-gnu]
image = { name = 'ghcr.io/cross-rs/x86_64-unknown-linux-gnu:main', toolchain = ["x86_64-unknown-linux-gnu"] }
dockerfile = { file = "d/Dockerfile.x", build-args = { BASE = "ubuntu:22.04" } }
[target.riscv64gc-unknown-linux-gnu.image]
name = "ghcr.io/cross-rs/riscv64gc-unknown-linux-gnu:0.2.5"
[target.armv7-unknown-linux-gnueabihf]
image = "ghcr.io/cross-rs/aarch64-unknown-linux-gnu:0.2.5"
"""


def test_images_lines_and_spans() -> None:
    found, dockerfiles = cross.extract(TEXT, "Cross.toml")
    assert [(f.ref, f.line) for f in found] == [
        ("ghcr.io/cross-rs/aarch64-unknown-linux-gnu:0.2.5", 4),
        ("ghcr.io/cross-rs/x86_64-unknown-linux-gnu:main", 6),
        ("ghcr.io/cross-rs/riscv64gc-unknown-linux-gnu:0.2.5", 9),
        ("ghcr.io/cross-rs/aarch64-unknown-linux-gnu:0.2.5", 11),  # the same image twice: two places
    ]
    new = splice(TEXT, {f.span: f.ref + "@sha256:" + "c" * 64 for f in found if f.span})
    assert new.count("@sha256:") == 4 and new.replace("@sha256:" + "c" * 64, "") == TEXT
    assert [(d.file, d.build_args) for d in dockerfiles] == [
        ("docker/Dockerfile", {}),
        ("d/Dockerfile.x", {"BASE": "ubuntu:22.04"}),
    ]


def test_bad_toml_names_the_file() -> None:
    with pytest.raises(InputError, match=r"^Cross\.toml: not valid TOML"):
        cross.extract("[target\n", "Cross.toml")
