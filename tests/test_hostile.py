"""Hostile or broken registries: untrusted content is exit 1 and nothing is recorded.

Each case puts the fault proxy in front of the real registry and rewrites what it says: altered
bytes, lying digests, absurd sizes, wrong media types, schema 1, and a redirect that would carry
credentials to another host.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from lockman.model import lockfile
from lockman.model.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    OCI_INDEX,
    OCI_MANIFEST,
)
from tests.conftest import unique_repo
from tests.faultproxy import FaultProxy
from tests.registry import Registry
from tests.signing_helpers import TESTDATA

pytestmark = pytest.mark.registry

D0 = "sha256:" + "0" * 64
MiB = 1024 * 1024


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def setup(
    tmp_path: Path, registry: Registry, proxy: FaultProxy, kind: str = "image"
) -> tuple[Path, str, object]:
    repo = unique_repo("hostile")
    img = (
        registry.push_image(repo, "v1")
        if kind == "image"
        else registry.push_index(repo, "v1", ["linux/amd64"])
    )
    cfg = tmp_path / "xcargo.toml"
    ref = f"{proxy.host}/{repo}:v1"
    cfg.write_text(f'[container]\nimage = "{ref}"\n')
    return cfg, ref, img


def flip(data: bytes) -> bytes:
    return data.replace(b"schemaVersion", b"schemaVersioN", 1)


def assert_untrusted(r, tmp_path: Path, *fragments: str) -> None:
    assert r.code == 1, (r.out, r.err)
    assert r.err.count("\n") == 1 and "Traceback" not in r.err, r.err
    for f in fragments:
        assert f in r.err, (f, r.err)
    assert not (tmp_path / "xcargo.lock").exists()  # nothing recorded


def test_altered_bytes_name_expected_and_actual(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run
) -> None:
    cfg, _ref, img = setup(tmp_path, registry, fault_proxy)
    fault_proxy.add("/manifests/", "alter", method="GET", transform=flip)
    r = run("update", "--config", cfg)
    assert_untrusted(r, tmp_path, "digest mismatch", img.digest, sha256(flip(img.manifest)))


def test_lying_digest_on_head_is_never_recorded(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run
) -> None:
    cfg, ref, _ = setup(tmp_path, registry, fault_proxy)
    fault_proxy.add("/manifests/v1", "headers", method="HEAD", headers={"Docker-Content-Digest": D0})
    r = run("update", "--config", cfg)
    assert_untrusted(r, tmp_path, ref, f"announced digest {D0}", "serves no manifest")


def test_lying_digest_on_get_names_both(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run
) -> None:
    cfg, _ref, img = setup(tmp_path, registry, fault_proxy)
    fault_proxy.add("/manifests/", "status", method="HEAD", status=405)
    fault_proxy.add("/manifests/", "headers", method="GET", headers={"Docker-Content-Digest": D0})
    r = run("update", "--config", cfg)
    assert_untrusted(r, tmp_path, f"registry's Docker-Content-Digest {D0}", f"content hashes to {img.digest}")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_manifest_is_refused_without_buffering(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run, chunked: bool
) -> None:
    cfg, ref, _ = setup(tmp_path, registry, fault_proxy)
    size = 1 << 30 if not chunked else 6 * MiB
    fault_proxy.add("/manifests/", "huge", method="GET", size=size, chunked=chunked)
    r = run("update", "--config", cfg)
    expected = f"declares {1 << 30} bytes" if not chunked else "sent more than 4194304 bytes"
    assert_untrusted(r, tmp_path, ref, expected, "4194304-byte limit")
    assert fault_proxy.count("GET", "/manifests/") == 1  # not retried


@pytest.mark.parametrize("content_type", ["text/plain", "", "application/octet-stream"])
def test_wrong_or_missing_content_type_still_verified(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run, content_type: str
) -> None:
    cfg, _ref, img = setup(tmp_path, registry, fault_proxy, "index")
    fault_proxy.add("/manifests/", "headers", headers={"Content-Type": content_type})
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    (entry,) = lockfile.loads((tmp_path / "xcargo.lock").read_text()).images
    assert entry.digest == img.digest and entry.media_type == OCI_INDEX  # from the hashed body
    assert [p.platform for p in entry.platforms] == ["linux/amd64"]


def test_content_type_contradicting_body(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run
) -> None:
    cfg, _ref, _ = setup(tmp_path, registry, fault_proxy, "index")
    fault_proxy.add("/manifests/", "status", method="HEAD", status=405)
    fault_proxy.add("/manifests/", "headers", method="GET", headers={"Content-Type": DOCKER_LIST})
    r = run("update", "--config", cfg)
    assert_untrusted(r, tmp_path, f"registry says Content-Type {DOCKER_LIST} but the manifest is {OCI_INDEX}")


def test_head_descriptor_disagreeing_with_manifest(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run
) -> None:
    cfg, ref, img = setup(tmp_path, registry, fault_proxy, "index")
    fault_proxy.add("/manifests/v1", "headers", method="HEAD", headers={"Content-Type": OCI_MANIFEST})
    r = run("update", "--config", cfg)
    assert_untrusted(r, tmp_path, ref, f"descriptor says {OCI_MANIFEST}", f"{img.digest} is {OCI_INDEX}")


def test_index_child_descriptor_disagreeing_with_child(tmp_path: Path, registry: Registry, run) -> None:
    repo = unique_repo("childtype")
    child = registry.push_image(repo, None)  # an OCI image manifest...
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": DOCKER_MANIFEST,  # ...that the index says is a Docker one
                    "digest": child.digest,
                    "size": len(child.manifest),
                    "platform": {"os": "linux", "architecture": "amd64"},
                }
            ],
        }
    ).encode()
    registry.push_manifest(repo, "v1", index, OCI_INDEX)
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{registry.host}/{repo}:v1"\n')
    assert run("update", "--config", cfg).code == 0  # children are not fetched on update
    v = run("verify", "--config", cfg)
    assert v.code == 1
    assert f"linux/amd64): descriptor says {DOCKER_MANIFEST}" in v.err and f"is {OCI_MANIFEST}" in v.err


def schema1_body(repo: str) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 1,
            "name": repo,
            "tag": "v1",
            "architecture": "amd64",
            "fsLayers": [],
            "history": [],
        }
    ).encode()


@pytest.mark.parametrize("via", ["head", "get"])
def test_schema1_refused_clearly(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run, via: str
) -> None:
    cfg, ref, _ = setup(tmp_path, registry, fault_proxy)
    body = schema1_body(ref)
    headers = {"Content-Type": DOCKER_SCHEMA1_SIGNED, "Docker-Content-Digest": sha256(body)}
    if via == "head":
        fault_proxy.add("/manifests/", "status", method="HEAD", status=200, headers=headers, body=body)
    else:
        fault_proxy.add("/manifests/", "status", method="HEAD", status=405)
        fault_proxy.add("/manifests/", "status", method="GET", status=200, headers=headers, body=body)
    r = run("update", "--config", cfg)
    assert_untrusted(r, tmp_path, ref, "Docker schema 1 manifests are not supported")


def test_redirect_never_carries_credentials_to_another_host(
    tmp_path: Path, basic_registry: Registry, run, isolated_env: Path
) -> None:
    reg = basic_registry
    repo = unique_repo("redir")
    reg.push_image(repo, "v1")
    front = FaultProxy("127.0.0.1", reg.port).start()
    elsewhere = FaultProxy("127.0.0.1", reg.port).start()  # another origin (port)
    try:
        (isolated_env / ".docker").mkdir(exist_ok=True)
        auth = base64.b64encode(f"alice:{reg.password}".encode()).decode()
        (isolated_env / ".docker" / "config.json").write_text(
            json.dumps({"auths": {front.host: {"auth": auth}}})
        )
        path = f"/v2/{repo}/manifests/v1"
        front.add("/manifests/", "status", status=307, headers={"Location": f"http://{elsewhere.host}{path}"})
        cfg = tmp_path / "xcargo.toml"
        cfg.write_text(f'[container]\nimage = "{front.host}/{repo}:v1"\n')
        r = run("update", "--config", cfg)
        assert r.code == 3, r.err
        assert any("authorization" in h for m, p, h in front.headers_seen if "/manifests/" in p)
        assert elsewhere.headers_seen, "the redirect was followed"
        assert not any("authorization" in h for _, _, h in elsewhere.headers_seen)
        assert reg.password not in r.err + r.out
        assert not (tmp_path / "xcargo.lock").exists()
    finally:
        front.stop()
        elsewhere.stop()


# ------------------------------------------------------------------ case and glob bypasses


def test_host_case_does_not_escape_blocked_entry(
    tmp_path: Path, registry: Registry, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = unique_repo("case")
    registry.push_image(repo, "v1")
    conf = tmp_path / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "localhost:{registry.port}"\nblocked = true\n')
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "LOCALHOST:{registry.port}/{repo}:v1"\n')
    before = cfg.read_bytes()
    r = run("update", "--config", cfg)
    assert r.code == 2, (r.out, r.err)
    assert "is blocked by" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "xcargo.lock").exists() and cfg.read_bytes() == before


def test_host_case_does_not_escape_signature_policy(tmp_path: Path, registry: Registry, run) -> None:
    repo = unique_repo("case")
    registry.push_image(repo, "v1")  # unsigned
    shutil.copy(TESTDATA / "cosign.pub", tmp_path / "cosign.pub")
    (tmp_path / "lockman.toml").write_text(
        f'[[policy]]\nimages = ["localhost:{registry.port}/*"]\nkey = "cosign.pub"\n'
        "insecure-ignore-tlog = true\n"
    )
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "LocalHost:{registry.port}/{repo}:v1"\n')
    r = run("update", "--config", cfg)
    assert r.code == 1, (r.out, r.err)
    assert "signature check failed" in r.err and "not locked" in r.err
    assert not (tmp_path / "xcargo.lock").exists()


# ------------------------------------------------------------------ credentials to a foreign realm


def _docker_login(home: Path, host: str, user: str, password: str) -> None:
    (home / ".docker").mkdir(exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (home / ".docker" / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))


@pytest.mark.parametrize("where", ["ping", "manifest"])
def test_foreign_host_challenge_never_gets_the_registrys_credentials(
    tmp_path: Path, basic_registry: Registry, run, isolated_env: Path, where: str
) -> None:
    """The registry redirects to a host that answers 401 naming its own token realm."""
    reg = basic_registry
    repo = unique_repo("realm")
    reg.push_image(repo, "v1")
    front = FaultProxy("127.0.0.1", reg.port).start()
    evil = FaultProxy("127.0.0.1", reg.port).start()
    try:
        _docker_login(isolated_env, front.host, "alice", reg.password or "")
        challenge = f'Bearer realm="http://{evil.host}/token",service="evil"'
        evil.add("^/token", "status", status=200, body=b'{"token": "evil-token"}')
        evil.add("^/v2/", "status", status=401, headers={"WWW-Authenticate": challenge})
        path = "^/v2/$" if where == "ping" else "/manifests/"
        front.add(path, "status", status=307, headers={"Location": f"http://{evil.host}/v2/{repo}/x"})
        cfg = tmp_path / "xcargo.toml"
        cfg.write_text(f'[container]\nimage = "{front.host}/{repo}:v1"\n')
        before = cfg.read_bytes()
        r = run("update", "--config", cfg)
        assert evil.headers_seen, "the redirect was followed"
        assert not any("authorization" in h for _, _, h in evil.headers_seen), evil.headers_seen
        assert not any(p.startswith("/token") for _, p, _ in evil.headers_seen)
        assert reg.password not in r.err + r.out and "Traceback" not in r.err
        assert cfg.read_bytes() == before
        if where == "ping":  # the ping's foreign challenge is ignored; the registry's own works
            assert r.code == 0, r.err
        else:
            assert r.code == 3, r.err
            assert f"redirected to {evil.host}, which asks for authentication" in r.err
            assert not (tmp_path / "xcargo.lock").exists()
    finally:
        front.stop()
        evil.stop()


def test_token_realm_redirect_never_reposts_the_identity_token(
    tmp_path: Path, registry: Registry, run, isolated_env: Path
) -> None:
    """The refresh-token grant is a POST: a 307 from the realm would re-send it elsewhere."""
    front = FaultProxy("127.0.0.1", registry.port).start()
    elsewhere = FaultProxy("127.0.0.1", registry.port).start()
    refresh = "identity-t0ken-that-must-stay-home"
    try:
        (isolated_env / ".docker").mkdir(exist_ok=True)
        (isolated_env / ".docker" / "config.json").write_text(
            json.dumps({"auths": {front.host: {"identitytoken": refresh}}})
        )
        challenge = f'Bearer realm="http://{front.host}/token",service="front"'
        front.add("^/token", "status", status=307, headers={"Location": f"http://{elsewhere.host}/token"})
        front.add("^/v2/", "status", status=401, headers={"WWW-Authenticate": challenge})
        elsewhere.add(".", "status", status=200, body=b'{"token": "t"}')
        cfg = tmp_path / "xcargo.toml"
        cfg.write_text(f'[container]\nimage = "{front.host}/team/app:v1"\n')
        r = run("update", "--config", cfg)
        assert r.code == 3, r.err
        assert any(p.startswith("/token") for m, p, _ in front.headers_seen if m == "POST")
        assert not elsewhere.requests, elsewhere.requests
        assert refresh not in r.out + r.err and "Traceback" not in r.err
        assert not (tmp_path / "xcargo.lock").exists()
    finally:
        front.stop()
        elsewhere.stop()
