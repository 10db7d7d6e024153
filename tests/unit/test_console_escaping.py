"""The escapers every output format shares: terminal text and Markdown (report.md_text/md_code)."""

from __future__ import annotations

import json

import pytest

from lockman.console import one_line, terminal_safe
from lockman.report import md_code, md_text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text", "plain text"),
        ("a\x1b]0;title\x07b", "a\\u001b]0;title\\u0007b"),  # OSC: retitle the window
        ("a\x1b[2Jb", "a\\u001b[2Jb"),  # clear screen
        ("\u202etxt.exe", "\\u202etxt.exe"),  # right-to-left override
        ("x\ud800y", "x\\ud800y"),  # a lone surrogate cannot be written as UTF-8
        ("c1 \x9b31m", "c1 \\u009b31m"),  # the 8-bit CSI
        ("line\nnext\ttab", "line\nnext\ttab"),
    ],
)
def test_terminal_safe(raw: str, shown: str) -> None:
    assert terminal_safe(raw) == shown
    shown.encode("utf-8")  # always writable


def test_terminal_safe_keeps_only_lockmans_own_colours() -> None:
    assert terminal_safe("\x1b[31mred\x1b[0m") == "\x1b[31mred\x1b[0m"
    assert terminal_safe("\x1b[8mhidden\x1b[0m") == "\\u001b[8mhidden\x1b[0m"
    assert one_line("a\nb\x1b[31m\u202e\ud800") == "a\\x0ab\\x1b[31m\\u202e\\ud800"


def test_terminal_safe_keeps_json_valid() -> None:
    doc = json.dumps({"os": "linux\x85\u202e\x1b"}, ensure_ascii=False)
    assert json.loads(terminal_safe(doc)) == {"os": "linux\x85\u202e\x1b"}


@pytest.mark.parametrize(
    "hostile",
    [
        "amd64 | ✅ safe to merge |",
        "<!-- the rest of the body is hidden",
        "[click](https://evil.example) ![img](x)",
        "**bold** _em_ `code` ~~strike~~ <b>html</b> &amp; @octocat #1",
        "two\nlines\r\n| new | row |",
    ],
)
def test_md_text_leaves_no_markup(hostile: str) -> None:
    cell = md_text(hostile)
    unescaped = cell
    for ch in "\\`*_{}[]()<>#+!|~&=^$%\"'@;?":
        unescaped = unescaped.replace("\\" + ch, "")
    assert not set(unescaped) & set("`*_[]()<>|~&@"), cell
    assert "\n" not in cell and "\r" not in cell


def test_md_code_fence_outgrows_backticks() -> None:
    assert md_code("xcargo.lock") == "`xcargo.lock`"
    assert md_code("a`b") == "``a`b``"
    assert md_code("`x") == "`` `x ``"
    assert "\n" not in md_code("a\nb")
