"""xcargo.toml → the images the project uses. Pure apart from reading the file.

Mirrors xcargo 0.3.0: ``[container].image``, the forward-compatible
``[targets."<triple>".container].image``, and xcargo's built-in ``{registry}/{triple}:latest``
for every triple the file names. Every target with an image is locked whatever the host, so a
lockfile shared by a team is the same on every machine. lockman never needs a table of its own
in xcargo.toml (xcargo denies unknown top-level tables).
"""

from __future__ import annotations

import difflib
import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockman.errors import InputError, InvalidReference
from lockman.fileio import read_utf8
from lockman.model import reference as refmod

DEFAULT_REGISTRY = "ghcr.io/cross-rs"
BUILTIN_TRIPLES = frozenset(
    {
        "x86_64-unknown-linux-gnu",
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-gnu",
        "aarch64-unknown-linux-musl",
        "armv7-unknown-linux-gnueabihf",
        "arm-unknown-linux-gnueabihf",
        "x86_64-pc-windows-gnu",
        "aarch64-linux-android",
        "armv7-linux-androideabi",
        "x86_64-linux-android",
        "i686-linux-android",
    }
)
RUNTIMES = ("auto", "youki", "docker", "podman")


@dataclass(frozen=True)
class ImageUse:
    """One image the config uses, and where in xcargo.toml it came from."""

    ref: refmod.Reference
    source: str
    key: str  # dotted TOML key of the value (or of the triple that implies it), for messages
    file: str = ""  # another file of the project that names it (key is then ``file:line``)

    def where(self, config_path: object) -> str:
        """Where the use is written, for messages: ``xcargo.toml (container.image)``, ``Dockerfile:3``."""
        return self.key if self.file else f"{config_path} ({self.key})"

    @property
    def name(self) -> str:
        return self.ref.written

    @property
    def tag(self) -> str:
        return self.ref.tag or ""

    @property
    def pinned(self) -> bool:
        return self.ref.digest is not None


@dataclass(frozen=True)
class XcargoConfig:
    path: Path
    images: tuple[ImageUse, ...]
    runtime: str
    skipped_targets: tuple[str, ...]  # triples with no container image at all
    targets: tuple[str, ...] = ()  # every triple the file names, in order of appearance
    target_keys: tuple[str, ...] = ()  # where each of ``targets`` is first named (dotted key)
    findings: tuple[str, ...] = ()  # references in the project's other files that are not locked

    @property
    def lockfile_path(self) -> Path:
        return self.path.with_name("xcargo.lock")


def _natively_built(triple: str) -> bool:
    return triple.endswith("-apple-darwin") or triple.startswith("wasm32-")


@functools.cache
def rust_targets() -> frozenset[str]:
    """Target triples rustc knows (``data/rust-targets.txt``, with its provenance)."""
    from importlib.resources import files

    text = files("lockman.model").joinpath("data/rust-targets.txt").read_text(encoding="utf-8")
    return frozenset(t for line in text.splitlines() if (t := line.strip()) and not t.startswith("#"))


def warnings(config: XcargoConfig) -> list[str]:
    """What a user should hear about before trusting an (almost) empty lock.

    A triple neither rustc nor xcargo knows is most likely a typo; a triple with no image is
    skipped; a config that uses no image at all gets an empty lock, and is told why.
    """
    out: list[str] = list(config.findings)
    for triple, key in zip(config.targets, config.target_keys, strict=True):
        if triple in BUILTIN_TRIPLES or _natively_built(triple) or triple in rust_targets():
            continue
        close = difflib.get_close_matches(triple, sorted(BUILTIN_TRIPLES | rust_targets()), n=1, cutoff=0.8)
        hint = f"did you mean {close[0]}?" if close else "a typo, or a custom target?"
        out.append(f"{config.path}: {key}: {triple} is not a target triple rustc or xcargo knows ({hint})")
    for triple in config.skipped_targets:
        out.append(
            f"{config.path}: target {triple} has no container image "
            f'(set [targets."{triple}".container].image to lock one); skipped'
        )
    if not config.images:
        if not config.targets:
            why = "it sets no [container].image and names no target"
        else:
            native = [t for t in config.targets if _natively_built(t)]
            why = (
                f"its targets ({', '.join(native)}) build natively, without a container"
                if len(native) == len(config.targets)
                else "no target it names has a container image"
            )
        out.append(f"{config.path}: uses no container image ({why}); nothing to lock")
    return out


class _Reader:
    def __init__(self, path: Path, doc: dict[str, Any]) -> None:
        self.path, self.doc = path, doc

    def fail(self, key: str, problem: str) -> InputError:
        return InputError(f"{self.path}: {key}: {problem}")

    def table(self, obj: Any, key: str) -> dict[str, Any]:
        if obj is None:
            return {}
        if not isinstance(obj, dict):
            raise self.fail(key, f"expected a table, got {_kind(obj)}")
        return obj

    def string(self, obj: Any, key: str) -> str | None:
        if obj is None:
            return None
        if not isinstance(obj, str):
            raise self.fail(key, f"expected a string, got {_kind(obj)}")
        return obj

    def triples(self, obj: Any, key: str) -> list[str]:
        if obj is None:
            return []
        if not isinstance(obj, list):
            raise self.fail(key, f"expected an array of target triples, got {_kind(obj)}")
        out = []
        for i, item in enumerate(obj):
            if not isinstance(item, str) or not item:
                raise self.fail(f"{key}[{i}]", "expected a non-empty target triple string")
            out.append(item)
        return out

    def image(self, value: str, key: str) -> refmod.Reference:
        try:
            return refmod.parse(value)
        except InvalidReference as e:
            raise self.fail(key, str(e)) from None


def _kind(obj: Any) -> str:
    kinds = {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "an integer"}
    return kinds.get(type(obj)) or {float: "a float"}.get(type(obj), f"a {type(obj).__name__} value")


def _quote(key: str) -> str:
    """Target triples are always written quoted (``targets."x86_64-…"``), as xcargo's docs do."""
    return f'"{key}"'


def parse_config(text: str, path: Path) -> XcargoConfig:
    """Parse xcargo.toml text; raise :class:`InputError` naming file, key and problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML: {e}") from None
    r = _Reader(path, doc)

    container = r.table(doc.get("container"), "container")
    runtime = r.string(container.get("runtime"), "container.runtime") or "auto"
    if runtime not in RUNTIMES:
        raise r.fail("container.runtime", f"unknown runtime {runtime!r} (one of {', '.join(RUNTIMES)})")
    registry = r.string(container.get("registry"), "container.registry")
    if registry is not None:
        registry = registry.rstrip("/")
        if not registry:
            raise r.fail("container.registry", "empty registry")
    global_image_text = r.string(container.get("image"), "container.image")
    if global_image_text is not None and not global_image_text.strip():
        raise r.fail("container.image", "empty image reference")

    targets = r.table(doc.get("targets"), "targets")
    named: dict[str, str] = {}  # triple -> key where it is first named

    for i, t in enumerate(r.triples(targets.get("default"), "targets.default")):
        named.setdefault(t, f"targets.default[{i}]")
    target_images: dict[str, tuple[str, str]] = {}
    for triple, tconf in targets.items():
        if triple == "default":
            continue
        key = f"targets.{_quote(triple)}"
        tconf = r.table(tconf, key)
        named.setdefault(triple, key)
        cont = r.table(tconf.get("container"), f"{key}.container")
        image = r.string(cont.get("image"), f"{key}.container.image")
        if image is not None:
            if not image.strip():
                raise r.fail(f"{key}.container.image", "empty image reference")
            target_images[triple] = (image, f"{key}.container.image")
    profiles = r.table(doc.get("profiles"), "profiles")
    for pname, pconf in profiles.items():
        pkey = f"profiles.{pname}"
        pconf = r.table(pconf, pkey)
        for i, t in enumerate(r.triples(pconf.get("targets"), f"{pkey}.targets")):
            named.setdefault(t, f"{pkey}.targets[{i}]")

    uses: list[ImageUse] = []
    if global_image_text is not None:
        uses.append(
            ImageUse(r.image(global_image_text, "container.image"), "container.image", "container.image")
        )
    skipped: list[str] = []
    for triple, where in named.items():
        if triple in target_images:
            text, key = target_images[triple]
            uses.append(ImageUse(r.image(text, key), key, key))
        elif global_image_text is not None:
            continue  # [container].image serves every target
        elif triple in BUILTIN_TRIPLES:
            prefix = registry or DEFAULT_REGISTRY
            ref = r.image(f"{prefix}/{triple}:latest", where)
            uses.append(ImageUse(ref, f"built-in image for {triple}", where))
        elif not _natively_built(triple):
            skipped.append(triple)
    return XcargoConfig(path, tuple(uses), runtime, tuple(skipped), tuple(named), tuple(named.values()))


def load_config(path: Path) -> XcargoConfig:
    text = read_utf8(path)
    if text is None:
        raise InputError(f"{path}: no such file (use --config to point at xcargo.toml)")
    return parse_config(text, path)
