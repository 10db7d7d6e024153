"""`lockman update`: re-resolve every image and rewrite xcargo.lock when something moved."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lockman import lockfile
from lockman.commands._common import report_errors, worst
from lockman.console import err, out, short
from lockman.errors import EXIT_OK, EXIT_VERIFY
from lockman.locker import Change, Outcome, diff_locks, gather_all, lock_one, wanted_images
from lockman.lockfile import LockedImage, Lockfile
from lockman.platforms import parse_platform
from lockman.registry.client import RegistryClient
from lockman.signature_options import SignatureOptions
from lockman.xcargo import load_config

if TYPE_CHECKING:
    from lockman.signatures import PolicySet


async def _refuse_unsigned(
    client: RegistryClient,
    outcomes: list[Outcome],
    previous: dict[tuple[str, str], LockedImage],
    policies: PolicySet,
    recursive: bool,
) -> int:
    """Check the signature of every digest about to enter the lock; exit 1 if any fails.

    Digests already in the lock are not re-checked here (``lockman verify`` checks them all),
    so an unchanged image still costs one HEAD.
    """
    from lockman.signature_check import SignatureTarget, check_all

    targets = []
    for o in outcomes:
        e = o.entry
        if e is None:
            continue
        old = previous.get(e.key)
        if old is not None and old.digest == e.digest and old.platforms == e.platforms:
            continue
        platforms = tuple((p.platform, p.digest) for p in e.platforms)
        targets.append(SignatureTarget(o.wanted.use.ref, e.display, e.digest, platforms))
    signed = await check_all(client, targets, policies, recursive=recursive)
    codes = []
    for s in signed:
        for line in s.lines():
            out(line)
        for c, message in s.failures():
            err(f"error: {message}; not locked")
            codes.append(c.exit_code)
    return worst(codes)


def describe(change: Change) -> str:
    old = short(change.old.digest) if change.old else "(new)"
    new = short(change.new.digest) if change.new else "(removed)"
    if change.old and change.new and change.old.platform != change.new.platform:
        kind = f"platform {change.new.platform}" if change.new.platform else "tag digest"
        return f"{change.display}  {old} → {new} ({kind})"
    if change.old and change.new and change.old.digest == change.new.digest:
        return f"{change.display}  platforms changed ({short(change.new.digest)})"
    return f"{change.display}  {old} → {new}"


def effective_platform(flag: str | None, previous: LockedImage | None) -> str:
    """``--platform`` sets the kind (``all``: back to the tag's digest); otherwise it is kept."""
    if flag is not None:
        return "" if flag == "all" else flag
    return previous.platform if previous is not None else ""


async def run(
    config_path: Path,
    *,
    check: bool,
    dry_run: bool,
    timeout: float,
    signatures: SignatureOptions | None = None,
    platform: str | None = None,
) -> int:
    if platform is not None and platform != "all":
        parse_platform(platform)  # bad input before any file or network
    config = load_config(config_path)
    options = signatures or SignatureOptions()
    policies = None
    if options.wanted(config.path):
        from lockman.signature_check import load_policies

        policies = load_policies(config.path, options)
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
            await client.prefetch_tokens([w.use.ref for w in wanted])
            outcomes = await gather_all(
                lock_one(client, w, previous.get(w.key), effective_platform(platform, previous.get(w.key)))
                for w in wanted
            )
            errors = [o.error for o in outcomes if o.error is not None]
            if errors:
                return report_errors(errors)
            if policies is not None:
                code = await _refuse_unsigned(client, outcomes, previous, policies, options.recursive)
                if code != EXIT_OK:
                    return code
        for o in outcomes:
            if o.tag_moved_to:
                err(
                    f"notice: {o.wanted.use.ref.familiar()} is pinned in {config.path} "
                    f"({o.wanted.use.key}), but tag {o.wanted.use.tag} now points at "
                    f"{short(o.tag_moved_to)}; the pin is kept"
                )
        new = Lockfile(tuple(o.entry for o in outcomes if o.entry is not None)).sorted()
        text = lockfile.dumps(new)
        current_text = lock_path.read_text(encoding="utf-8") if old is not None else None
        changes = diff_locks(old, new)
        for c in changes:
            out(describe(c))
        if text == current_text:
            if not changes:
                out(f"{lock_path}: up to date ({len(new.images)} images)")
            return EXIT_OK
        if check:
            err(f"error: {lock_path} is not up to date: run `lockman update`")
            return EXIT_VERIFY
        if dry_run:
            out(f"{lock_path}: would be updated (dry run)")
            return EXIT_OK
        lockfile.write_atomic(lock_path, text)
        out(f"{lock_path}: updated ({len(changes)} changed, {len(new.images)} images)")
        return EXIT_OK
