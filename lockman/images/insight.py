"""Reading what changed inside moved images: manifests, config blobs and SBOMs over the registry.

Only images whose digest moved (old and new both known) are inspected, each within a request
budget, all concurrently. Everything is fetched by digest and hashed: bytes that do not hash
to their digest raise :class:`VerificationError` (the caller refuses the run, as everywhere);
anything else that goes wrong (a missing config, no SBOM, a registry error, a budget spent)
becomes a note in the insight, never an error. Manifests and small blobs are cached by digest
(:mod:`lockman.registry.cache`), so the old side usually costs nothing the second time.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Coroutine, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from lockman.errors import DigestMismatch, LockmanError, SizeMismatch, VerificationError, about
from lockman.model import insight as model
from lockman.model import vulns
from lockman.model.insight import ImageFacts, Insight, PlatformFacts, Sbom, SbomError, SbomSignature
from lockman.model.lockfile import LockedImage
from lockman.model.manifest import Descriptor, Manifest, parse_manifest
from lockman.model.reference import Reference
from lockman.model.vulns import VulnDiff
from lockman.registry.blobs import read_blob
from lockman.registry.cache import BlobCache, ManifestCache
from lockman.registry.client import NotFound, RegistryClient
from lockman.registry.osv import Lookup, OsvClient, OsvUnavailable
from lockman.registry.referrers import fallback_tag

MAX_REQUESTS = 48
"""Registry calls per moved image (both sides), each at most one request (plus auth round trips);
what is left unread becomes a note."""
MAX_PLATFORMS = 8
"""Platforms whose manifests are compared per image (the platforms added/removed are all listed)."""
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_SBOM_BYTES = 16 * 1024 * 1024
MAX_SBOM_CANDIDATES = 4
"""Referrers (or .att layers) read per digest while looking for an SBOM."""
BUNDLE_TYPES = (
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
)
BUILDKIT_PREDICATE = "in-toto.io/predicate-type"
PREDICATE_ANNOTATIONS = ("dev.sigstore.bundle.predicateType", "predicateType")

T = TypeVar("T")


class AttestationVerifier(Protocol):
    """Verdicts on an SBOM's signature under the image's signature policy."""

    def __call__(self, digest: str, bundle: bytes) -> SbomSignature:
        """(subject digest, Sigstore bundle bytes) → verdict."""

    def cosign_att(
        self, digest: str, media_type: str, envelope: bytes, annotations: Mapping[str, str]
    ) -> SbomSignature:
        """(subject digest, one ``.att`` layer: media type, DSSE envelope, annotations) → verdict."""


@dataclass(frozen=True)
class Target:
    """One moved image: where it lives, its two lock entries, and how to check an attestation."""

    key: tuple[str, str]
    ref: Reference
    old: LockedImage
    new: LockedImage
    verifier: AttestationVerifier | None = None  # set when a signature policy applies to the image


class _Exhausted(Exception):
    """The image's request budget is spent."""


_TALLY: ContextVar[list[int] | None] = ContextVar("lockman_insight_tally", default=None)


class _CountingRequests(Counter[str]):
    """``RegistryClient.requests`` that also adds each request to the current image's tally.

    Every request the client sends is counted there (auth round trips included); an image's
    inspection runs in its own task with its own tally, so each image's count is exact, even
    with all of them in flight at once and with manifests the client already fetched this run
    (those cost nothing, and count nothing).
    """

    def __setitem__(self, key: str, value: int) -> None:
        tally = _TALLY.get()
        if tally is not None:
            tally[0] += value - self.get(key, 0)
        super().__setitem__(key, value)


def tampered(e: VerificationError) -> bool:
    """Bytes that do not hash to (or are not the size of) their digest: refused, not noted."""
    return isinstance(e, DigestMismatch | SizeMismatch)


class _Reader:
    """One image's fetches, counted against its budget."""

    def __init__(
        self, client: RegistryClient, t: Target, manifests: ManifestCache | None, blobs: BlobCache | None
    ) -> None:
        self.client, self.t, self.manifests, self.blobs = client, t, manifests, blobs
        self.ref = t.ref.with_tag(None).with_digest(None)
        self.calls = 0  # client calls allowed so far: each costs at most one request
        self.tally = [0]  # requests actually sent (see _CountingRequests)

    @property
    def requests(self) -> int:
        return self.tally[0]

    def spend(self) -> None:
        if self.calls >= MAX_REQUESTS:
            raise _Exhausted
        self.calls += 1

    async def manifest(self, digest: str) -> Manifest:
        raw = self.manifests.get(digest) if self.manifests is not None else None
        if raw is not None:
            with about(f"{self.ref.familiar()}@{digest}"):
                return parse_manifest(raw, None, digest)
        self.spend()
        m = await self.client.get_manifest(self.ref.with_digest(digest))
        if self.manifests is not None:
            self.manifests.put(digest, m.raw)
        return m

    async def blob(self, desc: Descriptor, limit: int, what: str) -> bytes | None:
        """The blob, hashed; None (the caller notes it) when it is over ``limit``."""
        if desc.size > limit:
            return None
        raw = self.blobs.get(desc.digest) if self.blobs is not None else None
        if raw is not None and len(raw) == desc.size:
            return raw
        self.spend()
        where = f"{self.ref.familiar()}: {what}"
        data = await read_blob(self.client, self.ref, desc, what=where, limit=limit)
        if self.blobs is not None:
            self.blobs.put(desc.digest, data)
        return data

    async def referrers(self, digest: str) -> list[Descriptor]:
        """The referrers API, else the ``sha256-<hex>`` fallback index (as registry.referrers)."""
        self.spend()
        index = await self.client.get_referrers(self.ref, digest)
        if index is None:
            self.spend()
            try:
                index = await self.client.get_manifest(self.ref.with_tag(fallback_tag(digest)))
            except NotFound:
                return []
            if not index.is_index:
                return []
        return list(index.manifests)

    # -- one side -----------------------------------------------------------------------------
    async def side(
        self, entry: LockedImage, platforms: Sequence[str], config_platform: str | None
    ) -> ImageFacts:
        notes: list[str] = []
        which = "old" if entry is self.t.old else "new"
        try:
            top = await self.manifest(entry.digest)
        except (LockmanError, _Exhausted) as e:
            self._note_or_raise(e, notes, f"{which} manifest not readable")
            return ImageFacts(notes=tuple(notes))
        # The children the manifest itself lists, whatever the lock recorded for this digest.
        children = {str(d.platform): d.digest for d in top.platform_children() if d.platform is not None}
        facts: dict[str, PlatformFacts] = {}
        config_of: Manifest | None = None
        labels_from: list[dict[str, object]] = []

        async def platform(plat: str) -> Manifest | None:
            if not top.is_index:
                return top
            try:
                return await self.manifest(children[plat])
            except (LockmanError, _Exhausted) as e:
                self._note_or_raise(e, notes, f"{which} {plat} manifest not readable")
                return None

        wanted = [p for p in platforms if not top.is_index or p in children]
        for plat, m in zip(wanted, await _all([platform(p) for p in wanted]), strict=True):
            if m is None:
                continue
            facts[plat] = PlatformFacts(tuple(d.digest for d in m.layers), sum(d.size for d in m.layers))
            if plat == config_platform:
                config_of = m
        created, env = None, dict[str, str]()
        if config_of is not None and config_of.config is not None:
            try:
                raw = await self.blob(config_of.config, MAX_CONFIG_BYTES, f"config {config_of.config.digest}")
                if raw is None:
                    notes.append(f"{which} config blob is over {MAX_CONFIG_BYTES} bytes; not read")
                else:
                    created, labels, env = model.config_facts(raw)
                    labels_from.append(labels)
            except (LockmanError, _Exhausted, SbomError) as e:
                self._note_or_raise(e, notes, f"{which} config not readable")
        labels_from.append(model.manifest_annotations(top.raw))
        if config_of is not None and config_of is not top:
            labels_from.append(model.manifest_annotations(config_of.raw))
        sbom, own = None, False
        try:
            child = config_of.digest if top.is_index and config_of is not None else None
            sbom = await self.sbom(entry.digest, notes, which, _buildkit_attestation(top, child))
            if sbom is None and child is not None:  # none for the index: the platform image's own
                sbom = await self.sbom(child, notes, which, None)
                own = sbom is not None
        except (LockmanError, _Exhausted) as e:
            self._note_or_raise(e, notes, f"{which} SBOM not readable")
        sboms: dict[str, Sbom | None] = {config_platform: sbom} if config_platform is not None else {}
        own = own or (sbom is not None and sbom.source == "buildkit-attestation")
        shared = sbom if not own else None
        for plat in facts:  # the other platforms, after the first: it has the budget first
            if plat not in sboms:
                try:
                    sboms[plat] = await self.platform_sbom(top, children.get(plat), shared, own, notes, which)
                except (LockmanError, _Exhausted) as e:
                    self._note_or_raise(e, notes, f"{which} {plat} SBOM not readable")
        return ImageFacts(created, model.oci_labels(*labels_from), facts, sbom, tuple(notes), env, sboms)

    async def platform_sbom(
        self, top: Manifest, child: str | None, shared: Sbom | None, own: bool, notes: list[str], which: str
    ) -> Sbom | None:
        """A platform's own SBOM (buildkit's attestation manifest naming its image: listed in
        the index, so found without a request), else the index's (``shared``, for all), else,
        when the first platform's image had its own (``own``), the referrers and ``.att`` of
        this platform's image: an index without any SBOM costs no look-up per platform.
        Under a signature policy a signed index-level SBOM comes first, as in :meth:`sbom`."""
        desc = _buildkit_attestation(top, child)
        if desc is not None and (self.t.verifier is None or shared is None):
            found = await self._buildkit_sbom(desc, notes, which)
            if found is not None:
                return found
        if shared is not None or not own or child is None:
            return shared
        return await self.sbom(child, notes, which, None)

    def _note_or_raise(self, e: Exception, notes: list[str], what: str) -> None:
        if isinstance(e, VerificationError) and tampered(e):
            raise e
        if isinstance(e, _Exhausted):
            text = f"request limit ({MAX_REQUESTS}) reached; the rest was not inspected"
            if text not in notes:
                notes.append(text)
        else:
            notes.append(f"{what}: {e}")

    # -- SBOMs --------------------------------------------------------------------------------
    async def sbom(
        self, digest: str, notes: list[str], which: str, buildkit: Descriptor | None
    ) -> Sbom | None:
        """The first SBOM attached to ``digest``: a Sigstore bundle (when a policy applies, it
        is checked), a plain SPDX/CycloneDX referrer, buildkit's attestation manifest in the
        index (``docker buildx build --sbom``), then cosign's ``.att`` tag.

        Without a policy, buildkit's SBOM comes first: the index already lists it, so no
        referrer look-up is needed.
        """
        if buildkit is not None and self.t.verifier is None:
            return await self._buildkit_sbom(buildkit, notes, which)
        found = await self.referrers(digest)
        bundles = [
            d
            for d in found
            if (d.artifact_type or "") in BUNDLE_TYPES
            and model.sbom_kind(_predicate(d) or "https://spdx.dev/Document") is not None
        ]
        plain = [d for d in found if model.sbom_kind(d.artifact_type) is not None]
        order = [*(("bundle", d) for d in bundles), *(("plain", d) for d in plain)]
        if self.t.verifier is None:
            order.sort(key=lambda kd: kd[0] != "plain")  # unsigned is as good, and cheaper
        for kind, desc in order[:MAX_SBOM_CANDIDATES]:
            sbom = await self._referrer_sbom(kind, desc, digest, notes, which)
            if sbom is not None:
                return sbom
        if buildkit is not None:
            return await self._buildkit_sbom(buildkit, notes, which)
        return await self._att_sbom(digest, notes, which)

    async def _buildkit_sbom(self, desc: Descriptor, notes: list[str], which: str) -> Sbom | None:
        m = await self.manifest(desc.digest)
        for layer in m.layers:
            predicate = layer.annotations.get(BUILDKIT_PREDICATE)
            if model.sbom_kind(predicate) is None:
                continue
            raw = await self.blob(layer, MAX_SBOM_BYTES, f"SBOM attestation {layer.digest}")
            if raw is None:
                notes.append(f"{which} SBOM attestation is over {MAX_SBOM_BYTES} bytes; not compared")
                return None
            try:
                sbom = model.parse_sbom(raw, predicate, "buildkit-attestation")
            except SbomError as e:
                notes.append(f"{which} SBOM attestation not readable: {e}")
                return None
            signature = None
            if self.t.verifier is not None:
                signature = SbomSignature(False, "buildkit attestations carry no signature")
            return _with(sbom, signature)
        return None

    async def _referrer_sbom(
        self, kind: str, desc: Descriptor, digest: str, notes: list[str], which: str
    ) -> Sbom | None:
        m = await self.manifest(desc.digest)
        if m.subject is not None and m.subject.digest != digest:
            return None  # a stale fallback-index entry about another image
        if not m.layers:
            return None
        raw = await self.blob(m.layers[0], MAX_SBOM_BYTES, f"SBOM {m.layers[0].digest}")
        if raw is None:
            notes.append(f"{which} SBOM is over {MAX_SBOM_BYTES} bytes; packages not compared")
            return None
        try:
            if kind == "plain":
                sbom = model.parse_sbom(raw, desc.artifact_type or m.artifact_type, "referrer")
            else:
                envelope = model.loads(raw, "Sigstore bundle")
                dsse = envelope.get("dsseEnvelope") if isinstance(envelope, dict) else None
                sbom = model.parse_sbom_doc(dsse, None, "sigstore-bundle")
        except SbomError as e:
            if kind == "plain" or _predicate(desc):  # an unlabelled bundle may be a signature
                notes.append(f"{which} SBOM not readable: {e}")
            return None
        signature = None
        if self.t.verifier is not None:
            signature = (
                self.t.verifier(digest, raw)
                if kind == "bundle"
                else SbomSignature(False, "a plain OCI referrer carries no signature")
            )
        return _with(sbom, signature)

    async def _att_sbom(self, digest: str, notes: list[str], which: str) -> Sbom | None:
        self.spend()
        try:
            att = await self.client.get_manifest(self.ref.with_tag(fallback_tag(digest) + ".att"))
        except NotFound:
            return None
        layers = [d for d in att.layers if model.sbom_kind(_predicate(d) or "https://spdx.dev/Document")]
        for desc in layers[:MAX_SBOM_CANDIDATES]:
            raw = await self.blob(desc, MAX_SBOM_BYTES, f"attestation {desc.digest}")
            if raw is None:
                notes.append(f"{which} SBOM attestation is over {MAX_SBOM_BYTES} bytes; not compared")
                continue
            try:
                sbom = model.parse_sbom(raw, _predicate(desc), "cosign-attestation")
            except SbomError as e:
                notes.append(f"{which} SBOM attestation not readable: {e}")
                continue
            signature = None
            if self.t.verifier is not None:
                signature = self.t.verifier.cosign_att(digest, desc.media_type, raw, desc.annotations)
            return _with(sbom, signature)
        return None


def _buildkit_attestation(top: Manifest, child: str | None) -> Descriptor | None:
    """The index's attestation manifest for ``child`` (buildkit's layout), if any."""
    if not top.is_index or child is None:
        return None
    for d in top.manifests:
        ann = d.annotations
        if ann.get("vnd.docker.reference.type") == "attestation-manifest" and (
            ann.get("vnd.docker.reference.digest") == child
        ):
            return d
    return None


def _predicate(d: Descriptor) -> str | None:
    return next((d.annotations[k] for k in PREDICATE_ANNOTATIONS if k in d.annotations), None)


def _with(sbom: Sbom, signature: SbomSignature | None) -> Sbom:
    return replace(sbom, signature=signature)


def _platforms(
    old: LockedImage, new: LockedImage
) -> tuple[list[str], str | None, tuple[str, ...], tuple[str, ...]]:
    """(platforms to compare, the one whose config is read, platforms added, removed).

    A single-platform image counts as the platform ``""`` (or its platform pin's name).
    """
    before = [p.platform for p in old.platforms] or [old.platform]
    after = [p.platform for p in new.platforms] or [new.platform]
    common = sorted(set(before) & set(after))
    config = "linux/amd64" if "linux/amd64" in common else (common[0] if common else None)
    chosen = sorted(common, key=lambda p: p != config)
    added = tuple(sorted(set(after) - set(before) - {""}))
    removed = tuple(sorted(set(before) - set(after) - {""}))
    return chosen[:MAX_PLATFORMS], config, added, removed


async def vulnerabilities(
    osv: OsvClient, old: Sbom | None, new: Sbom | None, platform: str, lookup: Lookup | None = None
) -> VulnDiff:
    """Known vulnerabilities fixed and introduced between two SBOMs (OSV's records read only
    for those, introduced first); "not-scanned" without both SBOMs, "unavailable" when OSV
    could not be asked. ``lookup`` is shared by an image's platforms: one request budget, and
    what one platform asked the next need not ask again."""
    if old is None or new is None:
        which = "either" if old is None and new is None else "the old" if old is None else "the new"
        return VulnDiff("not-scanned", platform, notes=(f"no SBOM for {which} digest",))
    if not old.purls and not new.purls:
        return VulnDiff("not-scanned", platform, notes=("the SBOMs name no package URLs",))
    lookup = lookup if lookup is not None else Lookup()
    sent = lookup.requests
    noted = lookup.since = len(lookup.notes)  # this platform's notes start here
    try:
        await osv.find(old.purls | new.purls, lookup)
        before = {i for p in old.purls for i in lookup.ids.get(p.purl, ())}
        after = {i for p in new.purls for i in lookup.ids.get(p.purl, ())}
        await osv.read([*sorted(after - before), *sorted(before - after)], lookup)
    except OsvUnavailable as e:
        return VulnDiff("unavailable", platform, notes=(str(e),), requests=lookup.requests - sent)
    return vulns.diff(
        old.purls, new.purls, lookup.ids, lookup.records,
        platform=platform, notes=lookup.notes[noted:], requests=lookup.requests - sent,
    )  # fmt: skip


async def by_platform(
    osv: OsvClient, old: ImageFacts, new: ImageFacts, platforms: Sequence[str]
) -> tuple[VulnDiff, ...]:
    """:func:`vulnerabilities` for each platform both sides read, in order, sharing one lookup;
    a platform whose SBOM was left unread (the request budget, an unreadable manifest) is
    "not-scanned", never clean. One platform when neither side read any per platform."""
    if not old.platform_sboms and not new.platform_sboms:
        return (await vulnerabilities(osv, old.sbom, new.sbom, platforms[0] if platforms else ""),)
    lookup, out = Lookup(), []
    unread = ("its SBOM was not read (see the insight's notes)",)
    for plat in platforms:
        if plat not in old.platform_sboms or plat not in new.platform_sboms:
            out.append(VulnDiff("not-scanned", plat, notes=unread))
            continue
        before, after = old.platform_sboms[plat], new.platform_sboms[plat]
        out.append(await vulnerabilities(osv, before, after, plat, lookup))
    return tuple(out)


async def inspect(
    client: RegistryClient,
    t: Target,
    manifests: ManifestCache | None,
    blobs: BlobCache | None,
    osv: OsvClient | None = None,
) -> Insight:
    reader = _Reader(client, t, manifests, blobs)
    _TALLY.set(reader.tally)  # this task's context only: each image counts its own
    plats, config, added, removed = _platforms(t.old, t.new)
    old, new = await _all([reader.side(t.old, plats, config), reader.side(t.new, plats, config)])
    insight = model.compare(old, new, requests=reader.requests)
    insight = replace(insight, platforms_added=added, platforms_removed=removed)
    if osv is None:
        return insight
    found = await by_platform(osv, old, new, plats or [config or ""])
    return replace(insight, vulnerabilities=found[0], vulnerabilities_by_platform=found)


async def inspect_all(
    client: RegistryClient, targets: Sequence[Target], *, cache: bool = True, osv: OsvClient | None = None
) -> dict[tuple[str, str], Insight]:
    """Insight for every target, concurrently; VerificationError when bytes were tampered with.

    With ``osv``, each image's SBOM packages are also looked up there (see :func:`vulnerabilities`).
    """
    manifests, blobs = (ManifestCache(), BlobCache()) if cache else (None, None)
    if not isinstance(client.requests, _CountingRequests):
        client.requests = _CountingRequests(client.requests)
    results = await _all([inspect(client, t, manifests, blobs, osv) for t in targets])
    return {t.key: r for t, r in zip(targets, results, strict=True)}


async def _all(aws: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Like gather, but the first failure (a refusal) cancels the rest: nothing is left running
    against a client about to close."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def scan_all(
    client: RegistryClient, targets: Sequence[tuple[Reference, LockedImage]], osv: OsvClient
) -> dict[tuple[str, str], tuple[VulnDiff, ...]]:
    """Known vulnerabilities present in each locked image, per platform (``verify`` under a
    ``[vulnerabilities] refuse`` policy): each platform's SBOM read as for insight, every id OSV
    names for its packages reported as ``introduced`` (against nothing), the first platform
    first; "not-scanned" without an SBOM. The image's platforms share one OSV lookup."""
    manifests, blobs = ManifestCache(), BlobCache()

    async def one(ref: Reference, entry: LockedImage) -> tuple[VulnDiff, ...]:
        reader = _Reader(client, Target(entry.key, ref, entry, entry), manifests, blobs)
        plats, config, _, _ = _platforms(entry, entry)
        try:
            facts = await reader.side(entry, plats, config)
        except LockmanError as e:  # bytes that do not hash: verify's own checks report them
            return (VulnDiff("not-scanned", config or "", notes=(str(e),)),)
        lookup, out = Lookup(), []
        for plat in plats or [config or ""]:
            if facts.platform_sboms and plat not in facts.platform_sboms:
                out.append(VulnDiff("not-scanned", plat, notes=("its SBOM was not read",)))
                continue
            sbom = facts.platform_sboms.get(plat) if facts.platform_sboms else facts.sbom
            if sbom is None:
                out.append(VulnDiff("not-scanned", plat, notes=("no SBOM for this digest",)))
                continue
            nothing = replace(sbom, packages=frozenset(), purls=frozenset())
            out.append(await vulnerabilities(osv, nothing, sbom, plat, lookup))
        return tuple(out)

    results = await _all([one(ref, e) for ref, e in targets])
    return {e.key: r for (_, e), r in zip(targets, results, strict=True)}


def moved(old: LockedImage | None, new: LockedImage | None) -> bool:
    """Whether an update entry is worth inspecting: both digests known and different, and the
    same kind of pin (``update --platform`` swapping an index for its own child is no rebuild)."""
    return old is not None and new is not None and old.digest != new.digest and old.platform == new.platform
