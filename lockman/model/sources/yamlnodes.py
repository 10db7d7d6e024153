"""YAML → PyYAML's node graph, safely, with every scalar's place in the text.

Why nodes and not objects: a node knows where its scalar is written (``pin --write`` replaces
exactly those characters, so comments, quoting and anchors stay), and composing does not expand
aliases: an alias is the anchored node again, so a "billion laughs" file costs what its text
costs. The walkers only follow fixed paths (``jobs.*.container``…) and merge keys to a bounded
depth, so a recursive alias cannot loop them. Nesting is bounded (PyYAML composes recursively,
a deep file would otherwise hit Python's recursion limit), and so is the number of nodes.
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from lockman.errors import InputError
from lockman.model.sources import in_place

MAX_DEPTH = 100
MAX_NODES = 200_000
MAX_MERGE = 8


class _TooBig(Exception):
    pass


class _Loader(yaml.SafeLoader):
    """SafeLoader's composer with a depth and node budget."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooBig(f"nested deeper than {MAX_DEPTH} levels")
            if self._nodes > MAX_NODES:
                raise _TooBig(f"more than {MAX_NODES} nodes")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def compose(text: str, path: str) -> Node | None:
    """The first document's root node (None for an empty file); bad YAML is :class:`InputError`."""
    loader = None
    try:
        loader = _Loader(text)  # the reader refuses control characters (terminal escapes) here
        return loader.get_single_node()
    except _TooBig as e:
        raise InputError(f"{path}: {e}; not read") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        if isinstance(e, yaml.reader.ReaderError):
            return_problem = f"character {e.character:#x} at offset {e.position} is not allowed"
            raise InputError(f"{path}: not valid YAML: {return_problem}") from None
        problem = getattr(e, "problem", None) or type(e).__name__
        raise InputError(f"{path}: not valid YAML{where}: {problem}") from None
    finally:
        if loader is not None:
            loader.dispose()


def items(node: Node | None, depth: int = 0) -> Iterator[tuple[str, Node]]:
    """(key, value) of a mapping, merge keys (``<<: *anchor``) resolved; later keys win."""
    if not isinstance(node, MappingNode) or depth > MAX_MERGE:
        return
    own: dict[str, Node] = {}
    merged: dict[str, Node] = {}
    for k, v in node.value:
        if not isinstance(k, ScalarNode):
            continue
        if k.tag == "tag:yaml.org,2002:merge":  # the resolver's tag for a plain <<, or !!merge
            sources = v.value if isinstance(v, SequenceNode) else [v]
            for src in sources:
                for mk, mv in items(src, depth + 1):
                    merged.setdefault(mk, mv)
        else:
            own[k.value] = v
    yield from {**merged, **own}.items()


def get(node: Node | None, key: str) -> Node | None:
    return dict(items(node)).get(key)


def string(node: Node | None) -> str | None:
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:str":
        return str(node.value)
    return None


def scalar_span(text: str, node: Node) -> tuple[int, int] | None:
    """Where the scalar's value is written (inside its quotes), when it is written verbatim."""
    if not isinstance(node, ScalarNode):
        return None
    end = node.end_mark.index  # the start mark is the anchor's (``&a value``) when there is one
    if node.style in ("'", '"'):
        end -= 1
    elif node.style is not None:  # block scalars: | and >
        return None
    return in_place(text, (end - len(node.value), end), node.value)


def line(node: Node) -> int:
    return int(node.start_mark.line) + 1
