"""The JSON examples docs/reports.md documents, and a check that real output has their shape."""

from __future__ import annotations

import json
import re

from tests.support.paths import ROOT

REPORTS = ROOT / "docs" / "reports.md"
"""The page that documents the JSON schema and the problem kinds."""


def documented_json(marker: str) -> dict:
    """The ```json block that follows ``<!-- schema:MARKER -->`` in docs/reports.md."""
    text = REPORTS.read_text()
    m = re.search(rf"<!-- schema:{marker} -->\s*```json\n(.*?)```", text, re.S)
    assert m, f"docs/reports.md has no schema:{marker} example"
    return json.loads(m.group(1))


def conforms(real: object, documented: object, path: str = "$") -> None:
    """``real`` has exactly the documented keys at every level, with the documented value kinds.

    Lists are checked element by element against the documented first element; a string in the
    example also admits null (digests of added/removed images, a missing commit message).
    """
    if isinstance(documented, dict):
        assert isinstance(real, dict), path
        assert set(real) == set(documented), (path, sorted(set(real) ^ set(documented)))
        for k, v in real.items():
            conforms(v, documented[k], f"{path}.{k}")
    elif isinstance(documented, list):
        assert isinstance(real, list), path
        assert documented, f"{path}: the docs example should show an element"
        for x in real:
            conforms(x, documented[0], f"{path}[]")
    elif documented is None:  # documented as null here: null or an object described in prose
        assert real is None or isinstance(real, dict), path
    elif isinstance(documented, str):
        assert real is None or isinstance(real, str), path
    else:
        assert type(real) is type(documented), path
