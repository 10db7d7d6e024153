"""Updating a lock: plan, resolve, select, repin, signature gate, write; the outcome as data.

The work behind `lockman update`, callable without the CLI: :func:`update` returns an
:class:`UpdateResult` (the lock before and after, the files written, what failed) and prints
nothing; the command renders it. ``UpdateOptions.images`` limits the run to the named images;
every other entry is kept as it is. Plain update never touches xcargo.toml; ``repin`` moves
pins (``image = "x:tag@sha256:…"``) whose tag has moved, in xcargo.toml and the lock together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lockman.console import short
from lockman.enforce.options import SignatureOptions
from lockman.errors import DigestMismatch, LockmanError, SizeMismatch, about
from lockman.fileio import read_utf8, write_together
from lockman.images.hooks import SILENT, Connect, Hooks, connect_default, tracked
from lockman.images.locker import Outcome, Wanted, gather_all, lock_one, platforms_of, wanted_images
from lockman.images.selection import select
from lockman.model import lockfile, pinning, xcargo
from lockman.model.lockfile import LockedImage, Lockfile
from lockman.model.platforms import parse_platform
from lockman.model.vulns import VulnPolicy
from lockman.model.xcargo import XcargoConfig
from lockman.registry.cache import ManifestCache
from lockman.registry.client import RegistryClient

if TYPE_CHECKING:
    from lockman.enforce.check import ImageSignatures
    from lockman.model.insight import Insight
    from lockman.signatures import PolicySet


@dataclass(frozen=True)
class UpdateOptions:
    images: Sequence[str] = ()  # selectors (name, name:tag, target triple); none: every image
    repin: bool = False
    platform: str | None = None  # lock this platform's manifest; "all": the tag's digest; None: keep
    keep_going: bool = False  # images that resolved are locked although others failed
    write: bool = True  # False: plan only (--check, --dry-run)
    insight: bool = True  # look inside moved images (labels, layers, SBOM)
    vulnerabilities: bool = True  # with insight: look the SBOMs' packages up in OSV
    osv_url: str | None = None  # OSV's base URL (None: https://api.osv.dev)
    vuln_policy: VulnPolicy = field(default_factory=VulnPolicy)  # lockman.toml [vulnerabilities]

    def __post_init__(self) -> None:
        if self.platform is not None and self.platform != "all":
            with about("--platform"):
                parse_platform(self.platform)  # bad input before any file or network


@dataclass(frozen=True)
class UpdateResult:
    """What an update found and did. ``new`` is None when the run stopped and wrote nothing:
    an image failed (without ``keep_going``), a signature was refused, or insight met bytes
    that do not hash to their digest."""

    config_path: Path
    lockfile_path: Path
    old: Lockfile | None = None  # as read; an entry edited outside lockman described from its digest
    new: Lockfile | None = None
    errors: tuple[LockmanError, ...] = ()  # what stopped the run; with keep_going: images kept as they were
    signed: tuple[ImageSignatures, ...] = ()  # verdicts for each digest about to enter the lock
    insights: Mapping[tuple[str, str], Insight] = field(default_factory=dict)
    # Pinned images whose tag moved; the pin stays (repin moves it). With ``split_pin``, a bare
    # use of the same name:tag stays at the pin too: a bot's branch owns it, and the run goes on.
    kept_pins: tuple[Outcome, ...] = ()
    lock_changes: bool = False
    config_text: str | None = None  # xcargo.toml before and after repin (None: not read)
    new_config_text: str | None = None
    written: tuple[Path, ...] = ()
    # (file, text, new text) of the project's other files whose pins repin moves (images.sources)
    other_files: tuple[tuple[Path, str, str], ...] = ()

    @property
    def stopped(self) -> bool:
        return self.new is None

    @property
    def refused(self) -> bool:
        return any(s.failures() for s in self.signed)

    @property
    def config_changes(self) -> bool:
        return self.new_config_text is not None and self.new_config_text != self.config_text

    @property
    def changed(self) -> bool:
        return self.lock_changes or self.config_changes or bool(self.other_files)


def _named(o: Outcome, e: LockmanError) -> LockmanError:
    """The error, naming the image when it does not already (a network error names a host)."""
    return e.with_subject(o.wanted.use.ref.familiar())


async def _check_signatures(
    client: RegistryClient,
    outcomes: list[Outcome],
    previous: dict[tuple[str, str], LockedImage],
    policies: PolicySet,
    recursive: bool,
) -> tuple[ImageSignatures, ...]:
    """The signature verdict for every digest about to enter the lock.

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
    return tuple(await check_all(client, targets, policies, recursive=recursive))


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


def recover_conflict(
    conflict: lockfile.LockfileConflict, wanted: Sequence[Wanted], path: Path, hooks: Hooks = SILENT
) -> Lockfile:
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
    hooks.tell(
        f"notice: {path} has merge conflicts: locking afresh from the config, keeping what either "
        f"side locked where the config still uses it{note}"
    )
    return Lockfile(tuple(merged.values())).sorted()


def details_changed(old: Lockfile | None, new: Lockfile) -> list[str]:
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


def _policies(config: XcargoConfig, signatures: SignatureOptions) -> PolicySet | None:
    if not signatures.wanted(config.path):
        return None
    from lockman.enforce.check import load_policies

    return load_policies(config.path, signatures)


def _read_old(lock_path: Path, wanted: Sequence[Wanted], hooks: Hooks) -> Lockfile | None:
    """The lock as it is (a conflicted one recovered), each entry edited by hand announced."""
    try:
        old = lockfile.read(lock_path)
    except lockfile.LockfileConflict as conflict:
        old = recover_conflict(conflict, wanted, lock_path, hooks)
    previous = old.by_key() if old else {}
    for w in wanted:
        e = previous.get(w.key)
        if e is not None and e.edited_outside:
            hooks.tell(
                f"notice: {lock_path}: {e.display} was edited outside lockman (digest {short(e.digest)}, "
                f"details read from {short(e.details_from)}); rebuilding the entry from the registry"
            )
    return old


async def update(
    config: XcargoConfig,
    options: UpdateOptions = UpdateOptions(),
    *,
    signatures: SignatureOptions | None = None,
    connect: Connect = connect_default,
    hooks: Hooks = SILENT,
) -> UpdateResult:
    """Re-resolve the config's images and rewrite the lock (and with repin the config) when
    something moved; under the lockfile's lock, so concurrent runs do not interleave."""
    signatures = signatures or SignatureOptions()
    policies = _policies(config, signatures)
    for warning in xcargo.warnings(config):
        hooks.tell(f"warning: {warning}")
    every = wanted_images(config.images, config.path)
    wanted = select(every, options.images, config)
    with lockfile.locked(config.lockfile_path, also=(config.path,)):
        old = _read_old(config.lockfile_path, wanted, hooks)
        run = _Update(config, options, every, wanted, old, policies, signatures.recursive, hooks)
        # The cache lets the no-change path check recorded details for free (see locker).
        async with connect(ManifestCache()) as client:
            stop = await run.fetch(client)
        return stop or run.finish()


class _Update:
    """One run's state between its steps (resolve, repin, gate, inspect; then the new files)."""

    def __init__(
        self,
        config: XcargoConfig,
        options: UpdateOptions,
        every: list[Wanted],
        wanted: list[Wanted],
        old: Lockfile | None,
        policies: PolicySet | None,
        recursive: bool,
        hooks: Hooks,
    ) -> None:
        self.config, self.options, self.every, self.wanted = config, options, every, wanted
        self.old, self.previous = old, old.by_key() if old else {}
        self.policies, self.recursive, self.hooks = policies, recursive, hooks
        self.outcomes: list[Outcome] = []
        self.moved_to: dict[tuple[str, str], str] = {}
        self.errors: tuple[LockmanError, ...] = ()
        self.signed: tuple[ImageSignatures, ...] = ()
        self.insights: Mapping[tuple[str, str], Insight] = {}
        self.described: dict[tuple[str, str], LockedImage] = {}  # see _describe_edited

    def stopped(self, errors: tuple[LockmanError, ...] = ()) -> UpdateResult:
        return UpdateResult(
            self.config.path, self.config.lockfile_path, self.reported_old(), None, errors, self.signed
        )

    def reported_old(self) -> Lockfile | None:
        """The old lock as the report compares it: entries edited outside lockman described by
        their digests' real manifests (the new lock is built from ``self.old`` as it is)."""
        if self.old is None or not self.described:
            return self.old
        return Lockfile(tuple(self.described.get(e.key, e) for e in self.old.images), self.old.version)

    async def fetch(self, client: RegistryClient) -> UpdateResult | None:
        """Everything that needs the registry; the result when the run stops here, else None."""
        await client.prefetch_tokens([w.use.ref for w in self.wanted])
        self.outcomes = await self._resolve(client)
        if self.options.repin and not any(o.error for o in self.outcomes):
            self.moved_to = {o.wanted.key: o.tag_moved_to for o in self.outcomes if o.tag_moved_to}
            self.outcomes = await _repin(client, self.outcomes)
        self.errors = tuple(_named(o, o.error) for o in self.outcomes if o.error is not None)
        if self.errors and not self.options.keep_going:
            return self.stopped(self.errors)
        try:
            self.described = await _describe_edited(client, self.outcomes, self.previous)
        except LockmanError as e:  # only bytes that do not hash to their digest get here
            return self.stopped((e,))
        if self.policies is not None:
            self.signed = await _check_signatures(
                client, self.outcomes, self.previous, self.policies, self.recursive
            )
            if any(s.failures() for s in self.signed):
                return self.stopped()
        try:
            self.insights = await self._inspect(client)
        except LockmanError as e:  # only bytes that do not hash to their digest get here
            return self.stopped((e,))
        refused = self._refused()
        return self.stopped(refused) if refused else None

    def _refused(self) -> tuple[LockmanError, ...]:
        """lockman.toml's ``[vulnerabilities] refuse``: a digest introducing a vulnerability at or
        above that severity (and not accepted) is not locked, and the run writes nothing."""
        from lockman.errors import VulnerabilityRefused
        from lockman.model.vulns import distinct

        out: list[LockmanError] = []
        policy = self.options.vuln_policy
        for (name, tag), insight in sorted(self.insights.items()):
            found = distinct(f for v in insight.vulnerability_results for f in policy.refused(v))
            if found:
                ids = ", ".join(f"{f.id} ({f.severity})" for f in found[:5])
                more = f" and {len(found) - 5} more" if len(found) > 5 else ""
                out.append(
                    VulnerabilityRefused(
                        f"the new digest introduces {len(found)} known "
                        f"vulnerabilit{'y' if len(found) == 1 else 'ies'} at or above {policy.refuse}: "
                        f"{ids}{more} (lockman.toml [vulnerabilities] accept lists the ids to allow)",
                        subject=f"{name}:{tag}" if tag else name,
                    )
                )
        return tuple(out)

    async def _resolve(self, client: RegistryClient) -> list[Outcome]:
        with self.hooks.progress(len(self.wanted), "resolving images") as tick:
            return await gather_all(
                tracked(
                    lock_one(
                        client,
                        w,
                        self.previous.get(w.key),
                        effective_platform(self.options.platform, self.previous.get(w.key)),
                    ),
                    tick,
                )
                for w in self.wanted
            )

    async def _inspect(self, client: RegistryClient) -> Mapping[tuple[str, str], Insight]:
        if not self.options.insight:
            return {}
        from lockman.images.inspect_moved import gather, osv_client

        changed = [
            (o.wanted.use.ref, self.described.get(o.wanted.key) or self._before(o.wanted), o.entry)
            for o in self.outcomes
        ]
        use_osv = self.options.vulnerabilities and self.options.vuln_policy.enabled
        osv = osv_client(client, self.options.osv_url) if use_osv else None
        return await gather(client, changed, self.policies, osv)

    def _before(self, w: Wanted) -> LockedImage | None:
        """The entry ``w`` replaces: its own, or after a tag bump the one entry of the same image
        for a tag the config no longer uses (what the report shows as ``1.70 → 1.71``)."""
        if w.key in self.previous:
            return self.previous[w.key]
        used = {x.key for x in self.every}
        gone = [e for k, e in self.previous.items() if k not in used and e.name == w.use.name]
        fresh = [x for x in self.every if x.use.name == w.use.name and x.key not in self.previous]
        return gone[0] if len(gone) == 1 and len(fresh) == 1 else None

    def finish(self) -> UpdateResult:
        """The new lock (and config), written unless ``options.write`` is off."""
        new = self._new_lock()
        text = lockfile.dumps(new)
        current_text = read_utf8(self.config.lockfile_path) if self.old is not None else None
        config_text, new_config_text = self._repinned_config()
        result = UpdateResult(
            self.config.path,
            self.config.lockfile_path,
            self.reported_old(),
            new,
            self.errors,
            self.signed,
            self.insights,
            tuple(o for o in self.outcomes if o.tag_moved_to and o.wanted.key not in self.moved_to),
            text != current_text,
            config_text,
            new_config_text,
            other_files=self._repinned_sources(),
        )
        if result.changed and self.options.write:
            result = replace(result, written=_write(result, text))
        return result

    def _new_lock(self) -> Lockfile:
        fresh = [o.entry for o in self.outcomes if o.entry is not None]
        # keep_going: an image that failed keeps its old entry (a new one stays out).
        previous = self.previous
        fresh += [previous[o.wanted.key] for o in self.outcomes if o.error and o.wanted.key in previous]
        if self.options.images:  # a selective run leaves every other entry exactly as it was
            chosen, used = {w.key for w in self.wanted}, {w.key for w in self.every}
            names = {w.use.name for w in self.wanted}
            # ... except the named images' entries the config no longer uses (the old tag after a
            # tag bump), so `lockman update NAME` after a bot's bump leaves no stale entry.
            fresh += [
                e
                for e in (self.old.images if self.old else ())
                if e.key not in chosen and (e.key in used or e.name not in names)
            ]
        return Lockfile(tuple(fresh)).sorted()

    def _repinned_config(self) -> tuple[str | None, str | None]:
        """xcargo.toml as it is and with the moved pins rewritten; (None, None) without repins."""
        if not self.moved_to:
            return None, None
        config_text = read_utf8(self.config.path) or ""  # bytes as they are: CRLF stays CRLF
        moved_to = self.moved_to
        by_key = {(w.use.name, w.use.tag): moved_to[w.key] for w in self.wanted if w.key in moved_to}
        new_config_text, _ = pinning.rewrite(
            config_text,
            self.config.path,
            # pins move; a bare use of the same name:tag stays bare
            lambda _k, ref: by_key.get((ref.written, ref.tag or "")) if ref.digest else None,
        )
        return config_text, new_config_text

    def _repinned_sources(self) -> tuple[tuple[Path, str, str], ...]:
        """The moved pins in the project's Dockerfiles, Cross.toml, workflows, compose files."""
        if not self.moved_to:
            return ()
        from lockman.images import sources
        from lockman.model.reference import parse
        from lockman.model.sources import splice

        by_key = {w.key: self.moved_to[w.key] for w in self.wanted if w.key in self.moved_to}
        found = sources.discover(self.config.path.parent)
        out = []
        for rel, text in (found.texts or {}).items():
            spans: dict[tuple[int, int], str] = {}
            for f in found.found:
                ref = parse(f.ref)
                digest = by_key.get((ref.written, ref.tag or ""))
                if f.path == rel and f.span is not None and ref.digest and digest:
                    spans[f.span] = pinning.pinned_text(ref, digest)
            if spans:
                out.append((self.config.path.parent / rel, text, splice(text, spans)))
        return tuple(out)


async def _describe_edited(
    client: RegistryClient, outcomes: Sequence[Outcome], previous: Mapping[tuple[str, str], LockedImage]
) -> dict[tuple[str, str], LockedImage]:
    """Old entries edited outside lockman (a digest set back by hand) whose digest moves, with
    platforms read from the old digest's real manifest: what changed is reported against what
    that digest is, not against details the lock recorded for another manifest. One fetch each
    (cached; insight reads the same manifest); one that cannot be read keeps the lock's words."""

    async def describe(o: Outcome, e: LockedImage) -> LockedImage:
        ref = o.wanted.use.ref.with_tag(None).with_digest(e.digest)
        try:
            m = await client.get_manifest(ref)
        except LockmanError as x:
            if isinstance(x, DigestMismatch | SizeMismatch):
                raise  # bytes that do not hash to their digest stop the run, as in insight
            return e
        platforms = platforms_of(m)
        return replace(
            e, platforms=platforms, media_type=m.media_type, details_from=e.digest if platforms else ""
        )

    edited = [
        (o, e)
        for o in outcomes
        if o.entry is not None
        and (e := previous.get(o.wanted.key)) is not None
        and e.edited_outside
        and not e.platform
        and e.digest != o.entry.digest
    ]
    found = await gather_all(describe(o, e) for o, e in edited)
    return {e.key: d for (_, e), d in zip(edited, found, strict=True)}


def _write(result: UpdateResult, text: str) -> tuple[Path, ...]:
    files: list[tuple[Path, bytes | str]] = []
    if result.config_changes:
        assert result.new_config_text is not None
        files.append((result.config_path, result.new_config_text))
    files += [(path, new) for path, _, new in result.other_files]
    if result.lock_changes:
        files.append((result.lockfile_path, text))
    write_together(files)  # with repin: xcargo.toml and xcargo.lock change together
    return tuple(p for p, _ in files)
