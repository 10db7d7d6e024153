"""`lockman pin`: write the locked digests into xcargo.toml, as xcargo's security guide asks.

``image = "rust:1.70"`` becomes ``image = "rust:1.70@sha256:…"`` for ``[container].image`` and
every ``[targets."<triple>".container].image``; comments and formatting stay. Without
``--write`` it prints the unified diff it would apply. The lock entries it pins are marked
``pinned = true`` so `lockman update --check` stays green. Existing pins are left alone
(`lockman update --repin` moves them).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from lockman.console import err, info, out
from lockman.errors import EXIT_OK, InputError, VerificationError
from lockman.fileio import read_utf8, write_together
from lockman.model import lockfile, pinning, reference
from lockman.model.lockfile import Lockfile
from lockman.model.xcargo import load_config


def run(config_path: Path, *, write: bool) -> int:
    config = load_config(config_path)  # validates the whole file first
    lock_path = config.lockfile_path
    with lockfile.locked(lock_path, also=(config.path,)):
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
        if not edits:
            info(f"{config.path}: every image is already pinned")
            return EXIT_OK
        if not write:
            out(pinning.unified_diff(text, new_text, str(config.path)).rstrip("\n"))
            return EXIT_OK
        pinned_keys = {(reference.parse(e.new).written, reference.parse(e.new).tag or "") for e in edits}
        new_lock = Lockfile(
            tuple(replace(i, pinned=True) if i.key in pinned_keys else i for i in lock.images)
        ).sorted()
        lock_text = lockfile.dumps(new_lock)
        files: list[tuple[Path, bytes | str]] = [(config.path, new_text)]
        if lock_text != _read_exact(lock_path):
            files.append((lock_path, lock_text))
        write_together(files)  # both change or neither does
    for e in edits:
        info(f"{config.path}: {e.key}: {e.old} → {e.new}")
    return EXIT_OK


def _read_exact(path: Path) -> str:
    text = read_utf8(path)
    if text is None:
        raise InputError(f"{path}: disappeared while lockman was working")
    return text
