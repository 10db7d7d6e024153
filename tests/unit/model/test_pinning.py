"""lockman.model.pinning: digests written into xcargo.toml change the image strings and nothing
else (comments, blank lines, quote style, key order, CRLF line ends); a bad file or image is an
InputError naming the file and key."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lockman.errors import InputError
from lockman.model import reference
from lockman.model.pinning import PinEdit, pinned_text, rewrite, unified_diff
from lockman.model.reference import Reference

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64

CONFIG = """\
# xcargo.toml: comments and layout are the user's
[build]
default-target = "x86_64-unknown-linux-gnu"

[container]
image = "rust:1.70"   # the toolchain image
runtime = "docker"

[targets."aarch64-unknown-linux-gnu".container]
image = 'ghcr.io/acme/cross:arm64'  # literal string

[targets."riscv64gc-unknown-linux-gnu"]
linker = "riscv64-linux-gnu-gcc"
"""


def always(digest: str | None) -> Callable[[str, Reference], str | None]:
    return lambda key, ref: digest


def test_pinned_text_keeps_the_name_as_written_and_the_tag() -> None:
    assert pinned_text(reference.parse("rust:1.70"), D1) == f"rust:1.70@{D1}"
    assert pinned_text(reference.parse("ghcr.io/acme/cross"), D1) == f"ghcr.io/acme/cross:latest@{D1}"
    assert pinned_text(reference.parse(f"rust@{D2}", default_tag=None), D1) == f"rust@{D1}"


def test_every_image_key_is_pinned_and_everything_else_kept() -> None:
    new, edits = rewrite(CONFIG, "xcargo.toml", always(D1))
    expected = CONFIG.replace('"rust:1.70"', f'"rust:1.70@{D1}"').replace(
        "'ghcr.io/acme/cross:arm64'", f"'ghcr.io/acme/cross:arm64@{D1}'"
    )
    assert new == expected
    assert edits == [
        PinEdit("container.image", "rust:1.70", f"rust:1.70@{D1}"),
        PinEdit(
            'targets."aarch64-unknown-linux-gnu".container.image',
            "ghcr.io/acme/cross:arm64",
            f"ghcr.io/acme/cross:arm64@{D1}",
        ),
    ]


def test_the_callback_sees_each_key_and_reference_and_may_leave_one_alone() -> None:
    seen: list[tuple[str, str]] = []

    def only_container(key: str, ref: Reference) -> str | None:
        seen.append((key, ref.familiar()))
        return D1 if key == "container.image" else None

    new, edits = rewrite(CONFIG, "xcargo.toml", only_container)
    assert [k for k, _ in seen] == ["container.image", 'targets."aarch64-unknown-linux-gnu".container.image']
    assert seen[0][1].startswith("rust:1.70") and [e.key for e in edits] == ["container.image"]
    assert "'ghcr.io/acme/cross:arm64'  # literal string" in new


def test_nothing_to_change_returns_the_text_itself() -> None:
    new, edits = rewrite(CONFIG, "xcargo.toml", always(None))
    assert new is CONFIG and edits == []


def test_a_pin_already_at_the_digest_is_no_edit() -> None:
    text = f'[container]\nimage = "rust:1.70@{D1}"\n'
    new, edits = rewrite(text, "xcargo.toml", always(D1))
    assert new == text and edits == []


def test_an_old_pin_is_replaced_not_appended() -> None:
    text = f'[container]\nimage = "rust:1.70@{D1}" # pinned\n'
    new, edits = rewrite(text, "xcargo.toml", always(D2))
    assert new == f'[container]\nimage = "rust:1.70@{D2}" # pinned\n'
    assert edits == [PinEdit("container.image", f"rust:1.70@{D1}", f"rust:1.70@{D2}")]


def test_crlf_line_ends_are_kept() -> None:
    text = CONFIG.replace("\n", "\r\n")
    new, _ = rewrite(text, "xcargo.toml", always(D1))
    assert new.count("\r\n") == text.count("\r\n") and "\n" not in new.replace("\r\n", "")
    assert f'image = "rust:1.70@{D1}"   # the toolchain image\r\n' in new


def test_inline_table_and_dotted_keys_are_found() -> None:
    text = (
        'container = { image = "rust:1.70", runtime = "podman" }\n'
        '[targets]\n"aarch64-unknown-linux-gnu".container.image = "cross:arm64"\n'
    )
    new, edits = rewrite(text, "xcargo.toml", always(D1))
    assert new == (
        f'container = {{ image = "rust:1.70@{D1}", runtime = "podman" }}\n'
        f'[targets]\n"aarch64-unknown-linux-gnu".container.image = "cross:arm64@{D1}"\n'
    )
    assert len(edits) == 2


def test_targets_default_and_non_image_keys_are_never_touched() -> None:
    text = (
        '[targets.default.container]\nimage = "rust:1.70"\n'
        '[targets."x86_64-unknown-linux-gnu"]\nimage = "not-a-container-key"\n'
        '[other]\nimage = "rust:1.70"\n'
    )
    new, edits = rewrite(text, "xcargo.toml", always(D1))
    assert new is text and edits == []


def test_a_literal_string_stays_literal_and_a_basic_one_basic() -> None:
    new, _ = rewrite("[container]\nimage = 'rust:1.70'\n", "xcargo.toml", always(D1))
    assert new == f"[container]\nimage = 'rust:1.70@{D1}'\n"
    new, _ = rewrite('[container]\nimage = "rust:1.70"\n', "xcargo.toml", always(D1))
    assert new == f'[container]\nimage = "rust:1.70@{D1}"\n'


def test_invalid_toml_is_an_input_error_naming_the_file() -> None:
    with pytest.raises(InputError, match=r"^conf/xcargo.toml: not valid TOML"):
        rewrite("[container\nimage = 1", "conf/xcargo.toml", always(D1))


def test_invalid_image_is_an_input_error_naming_file_and_key() -> None:
    text = '[targets."aarch64-unknown-linux-gnu".container]\nimage = "Not A Reference!"\n'
    with pytest.raises(
        InputError, match=r'^xcargo.toml: targets."aarch64-unknown-linux-gnu".container.image: '
    ):
        rewrite(text, "xcargo.toml", always(D1))


def test_unified_diff_shows_only_the_changed_line() -> None:
    new, _ = rewrite(CONFIG, "xcargo.toml", lambda k, r: D1 if k == "container.image" else None)
    diff = unified_diff(CONFIG, new, "xcargo.toml")
    assert diff.startswith("--- a/xcargo.toml\n+++ b/xcargo.toml\n")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    assert changed == [
        '-image = "rust:1.70"   # the toolchain image',
        f'+image = "rust:1.70@{D1}"   # the toolchain image',
    ]
    assert unified_diff(CONFIG, CONFIG, "xcargo.toml") == ""
