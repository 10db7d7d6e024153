"""What changed inside an image whose digest moved: labels, size and layers, SBOM packages.

Pure: the facts of each side (read from config blobs, manifests and SBOM documents the
registry layer fetched and hashed) go in, a comparison comes out. Everything here reads
registry-controlled text, so every parser is bounded (bytes, nesting, package count) and a
document that breaks a bound becomes a note, never an exception.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lockman import safejson
from lockman.model import toolchain
from lockman.model.toolchain import ToolchainChange
from lockman.model.vulns import Package, VulnDiff, build_purl, parse_purl

OCI_PREFIX = "org.opencontainers.image."
LABELS = ("base.digest", "base.name", "version", "revision", "source", "created")
"""The OCI annotation keys (after ``org.opencontainers.image.``) compared, in report order."""
FIELD_NAMES = {"created": "image.created"}
"""The label ``created`` is reported under this name (only when it differs from the config's)."""
MAX_VALUE = 256  # a label value longer than this is cut (registry text, shown to people)
MAX_PACKAGES = 20000  # packages read per SBOM; the rest is a note
MAX_SBOM_DEPTH = 32  # CycloneDX component nesting followed
MAX_NOTE = 200

SPDX_TYPES = ("application/spdx+json", "text/spdx+json")
CYCLONEDX_TYPES = ("application/vnd.cyclonedx+json",)
SBOM_PREDICATE_PREFIXES = {"https://spdx.dev/Document": "SPDX", "https://cyclonedx.org/bom": "CycloneDX"}


class SbomError(ValueError):
    """A document that is not a readable SBOM; its message becomes a note."""


@dataclass(frozen=True)
class PlatformFacts:
    """One platform manifest: its layers by digest and their total compressed size."""

    layers: tuple[str, ...]
    size: int


@dataclass(frozen=True)
class Sbom:
    """The packages of one SBOM document, as (name, version) pairs."""

    format: str  # "SPDX" or "CycloneDX"
    packages: frozenset[tuple[str, str]]
    source: str  # "referrer", "sigstore-bundle" or "cosign-attestation"
    truncated: bool = False
    signature: SbomSignature | None = None  # set when a signature policy applies
    purls: frozenset[Package] = frozenset()  # packages with a package URL (to look up in OSV)
    distro: tuple[str, str] | None = None  # the OS the SBOM names: ("debian", "12")


@dataclass(frozen=True)
class SbomSignature:
    """Whether the SBOM's attestation verified under the image's signature policy."""

    verified: bool
    detail: str  # the signer when verified, else why not


@dataclass(frozen=True)
class ImageFacts:
    """One side of a moved image, as far as it could be read."""

    created: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # LABELS keys only
    platforms: Mapping[str, PlatformFacts] = field(default_factory=dict)  # "" = single-platform
    sbom: Sbom | None = None
    notes: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # toolchain versions from the config's Env
    # Per platform read: its own SBOM (buildkit's attestation naming its image), else the one
    # attached to the index (it applies to all), else None; a platform left out was not read.
    platform_sboms: Mapping[str, Sbom | None] = field(default_factory=dict)


@dataclass(frozen=True)
class FieldChange:
    field: str  # "created" (the config's), "image.created" (the label's) or another LABELS key
    old: str | None
    new: str | None


@dataclass(frozen=True)
class LayerChange:
    """Size and layers of one platform (``""`` for a single-platform image) old → new."""

    platform: str
    old_size: int
    new_size: int
    new: int
    shared: int
    gone: int


@dataclass(frozen=True)
class PackageChange:
    name: str
    old: str | None  # None: added
    new: str | None  # None: removed


@dataclass(frozen=True)
class SbomDiff:
    format: str
    old_packages: int
    new_packages: int
    changes: tuple[PackageChange, ...]
    signature: SbomSignature | None = None

    def count(self, kind: str) -> int:
        return sum(1 for c in self.changes if package_kind(c) == kind)


def package_kind(c: PackageChange) -> str:
    return "added" if c.old is None else "removed" if c.new is None else "changed"


@dataclass(frozen=True)
class Insight:
    """What changed inside one moved image; ``notes`` say what could not be read."""

    fields: tuple[FieldChange, ...] = ()
    compare_url: str | None = None
    layers: tuple[LayerChange, ...] = ()
    platforms_added: tuple[str, ...] = ()
    platforms_removed: tuple[str, ...] = ()
    sbom: SbomDiff | None = None
    notes: tuple[str, ...] = ()
    requests: int = 0
    base_name: str | None = None  # the base image's name (new side), to say which base moved
    vulnerabilities: VulnDiff | None = None  # None: not looked up (--no-vulnerabilities)
    # Every platform compared, the first one (``vulnerabilities``) first; () when not looked up.
    vulnerabilities_by_platform: tuple[VulnDiff, ...] = ()
    toolchain: tuple[ToolchainChange, ...] = ()  # C library, distro, compilers, openssl, rust

    @property
    def vulnerability_results(self) -> tuple[VulnDiff, ...]:
        """Each platform's known vulnerabilities (an insight built with one: that one)."""
        if self.vulnerabilities is None:
            return ()
        return self.vulnerabilities_by_platform or (self.vulnerabilities,)

    @property
    def base_moved(self) -> FieldChange | None:
        return next((f for f in self.fields if f.field == "base.digest"), None)

    def field(self, name: str) -> FieldChange | None:
        return next((f for f in self.fields if f.field == name), None)

    def as_dict(self) -> dict[str, Any]:
        """The ``insight`` object of the JSON report (docs/reports.md, "JSON output")."""
        base = self.base_moved
        s = self.sbom
        return {
            "base_moved": base is not None,
            "base_name": self.base_name,
            "changes": [{"field": f.field, "old": f.old, "new": f.new} for f in self.fields],
            "compare_url": self.compare_url,
            "platforms": [
                {
                    "platform": c.platform,
                    "old_size": c.old_size,
                    "new_size": c.new_size,
                    "layers_new": c.new,
                    "layers_shared": c.shared,
                    "layers_gone": c.gone,
                }
                for c in self.layers
            ],
            "platforms_added": list(self.platforms_added),
            "platforms_removed": list(self.platforms_removed),
            "sbom": None
            if s is None
            else {
                "format": s.format,
                "old_packages": s.old_packages,
                "new_packages": s.new_packages,
                "added": [{"name": c.name, "version": c.new} for c in s.changes if c.old is None],
                "removed": [{"name": c.name, "version": c.old} for c in s.changes if c.new is None],
                "changed": [
                    {"name": c.name, "old_version": c.old, "new_version": c.new}
                    for c in s.changes
                    if c.old is not None and c.new is not None
                ],
                "signature": None
                if s.signature is None
                else {"verified": s.signature.verified, "detail": s.signature.detail},
            },
            "toolchain": [c.as_dict() for c in self.toolchain],
            "notes": list(self.notes),
            "requests": self.requests,
            "vulnerabilities": None if self.vulnerabilities is None else self.vulnerabilities.as_dict(),
            "vulnerabilities_by_platform": None
            if self.vulnerabilities is None
            else [v.as_dict() for v in self.vulnerability_results],
        }


# -- reading registry text ----------------------------------------------------------------------


def clip(value: object, limit: int = MAX_VALUE) -> str:
    """Registry text as a bounded string (escaping for a format is the renderer's job)."""
    text = value if isinstance(value, str) else f"<{type(value).__name__}>"
    text = text.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate cannot be printed
    return text if len(text) <= limit else text[: limit - 1] + "…"


def loads(raw: bytes, what: str) -> Any:
    """JSON from the registry; nesting too deep for the parser is a readable error, not a crash."""
    try:
        return safejson.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        if isinstance(e, safejson.TooDeep):
            raise SbomError(f"{what} is nested too deeply to read") from None
        raise SbomError(f"{what} is not valid JSON") from None


def oci_labels(*sources: Mapping[str, Any] | None) -> dict[str, str]:
    """The LABELS keys from annotations or config labels; later sources win."""
    out: dict[str, str] = {}
    for src in sources:
        if not isinstance(src, Mapping):
            continue
        for key in LABELS:
            value = src.get(OCI_PREFIX + key)
            if isinstance(value, str) and value:
                out[key] = clip(value)
    return out


def manifest_annotations(raw: bytes) -> dict[str, Any]:
    """A manifest's (or index's) own ``annotations``; {} when it has none or is odd."""
    try:
        obj = safejson.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    ann = obj.get("annotations") if isinstance(obj, dict) else None
    return ann if isinstance(ann, dict) else {}


def parse_config(raw: bytes) -> tuple[str | None, dict[str, Any]]:
    """An image config blob → (``created``, ``config.Labels``)."""
    created, labels, _ = config_facts(raw)
    return created, labels


def config_facts(raw: bytes) -> tuple[str | None, dict[str, Any], dict[str, str]]:
    """An image config blob → (``created``, ``config.Labels``, toolchain versions its ``Env`` names)."""
    obj = loads(raw, "image config")
    if not isinstance(obj, dict):
        raise SbomError("image config is not a JSON object")
    created = obj.get("created")
    cfg = obj.get("config")
    labels = cfg.get("Labels") if isinstance(cfg, dict) else None
    env = cfg.get("Env") if isinstance(cfg, dict) else None
    return (
        clip(created) if isinstance(created, str) and created else None,
        labels if isinstance(labels, dict) else {},
        toolchain.env_versions(env[:256] if isinstance(env, list) else ()),
    )


def sbom_kind(media_or_predicate: str | None) -> str | None:
    """The SBOM format ("SPDX", "CycloneDX") or None, from a media type or an in-toto predicate."""
    t = (media_or_predicate or "").split(";")[0].strip()
    if t in SPDX_TYPES:
        return "SPDX"
    if t in CYCLONEDX_TYPES:
        return "CycloneDX"
    for prefix, kind in SBOM_PREDICATE_PREFIXES.items():
        if t.startswith(prefix):
            return kind
    return None


def _statement(doc: Any) -> tuple[str | None, Any]:
    """Unwrap a DSSE envelope and an in-toto statement: (predicate's SBOM kind, document)."""
    if isinstance(doc, dict) and isinstance(doc.get("payload"), str) and "payloadType" in doc:
        try:
            payload = base64.b64decode(doc["payload"], validate=True)
        except (binascii.Error, ValueError):
            raise SbomError("attestation payload is not base64") from None
        doc = loads(payload, "attestation payload")
    if isinstance(doc, dict) and "predicateType" in doc and "predicate" in doc:
        kind = sbom_kind(str(doc.get("predicateType")))
        if kind is None:
            raise SbomError(f"attestation predicate {clip(doc.get('predicateType'), 80)!r} is not an SBOM")
        return kind, doc["predicate"]
    return None, doc


def _spdx_packages(doc: dict[str, Any]) -> Iterable[tuple[str, str]]:
    pkgs = doc.get("packages")
    for p in pkgs if isinstance(pkgs, list) else ():
        if isinstance(p, dict) and isinstance(p.get("name"), str):
            v = p.get("versionInfo")
            yield clip(p["name"], 128), clip(v, 128) if isinstance(v, str) else ""


def _cyclonedx_packages(doc: dict[str, Any]) -> Iterable[tuple[str, str]]:
    stack: list[tuple[Any, int]] = [(doc.get("components"), 0)]
    while stack:
        comps, depth = stack.pop()
        if not isinstance(comps, list) or depth > MAX_SBOM_DEPTH:
            continue
        for c in comps:
            if not isinstance(c, dict):
                continue
            if isinstance(c.get("name"), str):
                name = c["name"] if not isinstance(c.get("group"), str) else f"{c['group']}/{c['name']}"
                v = c.get("version")
                yield clip(name, 128), clip(v, 128) if isinstance(v, str) else ""
            stack.append((c.get("components"), depth + 1))


def parse_sbom(raw: bytes, hint: str | None = None, source: str = "referrer") -> Sbom:
    """An SPDX or CycloneDX JSON document, bare or as an in-toto statement (in DSSE or not).

    ``hint`` is the media or predicate type the registry announced; the document's own
    markers (``spdxVersion``, ``bomFormat``) decide when it is missing.
    """
    return parse_sbom_doc(loads(raw, "SBOM"), hint, source)


def parse_sbom_doc(obj: Any, hint: str | None = None, source: str = "referrer") -> Sbom:
    """:func:`parse_sbom` on JSON already parsed (a Sigstore bundle's ``dsseEnvelope``)."""
    kind, doc = _statement(obj)
    if not isinstance(doc, dict):
        raise SbomError("SBOM is not a JSON object")
    kind = kind or sbom_kind(hint)
    if "spdxVersion" in doc:
        kind = "SPDX"
    elif doc.get("bomFormat") == "CycloneDX":
        kind = "CycloneDX"
    if kind is None:
        raise SbomError("document is neither SPDX nor CycloneDX")
    packages: set[tuple[str, str]] = set()
    truncated = False
    for p in _spdx_packages(doc) if kind == "SPDX" else _cyclonedx_packages(doc):
        if len(packages) >= MAX_PACKAGES:
            truncated = True
            break
        packages.add(p)
    distro = _distro(kind, doc)
    purls = frozenset(_purl_packages(kind, doc, distro))
    return Sbom(kind, frozenset(packages), source, truncated, None, purls, distro)


def _components(doc: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """CycloneDX components, nested ones too (bounded as in :func:`_cyclonedx_packages`)."""
    stack: list[tuple[Any, int]] = [(doc.get("components"), 0)]
    seen = 0
    while stack:
        comps, depth = stack.pop()
        if not isinstance(comps, list) or depth > MAX_SBOM_DEPTH:
            continue
        for c in comps:
            seen += 1
            if seen > MAX_PACKAGES:
                return
            if isinstance(c, dict):
                yield c
                stack.append((c.get("components"), depth + 1))


def _spdx_list(doc: dict[str, Any]) -> list[Any]:
    pkgs = doc.get("packages")
    return pkgs[:MAX_PACKAGES] if isinstance(pkgs, list) else []


def _distro(kind: str, doc: dict[str, Any]) -> tuple[str, str] | None:
    """The operating system the SBOM declares: an SPDX package of purpose OPERATING-SYSTEM,
    a CycloneDX component of type operating-system."""
    items: Iterable[Any]
    if kind == "SPDX":
        items = (
            (p.get("name"), p.get("versionInfo"))
            for p in _spdx_list(doc)
            if isinstance(p, dict) and p.get("primaryPackagePurpose") == "OPERATING-SYSTEM"
        )
    else:
        items = (
            (c.get("name"), c.get("version")) for c in _components(doc) if c.get("type") == "operating-system"
        )
    for name, version in items:
        if (
            isinstance(name, str)
            and isinstance(version, str)
            and re.fullmatch(r"[a-z][a-z0-9._-]{0,31}", name)
            and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}", version)
        ):
            return name, version
    return None


_TYPE_PROPERTIES = ("syft:package:type", "aquasecurity:trivy:PkgType")
_TYPES = {"python": "pypi", "pip": "pypi", "rust-crate": "cargo", "go-module": "golang", "gomod": "golang"}


def _purl_packages(kind: str, doc: dict[str, Any], distro: tuple[str, str] | None) -> Iterable[Package]:
    """Each package with a package URL: the SBOM's own (SPDX ``externalRefs`` of type purl,
    CycloneDX ``purl``), else one built from the package's type, name and version and the
    SBOM's distribution, where the SBOM gives those."""
    if kind == "SPDX":
        for p in _spdx_list(doc):
            if not isinstance(p, dict) or not isinstance(p.get("name"), str):
                continue
            refs = p.get("externalRefs")
            for r in refs[:16] if isinstance(refs, list) else ():
                if isinstance(r, dict) and r.get("referenceType") == "purl":
                    purl = parse_purl(r.get("referenceLocator"))
                    if purl is not None and purl.version:
                        yield Package(clip(p["name"], 128), clip(purl.version, 128), str(purl))
                        break
        return
    for c in _components(doc):
        name, version = c.get("name"), c.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or c.get("type") == "operating-system":
            continue
        purl = parse_purl(c.get("purl"))
        if purl is None:
            props = c.get("properties")
            hint = next(
                (
                    q.get("value")
                    for q in (props[:64] if isinstance(props, list) else ())
                    if isinstance(q, dict) and q.get("name") in _TYPE_PROPERTIES
                ),
                None,
            )
            if isinstance(hint, str):
                purl = build_purl(_TYPES.get(hint.lower(), hint), name, version, distro)
        if purl is not None and purl.version:
            yield Package(clip(name, 128), clip(purl.version, 128), str(purl))


# -- comparing ----------------------------------------------------------------------------------

_FORGES = {"github.com": "/compare/", "gitlab.com": "/-/compare/"}
_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_SOURCE = re.compile(r"(?:https://|git\+https://|git@)?(github\.com|gitlab\.com)[/:](.+?)(?:\.git)?/?")


def compare_url(source: str | None, old_rev: str | None, new_rev: str | None) -> str | None:
    """``https://github.com/o/r/compare/OLD...NEW`` (GitLab: ``/-/compare/``), or None.

    Built only from parts that match a strict grammar, so registry text cannot smuggle
    anything into the link.
    """
    if not source or not old_rev or not new_rev or old_rev == new_rev:
        return None
    m = _SOURCE.fullmatch(source)
    if m is None or not _REVISION.fullmatch(old_rev) or not _REVISION.fullmatch(new_rev):
        return None
    host, path = m.group(1), m.group(2).split("/")
    limit = 2 if host == "github.com" else 20  # GitLab has nested groups
    if not 2 <= len(path) <= limit or not all(_PATH.fullmatch(p) for p in path):
        return None
    return f"https://{host}/{'/'.join(path)}{_FORGES[host]}{old_rev}...{new_rev}"


def _layer_change(platform: str, old: PlatformFacts, new: PlatformFacts) -> LayerChange:
    before, after = set(old.layers), set(new.layers)
    return LayerChange(
        platform, old.size, new.size, len(after - before), len(after & before), len(before - after)
    )


def sbom_diff(old: Sbom, new: Sbom) -> SbomDiff:
    """Packages added, removed, and changed version (by name; several versions of one name
    compare as a set)."""
    before: dict[str, set[str]] = {}
    after: dict[str, set[str]] = {}
    for name, version in old.packages:
        before.setdefault(name, set()).add(version)
    for name, version in new.packages:
        after.setdefault(name, set()).add(version)
    changes = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a == b:
            continue
        changes.append(
            PackageChange(
                name,
                ", ".join(sorted(a)) if a is not None else None,
                ", ".join(sorted(b)) if b is not None else None,
            )
        )
    return SbomDiff(new.format, len(old.packages), len(new.packages), tuple(changes), new.signature)


def compare(old: ImageFacts, new: ImageFacts, *, requests: int = 0) -> Insight:
    """The insight for one moved image; changed fields in LABELS order, the base image first."""
    fields = []
    for key in LABELS:
        a, b = old.labels.get(key), new.labels.get(key)
        if a != b and not (key == "created" and (a, b) == (old.created, new.created)):
            fields.append(FieldChange(FIELD_NAMES.get(key, key), a, b))
    if old.created != new.created:
        fields.append(FieldChange("created", old.created, new.created))
    url = compare_url(
        new.labels.get("source") or old.labels.get("source"),
        old.labels.get("revision"),
        new.labels.get("revision"),
    )
    common = [p for p in sorted(new.platforms) if p in old.platforms]
    layers = tuple(_layer_change(p, old.platforms[p], new.platforms[p]) for p in common)
    added = tuple(sorted(set(new.platforms) - set(old.platforms)))
    removed = tuple(sorted(set(old.platforms) - set(new.platforms)))
    notes = list(dict.fromkeys(n[:MAX_NOTE] for n in (*old.notes, *new.notes)))
    sbom = None
    if old.sbom is not None and new.sbom is not None:
        sbom = sbom_diff(old.sbom, new.sbom)
        if old.sbom.truncated or new.sbom.truncated:
            notes.append(f"SBOM lists more than {MAX_PACKAGES} packages; only the first were compared")
    elif new.sbom is not None or old.sbom is not None:
        which = "new" if new.sbom is None else "old"
        notes.append(f"no SBOM found for the {which} digest; packages not compared")
    if not (old.labels or new.labels or old.sbom or new.sbom or notes):
        notes.append("no OCI labels and no SBOM published for this image")
    base_name = new.labels.get("base.name") or old.labels.get("base.name")
    return Insight(
        tuple(fields), url, layers, added, removed, sbom, tuple(notes), requests, base_name,
        toolchain=toolchain_diff(old, new),
    )  # fmt: skip


def toolchain_diff(old: ImageFacts, new: ImageFacts) -> tuple[ToolchainChange, ...]:
    """The toolchain old → new: from both SBOMs and configs, or from the configs alone when a
    side has no SBOM (a package missing from an absent SBOM is unknown, not removed)."""

    def side(f: ImageFacts, sbom: bool) -> dict[str, str]:
        if sbom and f.sbom is not None:
            return toolchain.versions(f.sbom.packages, f.sbom.purls, f.sbom.distro, f.env)
        return dict(f.env)

    both = old.sbom is not None and new.sbom is not None
    return toolchain.diff(side(old, both), side(new, both))
