"""Cross.toml (cross-rs) → the images its targets run in, and the Dockerfiles it builds.

``[target.<triple>].image`` as a string or as a table (``image = { name = "…", toolchain = […] }``
or ``image.name``). ``[build].dockerfile`` and ``[target.<triple>].dockerfile`` (a path, or
``{ file, context, build-args }``) name Dockerfiles whose bases are images too: they are read with
those build arguments. cross itself passes ``CROSS_BASE_IMAGE`` (its own image for the target, at
the installed cross's version), which lockman cannot know: a ``FROM $CROSS_BASE_IMAGE`` with no
``ARG`` default is reported.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from lockman.errors import InputError
from lockman.model.sources import Found, Lines, Unresolved, in_place


@dataclass(frozen=True)
class CrossDockerfile:
    """A Dockerfile Cross.toml builds: its path relative to Cross.toml, and the build args given."""

    file: str
    build_args: dict[str, str] = field(default_factory=dict)
    key: str = ""


def _value_spans(text: str, value: str) -> list[tuple[int, int]]:
    """Where ``value`` is written as the string of an ``image``/``name`` key, in file order."""
    pattern = re.compile(r"(?:image|name)[\"']?\s*=\s*([\"'])(" + re.escape(value) + r")\1")
    return [m.span(2) for m in pattern.finditer(text)]


def extract(text: str, path: str) -> tuple[list[Found | Unresolved], list[CrossDockerfile]]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML: {e}") from None
    lines = Lines(text)
    found: list[Found | Unresolved] = []
    dockerfiles: list[CrossDockerfile] = []
    used: dict[str, int] = {}

    def image(value: Any, key: str) -> None:
        if isinstance(value, dict):
            value, key = value.get("name"), f"{key}.name"
        if not isinstance(value, str) or not value.strip():
            return
        spans = _value_spans(text, value)
        n = used.get(value, 0)
        used[value] = n + 1
        span = spans[n] if n < len(spans) else None
        line = lines.line(span[0]) if span else (lines.line(spans[0][0]) if spans else 1)
        found.append(Found(value, path, line, span and in_place(text, span, value), key))

    def dockerfile(value: Any, key: str) -> None:
        if isinstance(value, str):
            dockerfiles.append(CrossDockerfile(value, {}, key))
        elif isinstance(value, dict) and isinstance(value.get("file"), str):
            args = value.get("build-args")
            args = {k: v for k, v in args.items() if isinstance(v, str)} if isinstance(args, dict) else {}
            dockerfiles.append(CrossDockerfile(value["file"], args, key))

    build = doc.get("build")
    if isinstance(build, dict):
        dockerfile(build.get("dockerfile"), "build.dockerfile")
    targets = doc.get("target")
    for triple, conf in targets.items() if isinstance(targets, dict) else ():
        if not isinstance(conf, dict):
            continue
        image(conf.get("image"), f"target.{triple}.image")
        dockerfile(conf.get("dockerfile"), f"target.{triple}.dockerfile")
    return found, dockerfiles
