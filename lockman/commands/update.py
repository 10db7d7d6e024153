"""`lockman update`: re-resolve every image and rewrite xcargo.lock when something moved."""

from __future__ import annotations

import contextlib
from pathlib import Path

from lockman import lockfile
from lockman.commands._common import report_errors, worst
from lockman.console import err, out, short
from lockman.errors import EXIT_OK, EXIT_VERIFY, LockmanError
from lockman.locker import Change, Outcome, diff_locks, gather_all, lock_one, wanted_images
from lockman.lockfile import Lockfile
from lockman.registry.client import RegistryClient
from lockman.xcargo import load_config


def describe(change: Change) -> str:
    old = short(change.old.digest) if change.old else "(new)"
    new = short(change.new.digest) if change.new else "(removed)"
    if change.old and change.new and change.old.digest == change.new.digest:
        return f"{change.display}  platforms changed ({short(change.new.digest)})"
    return f"{change.display}  {old} → {new}"


def _named(o: Outcome, e: LockmanError) -> LockmanError:
    """The error, its message naming the image when it did not already (a network error names a host)."""
    ref = o.wanted.use.ref.familiar()
    return e if ref in str(e) else type(e)(f"{ref}: {e}")


async def run(
    config_path: Path, *, check: bool, dry_run: bool, timeout: float, keep_going: bool = False
) -> int:
    config = load_config(config_path)
    for triple in config.skipped_targets:
        err(
            f"warning: {config.path}: target {triple} has no container image "
            f'(set [targets."{triple}".container].image to lock one); skipped'
        )
    wanted = wanted_images(config.images, config.path)
    lock_path = config.lockfile_path
    with lockfile.locked(lock_path):
        old = lockfile.read(lock_path)
        previous = old.by_key() if old else {}
        async with RegistryClient(timeout=timeout) as client:
            with contextlib.suppress(LockmanError):  # it resurfaces per image, named
                await client.prefetch_tokens([w.use.ref for w in wanted])
            outcomes = await gather_all(lock_one(client, w, previous.get(w.key)) for w in wanted)
        errors = [_named(o, o.error) for o in outcomes if o.error is not None]
        if errors and not keep_going:
            return report_errors(errors)
        for o in outcomes:
            if o.tag_moved_to:
                err(
                    f"notice: {o.wanted.use.ref.familiar()} is pinned in {config.path} "
                    f"({o.wanted.use.key}), but tag {o.wanted.use.tag} now points at "
                    f"{short(o.tag_moved_to)}; the pin is kept"
                )
        # --keep-going: what failed keeps its old entry (if any); what resolved is recorded.
        kept = [previous[o.wanted.key] for o in outcomes if o.error is not None and o.wanted.key in previous]
        new = Lockfile(tuple(o.entry for o in outcomes if o.entry is not None) + tuple(kept)).sorted()
        text = lockfile.dumps(new)
        current_text = lock_path.read_text(encoding="utf-8") if old is not None else None
        changes = diff_locks(old, new)
        for c in changes:
            out(describe(c))
        if text == current_text:
            if not changes and not errors:
                out(f"{lock_path}: up to date ({len(new.images)} images)")
            return report_errors(errors) if errors else EXIT_OK
        if check:
            failed = report_errors(errors)
            err(f"error: {lock_path} is not up to date: run `lockman update`")
            return worst([EXIT_VERIFY, failed])
        if dry_run:
            out(f"{lock_path}: would be updated (dry run)")
            return report_errors(errors) if errors else EXIT_OK
        lockfile.write_atomic(lock_path, text)
        partial = f", {len(errors)} failed and left as they were" if errors else ""
        out(f"{lock_path}: updated ({len(changes)} changed, {len(new.images)} images{partial})")
        return report_errors(errors) if errors else EXIT_OK
