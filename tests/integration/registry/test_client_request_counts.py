"""What a run costs in registry requests, counted from the registry's own access log.

Resolution is bound by round trips, so the request count is the performance contract: one
``GET /v2/`` per registry, one token request per batch of repositories, one ``HEAD`` per unique
reference, no ``GET`` when nothing changed. Times are measured by ``benchmarks/``, never here.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lockman.registry import client as client_mod
from tests.support.bulkpush import push_images
from tests.support.fixtures import unique_repo
from tests.support.paths import ROOT
from tests.support.registry import Registry
from tests.support.token_server import TokenServer, registry_auth

TRIPLES = [
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
    "armv7-unknown-linux-gnueabihf",
    "riscv64gc-unknown-linux-gnu",
]


def log_lines(registry: Registry, since: int = 0) -> list[str]:
    return registry.access_log_lines()[since:]


def push_many(registry: Registry, n: int) -> list[str]:
    names = push_images(registry.url, n, prefix=unique_repo("count") + "/img")
    return [f"{registry.host}/{name}" for name in names]


def resolve_stdin(run, monkeypatch: pytest.MonkeyPatch, refs: list[str]):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(refs) + "\n"))
    return run("resolve", "-")


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[tuple[Registry, TokenServer]]:
    """docker-registry with Docker token auth (anonymous pulls, like Docker Hub) on plain HTTP."""
    tokens = TokenServer(anonymous_pull=True).start()
    reg = Registry(tmp_path / "registry", auth=registry_auth(tokens, tmp_path)).start()
    yield reg, tokens
    reg.stop()
    tokens.stop()


def push_via_twin(reg: Registry, n: int) -> list[str]:
    """Push through a plain, open twin on the same storage (pushing is not what is measured)."""
    twin = Registry(reg.root / "twin", storage=reg.storage or reg.root / "data")
    twin.start()
    try:
        refs = push_many(twin, n)
    finally:
        twin.stop()
    return [r.replace(twin.host, reg.host) for r in refs]


@pytest.mark.registry
def test_twenty_images_cost_at_most_twenty_two_requests(registry: Registry, run, monkeypatch) -> None:
    refs = push_many(registry, 20)
    mark = len(log_lines(registry))
    r = resolve_stdin(run, monkeypatch, refs + refs[:5])  # duplicates cost nothing
    assert r.code == 0, r.err
    assert len(r.out.splitlines()) == 25
    lines = log_lines(registry, mark)
    assert len(lines) <= 22, lines
    assert sum('"HEAD /v2/' in ln for ln in lines) == 20
    assert sum('"GET /v2/ ' in ln for ln in lines) == 1  # one ping
    assert not any('"GET /v2/' in ln and "/manifests/" in ln for ln in lines)


@pytest.mark.registry
def test_token_registry_one_ping_one_token_one_head_each(token_registry, run, monkeypatch) -> None:
    reg, tokens = token_registry
    refs = push_via_twin(reg, 20)
    mark = len(log_lines(reg))
    r = resolve_stdin(run, monkeypatch, refs)
    assert r.code == 0, r.err
    lines = log_lines(reg, mark)
    assert tokens.requests == 1  # all 20 repositories in one token request
    assert sorted(tokens.scopes[0]) == sorted(
        {f"repository:{x.split('/', 1)[1].split(':')[0]}:pull" for x in refs}
    )
    assert len(lines) + tokens.requests <= 22, lines
    assert sum('"HEAD /v2/' in ln for ln in lines) == 20
    assert not any(" 401 " in ln for ln in lines if '"HEAD ' in ln)  # the token was sent up front


@pytest.mark.registry
def test_token_batches_are_bounded(token_registry, run, monkeypatch) -> None:
    """Tokens go with every request; batching is capped so they stay small."""
    reg, tokens = token_registry
    monkeypatch.setattr(client_mod, "TOKEN_SCOPES_PER_REQUEST", 4)
    refs = push_via_twin(reg, 10)
    assert resolve_stdin(run, monkeypatch, refs).code == 0
    assert sorted(len(s) for s in tokens.scopes) == [2, 4, 4]


def config_with_images(tmp_path: Path, refs: list[str]) -> Path:
    body = ['[targets]\ndefault = ["x86_64-unknown-linux-gnu"]\n']
    for triple, ref in zip(TRIPLES, refs, strict=False):
        body.append(f'[targets."{triple}".container]\nimage = "{ref}"\n')
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text("\n".join(body))
    return cfg


@pytest.mark.registry
def test_no_change_update_is_one_head_per_image_and_a_ping(tmp_path: Path, registry: Registry, run) -> None:
    refs = push_many(registry, len(TRIPLES))
    cfg = config_with_images(tmp_path, refs)
    assert run("update", "--config", cfg).code == 0
    mark = len(log_lines(registry))
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    lines = log_lines(registry, mark)
    heads = [ln for ln in lines if '"HEAD /v2/' in ln]
    assert len(heads) == len(TRIPLES)
    assert len(lines) == len(TRIPLES) + 1, lines  # plus the ping; no GET, no tag list


@pytest.mark.registry
def test_verify_is_one_get_per_locked_manifest_and_a_ping(tmp_path: Path, registry: Registry, run) -> None:
    """verify hashes every locked manifest as served, a warm cache or not: one GET each (what
    the HEAD of a cache hit cost before), nothing else."""
    refs = push_many(registry, len(TRIPLES))
    cfg = config_with_images(tmp_path, refs)
    assert run("update", "--config", cfg).code == 0
    for _ in range(2):  # the second run finds every manifest in the cache
        mark = len(log_lines(registry))
        r = run("verify", "--config", cfg)
        assert r.code == 0, r.err
        lines = log_lines(registry, mark)
        assert sum('"GET /v2/' in ln and "/manifests/sha256:" in ln for ln in lines) == len(TRIPLES)
        assert len(lines) == len(TRIPLES) + 1, lines  # plus the ping; no HEAD


@pytest.mark.registry
def test_no_change_update_on_token_registry(tmp_path: Path, token_registry, run) -> None:
    reg, tokens = token_registry
    refs = push_via_twin(reg, len(TRIPLES))
    cfg = config_with_images(tmp_path, refs)
    assert run("update", "--config", cfg).code == 0
    mark, token_mark = len(log_lines(reg)), tokens.requests
    assert run("update", "--config", cfg).code == 0
    lines = log_lines(reg, mark)
    assert tokens.requests - token_mark == 1
    assert [ln for ln in lines if '"HEAD /v2/' not in ln] == [ln for ln in lines if '"GET /v2/ ' in ln]
    assert len(lines) == len(TRIPLES) + 1


@pytest.mark.registry
def test_http2_over_tls_and_http1_when_disabled(tmp_path: Path) -> None:
    """docker-registry speaks HTTP/2 over TLS; lockman uses it, or HTTP/1.1 with LOCKMAN_HTTP2=0."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key, ca_path = tmp_path / "s.crt", tmp_path / "s.key", tmp_path / "ca.crt"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_path))
    reg = Registry(tmp_path / "registry", tls=(cert, key)).start()
    try:
        refs = push_via_twin(reg, 3)
        for flag, version in (("1", "HTTP/2.0"), ("0", "HTTP/1.1")):
            mark = len(log_lines(reg))
            env = dict(os.environ, PYTHONPATH=str(ROOT), SSL_CERT_FILE=str(ca_path), LOCKMAN_HTTP2=flag)
            p = subprocess.run(
                [sys.executable, "-m", "lockman", "resolve", *refs], env=env, capture_output=True, text=True
            )
            assert p.returncode == 0, p.stderr
            lines = log_lines(reg, mark)
            assert len(lines) == 4 and all(f" {version}" in ln for ln in lines), lines
    finally:
        reg.stop()


def test_linear_huffman_encoder_matches_hpack() -> None:
    hpack_huffman = pytest.importorskip("hpack.huffman")
    from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

    from lockman.registry import http2

    http2.install()
    original = http2.original_encode
    enc = hpack_huffman.HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
    rng = random.Random(7)
    samples = [b"", b"a", b"Bearer abc.def", bytes(range(256))]
    samples += [rng.randbytes(rng.randrange(1, 300)) for _ in range(200)]
    for data in samples:
        assert http2._encode(enc, data) == original(enc, data)
    assert hpack_huffman.HuffmanEncoder.encode is http2._encode
    assert http2.install() and http2.original_encode is original  # idempotent
