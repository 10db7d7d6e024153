"""The core workflow against a real docker-registry: update → verify → drift → update."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lockman.model import lockfile
from tests.support.fixtures import unique_repo
from tests.support.registry import OCI_INDEX, OCI_MANIFEST, Registry, sha256

D0 = "sha256:" + "0" * 64


def write_config(tmp_path: Path, body: str) -> Path:
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(body)
    return cfg


def project(tmp_path: Path, registry: Registry) -> tuple[Path, dict]:
    """A config with a global multi-platform image and a per-target single-platform image."""
    base = unique_repo("proj")
    idx = registry.push_index(f"{base}/rust", "1.70", ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"])
    single = registry.push_image(f"{base}/musl", "v1")
    cfg = write_config(
        tmp_path,
        f"""\
# my project
[targets]
default = ["x86_64-unknown-linux-gnu"]

[targets."aarch64-unknown-linux-musl".container]
image = "{registry.host}/{base}/musl:v1"

[container]
runtime = "auto"
image = "{registry.host}/{base}/rust:1.70"
""",
    )
    return cfg, {"base": base, "idx": idx, "single": single}


def manifest_requests(registry: Registry, method: str) -> list[str]:
    return [ln for ln in registry.access_log_lines() if f'"{method} /v2/' in ln and "/manifests/" in ln]


@pytest.mark.registry
def test_update_then_verify(tmp_path: Path, registry: Registry, run) -> None:
    cfg, p = project(tmp_path, registry)
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    lock_path = tmp_path / "xcargo.lock"
    lock = lockfile.loads(lock_path.read_text())
    by_name = {i.name: i for i in lock.images}
    rust = by_name[f"{registry.host}/{p['base']}/rust"]
    assert rust.tag == "1.70" and rust.digest == p["idx"].digest
    assert rust.media_type == "application/vnd.oci.image.index.v1+json"
    assert rust.source == "container.image"
    # attestation (unknown/unknown) skipped; variants kept
    assert [(x.platform, x.digest) for x in rust.platforms] == [
        ("linux/amd64", p["idx"].children["linux/amd64"].digest),
        ("linux/arm64/v8", p["idx"].children["linux/arm64/v8"].digest),
        ("linux/arm/v7", p["idx"].children["linux/arm/v7"].digest),
    ]
    musl = by_name[f"{registry.host}/{p['base']}/musl"]
    assert musl.digest == p["single"].digest and musl.platforms == ()
    assert musl.source == 'targets."aarch64-unknown-linux-musl".container.image'
    assert f"(new) → {p['single'].digest[:19]}" in r.out

    v = run("verify", "--config", cfg)
    assert v.code == 0, v.err
    assert "2 images verified" in v.out
    assert run("verify", "--offline", "--config", cfg).code == 0


@pytest.mark.registry
def test_unchanged_update_is_byte_identical_and_heads_only(tmp_path: Path, registry: Registry, run) -> None:
    cfg, _ = project(tmp_path, registry)
    assert run("update", "--config", cfg).code == 0
    lock_path = tmp_path / "xcargo.lock"
    before = lock_path.read_bytes()
    mtime = lock_path.stat().st_mtime_ns
    gets_before = len(manifest_requests(registry, "GET"))
    heads_before = len(manifest_requests(registry, "HEAD"))
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert "up to date" in r.out
    assert lock_path.read_bytes() == before
    assert lock_path.stat().st_mtime_ns == mtime  # not even rewritten
    assert len(manifest_requests(registry, "GET")) == gets_before  # unchanged digest: no GET
    assert len(manifest_requests(registry, "HEAD")) == heads_before + 2  # one HEAD per image


@pytest.mark.registry
def test_tag_moves_check_update_and_corruption(tmp_path: Path, registry: Registry, run) -> None:
    cfg, p = project(tmp_path, registry)
    assert run("update", "--config", cfg).code == 0
    lock_path = tmp_path / "xcargo.lock"
    first = lock_path.read_bytes()

    moved = registry.push_index(f"{p['base']}/rust", "1.70", ["linux/amd64", "linux/arm64/v8"], salt="v2")
    chk = run("update", "--check", "--config", cfg)
    assert chk.code == 1
    assert "not up to date" in chk.err
    assert f"{p['idx'].digest[:19]} → {moved.digest[:19]}" in chk.out
    assert lock_path.read_bytes() == first  # --check changes nothing

    dry = run("update", "--dry-run", "--config", cfg)
    assert dry.code == 0 and "would be updated" in dry.out
    assert lock_path.read_bytes() == first

    upd = run("update", "--config", cfg)
    assert upd.code == 0, upd.err
    assert f"{registry.host}/{p['base']}/rust:1.70  {p['idx'].digest[:19]} → {moved.digest[:19]}" in upd.out
    lock = lockfile.loads(lock_path.read_text())
    rust = next(i for i in lock.images if i.name.endswith("/rust"))
    assert rust.digest == moved.digest and len(rust.platforms) == 2
    assert run("update", "--check", "--config", cfg).code == 0
    assert run("verify", "--config", cfg).code == 0

    # A corrupted digest in the lock: valid syntax, not served.
    text = lock_path.read_text().replace(moved.digest, D0)
    lock_path.write_text(text)
    v = run("verify", "--config", cfg)
    assert v.code == 1
    assert f"locked digest {D0} is not served" in v.err
    assert run("verify", "--offline", "--config", cfg).code == 0  # consistency alone is fine


@pytest.mark.registry
def test_verify_detects_altered_bytes_in_registry_storage(tmp_path: Path, registry: Registry, run) -> None:
    cfg, p = project(tmp_path, registry)
    assert run("update", "--config", cfg).code == 0
    # Alter the stored manifest bytes of one platform child behind the registry's back.
    child = p["idx"].children["linux/arm64/v8"]
    hex_ = child.digest.split(":")[1]
    blob = registry.root / "data/docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"
    original = blob.read_bytes()
    blob.write_bytes(original.replace(b'"schemaVersion": 2', b'"schemaVersion":  2'))
    try:
        v = run("verify", "--config", cfg)
    finally:
        blob.write_bytes(original)
    assert v.code == 1
    assert "linux/arm64/v8" in v.err and "digest mismatch" in v.err and child.digest in v.err


@pytest.mark.registry
@pytest.mark.parametrize("which", ["index", "platform", "single"])
@pytest.mark.parametrize("deep", [False, True], ids=["verify", "verify-deep"])
def test_verify_hashes_what_is_served_not_the_cache(
    tmp_path: Path, registry: Registry, run, which: str, deep: bool
) -> None:
    """With every manifest in the local cache, bytes edited in the registry's storage under a
    locked digest (the index, a locked platform's manifest, a single image's manifest) still fail
    ``verify`` and ``verify --deep``: they prove what the registry serves now."""
    cfg, p = project(tmp_path, registry)
    assert run("update", "--config", cfg).code == 0
    assert run("verify", "--config", cfg).code == 0  # every manifest is now in the cache
    image, target = {
        "index": (f"{p['base']}/rust:1.70", p["idx"]),
        "platform": (f"{p['base']}/rust:1.70", p["idx"].children["linux/arm64/v8"]),
        "single": (f"{p['base']}/musl:v1", p["single"]),
    }[which]
    hex_ = target.digest.split(":")[1]
    cached = Path.home() / "cache/lockman/manifests/sha256" / hex_
    assert cached.read_bytes() == target.manifest
    blob = registry.root / "data/docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"
    original = blob.read_bytes()
    blob.write_bytes(original.replace(b'"schemaVersion": 2', b'"schemaVersion":  2'))
    try:
        with registry.client() as c:  # what `skopeo inspect --raw | sha256sum` sees
            accept = {"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"}
            served = c.get(f"/v2/{target.repo}/manifests/{target.digest}", headers=accept)
        assert served.status_code == 200 and sha256(served.content) != target.digest
        v = run("verify", "--config", cfg, *(["--deep"] if deep else []), "--format", "json")
    finally:
        blob.write_bytes(original)
    assert v.code == 1, v.err
    assert "digest mismatch" in v.err and target.digest in v.err
    problems = json.loads(v.out)["problems"]
    assert [(x["kind"], x["image"]) for x in problems] == [("digest-mismatch", f"{registry.host}/{image}")]
    assert cached.read_bytes() == target.manifest  # the cache holds only verified bytes


@pytest.mark.registry
def test_pinned_image(tmp_path: Path, registry: Registry, run) -> None:
    repo = unique_repo("pin")
    old = registry.push_image(repo, "1.0")
    cfg = write_config(tmp_path, f'[container]\nimage = "{registry.host}/{repo}:1.0@{old.digest}"\n')
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    (entry,) = lockfile.loads((tmp_path / "xcargo.lock").read_text()).images
    assert entry.pinned and entry.digest == old.digest and entry.tag == "1.0"
    new = registry.push_image(repo, "1.0", salt="moved")
    r = run("update", "--config", cfg)
    assert r.code == 0
    assert "pinned" in r.err and new.digest[:19] in r.err  # reported, never rewritten
    assert lockfile.loads((tmp_path / "xcargo.lock").read_text()).images[0].digest == old.digest
    assert old.digest in cfg.read_text()

    cfg.write_text(f'[container]\nimage = "{registry.host}/{repo}:1.0@{D0}"\n')
    before = (tmp_path / "xcargo.lock").read_bytes()
    r = run("update", "--config", cfg)
    assert r.code == 3 and "manifest unknown" in r.err
    assert (tmp_path / "xcargo.lock").read_bytes() == before
    v = run("verify", "--offline", "--config", cfg)
    assert v.code == 1 and "pinned to" in v.err


@pytest.mark.registry
def test_builtin_images_with_registry_prefix(tmp_path: Path, registry: Registry, run) -> None:
    prefix = unique_repo("cross")
    for t in ("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"):
        registry.push_image(f"{prefix}/{t}", "latest")
    cfg = write_config(
        tmp_path,
        f"""\
[targets]
default = ["x86_64-unknown-linux-gnu", "x86_64-apple-darwin"]
[profiles.arm]
targets = ["aarch64-unknown-linux-gnu"]
[container]
registry = "{registry.host}/{prefix}"
""",
    )
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    names = [i.name for i in lockfile.loads((tmp_path / "xcargo.lock").read_text()).images]
    assert names == [
        f"{registry.host}/{prefix}/aarch64-unknown-linux-gnu",
        f"{registry.host}/{prefix}/x86_64-unknown-linux-gnu",
    ]


def test_verify_offline_reports_every_problem(tmp_path: Path, run) -> None:
    cfg = write_config(
        tmp_path,
        '[container]\nimage = "example.com/a:1"\n'
        '[targets."aarch64-unknown-linux-gnu".container]\nimage = "example.com/b:2"\n',
    )
    (tmp_path / "xcargo.lock").write_text(
        f'version = 1\n[[image]]\nname = "example.com/a"\ntag = "1"\ndigest = "{D0}"\n'
        f'[[image]]\nname = "example.com/old"\ntag = "1"\ndigest = "{D0}"\n'
    )
    v = run("verify", "--offline", "--config", cfg)
    assert v.code == 1
    lines = v.err.strip().splitlines()
    assert len(lines) == 2
    assert "example.com/b:2: used by" in lines[0] and "not in xcargo.lock" in lines[0]
    assert "example.com/old:1: in xcargo.lock but no longer used" in lines[1]


def test_verify_without_lockfile(tmp_path: Path, run) -> None:
    cfg = write_config(tmp_path, '[container]\nimage = "example.com/a:1"\n')
    v = run("verify", "--offline", "--config", cfg)
    assert v.code == 1 and "no lockfile" in v.err


@pytest.mark.parametrize(
    "body",
    [
        "[container\nimage = 'x'",
        '[container]\nimage = "upper/Case:1"',
        "[container]\nimage = 5",
        "\x00\x01\x02garbage",
    ],
)
def test_malformed_config_exit_2_lock_untouched(tmp_path: Path, run, body: str) -> None:
    cfg = write_config(tmp_path, body)
    lock = tmp_path / "xcargo.lock"
    lock.write_text("version = 1\n")
    for cmd in (["update"], ["verify"], ["update", "--check"]):
        r = run(*cmd, "--config", cfg)
        assert r.code == 2, (cmd, r.err)
        assert r.err.count("\n") == 1 and str(cfg) in r.err
        assert "Traceback" not in r.err
    assert lock.read_text() == "version = 1\n"


def test_malformed_lockfile_exit_2(tmp_path: Path, run) -> None:
    cfg = write_config(tmp_path, '[container]\nimage = "example.com/a:1"\n')
    (tmp_path / "xcargo.lock").write_text("version = 7\n")
    r = run("verify", "--offline", "--config", cfg)
    assert r.code == 2 and "unsupported lockfile version 7" in r.err


def test_missing_config_exit_2(tmp_path: Path, run) -> None:
    r = run("update", "--config", tmp_path / "nope.toml")
    assert r.code == 2 and "no such file" in r.err


@pytest.mark.registry
def test_registry_stopped_exit_3_lock_untouched(tmp_path: Path, own_registry: Registry, run) -> None:
    repo = unique_repo("stop")
    own_registry.push_image(repo, "v1")
    cfg = write_config(tmp_path, f'[container]\nimage = "{own_registry.host}/{repo}:v1"\n')
    assert run("update", "--config", cfg).code == 0
    lock = tmp_path / "xcargo.lock"
    before = lock.read_bytes()
    own_registry.stop()
    for cmd in (["update"], ["verify"], ["update", "--check"]):
        r = run(*cmd, "--config", cfg)
        assert r.code == 3, (cmd, r.out, r.err)
        assert own_registry.host in r.err and "cannot connect" in r.err
        assert "Traceback" not in r.err
    assert lock.read_bytes() == before


@pytest.mark.registry
def test_resolve_in_input_order_and_stdin(tmp_path: Path, registry: Registry, run, monkeypatch) -> None:
    repo = unique_repo("res")
    a = registry.push_image(repo, "a")
    b = registry.push_index(repo, "b", ["linux/amd64"])
    refs = [f"{registry.host}/{repo}:b", f"{registry.host}/{repo}:a", f"{registry.host}/{repo}:b"]
    r = run("resolve", *refs)
    assert r.code == 0, r.err
    assert r.out.splitlines() == [f"{refs[0]}@{b.digest}", f"{refs[1]}@{a.digest}", f"{refs[2]}@{b.digest}"]
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(refs) + "\n"))
    r2 = run("resolve", "-")
    assert r2.out == r.out
    before = len(manifest_requests(registry, "HEAD"))
    run("resolve", *refs)
    assert len(manifest_requests(registry, "HEAD")) == before + 2  # each unique ref once


@pytest.mark.registry
def test_resolve_errors(registry: Registry, run) -> None:
    r = run("resolve", "Bad:Ref")
    assert r.code == 2 and "invalid reference 'Bad:Ref'" in r.err
    r = run("resolve", f"{registry.host}/nope/nope:missing")
    assert r.code == 3 and "manifest unknown" in r.err


@pytest.mark.registry
def test_basic_auth_via_docker_config(
    tmp_path: Path, basic_registry: Registry, run, isolated_env, monkeypatch
) -> None:
    reg = basic_registry
    repo = unique_repo("auth")
    img = reg.push_image(repo, "v1")
    cfg = write_config(tmp_path, f'[container]\nimage = "{reg.host}/{repo}:v1"\n')

    r = run("update", "--config", cfg)  # no credentials
    assert r.code == 3 and "authentication required" in r.err and reg.host in r.err

    docker = isolated_env / ".docker"
    docker.mkdir(exist_ok=True)
    import base64

    bad = base64.b64encode(b"alice:wrong-password").decode()
    (docker / "config.json").write_text(json.dumps({"auths": {reg.host: {"auth": bad}}}))
    r = run("update", "--config", cfg)
    assert r.code == 3 and "authentication failed" in r.err
    assert not (tmp_path / "xcargo.lock").exists()

    good = base64.b64encode(f"alice:{reg.password}".encode()).decode()
    (docker / "config.json").write_text(json.dumps({"auths": {f"http://{reg.host}": {"auth": good}}}))
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert img.digest in (tmp_path / "xcargo.lock").read_text()
    v = run("verify", "--config", cfg)
    assert v.code == 0, v.err
    everything = r.out + r.err + v.out + v.err + (tmp_path / "xcargo.lock").read_text()
    assert reg.password not in everything and good not in everything


def test_version_and_usage(run) -> None:
    r = run("--version")
    assert r.code == 0 and re.fullmatch(r"\d+\.\d+\.\d+\n", r.out)
    r = run("update", "--bogus")
    assert r.code == 2 and r.err.startswith("error: ") and r.err.count("\n") == 1
