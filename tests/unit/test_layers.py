"""The layers each package's docstring declares hold in the code (issue #25).

Every package of lockman says in its docstring which lockman modules it ``May import``; this
walks each module's imports (lazy ones inside functions included, since they count as much at
run time) and fails on any import the docstring does not allow. The docstring stays the one
place the rule is written.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

LOCKMAN = Path(importlib.import_module("lockman").__file__).parent  # type: ignore[arg-type]
PACKAGES = ("model", "signatures", "registry", "enforce", "images", "commands")


def declared(package: str) -> set[str]:
    """The lockman modules ``package``'s docstring says it may import."""
    doc = importlib.import_module(f"lockman.{package}").__doc__ or ""
    m = re.search(r"May\s+import (.*?)(?:;|\.\s|\.$)", doc, re.S)
    assert m, f"lockman/{package}/__init__.py declares no 'May import ...' rule"
    return set(re.findall(r"``lockman\.([\w.]+)``", m.group(1)))


def imported(source: str) -> set[str]:
    """The lockman modules a source file imports, lazily or not, without the ``lockman.``."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name.removeprefix("lockman.") for a in node.names if a.name.startswith("lockman.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "lockman":
                out |= {a.name for a in node.names}
            elif node.module.startswith("lockman."):
                out.add(node.module.removeprefix("lockman."))
    return out


def allows(rule: set[str], name: str) -> bool:
    """``lockman.model`` allows all of model; ``lockman.model.reference`` only that module."""
    return any(name == r or name.startswith(f"{r}.") for r in rule)


def violations(package: str) -> list[str]:
    rule = declared(package) | {package}
    found = []
    for path in sorted((LOCKMAN / package).rglob("*.py")):
        for name in sorted(imported(path.read_text())):
            if not allows(rule, name):
                found.append(f"{path.relative_to(LOCKMAN.parent)} imports lockman.{name}")
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_its_docstring_allows(package: str) -> None:
    assert violations(package) == []


def test_every_package_is_covered() -> None:
    on_disk = {p.parent.name for p in LOCKMAN.glob("*/__init__.py")}
    assert on_disk == set(PACKAGES)


def test_the_walker_sees_every_form_of_import() -> None:
    source = (
        "import lockman.images.graph\n"
        "from lockman import env, fileio\n"
        "from lockman.commands.update import run\n"
        "def lazy():\n    from lockman.cli import app\n"
        "from . import sibling\n"
    )
    assert imported(source) == {"images.graph", "env", "fileio", "commands.update", "cli"}
    assert allows({"model.reference"}, "model.reference") and not allows({"model.reference"}, "model.xcargo")
    assert allows({"model"}, "model.xcargo") and not allows({"model"}, "modelling")


def test_pure_layers_reach_no_io_layer() -> None:
    """What the architecture promises, independent of how the docstrings are worded."""
    for pure in ("model", "signatures"):
        assert not any(allows(declared(pure), n) for n in ("registry", "images", "enforce", "commands", "console"))
    assert not any(allows(declared("registry"), n) for n in ("images", "enforce", "commands", "cli"))
