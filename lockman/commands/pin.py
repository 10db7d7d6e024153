"""`lockman pin`: write the locked digests into the files that name the images.

``image = "rust:1.70"`` in xcargo.toml becomes ``image = "rust:1.70@sha256:…"`` (its
``[container].image`` and every ``[targets."<triple>".container].image``), and so does every
reference the project's tracked Dockerfiles, Cross.toml, workflows and compose files write in one
piece (lockman/images/sources.py): only the reference's characters change, so comments, spacing,
quoting, line endings and YAML anchors stay. Without ``--write`` it prints the unified diffs it
would apply. The lock entries it pins are marked ``pinned = true`` so `lockman update --check`
stays green. Existing pins are left alone (`lockman update --repin` moves those in xcargo.toml).

``--check`` reads no lock and writes nothing: it fails (exit 1) naming file and line of every
reference left unpinned, for CI.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from lockman.console import err, info, out
from lockman.errors import EXIT_OK, EXIT_VERIFY, InputError, VerificationError
from lockman.fileio import read_utf8, write_together
from lockman.images import sources
from lockman.model import lockfile, pinning, reference
from lockman.model.lockfile import Lockfile
from lockman.model.sources import Found, splice
from lockman.model.xcargo import XcargoConfig, load_config


def run(config_path: Path, *, write: bool, check: bool = False) -> int:
    config = load_config(config_path)  # validates the whole file first
    found = sources.discover(config.path.parent)
    if check:
        return _check(config, found)
    lock_path = config.lockfile_path
    with lockfile.locked(lock_path, also=(config.path, *(config.path.parent / p for p in found.texts or {}))):
        found = sources.discover(config.path.parent)  # again, under the lock: the bytes rewritten
        lock = lockfile.read(lock_path)
        if lock is None:
            raise VerificationError(f"{lock_path}: no lockfile; run `lockman update` first")
        entries = lock.by_key()
        missing: list[str] = []

        def digest_for(key: str, ref: reference.Reference) -> str | None:
            if ref.digest is not None:
                return None  # already pinned: --repin's business
            e = entries.get((ref.written, ref.tag or ""))
            if e is None:
                missing.append(f"{ref.written}:{ref.tag} ({key})")
                return None
            return e.digest

        text = _read_exact(config.path)  # CRLF stays CRLF: no newline translation
        new_text, edits = pinning.rewrite(text, config.path, digest_for)
        changes: list[tuple[Path, str, str]] = []  # (file, old text, new text)
        shown: list[str] = [f"{config.path}: {e.key}: {e.old} → {e.new}" for e in edits]
        if edits:
            changes.append((config.path, text, new_text))
        pinned_keys = {(reference.parse(e.new).written, reference.parse(e.new).tag or "") for e in edits}
        for rel, file_text in (found.texts or {}).items():
            spans: dict[tuple[int, int], str] = {}
            for f in (f for f in found.found if f.path == rel):
                ref = reference.parse(f.ref)
                digest = digest_for(f.source, ref)
                if digest is None:
                    continue
                if f.span is None:
                    err(
                        f"notice: {config.path.parent / f.source}: {f.ref} is not written in one piece "
                        "(built from variables); pin it where its parts are defined"
                    )
                    continue
                spans[f.span] = pinning.pinned_text(ref, digest)
                pinned_keys.add((ref.written, ref.tag or ""))
                shown.append(f"{config.path.parent / f.source}: {f.ref} → {spans[f.span]}")
            if spans:
                changes.append((config.path.parent / rel, file_text, splice(file_text, spans)))
        if missing:
            raise VerificationError(
                f"{lock_path}: no entry for {', '.join(missing)}; run `lockman update` first"
            )
        builtin = [u for u in config.images if u.source.startswith("built-in image for ")]
        for u in builtin:
            err(
                f"notice: {u.ref.familiar()} is xcargo's built-in image for {u.source.rsplit(' ', 1)[1]}; "
                "xcargo.toml has no key to pin it (the lock still does)"
            )
        if not changes:
            info(f"{config.path}: every image is already pinned")
            return EXIT_OK
        if not write:
            for path, old, new in changes:
                out(pinning.unified_diff(old, new, str(path)).rstrip("\n"))
            return EXIT_OK
        new_lock = Lockfile(
            tuple(replace(i, pinned=True) if i.key in pinned_keys else i for i in lock.images)
        ).sorted()
        lock_text = lockfile.dumps(new_lock)
        files: list[tuple[Path, bytes | str]] = [(path, new) for path, _, new in changes]
        if lock_text != _read_exact(lock_path):
            files.append((lock_path, lock_text))
        write_together(files)  # every file changes or none does
    for line in shown:
        info(line)
    return EXIT_OK


def _check(config: XcargoConfig, found: sources.Discovered) -> int:
    """Exit 1 naming every reference written without a digest (and every one lockman cannot tell)."""
    problems = [
        f"{config.path}: {u.key}: {u.ref.familiar()} is not pinned to a digest"
        for u in config.images
        if not u.pinned and not u.source.startswith("built-in image for ")
    ]
    problems += [
        f"{config.path.parent / f.source}: {f.ref} is not pinned to a digest"
        for f in found.found
        if not _pinned(f)
    ]
    problems += [f"{config.path.parent / str(u)}" for u in found.unresolved]
    for p in problems:
        err(f"error: {p}")
    if problems:
        return EXIT_VERIFY
    info(f"{config.path}: every image reference is pinned to a digest")
    return EXIT_OK


def _pinned(f: Found) -> bool:
    return reference.parse(f.ref).digest is not None


def _read_exact(path: Path) -> str:
    text = read_utf8(path)
    if text is None:
        raise InputError(f"{path}: disappeared while lockman was working")
    return text
