"""`lockman pull`, `verify --deep` and the manifest cache against the real docker-registry.

Layouts are read back by skopeo; faults (altered, truncated, redirected blobs) come from the
fault proxy in front of the registry.
"""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lockman.model import lockfile
from tests.support.faultproxy import FaultProxy
from tests.support.fixtures import unique_repo
from tests.support.project import images_project
from tests.support.registry import OCI_INDEX, Registry, require_tool, sha256

needs_skopeo = pytest.mark.usefixtures("skopeo_installed")


class RecordingProxy(FaultProxy):
    """The fault proxy, also keeping every request's headers."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        self.seen.append((h.command, h.path, {k.lower(): v for k, v in h.headers.items()}))
        super()._serve(h)


@pytest.fixture
def proxy(registry: Registry) -> Iterator[RecordingProxy]:
    p = RecordingProxy("127.0.0.1", registry.port).start()
    yield p
    p.stop()


def layout_problems(layout: Path) -> list[str]:
    """Files in the layout that are not verified content under their digest's name."""
    bad = []
    for path in layout.rglob("*"):
        if path.is_dir():
            continue
        rel = path.relative_to(layout)
        if rel.parts[0] == "blobs":
            if hashlib.sha256(path.read_bytes()).hexdigest() != path.name:
                bad.append(f"{rel}: does not hash to its name")
        elif str(rel) not in ("oci-layout", "index.json"):
            bad.append(f"{rel}: unexpected file")
    return bad


def ref_names(layout: Path) -> dict[str, dict]:
    index = json.loads((layout / "index.json").read_text())
    return {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}


@pytest.mark.registry
@needs_skopeo
def test_pull_layout_read_back_by_skopeo(
    tmp_path: Path, registry: Registry, proxy: RecordingProxy, run
) -> None:
    import subprocess

    base = unique_repo("pull")
    idx = registry.push_index(f"{base}/rust", "1.70", ["linux/amd64", "linux/arm64/v8"])
    single = registry.push_image(f"{base}/musl", "v1", layer_size=200_000)
    rust, musl = f"{proxy.host}/{base}/rust:1.70", f"{proxy.host}/{base}/musl:v1"
    cfg = images_project(tmp_path, rust, musl)
    assert run("update", "--config", cfg).code == 0
    out = tmp_path / "layout"

    r = run("pull", "--config", cfg, "--oci-layout", out)
    assert r.code == 0, r.err
    assert layout_problems(out) == []
    names = ref_names(out)
    assert names[rust]["digest"] == idx.digest and names[rust]["mediaType"] == OCI_INDEX
    assert names[musl]["digest"] == single.digest
    # the whole index is there: both platforms and the attestation manifest
    for child in idx.children.values():
        assert (out / "blobs/sha256" / child.digest.split(":")[1]).read_bytes() == child.manifest

    insp = subprocess.run(["skopeo", "inspect", f"oci:{out}:{musl}"], capture_output=True, text=True)
    assert insp.returncode == 0, insp.stderr
    assert json.loads(insp.stdout)["Digest"] == single.digest
    dest = tmp_path / "copied"
    cp = subprocess.run(
        ["skopeo", "copy", "--all", f"oci:{out}:{rust}", f"dir:{dest}"], capture_output=True, text=True
    )
    assert cp.returncode == 0, cp.stderr
    assert (dest / "manifest.json").read_bytes() == idx.manifest
    valid = subprocess.run(
        [require_tool("oci-image-tool"), "validate", "--type", "image", str(out)], capture_output=True, text=True
    )
    assert valid.returncode == 0, valid.stdout + valid.stderr  # every name, index and manifest

    # Second pull: every blob present and valid, none fetched again.
    blob_gets = proxy.count("GET", "/blobs/")
    r = run("pull", "--config", cfg, "--oci-layout", out)
    assert r.code == 0, r.err
    assert proxy.count("GET", "/blobs/") == blob_gets
    assert "0 bytes fetched" in r.out

    # A blob damaged on disk is noticed, replaced, and never left under its name.
    layer = out / "blobs/sha256" / sha256(single.layers[0]).split(":")[1]
    layer.write_bytes(b"damaged")
    r = run("pull", musl, "--config", cfg, "--oci-layout", out)
    assert r.code == 0, r.err
    assert layer.read_bytes() == single.layers[0]
    assert rust not in r.out  # only the named image


@pytest.mark.registry
def test_platform_selection_and_nested_index(tmp_path: Path, registry: Registry, run) -> None:
    repo = unique_repo("plat")
    amd = registry.push_image(repo, None, arch="amd64")
    arm = registry.push_image(repo, None, arch="arm64", variant="v8")
    inner = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": arm.media_type,
                    "digest": arm.digest,
                    "size": len(arm.manifest),
                    "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
                },
            ],
        }
    ).encode()
    inner_digest = registry.push_manifest(repo, sha256(inner), inner, OCI_INDEX)
    outer = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": amd.media_type,
                    "digest": amd.digest,
                    "size": len(amd.manifest),
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
                {"mediaType": OCI_INDEX, "digest": inner_digest, "size": len(inner)},
            ],
        }
    ).encode()
    outer_digest = registry.push_manifest(repo, "nested", outer, OCI_INDEX)
    name = f"{registry.host}/{repo}:nested"
    cfg = images_project(tmp_path, name)
    assert run("update", "--config", cfg).code == 0

    out = tmp_path / "arm"
    r = run("pull", "--config", cfg, "--oci-layout", out, "--platform", "linux/arm64")
    assert r.code == 0, r.err
    top = ref_names(out)[name]
    assert top["digest"] == arm.digest  # found through the nested index
    assert top["platform"] == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    files = {p.name for p in (out / "blobs/sha256").iterdir()}
    assert arm.digest.split(":")[1] in files and amd.digest.split(":")[1] not in files
    assert sha256(amd.layers[0]).split(":")[1] not in files

    full = tmp_path / "full"
    assert run("pull", "--config", cfg, "--oci-layout", full).code == 0
    files = {p.name for p in (full / "blobs/sha256").iterdir()}
    assert {d.split(":")[1] for d in (outer_digest, inner_digest, amd.digest, arm.digest)} <= files
    assert layout_problems(full) == []

    r = run("pull", "--config", cfg, "--oci-layout", tmp_path / "none", "--platform", "linux/s390x")
    assert r.code == 2 and "no linux/s390x image" in r.err and "linux/amd64" in r.err
    r = run("pull", "--config", cfg, "--oci-layout", tmp_path / "bad", "--platform", "linux")
    assert r.code == 2 and "--platform" in r.err
    r = run("pull", "other:1", "--config", cfg, "--oci-layout", tmp_path / "bad")
    assert r.code == 2 and "other:1: not in" in r.err


@pytest.mark.registry
def test_altered_blob_fails_pull_and_deep_verify(
    tmp_path: Path, registry: Registry, proxy: RecordingProxy, run
) -> None:
    repo = unique_repo("alter")
    img = registry.push_image(repo, "v1", layer_size=100_000)
    name = f"{proxy.host}/{repo}:v1"
    cfg = images_project(tmp_path, name)
    assert run("update", "--config", cfg).code == 0
    layer_digest = sha256(img.layers[0])

    def flip(b: bytes) -> bytes:
        return bytes([b[0] ^ 1]) + b[1:]

    proxy.add(f"/blobs/{layer_digest}", "alter", method="GET", transform=flip)
    out = tmp_path / "layout"
    r = run("pull", "--config", cfg, "--oci-layout", out)
    assert r.code == 1
    assert name in r.err and layer_digest in r.err and sha256(flip(img.layers[0])) in r.err
    assert layout_problems(out) == []  # no altered blob, no partial file left behind
    assert layer_digest.split(":")[1] not in {p.name for p in out.rglob("*")}
    assert not (out / "index.json").exists() or name not in ref_names(out)

    assert run("verify", "--config", cfg).code == 0  # manifests are intact
    v = run("verify", "--deep", "--config", cfg)
    assert v.code == 1 and layer_digest in v.err and sha256(flip(img.layers[0])) in v.err

    proxy.clear()
    v = run("verify", "--deep", "--config", cfg)
    assert v.code == 0, v.err
    assert "2 blobs" in v.out
    assert run("pull", "--config", cfg, "--oci-layout", out).code == 0


class InFlightProxy(RecordingProxy):
    """Counts blob GETs in flight; holds them until ``hold_for`` have been in flight at once.

    Holding makes the overlap certain (5 s at most), so the maximum seen is the client's bound,
    not luck; later requests pass straight through and still count.
    """

    def __init__(self, host: str, port: int, hold_for: int) -> None:
        super().__init__(host, port)
        self.hold_for, self.in_flight, self.max_in_flight = hold_for, 0, 0
        self._cond = threading.Condition()

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        if h.command != "GET" or "/blobs/" not in h.path:
            return super()._serve(h)
        with self._cond:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self.max_in_flight >= self.hold_for, timeout=5)
        try:
            super()._serve(h)
        finally:
            with self._cond:
                self.in_flight -= 1


def _random_layers(n: int, size: int, salt: str) -> list[bytes]:
    return [hashlib.shake_256(f"{salt}{i}".encode()).digest(size) for i in range(n)]


@pytest.mark.registry
def test_concurrent_blob_transfers_stay_bounded(tmp_path: Path, registry: Registry, run) -> None:
    from lockman.registry.blobs import BLOB_CONCURRENCY

    repo = unique_repo("bound")
    layers = _random_layers(3 * BLOB_CONCURRENCY, 50_000, repo)
    registry.push_image(repo, "v1", layers=layers)
    front = InFlightProxy("127.0.0.1", registry.port, hold_for=BLOB_CONCURRENCY)
    front.start()
    try:
        cfg = images_project(tmp_path, f"{front.host}/{repo}:v1")
        assert run("update", "--config", cfg).code == 0
        r = run("pull", "--config", cfg, "--oci-layout", tmp_path / "out")
        assert r.code == 0, r.err
        assert front.max_in_flight == BLOB_CONCURRENCY  # several at once, never more than the bound
        assert front.count("GET", "/blobs/") == len(layers) + 1
        assert layout_problems(tmp_path / "out") == []

        front.max_in_flight = 0
        v = run("verify", "--deep", "--no-cache", "--config", cfg)
        assert v.code == 0, v.err
        assert front.max_in_flight == BLOB_CONCURRENCY
    finally:
        front.stop()


def _flip_at(pos: int):
    def flip(b: bytes) -> bytes:
        i = pos % len(b)
        return b[:i] + bytes([b[i] ^ 0x80]) + b[i + 1 :]

    return flip


@pytest.mark.registry
@pytest.mark.parametrize(
    ("how", "transform"),
    [
        ("first byte", _flip_at(0)),
        ("a middle byte", _flip_at(700_001)),
        ("last byte", _flip_at(-1)),
        ("one byte more", lambda b: b + b"\0"),
        ("one byte less", lambda b: b[:-1]),
    ],
)
def test_every_byte_is_checked(
    tmp_path: Path, registry: Registry, proxy: RecordingProxy, run, how, transform
) -> None:
    """A change anywhere in a multi-chunk layer fails pull and verify --deep; nothing bad is kept."""
    repo = unique_repo("bytes")
    layers = _random_layers(3, 1_500_000, repo)
    registry.push_image(repo, "v1", layers=layers)
    bad = sha256(layers[1])
    cfg = images_project(tmp_path, f"{proxy.host}/{repo}:v1")
    assert run("update", "--config", cfg).code == 0
    proxy.add(f"/blobs/{bad}", "alter", method="GET", transform=transform)
    out = tmp_path / "out"

    r = run("pull", "--config", cfg, "--oci-layout", out)
    assert r.code == 1, (how, r.err)
    assert bad in r.err
    # The layout this run created is gone: all or nothing (the other layers went with it).
    assert not out.exists()
    v = run("verify", "--deep", "--no-cache", "--config", cfg)
    assert v.code == 1 and bad in v.err, (how, v.err)

    proxy.clear()
    gets = proxy.count("GET", "/blobs/")
    r = run("pull", "--config", cfg, "--oci-layout", out)
    assert r.code == 0, r.err
    assert proxy.count("GET", "/blobs/") == gets + 4  # config and layers: nothing was kept
    assert layout_problems(out) == []


@pytest.mark.registry
def test_interrupted_pull_resumes_with_range(
    tmp_path: Path, registry: Registry, proxy: RecordingProxy, run
) -> None:
    repo = unique_repo("resume")
    img = registry.push_image(repo, "v1", layer_size=2_000_000)
    layer_digest = sha256(img.layers[0])
    cfg = images_project(tmp_path, f"{proxy.host}/{repo}:v1")
    assert run("update", "--config", cfg).code == 0
    out = tmp_path / "layout"

    # Interrupted on every attempt of this run: exit 3, the verified prefix kept for later.
    proxy.add(f"/blobs/{layer_digest}", "truncate", method="GET")
    r = run("pull", "--config", cfg, "--oci-layout", out)
    assert r.code == 3 and "interrupted" in r.err and "resume" in r.err
    partial = out / ".lockman-partial" / f"sha256-{layer_digest.split(':')[1]}"
    kept = partial.stat().st_size
    assert 0 < kept < len(img.layers[0])
    assert not (out / "blobs/sha256" / layer_digest.split(":")[1]).exists()
    # No layout a reader would open: only the resumable prefix is left (no oci-layout, no blob).
    assert [p.name for p in out.iterdir()] == [".lockman-partial"]

    proxy.clear()
    r = run("pull", "--config", cfg, "--oci-layout", out)
    assert r.code == 0, r.err
    ranges = [h.get("range") for m, p, h in proxy.seen if m == "GET" and layer_digest in p]
    assert ranges[-1] == f"bytes={kept}-"
    assert (out / "blobs/sha256" / layer_digest.split(":")[1]).read_bytes() == img.layers[0]
    assert not (out / ".lockman-partial").exists()
    assert layout_problems(out) == []

    # Within one run: truncated once, resumed at once.
    out2 = tmp_path / "layout2"
    proxy.add(f"/blobs/{layer_digest}", "truncate", method="GET", times=1)
    before = len(proxy.seen)
    r = run("pull", "--config", cfg, "--oci-layout", out2)
    assert r.code == 0, r.err
    gets = [h for m, p, h in proxy.seen[before:] if m == "GET" and layer_digest in p]
    assert len(gets) == 2 and "range" not in gets[0] and gets[1]["range"].startswith("bytes=")

    # A corrupted prefix is blamed once and the blob fetched afresh.
    out3 = tmp_path / "layout3"
    (out3 / ".lockman-partial").mkdir(parents=True)
    (out3 / ".lockman-partial" / f"sha256-{layer_digest.split(':')[1]}").write_bytes(b"junk" * 100)
    r = run("pull", "--config", cfg, "--oci-layout", out3)
    assert r.code == 0, r.err
    assert layout_problems(out3) == []


@pytest.mark.registry
def test_manifest_cache_saves_gets(tmp_path: Path, registry: Registry, proxy: RecordingProxy, run) -> None:
    base = unique_repo("cache")
    registry.push_index(f"{base}/rust", "1.70", ["linux/amd64", "linux/arm64/v8"])
    cfg = images_project(tmp_path, f"{proxy.host}/{base}/rust:1.70")
    assert run("update", "--config", cfg).code == 0
    manifests = 3  # the index and both platforms

    # verify proves what the registry serves: every manifest fetched and hashed on every run,
    # one GET each (what the HEAD of a cache hit would cost), whatever the cache holds.
    for _ in range(2):
        gets, heads = proxy.count("GET", "/manifests/"), proxy.count("HEAD", "/manifests/")
        assert run("verify", "--config", cfg).code == 0
        assert proxy.count("GET", "/manifests/") - gets == manifests
        assert proxy.count("HEAD", "/manifests/") == heads
    entries = [p for p in (Path.home() / "cache/lockman/manifests/sha256").iterdir()]
    assert len(entries) == manifests  # ... and fills the cache for update and pull

    # pull reads it: its claim is the locked bytes in the layout, which a re-hashed entry is.
    gets, heads = proxy.count("GET", "/manifests/"), proxy.count("HEAD", "/manifests/")
    assert run("pull", "--config", cfg, "--oci-layout", tmp_path / "one").code == 0
    # Cache hits cost a HEAD (the registry still has each); only the attestation manifest the
    # index also lists, which verify does not fetch, is downloaded.
    assert proxy.count("HEAD", "/manifests/") - heads == manifests
    assert proxy.count("GET", "/manifests/") - gets == 1
    gets = proxy.count("GET", "/manifests/")
    assert run("pull", "--no-cache", "--config", cfg, "--oci-layout", tmp_path / "two").code == 0
    assert proxy.count("GET", "/manifests/") - gets == manifests + 1

    # Entries are re-hashed on read: a tampered one is a miss, never trusted.
    entries = [p for p in (Path.home() / "cache/lockman/manifests/sha256").iterdir()]
    assert len(entries) == manifests + 1
    for p in entries:
        p.write_bytes(b'{"tampered": true}')
    gets = proxy.count("GET", "/manifests/")
    assert run("pull", "--config", cfg, "--oci-layout", tmp_path / "three").code == 0
    assert proxy.count("GET", "/manifests/") - gets == manifests + 1
    assert layout_problems(tmp_path / "three") == []


FAKE_ENGINE = """#!/bin/sh
# Logs each call; answers `version` (a daemon is there unless FAKE_NO_DAEMON), remembers what
# `pull` pulled and answers `image inspect` with it as RepoDigests (or FAKE_REPO_DIGEST); exits
# with FAKE_PULL_STATUS on pull. Shell builtins only: PATH holds just the fakes.
echo "$0 $*" >> "{log}"
case "$1" in
  version) [ -z "$FAKE_NO_DAEMON" ] && echo 24.0.7 || exit 1 ;;
  pull) for a; do last=$a; done; echo "$last" > "{state}"; exit "${{FAKE_PULL_STATUS:-0}}" ;;
  image) echo "sha256:fakeid [\\"${{FAKE_REPO_DIGEST:-$(read -r x < "{state}"; echo "$x")}}\\"]" ;;
esac
"""


@pytest.mark.registry
def test_pull_with_runtime_runs_engine_by_digest(
    tmp_path: Path, registry: Registry, proxy: RecordingProxy, run, monkeypatch
) -> None:
    base = unique_repo("rt")
    idx = registry.push_index(f"{base}/rust", "1.70", ["linux/amd64", "linux/arm64/v8"])
    name = f"{proxy.host}/{base}/rust"
    cfg = images_project(tmp_path, f"{name}:1.70")
    assert run("update", "--config", cfg).code == 0
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "engine.log"
    for engine in ("docker", "podman"):
        script = bindir / engine
        script.write_text(FAKE_ENGINE.format(log=log, state=tmp_path / f"{engine}.pulled"))
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bindir))

    r = run("pull", "--config", cfg, "--runtime", "podman", "--platform", "linux/arm64")
    assert r.code == 0, r.err
    # A loopback registry is spoken to over plain HTTP: podman is told so.
    expected = f"pull --tls-verify=false --platform linux/arm64 {name}@{idx.digest}"
    assert f"+ podman {expected}" in r.out
    podman = f"{bindir}/podman"
    assert log.read_text().splitlines() == [
        f"{podman} {expected}",
        f"{podman} image inspect --format {{{{.Id}}}} {{{{json .RepoDigests}}}} {name}@{idx.digest}",
        f"{podman} tag sha256:fakeid {name}:1.70",
        f"{podman} image inspect --format {{{{.Id}}}} {{{{json .RepoDigests}}}} {name}:1.70",
    ]
    assert f"{name}:1.70 -> {idx.digest} (podman RepoDigests confirm it)" in r.out

    # Default: [container].runtime (auto → docker, whose daemon answers).
    log.unlink()
    r = run("pull", "--config", cfg)
    assert r.code == 0, r.err
    calls = log.read_text().splitlines()
    assert calls[:2] == [
        f"{bindir}/docker version --format {{{{.Server.Version}}}}",
        f"{bindir}/docker pull {name}@{idx.digest}",
    ]
    # auto with a docker CLI but no daemon: podman.
    log.unlink()
    monkeypatch.setenv("FAKE_NO_DAEMON", "1")
    r = run("pull", "--config", cfg)
    assert r.code == 0, r.err
    assert [c.split()[0] for c in log.read_text().splitlines()][:2] == [f"{bindir}/docker", podman]
    assert f"+ podman pull --tls-verify=false {name}@{idx.digest}" in r.out
    monkeypatch.delenv("FAKE_NO_DAEMON")

    # The engine holds the name without the locked digest: exit 1, never tagged.
    log.unlink()
    monkeypatch.setenv("FAKE_REPO_DIGEST", f"{name}@sha256:{'0' * 64}")
    r = run("pull", "--config", cfg, "--runtime", "podman")
    assert r.code == 1 and "not tagged" in r.err and "RepoDigests" in r.err, r.err
    assert not any(" tag " in c for c in log.read_text().splitlines())
    monkeypatch.delenv("FAKE_REPO_DIGEST")

    # docker cannot pull from a registry marked insecure: the failure says what docker needs.
    monkeypatch.setenv("FAKE_PULL_STATUS", "1")
    r = run("pull", "--config", cfg, "--runtime", "docker", "--insecure-registry", proxy.host)
    assert r.code == 3 and r.err.count("\n") == 1, r.err
    assert '"insecure-registries"' in r.err and "exited with status 1" in r.err
    monkeypatch.delenv("FAKE_PULL_STATUS")

    # A manifest that does not verify: the engine is never run.
    log.unlink()
    proxy.add("/manifests/sha256:", "alter", method="GET", transform=lambda b: b.replace(b"amd64", b"AMD64"))
    r = run("pull", "--config", cfg, "--no-cache", "--runtime", "docker")
    assert r.code == 1 and "digest mismatch" in r.err
    assert not log.exists()

    r = run("pull", "--config", cfg, "--runtime", "youki")
    assert r.code == 2 and r.err.count("\n") == 1 and '"docker", "podman", "auto"' in r.err, r.err
    r = run("pull", "--config", cfg, "--runtime", "docker", "--oci-layout", tmp_path / "x")
    assert r.code == 2


class _ObjectStore:
    """A stand-in for S3: serves blobs by path and records the headers each request carried."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.headers: list[dict[str, str]] = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                store.headers.append({k.lower(): v for k, v in self.headers.items()})
                data = blobs.get(self.path.split("?")[0].rsplit("/", 1)[-1])
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.mark.registry
def test_blob_redirect_does_not_forward_authorization(
    tmp_path: Path, basic_registry: Registry, run, isolated_env
) -> None:
    reg = basic_registry
    repo = unique_repo("redir")
    img = reg.push_image(repo, "v1")
    layer_digest = sha256(img.layers[0])
    front = RecordingProxy("127.0.0.1", reg.port).start()
    store = _ObjectStore({layer_digest: img.layers[0]})
    try:
        docker = isolated_env / ".docker"
        docker.mkdir(exist_ok=True)
        auth = base64.b64encode(f"alice:{reg.password}".encode()).decode()
        (docker / "config.json").write_text(json.dumps({"auths": {front.host: {"auth": auth}}}))
        cfg = images_project(tmp_path, f"{front.host}/{repo}:v1")
        assert run("update", "--config", cfg).code == 0
        front.add(
            f"/blobs/{layer_digest}",
            "status",
            method="GET",
            status=307,
            headers={"Location": f"{store.url}/signed/{layer_digest}?X-Amz-Signature=abc"},
        )
        out = tmp_path / "layout"
        r = run("pull", "--config", cfg, "--oci-layout", out)
        assert r.code == 0, r.err
        assert (out / "blobs/sha256" / layer_digest.split(":")[1]).read_bytes() == img.layers[0]
        to_registry = [h for m, p, h in front.seen if m == "GET" and layer_digest in p]
        assert to_registry and to_registry[0]["authorization"].startswith("Basic ")
        assert len(store.headers) == 1 and "authorization" not in store.headers[0]
    finally:
        front.stop()
        store.stop()


@pytest.mark.registry
def test_update_platform_kind_is_kept(tmp_path: Path, registry: Registry, run) -> None:
    base = unique_repo("kindtest")
    idx = registry.push_index(f"{base}/rust", "1.70", ["linux/amd64", "linux/arm64/v8"])
    single = registry.push_image(f"{base}/musl", "v1")
    cfg = images_project(tmp_path, f"{registry.host}/{base}/rust:1.70", f"{registry.host}/{base}/musl:v1")
    lock_path = tmp_path / "xcargo.lock"
    assert run("update", "--config", cfg).code == 0
    assert "kind =" not in lock_path.read_text()  # default entries: as before

    r = run("update", "--platform", "linux/amd64", "--config", cfg)
    assert r.code == 0, r.err
    assert "(platform linux/amd64)" in r.out
    by_name = {i.name.rsplit("/", 1)[1]: i for i in lockfile.read(lock_path).images}
    rust = by_name["rust"]
    assert (rust.kind, rust.platform) == ("platform", "linux/amd64")
    assert rust.digest == idx.children["linux/amd64"].digest and rust.index_digest == idx.digest
    assert rust.platforms == ()
    assert by_name["musl"].digest == single.digest and by_name["musl"].platform == "linux/amd64"
    text = lock_path.read_text()
    assert f'digest = "{rust.digest}"\nkind = "platform"\nplatform = "linux/amd64"\n' in text

    r = run("update", "--config", cfg)  # no flag: kind kept, nothing changes
    assert r.code == 0 and "up to date" in r.out
    assert lock_path.read_text() == text
    assert run("verify", "--deep", "--config", cfg).code == 0

    moved = registry.push_index(f"{base}/rust", "1.70", ["linux/amd64", "linux/arm64/v8"], salt="v2")
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    rust = next(i for i in lockfile.read(lock_path).images if i.name.endswith("/rust"))
    assert rust.digest == moved.children["linux/amd64"].digest and rust.platform == "linux/amd64"

    # A single-platform image for another platform is kept as it is, with one warning (issue 16).
    r = run("update", "--platform", "linux/arm64", "--config", cfg)
    assert r.code == 0 and r.err.count("\n") == 1 and "musl" in r.err
    assert "single-platform linux/amd64 image, no linux/arm64 variant; taken as it is" in r.err
    musl = next(i for i in lockfile.read(lock_path).images if i.name.endswith("/musl"))
    assert (musl.digest, musl.platform) == (single.digest, "linux/amd64")  # unchanged
    assert "musl" not in r.out

    r = run("update", "--platform", "all", "--config", cfg)
    assert r.code == 0, r.err
    rust = next(i for i in lockfile.read(lock_path).images if i.name.endswith("/rust"))
    assert rust.digest == moved.digest and rust.kind == "tag" and len(rust.platforms) == 2


@pytest.mark.registry
def test_pull_enforces_signature_policy(tmp_path: Path, registry: Registry, run, monkeypatch) -> None:
    from tests.support.cosign_registry import push_signatures
    from tests.support.signing_helpers import keyed_layer, new_key, public_pem

    priv = new_key("p256")
    signed_repo, unsigned_repo = unique_repo("sigpull"), unique_repo("sigpull")
    signed = registry.push_image(signed_repo, "v1", salt="s")
    registry.push_image(unsigned_repo, "v1", salt="u")
    push_signatures(registry, signed_repo, signed.digest, [keyed_layer(priv, signed.digest, None)])
    (tmp_path / "release.pub").write_bytes(public_pem(priv))
    good, bad = f"{registry.host}/{signed_repo}:v1", f"{registry.host}/{unsigned_repo}:v1"
    cfg = images_project(tmp_path, good, bad)
    assert run("update", "--config", cfg).code == 0
    (tmp_path / "lockman.toml").write_text(
        '[[policy]]\nimages = ["*"]\nkey = "release.pub"\ninsecure-ignore-tlog = true\n'
    )
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "engine.log"
    (bindir / "docker").write_text(FAKE_ENGINE.format(log=log, state=tmp_path / "docker.pulled"))
    (bindir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))

    r = run("pull", good, "--config", cfg, "--runtime", "docker")
    assert r.code == 0, r.err
    assert f"{good}: signed by key" in r.out and log.exists()
    log.unlink()
    r = run("pull", "--config", cfg, "--runtime", "docker")
    assert r.code == 1
    assert "signature check failed" in r.err and bad in r.err
    assert not log.exists()  # one image failed: the engine pulls nothing

    out = tmp_path / "layout"
    r = run("pull", "--config", cfg, "--oci-layout", out)
    assert r.code == 1 and "signature check failed" in r.err
    assert not out.exists()  # all or nothing: the signed image is not written alone either
    assert run("pull", good, "--config", cfg, "--oci-layout", out).code == 0
    assert list(ref_names(out)) == [good]


def _blob_files(layout: Path) -> dict[str, bytes]:
    return {str(p.relative_to(layout)): p.read_bytes() for p in layout.rglob("*") if p.is_file()}


@pytest.mark.registry
@needs_skopeo
def test_failed_pull_leaves_the_layout_as_it_was(
    tmp_path: Path, registry: Registry, proxy: RecordingProxy, run
) -> None:
    """A layout is complete for every image asked for, or unchanged (issue 27): skopeo too
    leaves nothing behind after a digest mismatch."""
    import subprocess

    base = unique_repo("allornot")
    registry.push_index(f"{base}/rust", "1.70", ["linux/amd64", "linux/arm64/v8"])
    bad_img = registry.push_image(f"{base}/musl", "v1", layer_size=300_000)
    rust, musl = f"{proxy.host}/{base}/rust:1.70", f"{proxy.host}/{base}/musl:v1"
    cfg = images_project(tmp_path, rust, musl)
    assert run("update", "--config", cfg).code == 0
    bad = sha256(bad_img.layers[0])
    proxy.add(f"/blobs/{bad}", "alter", method="GET", transform=_flip_at(1000))

    fresh = tmp_path / "fresh"
    r = run("pull", "--config", cfg, "--oci-layout", fresh)
    assert r.code == 1 and bad in r.err
    assert not fresh.exists()  # not an oci-layout with a blob and no index.json
    assert f"{fresh}: left as it was (1 of 2 images failed)" in r.err
    assert rust not in r.out  # no image is announced as written

    kept = tmp_path / "kept"
    assert run("pull", rust, "--config", cfg, "--oci-layout", kept).code == 0
    before = _blob_files(kept)
    r = run("pull", "--config", cfg, "--oci-layout", kept)
    assert r.code == 1 and bad in r.err
    assert _blob_files(kept) == before  # index.json byte for byte, and no blob added
    insp = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{kept}:{rust}"], capture_output=True, text=True
    )
    assert insp.returncode == 0, insp.stderr

    proxy.clear()
    r = run("pull", "--config", cfg, "--oci-layout", kept)
    assert r.code == 0, r.err
    assert set(ref_names(kept)) == {rust, musl} and layout_problems(kept) == []


@pytest.mark.registry
def test_pull_platform_is_all_or_nothing_and_takes_single_platform_as_update_does(
    tmp_path: Path, registry: Registry, run, monkeypatch
) -> None:
    base = unique_repo("pullplat")
    registry.push_index(f"{base}/both", "1", ["linux/amd64", "linux/arm64/v8"])
    registry.push_index(f"{base}/amdonly", "1", ["linux/amd64"])
    single = registry.push_image(f"{base}/single", "v1")  # linux/amd64
    both, amdonly, one = (f"{registry.host}/{base}/{n}" for n in ("both:1", "amdonly:1", "single:v1"))

    cfg = images_project(tmp_path, both, amdonly, one)
    assert run("update", "--config", cfg).code == 0
    out = tmp_path / "out"
    r = run("pull", "--config", cfg, "--oci-layout", out, "--platform", "linux/arm64")
    assert r.code == 2 and "no linux/arm64 image" in r.err and amdonly in r.err
    assert not out.exists()  # not two images of three
    assert f"{out}: left as it was (1 of 3 images failed)" in r.err

    cfg = images_project(tmp_path, both, one)
    assert run("update", "--config", cfg).code == 0
    r = run("pull", "--config", cfg, "--oci-layout", out, "--platform", "linux/arm64")
    assert r.code == 0, r.err
    warning = "single-platform linux/amd64 image, no linux/arm64 variant; taken as it is"
    assert r.err.count("\n") == 1 and one in r.err and warning in r.err
    assert ref_names(out)[one]["digest"] == single.digest and both in ref_names(out)
    assert layout_problems(out) == []

    # Into an engine: the same warning, and the engine pulls that image by digest, no --platform.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "engine.log"
    (bindir / "docker").write_text(FAKE_ENGINE.format(log=log, state=tmp_path / "docker.pulled"))
    (bindir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    r = run("pull", "--config", cfg, "--runtime", "docker", "--platform", "linux/arm64")
    assert r.code == 0 and r.err.count("\n") == 1 and warning in r.err
    pulled = log.read_text()
    assert f"pull {one.rsplit(':', 1)[0]}@{single.digest}\n" in pulled
    assert f"pull --platform linux/arm64 {both.rsplit(':', 1)[0]}@" in pulled

    r = run("update", "--platform", "linux/arm64", "--config", cfg)  # the same image, the same way
    assert r.code == 0 and r.err.count("\n") == 1 and warning in r.err
    assert next(i for i in lockfile.read(tmp_path / "xcargo.lock").images if "single" in i.name).digest == (
        single.digest
    )


@pytest.mark.registry
def test_a_locked_digest_the_registry_no_longer_serves_is_exit_1_everywhere(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run
) -> None:
    """One meaning in verify and pull (issue 27): a locked manifest or blob answered 404 is a
    verification failure (exit 1, "not-served"); a registry failing with 5xx is exit 3."""
    manifest_gone, blob_gone = unique_repo("gone"), unique_repo("blobgone")
    a = registry.push_image(manifest_gone, "v1", salt="a")
    b = registry.push_image(blob_gone, "v1", salt="b")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cfg_a = images_project(tmp_path / "a", f"{fault_proxy.host}/{manifest_gone}:v1")
    cfg_b = images_project(tmp_path / "b", f"{fault_proxy.host}/{blob_gone}:v1")
    assert run("update", "--config", cfg_a).code == 0 and run("update", "--config", cfg_b).code == 0

    # 5xx: the registry is failing, not the lock: exit 3 in both.
    rule = fault_proxy.add("/manifests/", "status", status=503)
    assert run("verify", "--config", cfg_a, "--no-cache").code == 3
    assert run("pull", "--config", cfg_a, "--no-cache", "--oci-layout", tmp_path / "l0").code == 3
    fault_proxy.rules.remove(rule)

    with registry.client() as c:
        assert c.delete(f"/v2/{manifest_gone}/manifests/{a.digest}").status_code == 202
        assert c.delete(f"/v2/{blob_gone}/blobs/{sha256(b.layers[0])}").status_code == 202
    v = run("verify", "--config", cfg_a, "--no-cache", "--format", "json")
    assert v.code == 1 and [p["kind"] for p in json.loads(v.out)["problems"]] == ["not-served"], v.out
    p = run("pull", "--config", cfg_a, "--no-cache", "--oci-layout", tmp_path / "l1")
    assert p.code == 1 and a.digest in p.err, p.err
    assert not (tmp_path / "l1").exists()
    # A locked layer gone: pull and verify --deep agree too.
    p = run("pull", "--config", cfg_b, "--no-cache", "--oci-layout", tmp_path / "l2")
    assert p.code == 1 and "blob unknown" in p.err, p.err
    v = run("verify", "--config", cfg_b, "--no-cache", "--deep", "--format", "json")
    assert v.code == 1 and [p["kind"] for p in json.loads(v.out)["problems"]] == ["blob"], v.out
