"""Renovate's extractor test tables (dockerfile, docker-compose, github-actions), ported as data.

testdata/sources/README.md says where each table comes from. Every row agrees with lockman or
is a documented choice in choices.toml; and every reference found in place is rewritten and read
back pinned, so ``pin --write`` round-trips on every peer input.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lockman.errors import InputError, InvalidReference
from lockman.model import reference as refmod
from lockman.model.sources import Found, compose, dockerfile, splice, workflow

DATA = Path(__file__).parents[4] / "testdata" / "sources" / "renovate"
EXTRACT: dict[str, Callable[[str, str], list[Any]]] = {
    "dockerfile": lambda t, f: dockerfile.extract(t, f or "Dockerfile"),
    "docker-compose": lambda t, f: compose.extract(t, f or "docker-compose.yml"),
    "github-actions": lambda t, f: workflow.extract(t, f or "ci.yml"),
}
CHOICES = tomllib.loads((DATA / "choices.toml").read_text())
PIN = "@sha256:" + "e" * 64


def key(text: str) -> tuple[str | None, ...]:
    try:
        r = refmod.parse(text, default_tag=None)
    except InvalidReference:
        return ("invalid", text)
    return (r.registry, r.repository, r.tag, r.digest)


def theirs(deps: list[dict[str, Any]] | None) -> list[tuple[str | None, ...]]:
    out: list[tuple[str | None, ...]] = []
    for d in deps or []:
        if d.get("skipReason") == "contains-variable":
            out.append(("unresolved",))
        elif d.get("skipReason"):
            out.append(("skipped", d["skipReason"]))
        else:
            name = d.get("packageName") or d["depName"]
            tag = f":{d['currentValue']}" if d.get("currentValue") else ""
            digest = f"@{d['currentDigest']}" if d.get("currentDigest") else ""
            out.append(key(name + tag + digest))
    return list(dict.fromkeys(out))


def ours(kind: str, row: dict[str, Any]) -> list[tuple[str | None, ...]]:
    try:
        got = EXTRACT[kind](row["input"], row["file"])
    except InputError:
        return [("error",)]
    return list(dict.fromkeys(key(f.ref) if isinstance(f, Found) else ("unresolved",) for f in got))


ROWS = [(kind, row) for kind in EXTRACT for row in json.loads((DATA / f"{kind}.json").read_text())["rows"]]


@pytest.mark.parametrize(("kind", "row"), ROWS, ids=[f"{k}: {r['test']}" for k, r in ROWS])
def test_row_agrees_or_is_a_documented_choice(kind: str, row: dict[str, Any]) -> None:
    agree = ours(kind, row) == theirs(row["deps"])
    chosen = row["test"] in CHOICES.get(kind, {})
    assert agree != chosen, (
        f"{'stale choice' if chosen else 'disagrees'}: ours {ours(kind, row)} theirs {theirs(row['deps'])}"
    )


@pytest.mark.parametrize(("kind", "row"), ROWS, ids=[f"{k}: {r['test']}" for k, r in ROWS])
def test_every_in_place_reference_round_trips(kind: str, row: dict[str, Any]) -> None:
    try:
        found = [f for f in EXTRACT[kind](row["input"], row["file"]) if isinstance(f, Found)]
    except InputError:
        return
    spans = {f.span: f.ref + PIN for f in found if f.span and "@" not in f.ref}
    if not spans:
        return
    new = splice(row["input"], spans)
    again = [f for f in EXTRACT[kind](new, row["file"]) if isinstance(f, Found)]
    want = [f.ref + PIN if f.span in spans else f.ref for f in found]
    assert [f.ref for f in again] == want
    assert new.replace(PIN, "") == row["input"]


def test_the_tables_are_not_empty() -> None:
    counts = {k: sum(1 for kk, _ in ROWS if kk == k) for k in EXTRACT}
    assert counts["dockerfile"] > 50 and counts["docker-compose"] > 10 and counts["github-actions"] >= 5
