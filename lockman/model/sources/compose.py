"""Compose file → ``services.<name>.image`` (and ``<name>.image`` in the v1 layout).

Compose interpolates ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
``${VAR:?err}`` and ``${VAR:+alt}`` from the process environment and the ``.env`` file next to
the compose file. lockman reads the ``.env`` file (when git tracks it) and never the process
environment: the lock must be the same on every machine and in CI, and a variable exported in
one shell would silently lock another image. A variable set in neither and with no default is
reported, and ``$$`` is a literal ``$``. A service with ``build:`` names the image it builds with
``image:``, not one it pulls: skipped, as Renovate's docker-compose manager does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from yaml.nodes import Node

from lockman.model.sources import Found, Unresolved, in_place
from lockman.model.sources import yamlnodes as y

_VAR = re.compile(r"\$(?:\$|\{([A-Za-z_]\w*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_]\w*))")


def interpolate(value: str, env: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """The value with ``env`` (a ``.env`` file's variables) and defaults applied, and the
    variables that have neither."""
    env = env or {}
    missing: list[str] = []

    def sub(m: re.Match[str]) -> str:
        if m.group() == "$$":
            return "$"
        name, op, word = m.group(1) or m.group(4), m.group(2), m.group(3)
        value = env.get(name)
        is_set = value is not None and (value != "" or op is None or not op.startswith(":"))
        if op in (":+", "+"):
            if is_set:
                return word or ""
        elif is_set:
            return value or ""
        elif op in (":-", "-"):
            return word or ""
        missing.append(name)
        return ""

    return _VAR.sub(sub, value), missing


_ENV_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*?)\s*")


def parse_env(text: str) -> dict[str, str]:
    """A ``.env`` file as compose reads it: ``KEY=value`` lines, ``#`` comments, values quoted
    with ``'`` (literal) or ``"`` (``\\"``, ``\\\\`` and ``\\$`` escapes), an unquoted value ending at
    `` #``. Unquoted and double-quoted values expand the variables set on earlier lines
    (``${BASE}-slim``, with defaults), as compose-go's dotenv parser does. A line that is none
    of these sets nothing, and neither does a value naming a variable set nowhere before it
    (compose would take it from the shell): a variable it meant stays unset and is reported
    where it is used, never guessed."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        m = _ENV_LINE.fullmatch(line)
        if m is None or line.lstrip().startswith("#"):
            continue
        key, raw = m.groups()
        value = _env_value(raw, env)
        if value is None:
            env.pop(key, None)  # this line cannot say what it sets: unset, whatever came before
        else:
            env[key] = value
    return env


def _env_value(raw: str, env: Mapping[str, str]) -> str | None:
    if raw[:1] == "'":
        end = raw.find("'", 1)
        return raw[1:end] if end >= 0 else None
    if raw[:1] == '"':
        end = _closing_quote(raw)
        if end < 0:
            return None
        # \$ is a literal $: written as $$, which interpolation turns into one $
        value = re.sub(r'\\([\\"$])', lambda e: "$$" if e.group(1) == "$" else e.group(1), raw[1:end])
    else:
        value = re.split(r"\s#", raw, maxsplit=1)[0].rstrip()
    value, missing = interpolate(value, env)
    return None if missing else value


def _closing_quote(raw: str) -> int:
    i = 1
    while i < len(raw):
        if raw[i] == "\\":
            i += 2
            continue
        if raw[i] == '"':
            return i
        i += 1
    return -1


_TOP_LEVEL = frozenset({"version", "name", "include", "networks", "volumes", "configs", "secrets"})


def services(root: Node | None) -> list[tuple[str, Node]]:
    """``services:`` (as ``services.<name>``), or in the v1 layout (no ``services`` and no
    ``version``: what docker-compose 1 ran and Renovate still reads) the top-level mappings."""
    if y.get(root, "services") is not None or y.get(root, "version") is not None:
        return [(f"services.{k}", v) for k, v in y.items(y.get(root, "services"))]
    return [(k, v) for k, v in y.items(root) if k not in _TOP_LEVEL and not k.startswith("x-")]


def extract(text: str, path: str, env: Mapping[str, str] | None = None) -> list[Found | Unresolved]:
    """``env``: the variables of the ``.env`` file next to the compose file (none by default)."""
    root = y.compose(text, path)
    out: list[Found | Unresolved] = []
    for name, service in services(root):
        node = y.get(service, "image")
        value = y.string(node)
        if node is None or value is None or y.get(service, "build") is not None or not value.strip():
            continue
        what = f"{name}.image"
        if "$" not in value:
            out.append(Found(value, path, y.line(node), y.scalar_span(text, node), what))
            continue
        ref, missing = interpolate(value, env)
        if missing:
            names = ", ".join(dict.fromkeys(missing))
            out.append(
                Unresolved(
                    path,
                    y.line(node),
                    f"{what} {value}: depends on {names}, which has no default and no .env value; not locked",
                )
            )
        else:  # ``${VAR:-image}``: the default is what is pinned in place (unless .env sets VAR)
            span = y.scalar_span(text, node)
            m = re.fullmatch(r"\$\{([A-Za-z_]\w*):?-([^}$]*)\}", value)
            at = (span[0] + m.start(2), span[0] + m.end(2)) if span and m else None
            out.append(Found(ref, path, y.line(node), at and in_place(text, at, ref), what))
    return out
