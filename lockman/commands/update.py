"""`lockman update`: re-resolve every image and rewrite xcargo.lock when something moved.

Reads the options, calls :func:`lockman.images.updater.update` and renders its result; the
exit code says what the result means (1: ``--check`` found drift). What update does, with
``IMAGE...`` and ``--repin``, is told in lockman/images/updater.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from lockman import env, report
from lockman.commands._common import (
    CLI_HOOKS,
    report_errors,
    signature_options,
    vuln_policy,
    warn_unavailable,
    worst,
)
from lockman.console import count, err, info, out, short, use_colour
from lockman.enforce.options import SignatureOptions
from lockman.errors import EXIT_OK, EXIT_VERIFY
from lockman.images import updater
from lockman.images.locker import Outcome
from lockman.images.sources import load_project
from lockman.images.updater import UpdateOptions, UpdateResult
from lockman.model import pinning
from lockman.registry.client import RegistryClient


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
    vulnerabilities: bool = True,
) -> int:
    options = UpdateOptions(  # checks --platform before any file or network
        images=tuple(images),
        repin=repin,
        platform=platform,
        keep_going=keep_going,
        write=not (check or dry_run),
        insight=insight and not check and not commit_message,
        vulnerabilities=vulnerabilities,
        osv_url=env.get("LOCKMAN_OSV_URL"),
    )
    config = load_project(config_path)
    options = replace(options, vuln_policy=vuln_policy(config_path))
    result = await updater.update(
        config,
        options,
        signatures=signature_options(signatures, timeout),
        connect=lambda cache: RegistryClient(timeout=timeout, cache=cache),
        hooks=CLI_HOOKS,
    )
    codes = _signatures(result, show=fmt == "text" and not commit_message)  # stdout: only the report
    warn_unavailable(result.insights.values())
    if result.stopped:
        return worst([*codes, report_errors(result.errors)])
    _kept_pins(result)
    rep = report.UpdateReport(
        report.with_insight(report.image_updates(result.old, result.new), result.insights),
        str(result.lockfile_path),
        tuple(str(p) for p in result.written),
        tuple(_kept_pin(o) for o in result.kept_pins),
    )
    if commit_message:
        if rep.commit_message:
            out(rep.commit_message)
    elif fmt != "text":
        out(report.render_update(rep, fmt).rstrip("\n"))
    else:
        _text(result, rep, check=check, dry_run=dry_run)
    return _exit_code(result, check)


def _signatures(result: UpdateResult, show: bool) -> list[int]:
    """Each verdict's lines (when shown) and each refusal; the refusals' exit codes."""
    codes = []
    for s in result.signed:
        for line in s.lines() if show else ():
            info(line)
        for c, message in s.failures():
            err(f"error: {message}; not locked")
            codes.append(c.exit_code)
    return codes


def _kept_pin(o: Outcome) -> report.KeptPin:
    use = o.wanted.use
    assert use.ref.digest is not None and o.tag_moved_to is not None
    return report.KeptPin(use.name, use.tag, use.key, use.ref.digest, o.tag_moved_to, o.wanted.unpinned_keys)


def _kept_pins(result: UpdateResult) -> None:
    for o in result.kept_pins:
        assert o.tag_moved_to is not None
        if o.split_pin:  # a bot's branch bumped the pin at one key: the branch owns the rest
            use = o.wanted.use
            err(
                f"notice: {use.ref.familiar()} is pinned to {short(use.ref.digest or '')} at {use.key} "
                f"and used bare at {', '.join(o.wanted.unpinned_keys)} in {result.config_path}; tag "
                f"{use.tag} now points at {short(o.tag_moved_to)}; every use stays at the pin, left to "
                "the branch that pinned it (`lockman update --repin` moves them)"
            )
            continue
        err(
            f"notice: {o.wanted.use.ref.familiar()} is pinned in {result.config_path} "
            f"({o.wanted.use.key}), but tag {o.wanted.use.tag} now points at "
            f"{short(o.tag_moved_to)}; the pin is kept (`lockman update --repin` moves it)"
        )


def _text(result: UpdateResult, rep: report.UpdateReport, *, check: bool, dry_run: bool) -> None:
    body = report.update_text(rep, colour=use_colour())
    if body:
        info(body)
    assert result.new is not None
    if not result.changed:
        if not rep.updates and not result.errors:
            info(f"{result.lockfile_path}: up to date ({count(len(result.new.images), 'image')})")
    elif check:
        pass
    elif dry_run:
        _dry_run_text(result)
    else:
        _written_text(result, rep)


def _dry_run_text(result: UpdateResult) -> None:
    if result.config_changes:  # what --repin would do to xcargo.toml, shown as `lockman pin` shows it
        assert result.config_text is not None and result.new_config_text is not None
        diff = pinning.unified_diff(result.config_text, result.new_config_text, str(result.config_path))
        out(diff.rstrip("\n"))
    for path, text, new_text in result.other_files:
        out(pinning.unified_diff(text, new_text, str(path)).rstrip("\n"))
    if result.lock_changes:
        info(f"{result.lockfile_path}: would be updated (dry run)")
    if result.config_changes:
        info(f"{result.config_path}: pins would move to the tags' new digests (dry run)")


def _written_text(result: UpdateResult, rep: report.UpdateReport) -> None:
    assert result.new is not None
    if result.config_path in result.written:
        info(f"{result.config_path}: pins moved to the tags' new digests")
    for path, _, _ in result.other_files:
        info(f"{path}: pins moved to the tags' new digests")
    if not result.lock_changes:
        return
    errors = result.errors
    partial = f", {len(errors)} failed and left as they were" if errors else ""
    images = count(len(result.new.images), "image")
    if rep.updates or errors:
        info(f"{result.lockfile_path}: updated ({len(rep.updates)} changed, {images}{partial})")
    elif result.old is None:  # a brand-new lock (a config with no images yet): nothing was rewritten
        info(f"{result.lockfile_path}: created ({images})")
    else:  # e.g. `pinned` dropped after a pin was removed from xcargo.toml
        what = ", ".join(updater.details_changed(result.old, result.new)) or "formatting"
        info(f"{result.lockfile_path}: updated ({images}; no digest moved; {what} rewritten)")


def _exit_code(result: UpdateResult, check: bool) -> int:
    """0; 1 when --check found drift; with --keep-going, the failed images' code."""
    failed = report_errors(result.errors) if result.errors else EXIT_OK
    if check and result.changed:
        config_only = result.config_changes and not result.lock_changes
        what = f"{result.config_path} pins are" if config_only else f"{result.lockfile_path} is"
        repin = " --repin" if result.config_changes else ""
        err(f"error: {what} not up to date: run `lockman update{repin}`")
        return worst([EXIT_VERIFY, failed])
    return failed
