"""The Renovate recipe, run with the real Renovate against a real TLS registry.

Renovate (the version ``scripts/renovate/package-lock.json`` pins, installed by ``scripts/test``
into ``$LOCKMAN_RENOVATE_DIR``) runs in local lookup mode on a project that extends nothing but
``config:best-practices`` and ``renovate/xcargo.json``. The test checks what it extracts and
proposes, applies each proposal on its own branch as Renovate's regex manager does (the
``replaceString`` with the new value and digest), and runs the preset's ``postUpgradeTasks``
through Renovate's own allow-list check, template engine and exec (``tests/support/renovate_task.cjs``),
so lockman sees the environment Renovate gives it. Skips without Node or Renovate, unless
``LOCKMAN_REQUIRE_REGISTRY=1`` (CI), where it fails.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from lockman.model import lockfile
from tests.support.fixtures import unique_repo
from tests.support.paths import ROOT
from tests.support.project import git
from tests.support.registry import TLSSetup, missing, start_tls

PRESET = json.loads((ROOT / "renovate" / "xcargo.json").read_text())
ADMIN = json.loads((ROOT / "renovate" / "self-hosted.json").read_text())
# Read before the isolated_env fixture replaces HOME and XDG_CACHE_HOME.
RENOVATE_DIR = Path(
    os.environ.get("LOCKMAN_RENOVATE_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lockman-test" / "renovate"
)
PASSWORD = "renovate-Pa55word-for-tests"
((TASK_COMMAND,),) = [
    r["postUpgradeTasks"]["commands"]
    for r in PRESET["packageRules"]
    if "postUpgradeTasks" in r and "matchFileNames" in r
]

pytestmark = [pytest.mark.registry, pytest.mark.renovate]


def documented_ca_env(ca: Path) -> dict[str, str]:
    """The variables docs/integrations.md tells the bot's admin to set for a private CA, pointed at
    ``ca``: the test runs the recipe with exactly what the page says, no more."""
    page = (ROOT / "docs" / "integrations.md").read_text()
    found = re.findall(r"^\s*export (\w+)=/etc/renovate/ca\.pem\b", page, re.M)
    assert found, "docs/integrations.md shows no CA variables for the bot"
    return {name: str(ca) for name in found}


def _renovate_dist() -> Path:
    dist = RENOVATE_DIR / "node_modules" / "renovate" / "dist"
    if shutil.which("node") is None or not (dist / "renovate.js").is_file():
        missing(f"Renovate not installed in {RENOVATE_DIR} (scripts/test installs it) or no node")
    return dist


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSSetup]:
    setup = start_tls(tmp_path_factory.mktemp("renovate-tls"), auth=("alice", PASSWORD))
    yield setup
    setup.registry.stop()


def lockman_on_path(bin_dir: Path) -> None:
    """The bot's image has lockman installed: here, this checkout's lockman, first on PATH."""
    bin_dir.mkdir()
    shim = bin_dir / "lockman"
    shim.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "from lockman.launch import entry\nentry()\n"
    )
    shim.chmod(0o755)


def run_renovate(dist: Path, repo: Path, env: dict[str, str]) -> list[dict]:
    proc = subprocess.run(
        ["node", str(dist / "renovate.js")],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = []
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def _updates(record: dict) -> list[dict]:
    """Every update a "packageFiles with updates" record proposes."""
    return [
        u
        for files in record["config"].values()
        for f in files
        for d in f["deps"]
        for u in d.get("updates", [])
    ]


def post_upgrade_tasks(dist: Path, tasks: list[dict]) -> list[dict]:
    """Run ``tasks`` (command, upgrade, cwd, env) as Renovate does: see tests/support/renovate_task.cjs."""
    payload = {
        "allowedCommands": ADMIN["allowedCommands"],
        "allowCommandTemplating": ADMIN["allowCommandTemplating"],
        "tasks": tasks,
    }
    proc = subprocess.run(
        ["node", str(ROOT / "tests" / "support" / "renovate_task.cjs"), str(dist)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("RENOVATE-TASK-RESULT ")]
    return json.loads(line.partition(" ")[2])


def apply(path: Path, dep: dict, update: dict) -> None:
    """Renovate's regex-manager replacement: the matched string with the new value and digest."""
    old = dep["replaceString"]
    new = old.replace(f":{dep['currentValue']}", f":{update['newValue']}", 1)
    if dep.get("currentDigest"):
        new = new.replace(dep["currentDigest"], update["newDigest"])
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))


def bot_env_for(tmp_path: Path, home: Path, tls: TLSSetup, name: str) -> dict[str, str]:
    """The Renovate process's environment: local platform, lookup only, credentials as hostRules."""
    return {
        "HOME": str(home),
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "NO_PROXY": "127.0.0.1,localhost",
        **documented_ca_env(tls.ca_pem),
        "RENOVATE_PLATFORM": "local",
        "RENOVATE_DRY_RUN": "lookup",
        "RENOVATE_BASE_DIR": str(tmp_path / f"renovate-base-{name}"),
        "RENOVATE_HOST_RULES": json.dumps(
            [{"matchHost": f"https://{tls.registry.host}", "username": "alice", "password": PASSWORD}]
        ),
        "LOG_LEVEL": "debug",
        "LOG_FORMAT": "json",
    }


def test_renovate_preset_extracts_proposes_and_lockman_follows(
    tmp_path: Path, tls: TLSSetup, run, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = _renovate_dist()
    reg = tls.registry
    base = unique_repo("bot")
    reg.push_index(f"{base}/rust", "1.69", ["linux/amd64", "linux/arm64"], salt="69")
    reg.push_index(f"{base}/rust", "1.70", ["linux/amd64", "linux/arm64"], salt="70")
    rust71 = reg.push_index(f"{base}/rust", "1.71", ["linux/amd64", "linux/arm64"], salt="71")
    cross4 = reg.push_image(f"{base}/cross", "0.2.4", salt="4")
    cross5 = reg.push_image(f"{base}/cross", "0.2.5", salt="5")
    rust, cross = f"{reg.host}/{base}/rust", f"{reg.host}/{base}/cross"

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "xcargo.toml").write_text(
        '[targets]\ndefault = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]\n\n'
        f'[container]\nimage = "{rust}:1.70"\n\n'
        f'[targets."aarch64-unknown-linux-gnu".container]\nimage = "{cross}:0.2.4@{cross4.digest}"\n\n'
        f'[targets."armv7-unknown-linux-gnueabihf".container]\nimage = "{rust}:1.69"\n'
        f'# image = "{reg.host}/x$(touch pwned):1.0"\n'
    )
    # A directory name that would run a command if it reached the task's command line.
    hostile = repo / "$(touch pwned)"
    hostile.mkdir()
    (hostile / "xcargo.toml").write_text(f'[container]\nimage = "{rust}:1.70"\n')
    user_config = {k: v for k, v in PRESET.items() if k not in ("$schema", "description")}
    (repo / "renovate.json").write_text(json.dumps({"extends": ["config:best-practices"], **user_config}))

    # The developer's side: credentials in ~/.docker/config.json, the CA through SSL_CERT_FILE.
    docker_dir = isolated_env / ".docker"
    docker_dir.mkdir()
    auth = {"auths": {reg.host: {"username": "alice", "password": PASSWORD}}}
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_pem))
    cfg = repo / "xcargo.toml"
    (docker_dir / "config.json").write_text(json.dumps(auth))
    assert run("update", "--config", cfg).code == 0
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    locked = lockfile.loads((repo / "xcargo.lock").read_text()).by_key()
    # rust:1.69 moves: another branch's business, not the rust 1.70 → 1.71 bump's.
    reg.push_index(f"{base}/rust", "1.69", ["linux/amd64", "linux/arm64"], salt="69b")

    # The bot's process: Renovate's credentials are hostRules; the CA for node and for lockman.
    lockman_on_path(tmp_path / "bin")
    bot_env = bot_env_for(tmp_path, isolated_env, tls, "preset")
    # SSL_CERT_FILE alone (what the docs used to say) is not enough for Renovate on Node 20.
    only_ssl = {k: v for k, v in bot_env.items() if k != "NODE_EXTRA_CA_CERTS"}
    only_ssl["RENOVATE_BASE_DIR"] = str(tmp_path / "renovate-base-refused")  # its own cache
    refused = run_renovate(dist, repo, only_ssl)
    assert any("unable to verify the first certificate" in json.dumps(r) for r in refused)
    assert not [r for r in refused if r.get("msg") == "packageFiles with updates" and _updates(r)]
    records = run_renovate(dist, repo, bot_env)
    assert not [r for r in records if r.get("level", 0) >= 50], "Renovate logged errors"
    assert not any("validation" in r.get("msg", "").lower() and r.get("level", 0) >= 40 for r in records)
    (found,) = [r["config"] for r in records if r.get("msg") == "packageFiles with updates"]
    assert list(found) == ["regex"]
    (package_file,) = found["regex"]  # not "$(touch pwned)/xcargo.toml"
    assert package_file["packageFile"] == "xcargo.toml"
    all_deps = {(d["depName"], d["currentValue"]): d for d in package_file["deps"]}
    # not the comment's name with a command in it
    assert sorted(all_deps) == [(cross, "0.2.4"), (rust, "1.69"), (rust, "1.70")]
    deps = {name: d for (name, tag), d in all_deps.items() if tag != "1.69"}
    assert (deps[rust]["currentValue"], deps[rust].get("currentDigest")) == ("1.70", None)
    assert (deps[cross]["currentValue"], deps[cross]["currentDigest"]) == ("0.2.4", cross4.digest)
    # docker:pinDigests (config:best-practices) is scoped off: tag bumps only, no pin branches.
    (rust_up,) = deps[rust]["updates"]
    (cross_up,) = deps[cross]["updates"]
    assert (rust_up["updateType"], rust_up["newValue"], rust_up.get("newDigest")) == ("minor", "1.71", None)
    assert (cross_up["updateType"], cross_up["newValue"], cross_up["newDigest"]) == (
        "patch",
        "0.2.5",
        cross5.digest,
    )
    assert not (repo / "pwned").exists() and not (hostile / "pwned").exists()

    # Each proposal on its own branch, then the preset's postUpgradeTasks as Renovate runs them:
    # with credentials in ~/.docker/config.json of the bot's HOME (which Renovate passes on),
    # and once with them only under DOCKER_CONFIG (which it drops: lockman says where it looked).
    bare_home = tmp_path / "bare-home"
    bare_home.mkdir()
    (tmp_path / "docker-config").mkdir()
    (tmp_path / "docker-config" / "config.json").write_text(json.dumps(auth))
    without = {**bot_env, "HOME": str(bare_home), "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    # The admin's customEnvVariables do reach it.
    custom = {"DOCKER_CONFIG": str(tmp_path / "docker-config")}
    plan = [
        (deps[rust], rust_up, "nocreds", without, {}),
        (deps[rust], rust_up, "", bot_env, {}),
        (deps[cross], cross_up, "", bot_env, {}),
        (deps[cross], cross_up, "custom", {**bot_env, "HOME": str(bare_home)}, custom),
    ]
    tasks = []
    for dep, update, suffix, env, custom_env in plan:
        branch = tmp_path / (update["branchName"].replace("/", "_") + suffix)
        shutil.copytree(repo, branch)
        apply(branch / package_file["packageFile"], dep, update)
        upgrade = {**dep, **update, "packageFile": package_file["packageFile"]}
        tasks.append(
            {
                "command": TASK_COMMAND,
                "upgrade": upgrade,
                "cwd": str(branch),
                "env": env,
                "customEnvVariables": custom_env,
            }
        )
    # The admin's pattern allows exactly the preset's command: anything appended is refused unrun.
    tasks.append({**tasks[1], "command": f"{TASK_COMMAND}; touch pwned"})
    nocreds, rust_result, cross_result, custom_result, tampered = post_upgrade_tasks(dist, tasks)

    assert nocreds["allowed"] and nocreds["code"] == 3, nocreds
    assert nocreds["compiled"] == f"lockman update --config xcargo.toml {rust}:1.71"
    assert "looked in " in nocreds["stderr"]
    assert f"{bare_home / '.docker' / 'config.json'} (DOCKER_CONFIG unset)" in nocreds["stderr"]
    nocreds_lock = Path(tasks[0]["cwd"]) / "xcargo.lock"
    assert lockfile.loads(nocreds_lock.read_text()).by_key() == locked  # untouched
    assert tampered == {"allowed": False}
    assert not (Path(tasks[-1]["cwd"]) / "pwned").exists()

    checks = [
        (rust_result, rust, tasks[1]),
        (cross_result, cross, tasks[2]),
        (custom_result, cross, tasks[3]),
    ]
    for result, changed, task in checks:
        assert result["code"] == 0, result
        bumped = task["upgrade"]["currentValue"], task["upgrade"]["newValue"]
        assert result["compiled"] == f"lockman update --config xcargo.toml {changed}:{bumped[1]}"
        branch = Path(task["cwd"])
        after = lockfile.loads((branch / "xcargo.lock").read_text()).by_key()
        # Only this name:tag moved: not another image, not another tag of this one (rust:1.69).
        untouched = {k: v for k, v in locked.items() if k not in {(changed, t) for t in bumped}}
        assert {k: v for k, v in after.items() if k not in {(changed, t) for t in bumped}} == untouched
        assert run("verify", "--config", branch / "xcargo.toml").code == 0
    after = lockfile.loads((Path(tasks[1]["cwd"]) / "xcargo.lock").read_text()).by_key()
    assert sorted(k for k in after if k[0] == rust) == [(rust, "1.69"), (rust, "1.71")]  # 1.70 is gone
    assert after[(rust, "1.71")].digest == rust71.digest
    after = lockfile.loads((Path(tasks[2]["cwd"]) / "xcargo.lock").read_text()).by_key()
    assert after[(cross, "0.2.5")].digest == cross5.digest and after[(cross, "0.2.5")].pinned


def test_renovate_dockerfile_compose_workflow_bumps_keep_the_lock_current(
    tmp_path: Path, tls: TLSSetup, run, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Renovate's dockerfile, docker-compose and github-actions managers move digests lockman also
    locks: the preset's task for them rewrites xcargo.lock for exactly that image on the bot's
    branch, so ``lockman verify`` passes there (it failed: lockman fought the bot)."""
    dist = _renovate_dist()
    reg = tls.registry
    base = unique_repo("mgr")
    old = reg.push_index(f"{base}/rust", "1.70", ["linux/amd64", "linux/arm64"], salt="old")
    pg = reg.push_image(f"{base}/pg", "16", salt="pg")
    reg.push_image(f"{base}/tool", "1", salt="tool")
    rust, pgname, toolname = (f"{reg.host}/{base}/{n}" for n in ("rust", "pg", "tool"))
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / "xcargo.toml").write_text("")
    (repo / "Dockerfile").write_text(f"FROM {rust}:1.70@{old.digest} AS build\nRUN true\n")
    (repo / "compose.yaml").write_text(f"services:\n  db:\n    image: {pgname}:16@{pg.digest}\n")
    (repo / ".github" / "workflows" / "ci.yml").write_text(
        f"on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    container: {toolname}:1\n"
        "    steps:\n      - run: true\n"
    )
    user_config = {k: v for k, v in PRESET.items() if k not in ("$schema", "description")}
    (repo / "renovate.json").write_text(json.dumps({"extends": ["config:best-practices"], **user_config}))
    docker_dir = isolated_env / ".docker"
    docker_dir.mkdir()
    (docker_dir / "config.json").write_text(
        json.dumps({"auths": {reg.host: {"username": "alice", "password": PASSWORD}}})
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_pem))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    assert run("update", "--config", repo / "xcargo.toml").code == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "lock")
    locked = lockfile.loads((repo / "xcargo.lock").read_text()).by_key()
    assert locked[(rust, "1.70")].digest == old.digest
    # Every tag moves and rust:1.71 appears: Renovate's own managers propose a digest update
    # (rust:1.70, pg:16), a tag bump with its digest (rust 1.70 → 1.71) and a digest pin of the
    # workflow's unpinned container (config:best-practices), each on its own branch.
    new = reg.push_index(f"{base}/rust", "1.70", ["linux/amd64", "linux/arm64"], salt="new")
    rust71 = reg.push_index(f"{base}/rust", "1.71", ["linux/amd64", "linux/arm64"], salt="71")
    pg2 = reg.push_image(f"{base}/pg", "16", salt="pg2")
    tool2 = reg.push_image(f"{base}/tool", "1", salt="tool2")

    lockman_on_path(tmp_path / "bin")
    bot_env = bot_env_for(tmp_path, isolated_env, tls, "mgr")
    records = run_renovate(dist, repo, bot_env)
    assert not [r for r in records if r.get("level", 0) >= 50], "Renovate logged errors"
    (found,) = [r["config"] for r in records if r.get("msg") == "packageFiles with updates"]
    assert sorted(found) == ["docker-compose", "dockerfile", "github-actions"]
    proposals = [
        (manager, f["packageFile"], d, u)
        for manager, files in found.items()
        for f in files
        for d in f["deps"]
        for u in d.get("updates", [])
    ]
    assert sorted((d["depName"], u["updateType"], u["newValue"], u["newDigest"]) for _, _, d, u in proposals) == sorted(
        [
            (pgname, "digest", "16", pg2.digest),
            (rust, "digest", "1.70", new.digest),
            (rust, "minor", "1.71", rust71.digest),
            (toolname, "pinDigest", "1", tool2.digest),
        ]
    )
    for i, (manager, package_file, dep, update) in enumerate(proposals):
        branch = tmp_path / f"branch-{i}-{manager}"
        shutil.copytree(repo, branch)
        path = branch / package_file
        # Renovate's autoReplace: the reference with the new tag and digest (or the digest added).
        old_ref = dep["replaceString"]
        new_ref = old_ref.replace(f":{dep['currentValue']}", f":{update['newValue']}", 1)
        if dep.get("currentDigest"):
            new_ref = new_ref.replace(dep["currentDigest"], update["newDigest"])
        else:
            new_ref += f"@{update['newDigest']}"
        assert path.read_text().count(old_ref) == 1
        path.write_text(path.read_text().replace(old_ref, new_ref))
        # Without the task, the branch fails verify: the lock still names the old digest (or,
        # for the pin, none: the file pins a digest the lock does not have).
        stale = run("verify", "--config", branch / "xcargo.toml")
        assert stale.code == 1, (update, stale.out, stale.err)
        upgrade = {**dep, **update, "manager": manager, "packageFile": package_file}
        (result,) = post_upgrade_tasks(
            dist,
            [{"packageRules": PRESET["packageRules"], "upgrade": upgrade, "cwd": str(branch), "env": bot_env}],
        )
        assert result.get("code") == 0, result
        assert result["compiled"] == f"lockman update --config xcargo.toml {dep['depName']}:{update['newValue']}"
        assert run("verify", "--config", branch / "xcargo.toml").code == 0
        after = lockfile.loads((branch / "xcargo.lock").read_text()).by_key()
        key, gone = (dep["depName"], update["newValue"]), (dep["depName"], dep["currentValue"])
        assert after[key].digest == update["newDigest"] and after[key].pinned
        # Only this image moved; the tag bumped away from is gone from the lock.
        assert {k: v for k, v in after.items() if k != key} == {
            k: v for k, v in locked.items() if k not in (key, gone)
        }

    # The rule is for docker dependencies with shell-safe names only: an action's bump, or a name
    # that would run a command, gets no task (and the admin's pattern refuses anything appended).
    hostile = [
        {"manager": "github-actions", "datasource": "github-tags", "depName": "actions/checkout", "newValue": "v4.2.0"},
        {"manager": "dockerfile", "datasource": "docker", "depName": "x$(touch pwned)", "newValue": "1"},
        {"manager": "dockerfile", "datasource": "docker", "depName": "x", "newValue": "1;touch pwned"},
        {"manager": "regex", "datasource": "docker", "depName": "x", "newValue": "1"},
    ]
    tasks = [
        {"packageRules": PRESET["packageRules"], "upgrade": u, "cwd": str(repo), "env": bot_env} for u in hostile
    ]
    tasks.append({"command": "lockman update --config xcargo.toml {{{depName}}}:{{{newValue}}}; touch pwned",
                  "upgrade": hostile[1], "cwd": str(repo), "env": bot_env})
    results = post_upgrade_tasks(dist, tasks)
    assert results == [{"commands": []}] * 4 + [{"allowed": False}]
    assert not (repo / "pwned").exists()


def test_preset_passes_renovate_config_validator() -> None:
    dist = _renovate_dist()
    proc = subprocess.run(
        ["node", str(dist / "config-validator.js"), "--strict", str(ROOT / "renovate" / "xcargo.json")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LOG_LEVEL": "info"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Config validated successfully" in proc.stdout + proc.stderr



@pytest.fixture(scope="module")
def preset_url() -> Iterator[str]:
    """renovate/xcargo.json served over loopback HTTP, as Renovate's ``https://…`` presets are."""
    body = (ROOT / "renovate" / "xcargo.json").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/xcargo.json" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/xcargo.json"
    server.shutdown()
    thread.join()


@pytest.mark.parametrize("preset_first", [False, True])
def test_preset_wins_wherever_it_is_listed_in_extends(
    tmp_path: Path, tls: TLSSetup, isolated_env: Path, preset_url: str, preset_first: bool
) -> None:
    """``docker:pinDigests`` (in ``config:best-practices``) listed after the preset must not bring
    back the pin-digest branches lockman's lock makes pointless ("Digest is not updated")."""
    dist = _renovate_dist()
    reg = tls.registry
    base = unique_repo("order")
    reg.push_image(f"{base}/rust", "1.70", salt="o70")
    reg.push_image(f"{base}/rust", "1.71", salt="o71")
    rust = f"{reg.host}/{base}/rust"
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "xcargo.toml").write_text(f'[container]\nimage = "{rust}:1.70"\n')
    extends = [preset_url, "config:best-practices"] if preset_first else ["config:best-practices", preset_url]
    (repo / "renovate.json").write_text(json.dumps({"extends": extends}))
    env = bot_env_for(tmp_path, isolated_env, tls, "order")
    records = run_renovate(dist, repo, env)
    assert not [r for r in records if r.get("level", 0) >= 50], "Renovate logged errors"
    (found,) = [r for r in records if r.get("msg") == "packageFiles with updates"]
    updates = _updates(found)
    assert [u["newValue"] for u in updates if u["updateType"] == "minor"] == ["1.71"]
    # The lookup may still list a pinDigest candidate (docker:pinDigests came later and won)...
    assert {u["updateType"] for u in updates} <= {"minor", "pinDigest"}
    # ... but only the tag bump becomes a branch.
    branches = [r["msg"] for r in records if re.fullmatch(r"Returning \d+ branch\(es\)", r.get("msg", ""))]
    assert branches == ["Returning 1 branch(es)"]
    flattened = [r["msg"] for r in records if "flattened updates found" in r.get("msg", "")]
    assert flattened == [f"1 flattened updates found: {rust}"]


@pytest.fixture
def fake_github(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback stand-in for GitHub's contents API over a real git repository holding lockman's
    published files: ``GET /repos/<owner>/lockman/contents/<path>?ref=REF`` answers what git
    resolves REF to (a commit, a tag, a branch), 404 for a name the repository lacks."""
    repo = tmp_path / "lockman-repo"
    repo.mkdir()
    for name in ("renovate/xcargo.json", "action.yml", ".pre-commit-hooks.yaml"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, repo / name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "lockman")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            ref = urllib.parse.parse_qs(url.query).get("ref", ["HEAD"])[0]
            prefix = "/repos/acme/lockman/contents/"
            found = url.path.startswith(prefix) and subprocess.run(
                ["git", "-C", str(repo), "cat-file", "-e", f"{ref}:{url.path.removeprefix(prefix)}"],
                capture_output=True,
            ).returncode == 0
            if found:
                blob = git(repo, "show", f"{ref}:{url.path.removeprefix(prefix)}")
                body = json.dumps({"content": base64.b64encode(blob.encode()).decode(), "encoding": "base64"})
            else:
                body = json.dumps({"message": f"No commit found for the ref {ref}"})
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", repo
    server.shutdown()
    thread.join()


def resolve_preset(dist: Path, preset: str, endpoint: str) -> dict:
    proc = subprocess.run(
        ["node", str(ROOT / "tests" / "support" / "renovate_preset.cjs"), str(dist)],
        input=json.dumps({"preset": preset, "endpoint": endpoint}),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LOG_LEVEL": "fatal"},
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("RENOVATE-PRESET-RESULT ")]
    return json.loads(line.partition(" ")[2])


def test_the_documented_lockman_references_resolve(fake_github: tuple[str, Path]) -> None:
    """What docs/integrations.md tells users to write for pre-commit, the Action and the preset
    names something the repository has (it named a tag, v0.1.0, that was never pushed)."""
    dist = _renovate_dist()
    endpoint, repo = fake_github
    sha = git(repo, "rev-parse", "HEAD").strip()
    page = (ROOT / "docs" / "integrations.md").read_text()
    (rev,) = set(re.findall(r"^\s*rev: (\S+)", page, re.M))
    uses = set(re.findall(r"uses: <owner>/lockman@(\S+)", page))
    (preset,) = set(re.findall(r'"(github><owner>/lockman//[^"]+)"', page))
    refs = {rev, *uses, preset.rpartition("#")[2]}
    assert refs == {"<commit>"}, refs  # one placeholder, explained in "Pinning lockman"
    # Every vX.Y.Z the docs or the action name is a tag of this checkout (none is, so far).
    tags = set(git(ROOT, "tag", "--list").split())
    texts = [page, (ROOT / "action.yml").read_text(), (ROOT / "README.md").read_text()]
    assert {v for t in texts for v in re.findall(r"[@#]v\d+\.\d+\.\d+\b|rev: v\S+", t)} <= tags

    # pre-commit and the Action: git checks the commit out.
    clone = repo.parent / "clone"
    git(repo.parent, "clone", "-q", str(repo), str(clone))
    git(clone, "checkout", "-q", rev.replace("<commit>", sha))
    assert (clone / "action.yml").read_bytes() == (ROOT / "action.yml").read_bytes()
    # The preset: Renovate's own parser and fetch code, against the contents API stand-in.
    filled = preset.replace("<owner>", "acme").replace("<commit>", sha)
    result = resolve_preset(dist, filled, endpoint)
    assert result["parsed"]["tag"] == sha and result["parsed"]["presetPath"] == "renovate"
    assert result.get("preset") == json.loads((ROOT / "renovate" / "xcargo.json").read_text()), result
    # A name the repository lacks stops Renovate, as the old v0.1.0 did.
    missing_tag = resolve_preset(dist, filled.replace(sha, "v0.1.0"), endpoint)
    assert missing_tag["error"] == "dep not found", missing_tag
