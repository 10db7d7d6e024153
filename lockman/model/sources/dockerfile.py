"""Dockerfile / Containerfile → the images the build pulls.

Follows BuildKit's parser where it matters for which image is pulled: parser directives at the
top (``# escape=`` changes the continuation character; ``# syntax=`` names the frontend image,
which BuildKit pulls, so it is locked like a base), line continuations (with comment and empty
lines inside them skipped), heredocs (their bodies are not instructions), ``FROM [--flags] IMAGE
[AS name]``, ``COPY/ADD --from=IMAGE`` and ``RUN --mount=…,from=IMAGE``. A stage referenced by
name (or by index) and ``scratch`` are not images. Variables in a ``FROM`` come from the ``ARG``s
before the first ``FROM`` (the only ones ``FROM`` sees), with ``${X:-default}`` and ``${X:+alt}``;
build arguments given from outside (Cross.toml's ``build-args``) override their defaults. A
reference that needs a variable with no value is :class:`Unresolved`, never guessed.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from lockman.model.sources import Found, Lines, Unresolved, in_place

_DIRECTIVE = re.compile(r"[ \t]*#[ \t]*([A-Za-z]+)[ \t]*=[ \t]*(\S*)[ \t]*$")
_HEREDOC = re.compile(r"<<(-?)[ \t]*([\"']?)([A-Za-z_][\w.-]*)\2")
_VAR = re.compile(r"\$(?:\{([A-Za-z_]\w*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_]\w*))")
_BAD_VAR = re.compile(r"\$\{[^}]*\}")
_HINTS = {
    "CROSS_BASE_IMAGE": "cross passes its own image for the target, at the installed cross's version, "
    "which lockman cannot know; pin the base in the FROM instead",
}


@dataclass
class _Word:
    text: str
    start: int  # offset in the logical line


@dataclass
class _Instruction:
    text: str  # the logical line, continuations joined
    offsets: list[int]  # file offset of each character of ``text``

    def span(self, start: int, end: int) -> tuple[int, int] | None:
        """The file span of ``text[start:end]`` when it is contiguous in the file."""
        if end <= start:
            return None
        a, b = self.offsets[start], self.offsets[end - 1] + 1
        return (a, b) if b - a == end - start else None


@dataclass
class _Arg:
    value: str | None
    span: tuple[int, int] | None = None  # where a literal default is written
    line: int = 0
    depends: tuple[str, ...] = field(default=())


def _physical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(offset, line without its line break) for every line."""
    pos = 0
    for raw in text.splitlines(keepends=True):
        yield pos, raw.rstrip("\r\n")
        pos += len(raw)


MAX_WORDS = 256
"""Words of an instruction looked at: its flags, image and stage name come first. A RUN with a
megabyte of arguments costs no more than a short one."""


def _words(s: str) -> list[_Word]:
    return [_Word(m.group(), m.start()) for m in itertools.islice(re.finditer(r"\S+", s), MAX_WORDS)]


def _directives(lines: list[tuple[int, str]]) -> tuple[dict[str, tuple[str, int]], int]:
    """Parser directives at the top: name → (value, file offset of value); lines they take."""
    found: dict[str, tuple[str, int]] = {}
    n = 0
    for offset, line in lines:
        m = _DIRECTIVE.match(line)
        if not m or m.group(1).lower() in found:
            break
        found[m.group(1).lower()] = (m.group(2), offset + m.start(2))
        n += 1
    return found, n


def expand(value: str, args: Mapping[str, str | None]) -> tuple[str, list[str]]:
    """``value`` with ``$X``, ``${X}``, ``${X:-d}``, ``${X:+a}`` substituted; names with no value."""
    missing: list[str] = []

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(4)
        op, word = m.group(2), m.group(3) or ""
        v = args.get(name)
        if len(word) >= 2 and word[0] == word[-1] and word[0] in "\"'":
            word = word[1:-1]  # ${X:-"a b"}: the shell's quotes are not part of the value
        if op in (":-", "-"):
            return v if v is not None and (v != "" or op == "-") else expand(word, args)[0]
        if op in (":+", "+"):
            return expand(word, args)[0] if v is not None and (v != "" or op == "+") else ""
        if v is None:
            missing.append(name)
            return ""
        return v

    out = _VAR.sub(sub, value)
    bad = _BAD_VAR.findall(out)
    missing += [f"{b} (an expansion lockman does not evaluate)" for b in bad if "$" in b]
    return out, missing


def _instructions(text: str, lines: list[tuple[int, str]], escape: str) -> Iterator[_Instruction]:
    """Logical instructions: continuations joined, comments and heredoc bodies left out."""
    i = 0
    while i < len(lines):
        offset, line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts: list[tuple[int, str]] = []
        while True:
            body = line.rstrip(" \t")
            if body.endswith(escape):
                parts.append((offset, body[:-1]))
                # next non-comment, non-empty line continues the instruction
                while i < len(lines) and (not lines[i][1].strip() or lines[i][1].lstrip().startswith("#")):
                    i += 1
                if i >= len(lines):
                    break
                offset, line = lines[i]
                i += 1
                continue
            parts.append((offset, line))
            break
        chars: list[str] = []
        offsets: list[int] = []
        for off, part in parts:
            chars.append(part)
            offsets.extend(range(off, off + len(part)))
        ins = _Instruction("".join(chars), offsets)
        yield ins
        keyword = ins.text.split(None, 1)[0].upper() if ins.text.strip() else ""
        if keyword in ("RUN", "COPY", "ADD"):
            for m in _HEREDOC.finditer(ins.text):
                strip_tabs, delim = m.group(1) == "-", m.group(3)
                while i < len(lines):
                    body = lines[i][1]
                    i += 1
                    if (body.lstrip("\t") if strip_tabs else body) == delim:
                        break


def _flag_value(words: list[_Word], name: str) -> tuple[str, int] | None:
    """``--name=value`` among the leading flags: (value, offset in the logical line)."""
    for w in words:
        if not w.text.startswith("--"):
            break
        if w.text.lower().startswith(f"--{name}="):
            k = len(name) + 3
            return w.text[k:], w.start + k
    return None


def _mount_from(words: list[_Word]) -> Iterator[tuple[str, int]]:
    for w in words:
        if not w.text.startswith("--"):
            break
        if w.text.lower().startswith("--mount="):
            pos = 8
            for item in w.text[8:].split(","):
                if item.lower().startswith("from="):
                    yield item[5:], w.start + pos + 5
                pos += len(item) + 1


def _parse_args(
    ins: _Instruction, words: list[_Word], args: dict[str, _Arg], lines: Lines, text: str
) -> None:
    """``ARG a=1 b`` (before the first FROM): defaults, expanded with the args before them."""
    for w in words[1:]:
        name, eq, raw = w.text.partition("=")
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            continue
        if not eq:
            args.setdefault(name, _Arg(None, None, lines.line(ins.offsets[w.start])))
            continue
        vstart = w.start + len(name) + 1
        vend = w.start + len(w.text)
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            raw, vstart, vend = raw[1:-1], vstart + 1, vend - 1
        values = {k: a.value for k, a in args.items()}
        value, missing = expand(raw, values)
        span = ins.span(vstart, vend) if "$" not in raw else None
        if span is not None:
            span = in_place(text, span, raw)
        line = lines.line(ins.offsets[vstart]) if vstart < len(ins.offsets) else 0
        args[name] = _Arg(None if missing else value, span, line, tuple(missing))


def extract(text: str, path: str, build_args: Mapping[str, str] | None = None) -> list[Found | Unresolved]:
    """Every image the Dockerfile ``text`` pulls, in order, and every one lockman cannot tell."""
    build_args = dict(build_args or {})
    start = 1 if text.startswith("\ufeff") else 0
    lines = [(o + start, ln) for o, ln in _physical_lines(text[start:])]
    where = Lines(text)
    found: list[Found | Unresolved] = []
    directives, skip = _directives(lines)
    escape = directives.get("escape", ("\\", 0))[0]
    if escape not in ("\\", "`"):
        escape = "\\"
    if "syntax" in directives:
        value, offset = directives["syntax"]
        found.append(
            _found(value, path, where.line(offset), (offset, offset + len(value)), "# syntax=", text)
        )
    args: dict[str, _Arg] = {}
    stages: set[str] = set()
    seen_from = False
    for ins in _instructions(text, lines[skip:], escape):
        words = _words(ins.text)
        if not words:
            continue
        keyword = words[0].text.upper()
        if keyword == "ARG" and not seen_from:
            _parse_args(ins, words, args, where, text)
            for name, value in build_args.items():  # given from outside: they win over defaults
                if name in args:
                    args[name] = _Arg(value, None, args[name].line)
            continue
        rest = words[1:]
        refs: list[tuple[str, int, str]] = []  # (written, offset in logical line, instruction)
        stage = None
        if keyword == "FROM":
            seen_from = True
            image = next((w for w in rest if not w.text.startswith("--")), None)
            if image is None:  # BuildKit refuses the file; say so rather than lock less
                found.append(Unresolved(path, where.line(ins.offsets[0]), "FROM names no image"))
                continue
            after = rest[rest.index(image) + 1 :]
            if len(after) >= 2 and after[0].text.lower() == "as":
                stage = after[1].text.lower()  # named after the image is read: FROM rust AS rust
            refs.append((image.text, image.start, "FROM"))
        elif keyword in ("COPY", "ADD"):
            v = _flag_value(rest, "from")
            if v is not None:
                refs.append((v[0], v[1], f"{keyword} --from"))
        elif keyword == "RUN":
            refs += [(v, o, "RUN --mount from") for v, o in _mount_from(rest)]
        for written, at, what in refs:
            item = _reference(ins, written, at, what, path, args, stages, where, text)
            if item is not None:
                found.append(item)
        if stage is not None:
            stages.add(stage)
    return found


def _reference(
    ins: _Instruction,
    written: str,
    at: int,
    what: str,
    path: str,
    args: Mapping[str, _Arg],
    stages: set[str],
    where: Lines,
    text: str,
) -> Found | Unresolved | None:
    if not written:  # ``COPY --from=`` with nothing after it: BuildKit refuses it, nothing to pull
        return None
    line = where.line(ins.offsets[at])
    if "$" not in written:
        if written.lower() in stages or written.lower() == "scratch" or written.isdigit():
            return None
        return _found(written, path, line, ins.span(at, at + len(written)), what, text)
    values = {k: a.value for k, a in args.items()}
    value, missing = expand(written, values)
    if missing:
        names = ", ".join(dict.fromkeys(missing))
        return Unresolved(
            path,
            line,
            f"{what} {written}: depends on {names}, which has no value here; "
            f"not locked ({_HINTS.get(missing[0], 'give the ARG a default')})",
        )
    if value.lower() in stages or value.lower() == "scratch" or value.isdigit():
        return None
    # written as one variable whose value is a literal ARG default: that default is what to pin
    m = _VAR.fullmatch(written)
    name = (m.group(1) or m.group(4)) if m else ""
    if m and not m.group(2) and name in args and args[name].span is not None:
        arg = args[name]
        return _found(value, path, arg.line, arg.span, what, text)
    return _found(value, path, line, None, what, text)


def _found(ref: str, path: str, line: int, span: tuple[int, int] | None, what: str, text: str) -> Found:
    if span is not None:
        span = in_place(text, span, ref)
    return Found(ref, path, line, span, what)
