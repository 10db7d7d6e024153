"""Dockerfile extraction: which references a build pulls, where they are written, what is not guessed."""

from __future__ import annotations

from lockman.model.sources import Found, Unresolved, splice
from lockman.model.sources.dockerfile import expand, extract


def refs(text: str, **args: str) -> list[str]:
    return [
        f.ref if isinstance(f, Found) else f"?{f.message.split(':')[0]}" for f in extract(text, "D", args)
    ]


def written(text: str) -> list[str | None]:
    return [
        text[f.span[0] : f.span[1]] if isinstance(f, Found) and f.span else None for f in extract(text, "D")
    ]


def test_every_from_of_a_multi_stage_build_but_stages_and_scratch() -> None:
    text = "FROM rust:1.70 AS build\nFROM build AS test\nFROM scratch\nFROM Build\nFROM alpine:3.19\n"
    assert refs(text) == ["rust:1.70", "alpine:3.19"]
    assert [f.line for f in extract(text, "D") if isinstance(f, Found)] == [1, 5]


def test_a_stage_named_like_its_own_image_still_pulls_that_image() -> None:
    assert refs("FROM rust AS rust\nFROM rust\n") == ["rust"]


def test_platform_flag_and_case_insensitive_keywords() -> None:
    assert refs("from --platform=$BUILDPLATFORM node:20 as b\n") == ["node:20"]


def test_arg_defaults_before_the_first_from_are_substituted() -> None:
    text = 'ARG REG=ghcr.io\nARG VER="1.2"\nARG BASE=rust:1.70\nFROM ${REG}/x/y:${VER}\nFROM $BASE\n'
    assert refs(text) == ["ghcr.io/x/y:1.2", "rust:1.70"]
    # a FROM that is one ARG: its default is where the reference is written (and pinned)
    f = extract(text, "D")[1]
    assert isinstance(f, Found) and f.line == 3 and text[f.span[0] : f.span[1]] == "rust:1.70"  # type: ignore[index]
    assert extract(text, "D")[0].span is None  # type: ignore[union-attr]  # built from parts


def test_an_arg_with_no_default_is_reported_not_guessed() -> None:
    (f,) = extract("ARG CROSS_BASE_IMAGE\nFROM $CROSS_BASE_IMAGE\n", "D")
    assert isinstance(f, Unresolved) and "CROSS_BASE_IMAGE" in f.message and f.line == 2


def test_build_args_from_outside_win_over_defaults() -> None:
    text = "ARG BASE=ubuntu:20.04\nARG CROSS_BASE_IMAGE\nFROM $BASE\nFROM $CROSS_BASE_IMAGE\n"
    assert refs(text, BASE="ubuntu:22.04", CROSS_BASE_IMAGE="ghcr.io/cross-rs/x:0.2.5") == [
        "ubuntu:22.04",
        "ghcr.io/cross-rs/x:0.2.5",
    ]


def test_args_after_the_first_from_do_not_reach_later_froms() -> None:
    assert refs("FROM a\nARG B=b:1\nFROM $B\n") == ["a", "?FROM $B"]


def test_expansion_forms() -> None:
    assert expand("${A:-x}${B:+y}$C", {"C": "c", "B": "1"}) == ("xyc", [])
    assert expand("${A:-x}", {"A": ""}) == ("x", [])
    assert expand("${A-x}", {"A": ""}) == ("", [])
    assert expand("$A", {})[1] == ["A"]
    assert expand("${A#pre}", {"A": "v"})[1]  # not evaluated: reported


def test_line_continuations_and_comments_inside_them() -> None:
    text = "FROM \\\n# a comment\n\n   node:20 \\\n AS b\n"
    (f,) = extract(text, "D")
    assert isinstance(f, Found) and f.ref == "node:20" and f.line == 4 and written(text) == ["node:20"]


def test_escape_directive_and_crlf() -> None:
    text = "# escape=`\r\nFROM `\r\n  node:20\r\nRUN dir c:\\\r\nFROM alpine\r\n"
    assert refs(text) == ["node:20", "alpine"]


def test_syntax_directive_is_an_image_buildkit_pulls() -> None:
    text = "# syntax=docker/dockerfile:1.7\nFROM a\n"
    assert refs(text) == ["docker/dockerfile:1.7", "a"]
    assert refs("FROM a\n# syntax=docker/dockerfile:1\n") == ["a"]  # not at the top: a comment


def test_heredoc_bodies_are_not_instructions() -> None:
    text = "FROM a\nRUN <<EOF\nFROM evil:1\nEOF\nCOPY <<-'X' <<Y /d\n\tFROM evil:2\n\tX\nFROM evil:3\nY\nFROM b\n"
    assert refs(text) == ["a", "b"]


def test_copy_from_and_run_mount_from() -> None:
    text = "FROM a AS s\nCOPY --from=s /x /y\nCOPY --from=0 /x /y\nCOPY --link --from=busybox:1 /a /b\n"
    text += "RUN --mount=type=cache,from=golang:1.22,target=/c --mount=from=s true\n"
    assert refs(text) == ["a", "busybox:1", "golang:1.22"]
    assert written(text) == ["a", "busybox:1", "golang:1.22"]


def test_bom_and_spans_splice_back() -> None:
    text = "\ufeffFROM node:20 # not a comment in Docker, but a word\n"
    (f,) = extract(text, "D")
    assert isinstance(f, Found) and f.span is not None
    assert splice(text, {f.span: "node:20@sha256:" + "a" * 64}) == text.replace(
        "node:20", "node:20@sha256:" + "a" * 64
    )


def test_terminal_escapes_are_kept_as_written_for_the_caller_to_refuse() -> None:
    (f,) = extract("FROM \x1b[31mevil\n", "D")
    assert isinstance(f, Found) and f.ref == "\x1b[31mevil"  # lockman.images.sources refuses it


def test_a_repeated_directive_ends_the_directives() -> None:
    # BuildKit: a directive given twice is a comment, and so is every directive after it
    text = "# syntax=a/b:1\n# syntax=c/d:2\n# escape=`\nFROM e \\\n  f\n"
    assert refs(text) == ["a/b:1", "e"]


def test_expansion_of_set_empty_and_unset_values() -> None:
    assert expand("${A:-x}", {"A": "v"}) == ("v", [])
    assert expand("${A-x}", {"A": "v"}) == ("v", [])
    assert expand("${A-x}", {}) == ("x", [])
    assert expand("${A:+y}", {"A": ""}) == ("", [])
    assert expand("${A+y}", {"A": ""}) == ("y", [])
    assert expand("${A:+y}", {}) == ("", []) and expand("${A+y}", {}) == ("", [])


def test_quotes_are_stripped_only_when_they_pair() -> None:
    assert expand("${X:-aa}", {}) == ("aa", [])
    assert expand('${X:-"a:1}', {}) == ('"a:1', [])
    assert expand("${X:-'a:1'}", {}) == ("a:1", [])
    assert refs("ARG A=aa\nARG B='b:1\"\nFROM $A\nFROM $B\n") == ["aa", "'b:1\""]


def test_only_as_names_a_stage() -> None:
    assert refs("FROM a x y\nFROM y\n") == ["a", "y"]


def test_a_variable_naming_a_stage_is_that_stage() -> None:
    assert refs("ARG S=build\nFROM rust:1 AS build\nFROM $S\nFROM ${S}\n") == ["rust:1"]


def test_a_variable_naming_an_index_or_scratch_is_no_image() -> None:
    assert refs("ARG N=0\nARG E=scratch\nFROM a\nFROM $E\nCOPY --from=$N /x /y\n") == ["a"]


def test_cross_base_image_is_explained() -> None:
    (f,) = extract("ARG CROSS_BASE_IMAGE\nFROM $CROSS_BASE_IMAGE\n", "D")
    assert isinstance(f, Unresolved) and "cross passes its own image for the target" in f.message


def test_a_build_arg_from_outside_is_located_at_the_from() -> None:
    (f,) = extract("ARG B=u:1\nFROM $B\n", "D", {"B": "x:1"})
    assert isinstance(f, Found) and (f.ref, f.line, f.span) == ("x:1", 2, None)  # not pinnable in the ARG
