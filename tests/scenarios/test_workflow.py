"""The update workflow end to end: selective update, --check, reports, diff git:REV, pin, hooks."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lockman.model import lockfile
from lockman.model.lockfile import LockedImage, LockedPlatform, Lockfile
from tests.support.docs_schema import conforms, documented_json
from tests.support.fixtures import unique_repo
from tests.support.paths import ROOT
from tests.support.project import git
from tests.support.registry import Registry

D0 = "sha256:" + "0" * 64


def make_project(tmp_path: Path, registry: Registry) -> tuple[Path, dict]:
    """[container].image (multi-platform, serves x86_64 gnu), a per-target image, a built-in one."""
    base = unique_repo("wf")
    idx = registry.push_index(f"{base}/rust", "1.70", ["linux/amd64", "linux/arm64/v8"])
    musl = registry.push_image(f"{base}/musl", "v1")
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(
        f"""\
# The project's cross builds.
[targets]
default = ["x86_64-unknown-linux-gnu"]

[targets."aarch64-unknown-linux-musl".container]
image = '{registry.host}/{base}/musl:v1'   # musl toolchain

[container]
runtime = "auto"
# pinned by lockman? not yet
image = "{registry.host}/{base}/rust:1.70"  # toolchain
"""
    )
    return cfg, {
        "base": base,
        "idx": idx,
        "musl": musl,
        "rust_name": f"{registry.host}/{base}/rust",
        "musl_name": f"{registry.host}/{base}/musl",
    }


def lock_of(cfg: Path) -> dict[str, LockedImage]:
    return {i.name: i for i in lockfile.loads(cfg.with_name("xcargo.lock").read_text()).images}


@pytest.mark.registry
def test_selective_update_and_check_exit_codes(tmp_path: Path, registry: Registry, run) -> None:
    cfg, p = make_project(tmp_path, registry)
    assert run("update", "--config", cfg).code == 0
    assert run("update", "--check", "--config", cfg).code == 0
    moved_rust = registry.push_index(f"{p['base']}/rust", "1.70", ["linux/amd64", "linux/arm64/v8"], salt="2")
    moved_musl = registry.push_image(f"{p['base']}/musl", "v1", salt="2")
    lock_path = cfg.with_name("xcargo.lock")
    before = lock_path.read_bytes()

    chk = run("update", "--check", "--config", cfg)
    assert chk.code == 1 and "not up to date" in chk.err
    assert lock_path.read_bytes() == before
    # --check on just one image, and a selector that matches nothing (exit 2, nothing written)
    assert run("update", "--check", p["musl_name"], "--config", cfg).code == 1
    bad = run("update", "no/such-image", "--config", cfg)
    assert bad.code == 2 and "no image matches 'no/such-image'" in bad.err
    assert lock_path.read_bytes() == before

    # by name: only musl moves; rust's entry is byte-for-byte what it was
    r = run("update", p["musl_name"], "--config", cfg)
    assert r.code == 0, r.err
    locked = lock_of(cfg)
    assert locked[p["musl_name"]].digest == moved_musl.digest
    assert locked[p["rust_name"]].digest == p["idx"].digest
    assert p["musl_name"] in r.out and p["rust_name"] not in r.out

    # by target triple: x86_64-unknown-linux-gnu builds in [container].image
    r = run("update", "x86_64-unknown-linux-gnu", "--config", cfg)
    assert r.code == 0, r.err
    assert lock_of(cfg)[p["rust_name"]].digest == moved_rust.digest
    assert run("update", "--check", "--config", cfg).code == 0

    # by name:tag
    again = registry.push_image(f"{p['base']}/musl", "v1", salt="3")
    assert run("update", f"{p['musl_name']}:v1", "--config", cfg).code == 0
    assert lock_of(cfg)[p["musl_name"]].digest == again.digest


@pytest.mark.registry
def test_selective_update_keeps_entries_of_other_images(tmp_path: Path, registry: Registry, run) -> None:
    prefix = unique_repo("cross")
    for t in ("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"):
        registry.push_image(f"{prefix}/{t}", "latest")
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(
        '[targets]\ndefault = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]\n'
        f'[container]\nregistry = "{registry.host}/{prefix}"\n'
    )
    assert run("update", "--config", cfg).code == 0
    old = lock_of(cfg)
    for t in ("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"):
        registry.push_image(f"{prefix}/{t}", "latest", salt="moved")
    r = run("update", "aarch64-unknown-linux-gnu", "--config", cfg)  # a built-in image, by triple
    assert r.code == 0, r.err
    new = lock_of(cfg)
    x86 = f"{registry.host}/{prefix}/x86_64-unknown-linux-gnu"
    arm = f"{registry.host}/{prefix}/aarch64-unknown-linux-gnu"
    assert new[x86] == old[x86] and new[arm].digest != old[arm].digest


@pytest.mark.registry
def test_update_reports_json_markdown_commit_message(tmp_path: Path, registry: Registry, run) -> None:
    cfg, p = make_project(tmp_path, registry)
    first = run("update", "--format", "json", "--config", cfg)
    assert first.code == 0, first.err
    doc = json.loads(first.out)
    conforms(doc, documented_json("update"))
    assert doc["changed_files"] == [str(cfg.with_name("xcargo.lock"))]
    assert {u["name"]: u["old_digest"] for u in doc["updates"]} == {
        p["rust_name"]: None,
        p["musl_name"]: None,
    }

    none = json.loads(run("update", "--format", "json", "--config", cfg).out)
    assert none["updates"] == [] and none["changed_files"] == [] and none["commit_message"] is None
    assert run("update", "--commit-message", "--config", cfg).out == ""

    moved = registry.push_index(f"{p['base']}/rust", "1.70", ["linux/amd64", "linux/arm64/v8"], salt="2")
    chk = run("update", "--check", "--format", "json", "--config", cfg)
    assert chk.code == 1
    doc = json.loads(chk.out)
    conforms(doc, documented_json("update"))
    assert doc["changed_files"] == []
    (u,) = doc["updates"]
    assert (u["name"], u["tag"], u["old_digest"], u["new_digest"], u["source"]) == (
        p["rust_name"],
        "1.70",
        p["idx"].digest,
        moved.digest,
        "container.image",
    )
    assert {c["platform"] for c in u["platforms_changed"]} == {"linux/amd64", "linux/arm64/v8"}
    new7 = moved.digest[7:14]
    assert doc["commit_message"] == f"chore(deps): update {p['rust_name']}:1.70 digest to {new7}"
    msg = run("update", "--dry-run", "--commit-message", "--config", cfg)
    assert msg.out == doc["commit_message"] + "\n"

    md = run("update", "--format", "markdown", "--config", cfg)
    assert md.code == 0
    assert f"| {p['rust_name']} | 1.70 | `{p['idx'].digest[7:14]}` → `{new7}` |" in md.out
    assert p["musl_name"] not in md.out  # only changed images
    amd_old = p["idx"].children["linux/amd64"].digest[7:14]
    amd_new = moved.children["linux/amd64"].digest[7:14]
    assert f"| {p['rust_name']}:1.70 | linux/amd64 | `{amd_old}` → `{amd_new}` |" in md.out
    assert lock_of(cfg)[p["rust_name"]].digest == moved.digest


@pytest.mark.registry
def test_verify_json_lists_problem_kinds(tmp_path: Path, registry: Registry, run) -> None:
    cfg, p = make_project(tmp_path, registry)
    assert run("update", "--config", cfg).code == 0
    ok = run("verify", "--format", "json", "--config", cfg)
    assert ok.code == 0
    doc = json.loads(ok.out)
    conforms(doc, documented_json("verify"))
    assert doc["ok"] is True and len(doc["images"]) == 2

    lock_path = cfg.with_name("xcargo.lock")
    lock_path.write_text(lock_path.read_text().replace(p["musl"].digest, D0))
    bad = run("verify", "--format", "json", "--config", cfg)
    assert bad.code == 1
    doc = json.loads(bad.out)
    conforms(doc, documented_json("verify"))
    assert doc["ok"] is False
    assert [(x["kind"], x["image"]) for x in doc["problems"]] == [("not-served", f"{p['musl_name']}:v1")]
    by_name = {i["name"]: i for i in doc["images"]}
    assert by_name[p["musl_name"]]["problems"] == ["not-served"] and by_name[p["rust_name"]]["ok"]
    assert "is not served" in bad.err  # stderr keeps its one line per problem

    cfg.write_text(cfg.read_text().replace("musl:v1", "musl:v2"))
    off = json.loads(run("verify", "--offline", "--format", "json", "--config", cfg).out)
    assert sorted(x["kind"] for x in off["problems"]) == ["missing", "stale"]
    md = run("verify", "--offline", "--format", "markdown", "--config", cfg).out
    assert "| Image | Problem | Details |" in md and "`missing`" in md


def sample(digest: str, arm: str) -> Lockfile:
    return Lockfile(
        (
            LockedImage(
                "rust",
                "1.70",
                digest,
                source="container.image",
                platforms=(
                    LockedPlatform("linux", "amd64", "sha256:" + "1" * 64),
                    LockedPlatform("linux", "arm64", arm, "v8"),
                ),
            ),
        )
    )


def test_diff_against_git_revisions(tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    sub = repo / "crates" / "app"  # the project lives below the repository root
    sub.mkdir(parents=True)
    git(repo, "init", "-q")
    (sub / "xcargo.toml").write_text('[container]\nimage = "rust:1.70"\n')
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "config only")
    lock = sub / "xcargo.lock"
    lock.write_text(lockfile.dumps(sample("sha256:" + "a" * 64, "sha256:" + "2" * 64)))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "lock")
    lock.write_text(lockfile.dumps(sample("sha256:" + "e" * 64, "sha256:" + "4" * 64)))

    monkeypatch.chdir(tmp_path)  # not inside the repository: git:REV follows --config
    cfg = str(sub / "xcargo.toml")
    r = run("diff", "git:HEAD", "--config", cfg, "--format", "json")
    assert r.code == 0, r.err
    (u,) = json.loads(r.out)["updates"]
    assert (u["old_digest"], u["new_digest"]) == ("sha256:" + "a" * 64, "sha256:" + "e" * 64)
    assert u["platforms_changed"] == [
        {"platform": "linux/arm64/v8", "old_digest": "sha256:" + "2" * 64, "new_digest": "sha256:" + "4" * 64}
    ]
    assert json.loads(r.out)["changed_files"] == []

    # before the lock was committed: everything is added
    first = run("diff", "git:HEAD~1", str(lock), "--config", cfg, "--format", "markdown")
    assert first.code == 0, first.err
    assert "| rust | 1.70 | added `eeeeeee` |" in first.out

    text = run("diff", "git:HEAD", str(lock), "--config", cfg)
    assert "rust:1.70  sha256:aaaaaaaaaaaa → sha256:eeeeeeeeeeee" in text.out
    assert "    linux/arm64/v8  sha256:222222222222 → sha256:444444444444" in text.out
    assert run("diff", "git:HEAD", "--config", cfg, "--exit-code").code == 1
    same = run("diff", str(lock), str(lock), "--exit-code")
    assert same.code == 0 and "no differences" in same.out
    msg = run("diff", "git:HEAD", "--config", cfg, "--commit-message")
    assert msg.out == "chore(deps): update rust:1.70 digest to eeeeeee\n"

    bad = run("diff", "git:no-such-rev", "--config", cfg)
    assert bad.code == 2 and "unknown git revision 'no-such-rev'" in bad.err
    outside = run("diff", "git:HEAD", "--config", str(tmp_path / "xcargo.toml"))
    assert outside.code == 2 and "not inside a git repository" in outside.err
    missing = run("diff", str(tmp_path / "nope.lock"), str(lock))
    assert missing.code == 2 and "nope.lock: no such file" in missing.err


def test_diff_reads_stdin(tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    new = tmp_path / "new.lock"
    new.write_text(lockfile.dumps(sample("sha256:" + "e" * 64, "sha256:" + "4" * 64)))
    monkeypatch.setattr(sys, "stdin", io.StringIO(lockfile.dumps(Lockfile())))
    r = run("diff", "-", str(new), "--format", "json")
    assert r.code == 0, r.err
    assert [u["old_digest"] for u in json.loads(r.out)["updates"]] == [None]
    assert run("diff", "-", "-").code == 2


@pytest.mark.registry
def test_pin_and_repin_keep_comments(tmp_path: Path, registry: Registry, run) -> None:
    cfg, p = make_project(tmp_path, registry)
    assert run("update", "--config", cfg).code == 0
    original = cfg.read_text()

    show = run("pin", "--config", cfg)
    assert show.code == 0, show.err
    assert cfg.read_text() == original  # without --write nothing changes
    assert f'-image = "{p["rust_name"]}:1.70"  # toolchain' in show.out
    assert f'+image = "{p["rust_name"]}:1.70@{p["idx"].digest}"  # toolchain' in show.out

    w = run("pin", "--write", "--config", cfg)
    assert w.code == 0, w.err
    pinned = cfg.read_text()
    expected = original.replace(
        f"'{p['musl_name']}:v1'", f"'{p['musl_name']}:v1@{p['musl'].digest}'"
    ).replace(f'"{p["rust_name"]}:1.70"', f'"{p["rust_name"]}:1.70@{p["idx"].digest}"')
    assert pinned == expected  # only the two image strings changed: comments, quotes, order kept
    assert all(e.pinned for e in lock_of(cfg).values())
    assert run("update", "--check", "--config", cfg).code == 0
    assert run("verify", "--config", cfg).code == 0
    again = run("pin", "--config", cfg)
    assert again.code == 0 and "already pinned" in again.out

    moved = registry.push_index(f"{p['base']}/rust", "1.70", ["linux/amd64"], salt="2")
    plain = run("update", "--config", cfg)
    assert plain.code == 0 and "--repin" in plain.err
    assert cfg.read_text() == pinned  # plain update never touches xcargo.toml
    assert run("update", "--check", "--repin", "--config", cfg).code == 1
    assert cfg.read_text() == pinned

    rp = run("update", "--repin", "--format", "json", "--config", cfg)
    assert rp.code == 0, rp.err
    doc = json.loads(rp.out)
    assert sorted(doc["changed_files"]) == sorted([str(cfg), str(cfg.with_name("xcargo.lock"))])
    assert [u["new_digest"] for u in doc["updates"]] == [moved.digest]
    assert cfg.read_text() == pinned.replace(p["idx"].digest, moved.digest)
    rust = lock_of(cfg)[p["rust_name"]]
    assert rust.digest == moved.digest and rust.pinned and len(rust.platforms) == 1
    assert run("verify", "--config", cfg).code == 0
    assert run("update", "--check", "--repin", "--config", cfg).code == 0


def test_pin_needs_a_lock_entry(tmp_path: Path, run) -> None:
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text('[container]\nimage = "rust:1.70"\n')
    assert run("pin", "--config", cfg).code == 1  # no lockfile yet
    cfg.with_name("xcargo.lock").write_text(lockfile.dumps(Lockfile()))
    r = run("pin", "--write", "--config", cfg)
    assert r.code == 1 and "no entry for rust:1.70 (container.image)" in r.err
    assert cfg.read_text() == '[container]\nimage = "rust:1.70"\n'


def run_hook(hook: dict, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a hook as pre-commit would: entry + args, no filenames, from the repository root."""
    argv = shlex.split(hook["entry"]) + list(hook.get("args", []))
    assert argv[0] == "lockman"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "lockman", *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.mark.registry
def test_pre_commit_hooks_run_the_real_commands(tmp_path: Path, registry: Registry, run) -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"lockman-verify", "lockman-update-check"}
    assert shlex.split(hooks["lockman-verify"]["entry"])[1:] == ["verify", "--offline"]
    assert shlex.split(hooks["lockman-update-check"]["entry"])[1:] == ["update", "--check"]
    for h in hooks.values():
        assert h["pass_filenames"] is False and h["language"] == "python"
        files = re.compile(h["files"])
        assert files.search("xcargo.toml") and files.search("xcargo.lock") and not files.search("Cargo.lock")

    cfg, p = make_project(tmp_path, registry)
    assert run("update", "--config", cfg).code == 0
    for h in hooks.values():
        r = run_hook(h, tmp_path)
        assert r.returncode == 0, (h["id"], r.stderr)

    registry.push_image(f"{p['base']}/musl", "v1", salt="moved")
    r = run_hook(hooks["lockman-update-check"], tmp_path)
    assert r.returncode == 1 and "not up to date" in r.stderr
    assert run_hook(hooks["lockman-verify"], tmp_path).returncode == 0  # offline: still consistent
    cfg.write_text(cfg.read_text().replace("musl:v1", "musl:v2"))
    r = run_hook(hooks["lockman-verify"], tmp_path)
    assert r.returncode == 1 and "not in xcargo.lock" in r.stderr


def test_shell_completion_lists_the_commands(run) -> None:
    r = run("completion", "bash")
    assert r.code == 0
    m = re.search(r"all_commands='([^']*)'", r.out)
    assert m and set(m.group(1).split()) >= {"update", "verify", "diff", "pin", "resolve"}
    assert "--commit-message" in r.out and "--repin" in r.out
    assert run("completion", "tcsh").code == 2


@pytest.mark.registry
def test_verify_json_carries_signature_verdicts(tmp_path: Path, registry: Registry, run) -> None:
    """With a signature policy, each image's JSON gets its verdict and stdout stays pure JSON."""
    from tests.support.cosign_registry import push_signatures, store_fixture
    from tests.support.signing_helpers import TESTDATA, fixture_layers

    repo = unique_repo("cosign")
    digest = store_fixture(registry, repo, "v1", "dir-img-cosign-valid")
    push_signatures(registry, repo, digest, fixture_layers("dir-img-cosign-valid"))
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{registry.host}/{repo}:v1"\n')
    assert run("update", "--config", cfg).code == 0
    flags = ["--key", TESTDATA / "cosign.pub", "--insecure-ignore-tlog", "--config", cfg]

    r = run("verify", "--format", "json", *flags)
    assert r.code == 0, r.err
    doc = json.loads(r.out)  # no "signed by" lines mixed in
    conforms(doc, documented_json("verify"))
    sig = doc["images"][0]["signatures"]
    assert sig["verified"] is True and sig["checks"][0]["digest"] == digest
    assert sig["checks"][0]["kind"] and sig["checks"][0]["signer"]

    text = run("verify", *flags)
    assert "signed by" in text.out and text.out.rstrip().endswith(", 1 signed)")

    bad = run(
        "verify",
        "--format",
        "json",
        "--key",
        TESTDATA / "cosign2.pub",
        "--insecure-ignore-tlog",
        "--config",
        cfg,
    )
    assert bad.code == 1
    doc = json.loads(bad.out)
    assert [p["kind"] for p in doc["problems"]] == ["signature"]
    assert doc["images"][0]["signatures"]["verified"] is False
    assert doc["images"][0]["problems"] == ["signature"]
