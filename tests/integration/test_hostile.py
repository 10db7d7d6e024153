"""Hostile registries and shared machines: the attacker's tests, run through the real CLI.

Each case puts the fault proxy in front of the real registry (or a small malicious loopback
server) and rewrites what it says: altered bytes, lying digests, absurd sizes, wrong media
types, schema 1, redirects that would carry credentials elsewhere, compressed bombs, trickled
bodies, fan-out and deep graphs, terminal and Markdown injection, deep JSON; or plants links
and FIFOs in directories lockman shares. Untrusted content is exit 1, a failing registry exit 3,
no secret is printed, and the lock and config stay as they were.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import lockman.images.graph
from lockman.model import lockfile
from lockman.model.lockfile import _lock_path
from lockman.model.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    OCI_INDEX,
    OCI_MANIFEST,
)
from tests.support.credentials import docker_config, helper_script
from tests.support.faultproxy import FaultProxy
from tests.support.fixtures import unique_repo
from tests.support.paths import ROOT as REPO
from tests.support.registry import Registry
from tests.support.signing_helpers import TESTDATA

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
    # Every walk applies the same descriptor checks: pull (and a platform pin) refuse it too.
    layout = tmp_path / "layout"
    p = run("pull", "--config", cfg, "--oci-layout", layout)
    assert p.code == 1 and f"descriptor says {DOCKER_MANIFEST}" in p.err, p.err
    assert not (layout / "index.json").exists()
    lock = (tmp_path / "xcargo.lock").read_bytes()
    u = run("update", "--config", cfg, "--platform", "linux/amd64")
    assert u.code == 1 and f"descriptor says {DOCKER_MANIFEST}" in u.err, u.err
    assert (tmp_path / "xcargo.lock").read_bytes() == lock


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


# ------------------------------------------------------------------ compressed bodies


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed: about size/1000 on the wire."""
    return gzip.compress(b"\0" * size, 9)


@pytest.mark.parametrize("what", ["manifest", "token"])
def test_compressed_body_is_capped_by_what_it_decodes_to(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run, what: str
) -> None:
    bomb = gzip_bomb(64 * MiB)
    assert len(bomb) < 100_000  # far under the cap on the wire
    gz = {"Content-Encoding": "gzip", "Content-Type": OCI_MANIFEST}
    cfg, ref, _ = setup(tmp_path, registry, fault_proxy)
    if what == "manifest":
        fault_proxy.add("/manifests/", "status", method="HEAD", status=405)
        fault_proxy.add("/manifests/", "status", method="GET", status=200, headers=gz, body=bomb)
        expected = (ref, "sent more than 4194304 bytes")
    else:
        challenge = f'Bearer realm="http://{fault_proxy.host}/token",service="x"'
        fault_proxy.add("^/token", "status", status=200, headers=gz, body=bomb)
        fault_proxy.add("^/v2/", "status", status=401, headers={"WWW-Authenticate": challenge})
        expected = ("answer to /token is", "over the 4194304-byte limit")
    r = run("update", "--config", cfg)
    assert r.code in (1, 3), (r.out, r.err)
    assert r.err.count("\n") == 1 and "Traceback" not in r.err, r.err
    for fragment in expected:
        assert fragment in r.err, r.err
    assert not (tmp_path / "xcargo.lock").exists()
    assert all(h.get("accept-encoding") == "identity" for _, _, h in fault_proxy.headers_seen)


def test_unoffered_encoding_is_refused(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run
) -> None:
    cfg, _ref, _ = setup(tmp_path, registry, fault_proxy)
    fault_proxy.add("/manifests/", "status", method="HEAD", status=405)
    fault_proxy.add(
        "/manifests/", "status", method="GET", status=200, headers={"Content-Encoding": "br"}, body=b"\x1b"
    )
    r = run("update", "--config", cfg)
    assert r.code == 3 and "sent Content-Encoding 'br'" in r.err and "Traceback" not in r.err, r.err
    assert not (tmp_path / "xcargo.lock").exists()


# ------------------------------------------------------------------ trickled bodies


@pytest.mark.parametrize("command", ["pull", "verify --deep"])
def test_timeout_bounds_a_trickled_blob_body(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run, command: str
) -> None:
    """Each byte comes well within the per-read timeout; the body as a whole must not."""
    repo = unique_repo("trickle")
    registry.push_image(repo, "v1", layer_size=400)
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{fault_proxy.host}/{repo}:v1"\n')
    assert run("update", "--config", cfg).code == 0
    lock = (tmp_path / "xcargo.lock").read_bytes()
    fault_proxy.add("/blobs/", "trickle", method="GET", delay=0.05)  # 400 bytes: 20 s each
    extra = ["--oci-layout", str(tmp_path / "layout")] if command == "pull" else ["--deep"]
    r = run(command.split()[0], "--timeout", "0.5", "--config", cfg, *extra)
    assert r.code == 3, (r.out, r.err)
    assert "interrupted after" in r.err and "body not complete within 0.5 s" in r.err, r.err
    assert "Traceback" not in r.err
    assert (tmp_path / "xcargo.lock").read_bytes() == lock


# ------------------------------------------------------------------ a shared layout directory


def _locked_image(tmp_path: Path, registry: Registry) -> tuple[Path, object]:
    repo = unique_repo("shared")
    img = registry.push_image(repo, "v1", layer_size=300)
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{registry.host}/{repo}:v1"\n')
    return cfg, img


def test_planted_links_in_a_layout_never_redirect_writes(tmp_path: Path, registry: Registry, run) -> None:
    """Links at a partial download and at a final blob: nothing is written through either."""
    cfg, img = _locked_image(tmp_path, registry)
    assert run("update", "--config", cfg).code == 0
    layer, config = sha256(img.layers[0]), sha256(img.config)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"the user's precious file\n")
    lookalike = tmp_path / "attacker-config"
    lookalike.write_bytes(img.config)  # right bytes today, anything the attacker likes tomorrow
    out = tmp_path / "layout"
    (out / ".lockman-partial").mkdir(parents=True)
    (out / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (out / ".lockman-partial" / f"sha256-{layer[7:]}").symlink_to(victim)
    (out / "blobs" / "sha256").mkdir(parents=True)
    (out / "blobs" / "sha256" / config[7:]).symlink_to(lookalike)
    r = run("pull", "--config", cfg, "--oci-layout", out)
    assert r.code == 0, r.err
    assert victim.read_bytes() == b"the user's precious file\n"
    for digest, data in ((layer, img.layers[0]), (config, img.config)):
        blob = out / "blobs" / "sha256" / digest[7:]
        assert not blob.is_symlink() and blob.read_bytes() == data


@pytest.mark.parametrize("part", ["blobs", ".lockman-partial", "blobs/sha256"])
def test_layout_whose_parts_link_elsewhere_is_refused(
    tmp_path: Path, registry: Registry, run, part: str
) -> None:
    cfg, _img = _locked_image(tmp_path, registry)
    assert run("update", "--config", cfg).code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "layout"
    out.mkdir()
    (out / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (out / part).parent.mkdir(parents=True, exist_ok=True)
    (out / part).symlink_to(elsewhere, target_is_directory=True)
    r = run("pull", "--config", cfg, "--oci-layout", out)
    assert r.code == 2, r.err
    assert f"{out / part}: {part} is a symbolic link" in r.err and "Traceback" not in r.err
    assert list(elsewhere.iterdir()) == []
    assert not (out / "index.json").exists()


@pytest.mark.parametrize("part", [".lockman-partial", "blobs/sha256"])
def test_a_part_swapped_for_a_link_mid_run_redirects_nothing(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run, part: str
) -> None:
    """Once a part is checked, another process swaps it for a link (here: while the registry
    sends the first blob). Opening by path then wrote the download into the link's target."""
    repo = unique_repo("swap")
    img = registry.push_image(repo, "v1", layer_size=300)
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{fault_proxy.host}/{repo}:v1"\n')
    assert run("update", "--config", cfg).code == 0
    out, elsewhere = tmp_path / "layout", tmp_path / "elsewhere"
    elsewhere.mkdir()

    def swap(data: bytes) -> bytes:
        target = out / part
        if target.is_dir() and not target.is_symlink():
            target.rename(target.with_name(target.name + ".moved"))
            target.symlink_to(elsewhere, target_is_directory=True)
        return data

    fault_proxy.add("/blobs/sha256:", "alter", method="GET", transform=swap, times=1)
    r = run("pull", "--config", cfg, "--oci-layout", out)
    assert (out / part).is_symlink()  # the swap happened during the run
    assert list(elsewhere.iterdir()) == []
    assert r.code == 2, (r.out, r.err)
    assert f"{out / part}: {part} was replaced during the run; refusing to use it" in r.err
    assert "Traceback" not in r.err
    assert not (out / "index.json").exists()  # no reader is pointed at blobs it cannot find
    # What was written went where it was opened, and is only ever verified content.
    moved = out / (part + ".moved")
    for f in moved.iterdir():
        data = f.read_bytes()
        assert data in (img.config, img.layers[0]) or sha256(data) == f"sha256:{f.name}"


def test_fifo_in_the_manifest_cache_is_a_miss_not_a_hang(tmp_path: Path, registry: Registry) -> None:
    """Run as a process with a deadline: the old reader blocked forever on the FIFO."""
    cfg, img = _locked_image(tmp_path, registry)
    env = {**os.environ, "LOCKMAN_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "lockman"]
    done = subprocess.run([*cmd, "update", "--config", str(cfg)], env=env, timeout=60, capture_output=True)
    assert done.returncode == 0, done.stderr
    entry = tmp_path / "cache" / "manifests" / "sha256" / img.digest[7:]
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.unlink(missing_ok=True)
    os.mkfifo(entry)
    # pull reads the cache (verify never does: it hashes what the registry serves).
    pull = [*cmd, "pull", "--config", str(cfg), "--oci-layout", str(tmp_path / "layout")]
    r = subprocess.run(pull, env=env, timeout=20, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert entry.is_file() or not entry.exists()  # the FIFO is gone (replaced or removed)


def test_planted_link_at_the_lock_file_is_refused(tmp_path: Path, registry: Registry, run) -> None:
    cfg, _img = _locked_image(tmp_path, registry)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    lock_path = _lock_path(tmp_path / "xcargo.lock")
    lock_path.symlink_to(victim)
    r = run("update", "--config", cfg)
    assert r.code == 2 and f"{lock_path}: lock file is a symbolic link" in r.err, r.err
    assert victim.read_bytes() == b"precious" and not (tmp_path / "xcargo.lock").exists()


# ------------------------------------------------------------------ request amplification


def _index(children: list[dict]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()


def _fan_out(registry: Registry, repo: str) -> list[str]:
    """top lists mid 40 times, mid lists one image 40 times: 3 distinct manifests."""
    img = registry.push_image(repo, None)
    leaf = {
        "mediaType": OCI_MANIFEST,
        "digest": img.digest,
        "size": len(img.manifest),
        "platform": {"os": "linux", "architecture": "amd64"},
    }
    mid = _index([leaf] * 40)
    mid_digest = registry.push_manifest(repo, sha256(mid), mid, OCI_INDEX)
    top = _index([{"mediaType": OCI_INDEX, "digest": mid_digest, "size": len(mid)}] * 40)
    registry.push_manifest(repo, "v1", top, OCI_INDEX)
    return [sha256(top), mid_digest, img.digest]


@pytest.mark.parametrize(
    "command",
    [["verify", "--deep"], ["pull", "--oci-layout", "LAYOUT"], ["update", "--platform", "linux/amd64"]],
    ids=["verify-deep", "pull", "update-platform"],
)
def test_repeated_children_are_fetched_once(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run, command: list[str]
) -> None:
    repo = unique_repo("fanout")
    digests = _fan_out(registry, repo)
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{fault_proxy.host}/{repo}:v1"\n')
    assert run("update", "--config", cfg).code == 0
    fault_proxy.requests.clear()
    args = [str(tmp_path / "layout") if a == "LAYOUT" else a for a in command]
    no_cache = ["--no-cache"] if args[0] != "update" else []  # update keeps no manifest cache
    r = run(args[0], "--config", cfg, *no_cache, *args[1:])
    assert r.code == 0, r.err
    gets = [p for m, p, _ in fault_proxy.requests if m == "GET" and "/manifests/" in p]
    assert sorted(set(gets)) == sorted(gets), gets  # no digest fetched twice
    assert {p.rsplit("/", 1)[1] for p in gets} <= set(digests)
    assert len(fault_proxy.requests) < 15, fault_proxy.requests


def test_too_deep_or_too_large_graph_is_refused_clearly(
    tmp_path: Path, registry: Registry, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = unique_repo("deep")
    img = registry.push_image(repo, None)
    desc = {"mediaType": OCI_MANIFEST, "digest": img.digest, "size": len(img.manifest)}
    for _ in range(10):  # ten indexes, each wrapping the last
        body = _index([desc])
        desc = {"mediaType": OCI_INDEX, "digest": registry.push_manifest(repo, sha256(body), body, OCI_INDEX)}
        desc["size"] = len(body)
    registry.push_manifest(repo, "v1", body, OCI_INDEX)
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{registry.host}/{repo}:v1"\n')
    assert run("update", "--config", cfg).code == 0
    r = run("pull", "--config", cfg, "--oci-layout", tmp_path / "layout")
    assert r.code == 1 and "indexes nested more than 8 deep" in r.err, r.err
    assert r.err.count("\n") <= 2 and "Traceback" not in r.err

    monkeypatch.setattr(lockman.images.graph, "MAX_DEPTH", 20)
    monkeypatch.setattr(lockman.images.graph, "MAX_MANIFESTS", 5)
    r = run("verify", "--config", cfg, "--deep")
    assert r.code == 1 and "more than 5 manifests in one image" in r.err, r.err


def test_verify_deep_checks_every_image_whatever_the_others_problems(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run
) -> None:
    """One image's manifest is gone; another's layer is corrupt: both are reported."""
    gone, corrupt = unique_repo("gone"), unique_repo("corrupt")
    a = registry.push_image(gone, "v1", salt="gone")
    b = registry.push_image(corrupt, "v1", salt="corrupt")
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(
        f'[container]\nimage = "{fault_proxy.host}/{gone}:v1"\n\n'
        f'[targets."aarch64-unknown-linux-gnu".container]\nimage = "{fault_proxy.host}/{corrupt}:v1"\n'
    )
    assert run("update", "--config", cfg).code == 0
    fault_proxy.add(f"{gone}/manifests/", "status", status=404)
    fault_proxy.add(f"{corrupt}/blobs/{sha256(b.layers[0])}", "alter", transform=lambda d: d[::-1])
    r = run("verify", "--config", cfg, "--deep", "--no-cache", "--format", "json")
    assert r.code == 1, r.err
    doc = json.loads(r.out)
    kinds = {(p["image"].split("/")[1], p["kind"]) for p in doc["problems"]}
    assert ("gone", "not-served") in kinds and ("corrupt", "blob") in kinds, doc["problems"]
    assert [i["ok"] for i in doc["images"]] == [False, False]
    assert a.digest in r.err and "digest mismatch" in r.err


# ------------------------------------------------------------------ deep JSON


@pytest.mark.parametrize("where", ["manifest", "token", "error-body"])
def test_deeply_nested_json_is_one_error_line(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run, where: str
) -> None:
    deep = b"[" * 200_000
    cfg, ref, _ = setup(tmp_path, registry, fault_proxy)
    if where == "token":
        challenge = f'Bearer realm="http://{fault_proxy.host}/token",service="x"'
        fault_proxy.add("^/token", "status", status=200, body=deep)
        fault_proxy.add("^/v2/", "status", status=401, headers={"WWW-Authenticate": challenge})
    else:
        fault_proxy.add("/manifests/", "status", method="HEAD", status=405)
        status = 200 if where == "manifest" else 400
        fault_proxy.add("/manifests/", "status", method="GET", status=status, body=deep)
    r = run("update", "--config", cfg)
    assert r.code in (1, 3), (r.out, r.err)
    assert r.err.count("\n") == 1 and "Traceback" not in r.err and "Recursion" not in r.err, r.err
    expected = {
        "manifest": "manifest is not valid JSON",
        "token": "sent no token",
        "error-body": "HTTP 400",
    }[where]
    assert expected in r.err and ("token" in where or ref in r.err), r.err
    assert not (tmp_path / "xcargo.lock").exists()


# ------------------------------------------------------------------ registry text in reports and terminals

OSC_TITLE = "\x1b]0;pwned\x07"
INJECTED_ROW = "amd64 | ✅ safe to merge |\n<!--"


@pytest.mark.parametrize(
    "os_value",
    [f"linux{OSC_TITLE}", f"linux\n{INJECTED_ROW}", "linux\ud800"],
    ids=["ansi-osc", "markdown-row", "lone-surrogate"],
)
def test_platform_words_are_held_to_their_grammar(
    tmp_path: Path, registry: Registry, run, os_value: str
) -> None:
    repo = unique_repo("words")
    img = registry.push_image(repo, None)
    child = {
        "mediaType": OCI_MANIFEST,
        "digest": img.digest,
        "size": len(img.manifest),
        "platform": {"os": os_value, "architecture": "amd64"},
    }
    body = _index([child])
    registry.push_manifest(repo, "v1", body, OCI_INDEX)
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{registry.host}/{repo}:v1"\n')
    r = run("update", "--config", cfg, "--format", "markdown")
    assert r.code == 1, (r.out, r.err)
    assert "platform os" in r.err and "is not a valid value" in r.err, r.err
    assert r.err.count("\n") == 1 and "Traceback" not in r.err
    assert "\x1b" not in r.out + r.err and "<!--" not in r.out and "safe to merge |" not in r.out
    assert not (tmp_path / "xcargo.lock").exists()


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_registry_error_prose_never_reaches_terminal_or_pr_body_raw(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run, fmt: str
) -> None:
    cfg, ref, _ = setup(tmp_path, registry, fault_proxy)
    assert run("update", "--config", cfg).code == 0
    code = f"DENIED{OSC_TITLE}\n| {INJECTED_ROW}"
    body = json.dumps({"errors": [{"code": code, "message": "x"}]}).encode()
    fault_proxy.add("/manifests/", "status", status=400, body=body)
    r = run("verify", "--config", cfg, "--no-cache", "--format", fmt)
    assert r.code == 3, (r.out, r.err)
    assert ref in r.err and "HTTP 400" in r.err, r.err
    assert r.err.count("\n") == 1 and "\x1b" not in r.out + r.err
    assert "<!--" not in r.out and "safe to merge |" not in r.out, r.out


# ------------------------------------------------------------------ xcargo.toml and xcargo.lock


def test_pin_write_keeps_crlf_and_every_other_byte(tmp_path: Path, registry: Registry, run) -> None:
    repo = unique_repo("crlf")
    img = registry.push_image(repo, "v1")
    cfg = tmp_path / "xcargo.toml"
    original = (
        f'# CRLF file\r\n[container]\r\nimage = "{registry.host}/{repo}:v1"  # keep me\r\n\r\n'.encode()
    )
    cfg.write_bytes(original)
    assert run("update", "--config", cfg).code == 0
    r = run("pin", "--config", cfg, "--write")
    assert r.code == 0, r.err
    expected = original.replace(b':v1"', f':v1@{img.digest}"'.encode())
    assert cfg.read_bytes() == expected


def test_pin_write_changes_both_files_or_neither(tmp_path: Path, registry: Registry) -> None:
    """The second write fails (file size limit, as a full disk would): neither file changes."""
    repo = unique_repo("pair")
    registry.push_index(repo, "v1", ["linux/amd64", "linux/arm64/v8", "linux/arm/v7", "linux/s390x"])
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{registry.host}/{repo}:v1"\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "lockman"]
    done = subprocess.run([*cmd, "update", "--config", str(cfg)], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    before = {p: p.read_bytes() for p in (cfg, tmp_path / "xcargo.lock")}
    limit = len(before[cfg]) + 200  # room for the pinned xcargo.toml, not for the lock
    assert len(before[tmp_path / "xcargo.lock"]) > limit

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = subprocess.run(
        [*cmd, "pin", "--config", str(cfg), "--write"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=small_files,
    )
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert r.stderr.startswith(f"error: {tmp_path / 'xcargo.lock'}: ") and "Traceback" not in r.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xcargo.lock", "xcargo.toml"]  # no temp left


# ------------------------------------------------------------------ a failing credential helper


@pytest.mark.parametrize("stderr", [True, False], ids=["says-it-on-stderr", "json-only"])
def test_failing_helper_output_never_shows_its_secret(
    tmp_path: Path, basic_registry: Registry, run, isolated_env: Path, monkeypatch, stderr: bool
) -> None:
    secret = "helper-s3cret-value-0123"
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    body = f"print(json.dumps({{'ServerURL': server, 'Username': 'alice', 'Secret': {secret!r}}}))\n"
    if stderr:
        body += f"print('keychain locked after reading {secret}', file=sys.stderr)\n"
    helper_script(bin_dir, "lmleaky", body + "sys.exit(1)")
    docker_config(isolated_env, {"credHelpers": {basic_registry.host: "lmleaky"}})
    repo = unique_repo("leaky")
    basic_registry.push_image(repo, "v1")
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{basic_registry.host}/{repo}:v1"\n')
    r = run("update", "--config", cfg)
    assert r.code == 3, r.err
    assert "docker-credential-lmleaky failed (exit 1" in r.err, r.err
    assert secret not in r.out + r.err
    assert not (tmp_path / "xcargo.lock").exists()
