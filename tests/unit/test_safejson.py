"""lockman.safejson: too-deep nesting is invalid input, and a kind of its own for callers."""

from __future__ import annotations

import pytest

from lockman import safejson
from lockman.model import insight


def test_too_deep_json_is_its_own_value_error() -> None:
    with pytest.raises(safejson.TooDeep):
        safejson.loads(b"[" * 100_000)
    with pytest.raises(ValueError) as caught:
        safejson.loads(b"{")
    assert not isinstance(caught.value, safejson.TooDeep)


def test_insight_tells_too_deep_from_invalid_by_the_class() -> None:
    with pytest.raises(insight.SbomError, match=r"^the SBOM is nested too deeply to read$"):
        insight.loads(b"[" * 100_000, "the SBOM")
    with pytest.raises(insight.SbomError, match=r"^the SBOM is not valid JSON$"):
        insight.loads(b"[", "the SBOM")
