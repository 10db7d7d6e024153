"""docker-lock's and frizbee's extractor cases (testdata/sources/peers.toml, with provenance)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from lockman.errors import InputError, InvalidReference
from lockman.model import reference as refmod
from lockman.model.sources import Found, compose, dockerfile, workflow

ROWS = tomllib.loads((Path(__file__).parents[4] / "testdata" / "sources" / "peers.toml").read_text())["row"]
EXTRACT = {"dockerfile": dockerfile.extract, "compose": compose.extract, "workflow": workflow.extract}


def norm(text: str) -> str:
    if text.startswith("!"):
        return text
    try:
        return str(refmod.parse(text))
    except InvalidReference:
        return f"invalid {text}"


def ours(row: dict[str, Any]) -> list[str]:
    try:
        got = EXTRACT[row["kind"]](row["input"], "f")
    except InputError:
        return ["!error"]
    return [norm(f.ref) if isinstance(f, Found) else "!unresolved" for f in got]


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['peer']}: {r['case']}" for r in ROWS])
def test_case(row: dict[str, Any]) -> None:
    expect = [norm(x) for x in row["expect"]]
    if "choice" in row:
        assert ours(row) != expect, "a documented choice that now agrees: drop it"
        assert ours(row) == [norm(x) for x in row["ours"]]
    else:
        assert ours(row) == expect
