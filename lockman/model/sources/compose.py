"""Compose file → ``services.<name>.image``.

Compose interpolates ``$VAR``, ``${VAR}``, ``${VAR:-default}`` and ``${VAR-default}`` from the
environment (and ``.env``); lockman does not read either, so a variable with no default is
reported, and ``$$`` is a literal ``$``. A service with ``build:`` names the image it builds with
``image:``, not one it pulls: skipped, as Renovate's docker-compose manager does.
"""

from __future__ import annotations

import re

from lockman.model.sources import Found, Unresolved, in_place
from lockman.model.sources import yamlnodes as y

_VAR = re.compile(r"\$(?:\$|\{([A-Za-z_]\w*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_]\w*))")


def interpolate(value: str) -> tuple[str, list[str]]:
    """The value with defaults applied, and the variables that have none."""
    missing: list[str] = []

    def sub(m: re.Match[str]) -> str:
        if m.group() == "$$":
            return "$"
        name, op, word = m.group(1) or m.group(4), m.group(2), m.group(3)
        if op in (":-", "-"):
            return word or ""
        missing.append(name)
        return ""

    return _VAR.sub(sub, value), missing


def extract(text: str, path: str) -> list[Found | Unresolved]:
    root = y.compose(text, path)
    out: list[Found | Unresolved] = []
    for name, service in y.items(y.get(root, "services")):
        node = y.get(service, "image")
        value = y.string(node)
        if node is None or value is None or y.get(service, "build") is not None or not value.strip():
            continue
        what = f"services.{name}.image"
        if "$" not in value:
            out.append(Found(value, path, y.line(node), y.scalar_span(text, node), what))
            continue
        ref, missing = interpolate(value)
        if missing:
            names = ", ".join(dict.fromkeys(missing))
            out.append(
                Unresolved(
                    path,
                    y.line(node),
                    f"{what} {value}: depends on {names}, which has no default; not locked",
                )
            )
        else:  # ``${VAR:-image}``: the default is what is pinned in place
            span = y.scalar_span(text, node)
            m = re.fullmatch(r"\$\{[A-Za-z_]\w*:?-([^}$]*)\}", value)
            at = (span[0] + m.start(1), span[0] + m.end(1)) if span and m else None
            out.append(Found(ref, path, y.line(node), at and in_place(text, at, ref), what))
    return out
