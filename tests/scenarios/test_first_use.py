"""What a new user meets first (issue 16), each through the real CLI and a real registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockman.model import lockfile
from tests.support.fixtures import unique_repo
from tests.support.paths import ROOT
from tests.support.project import git_run as git
from tests.support.project import project
from tests.support.registry import Registry


def one_image(tmp_path: Path, registry: Registry, *, platforms: list[str] | None = None) -> tuple[Path, str]:
    """xcargo.toml whose [container].image is a fresh image (multi-platform when asked)."""
    repo = unique_repo("first")
    if platforms:
        registry.push_index(repo, "1", platforms)
    else:
        registry.push_image(repo, "1")
    name = f"{registry.host}/{repo}"
    return project(tmp_path, f'[container]\nimage = "{name}:1"\n'), name


# -- global options before the command; -v / -q on every command ---------------------------------


@pytest.mark.registry
def test_config_and_timeout_before_the_command(run, tmp_path: Path, registry: Registry) -> None:
    cfg, _ = one_image(tmp_path, registry)
    r = run("--config", cfg, "--timeout", "10", "update")
    assert r.code == 0, r.err
    assert cfg.with_name("xcargo.lock").exists()
    r = run(f"--config={cfg}", "-q", "verify")
    assert (r.code, r.out, r.err) == (0, "", "")


def test_global_option_a_command_does_not_take_is_refused(run) -> None:
    r = run("--config", "x.toml", "resolve", "rust:1")
    assert r.code == 2
    assert "--config" in r.err


@pytest.mark.parametrize(
    "command",
    [["update"], ["verify"], ["diff", "-"], ["pull"], ["pin"], ["resolve", "x"], ["completion", "bash"]],
)
def test_every_command_takes_verbose_and_quiet(run, command: list[str]) -> None:
    for flag in ("-v", "--verbose", "-q", "--quiet"):
        r = run(*command, flag, "--help")
        assert r.code == 0, (command, flag, r.err)
    r = run(*command, "--help")
    assert "--verbose" in r.out and "--quiet" in r.out


def test_verbose_and_quiet_together_is_a_usage_error(run, tmp_path: Path) -> None:
    r = run("verify", "-v", "-q", "--config", tmp_path / "xcargo.toml")
    assert r.code == 2
    assert r.err == "error: --verbose and --quiet are alternatives: give one\n"


@pytest.mark.registry
def test_verbose_shows_requests_quiet_shows_errors_only(run, tmp_path: Path, registry: Registry) -> None:
    repo = unique_repo("verbose")
    registry.push_image(repo, "1")
    cfg = project(
        tmp_path, f'[targets."x86_64-unknown-linux-gnu".container]\nimage = "{registry.host}/{repo}:1"\n'
    )
    r = run("update", "-v", "--config", cfg)
    assert r.code == 0, r.err
    assert f"debug: GET http://{registry.host}/v2/ -> 200" in r.err
    assert f"debug: HEAD http://{registry.host}/v2/" in r.err
    assert "xcargo.lock: updated" in r.out
    # A warning (a target without an image) is dropped by -q; the error still shows.
    cfg.write_text(cfg.read_text() + '[targets."riscv64gc-unknown-linux-gnu"]\n')
    r = run("update", "--config", cfg)
    assert "warning:" in r.err
    r = run("update", "-q", "--config", cfg)
    assert (r.code, r.out, r.err) == (0, "", "")
    r = run("verify", "-q", "--config", tmp_path / "missing.toml")
    assert r.code == 2 and r.err.startswith("error: ")


# -- LOCKMAN_* variables ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("var", "value", "allowed"),
    [
        ("LOCKMAN_CONCURRENCY", "abc", "a whole number of at least 1"),
        ("LOCKMAN_CONCURRENCY", "0", "a whole number of at least 1"),
        ("LOCKMAN_RETRY_ATTEMPTS", "0", "a whole number of at least 1"),
        ("LOCKMAN_RETRY_WAIT_MAX", "-1", "a number of seconds, 0 or more"),
        ("LOCKMAN_RETRY_AFTER_MAX", "inf", "a number of seconds, 0 or more"),
        ("LOCKMAN_HTTP2", "maybe", "1, 0, true, false, yes, no, on or off"),
        ("LOCKMAN_DEBUG", "verbose", "1, 0, true, false, yes, no, on or off"),
    ],
)
def test_every_variable_is_checked_the_same_way(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, var: str, value: str, allowed: str
) -> None:
    monkeypatch.setenv(var, value)
    cfg = project(tmp_path, "")
    for command in (
        ["verify", "--offline", "--config", cfg],
        ["resolve", "rust:1"],
        ["pin", "--config", cfg],
    ):
        r = run(*command)
        assert r.code == 2, (command, r.err)
        assert r.err == f"error: environment variable {var}={value!r} is not valid: expected {allowed}\n"


def test_directory_variables_name_the_variable(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = project(tmp_path, "")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    monkeypatch.setenv("LOCKMAN_CACHE_DIR", str(a_file))
    r = run("verify", "--offline", "--config", cfg)
    assert r.code == 2
    assert r.err == (
        f"error: environment variable LOCKMAN_CACHE_DIR={str(a_file)!r} is not valid: "
        "expected a directory (created when missing)\n"
    )
    monkeypatch.delenv("LOCKMAN_CACHE_DIR")
    monkeypatch.setenv("LOCKMAN_LOCK_DIR", "/proc/nope")
    r = run("update", "--config", cfg)
    assert r.code == 2
    last = r.err.splitlines()[-1]  # after the warning that this config uses no image
    assert last.startswith("error: environment variable LOCKMAN_LOCK_DIR='/proc/nope' is not valid (")
    assert last.endswith("expected a directory (created when missing)")
    assert not cfg.with_name("xcargo.lock").exists()


def test_readme_lists_every_variable() -> None:
    from lockman.env import VARIABLES

    page = (ROOT / "docs" / "environment.md").read_text()
    section = page.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    for name, v in VARIABLES.items():
        assert f"`{name}`" in section, name
        assert v.allowed in section, name


# -- plain HTTP on a non-loopback address; --insecure-registry -------------------------------------


@pytest.mark.registry
def test_plain_http_registry_gets_a_hint_and_insecure_registry_allows_it(
    run, tmp_path: Path, registry: Registry
) -> None:
    repo = unique_repo("plain")
    img = registry.push_image(repo, "1")
    # 127.1 is this registry, but not a spelling lockman treats as loopback: as a LAN address.
    host = f"127.1:{registry.port}"
    r = run("resolve", f"{host}/{repo}:1")
    assert r.code == 3
    assert "wrong version number" in r.err.lower()
    assert f"pass `--insecure-registry {host}` (this run)" in r.err
    assert "insecure = true" in r.err
    assert r.err.count("\n") == 1
    r = run("resolve", "--insecure-registry", host, f"{host}/{repo}:1")
    assert (r.code, r.out) == (0, f"{host}/{repo}:1@{img.digest}\n"), r.err
    # Per registry, never global: another registry named does not open this one.
    r = run("resolve", "--insecure-registry", "other.example:5000", f"{host}/{repo}:1")
    assert r.code == 3
    # And the next run (same process) is back to the default.
    r = run("resolve", f"{host}/{repo}:1")
    assert r.code == 3


@pytest.mark.parametrize("value", ["*", "http://reg.example", "reg.example/path", ""])
def test_insecure_registry_takes_a_host_only(run, value: str) -> None:
    r = run("resolve", "--insecure-registry", value, "rust:1")
    assert r.code == 2
    assert r.err.startswith(f"error: --insecure-registry {value!r}: expected a registry host")


# -- update --platform in a mixed project; resolve --platform --------------------------------------


@pytest.mark.registry
def test_platform_update_takes_single_platform_image_as_it_is(
    run, tmp_path: Path, registry: Registry
) -> None:
    base = unique_repo("mixed")
    multi = registry.push_index(f"{base}/multi", "1", ["linux/amd64", "linux/arm64"])
    single = registry.push_image(f"{base}/single", "1", arch="amd64")
    cfg = project(
        tmp_path,
        f"""\
[container]
image = "{registry.host}/{base}/multi:1"

[targets."x86_64-pc-windows-gnu".container]
image = "{registry.host}/{base}/single:1"
""",
    )
    r = run("update", "--platform", "linux/arm64", "--config", cfg)
    assert r.code == 0, r.err
    single_name = f"{registry.host}/{base}/single:1"
    assert r.err == (
        f"warning: {single_name}: single-platform linux/amd64 image, no linux/arm64 variant; "
        f"taken as it is ({single.digest[:19]})\n"
    )
    lock = {i.name.rsplit("/", 1)[1]: i for i in lockfile.read(cfg.with_name("xcargo.lock")).images}
    assert lock["multi"].digest == multi.children["linux/arm64"].digest
    assert lock["multi"].platform == "linux/arm64"
    assert (lock["single"].digest, lock["single"].platform) == (single.digest, "")
    assert run("verify", "--config", cfg).code == 0


@pytest.mark.registry
def test_resolve_platform(run, registry: Registry) -> None:
    repo = unique_repo("resolve-platform")
    idx = registry.push_index(repo, "1", ["linux/amd64", "linux/arm64/v8"])
    ref = f"{registry.host}/{repo}:1"
    r = run("resolve", "--platform", "linux/arm64", ref)
    assert (r.code, r.out) == (0, f"{ref}@{idx.children['linux/arm64/v8'].digest}\n"), r.err
    r = run("resolve", ref)
    assert r.out == f"{ref}@{idx.digest}\n"
    r = run("resolve", "--platform", "linux/s390x", ref)
    assert r.code == 2
    assert "no linux/s390x image" in r.err
    r = run("resolve", "--platform", "linux", ref)
    assert r.code == 2 and r.err.startswith("error: --platform")


# -- a lockfile with merge-conflict markers ---------------------------------------------------------


@pytest.mark.registry
def test_merge_conflict_in_lock_is_named_by_verify_and_recovered_by_update(
    run, tmp_path: Path, registry: Registry
) -> None:
    base = unique_repo("conflict")
    a = registry.push_image(f"{base}/a", "1")
    b = registry.push_image(f"{base}/b", "1")
    pinned = registry.push_image(f"{base}/pinned", "1")
    cfg = project(
        tmp_path,
        f"""\
[targets."x86_64-pc-windows-gnu".container]
image = "{registry.host}/{base}/pinned:1@{pinned.digest}"

[container]
runtime = "auto"
""",
    )
    assert run("update", "--config", cfg).code == 0
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base")
    git(tmp_path, "switch", "-qc", "side")
    cfg.write_text(cfg.read_text() + f'image = "{registry.host}/{base}/b:1"\n')
    assert run("update", "--config", cfg).code == 0
    git(tmp_path, "commit", "-qam", "b")
    git(tmp_path, "switch", "-q", "main")
    text = cfg.read_text()
    cfg.write_text(
        f'[targets."aarch64-unknown-linux-gnu".container]\nimage = "{registry.host}/{base}/a:1"\n\n{text}'
    )
    assert run("update", "--config", cfg).code == 0
    git(tmp_path, "commit", "-qam", "a")
    merge = git(tmp_path, "merge", "side")
    assert "CONFLICT (content): Merge conflict in xcargo.lock" in merge.stdout, merge.stdout
    assert "<<<<<<<" not in cfg.read_text()
    lock_path = cfg.with_name("xcargo.lock")
    conflicted = lock_path.read_text()
    assert "<<<<<<< HEAD" in conflicted

    r = run("verify", "--config", cfg)
    assert r.code == 1
    assert r.err == f"error: {lock_path} has merge conflicts: run `lockman update`\n"
    r = run("verify", "--offline", "--format", "json", "--config", cfg)
    assert json.loads(r.out)["problems"][0]["kind"] == "merge-conflict"
    r = run("diff", "git:HEAD", "--config", cfg)
    assert (r.code, r.err) == (2, f"error: {lock_path} has merge conflicts: run `lockman update`\n")

    r = run("update", "--check", "--config", cfg)
    assert r.code == 1
    assert lock_path.read_text() == conflicted
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert r.err.startswith(f"notice: {lock_path} has merge conflicts: locking afresh from the config")
    lock = {i.name.rsplit("/", 1)[1]: i.digest for i in lockfile.read(lock_path).images}
    assert lock == {"a": a.digest, "b": b.digest, "pinned": pinned.digest}
    assert run("verify", "--config", cfg).code == 0


# -- pull with the registry down -----------------------------------------------------------------


@pytest.mark.registry
def test_pull_with_registry_down_names_each_image_once_and_leaves_no_skeleton(
    run, tmp_path: Path, own_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = unique_repo("down")
    own_registry.push_index(f"{base}/multi", "1", ["linux/amd64", "linux/arm64"])
    own_registry.push_image(f"{base}/single", "1")
    multi, single = f"{own_registry.host}/{base}/multi:1", f"{own_registry.host}/{base}/single:1"
    cfg = project(
        tmp_path,
        f'[container]\nimage = "{multi}"\n\n[targets."x86_64-pc-windows-gnu".container]\nimage = "{single}"\n',
    )
    assert run("update", "--config", cfg).code == 0
    own_registry.stop()
    monkeypatch.setenv("LOCKMAN_RETRY_ATTEMPTS", "1")
    out_dir = tmp_path / "images"
    r = run("pull", "--oci-layout", out_dir, "--config", cfg)
    assert r.code == 3
    lines = r.err.splitlines()
    assert len(lines) == 3, r.err
    assert lines[0].startswith(f"error: {multi}: {own_registry.host}: cannot connect")
    assert lines[1].startswith(f"error: {single}: {own_registry.host}: cannot connect")
    assert lines[2] == f"{out_dir}: left as it was (2 of 2 images failed)"
    assert not out_dir.exists()
    # An empty directory the user made stays, empty.
    out_dir.mkdir()
    assert run("pull", "--oci-layout", out_dir, "--config", cfg).code == 3
    assert out_dir.is_dir() and list(out_dir.iterdir()) == []


# -- an xcargo.toml that uses no image; unknown target triples ---------------------------------------


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("", "it sets no [container].image and names no target"),
        ("[build]\njobs = 4\n", "it sets no [container].image and names no target"),
        (
            '[targets]\ndefault = ["aarch64-apple-darwin", "wasm32-unknown-unknown"]\n',
            "its targets (aarch64-apple-darwin, wasm32-unknown-unknown) build natively, without a container",
        ),
    ],
)
def test_config_without_images_warns_why_nothing_was_locked(run, tmp_path: Path, body: str, why: str) -> None:
    cfg = project(tmp_path, body)
    warning = f"warning: {cfg}: uses no container image ({why}); nothing to lock\n"
    r = run("update", "--config", cfg)
    assert (r.code, r.err) == (0, warning)
    r = run("verify", "--config", cfg)
    assert (r.code, r.err) == (0, warning)


def test_unknown_target_triple_is_called_a_likely_typo(run, tmp_path: Path) -> None:
    cfg = project(
        tmp_path,
        '[targets]\ndefault = ["x86_64-unknown-linux-gnu", "x86_64-unkown-linux-gnu", "riscv64gc-unknown-linux-gnu"]'
        '\n\n[targets."x86_64-unknown-linux-gnu".container]\nimage = "localhost:1/x:1@sha256:'
        + "a" * 64
        + '"\n',
    )
    r = run("verify", "--offline", "--config", cfg)
    assert r.err.splitlines()[:3] == [
        f"warning: {cfg}: targets.default[1]: x86_64-unkown-linux-gnu is not a target triple rustc or xcargo "
        "knows (did you mean x86_64-unknown-linux-gnu?)",
        f"warning: {cfg}: target x86_64-unkown-linux-gnu has no container image "
        '(set [targets."x86_64-unkown-linux-gnu".container].image to lock one); skipped',
        # a real target that xcargo has no image for: skipped, but not called a typo
        f"warning: {cfg}: target riscv64gc-unknown-linux-gnu has no container image "
        '(set [targets."riscv64gc-unknown-linux-gnu".container].image to lock one); skipped',
    ]


# -- words -------------------------------------------------------------------------------------------


@pytest.mark.registry
def test_counts_are_singular_for_one(run, tmp_path: Path, registry: Registry) -> None:
    cfg, _ = one_image(tmp_path, registry)
    r = run("update", "--config", cfg)
    assert r.out.endswith(f"{cfg.with_name('xcargo.lock')}: updated (1 changed, 1 image)\n")
    assert run("update", "--config", cfg).out.endswith(": up to date (1 image)\n")
    r = run("verify", "--deep", "--config", cfg)
    assert "(1 image verified against its registry; 2 blobs, " in r.out
    r = run("verify", "--format", "markdown", "--config", cfg)
    assert "all 1 image in" in r.out
    r = run("pull", "--oci-layout", tmp_path / "out", "--config", cfg)
    assert r.code == 0, r.err
    assert "  1 manifest, 2 blobs (0 already present" in r.out
    assert r.out.endswith(f"{tmp_path / 'out'}: 1 image written (oci:{tmp_path / 'out'}:NAME)\n")


@pytest.mark.registry
def test_platform_pin_of_a_single_platform_image_says_so(run, tmp_path: Path, registry: Registry) -> None:
    cfg, name = one_image(tmp_path, registry)
    assert run("update", "--config", cfg).code == 0
    digest = lockfile.read(cfg.with_name("xcargo.lock")).images[0].digest
    r = run("update", "--platform", "linux/amd64", "--config", cfg)
    assert r.out.splitlines()[0] == f"{name}:1  {digest[:19]} is now a platform pin (linux/amd64)"
    r = run("update", "--platform", "all", "--config", cfg)
    assert r.out.splitlines()[0] == f"{name}:1  {digest[:19]} is now a tag pin"


@pytest.mark.registry
def test_dropping_only_pinned_says_what_was_rewritten(run, tmp_path: Path, registry: Registry) -> None:
    cfg, name = one_image(tmp_path, registry)
    assert run("update", "--config", cfg).code == 0
    assert run("pin", "--write", "--config", cfg).code == 0
    assert "pinned = true" in cfg.with_name("xcargo.lock").read_text()
    cfg.write_text(f'[container]\nimage = "{name}:1"\n')  # the user removes the pin again
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert r.out == f"{cfg.with_name('xcargo.lock')}: updated (1 image; no digest moved; pinned rewritten)\n"


@pytest.mark.registry
def test_repin_dry_run_shows_the_xcargo_toml_change(run, tmp_path: Path, registry: Registry) -> None:
    repo = unique_repo("repin")
    old = registry.push_image(repo, "1", salt="a")
    name = f"{registry.host}/{repo}"
    cfg = project(tmp_path, f'[container]\nimage = "{name}:1@{old.digest}"  # toolchain\n')
    assert run("update", "--config", cfg).code == 0
    new = registry.push_image(repo, "1", salt="b")
    before = cfg.read_text(), cfg.with_name("xcargo.lock").read_text()
    r = run("update", "--repin", "--dry-run", "--config", cfg)
    assert r.code == 0, r.err
    assert f"--- a/{cfg}\n+++ b/{cfg}\n" in r.out
    assert (
        f'-image = "{name}:1@{old.digest}"  # toolchain\n+image = "{name}:1@{new.digest}"  # toolchain\n'
        in r.out
    )
    assert r.out.endswith(f"{cfg}: pins would move to the tags' new digests (dry run)\n")
    assert (cfg.read_text(), cfg.with_name("xcargo.lock").read_text()) == before


@pytest.mark.registry
def test_reports_on_exit_3(
    run, tmp_path: Path, own_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify prints its report (ok: false, the registry problems) on exit 3; update prints none."""
    cfg, name = one_image(tmp_path, own_registry)
    assert run("update", "--config", cfg).code == 0
    own_registry.stop()
    monkeypatch.setenv("LOCKMAN_RETRY_ATTEMPTS", "1")
    r = run("verify", "--format", "json", "--config", cfg)
    assert r.code == 3
    doc = json.loads(r.out)
    assert doc["ok"] is False
    assert [(p["kind"], p["image"]) for p in doc["problems"]] == [("registry", f"{name}:1")]
    assert r.err.startswith(f"error: {name}:1: ")
    r = run("verify", "--format", "markdown", "--config", cfg)
    assert r.code == 3 and "| `registry` |" in r.out
    r = run("verify", "--config", cfg)
    assert r.code == 3  # text: the problems are the stderr lines, a summary line on stdout
    assert r.out == f"{tmp_path / 'xcargo.lock'}: FAILED (1 problem in 1 image)\n"
    for fmt in ("json", "markdown", "text"):
        r = run("update", "--format", fmt, "--config", cfg)
        assert (r.code, r.out) == (3, ""), fmt
        assert r.err.startswith(f"error: {name}:1: ")


def test_help_texts(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # one help line per option
    for command in ("diff", "pin"):
        r = run(command, "--help")
        assert "this command makes no requests" in r.out
        assert "Seconds each registry request may take" not in r.out
    r = run("resolve", "--help")
    assert "16 over HTTP/1.1" in r.out and "64 streams over HTTP/2" in r.out
    assert "--platform" in r.out
    r = run("pull", "--help")
    assert "[default: []]" not in r.out


@pytest.mark.registry
def test_verbose_shows_retries(run, registry: Registry, fault_proxy) -> None:
    repo = unique_repo("retry")
    img = registry.push_image(repo, "1")
    fault_proxy.add(f"/{repo}/manifests/", "status", status=503, times=1)
    ref = f"{fault_proxy.host}/{repo}:1"
    r = run("resolve", "-v", ref)
    assert (r.code, r.out) == (0, f"{ref}@{img.digest}\n"), r.err
    assert (
        f"debug: retrying HEAD http://{fault_proxy.host}/v2/{repo}/manifests/1 after attempt 1: HTTP 503"
        in r.err
    )
    r = run("resolve", ref)
    assert "debug:" not in r.err


@pytest.mark.registry
def test_hostile_platform_in_a_config_blob_cannot_forge_lines(
    run, tmp_path: Path, registry: Registry
) -> None:
    """The warning names the platform the image's config declares: registry content."""
    repo = unique_repo("hostile-platform")
    registry.push_image(repo, "1", os_="linux\x1b]0;pwned\x07", arch="amd64\nerror: all images verified")
    cfg = project(tmp_path, f'[container]\nimage = "{registry.host}/{repo}:1"\n')
    r = run("update", "--platform", "linux/arm64", "--config", cfg)
    assert r.code == 0, r.err
    assert r.err.count("\n") == 1 and r.err.startswith("warning: ")
    assert "\x1b" not in r.err and "\x07" not in r.err
    assert "linux\\x1b]0;pwned\\x07/amd64\\x0aerror: all images verified" in r.err
