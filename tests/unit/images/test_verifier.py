"""The verifier as a library call: each problem ``verify()`` returns, with its kind and exit code.

Against the scripted fake registry (tests/support/fake_registry.py); the lock is written by the
updater, then the registry is made to serve something else.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lockman.errors import EXIT_REGISTRY, EXIT_VERIFY
from lockman.images.hooks import Connect
from lockman.images.updater import update
from lockman.images.verifier import VerifyOptions, VerifyResult, verify
from lockman.model.xcargo import load_config
from lockman.registry.retry import RetryPolicy
from tests.support.fake_registry import FakeRegistry

HOST, REPO = "registry.test", "app"
IMAGE = f"{HOST}/{REPO}:v1"


def _connect(fake: FakeRegistry) -> Connect:
    return lambda cache: fake.client(cache=cache, retry=RetryPolicy(attempts=1))


def _verify(cfg: Path, fake: FakeRegistry, options: VerifyOptions | None = None) -> VerifyResult:
    return asyncio.run(verify(load_config(cfg), options or VerifyOptions(), connect=_connect(fake)))


def _kinds(result: VerifyResult) -> list[tuple[str, str, int]]:
    return [(p.kind, p.image, p.exit_code) for p in result.problems]


@pytest.fixture
def fake(isolated_env: Path) -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def locked(tmp_path: Path, fake: FakeRegistry) -> tuple[Path, str]:
    """A project whose one image is locked against the fake; its config and digest."""
    digest = fake.put_image(HOST, REPO, "v1")
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{IMAGE}"\n')
    asyncio.run(update(load_config(cfg), connect=_connect(fake)))
    return cfg, digest


def test_a_sound_lock_has_no_problems_and_every_image_checked(
    locked: tuple[Path, str], fake: FakeRegistry
) -> None:
    cfg, digest = locked
    fake.requests.clear()
    result = _verify(cfg, fake)
    assert result.ok and [e.digest for e in result.checked] == [digest]
    assert f"GET {HOST}/v2/{REPO}/manifests/{digest}" in fake.seen("GET")  # fetched as served
    assert result.blobs is None and result.signed == ()


def test_offline_checks_consistency_alone_without_a_request(tmp_path: Path, fake: FakeRegistry) -> None:
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{IMAGE}"\n')
    result = _verify(cfg, fake, VerifyOptions(offline=True))
    assert _kinds(result) == [("no-lockfile", "", EXIT_VERIFY)] and result.checked == ()
    assert fake.requests == []


def test_a_config_change_is_missing_and_stale(locked: tuple[Path, str], fake: FakeRegistry) -> None:
    cfg, _ = locked
    cfg.write_text(f'[container]\nimage = "{HOST}/{REPO}:v2"\n')
    result = _verify(cfg, fake, VerifyOptions(offline=True))
    assert _kinds(result) == [("missing", f"{HOST}/{REPO}:v2", EXIT_VERIFY), ("stale", IMAGE, EXIT_VERIFY)]


def test_bytes_that_no_longer_hash_to_the_lock_are_a_digest_mismatch(
    locked: tuple[Path, str], fake: FakeRegistry
) -> None:
    cfg, digest = locked
    body, media_type = fake.manifests[(HOST, REPO, digest)]
    fake.manifests[(HOST, REPO, digest)] = (body + b" ", media_type)
    assert _kinds(_verify(cfg, fake)) == [("digest-mismatch", IMAGE, EXIT_VERIFY)]


def test_a_digest_the_registry_dropped_is_not_served(locked: tuple[Path, str], fake: FakeRegistry) -> None:
    cfg, digest = locked
    del fake.manifests[(HOST, REPO, digest)]
    result = _verify(cfg, fake)
    assert _kinds(result) == [("not-served", IMAGE, EXIT_VERIFY)]
    assert digest in result.problems[0].message


def test_a_registry_that_refuses_is_a_registry_problem_exit_3(
    locked: tuple[Path, str], fake: FakeRegistry
) -> None:
    cfg, _ = locked
    fake.status[HOST] = 503
    assert _kinds(_verify(cfg, fake)) == [("registry", IMAGE, EXIT_REGISTRY)]


def test_deep_hashes_every_blob_and_names_a_corrupt_one(locked: tuple[Path, str], fake: FakeRegistry) -> None:
    cfg, _ = locked
    assert _verify(cfg, fake, VerifyOptions(deep=True)).blobs == 2
    layer = next(k for k, v in fake.blobs.items() if v == b"layer")
    fake.blobs[layer] = b"LAYER"
    result = _verify(cfg, fake, VerifyOptions(deep=True))
    assert _kinds(result) == [("blob", IMAGE, EXIT_VERIFY)] and result.blobs == 2


def test_deep_skips_an_image_whose_manifest_already_failed(
    locked: tuple[Path, str], fake: FakeRegistry
) -> None:
    """One problem per cause: a manifest that is not served is not walked again for blobs."""
    cfg, digest = locked
    del fake.manifests[(HOST, REPO, digest)]
    result = _verify(cfg, fake, VerifyOptions(deep=True))
    assert _kinds(result) == [("not-served", IMAGE, EXIT_VERIFY)] and result.blobs == 0
