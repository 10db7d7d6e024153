"""Where the checkout's files are, for tests at any depth under tests/."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The checkout: lockman/, testdata/, README.md, action.yml."""

TESTDATA = ROOT / "testdata"
