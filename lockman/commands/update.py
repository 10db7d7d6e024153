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
from lockman.commands._common import report_errors, signature_options, worst
from lockman.console import count, err, info, out, short, use_colour
from lockman.enforce.options import SignatureOptions
from lockman.errors import EXIT_OK, EXIT_VERIFY, LockmanError
from lockman.fileio import read_utf8, write_together
from lockman.images.locker import Outcome, Wanted, gather_all, lock_one, wanted_images
from lockman.images.selection import select
from lockman.model import lockfile, pinning, xcargo
from lockman.model.lockfile import LockedImage, Lockfile
from lockman.model.platforms import parse_platform
from lockman.model.xcargo import load_config
from lockman.progress import progress, tracked
from lockman.registry.client import RegistryClient

if TYPE_CHECKING:
    from lockman.signatures import PolicySet


def _named(o: Outcome, e: LockmanError) -> LockmanError:
    """The error, naming the image when it does not already (a network error names a host)."""
    return e.with_subject(o.wanted.use.ref.familiar())


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
            info(line)
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


def recover_conflict(conflict: lockfile.LockfileConflict, wanted: Sequence[Wanted], path: Path) -> Lockfile:
    """Start again from both sides of a conflicted lock: every image is re-resolved from
    xcargo.toml, and an entry either side had (its kind, platform) is kept where the config
    still uses the image; where xcargo.toml pins a digest, the side that agrees with it wins."""
    ours, theirs = conflict.sides
    merged: dict[tuple[str, str], LockedImage] = {}
    for side in (theirs, ours):  # on a tie, ours (the branch being merged into) wins
        for e in side.images if side else ():
            merged[e.key] = e
    pins = {w.key: w.use.ref.digest for w in wanted if w.use.ref.digest}
    for side in (theirs, ours):
        for e in side.images if side else ():
            if pins.get(e.key) == e.digest:
                merged[e.key] = e
    unreadable = sum(1 for side in (ours, theirs) if side is None)
    note = f"; {unreadable} side(s) not a valid lockfile, ignored" if unreadable else ""
    err(
        f"notice: {path} has merge conflicts: locking afresh from the config, keeping what either "
        f"side locked where the config still uses it{note}"
    )
    return Lockfile(tuple(merged.values())).sorted()


def _details_changed(old: Lockfile | None, new: Lockfile) -> list[str]:
    """Lockfile keys that changed in entries whose digests did not (``pinned``, ``source``…)."""
    before = old.by_key() if old else {}
    changed: set[str] = set()
    for key, b in new.by_key().items():
        a = before.get(key)
        for name in ("pinned", "source", "media_type", "index_digest", "details_from"):
            if a is not None and getattr(a, name) != getattr(b, name):
                changed.add(name.replace("_", "-"))
    return sorted(changed)


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
    options = signature_options(signatures)
    policies = None
    if options.wanted(config.path):
        from lockman.enforce.check import load_policies

        policies = load_policies(config.path, options)
    for warning in xcargo.warnings(config):
        err(f"warning: {warning}")
    every = wanted_images(config.images, config.path)
    wanted = select(every, images, config)
    lock_path = config.lockfile_path
    with lockfile.locked(lock_path, also=(config.path,)):
        try:
            old = lockfile.read(lock_path)
        except lockfile.LockfileConflict as conflict:
            old = recover_conflict(conflict, wanted, lock_path)
        previous = old.by_key() if old else {}
        for w in wanted:
            e = previous.get(w.key)
            if e is not None and e.edited_outside:
                err(
                    f"notice: {lock_path}: {e.display} was edited outside lockman (digest {short(e.digest)}, "
                    f"details read from {short(e.details_from)}); rebuilding the entry from the registry"
                )
        from lockman.registry.cache import ManifestCache

        # The cache lets the no-change path check recorded details for free (see locker).
        async with RegistryClient(timeout=timeout, cache=ManifestCache()) as client:
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
            if not repin:  # a pinned and an unpinned use that no longer agree (--repin fixes it)
                outcomes = [
                    replace(o, entry=None, error=x, tag_moved_to=None)
                    if (x := o.split_pin_error(config.path))
                    else o
                    for o in outcomes
                ]
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
            chosen, used = {w.key for w in wanted}, {w.key for w in every}
            names = {w.use.name for w in wanted}
            # ... except the named images' entries the config no longer uses (the old tag after a
            # tag bump), so `lockman update NAME` after a bot's bump leaves no stale entry.
            fresh += [
                e
                for e in (old.images if old else ())
                if e.key not in chosen and (e.key in used or e.name not in names)
            ]
        new = Lockfile(tuple(fresh)).sorted()
        text = lockfile.dumps(new)
        current_text = read_utf8(lock_path) if old is not None else None

        config_text = new_config_text = None
        if moved_to:
            config_text = read_utf8(config.path) or ""  # bytes as they are: CRLF stays CRLF
            by_key = {(w.use.name, w.use.tag): moved_to[w.key] for w in wanted if w.key in moved_to}
            new_config_text, _ = pinning.rewrite(
                config_text,
                config.path,
                # pins move; a bare use of the same name:tag stays bare
                lambda _k, ref: by_key.get((ref.written, ref.tag or "")) if ref.digest else None,
            )
        lock_changes = text != current_text
        config_changes = new_config_text is not None and new_config_text != config_text
        written: list[str] = []
        if (lock_changes or config_changes) and not check and not dry_run:
            files: list[tuple[Path, bytes | str]] = []
            if config_changes:
                assert new_config_text is not None
                files.append((config.path, new_config_text))
            if lock_changes:
                files.append((lock_path, text))
            write_together(files)  # with --repin: xcargo.toml and xcargo.lock change together
            written += [str(p) for p, _ in files]

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
            info(body)
        if not (lock_changes or config_changes):
            if not rep.updates and not errors:
                info(f"{lock_path}: up to date ({count(len(new.images), 'image')})")
        elif check:
            pass
        elif dry_run:
            if config_changes:  # what --repin would do to xcargo.toml, shown as `lockman pin` shows it
                assert config_text is not None and new_config_text is not None
                out(pinning.unified_diff(config_text, new_config_text, str(config.path)).rstrip("\n"))
            if lock_changes:
                info(f"{lock_path}: would be updated (dry run)")
            if config_changes:
                info(f"{config.path}: pins would move to the tags' new digests (dry run)")
        else:
            for f in written:
                if f == str(config.path):
                    info(f"{config.path}: pins moved to the tags' new digests")
            if lock_changes:
                partial = f", {len(errors)} failed and left as they were" if errors else ""
                images = count(len(new.images), "image")
                if rep.updates or errors:
                    info(f"{lock_path}: updated ({len(rep.updates)} changed, {images}{partial})")
                else:  # e.g. `pinned` dropped after a pin was removed from xcargo.toml
                    what = ", ".join(_details_changed(old, new)) or "formatting"
                    info(f"{lock_path}: updated ({images}; no digest moved; {what} rewritten)")
    failed = report_errors(errors) if errors else EXIT_OK  # only with --keep-going
    if check and (lock_changes or config_changes):
        what = f"{config.path} pins are" if config_changes and not lock_changes else f"{lock_path} is"
        err(f"error: {what} not up to date: run `lockman update{' --repin' if config_changes else ''}`")
        return worst([EXIT_VERIFY, failed])
    return failed
