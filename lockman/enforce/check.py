"""Signature checks of locked images: policy (flags or lockman.toml) + registry → verdicts.

Sits between the pure verifier (:mod:`lockman.signatures`) and the commands. For each digest,
as cosign v3 does: Sigstore bundles attached as OCI referrers first, then the tag-based
``sha256-<hex>.sig`` signatures (or, for an attestation policy, the classic cosign
attestations of ``sha256-<hex>.att``); the first one that satisfies the policy wins. A
multi-platform image is checked at its index digest (what a pull by digest trusts); with
``recursive`` every locked platform manifest must be signed as well.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lockman.enforce.options import SignatureOptions, policy_path
from lockman.errors import EXIT_VERIFY, InputError, LockmanError, VerificationError
from lockman.model.digest import shorten
from lockman.model.lockfile import LockedImage
from lockman.model.manifest import INDEX_TYPES, Descriptor
from lockman.model.reference import Reference
from lockman.registry.client import NotFound, RegistryClient
from lockman.registry.referrers import list_referrers
from lockman.signatures import (
    COSIGN_SIGN_PREDICATE,
    SIMPLE_SIGNING_MEDIA_TYPE,
    PolicySet,
    SignatureLayer,
    SignatureResult,
    TrustedRoot,
    load_policy_file,
    load_public_key_file,
    signature_tag,
    verify_bundle,
    verify_signatures,
)
from lockman.signatures.attestation import DSSE_MEDIA_TYPE, attestation_tag, verify_attestations
from lockman.signatures.bundle import BUNDLE_MEDIA_TYPES
from lockman.signatures.policy import Policy, PolicyRule, build_policy, override

MAX_SIGNATURE_BLOB = 1024 * 1024
"""Payloads and bundles are a few KiB; anything near this is not a signature."""
MAX_SIGNATURES = 64
"""Layers (or bundles) tried per digest, so a hostile registry cannot make us fetch forever."""


def load_policies(config_path: Path, options: SignatureOptions) -> PolicySet | None:
    """The policies in force: the flags' signer for every image, else lockman.toml's rules.

    ``--trusted-root`` and the ``--insecure-*`` flags also apply on top of lockman.toml. None
    means no image needs a signature.
    """
    root = TrustedRoot.from_file(options.trusted_root) if options.trusted_root else None
    workflow = tuple(options.github_workflow.items())
    if options.has_signer:
        key = load_public_key_file(options.key) if options.key else None
        policy = build_policy(
            key=key,
            certificate_identity=options.certificate_identity,
            certificate_identity_regexp=options.certificate_identity_regexp,
            certificate_oidc_issuer=options.certificate_oidc_issuer,
            certificate_oidc_issuer_regexp=options.certificate_oidc_issuer_regexp,
            trusted_root=root,
            ignore_tlog=options.insecure_ignore_tlog,
            ignore_sct=options.insecure_ignore_sct,
            predicate_type=options.predicate_type,
            github_workflow=workflow,
        )
        return _with_current_root(
            PolicySet(rules=(PolicyRule(images=("*",), policy=policy),), source="command line"), options
        )
    path = policy_path(config_path)
    if not path.is_file():
        if options.modifies:
            raise InputError(
                "--trusted-root, --type, --certificate-github-workflow-*, --insecure-ignore-tlog, "
                "--insecure-ignore-sct and --recursive need "
                f"a signer: --key, --certificate-identity(-regexp) with --certificate-oidc-issuer(-regexp), "
                f"or [[policy]] rules in {path}"
            )
        return None
    policies = load_policy_file(path)
    overrides: dict[str, Any] = {}
    if root is not None:
        overrides["trusted_root"] = root
    if options.insecure_ignore_tlog:
        overrides["ignore_tlog"] = True
    if options.insecure_ignore_sct:
        overrides["ignore_sct"] = True
    if options.predicate_type is not None:
        overrides["predicate_type"] = options.predicate_type
    if workflow:
        overrides["github_workflow"] = workflow
    if overrides:
        rules = tuple(replace(r, policy=override(r.policy, **overrides)) for r in policies.rules)
        policies = replace(policies, rules=rules)
    return _with_current_root(policies, options)


def current_trusted_root(options: SignatureOptions) -> TrustedRoot:
    """The public-good root, kept current over TUF (one warning on stderr if it cannot be)."""
    from lockman.console import err
    from lockman.registry.client import DEFAULT_TIMEOUT
    from lockman.registry.trust_update import DEFAULT_TUF_URL, fetch_trusted_root
    from lockman.signatures.trust import DEFAULT_TRUSTED_ROOT_DATE, default_trusted_root

    url = options.tuf_url or DEFAULT_TUF_URL
    offline = options.tuf_offline
    root_path = options.tuf_root
    bootstrap = None
    if root_path is not None:
        try:
            bootstrap = root_path.read_bytes()
        except OSError as exc:
            raise InputError(f"{root_path}: cannot read TUF root ({exc.strerror or exc})") from exc
    fetched = fetch_trusted_root(
        url,
        bootstrap_root=bootstrap,
        offline=offline,
        embedded_date=DEFAULT_TRUSTED_ROOT_DATE,
        timeout=options.tuf_timeout if options.tuf_timeout is not None else DEFAULT_TIMEOUT,
    )
    if fetched.warning:
        err(fetched.warning)
    if fetched.data is None:
        return default_trusted_root()
    try:
        return TrustedRoot.from_json(fetched.data, source=fetched.source)
    except InputError as exc:
        err(f"warning: {exc}; using the shipped trusted root ({DEFAULT_TRUSTED_ROOT_DATE})")
        return default_trusted_root()


def _with_current_root(policies: PolicySet, options: SignatureOptions) -> PolicySet:
    """Policies without their own trusted root get the current public-good one, fetched over TUF
    at its first use and once per run: a ``--key`` with ``--insecure-ignore-tlog`` reads no root,
    so it reaches no TUF repository."""
    if all(r.policy.trusted_root is not None for r in policies.rules):
        return policies
    lock = threading.Lock()
    fetched: list[TrustedRoot] = []

    def once() -> TrustedRoot:
        with lock:
            if not fetched:
                fetched.append(current_trusted_root(options))
            return fetched[0]

    rules = tuple(
        r if r.policy.trusted_root is not None else replace(r, policy=replace(r.policy, root_source=once))
        for r in policies.rules
    )
    return replace(policies, rules=rules)


@dataclass(frozen=True)
class DigestCheck:
    """The verdict for one digest: the image itself (``platform`` None) or one platform."""

    digest: str
    platform: str | None = None
    result: SignatureResult | None = None
    reason: str | None = None
    exit_code: int = EXIT_VERIFY
    """1 when no signature passed, 3 when the registry failed us while fetching them."""

    @property
    def ok(self) -> bool:
        return self.result is not None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for structured reports."""
        r = self.result
        d: dict[str, Any] = {"digest": self.digest, "platform": self.platform, "verified": self.ok}
        if r is None:
            d["reason"] = self.reason
            return d
        d.update(
            kind=r.kind,
            index=r.index,
            signer=r.signer,
            key_fingerprint=r.key_fingerprint,
            certificate_identity=r.certificate_identity,
            certificate_issuer=r.certificate_issuer,
            tlog_log_index=r.tlog.log_index if r.tlog else None,
            tlog_integrated_time=r.tlog.integrated_time if r.tlog and r.tlog.set_verified else None,
            timestamps=list(r.timestamps),
            predicate_type=r.predicate_type,
        )
        return d


@dataclass(frozen=True)
class ImageSignatures:
    """Every signature verdict for one locked image under its policy."""

    image: str
    policy: str
    checks: tuple[DigestCheck, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "policy": self.policy,
            "verified": self.ok,
            "checks": [c.as_dict() for c in self.checks],
        }

    def lines(self) -> list[str]:
        """One line per verified digest, for stdout."""
        out = []
        for c in self.checks:
            if c.result is None:
                continue
            where = f" ({c.platform})" if c.platform else ""
            out.append(f"{self.image}{where}: signed by {c.result.signer} ({describe(c.result)})")
        return out

    def failures(self) -> list[tuple[DigestCheck, str]]:
        """Each failed digest with its one-line message for stderr."""
        out = []
        for c in self.checks:
            if c.result is None:
                where = f" ({c.platform} {c.digest})" if c.platform else f" ({c.digest})"
                out.append((c, f"{self.image}{where}: signature check failed ({self.policy}): {c.reason}"))
        return out


def describe(result: SignatureResult) -> str:
    """Which signature verified: bundle or ``.sig`` layer, and its tlog entry."""
    what = {
        "sigstore-bundle": "Sigstore bundle",
        "cosign-attestation": f".att layer {result.index}",
    }.get(result.kind, f".sig layer {result.index}")
    if result.tlog is not None:
        what += f", Rekor log index {result.tlog.log_index}"
        if not result.tlog.set_verified:
            what += " (inclusion proof)"
    else:
        what += ", transparency log not checked"
    if result.timestamps:
        what += f", timestamped {result.timestamps[0]}"
    if result.predicate_type and result.predicate_type != "https://sigstore.dev/cosign/sign/v1":
        what += f", attestation {result.predicate_type}"
    return what


# -- fetching -----------------------------------------------------------------------------------


async def fetch_bundles(client: RegistryClient, ref: Reference, digest: str) -> list[tuple[str, bytes]]:
    """Sigstore bundles attached to ``digest`` as OCI referrers: ``(manifest digest, bundle)``."""
    found = []
    referrers = [d for d in await list_referrers(client, ref, digest) if _is_bundle(d)]
    for desc in referrers[:MAX_SIGNATURES]:
        manifest = await client.get_manifest(ref.with_digest(desc.digest))
        if manifest.subject is not None and manifest.subject.digest != digest:
            continue  # a stale fallback index entry about another image
        for layer in manifest.layers[:1]:
            if layer.media_type in BUNDLE_MEDIA_TYPES:
                blob = await client.fetch_small_blob(ref, layer.digest, MAX_SIGNATURE_BLOB)
                found.append((desc.digest, blob))
    return found


def _is_bundle(desc: Descriptor) -> bool:
    """Whether a referrer is a Sigstore bundle (an untyped one, ``None``, is not)."""
    return desc.artifact_type in BUNDLE_MEDIA_TYPES


async def fetch_signature_layers(
    client: RegistryClient, ref: Reference, digest: str, *, attestations: bool = False
) -> list[SignatureLayer] | None:
    """The layers of the ``sha256-<hex>.sig`` manifest (``attestations``: of ``.att``); None
    when there is no such tag.

    Only simple-signing (``.att``: DSSE envelope) blobs are fetched; other attachments are
    passed on with an empty payload (the verifiers ignore them).
    """
    if attestations:
        tag, wanted = attestation_tag(digest), DSSE_MEDIA_TYPE
    else:
        tag, wanted = signature_tag(digest), SIMPLE_SIGNING_MEDIA_TYPE
    try:
        manifest = await client.get_manifest(ref.with_digest(None).with_tag(tag))
    except NotFound:
        return None
    layers = []
    for desc in manifest.layers[:MAX_SIGNATURES]:
        payload = b""
        if desc.media_type == wanted:
            payload = await client.fetch_small_blob(ref, desc.digest, MAX_SIGNATURE_BLOB)
        layers.append(SignatureLayer(desc.media_type, payload, desc.annotations))
    return layers


async def check_digest(
    client: RegistryClient, ref: Reference, digest: str, policy: Policy
) -> SignatureResult:
    """Bundles first, then ``.sig`` layers (``.att`` layers for an attestation policy); the
    first signature passing ``policy`` wins.

    VerificationError lists why every candidate failed; registry failures propagate as they are.
    """
    reasons = []
    attestations = policy.predicate_type is not None
    bundles, layers = await asyncio.gather(
        fetch_bundles(client, ref, digest),
        fetch_signature_layers(client, ref, digest, attestations=attestations),
    )
    wanted = {policy.predicate_type} if policy.predicate_type else {COSIGN_SIGN_PREDICATE}
    for manifest_digest, bundle in bundles:
        try:
            return verify_bundle(digest, bundle, policy, predicate_types=wanted)
        except VerificationError as e:
            reasons.append(f"bundle {shorten(manifest_digest)}: {e}")
    if policy.predicate_type:
        tag = attestation_tag(digest)
        if layers is None:
            none = f"no {tag} attestations" + ("" if bundles else " and no Sigstore bundle")
            reasons.append(f"{none} (attestation {policy.predicate_type} required)")
        else:
            try:
                return verify_attestations(digest, layers, policy, predicate_types=wanted)
            except VerificationError as e:
                reasons.append(f"{tag}: {e}")
        raise VerificationError("; ".join(reasons))
    tag = signature_tag(digest)
    if layers is None:
        reasons.append(f"no {tag} signatures" + ("" if bundles else " and no Sigstore bundle"))
    else:
        try:
            return verify_signatures(digest, layers, policy)
        except VerificationError as e:
            reasons.append(f"{tag}: {e}")
    raise VerificationError("; ".join(reasons))


async def check_image(
    client: RegistryClient,
    ref: Reference,
    image: str,
    digest: str,
    policy: Policy,
    platforms: Sequence[tuple[str, str]] = (),
) -> ImageSignatures:
    """Check ``digest`` (and each ``(platform, digest)`` given) against ``policy``."""
    targets: list[tuple[str, str | None]] = [(digest, None), *((d, p) for p, d in platforms)]

    async def one(d: str, platform: str | None) -> DigestCheck:
        try:
            return DigestCheck(d, platform, result=await check_digest(client, ref, d, policy))
        except LockmanError as e:
            return DigestCheck(d, platform, reason=str(e), exit_code=e.exit_code)

    checks = await asyncio.gather(*(one(d, p) for d, p in targets))
    return ImageSignatures(image, policy.describe(), tuple(checks))


@dataclass(frozen=True)
class SignatureTarget:
    """One locked image to check: where it lives, its name as written, its locked digests.

    ``index_digest`` is set for a platform pin (``update --platform``): ``digest`` is then one
    platform's manifest chosen from that index, which is what signers usually sign.
    """

    ref: Reference
    image: str
    digest: str
    platforms: tuple[tuple[str, str], ...] = ()
    index_digest: str = ""
    platform: str = ""  # a platform pin's platform

    @classmethod
    def for_entry(cls, ref: Reference, entry: LockedImage) -> SignatureTarget:
        platforms = tuple((p.platform, p.digest) for p in entry.platforms)
        return cls(
            ref.with_digest(None), entry.display, entry.digest, platforms, entry.index_digest, entry.platform
        )


async def _index_lists(client: RegistryClient, ref: Reference, index_digest: str, digest: str) -> bool:
    """Whether the index (fetched by digest, so hashed) lists ``digest``, one nesting level deep."""
    index = await client.get_manifest(ref.with_digest(index_digest))
    children = index.manifests
    if any(d.digest == digest for d in children):
        return True
    nested = [d for d in children if d.media_type in INDEX_TYPES]
    for d in nested[:MAX_SIGNATURES]:
        if any(c.digest == digest for c in (await client.get_manifest(ref.with_digest(d.digest))).manifests):
            return True
    return False


async def check_platform_pin(
    client: RegistryClient, t: SignatureTarget, policy: Policy, recursive: bool
) -> ImageSignatures:
    """A platform pin is trusted through its signed index (which must list it), as a pull of
    the tag would be, or through a signature of its own; ``recursive`` requires both."""
    platform = t.platform or None

    async def via_index() -> DigestCheck:
        try:
            if not await _index_lists(client, t.ref, t.index_digest, t.digest):
                raise VerificationError(f"{t.digest} is not a platform of index {t.index_digest}")
            return DigestCheck(
                t.index_digest, None, result=await check_digest(client, t.ref, t.index_digest, policy)
            )
        except LockmanError as e:
            return DigestCheck(t.index_digest, None, reason=f"index: {e}", exit_code=e.exit_code)

    async def itself() -> DigestCheck:
        try:
            return DigestCheck(t.digest, platform, result=await check_digest(client, t.ref, t.digest, policy))
        except LockmanError as e:
            return DigestCheck(t.digest, platform, reason=str(e), exit_code=e.exit_code)

    index_check, own_check = await asyncio.gather(via_index(), itself())
    if recursive:
        checks: tuple[DigestCheck, ...] = (index_check, own_check)
    elif index_check.ok or own_check.ok:
        checks = (index_check if index_check.ok else own_check,)
    else:
        reason = f"{index_check.reason}; platform manifest: {own_check.reason}"
        checks = (
            replace(own_check, reason=reason, exit_code=min(index_check.exit_code, own_check.exit_code)),
        )
    return ImageSignatures(t.image, policy.describe(), checks)


async def check_all(
    client: RegistryClient,
    targets: Sequence[SignatureTarget],
    policies: PolicySet,
    *,
    recursive: bool = False,
) -> list[ImageSignatures]:
    """Check every target that a policy covers (images no rule names are not checked)."""
    jobs = []
    for t in targets:
        policy = policies.policy_for(t.image)
        if policy is None:
            continue
        if t.index_digest:
            jobs.append(check_platform_pin(client, t, policy, recursive))
        else:
            platforms = t.platforms if recursive else ()
            jobs.append(check_image(client, t.ref, t.image, t.digest, policy, platforms))
    return list(await asyncio.gather(*jobs))
