"""Transient and lasting registry faults, through the fault proxy in front of the real registry.

Transient faults (503, 429 + Retry-After, resets, truncated bodies) are retried and the run
succeeds; lasting ones end in exit 3 naming every failing image, the lockfile byte-identical.
Waits are tiny here (conftest sets LOCKMAN_RETRY_*), the retries are real.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lockman.model import lockfile, reference
from lockman.registry.client import RegistryClient
from lockman.registry.retry import RetryPolicy
from tests.support.faultproxy import FaultProxy
from tests.support.fixtures import unique_repo
from tests.support.registry import Registry

pytestmark = pytest.mark.registry


def two_images(tmp_path: Path, registry: Registry, host: str) -> tuple[Path, str, str, dict]:
    base = unique_repo("fault")
    a = registry.push_image(f"{base}/a", "v1")
    b = registry.push_index(f"{base}/b", "v1", ["linux/amd64", "linux/arm64"])
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(
        f'[container]\nimage = "{host}/{base}/a:v1"\n'
        f'[targets."aarch64-unknown-linux-gnu".container]\nimage = "{host}/{base}/b:v1"\n'
    )
    return cfg, f"{host}/{base}/a:v1", f"{host}/{base}/b:v1", {"base": base, "a": a, "b": b}


def digests(tmp_path: Path) -> dict[str, str]:
    lock = lockfile.loads((tmp_path / "xcargo.lock").read_text())
    return {i.name.rsplit("/", 1)[1]: i.digest for i in lock.images}


@pytest.mark.parametrize(
    "fault",
    [
        {"action": "status", "status": 503},
        {"action": "status", "status": 502},
        {"action": "status", "status": 408},
        {"action": "status", "status": 429, "headers": {"Retry-After": "0"}},
        {"action": "reset"},
    ],
    ids=["503", "502", "408", "429-retry-after", "reset"],
)
def test_transient_faults_are_retried(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run, fault: dict
) -> None:
    cfg, _, _, p = two_images(tmp_path, registry, fault_proxy.host)
    # The first two manifest requests of each image fail, then they work.
    for name in ("a", "b"):
        fault_proxy.add(f"/{p['base']}/{name}/manifests/", times=2, **fault)
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert digests(tmp_path) == {"a": p["a"].digest, "b": p["b"].digest}
    faulted = [x for x in fault_proxy.requests if x[2] != "forward"]
    assert len(faulted) == 4
    assert run("verify", "--config", cfg).code == 0


def test_truncated_and_trickled_bodies_are_retried(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run
) -> None:
    cfg, _, _, p = two_images(tmp_path, registry, fault_proxy.host)
    fault_proxy.add("/manifests/sha256:", "truncate", method="GET", times=2)
    fault_proxy.add("/manifests/sha256:", "trickle", method="GET", times=1, delay=0.05)
    r = run("update", "--timeout", "1", "--config", cfg)
    assert r.code == 0, r.err
    assert digests(tmp_path) == {"a": p["a"].digest, "b": p["b"].digest}
    assert [x[2] for x in fault_proxy.requests].count("truncate") == 2
    assert [x[2] for x in fault_proxy.requests].count("trickle") == 1


def test_lasting_failure_exit_3_names_every_image_lock_identical(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run
) -> None:
    cfg, ref_a, ref_b, p = two_images(tmp_path, registry, fault_proxy.host)
    assert run("update", "--config", cfg).code == 0
    lock = tmp_path / "xcargo.lock"
    before = lock.read_bytes()
    registry.push_image(f"{p['base']}/a", "v1", salt="moved")  # there is something to update
    fault_proxy.add("/manifests/", "status", status=503)
    for cmd in (["update"], ["update", "--check"], ["update", "--dry-run"], ["verify"]):
        r = run(*cmd, "--config", cfg)
        assert r.code == 3, (cmd, r.err)
        lines = r.err.strip().splitlines()
        assert any(ref_a in ln for ln in lines) and any(ref_b in ln for ln in lines), r.err
        assert "HTTP 503" in r.err and "gave up after 4 attempts" in r.err
        assert "Traceback" not in r.err
        assert lock.read_bytes() == before


def test_keep_going_writes_what_resolved(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run
) -> None:
    cfg, ref_a, ref_b, p = two_images(tmp_path, registry, fault_proxy.host)
    assert run("update", "--config", cfg).code == 0
    moved_a = registry.push_image(f"{p['base']}/a", "v1", salt="moved")
    moved_b = registry.push_index(f"{p['base']}/b", "v1", ["linux/amd64"], salt="moved")
    fault_proxy.add(f"/{p['base']}/b/manifests/", "reset")

    r = run("update", "--config", cfg)  # without --keep-going: nothing written
    assert r.code == 3 and ref_b in r.err
    assert digests(tmp_path) == {"a": p["a"].digest, "b": p["b"].digest}

    r = run("update", "--keep-going", "--config", cfg)
    assert r.code == 3, r.err
    assert ref_b in r.err and "network error" in r.err and ref_a not in r.err
    assert "1 failed and left as they were" in r.out
    assert digests(tmp_path) == {"a": moved_a.digest, "b": p["b"].digest}  # b kept, a updated

    fault_proxy.clear()
    assert run("update", "--config", cfg).code == 0
    assert digests(tmp_path) == {"a": moved_a.digest, "b": moved_b.digest}


def test_keep_going_new_image_that_fails_is_not_recorded(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run
) -> None:
    cfg, _, ref_b, p = two_images(tmp_path, registry, fault_proxy.host)
    fault_proxy.add(f"/{p['base']}/b/manifests/", "status", status=500)
    r = run("update", "--keep-going", "--config", cfg)
    assert r.code == 3 and ref_b in r.err
    assert digests(tmp_path) == {"a": p["a"].digest}


@pytest.mark.parametrize("where", ["/manifests/", "/v2/"])
def test_hanging_registry_ends_in_exit_3(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run, where: str
) -> None:
    cfg, ref_a, ref_b, _ = two_images(tmp_path, registry, fault_proxy.host)
    if where == "/manifests/":
        assert run("update", "--config", cfg).code == 0
    lock = tmp_path / "xcargo.lock"
    before = lock.read_bytes() if lock.exists() else None
    fault_proxy.add(where, "hang", delay=10)
    r = run("update", "--timeout", "0.3", "--config", cfg)
    assert r.code == 3, r.err
    assert "timed out (no complete answer within 0.3 s)" in r.err
    assert ref_a in r.err and ref_b in r.err
    assert (lock.read_bytes() if lock.exists() else None) == before


def test_long_retry_after_is_not_waited_for(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run
) -> None:
    cfg, ref_a, _, _ = two_images(tmp_path, registry, fault_proxy.host)
    fault_proxy.add("/a/manifests/", "status", status=429, headers={"Retry-After": "3600"})
    r = run("update", "--config", cfg)
    assert r.code == 3
    assert ref_a in r.err and "too many requests (HTTP 429); try again in 60 min" in r.err
    assert fault_proxy.count("HEAD", "/a/manifests/") == 1  # reported at once, not retried


def test_retry_after_replaces_backoff(registry: Registry, fault_proxy: FaultProxy) -> None:
    repo = unique_repo("ra")
    img = registry.push_image(repo, "v1")
    fault_proxy.add("/manifests/", "status", status=503, times=1, headers={"Retry-After": "1"})
    ref = reference.parse(f"{fault_proxy.host}/{repo}:v1")

    async def go() -> tuple[str, list]:
        async with RegistryClient(timeout=5, retry=RetryPolicy(wait_initial=0.01, wait_max=0.02)) as c:
            return (await c.resolve(ref)).digest, c.retrier.log

    digest, log = asyncio.run(go())
    assert digest == img.digest
    assert [(why, wait) for _, why, wait in log] == [("HTTP 503", 1.0)]


def test_retries_are_bounded_by_attempts(registry: Registry, fault_proxy: FaultProxy, monkeypatch) -> None:
    repo = unique_repo("att")
    registry.push_image(repo, "v1")
    fault_proxy.add("/manifests/", "status", status=500, method="HEAD")
    fault_proxy.add("/manifests/", "status", status=500, method="GET")
    monkeypatch.setenv("LOCKMAN_RETRY_ATTEMPTS", "2")
    ref = reference.parse(f"{fault_proxy.host}/{repo}:v1")

    async def go() -> None:
        async with RegistryClient(timeout=5) as c:
            await c.resolve(ref)

    with pytest.raises(Exception, match=r"HTTP 500 .gave up after 2 attempts"):
        asyncio.run(go())
    assert fault_proxy.count("HEAD", "/manifests/") == 2 and fault_proxy.count("GET", "/manifests/") == 2


def test_redirect_loop_exit_3(tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run) -> None:
    repo = unique_repo("loop")
    registry.push_image(repo, "v1")
    loop = f"/v2/{repo}/manifests/v1"
    fault_proxy.add("/manifests/", "status", status=302, headers={"Location": loop})
    r = run("resolve", f"{fault_proxy.host}/{repo}:v1")
    assert r.code == 3 and "too many redirects" in r.err and f"{fault_proxy.host}/{repo}:v1" in r.err


def test_bad_retry_environment_is_exit_2(tmp_path: Path, run, monkeypatch) -> None:
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text('[container]\nimage = "example.invalid/a:1"\n')
    monkeypatch.setenv("LOCKMAN_RETRY_ATTEMPTS", "many")
    r = run("update", "--config", cfg)
    assert r.code == 2 and "LOCKMAN_RETRY_ATTEMPTS='many'" in r.err
    assert not (tmp_path / "xcargo.lock").exists()
