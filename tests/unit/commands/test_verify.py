"""``lockman verify``: each problem's kind comes from the error's class, not from a guess.

The fake registry (tests/support/fake_registry.py) serves what docker-registry cannot be made
to: a locked digest whose bytes still hash right but are labelled Docker schema 1, or are over
the 4 MiB manifest limit.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from lockman.commands import update, verify
from lockman.model.manifest import DOCKER_SCHEMA1_SIGNED, MAX_MANIFEST_BYTES
from tests.support.fake_registry import FakeRegistry

HOST, REPO = "registry.test", "app"


def _locked(tmp_path: Path, fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A project whose one image is locked (by ``lockman update``) against the fake; its digest."""
    client = fake.client
    monkeypatch.setattr(update, "RegistryClient", client)
    monkeypatch.setattr(verify, "RegistryClient", client)
    digest = fake.put_image(HOST, REPO, "v1")
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{HOST}/{REPO}:v1"\n')
    code = asyncio.run(update.run(cfg, check=False, dry_run=False, timeout=5.0, insight=False))
    assert code == 0 and digest in (tmp_path / "xcargo.lock").read_text()
    return cfg, digest


def _verify_json(cfg: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, str]]]:
    capsys.readouterr()
    code = asyncio.run(verify.run(cfg, offline=False, timeout=5.0, no_cache=True, fmt="json"))
    problems: list[dict[str, str]] = json.loads(capsys.readouterr().out)["problems"]
    return code, problems


def test_schema1_at_the_locked_digest_is_unsupported_media_type_not_digest_mismatch(
    tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeRegistry()
    cfg, digest = _locked(tmp_path, fake, monkeypatch)
    body, _ = fake.manifests[(HOST, REPO, digest)]
    fake.manifests[(HOST, REPO, digest)] = (body, DOCKER_SCHEMA1_SIGNED)  # same bytes, schema 1 label
    code, problems = _verify_json(cfg, capsys)
    assert code == 1
    assert [p["kind"] for p in problems] == ["unsupported-media-type"]
    assert "Docker schema 1 manifests are not supported" in problems[0]["message"]
    assert problems[0]["message"].startswith(f"{HOST}/{REPO}:v1@{digest}: ")


def test_over_size_manifest_at_the_locked_digest_is_too_large_not_digest_mismatch(
    tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeRegistry()
    cfg, digest = _locked(tmp_path, fake, monkeypatch)
    fake.manifests[(HOST, REPO, digest)] = (b" " * (MAX_MANIFEST_BYTES + 1), "application/vnd.oci.image.manifest.v1+json")
    code, problems = _verify_json(cfg, capsys)
    assert code == 1
    assert [p["kind"] for p in problems] == ["too-large"]
    assert f"over the {MAX_MANIFEST_BYTES}-byte limit" in problems[0]["message"]


def test_bytes_that_do_not_hash_to_the_locked_digest_are_still_digest_mismatch(
    tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeRegistry()
    cfg, digest = _locked(tmp_path, fake, monkeypatch)
    body, media_type = fake.manifests[(HOST, REPO, digest)]
    fake.manifests[(HOST, REPO, digest)] = (body + b" ", media_type)
    code, problems = _verify_json(cfg, capsys)
    assert code == 1
    assert [p["kind"] for p in problems] == ["digest-mismatch"]



def test_text_mode_says_ok_or_failed_on_stdout_with_the_problems_on_stderr(
    tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One image: 'its registry'; a failure: a FAILED summary line (issue 27), problems on stderr."""
    fake = FakeRegistry()
    cfg, digest = _locked(tmp_path, fake, monkeypatch)
    capsys.readouterr()
    assert asyncio.run(verify.run(cfg, offline=False, timeout=5.0, no_cache=True)) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'xcargo.lock'}: ok (1 image verified against its registry)\n"

    body, media_type = fake.manifests[(HOST, REPO, digest)]
    fake.manifests[(HOST, REPO, digest)] = (body + b" ", media_type)
    assert asyncio.run(verify.run(cfg, offline=False, timeout=5.0, no_cache=True)) == 1
    got = capsys.readouterr()
    assert got.out == f"{tmp_path / 'xcargo.lock'}: FAILED (1 problem in 1 image)\n"
    assert got.err.count("\n") == 1 and got.err.startswith("error: ") and digest in got.err
