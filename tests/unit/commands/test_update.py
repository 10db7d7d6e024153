"""``lockman update``'s summary line says what happened to the lockfile."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lockman.commands import update


def test_a_brand_new_lock_without_images_is_created_not_rewritten(
    tmp_path: Path, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text("[build]\n")  # no container image yet
    code = asyncio.run(update.run(cfg, check=False, dry_run=False, timeout=5.0, insight=False))
    assert code == 0 and (tmp_path / "xcargo.lock").exists()
    out = capsys.readouterr().out
    assert out == f"{tmp_path / 'xcargo.lock'}: created (0 images)\n"
