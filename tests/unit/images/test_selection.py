"""lockman.images.selection: ``lockman update IMAGE...`` selectors (name, name:tag, target triple)
name exactly the lock entries they should, and a selector that names nothing is an InputError."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockman.errors import InputError
from lockman.images.locker import Wanted, wanted_images
from lockman.images.selection import select
from lockman.model.xcargo import XcargoConfig, parse_config

CONFIG = """\
[container]
image = "rust:1.70"

[targets."aarch64-unknown-linux-gnu".container]
image = "ghcr.io/acme/cross:arm64"

[targets."armv7-unknown-linux-gnueabihf".container]
image = "rust:1.70"

[targets."x86_64-unknown-linux-musl"]
linker = "musl-gcc"
"""

BUILT_IN = """\
[targets."aarch64-unknown-linux-gnu"]
linker = "aarch64-linux-gnu-gcc"

[targets."x86_64-unknown-linux-musl"]
linker = "musl-gcc"
"""


def setup(text: str = CONFIG) -> tuple[list[Wanted], XcargoConfig]:
    config = parse_config(text, Path("proj/xcargo.toml"))
    return wanted_images(config.images, config.path), config


def chosen(*selectors: str, text: str = CONFIG) -> list[str]:
    wanted, config = setup(text)
    return [f"{w.use.name}:{w.use.tag}" for w in select(wanted, selectors, config)]


def test_no_selector_selects_every_image_in_order() -> None:
    wanted, config = setup()
    assert select(wanted, [], config) == wanted
    assert chosen() == ["ghcr.io/acme/cross:arm64", "rust:1.70"]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("rust", ["rust:1.70"]),
        ("rust:1.70", ["rust:1.70"]),
        ("ghcr.io/acme/cross", ["ghcr.io/acme/cross:arm64"]),
        ("ghcr.io/acme/cross:arm64", ["ghcr.io/acme/cross:arm64"]),
    ],
)
def test_name_or_name_and_tag_selects_that_image(selector: str, expected: list[str]) -> None:
    assert chosen(selector) == expected


PIN = "sha256:" + "ab" * 32
TWO_TAGS = f"""\
[container]
image = "rust:1.70@{PIN}"

[targets."aarch64-unknown-linux-gnu".container]
image = "rust:1.69"
"""


def test_name_and_tag_selects_one_tag_of_an_image_used_at_two() -> None:
    """What a bot's branch passes (``depName:newValue``): its bump, not the image's other tag."""
    assert chosen("rust", text=TWO_TAGS) == ["rust:1.69", "rust:1.70"]
    assert chosen("rust:1.70", text=TWO_TAGS) == ["rust:1.70"]
    assert chosen("rust:1.69", text=TWO_TAGS) == ["rust:1.69"]


def test_name_and_pinned_digest_selects_the_use_pinned_to_it() -> None:
    assert chosen(f"rust@{PIN}", text=TWO_TAGS) == ["rust:1.70"]
    with pytest.raises(InputError, match="no image matches"):
        chosen(f"rust@sha256:{'cd' * 32}", text=TWO_TAGS)
    with pytest.raises(InputError, match="no image matches"):
        chosen(f"cross@{PIN}", text=TWO_TAGS)


def test_target_with_its_own_image_selects_only_that_image() -> None:
    assert chosen("aarch64-unknown-linux-gnu") == ["ghcr.io/acme/cross:arm64"]
    assert chosen("armv7-unknown-linux-gnueabihf") == ["rust:1.70"]


def test_target_without_its_own_image_selects_the_container_image_that_serves_it() -> None:
    assert chosen("x86_64-unknown-linux-musl") == ["rust:1.70"]


def test_target_selects_its_built_in_image() -> None:
    assert chosen("x86_64-unknown-linux-musl", text=BUILT_IN) == [
        "ghcr.io/cross-rs/x86_64-unknown-linux-musl:latest"
    ]


def test_several_selectors_are_a_union_in_the_usual_order_without_repeats() -> None:
    assert chosen("rust", "aarch64-unknown-linux-gnu", "rust:1.70") == [
        "ghcr.io/acme/cross:arm64",
        "rust:1.70",
    ]


@pytest.mark.parametrize(
    "selector",
    ["rus", "rust:1.71", "acme/cross", "cross:arm64", "riscv64gc-unknown-linux-gnu", "RUST", ""],
)
def test_selector_that_matches_nothing_is_an_input_error(selector: str) -> None:
    with pytest.raises(InputError) as caught:
        chosen(selector)
    assert type(caught.value) is InputError
    assert str(caught.value) == (
        f"proj/xcargo.toml: no image matches {selector!r} (give a name, name:tag, name@digest or target triple; "
        "images: ghcr.io/acme/cross:arm64, rust:1.70)"
    )


def test_one_bad_selector_among_good_ones_is_still_an_error() -> None:
    with pytest.raises(InputError, match="'typo'"):
        chosen("rust", "typo")


def test_no_images_at_all_says_none() -> None:
    config = parse_config("", Path("xcargo.toml"))
    with pytest.raises(InputError, match=r"images: none\)$"):
        select([], ["rust"], config)
