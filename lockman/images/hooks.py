"""What a long run (update, verify) takes from its caller besides options: how to reach the
registries, and how to talk while it works.

The outcome of a run is its result object; the hooks carry only what a person watching wants
to see before it ends (a lockfile rebuilt from a conflict, a bar over a hundred images). The
defaults are silent, so a library caller gets no output; the CLI passes hooks that print.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

from lockman.registry.cache import ManifestCache
from lockman.registry.client import RegistryClient

T = TypeVar("T")

Connect = Callable[[ManifestCache | None], RegistryClient]
"""A client (not yet entered) using the given cache: the caller picks timeout, transport and
the rest, the run picks the cache (verify never answers from it)."""

Progress = Callable[[int, str], AbstractContextManager[Callable[[], None]]]
"""``progress(total, description)``: a context yielding ``tick()``, as lockman.progress.progress."""


def connect_default(cache: ManifestCache | None) -> RegistryClient:
    return RegistryClient(cache=cache)


@contextlib.contextmanager
def no_progress(_total: int, _description: str) -> Iterator[Callable[[], None]]:
    yield lambda: None


def _ignore(_line: str) -> None:
    return None


@dataclass(frozen=True)
class Hooks:
    tell: Callable[[str], None] = _ignore  # one whole line: "warning: …" or "notice: …"
    progress: Progress = no_progress


SILENT = Hooks()


async def tracked(aw: Awaitable[T], tick: Callable[[], None]) -> T:
    """Await ``aw`` and tick the bar however it ends."""
    try:
        return await aw
    finally:
        tick()
