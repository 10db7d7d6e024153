"""A pull over TLS from the real docker-registry: blobs through the blob connections, verified,
on no more connections than blobs are fetched at once (kept alive from one blob to the next)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lockman.registry.blobs import BLOB_CONCURRENCY
from tests.support.fixtures import unique_repo
from tests.support.listener import CountingRelay
from tests.support.project import images_project
from tests.support.registry import TLSSetup


@pytest.mark.registry
def test_pull_over_tls_writes_verified_blobs_on_few_connections(
    tmp_path: Path, tls_setup: TLSSetup, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_setup.ca_pem))
    monkeypatch.setenv("LOCKMAN_CERTS_D", "")
    repo = unique_repo("bulk")
    layers = [
        hashlib.shake_256(f"{repo}{i}".encode()).digest(1_500_000 + i) for i in range(3 * BLOB_CONCURRENCY)
    ]
    tls_setup.registry.push_image(repo, "v1", layers=layers)
    relay = CountingRelay(tls_setup.registry.port)
    try:
        cfg = images_project(tmp_path, f"127.0.0.1:{relay.port}/{repo}:v1")
        assert run("update", "--config", cfg).code == 0
        before = relay.connections
        r = run("pull", "--config", cfg, "--oci-layout", tmp_path / "out")
        assert r.code == 0, r.err
        pulled = relay.connections - before
    finally:
        relay.close()
    blobs = tmp_path / "out" / "blobs" / "sha256"
    for layer in layers:
        assert (blobs / hashlib.sha256(layer).hexdigest()).read_bytes() == layer
    # One HTTP/2 connection for manifests, then at most one HTTP/1.1 connection per blob in flight
    # for the 13 blobs (config and layers): each connection carried several.
    assert 2 <= pulled <= 1 + BLOB_CONCURRENCY, pulled
