from __future__ import annotations

from pathlib import Path

import pytest

from lockman.errors import InputError
from lockman.model.xcargo import parse_config

P = Path("/proj/xcargo.toml")
D = "sha256:" + "c" * 64


def images(text: str) -> list[tuple[str, str, str]]:
    return [(u.name, u.tag, u.source) for u in parse_config(text, P).images]


def test_container_image_serves_every_target() -> None:
    text = """
[targets]
default = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]
[container]
image = "rust:1.70"
"""
    assert images(text) == [("rust", "1.70", "container.image")]


def test_builtin_images_for_every_named_triple() -> None:
    text = """
[targets]
default = ["x86_64-unknown-linux-gnu"]
[targets."aarch64-unknown-linux-musl"]
linker = "x"
[targets."x86_64-apple-darwin"]
[profiles.release]
targets = ["armv7-unknown-linux-gnueabihf", "wasm32-unknown-unknown"]
"""
    assert images(text) == [
        (
            "ghcr.io/cross-rs/x86_64-unknown-linux-gnu",
            "latest",
            "built-in image for x86_64-unknown-linux-gnu",
        ),
        (
            "ghcr.io/cross-rs/aarch64-unknown-linux-musl",
            "latest",
            "built-in image for aarch64-unknown-linux-musl",
        ),
        (
            "ghcr.io/cross-rs/armv7-unknown-linux-gnueabihf",
            "latest",
            "built-in image for armv7-unknown-linux-gnueabihf",
        ),
    ]


def test_registry_prefix_and_target_override() -> None:
    text = f"""
[targets]
default = ["x86_64-unknown-linux-gnu", "riscv64gc-unknown-linux-gnu"]
[targets."aarch64-unknown-linux-gnu".container]
image = "my.registry/aarch64:1@{D}"
[container]
registry = "registry.example.com/mirror/"
"""
    cfg = parse_config(text, P)
    assert [(u.name, u.tag, u.pinned) for u in cfg.images] == [
        ("registry.example.com/mirror/x86_64-unknown-linux-gnu", "latest", False),
        ("my.registry/aarch64", "1", True),
    ]
    assert cfg.images[1].source == 'targets."aarch64-unknown-linux-gnu".container.image'
    assert cfg.skipped_targets == ("riscv64gc-unknown-linux-gnu",)
    assert cfg.lockfile_path == Path("/proj/xcargo.lock")


def test_pinned_global_image() -> None:
    cfg = parse_config(f'[container]\nimage = "rust:1.70@{D}"\n', P)
    (u,) = cfg.images
    assert u.pinned and u.ref.digest == D and u.tag == "1.70"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[container\n", "not valid TOML"),
        ('container = "x"', "container: expected a table"),
        ("[container]\nimage = 3", "container.image: expected a string"),
        ('[container]\nimage = ""', "container.image: empty image reference"),
        ('[container]\nimage = "Rust:1"', "container.image: invalid reference 'Rust:1'"),
        ('[container]\nimage = "rust@md5:abc"', "container.image: invalid reference"),
        ('[container]\nruntime = "lxc"', "container.runtime: unknown runtime"),
        ('[targets]\ndefault = "x"', "targets.default: expected an array"),
        ("[targets]\ndefault = [1]", "targets.default[0]"),
        ('[targets."x".container]\nimage = "a b"', 'targets."x".container.image'),
        ("[profiles.p]\ntargets = 5", "profiles.p.targets"),
    ],
)
def test_errors_name_file_and_key(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_config(text, P)
    msg = str(exc.value)
    assert msg.startswith(f"{P}: ")
    assert fragment in msg
    assert "\n" not in msg
