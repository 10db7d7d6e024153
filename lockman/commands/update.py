"""`lockman update`: re-resolve every image and rewrite xcargo.lock when something moved.

``IMAGE...`` limits the run to the named images; every other entry is kept as it is. Plain
update never touches xcargo.toml; ``--repin`` moves pins (``image = "x:tag@sha256:…"``) whose tag
has moved, in xcargo.toml and the lock together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from lockman import report
from lockman.commands._common import report_errors, worst
from lockman.console import err, out, short, use_colour
from lockman.enforce.options import SignatureOptions
from lockman.errors import EXIT_OK, EXIT_VERIFY, LockmanError
from lockman.images.locker import Outcome, Wanted, gather_all, lock_one, wanted_images
from lockman.images.selection import select
from lockman.model import lockfile, pinning
from lockman.model.lockfile import LockedImage, Lockfile
from lockman.model.platforms import parse_platform
from lockman.model.xcargo import load_config
from lockman.progress import progress, tracked
from lockman.registry.client import RegistryClient

if TYPE_CHECKING:
    from lockman.signatures import PolicySet


def _named(o: Outcome, e: LockmanError) -> LockmanError:
    """The error, naming the image when its message does not (a network error names a host)."""
    ref = o.wanted.use.ref.familiar()
    return e if ref in str(e) else type(e)(f"{ref}: {e}")


async def _refuse_unsigned(
    client: RegistryClient,
    outcomes: list[Outcome],
    previous: dict[tuple[str, str], LockedImage],
    policies: PolicySet,
    recursive: bool,
    show: bool = True,
) -> int:
    """Check the signature of every digest about to enter the lock; exit 1 if any fails.

    Digests already in the lock are not re-checked here (``lockman verify`` checks them all),
    so an unchanged image still costs one HEAD.
    """
    from lockman.enforce.check import SignatureTarget, check_all

    targets = []
    for o in outcomes:
        e = o.entry
        if e is None:
            continue
        old = previous.get(e.key)
        if old is not None and old.digest == e.digest and old.platforms == e.platforms:
            continue
        targets.append(SignatureTarget.for_entry(o.wanted.use.ref, e))
    signed = await check_all(client, targets, policies, recursive=recursive)
    codes = []
    for s in signed:
        for line in s.lines() if show else ():
            out(line)
        for c, message in s.failures():
            err(f"error: {message}; not locked")
            codes.append(c.exit_code)
    return worst(codes)


async def _repin(client: RegistryClient, outcomes: list[Outcome]) -> list[Outcome]:
    """Re-lock each pinned image whose tag moved at the tag's new digest."""
    moved = [o for o in outcomes if o.tag_moved_to]
    if not moved:
        return outcomes
    again = await gather_all(
        lock_one(
            client, Wanted(replace(o.wanted.use, ref=o.wanted.use.ref.with_digest(d)), o.wanted.sources), None
        )
        for o in moved
        if (d := o.tag_moved_to)
    )
    by_key = {o.wanted.key: o for o in again}
    return [by_key.get(o.wanted.key, o) for o in outcomes]


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
    images: Sequence[str] = (),
    repin: bool = False,
    fmt: report.Format = "text",
    commit_message: bool = False,
    signatures: SignatureOptions | None = None,
    platform: str | None = None,
    keep_going: bool = False,
    insight: bool = True,
) -> int:
    if platform is not None and platform != "all":
        parse_platform(platform)  # bad input before any file or network
    config = load_config(config_path)
    options = signatures or SignatureOptions()
    policies = None
    if options.wanted(config.path):
        from lockman.enforce.check import load_policies

        policies = load_policies(config.path, options)
    for triple in config.skipped_targets:
        err(
            f"warning: {config.path}: target {triple} has no container image "
            f'(set [targets."{triple}".container].image to lock one); skipped'
        )
    wanted = select(wanted_images(config.images, config.path), images, config)
    lock_path = config.lockfile_path
    with lockfile.locked(lock_path):
        old = lockfile.read(lock_path)
        previous = old.by_key() if old else {}
        async with RegistryClient(timeout=timeout) as client:
            await client.prefetch_tokens([w.use.ref for w in wanted])
            with progress(len(wanted), "resolving images") as tick:
                outcomes = await gather_all(
                    tracked(
                        lock_one(
                            client, w, previous.get(w.key), effective_platform(platform, previous.get(w.key))
                        ),
                        tick,
                    )
                    for w in wanted
                )
            moved_to: dict[tuple[str, str], str] = {}
            if repin and not any(o.error for o in outcomes):
                moved_to = {o.wanted.key: o.tag_moved_to for o in outcomes if o.tag_moved_to}
                outcomes = await _repin(client, outcomes)
            errors = [_named(o, o.error) for o in outcomes if o.error is not None]
            if errors and not keep_going:
                return report_errors(errors)
            if policies is not None:
                show = fmt == "text" and not commit_message  # stdout carries only the report
                code = await _refuse_unsigned(client, outcomes, previous, policies, options.recursive, show)
                if code != EXIT_OK:
                    return code
            insights = {}
            if insight and not check and not commit_message:
                from lockman.commands._insight import gather

                changed = [(o.wanted.use.ref, previous.get(o.wanted.key), o.entry) for o in outcomes]
                try:
                    insights = await gather(client, changed, policies)
                except LockmanError as e:  # only bytes that do not hash to their digest get here
                    return report_errors([e])
        for o in outcomes:
            if o.tag_moved_to and o.wanted.key not in moved_to:
                err(
                    f"notice: {o.wanted.use.ref.familiar()} is pinned in {config.path} "
                    f"({o.wanted.use.key}), but tag {o.wanted.use.tag} now points at "
                    f"{short(o.tag_moved_to)}; the pin is kept (`lockman update --repin` moves it)"
                )
        fresh = [o.entry for o in outcomes if o.entry is not None]
        # --keep-going: an image that failed keeps its old entry (a new one stays out).
        fresh += [previous[o.wanted.key] for o in outcomes if o.error and o.wanted.key in previous]
        if images:  # a selective run leaves every other entry exactly as it was
            chosen = {w.key for w in wanted}
            fresh += [e for e in (old.images if old else ()) if e.key not in chosen]
        new = Lockfile(tuple(fresh)).sorted()
        text = lockfile.dumps(new)
        current_text = lock_path.read_text(encoding="utf-8") if old is not None else None

        config_text = new_config_text = None
        if moved_to:
            config_text = config.path.read_text(encoding="utf-8")
            by_key = {(w.use.name, w.use.tag): moved_to[w.key] for w in wanted if w.key in moved_to}
            new_config_text, _ = pinning.rewrite(
                config_text, config.path, lambda _k, ref: by_key.get((ref.written, ref.tag or ""))
            )
        lock_changes = text != current_text
        config_changes = new_config_text is not None and new_config_text != config_text
        written: list[str] = []
        if (lock_changes or config_changes) and not check and not dry_run:
            if config_changes:
                assert new_config_text is not None
                lockfile.write_atomic(config.path, new_config_text)
                written.append(str(config.path))
            if lock_changes:
                lockfile.write_atomic(lock_path, text)
                written.append(str(lock_path))

    updates = report.with_insight(report.image_updates(old, new), insights)
    rep = report.UpdateReport(updates, str(lock_path), tuple(written))
    if commit_message:
        if rep.commit_message:
            out(rep.commit_message)
    elif fmt != "text":
        out(report.render_update(rep, fmt).rstrip("\n"))
    else:
        body = report.update_text(rep, colour=use_colour())
        if body:
            out(body)
        if not (lock_changes or config_changes):
            if not rep.updates and not errors:
                out(f"{lock_path}: up to date ({len(new.images)} images)")
        elif check:
            pass
        elif dry_run:
            out(f"{lock_path}: would be updated (dry run)")
        else:
            for f in written:
                if f == str(config.path):
                    out(f"{config.path}: pins moved to the tags' new digests")
            if lock_changes:
                partial = f", {len(errors)} failed and left as they were" if errors else ""
                out(f"{lock_path}: updated ({len(rep.updates)} changed, {len(new.images)} images{partial})")
    failed = report_errors(errors) if errors else EXIT_OK  # only with --keep-going
    if check and (lock_changes or config_changes):
        what = f"{config.path} pins are" if config_changes and not lock_changes else f"{lock_path} is"
        err(f"error: {what} not up to date: run `lockman update{' --repin' if config_changes else ''}`")
        return worst([EXIT_VERIFY, failed])
    return failed
