"""Verifying a lock: consistency with the config, then (online) every locked digest as the
registry serves it, deeply (every blob) when asked, and signatures where a policy applies.

The work behind `lockman verify`, callable without the CLI: :func:`verify` returns a
:class:`VerifyResult` whose problems each carry a kind (``lockman.report.PROBLEM_KINDS``) and
an exit code, and prints nothing; the command renders it. Offline, only consistency: every
image the config uses has an entry, pins agree, nothing stale. Online, also: every locked digest
(and each locked platform digest) is fetched by digest and its bytes hashed as the registry
serves them (never from the local cache); an index must still list the locked platforms.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lockman.enforce.options import SignatureOptions
from lockman.errors import EXIT_VERIFY, LockmanError, VerificationError
from lockman.images.hooks import SILENT, Connect, Hooks, connect_default, tracked
from lockman.images.locker import pin_mismatches, platforms_of, wanted_images
from lockman.model import lockfile, xcargo
from lockman.model.lockfile import LockedImage, Lockfile
from lockman.model.manifest import check_descriptor
from lockman.model.reference import Reference
from lockman.model.vulns import Finding, VulnDiff, VulnPolicy
from lockman.model.xcargo import XcargoConfig
from lockman.registry.cache import ManifestCache
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
                    f"{display}: used by {w.use.where(config.path)} but not in {lock_path.name}; "
                    "run `lockman update`",
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
                    check_descriptor(listed[p.digest], r)
                except VerificationError as e:
                    named = e.with_subject(f"{display} ({p.platform})")
                    problems.append(Problem("media-type-mismatch", display, str(named)))
    return problems


@dataclass(frozen=True)
class VerifyOptions:
    offline: bool = False  # consistency only: no network, no signatures
    deep: bool = False  # also stream and hash every config and layer blob
    no_cache: bool = False  # store nothing fetched in the manifest cache either
    vuln_policy: VulnPolicy = field(default_factory=VulnPolicy)  # lockman.toml [vulnerabilities]
    osv_url: str | None = None  # OSV's base URL (None: https://api.osv.dev)
    report_moved: bool = False  # also HEAD each unpinned tag: has it moved off the locked digest?


@dataclass(frozen=True)
class MovedTag:
    """A tag the config uses unpinned (a bare tag, a built-in image) that now points at another
    digest than the lock records: not a problem (the lock still pins what it pinned), but
    nothing else proposes the update (Renovate bumps only what xcargo.toml spells out)."""

    name: str
    tag: str
    locked_digest: str  # the tag's digest as locked (the index, for a platform pin of one)
    tag_digest: str  # what the tag points at now

    @property
    def display(self) -> str:
        return f"{self.name}:{self.tag}"


@dataclass(frozen=True)
class VerifyResult:
    """What verify checked and found; ``ok`` when nothing."""

    lockfile_path: Path
    offline: bool
    checked: tuple[LockedImage, ...] = ()
    problems: tuple[Problem, ...] = ()
    signed: tuple[ImageSignatures, ...] = ()  # a verdict per image a signature policy covers
    blobs: int | None = None  # deep: blobs streamed and hashed (None: not deep)
    blob_bytes: int = 0
    vulnerabilities: Mapping[tuple[str, str], VulnDiff] = field(default_factory=dict)  # refuse set
    moved: tuple[MovedTag, ...] | None = None  # report_moved: the moved tags (None: not asked)
    # Every platform's scan (``vulnerabilities`` holds the first's), under a refuse policy.
    vulnerabilities_by_platform: Mapping[tuple[str, str], tuple[VulnDiff, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify(
    config: XcargoConfig,
    options: VerifyOptions = VerifyOptions(),
    *,
    signatures: SignatureOptions | None = None,
    connect: Connect = connect_default,
    hooks: Hooks = SILENT,
) -> VerifyResult:
    for warning in xcargo.warnings(config):
        hooks.tell(f"warning: {warning}")
    signatures = signatures or SignatureOptions()
    policies = _policies(config, signatures, options.offline)  # bad keys or policies: no network
    lock, problems = _read(config)
    if policies is not None and options.offline:
        hooks.tell("warning: --offline: signatures are not checked (they live in the registry)")
    if options.offline or lock is None:
        checked = tuple(lock.images) if lock is not None else ()
        return VerifyResult(config.lockfile_path, options.offline, checked, tuple(problems))
    online = await _online(config, lock, options, policies, signatures.recursive, connect, hooks)
    return replace(online, problems=(*problems, *online.problems))


def _policies(config: XcargoConfig, signatures: SignatureOptions, offline: bool) -> PolicySet | None:
    if not signatures.wanted(config.path):
        return None
    from lockman.enforce.check import load_policies

    if offline:  # signatures are not checked offline: nor is the trusted root fetched
        signatures = replace(signatures, tuf_offline=True)
    return load_policies(config.path, signatures)


def _read(config: XcargoConfig) -> tuple[Lockfile | None, list[Problem]]:
    """The lock and its consistency problems; a conflicted lock is drift, like a missing one."""
    try:
        lock = lockfile.read(config.lockfile_path)
    except lockfile.LockfileConflict as conflict:
        return None, [Problem("merge-conflict", "", str(conflict))]
    return lock, consistency(config, lock)


async def _online(
    config: XcargoConfig,
    lock: Lockfile,
    options: VerifyOptions,
    policies: PolicySet | None,
    recursive: bool,
    connect: Connect,
    hooks: Hooks,
) -> VerifyResult:
    """Every locked image the config uses, checked against its registry."""
    entries = lock.by_key()
    wanted = [w for w in wanted_images(config.images, config.path) if w.key in entries]
    targets = [(w.use.ref, entries[w.key]) for w in wanted]
    # Tags nothing pins: the ones whose moves only `lockman update` would ever pick up.
    followed = [(w.use.ref, entries[w.key]) for w in wanted if not w.use.pinned and w.use.tag]
    # Every manifest is fetched and hashed as served (a GET of a manifest costs what the HEAD
    # a cache hit would send costs): verify proves what the registry serves now, and a cache
    # hit would hide bytes edited in its storage. Fetched manifests still fill the cache.
    cache = None if options.no_cache else ManifestCache(read=False)
    async with connect(cache) as client:
        await client.prefetch_tokens([r for r, _ in targets])
        with hooks.progress(len(targets), "verifying images") as tick:
            results, signed, moved = await asyncio.gather(
                asyncio.gather(*(tracked(_check_online(client, r, e), tick) for r, e in targets)),
                _check_signatures(client, targets, policies, recursive),
                _moved_tags(client, followed, hooks) if options.report_moved else _none(),
            )
        deep = await _deep(client, targets, results) if options.deep else ([], None, 0)
        scans = await _scan(client, targets, results, options)
    problems = (*(p for r in results for p in r), *deep[0], *_signature_problems(signed))
    problems += tuple(_vulnerability_problems(targets, scans, options.vuln_policy))
    checked = tuple(e for _, e in targets)
    first = {k: v[0] for k, v in scans.items() if v}
    return VerifyResult(
        config.lockfile_path, False, checked, problems, tuple(signed), deep[1], deep[2], first, moved, scans
    )  # fmt: skip


async def _scan(
    client: RegistryClient,
    targets: list[tuple[Reference, LockedImage]],
    results: list[list[Problem]],
    options: VerifyOptions,
) -> dict[tuple[str, str], tuple[VulnDiff, ...]]:
    """Only under a ``[vulnerabilities] refuse`` policy: the known vulnerabilities of each image
    whose manifests check out, per platform (see lockman.images.insight.scan_all)."""
    policy = options.vuln_policy
    if policy.refuse is None or not policy.enabled:
        return {}
    from lockman.images.insight import scan_all
    from lockman.images.inspect_moved import osv_client

    sound = [t for t, found in zip(targets, results, strict=True) if not found]
    return await scan_all(client, sound, osv_client(client, options.osv_url)) if sound else {}


def _vulnerability_problems(
    targets: list[tuple[Reference, LockedImage]],
    scans: Mapping[tuple[str, str], tuple[VulnDiff, ...]],
    policy: VulnPolicy,
) -> list[Problem]:
    """One problem per image refused on any platform; each id once, with the platforms it is on
    when the image has several."""
    out = []
    for _, e in targets:
        where: dict[str, list[str]] = {}
        found = []
        for d in scans.get(e.key, ()):
            for f in policy.refused(d):
                if f.id not in where:
                    found.append(f)
                where.setdefault(f.id, []).append(d.platform)
        if found:
            several = len(scans[e.key]) > 1
            ids = ", ".join(_refused_text(f, where[f.id] if several else []) for f in found[:5])
            more = f" and {len(found) - 5} more" if len(found) > 5 else ""
            what = "vulnerability" if len(found) == 1 else "vulnerabilities"
            out.append(
                Problem(
                    "vulnerability",
                    e.display,
                    f"{e.display}: {len(found)} known {what} at or above {policy.refuse}: {ids}{more} "
                    "(lockman.toml [vulnerabilities] accept lists the ids to allow)",
                )
            )
    return out


def _refused_text(f: Finding, platforms: list[str]) -> str:
    return f"{f.id} ({f.severity})" + (f" on {', '.join(platforms)}" if platforms else "")


async def _none() -> None:
    return None


async def _moved_tags(
    client: RegistryClient, followed: list[tuple[Reference, LockedImage]], hooks: Hooks
) -> tuple[MovedTag, ...]:
    """One HEAD per followed tag; those that point elsewhere than the lock records. A tag that
    cannot be asked is a warning, not a problem: this is news, not verification."""

    async def one(ref: Reference, e: LockedImage) -> MovedTag | None:
        try:
            now = (await client.resolve(ref.with_digest(None))).digest
        except LockmanError as x:
            hooks.tell(f"warning: {e.display}: cannot tell whether the tag moved: {x}")
            return None
        locked = e.index_digest or e.digest
        return MovedTag(e.name, e.tag, locked, now) if now != locked else None

    found = await asyncio.gather(*(one(r, e) for r, e in followed))
    return tuple(m for m in found if m is not None)


async def _deep(
    client: RegistryClient, targets: list[tuple[Reference, LockedImage]], results: list[list[Problem]]
) -> tuple[list[Problem], int | None, int]:
    """Every blob of every image whose manifests check out, streamed and hashed: the problems,
    the blobs and the bytes hashed.

    Whatever the others' problems: one missing manifest must not hide another image's corrupt
    layer.
    """
    from lockman.images.deep_verify import DeepVerifier

    verifier = DeepVerifier(client)
    sound = [t for t, found in zip(targets, results, strict=True) if not found]
    blob_errors = await asyncio.gather(*(verifier.check(r, e) for r, e in sound))
    problems = [
        Problem("blob", e.display, str(x), x.exit_code)
        for (_, e), b in zip(sound, blob_errors, strict=True)
        for x in b
    ]
    return problems, verifier.blobs, verifier.bytes_hashed


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
