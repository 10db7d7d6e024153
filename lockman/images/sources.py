"""Which files of the project are read for images, and the images they name.

The project is the directory of xcargo.toml; its files are the ones git tracks there
(``git ls-files``), so build output, vendored trees and scratch files never add images, and the
lock is the same on every clone. Every kind is read by default: Dockerfiles/Containerfiles,
Cross.toml (and the Dockerfiles it names, with their build arguments), GitHub workflows and
compose files. ``[sources]`` in lockman.toml narrows that::

    [sources]
    kinds = ["dockerfile", "cross", "workflow", "compose"]
    include = ["docker/**"]      # only these paths (default: every tracked file)
    exclude = ["examples/**"]    # never these
    ignore = ["myorg/base"]      # images built by the project itself, not pulled (name globs)

Each file is read bounded (a huge file is bad input naming it, exit 2). Outside a git work tree
(or without git) only xcargo.toml is read.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import subprocess
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from lockman import programs
from lockman.errors import InputError, InvalidReference
from lockman.fileio import read_bounded, read_utf8
from lockman.model import reference as refmod
from lockman.model.sources import KINDS, Found, Unresolved, cross, dockerfile
from lockman.model.xcargo import ImageUse, XcargoConfig, load_config

MAX_SOURCE_BYTES = 8 << 20
"""A Dockerfile, workflow or compose file larger than this is not one."""

_DOCKERFILE = re.compile(r"(^|/|\.)([Dd]ocker|[Cc]ontainer)file$|(^|/)([Dd]ocker|[Cc]ontainer)file[^/]*$")
_WORKFLOW = re.compile(r"(^|/)\.github/workflows/[^/]+\.ya?ml$|(^|/)action\.ya?ml$")
_COMPOSE = re.compile(r"(^|/)(?:docker-)?compose[^/]*\.ya?ml$")


def kind_of(path: str) -> str | None:
    """The kind of file a tracked path is, by its name (Renovate's default file patterns)."""
    if _WORKFLOW.search(path):
        return "workflow"
    if _COMPOSE.search(path):
        return "compose"
    if PurePosixPath(path).name == "Cross.toml":
        return "cross"
    if _DOCKERFILE.search(path):
        return "dockerfile"
    return None


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob: ``*`` and ``?`` within one directory, ``**`` across any number of them."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


@dataclass(frozen=True)
class Settings:
    kinds: frozenset[str] = frozenset(KINDS)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def ignores(self, name: str) -> bool:
        """An image the project builds itself (``FROM myorg/base`` after building it): not locked."""
        return any(fnmatch.fnmatchcase(name, g) for g in self.ignore)

    def wants(self, path: str) -> bool:
        if self.include and not any(glob_regex(g).fullmatch(path) for g in self.include):
            return False
        return not any(glob_regex(g).fullmatch(path) for g in self.exclude)


def settings(project: Path) -> Settings:
    """``[sources]`` of lockman.toml next to xcargo.toml (defaults when there is none)."""
    path = project / "lockman.toml"
    data = read_bounded(path, limit=MAX_SOURCE_BYTES, what="a TOML file")
    if data is None:
        return Settings()
    try:
        table = tomllib.loads(data.decode("utf-8")).get("sources", {})
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"{path}: not valid TOML: {e}") from None
    if not isinstance(table, dict):
        raise InputError(f"{path}: sources: expected a table")

    def strings(key: str, default: Iterable[str]) -> tuple[str, ...]:
        v = table.get(key, list(default))
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise InputError(f"{path}: sources.{key}: expected an array of strings")
        return tuple(v)

    kinds = strings("kinds", KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InputError(f"{path}: sources.kinds: unknown kind {unknown[0]!r} (one of {', '.join(KINDS)})")
    return Settings(frozenset(kinds), strings("include", ()), strings("exclude", ()), strings("ignore", ()))


def tracked_files(project: Path) -> list[str] | None:
    """Paths git tracks under ``project``, relative to it; None outside a work tree or without git."""
    exe = programs.find("git")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            # fsmonitor would run a program named by the repository's config: never here
            [exe, "-c", "core.fsmonitor=false", "-C", str(project), "ls-files", "-z", "--cached"],
            capture_output=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return sorted({p for p in done.stdout.decode("utf-8", "surrogateescape").split("\0") if p})


def read_source(project: Path, rel: str) -> str | None:
    """The text of a tracked file, bounded; None when it is not a regular file on disk."""
    path = project / rel
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None  # links (a tracked link to /etc/…) and deleted files are not read
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    return read_utf8(path, kind=kind_of(rel) or "source", limit=MAX_SOURCE_BYTES)


@dataclass(frozen=True)
class Discovered:
    found: tuple[Found, ...] = ()
    unresolved: tuple[Unresolved, ...] = ()
    texts: dict[str, str] | None = None  # path → text as read, for pin --write


def dotenv(project: Path, compose_file: str, files: list[str]) -> dict[str, str]:
    """The ``.env`` next to a compose file, as ``docker compose`` reads it for ``${VAR}``; only
    when git tracks it (an untracked one would make the lock differ between clones), and never
    the process environment (it differs between shells and CI)."""
    from lockman.model.sources import compose  # YAML, loaded only for a project that has some

    rel = str(PurePosixPath(compose_file).parent / ".env").removeprefix("./")
    text = read_source(project, rel) if rel in files else None
    return compose.parse_env(text) if text is not None else {}


def discover(project: Path) -> Discovered:
    """Every image reference in the project's tracked files, and those lockman cannot tell."""
    files = tracked_files(project)
    if files is None:
        return Discovered()
    wanted = settings(project)
    tracked, files = files, [f for f in files if wanted.wants(f)]
    found: list[Found | Unresolved] = []
    texts: dict[str, str] = {}
    build_args: dict[str, list[dict[str, str]]] = {}
    by_kind: dict[str, list[str]] = {}
    for f in files:
        k = kind_of(f)
        if k is not None and k in wanted.kinds:
            by_kind.setdefault(k, []).append(f)
    for f in by_kind.get("cross", []):
        text = read_source(project, f)
        if text is None:
            continue
        texts[f] = text
        images, dockerfiles = cross.extract(text, f)
        found += images
        base = PurePosixPath(f).parent
        for d in dockerfiles if "dockerfile" in wanted.kinds else ():
            rel = os.path.normpath(str(base / d.file)).replace(os.sep, "/")
            if rel in files:
                build_args.setdefault(rel, []).append(d.build_args)
    for f in sorted(set(by_kind.get("dockerfile", [])) | set(build_args)):
        text = read_source(project, f)
        if text is None:
            continue
        texts[f] = text
        for args in build_args.get(f) or [{}]:
            found += dockerfile.extract(text, f, args)
    if by_kind.get("workflow") or by_kind.get("compose"):
        # PyYAML (about 9 ms to import) only for projects with workflow or compose files.
        from lockman.model.sources import compose, workflow
    for f in by_kind.get("workflow", []):
        text = read_source(project, f)
        if text is not None:
            texts[f] = text
            found += workflow.extract(text, f)
    for f in by_kind.get("compose", []):
        text = read_source(project, f)
        if text is not None:
            texts[f] = text
            found += compose.extract(text, f, dotenv(project, f, tracked))
    good: list[Found] = []
    bad: list[Unresolved] = []
    for item in dict.fromkeys(found):  # a Dockerfile read with two sets of args: each use once
        if isinstance(item, Unresolved):
            bad.append(item)
            continue
        try:
            ref = refmod.parse(item.ref)
        except InvalidReference as e:
            bad.append(Unresolved(item.path, item.line, f"{item.what}: {e}; not locked"))
            continue
        if not wanted.ignores(ref.written):
            good.append(item)
    return Discovered(tuple(good), tuple(dict.fromkeys(bad)), texts)


def uses(found: Iterable[Found]) -> list[ImageUse]:
    return [ImageUse(refmod.parse(f.ref), f.source, f.source, f.path) for f in found]


def with_sources(config: XcargoConfig, found: Discovered) -> XcargoConfig:
    """The config with the images the project's other files use, and what could not be told."""
    return replace(
        config,
        images=config.images + tuple(uses(found.found)),
        findings=config.findings + tuple(str(u) for u in found.unresolved),
    )


def load_project(config_path: Path) -> XcargoConfig:
    """xcargo.toml and every image the project's tracked files build on."""
    config = load_config(config_path)
    return with_sources(config, discover(config.path.parent))
