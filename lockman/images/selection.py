"""`lockman update IMAGE...`: which lock entries a selector names.

Pure. A selector is an image name as written in xcargo.toml (``rust``: every tag of it), a name
and tag (``rust:1.70``: that one entry, what a bot's branch bumped), a name and pinned digest
(``rust@sha256:…``: the use pinned to it), or a target triple (the image that target builds in).
A selector that matches nothing is an input error, so a typo never silently updates nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from lockman.errors import InputError
from lockman.images.locker import Wanted
from lockman.model.xcargo import XcargoConfig


def _target_sources(triple: str, config: XcargoConfig, wanted: Sequence[Wanted]) -> set[str]:
    own = f'targets."{triple}".container.image'
    if any(own in w.sources for w in wanted):
        return {own}
    sources = {f"built-in image for {triple}"}
    if triple in config.targets:
        sources.add("container.image")  # [container].image serves every target without its own
    return sources


def select(wanted: Sequence[Wanted], selectors: Sequence[str], config: XcargoConfig) -> list[Wanted]:
    """The wanted images the selectors name, in their usual order; all of them when none given."""
    if not selectors:
        return list(wanted)
    chosen: set[tuple[str, str]] = set()
    for s in selectors:
        hits = {
            w.key
            for w in wanted
            if s in (w.use.name, f"{w.use.name}:{w.use.tag}")
            or (w.use.ref.digest is not None and s == f"{w.use.name}@{w.use.ref.digest}")
            or set(w.sources) & _target_sources(s, config, wanted)
        }
        if not hits:
            names = ", ".join(sorted({f"{w.use.name}:{w.use.tag}" for w in wanted})) or "none"
            raise InputError(
                f"{config.path}: no image matches {s!r} (give a name, name:tag, name@digest or "
                f"target triple; images: {names})"
            )
        chosen |= hits
    return [w for w in wanted if w.key in chosen]
