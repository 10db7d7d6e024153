"""A project whose images live in xcargo.toml, a Dockerfile, a workflow and a compose file,
against a real docker-registry: update locks all, verify passes, pin --write round-trips."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from lockman.images import sources
from lockman.model import lockfile
from lockman.signatures.keys import key_fingerprint
from tests.support.cosign_registry import push_signatures
from tests.support.fixtures import unique_repo
from tests.support.project import git
from tests.support.registry import Registry
from tests.support.signing_helpers import keyed_layer, new_key, public_pem


def make_project(tmp_path: Path, registry: Registry) -> dict[str, str]:
    base = f"{registry.host}/{unique_repo('src')}"
    digests = {
        "rust": registry.push_index(
            f"{base.split('/', 1)[1]}/rust", "1.70", ["linux/amd64", "linux/arm64"]
        ).digest,
        "alpine": registry.push_image(f"{base.split('/', 1)[1]}/alpine", "3.19").digest,
        "pg": registry.push_image(f"{base.split('/', 1)[1]}/pg", "16").digest,
        "tool": registry.push_image(f"{base.split('/', 1)[1]}/tool", "1").digest,
    }
    (tmp_path / "xcargo.toml").write_text(f'[container]\nimage = "{base}/rust:1.70"\n')
    (tmp_path / "Dockerfile").write_bytes(
        (
            f"# syntax-free Dockerfile\r\nARG BASE={base}/rust:1.70\r\nFROM $BASE AS build\r\n"
            f"COPY --from={base}/tool:1 /x /x\r\nFROM build\r\nFROM   {base}/alpine:3.19   # final\r\n"
        ).encode()
    )
    wf = tmp_path / ".github" / "workflows"
    wf.mkdir(parents=True)
    (wf / "ci.yml").write_text(
        f"x-pg: &pg '{base}/pg:16'\njobs:\n  t:\n    container: \"{base}/alpine:3.19\"  # job\n"
        f"    services:\n      db:\n        image: *pg\n    steps:\n      - uses: docker://{base}/tool:1\n"
    )
    (tmp_path / "compose.yaml").write_text(f"services:\n  db:\n    image: {base}/pg:16\n")
    (tmp_path / "Cross.toml").write_text(
        f'[target.aarch64-unknown-linux-gnu]\nimage = {{ name = "{base}/tool:1" }}\n'
    )
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "project")
    return {"base": base, **digests}


@pytest.mark.registry
def test_update_verify_pin_round_trip(tmp_path: Path, registry: Registry, run) -> None:
    p = make_project(tmp_path, registry)
    cfg = tmp_path / "xcargo.toml"
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    lock = lockfile.loads((tmp_path / "xcargo.lock").read_text())
    by_name = {e.name.rsplit("/", 1)[1]: e for e in lock.images}
    assert {k: e.digest for k, e in by_name.items()} == {k: p[k] for k in ("rust", "alpine", "pg", "tool")}
    # one entry per name:tag, naming every place that uses it
    assert by_name["rust"].source == "Dockerfile:2; container.image"
    assert by_name["pg"].source == ".github/workflows/ci.yml:1; compose.yaml:3"
    assert by_name["tool"].source == ".github/workflows/ci.yml:9; Cross.toml:2; Dockerfile:4"
    assert [x.platform for x in by_name["rust"].platforms] == ["linux/amd64", "linux/arm64"]
    v = run("verify", "--config", cfg)
    assert v.code == 0, v.err
    assert "4 images verified" in v.out
    d = run("verify", "--deep", "--config", cfg)
    assert d.code == 0, d.err

    c = run("pin", "--check", "--config", cfg)
    assert c.code == 1
    for where in (
        "Dockerfile:2",
        "Dockerfile:4",
        "Dockerfile:6",
        ".github/workflows/ci.yml:4",
        "compose.yaml:3",
    ):
        assert f"error: {tmp_path / where}: " in c.err
    assert "error: xcargo.toml" not in c.err and f"error: {cfg}: container.image: " in c.err

    w = run("pin", "--write", "--config", cfg)
    assert w.code == 0, w.err
    diff = git(tmp_path, "diff", "--no-color", "-U0")
    changed = [ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    # only the references changed: each line differs from its old self by an @sha256:… inserted
    removed = [ln[1:] for ln in changed if ln.startswith("-")]
    added = [ln[1:] for ln in changed if ln.startswith("+")]
    assert len(removed) == len(added) == 9  # xcargo.toml 1, Dockerfile 3, workflow 3, compose 1, Cross.toml 1
    for old, new in zip(removed, added, strict=True):
        for k in ("rust", "alpine", "pg", "tool"):
            new = new.replace(f"@{p[k]}", "")
        assert new == old
    assert (tmp_path / "Dockerfile").read_bytes().count(b"\r\n") == 6  # CRLF kept
    assert "*pg" in (tmp_path / ".github/workflows/ci.yml").read_text()  # the alias stays an alias

    again = sources.discover(tmp_path)
    assert all("@sha256:" in f.ref for f in again.found) and len(again.found) == 8
    assert run("pin", "--check", "--config", cfg).code == 0
    v = run("verify", "--config", cfg)
    assert v.code == 0, v.err
    u = run("update", "--check", "--config", cfg)
    assert u.code == 0, u.err + u.out


@pytest.mark.registry
def test_a_bot_pinned_digest_is_followed_and_verified(tmp_path: Path, registry: Registry, run) -> None:
    """Renovate pins FROM x:1.19@sha256:OLD; the tag moves; lockman locks the pin, not the tag."""
    repo = unique_repo("bot")
    old = registry.push_image(f"{repo}/alpine", "3.19", salt="old")
    new = registry.push_image(f"{repo}/alpine", "3.19", salt="new")  # the tag moved on
    (tmp_path / "xcargo.toml").write_text("")
    (tmp_path / "Dockerfile").write_text(f"FROM {registry.host}/{repo}/alpine:3.19@{old.digest}\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    cfg = tmp_path / "xcargo.toml"
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    (entry,) = lockfile.loads((tmp_path / "xcargo.lock").read_text()).images
    assert entry.digest == old.digest and entry.pinned
    assert run("verify", "--config", cfg).code == 0
    # --repin moves the pin where it is written, and the lock with it
    r = run("update", "--repin", "--config", cfg)
    assert r.code == 0, r.err
    assert f"{tmp_path / 'Dockerfile'}: pins moved" in r.out
    assert (tmp_path / "Dockerfile").read_text() == f"FROM {registry.host}/{repo}/alpine:3.19@{new.digest}\n"
    (entry,) = lockfile.loads((tmp_path / "xcargo.lock").read_text()).images
    assert entry.digest == new.digest and entry.pinned
    assert run("verify", "--config", cfg).code == 0
    # the file now names another digest (a hand edit): verify sees the lock no longer matches
    other = registry.push_image(f"{repo}/alpine", "other", salt="x")
    (tmp_path / "Dockerfile").write_text(f"FROM {registry.host}/{repo}/alpine:3.19@{other.digest}\n")
    v = run("verify", "--config", cfg)
    assert v.code == 1 and f"pinned to {other.digest} in Dockerfile:1 but locked to {new.digest}" in v.err


@pytest.mark.registry
def test_hostile_sources_fail_cleanly(tmp_path: Path, registry: Registry) -> None:
    """A 100 MB Dockerfile: one line naming it, exit 2, no traceback, lock untouched."""
    (tmp_path / "xcargo.toml").write_text("")
    (tmp_path / "Dockerfile").write_text("FROM a\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    with open(tmp_path / "Dockerfile", "ab") as f:
        f.truncate(100 << 20)
    done = subprocess.run(
        ["python3", "-m", "lockman", "update", "--config", str(tmp_path / "xcargo.toml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'Dockerfile'}: larger than 8 MiB; not a dockerfile file"
    ]
    assert not (tmp_path / "xcargo.lock").exists()


def dockerfile_project(tmp_path: Path, *froms: str) -> Path:
    """A project whose only images are a Dockerfile's ``FROM``s (xcargo.toml names none), committed."""
    (tmp_path / "xcargo.toml").write_text("")
    (tmp_path / "Dockerfile").write_text("".join(f"FROM {f} AS s{i}\n" for i, f in enumerate(froms)))
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "project")
    return tmp_path / "xcargo.toml"


@pytest.mark.registry
def test_dockerfile_image_is_pulled_into_the_layout(tmp_path: Path, registry: Registry, run) -> None:
    repo = unique_repo("srcpull")
    img = registry.push_image(f"{repo}/base", "1", salt="pull")
    ref = f"{registry.host}/{repo}/base:1"
    cfg = dockerfile_project(tmp_path, ref)
    assert run("update", "--config", cfg).code == 0
    out = tmp_path / "layout"
    r = run("pull", "--config", cfg, "--oci-layout", out)
    assert r.code == 0, r.err
    index = json.loads((out / "index.json").read_text())
    names = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in index["manifests"]}
    assert names == {ref: img.digest}
    for layer in img.layers:
        assert (out / "blobs" / "sha256" / hashlib.sha256(layer).hexdigest()).read_bytes() == layer
    # The Dockerfile now pins another digest (a bot's bump, the lock not yet updated): pull
    # refuses to hand out what the Dockerfile does not build on.
    other = registry.push_image(f"{repo}/base", "1", salt="moved")
    (tmp_path / "Dockerfile").write_text(f"FROM {ref}@{other.digest} AS s0\n")
    r = run("pull", "--config", cfg, "--oci-layout", tmp_path / "again")
    assert r.code == 1 and f"pinned to {other.digest} in Dockerfile:1 but locked to {img.digest}" in r.err, r.err


@pytest.mark.registry
def test_policy_covers_dockerfile_images(tmp_path: Path, registry: Registry, run) -> None:
    """A lockman.toml rule covering a Dockerfile's images: the key-signed one is locked and
    verified as signed, an unsigned one is refused and never enters the lock."""
    priv = new_key("p256")
    repo = unique_repo("srcpolicy")
    signed = registry.push_image(f"{repo}/signed", "1", salt="s")
    registry.push_image(f"{repo}/unsigned", "1", salt="u")
    push_signatures(registry, f"{repo}/signed", signed.digest, [keyed_layer(priv, signed.digest, None)])
    cfg = dockerfile_project(tmp_path, f"{registry.host}/{repo}/signed:1")
    (tmp_path / "release.pub").write_bytes(public_pem(priv))
    (tmp_path / "lockman.toml").write_text(
        f'[[policy]]\nimages = ["{registry.host}/{repo}/*"]\nkey = "release.pub"\ninsecure-ignore-tlog = true\n'
    )
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert f"{registry.host}/{repo}/signed:1: signed by key {key_fingerprint(priv.public_key())}" in r.out
    v = run("verify", "--config", cfg)
    assert v.code == 0 and "1 image verified against its registry, 1 signed" in v.out, v.out + v.err
    lock = (tmp_path / "xcargo.lock").read_bytes()

    with (tmp_path / "Dockerfile").open("a") as f:
        f.write(f"FROM {registry.host}/{repo}/unsigned:1\n")
    git(tmp_path, "add", "-A")
    r = run("update", "--config", cfg)
    assert r.code == 1, r.out + r.err
    assert f"{repo}/unsigned:1 (sha256:" in r.err and "signature check failed" in r.err
    assert (tmp_path / "xcargo.lock").read_bytes() == lock


@pytest.mark.registry
def test_moved_dockerfile_image_has_insight_and_a_diff(tmp_path: Path, registry: Registry, run) -> None:
    repo = unique_repo("srcinsight")
    old = registry.push_image(f"{repo}/base", "1", salt="a")
    ref = f"{registry.host}/{repo}/base:1"
    cfg = dockerfile_project(tmp_path, ref)
    assert run("update", "--config", cfg).code == 0
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "lock")
    new = registry.push_image(f"{repo}/base", "1", salt="b")
    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    assert r.code == 0, r.err
    (up,) = json.loads(r.out)["updates"]
    assert (up["name"] + ":" + up["tag"], up["old_digest"], up["new_digest"]) == (ref, old.digest, new.digest), up
    assert up["insight"]["notes"] == ["no OCI labels and no SBOM published for this image"]
    assert run("update", "--config", cfg).code == 0
    d = run("diff", "git:HEAD", "--config", cfg, "--format", "json")
    assert d.code == 0, d.err
    (change,) = json.loads(d.out)["updates"]
    assert (change["old_digest"], change["new_digest"]) == (old.digest, new.digest), change


@pytest.mark.registry
def test_compose_env_file_is_read_only_when_tracked(tmp_path: Path, registry: Registry, run) -> None:
    """``${REG}/app:${TAG}`` takes its values from the tracked ``.env`` next to the compose file."""
    repo = unique_repo("srcenv")
    img = registry.push_image(f"{repo}/app", "2", salt="env")
    (tmp_path / "xcargo.toml").write_text("")
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "compose.yaml").write_text("services:\n  app:\n    image: ${REG}/app:${TAG}\n")
    (tmp_path / "deploy" / ".env").write_text(f"REG={registry.host}/{repo}\nTAG=2\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "xcargo.toml", "deploy/compose.yaml")
    cfg = tmp_path / "xcargo.toml"
    r = run("update", "--config", cfg)  # .env untracked: not read, the reference is reported
    assert "depends on REG, TAG, which has no default and no .env value" in r.err + r.out, r.err
    assert not lockfile.loads((tmp_path / "xcargo.lock").read_text()).images
    git(tmp_path, "add", "deploy/.env")
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    (entry,) = lockfile.loads((tmp_path / "xcargo.lock").read_text()).images
    assert (entry.name, entry.tag, entry.digest) == (f"{registry.host}/{repo}/app", "2", img.digest)
    assert entry.source == "deploy/compose.yaml:3"
    assert run("verify", "--config", cfg).code == 0
