"""The fault proxy itself: forwards faithfully, and its faults reach lockman as they should."""

from __future__ import annotations

import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.fixtures import unique_repo
from tests.support.registry import Registry


@pytest.mark.registry
def test_forwards_and_alters(registry: Registry, fault_proxy: FaultProxy, run) -> None:
    repo = unique_repo("fp")
    img = registry.push_image(repo, "v1")
    r = run("resolve", f"{fault_proxy.host}/{repo}:v1")
    assert r.code == 0 and r.out.strip().endswith(img.digest)
    assert fault_proxy.count("HEAD", "/manifests/v1") == 1

    fault_proxy.add("/manifests/", "alter", method="GET", transform=lambda b: b.replace(b"2", b"3", 1))
    r = run("resolve", f"{fault_proxy.host}/{repo}@{img.digest}")
    assert r.code == 0  # HEAD by digest: nothing to hash, the proxy only alters GETs
    fault_proxy.add("/manifests/", "status", method="HEAD", status=405)
    r = run("resolve", f"{fault_proxy.host}/{repo}@{img.digest}")
    assert r.code == 1 and "digest mismatch" in r.err and img.digest in r.err
