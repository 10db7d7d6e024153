"""The escapers every output format shares: terminal text and Markdown (report.md_text/md_code)."""

from __future__ import annotations

import json
import re

import pytest

from lockman import report
from lockman.console import one_line, terminal_safe
from lockman.model.insight import FieldChange, Insight, PackageChange, SbomDiff, SbomSignature
from lockman.report import md_code, md_text
from tests.support.markdown import gfm, visible


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
    for ch in "\\`*_[]<>#|~&$":
        unescaped = unescaped.replace("\\" + ch, "")
    assert not set(unescaped) & set("`*_[]<>|~&"), cell
    assert "\n" not in cell and "\r" not in cell


@pytest.mark.parametrize(
    ("plain", "cell"),
    [
        ("gcc (GCC) 13.2; glibc 2.39?", "gcc (GCC) 13.2; glibc 2.39?"),
        ("a=b, c+d {x} 'q' \"w\" 50% ^! :)", "a=b, c+d {x} 'q' \"w\" 50% ^! :)"),
        ("- not a list", "\\- not a list"),
        ("+ not a list", "\\+ not a list"),
        ("===", "\\==="),
        ("1. not a list", "1\\. not a list"),
        ("2) not a list", "2\\) not a list"),
        ("1.70 -rc1 +tag", "1.70 -rc1 +tag"),
    ],
)
def test_md_text_escapes_only_what_opens_markup(plain: str, cell: str) -> None:
    """``(`` ``;`` and other harmless punctuation stay as written (issue 27) and render the same,
    in a table cell, a heading, a note, and at the start of a line."""
    assert md_text(plain) == cell
    for markdown in (f"| a |\n|---|\n| {cell} |\n", f"#### {cell}\n", f"> note: {cell}\n", f"x\n\n{cell}\n"):
        rendered = gfm(markdown)
        assert plain in visible(rendered), (markdown, rendered)
        assert not re.search(r"<(li|ol|ul|hr|h1|h2)\b", rendered), (markdown, rendered)


def test_md_code_fence_outgrows_backticks() -> None:
    assert md_code("xcargo.lock") == "`xcargo.lock`"
    assert md_code("a`b") == "``a`b``"
    assert md_code("`x") == "`` `x ``"
    assert "\n" not in md_code("a\nb")


# Text a registry could write that GitHub's Markdown (cmark-gfm: CommonMark, tables and the
# autolink extension) would render as a link, an image or HTML.
HOSTILE_LINKS = [
    "https://evil.example/x",
    "HTTP://EVIL.EXAMPLE",
    "ftp://evil.example/f",
    "see:https://evil.example",
    "1.0+https://evil.example",
    "www.evil.example/path",
    "WWW.evil.example",
    "(www.evil.example)",
    "1.2~www.evil.example",
    "x_www.evil.example",
    "admin@evil.example",
    "first.last+tag@evil.example",
    "mailto:admin@evil.example",
    "xmpp:admin@evil.example/res",
    "<https://evil.example>",
    "<admin@evil.example>",
    "[click](https://evil.example)",
    "[click][r]\n\n[r]: https://evil.example",
    "![img](https://evil.example/i.png)",
    "<a href='https://evil.example'>x</a>",
    "<img src=https://evil.example/i.png>",
    "&#104;ttps://evil.example",
    "https:&#47;/evil.example",
    "\\https://evil.example",
    "`https://evil.example`",
]


@pytest.mark.parametrize("hostile", HOSTILE_LINKS)
def test_registry_text_renders_as_the_same_text_and_no_link(hostile: str) -> None:
    """A label such as ``source=https://evil.example`` shows as itself in every place registry
    text goes in a PR body (table cell, heading, note), and GitHub makes no link of it."""
    cell = md_text(hostile)
    for markdown in (f"| a | b |\n|---|---|\n| {cell} | x |\n", f"#### {cell}\n", f"> note: {cell}\n"):
        rendered = gfm(markdown)
        assert not re.search(r"<(a|img)\b", rendered), (markdown, rendered)
        assert hostile.replace("\n", "\\u000a") in visible(rendered), rendered


def test_update_and_verify_reports_link_nothing_a_registry_wrote() -> None:
    """The whole PR body, with registry text in every field that carries any: the only link is
    lockman's own compare link."""
    evil = "https://evil.example/a www.evil.example a@evil.example [x](https://evil.example)"
    insight = Insight(
        fields=(FieldChange("version", evil, evil), FieldChange("source", None, evil), FieldChange("revision", "a", evil)),
        compare_url="https://github.com/acme/app/compare/aaaa111...bbbb222",
        platforms_added=(evil,),
        platforms_removed=(evil,),
        sbom=SbomDiff(
            "SPDX", 1, 2, (PackageChange(evil, None, evil), PackageChange(evil, evil, None)),
            SbomSignature(False, evil),
        ),
        notes=(evil,),
        base_name=evil,
    )
    body = "\n".join(report.insight_markdown(insight))
    links = re.findall(r"<a\b[^>]*>", gfm(body))
    assert links == ['<a href="https://github.com/acme/app/compare/aaaa111...bbbb222">']
    verify = report.VerifyReport("xcargo.lock", False, (), (report.VerifyProblem("registry", "r:1", evil),))
    assert "<a" not in gfm(report.render_verify(verify, "markdown"))
