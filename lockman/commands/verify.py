"""`lockman verify`: the lock agrees with the config, and the registry serves exactly it.

Offline, only consistency: every image the config uses has an entry, pins agree, nothing stale.
Online, also: every locked digest (and each locked platform digest) is fetched by digest and its
bytes hashed as the registry serves them (never from the local cache); an index must still list
the locked platforms.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lockman import report
from lockman.commands._common import signature_options, worst
from lockman.console import err, info, out, use_colour
from lockman.enforce.options import SignatureOptions
from lockman.errors import EXIT_OK, EXIT_VERIFY, LockmanError, VerificationError
from lockman.images.locker import pin_mismatches, platforms_of, wanted_images
from lockman.model import lockfile, xcargo
from lockman.model.lockfile import LockedImage, Lockfile
from lockman.model.manifest import check_descriptor
from lockman.model.reference import Reference
from lockman.model.xcargo import XcargoConfig, load_config
from lockman.progress import progress, tracked
from lockman.registry.client import NotFound, RegistryClient

if TYPE_CHECKING:
    from lockman.enforce.check import ImageSignatures
    from lockman.signatures import PolicySet


@dataclass(frozen=True)
class Problem:
    kind: str  # one of report.PROBLEM_KINDS
    image: str
    message: str
    exit_code: int = EXIT_VERIFY


def consistency(config: XcargoConfig, lock: Lockfile | None) -> list[Problem]:
    lock_path = config.lockfile_path
    if lock is None:
        return [Problem("no-lockfile", "", f"{lock_path}: no lockfile; run `lockman update`")]
    problems = []
    entries = lock.by_key()
    wanted = wanted_images(config.images, config.path)
    for w in wanted:
        e = entries.get(w.key)
        display = f"{w.use.name}:{w.use.tag}" if w.use.tag else w.use.name
        if e is None:
            problems.append(
                Problem(
                    "missing",
                    display,
                    f"{display}: used by {config.path} "
                    f"({w.use.key}) but not in {lock_path.name}; run `lockman update`",
                )
            )
    problems += [Problem("pin-mismatch", image, m) for image, m in pin_mismatches(wanted, lock, config.path)]
    for e in lock.images:
        if e.edited_outside:
            problems.append(
                Problem(
                    "edited-outside-lockman",
                    e.display,
                    f"{e.display}: digest {e.digest} in {lock_path.name} was edited outside lockman "
                    f"(its details were read from {e.details_from}); "
                    "run `lockman update` to rebuild the entry",
                )
            )
    used = {w.key for w in wanted}
    for key, e in entries.items():
        if key not in used:
            problems.append(
                Problem(
                    "stale",
                    e.display,
                    f"{e.display}: in {lock_path.name} but no "
                    f"longer used by {config.path}; run `lockman update`",
                )
            )
    return problems


async def _check_online(client: RegistryClient, use_ref: Reference, entry: LockedImage) -> list[Problem]:
    display = entry.display
    ref = use_ref.with_digest(entry.digest)
    try:
        manifest = await client.get_manifest(ref)
    except NotFound:
        return [
            Problem(
                "not-served",
                display,
                f"{display}: locked digest {entry.digest} is not served by {use_ref.registry}",
            )
        ]
    except LockmanError as e:
        kind = e.kind if isinstance(e, VerificationError) else "registry"
        message = str(e) if e.names(use_ref.familiar()) else f"{display}: {e}"
        return [Problem(kind, display, message, e.exit_code)]
    problems = []
    if entry.platform:
        from lockman.images.platform_lock import platform_pin_problems

        try:
            found = await platform_pin_problems(client, use_ref, entry, manifest)
        except LockmanError as e:
            found, problems = [], [Problem("registry", display, f"{display}: {e}", e.exit_code)]
        problems += [Problem("platform-mismatch", display, m) for m in found]
    if entry.platforms:
        served = set(platforms_of(manifest))
        listed = {d.digest: d for d in manifest.manifests}
        for p in entry.platforms:
            if p not in served:
                problems.append(
                    Problem(
                        "platform-mismatch",
                        display,
                        f"{display}: locked platform "
                        f"{p.platform} {p.digest} is not in the index {entry.digest}",
                    )
                )
        digests = list(dict.fromkeys(p.digest for p in entry.platforms))  # each fetched once
        fetched = await asyncio.gather(
            *(client.get_manifest(use_ref.with_digest(d)) for d in digests), return_exceptions=True
        )
        by_digest = dict(zip(digests, fetched, strict=True))
        for p in entry.platforms:
            r = by_digest[p.digest]
            if isinstance(r, NotFound):
                problems.append(
                    Problem(
                        "not-served",
                        display,
                        f"{display}: locked platform {p.platform} digest {p.digest} is not served",
                    )
                )
            elif isinstance(r, LockmanError):
                kind = r.kind if isinstance(r, VerificationError) else "registry"
                problems.append(Problem(kind, display, f"{display} ({p.platform}): {r}", r.exit_code))
            elif isinstance(r, BaseException):
                raise r
            elif p.digest in listed:
                try:
                    check_descriptor(listed[p.digest], r, what=f"{display} ({p.platform})")
                except VerificationError as e:
                    problems.append(Problem("media-type-mismatch", display, str(e)))
    return problems


async def run(
    config_path: Path,
    *,
    offline: bool,
    timeout: float,
    signatures: SignatureOptions | None = None,
    deep: bool = False,
    no_cache: bool = False,
    fmt: report.Format = "text",
) -> int:
    config = load_config(config_path)
    for warning in xcargo.warnings(config):
        err(f"warning: {warning}")
    options = signature_options(signatures)
    policies = None
    if options.wanted(config.path):
        from lockman.enforce.check import load_policies

        if offline:  # signatures are not checked offline: nor is the trusted root fetched
            options = replace(options, tuf_offline=True)
        policies = load_policies(config.path, options)  # bad keys or policies: exit 2, no network
    try:
        lock = lockfile.read(config.lockfile_path)
    except lockfile.LockfileConflict as conflict:  # drift, like a missing lockfile: exit 1
        lock, conflicted = None, [Problem("merge-conflict", "", str(conflict))]
    else:
        conflicted = []
    problems = conflicted or consistency(config, lock)
    checked: list[LockedImage] = []
    deep_blobs: int | None = None
    deep_bytes = 0
    signed: list[ImageSignatures] = []
    if policies is not None and offline:
        err("warning: --offline: signatures are not checked (they live in the registry)")
    if not offline and lock is not None:
        entries = lock.by_key()
        targets = [
            (w.use.ref, entries[w.key]) for w in wanted_images(config.images, config.path) if w.key in entries
        ]
        from lockman.registry.cache import ManifestCache

        # Every manifest is fetched and hashed as served (a GET of a manifest costs what the HEAD
        # a cache hit would send costs): verify proves what the registry serves now, and a cache
        # hit would hide bytes edited in its storage. Fetched manifests still fill the cache.
        cache = None if no_cache else ManifestCache(read=False)
        async with RegistryClient(timeout=timeout, cache=cache) as client:
            await client.prefetch_tokens([r for r, _ in targets])
            with progress(len(targets), "verifying images") as tick:
                results, signed = await asyncio.gather(
                    asyncio.gather(*(tracked(_check_online(client, r, e), tick) for r, e in targets)),
                    _check_signatures(client, targets, policies, options.recursive),
                )
            if deep:
                from lockman.images.deep_verify import DeepVerifier

                # Every image whose manifests check out is deep-checked, whatever the others'
                # problems: one missing manifest must not hide another image's corrupt layer.
                verifier = DeepVerifier(client)
                sound = [t for t, found in zip(targets, results, strict=True) if not found]
                blob_errors = await asyncio.gather(*(verifier.check(r, e) for r, e in sound))
                results = [
                    *results,
                    *(
                        [Problem("blob", e.display, str(x), x.exit_code) for x in b]
                        for (_, e), b in zip(sound, blob_errors, strict=True)
                    ),
                ]
                deep_blobs, deep_bytes = verifier.blobs, verifier.bytes_hashed
        for r in results:
            problems.extend(r)
        problems.extend(_signature_problems(signed))
        checked = [e for _, e in targets]
    elif lock is not None:
        checked = list(lock.images)
    if fmt == "text":  # in JSON each image carries its signatures; stdout holds only the report
        for s in signed:
            for line in s.lines():
                info(line)
    for p in problems:
        err(f"error: {p.message}")
    by_image = {s.image: s.as_dict() for s in signed}
    result = report.VerifyReport(
        str(config.lockfile_path),
        offline,
        tuple(
            report.VerifiedImage(e.name, e.tag, e.digest, e.source, by_image.get(e.display)) for e in checked
        ),
        tuple(report.VerifyProblem(p.kind, p.image, p.message) for p in problems),
        signed=len(signed),
        blobs=deep_blobs,
        blob_bytes=deep_bytes,
    )
    rendered = report.render_verify(result, fmt, colour=use_colour())
    if rendered:
        (info if fmt == "text" else out)(rendered.rstrip("\n"))
    if problems:
        return worst(p.exit_code for p in problems)
    return EXIT_OK


async def _check_signatures(
    client: RegistryClient,
    targets: list[tuple[Reference, LockedImage]],
    policies: PolicySet | None,
    recursive: bool,
) -> list[ImageSignatures]:
    """Signature verdicts for every locked image a policy covers (see lockman.enforce.check)."""
    if policies is None:
        return []
    from lockman.enforce.check import SignatureTarget, check_all

    sig_targets = [SignatureTarget.for_entry(ref, e) for ref, e in targets]
    return await check_all(client, sig_targets, policies, recursive=recursive)


def _signature_problems(signed: list[ImageSignatures]) -> list[Problem]:
    return [
        Problem("signature", s.image, message, c.exit_code) for s in signed for c, message in s.failures()
    ]
