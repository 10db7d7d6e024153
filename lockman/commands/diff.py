"""`lockman diff OLD NEW`: what moved between two lockfiles.

Each side is a path, ``-`` (stdin) or ``git:REV`` (xcargo.lock, next to the config, as committed
at REV). A lockfile that does not exist at REV counts as empty, so
``lockman diff git:HEAD~1 xcargo.lock`` on the commit that added the lock lists every image as
added. The output is the same report `update` prints, in the same formats.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lockman import programs, report
from lockman.console import info, out, use_colour
from lockman.errors import EXIT_OK, EXIT_VERIFY, InputError
from lockman.model import lockfile
from lockman.model.insight import Insight
from lockman.model.lockfile import Lockfile


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    exe = programs.find("git")  # never a git committed to the repository being diffed
    if exe is None:
        raise InputError("git: not installed (needed to read git:REV)")
    try:
        return subprocess.run([exe, "-C", str(cwd), *args], capture_output=True, check=False)
    except OSError as e:
        raise InputError(f"git: cannot run {exe}: {e.strerror or e}") from None


def read_git(rev: str, lock_path: Path) -> Lockfile:
    """``lock_path`` as committed at ``rev``, in the repository that contains it."""
    cwd = lock_path.parent if str(lock_path.parent) else Path(".")
    label = f"git:{rev}"
    if not rev or rev.startswith("-"):
        raise InputError(f"{label}: expected git:REV, e.g. git:HEAD or git:origin/main")
    top = _git(cwd, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise InputError(f"{label}: {cwd.resolve()} is not inside a git repository")
    if _git(cwd, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode != 0:
        raise InputError(f"{label}: unknown git revision {rev!r}")
    spec = f"{rev}:./{lock_path.name}"
    if _git(cwd, "cat-file", "-e", spec).returncode != 0:
        return Lockfile()  # not committed yet at that revision
    blob = _git(cwd, "cat-file", "blob", spec)
    if blob.returncode != 0:
        raise InputError(
            f"{label}: cannot read {lock_path.name}: {blob.stderr.decode(errors='replace').strip()}"
        )
    try:
        text = blob.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{label}:{lock_path.name}: not valid TOML: not UTF-8 text") from None
    return lockfile.loads(text, f"{label}:{lock_path.name}")


def load_side(spec: str, lock_path: Path) -> Lockfile:
    if spec == "-":
        return lockfile.loads(sys.stdin.read(), "<stdin>")
    if spec.startswith("git:"):
        return read_git(spec[4:], lock_path)
    path = Path(spec)
    lock = lockfile.read(path)
    if lock is None:
        raise InputError(f"{path}: no such file")
    return lock


def run(
    old_spec: str,
    new_spec: str | None,
    *,
    config_path: Path,
    fmt: report.Format = "text",
    commit_message: bool = False,
    exit_code: bool = False,
    insight: bool = False,
    timeout: float = 30.0,
    vulnerabilities: bool = True,
) -> int:
    lock_path = config_path.with_name("xcargo.lock")
    new_spec = new_spec or str(lock_path)
    if old_spec == "-" and new_spec == "-":
        raise InputError("diff: only one side can be read from stdin (-)")
    old = load_side(old_spec, lock_path)
    new = load_side(new_spec, lock_path)
    updates = report.image_updates(old, new)
    if insight:  # with --commit-message too: the line then says how many vulnerabilities it fixes
        updates = report.with_insight(updates, _insight(old, new, config_path, timeout, vulnerabilities))
    rep = report.UpdateReport(updates, new_spec)
    if commit_message:
        if rep.commit_message:
            out(rep.commit_message)
    elif fmt != "text":
        out(report.render_update(rep, fmt).rstrip("\n"))
    elif rep.updates:
        out(report.update_text(rep, colour=use_colour()))
    else:
        info(f"{old_spec} → {new_spec}: no differences")
    return EXIT_VERIFY if exit_code and rep.updates else EXIT_OK


def _insight(
    old: Lockfile, new: Lockfile, config_path: Path, timeout: float, vulnerabilities: bool = True
) -> dict[tuple[str, str], Insight]:
    """``--insight``: ask the registries what changed inside each image whose digest moved (and
    OSV about the SBOMs' packages, unless ``--no-vulnerabilities`` or lockman.toml says not)."""
    import asyncio

    from lockman.enforce.options import SignatureOptions
    from lockman.images.inspect_moved import gather
    from lockman.model.reference import parse
    from lockman.registry.client import RegistryClient

    before = {**old.by_key(), **lockfile.tag_bumps(old, new)}  # a bump: the old tag's entry
    policies = None
    if SignatureOptions().wanted(config_path):
        from lockman.commands._common import signature_options
        from lockman.enforce.check import load_policies

        policies = load_policies(config_path, signature_options(timeout=timeout))
    changed = [(parse(e.name), before.get(e.key), e) for e in new.images if e.key in before]

    from lockman import env
    from lockman.commands._common import vuln_policy, warn_unavailable
    from lockman.images.inspect_moved import osv_client

    use_osv = vulnerabilities and vuln_policy(config_path).enabled

    async def run() -> dict[tuple[str, str], Insight]:
        async with RegistryClient(timeout=timeout) as client:
            osv = osv_client(client, env.get("LOCKMAN_OSV_URL")) if use_osv else None
            return await gather(client, changed, policies, osv)

    found = asyncio.run(run())
    warn_unavailable(found.values())
    return found
