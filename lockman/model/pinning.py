"""Writing digests into xcargo.toml itself (``image = "rust:1.70@sha256:…"``), as xcargo's
security guide asks, without disturbing anything else in the file.

Pure: text in, text out. tomlkit keeps every comment, blank line, quote style and key order;
only the image strings that change are replaced. Only keys that hold an image *as written by the
user* are touched (``[container].image`` and ``[targets."<triple>".container].image``); xcargo's
built-in images have no key to pin, and lockman never adds tables xcargo would reject.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockman.errors import InputError, InvalidReference
from lockman.model import reference as refmod


@dataclass(frozen=True)
class PinEdit:
    key: str  # dotted TOML key, for messages
    old: str
    new: str


def pinned_text(ref: refmod.Reference, digest: str) -> str:
    """``name:tag@digest`` with the name as written: the tag stays as documentation."""
    return f"{ref.written}:{ref.tag}@{digest}" if ref.tag else f"{ref.written}@{digest}"


def _slots(doc: Any) -> Iterator[tuple[str, Any]]:
    """(dotted key, table holding ``image``) for every image key xcargo.toml may have."""
    container = doc.get("container")
    if hasattr(container, "get") and isinstance(container.get("image"), str):
        yield "container.image", container
    targets = doc.get("targets")
    if not hasattr(targets, "items"):
        return
    for triple, tconf in targets.items():
        if triple == "default" or not hasattr(tconf, "get"):
            continue
        cont = tconf.get("container")
        if hasattr(cont, "get") and isinstance(cont.get("image"), str):
            yield f'targets."{triple}".container.image', cont


def _replace(table: Any, value: str) -> None:
    """Swap the string, keeping its quote style and trailing comment."""
    import tomlkit
    from tomlkit.items import String, StringType

    old = table["image"]
    literal = isinstance(old, String) and old.type in (StringType.SLL,)
    new = tomlkit.string(value, literal=literal and "'" not in value)
    if isinstance(old, String):
        new.trivia.indent = old.trivia.indent
        new.trivia.comment_ws = old.trivia.comment_ws
        new.trivia.comment = old.trivia.comment
        new.trivia.trail = old.trivia.trail
    table["image"] = new


def rewrite(
    text: str, path: Path | str, new_digest: Callable[[str, refmod.Reference], str | None]
) -> tuple[str, list[PinEdit]]:
    """Replace every image whose ``new_digest(key, ref)`` is a digest; return new text and edits.

    ``new_digest`` returns None to leave an image alone.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as e:
        raise InputError(f"{path}: not valid TOML: {e}") from None
    edits = []
    for key, table in _slots(doc):
        old_value = str(table["image"])
        try:
            ref = refmod.parse(old_value)
        except InvalidReference as e:
            raise InputError(f"{path}: {key}: {e}") from None
        digest = new_digest(key, ref)
        if digest is None or digest == ref.digest:
            continue
        new_value = pinned_text(ref, digest)
        _replace(table, new_value)
        edits.append(PinEdit(key, old_value, new_value))
    return (tomlkit.dumps(doc) if edits else text), edits


def unified_diff(old: str, new: str, path: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}"
        )
    )
