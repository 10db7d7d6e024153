"""Images a project builds on, found in files other than xcargo.toml. Pure: text in, findings out.

One module per kind of file (Dockerfile/Containerfile, Cross.toml, GitHub workflows, compose).
Each yields :class:`Found` (a reference, where it is written and, when the reference is written
in one piece in the file, the exact ``span`` ``pin --write`` replaces) or :class:`Unresolved`
(a reference lockman will not guess: it depends on a variable with no default, or is not a
reference at all). Which files are read is decided by ``lockman.images.sources``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

KINDS = ("dockerfile", "cross", "workflow", "compose")


@dataclass(frozen=True)
class Found:
    """One image reference: as it resolves, and where it is written."""

    ref: str  # the reference after variable substitution
    path: str  # the file, relative to the project
    line: int  # 1-based line of the reference (of the ARG default it came from, when it did)
    span: tuple[int, int] | None  # text[span] is the reference as written; None: not in one piece
    what: str  # the instruction or key, for messages ("FROM", "jobs.build.container")

    @property
    def source(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Unresolved:
    """A reference lockman does not lock, and why (reported, never guessed)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


Finding = Found | Unresolved


class Lines:
    """Offset → 1-based line number of a text."""

    def __init__(self, text: str) -> None:
        self._starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    def line(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset)


def in_place(text: str, span: tuple[int, int], value: str) -> tuple[int, int] | None:
    """``span`` when the file holds exactly ``value`` there, else None (never rewrite a guess)."""
    return span if text[span[0] : span[1]] == value else None


def splice(text: str, edits: dict[tuple[int, int], str]) -> str:
    """``text`` with each span replaced; nothing else changes (comments, quoting, line endings).

    One span may be found more than once (a YAML anchor used by two services, a Dockerfile read
    with two sets of build args): the dict holds it once. Overlapping spans are a bug upstream.
    """
    out, pos = [], 0
    for (a, b), new in sorted(edits.items()):
        if a < pos:
            raise ValueError(f"overlapping spans at {a}")
        out += [text[pos:a], new]
        pos = b
    out.append(text[pos:])
    return "".join(out)
