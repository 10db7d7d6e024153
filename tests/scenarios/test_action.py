"""action.yml, the composite GitHub Action: its steps' commands, run as a runner runs them.

A small runner does what GitHub's does for a composite action's bash steps: evaluates each
``if:`` (the ``==`` / ``&&`` forms the action uses), expands ``${{ inputs.* }}`` and
``${{ steps.*.outputs.* }}`` in ``env:`` only, runs ``run:`` with ``bash --noprofile --norc -eo
pipefail``, and honours GITHUB_OUTPUT and GITHUB_PATH. lockman is installed by the action's own
step (from this checkout, through ``package``); ``git push`` goes to a local bare remote, and
``gh`` is a recorder, as GitHub is out of reach.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from lockman.model import lockfile
from tests.support.fake_github import fake_github
from tests.support.fixtures import unique_repo
from tests.support.paths import ROOT
from tests.support.project import git
from tests.support.registry import Registry

ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
EXPR = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


@dataclass
class Runner:
    workspace: Path
    temp: Path
    env: dict[str, str]
    path: list[str] = field(default_factory=list)  # GITHUB_PATH additions, newest first
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    # The ``github`` context: the event's values a test sets (base_ref, head_ref, ...).
    github: dict[str, str] = field(default_factory=dict)

    def value(self, expr: str, inputs: dict[str, str]) -> str:
        if expr.startswith("inputs."):
            return inputs[expr.removeprefix("inputs.")]
        if expr.startswith("steps."):
            step, _, name = expr.removeprefix("steps.").partition(".outputs.")
            return self.outputs.get(step, {}).get(name, "")
        if expr == "github.token":
            return "token-for-tests"
        if expr == "github.action_path":
            return str(ROOT)
        if expr.startswith("github."):
            return self.github.get(expr.removeprefix("github."), "")
        if expr.startswith("'") and expr.endswith("'"):
            return expr[1:-1]
        raise AssertionError(f"action.yml uses an expression this runner does not know: {expr}")

    def condition(self, cond: str, inputs: dict[str, str]) -> bool:
        for clause in cond.split("&&"):
            left, _, right = (s.strip() for s in clause.partition("=="))
            if self.value(left, inputs) != self.value(right, inputs):
                return False
        return True

    def run(self, given: dict[str, str], *, skip: tuple[str, ...] = ()) -> int:
        """Every step of the action with ``given`` inputs; the first failing step's exit code."""
        inputs = {k: str(v.get("default", "")) for k, v in ACTION["inputs"].items()}
        inputs = {k: EXPR.sub(lambda m: self.value(m.group(1), {}), v) for k, v in inputs.items()}
        inputs.update(given)
        for step in ACTION["runs"]["steps"]:
            if step["name"] in skip or ("if" in step and not self.condition(step["if"], inputs)):
                continue
            self.ran.append(step["name"])
            out = self.temp / f"output-{len(self.ran)}"
            out.touch()
            env = {
                k: EXPR.sub(lambda m: self.value(m.group(1), inputs), str(v))
                for k, v in step.get("env", {}).items()
            }
            path_file = self.temp / "github-path"
            env = {
                **self.env,
                "PATH": os.pathsep.join([*self.path, self.env["PATH"]]),
                "RUNNER_TEMP": str(self.temp),
                "GITHUB_OUTPUT": str(out),
                "GITHUB_PATH": str(path_file),
                **env,
            }
            script = self.temp / "step.sh"
            script.write_text(step["run"])
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                cwd=self.workspace,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            self.log = proc.stdout + proc.stderr
            if path_file.exists():
                self.path = [*reversed(path_file.read_text().split()), *self.path]
                path_file.unlink()
            if "id" in step:
                lines = out.read_text().splitlines()
                self.outputs[step["id"]] = dict(ln.split("=", 1) for ln in lines)
            if proc.returncode != 0:
                return proc.returncode
        return 0


def test_no_input_is_pasted_into_a_script() -> None:
    """Inputs reach the shell through env only: ``${{ }}`` in ``run:`` would be script injection."""
    for step in ACTION["runs"]["steps"]:
        assert "${{" not in step["run"], step["name"]
    assert ACTION["runs"]["using"] == "composite"
    assert ACTION["inputs"]["version"]["default"] == __import__("lockman").__version__


def _checkout(tmp_path: Path, config: str, run) -> tuple[Path, Path]:
    """A repository with ``config`` locked and pushed to a bare origin: (origin, work tree)."""
    origin, work = tmp_path / "origin.git", tmp_path / "work"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    cfg = work / "xcargo.toml"
    cfg.write_text(config)
    assert run("update", "--config", cfg).code == 0
    git(work, "add", "-A")
    git(work, "commit", "-qm", "init")
    git(work, "remote", "add", "origin", str(origin))
    git(work, "push", "-q", "origin", "main")
    return origin, work


def _runner(tmp_path: Path, work: Path) -> tuple[Runner, Path]:
    """A runner whose ``gh`` records its arguments (and the body file) in the returned log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh_log = tmp_path / "gh.log"
    (bin_dir / "gh").write_text(
        '#!/bin/sh\nprintf "%s\\n" "GH_TOKEN=$GH_TOKEN" "$@" >> "$GH_LOG"\n'
        'while [ $# -gt 0 ]; do [ "$1" = --body-file ] && cp "$2" "$GH_LOG.body"; shift; done\n'
    )
    (bin_dir / "gh").chmod(0o755)
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GH_LOG": str(gh_log)}
    env.pop("PYTHONPATH", None)  # lockman comes from the action's virtual environment
    return Runner(work, temp, env), gh_log


@pytest.mark.registry
def test_action_verifies_then_opens_an_update_pull_request(
    tmp_path: Path, registry: Registry, run, isolated_env: Path
) -> None:
    repo = unique_repo("action")
    registry.push_index(repo, "1.70", ["linux/amd64", "linux/arm64"], salt="1")
    origin, work = _checkout(tmp_path, f'[container]\nimage = "{registry.host}/{repo}:1.70"\n', run)
    runner, gh_log = _runner(tmp_path, work)
    temp = runner.temp

    # verify on push: the action installs lockman (here: this checkout) and verifies.
    assert runner.run({"command": "verify", "package": str(ROOT)}) == 0, runner.log
    assert runner.ran == ["Install lockman", "lockman verify"]
    assert runner.path == [str(temp / "lockman-venv" / "bin")]
    assert (temp / "lockman-venv" / "bin" / "lockman").exists()

    # A failing verify fails the step (and so the job).
    lock = work / "xcargo.lock"
    good = lock.read_text()
    lock.write_text(good.replace("1.70", "1.69", 1))
    assert runner.run({"command": "verify"}, skip=("Install lockman",)) == 1
    lock.write_text(good)

    # Nothing moved: no pull request.
    runner.ran.clear()
    assert runner.run({"command": "update", "open-pr": "true"}, skip=("Install lockman",)) == 0, runner.log
    assert runner.ran == ["lockman update"]
    assert runner.outputs["update"]["changed"] == "false" and not gh_log.exists()

    # The tag moves: the scheduled update commits the lock on a branch and opens a pull request.
    moved = registry.push_index(repo, "1.70", ["linux/amd64", "linux/arm64"], salt="2")
    runner.ran.clear()
    assert runner.run({"command": "update", "open-pr": "true"}, skip=("Install lockman",)) == 0, runner.log
    assert runner.ran == ["lockman update", "Open a pull request"]
    outputs = runner.outputs["update"]
    assert outputs["changed"] == "true"
    message = Path(outputs["message-file"]).read_text()
    assert outputs["title"] == message.splitlines()[0] and repo.rsplit("/", 1)[1] in outputs["title"]
    assert git(origin, "log", "-1", "--format=%B", "lockman/update").strip() == message.strip()
    pushed = git(origin, "show", "lockman/update:xcargo.lock")
    assert lockfile.loads(pushed).images[0].digest == moved.digest
    gh_args = gh_log.read_text().splitlines()
    assert gh_args[:7] == [
        "GH_TOKEN=token-for-tests",
        "pr",
        "create",
        "--head",
        "lockman/update",
        "--title",
        outputs["title"],
    ]
    body = (tmp_path / "gh.log.body").read_text()
    assert body == Path(outputs["body-file"]).read_text() and f"→ `{moved.digest[7:14]}`" in body


@pytest.mark.registry
def test_action_repin_pull_request_commits_the_config_with_the_lock(
    tmp_path: Path, registry: Registry, run, isolated_env: Path
) -> None:
    """``args: --repin`` moves a pin in xcargo.toml and the lock together: the branch gets both,
    and ``verify`` passes on what was pushed (it failed when only the lock was committed)."""
    repo = unique_repo("actrepin")
    one = registry.push_image(repo, "v1", salt="1")
    name = f"{registry.host}/{repo}"
    sub = "nested dir"  # the config away from the repository root, in a path with a space
    origin, work = _checkout(tmp_path, "", run)
    (work / sub).mkdir()
    cfg = work / sub / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{name}:v1@{one.digest}"\n')
    assert run("update", "--config", cfg).code == 0
    git(work, "add", "-A")
    git(work, "commit", "-qm", "nested")
    runner, gh_log = _runner(tmp_path, work)
    assert runner.run({"command": "verify", "package": str(ROOT), "config": f"{sub}/xcargo.toml"}) == 0

    two = registry.push_image(repo, "v1", salt="2")
    given = {"command": "update", "open-pr": "true", "args": "--repin", "config": f"{sub}/xcargo.toml"}
    assert runner.run(given, skip=("Install lockman",)) == 0, runner.log
    assert runner.outputs["update"]["changed"] == "true"
    changed = Path(runner.outputs["update"]["changed-files"]).read_text().split("\0")
    assert sorted(filter(None, changed)) == [f"{sub}/xcargo.lock", f"{sub}/xcargo.toml"]
    files = git(origin, "show", "--name-only", "--format=", "lockman/update").split()
    assert " ".join(files) == f"{sub}/xcargo.lock {sub}/xcargo.toml"
    assert f"{name}:v1@{two.digest}" in git(origin, "show", f"lockman/update:{sub}/xcargo.toml")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-b", "lockman/update", str(origin), str(clone))
    assert run("verify", "--config", clone / sub / "xcargo.toml").code == 0
    assert git(work, "status", "--porcelain") == ""  # nothing left behind uncommitted
    assert "pr\ncreate" in gh_log.read_text()


@pytest.mark.registry
def test_action_repin_commits_a_dockerfile_with_the_lock(
    tmp_path: Path, registry: Registry, run, isolated_env: Path
) -> None:
    """The images lockman finds in a Dockerfile: ``--repin`` moves the pin written there, and the
    update branch carries that Dockerfile with the lock, so ``verify`` passes on what was pushed."""
    repo = unique_repo("actdocker")
    one = registry.push_image(repo, "v1", salt="1")
    name = f"{registry.host}/{repo}"
    origin, work = _checkout(tmp_path, "", run)
    (work / "docker").mkdir()
    (work / "docker" / "Dockerfile").write_text(f"# base\nFROM {name}:v1@{one.digest} AS build\nRUN true\n")
    git(work, "add", "-A")
    assert run("update", "--config", work / "xcargo.toml").code == 0
    git(work, "add", "-A")
    git(work, "commit", "-qm", "dockerfile")
    runner, gh_log = _runner(tmp_path, work)
    assert runner.run({"command": "verify", "package": str(ROOT)}) == 0, runner.log

    two = registry.push_image(repo, "v1", salt="2")
    assert runner.run({"command": "update", "open-pr": "true", "args": "--repin"}, skip=("Install lockman",)) == 0
    assert runner.outputs["update"]["changed"] == "true", runner.log
    changed = Path(runner.outputs["update"]["changed-files"]).read_text().split("\0")
    assert sorted(filter(None, changed)) == ["docker/Dockerfile", "xcargo.lock"]
    files = git(origin, "show", "--name-only", "--format=", "lockman/update").split()
    assert files == ["docker/Dockerfile", "xcargo.lock"]
    dockerfile = git(origin, "show", "lockman/update:docker/Dockerfile")
    assert dockerfile == f"# base\nFROM {name}:v1@{two.digest} AS build\nRUN true\n"
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-b", "lockman/update", str(origin), str(clone))
    assert run("verify", "--config", clone / "xcargo.toml").code == 0
    assert lockfile.read(clone / "xcargo.lock").images[0].digest == two.digest
    assert git(work, "status", "--porcelain") == ""
    assert "pr\ncreate" in gh_log.read_text()


@pytest.mark.registry
def test_action_update_refreshes_the_rest_of_a_file_a_renovate_branch_left_split(
    tmp_path: Path, registry: Registry, run, isolated_env: Path
) -> None:
    """A pin Renovate bumped at one key while the same name:tag is bare at another: the scheduled
    update leaves it to the branch and still opens a pull request for every other image."""
    repo = unique_repo("actsplit")
    x = registry.push_image(f"{repo}/rust", "1.71", salt="x")
    registry.push_image(f"{repo}/tool", "1", salt="t1")
    rust, tool = f"{registry.host}/{repo}/rust", f"{registry.host}/{repo}/tool"
    origin, work = _checkout(
        tmp_path,
        f'[container]\nimage = "{rust}:1.71@{x.digest}"\n\n'
        f'[targets."aarch64-unknown-linux-gnu".container]\nimage = "{rust}:1.71"\n\n'
        f'[targets."armv7-unknown-linux-gnueabihf".container]\nimage = "{tool}:1"\n',
        run,
    )
    registry.push_image(f"{repo}/rust", "1.71", salt="y")
    t2 = registry.push_image(f"{repo}/tool", "1", salt="t2")
    runner, gh_log = _runner(tmp_path, work)
    given = {"command": "update", "open-pr": "true", "package": str(ROOT)}
    assert runner.run(given) == 0, runner.log  # exit 2 before: no image refreshed at all
    assert runner.ran[-1] == "Open a pull request" and "pr\ncreate" in gh_log.read_text()
    pushed = lockfile.loads(git(origin, "show", "lockman/update:xcargo.lock")).by_key()
    assert pushed[(tool, "1")].digest == t2.digest and pushed[(rust, "1.71")].digest == x.digest
    assert runner.outputs["update"]["title"] == f"chore(deps): update {tool}:1 digest to {t2.digest[7:14]}"


def _review_runner(tmp_path: Path, work: Path, api: str, pr: str, branch: str) -> Runner:
    runner, _ = _runner(tmp_path, work)
    runner.env.update({"GITHUB_API_URL": api, "GITHUB_REPOSITORY": "acme/app"})
    runner.github.update({"base_ref": "main", "head_ref": branch, "event.pull_request.number": pr})
    return runner


@pytest.mark.registry
def test_action_review_keeps_one_comment_with_the_bump_and_relocks_for_the_hosted_app(
    tmp_path: Path, registry: Registry, run, isolated_env: Path
) -> None:
    """A bot's pull request: the lock's change against the base, as a Markdown comment with the
    bump (``1.70 → 1.71``) and what changed inside, one comment edited on each push, nothing
    posted when the lock does not change; with ``relock`` (the hosted Renovate app, which runs no
    postUpgradeTasks) the branch first gets one commit with the lock for exactly what changed."""
    repo = unique_repo("review")
    registry.push_image(f"{repo}/rust", "1.70", salt="70")
    r71 = registry.push_image(f"{repo}/rust", "1.71", salt="71")
    registry.push_image(f"{repo}/tool", "1", salt="t1")
    rust, tool = f"{registry.host}/{repo}/rust", f"{registry.host}/{repo}/tool"
    config = (
        f'[container]\nimage = "{rust}:1.70"\n\n'
        f'[targets."aarch64-unknown-linux-gnu".container]\nimage = "{tool}:1"\n'
    )
    origin, work = _checkout(tmp_path, config, run)
    registry.push_image(f"{repo}/tool", "1", salt="t2")  # not this branch's business

    # The hosted app's branch: xcargo.toml bumped, the lock as on main.
    git(work, "switch", "-q", "-c", "renovate/rust-1.x")
    (work / "xcargo.toml").write_text(config.replace(":1.70", ":1.71"))
    git(work, "commit", "-qam", "chore(deps): update rust docker tag to v1.71")
    git(work, "push", "-q", "origin", "renovate/rust-1.x")
    pushed_before = git(origin, "rev-parse", "renovate/rust-1.x").strip()
    with fake_github("token-for-tests") as gh:
        runner = _review_runner(tmp_path, work, gh.url, "7", "renovate/rust-1.x")
        given = {"command": "review", "relock": "true", "package": str(ROOT)}
        assert runner.run(given) == 0, runner.log
        assert runner.ran == ["Install lockman", "Re-lock the pull request's branch", "Comment on the pull request"]
        # One commit on the branch, the lock only, for rust alone (tool's moved tag stays).
        log = git(origin, "log", "--format=%s", f"{pushed_before}..renovate/rust-1.x").splitlines()
        assert log == [f"chore(deps): update {rust} from 1.70 to 1.71 ({r71.digest[7:14]})"]
        files = git(origin, "show", "--name-only", "--format=", "renovate/rust-1.x").split()
        assert files == ["xcargo.lock"]
        lock = lockfile.loads(git(origin, "show", "renovate/rust-1.x:xcargo.lock")).by_key()
        assert sorted(lock) == [(rust, "1.71"), (tool, "1")] and lock[(rust, "1.71")].digest == r71.digest
        on_main = lockfile.loads(git(origin, "show", "main:xcargo.lock")).by_key()
        assert lock[(tool, "1")] == on_main[(tool, "1")]
        clone = tmp_path / "clone"
        git(tmp_path, "clone", "-q", "-b", "renovate/rust-1.x", str(origin), str(clone))
        assert run("verify", "--offline", "--config", clone / "xcargo.toml").code == 0
        (comment,) = gh.on(7)
        assert comment.startswith("<!-- lockman:report -->\n")
        assert "| 1.70 → 1.71 |" in comment and f"`{r71.digest[7:14]}`" in comment
        assert "### What changed" in comment  # --insight

        # Another push (the run again): no new commit, the same comment edited, not a second.
        head = git(origin, "rev-parse", "renovate/rust-1.x").strip()
        assert runner.run(given, skip=("Install lockman",)) == 0, runner.log
        assert git(origin, "rev-parse", "renovate/rust-1.x").strip() == head
        assert gh.on(7) == [comment]
        assert [m for m, _ in gh.requests].count("POST") == 1
        assert ("PATCH", "/repos/acme/app/issues/comments/1001") in gh.requests

        # A pull request that leaves the lock as on main: nothing posted.
        git(work, "switch", "-q", "-c", "docs-only", "main")
        (tmp_path / "docs").mkdir()
        runner = _review_runner(tmp_path / "docs", work, gh.url, "8", "docs-only")
        assert runner.run({"command": "review", "package": str(ROOT)}) == 0, runner.log
        assert gh.on(8) == []

        # A wrong token: the step fails (the job goes red), nothing is posted.
        gh.token = "another"
        git(work, "switch", "-q", "renovate/rust-1.x")
        assert runner.run({"command": "review", "pr": "9"}, skip=("Install lockman",)) != 0
        assert gh.on(9) == []


@pytest.mark.registry
def test_action_review_relocks_a_dockerfile_bump_of_the_hosted_app(
    tmp_path: Path, registry: Registry, run, isolated_env: Path
) -> None:
    """The hosted app's dockerfile manager bumps a digest in a Dockerfile (xcargo.toml as on the
    base): relock still locks exactly that image, so verify passes on the branch."""
    repo = unique_repo("reviewdf")
    old = registry.push_image(f"{repo}/rust", "1.70", salt="70")
    registry.push_image(f"{repo}/tool", "1", salt="t1")
    rust, tool = f"{registry.host}/{repo}/rust", f"{registry.host}/{repo}/tool"
    origin, work = _checkout(tmp_path, "", run)
    (work / "Dockerfile").write_text(f"FROM {rust}:1.70@{old.digest}\nCOPY --from={tool}:1 /x /x\n")
    git(work, "add", "-A")
    assert run("update", "--config", work / "xcargo.toml").code == 0
    git(work, "add", "-A")
    git(work, "commit", "-qm", "dockerfile")
    git(work, "push", "-q", "origin", "main")
    new = registry.push_image(f"{repo}/rust", "1.70", salt="70b")
    registry.push_image(f"{repo}/tool", "1", salt="t2")  # not this branch's business

    git(work, "switch", "-q", "-c", "renovate/rust")
    (work / "Dockerfile").write_text((work / "Dockerfile").read_text().replace(old.digest, new.digest))
    git(work, "commit", "-qam", "chore(deps): update rust docker digest")
    git(work, "push", "-q", "origin", "renovate/rust")
    pushed_before = git(origin, "rev-parse", "renovate/rust").strip()
    with fake_github("token-for-tests") as gh:
        runner = _review_runner(tmp_path, work, gh.url, "7", "renovate/rust")
        assert runner.run({"command": "review", "relock": "true", "package": str(ROOT)}) == 0, runner.log
        log = git(origin, "log", "--format=%s", f"{pushed_before}..renovate/rust").splitlines()
        assert len(log) == 1, runner.log
        assert git(origin, "show", "--name-only", "--format=", "renovate/rust").split() == ["xcargo.lock"]
        lock = lockfile.loads(git(origin, "show", "renovate/rust:xcargo.lock")).by_key()
        on_main = lockfile.loads(git(origin, "show", "main:xcargo.lock")).by_key()
        assert lock[(rust, "1.70")].digest == new.digest and lock[(tool, "1")] == on_main[(tool, "1")]
        clone = tmp_path / "clone"
        git(tmp_path, "clone", "-q", "-b", "renovate/rust", str(origin), str(clone))
        assert run("verify", "--offline", "--config", clone / "xcargo.toml").code == 0


def test_docs_show_the_shipped_renovate_files() -> None:
    """The admin config and pinned versions the docs print are the ones the tests use."""
    import json

    integrations = (ROOT / "docs" / "integrations.md").read_text()
    admin = json.loads((ROOT / "renovate" / "self-hosted.json").read_text())
    block = re.search(r'```json\n(\{\n  "allowedCommands".*?\n\})\n```', integrations, re.S)
    assert block is not None
    assert json.loads(block.group(1)) == {k: admin[k] for k in ("allowedCommands", "allowCommandTemplating")}
    version = __import__("lockman").__version__
    readme = (ROOT / "README.md").read_text()
    assert f"xcargo-lockman=={version}" in readme and "pip install lockman\n" not in readme
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
    for line in "\n".join(page.read_text() for page in pages).splitlines():
        for package in re.findall(r"\b(?:pip|pipx|uv tool) install ([^\s`]+)", line):
            if package == "lockman":  # PyPI's lockman is an unrelated library
                assert "unrelated" in line, line
            elif package.startswith("xcargo-lockman"):
                assert package == f"xcargo-lockman=={version}", line


@pytest.mark.registry
def test_action_pull_request_title_says_how_many_known_vulnerabilities_it_fixes(
    tmp_path: Path, registry: Registry, run, isolated_env: Path, osv_server
) -> None:
    """The title and commit message come from ``lockman diff --commit-message``: with
    ``--insight`` it asks OSV (the loopback one here), so a fix is said where a reviewer looks."""
    from tests.support.images import attach_sbom, push_build

    repo = unique_repo("actvulns")

    def image(salt: str, version: str) -> str:
        b = push_build(registry, repo, "v1", [salt.encode() * 10], "2026-01-01T00:00:00Z", {})
        purl = f"pkg:pypi/requests@{version}"
        cdx = {"bomFormat": "CycloneDX", "specVersion": "1.5",
               "components": [{"type": "library", "name": "requests", "version": version, "purl": purl}]}  # fmt: skip
        attach_sbom(registry, repo, b, json.dumps(cdx).encode(), "application/vnd.cyclonedx+json")
        return b.digest

    image("old", "2.30.0")
    origin, work = _checkout(tmp_path, f'[container]\nimage = "{registry.host}/{repo}:v1"\n', run)
    new = image("new", "2.31.0")  # requests 2.31.0 fixes PYSEC-2023-74
    runner, gh_log = _runner(tmp_path, work)
    assert runner.run({"command": "update", "open-pr": "true", "package": str(ROOT)}) == 0, runner.log
    title = runner.outputs["update"]["title"]
    assert title == (
        f"chore(deps): update {registry.host}/{repo}:v1 digest to {new[7:14]} (fixes 1 known vulnerability)"
    )
    assert git(origin, "log", "-1", "--format=%s", "lockman/update").strip() == title
    assert "--title\n" + title in gh_log.read_text()

    # --no-vulnerabilities in args: the title asks OSV nothing either.
    asked = len(osv_server.log)
    image("newer", "2.30.0")
    assert runner.run({"command": "update", "args": "--no-vulnerabilities"}, skip=("Install lockman",)) == 0
    assert not runner.outputs["update"]["title"].endswith(")") and len(osv_server.log) == asked
