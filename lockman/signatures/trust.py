"""Sigstore trust material: which Fulcio CAs, Rekor logs and CT logs we believe, and when.

A ``TrustedRoot`` is parsed from Sigstore's ``trusted_root.json`` (media type
``application/vnd.dev.sigstore.trustedroot+json;version=0.1``) or assembled from loose PEM files
(``rekor.pub``, ``fulcio_v1.crt.pem``), the way older cosign setups and the test fixtures ship
them. Every key and CA carries a validity window; callers check it at the signing time.

A file may hold several roots as JSON lines (``gh attestation trusted-root`` writes one per
line); they are merged and all trusted. Parsing is strict: a log, CA or TSA without
``validFor.start`` or with a malformed key is bad input, never an unbounded window.

The shipped public-good root (``data/trusted_root.json``) is a verbatim copy of
sigstore-python's embedded ``tuf-repo-cdn.sigstore.dev/trusted_root.json`` at commit 276c5e8f
(2025-10-21, "Update embedded trust root"). This package never goes online: the current root is
fetched over TUF by :mod:`lockman.registry.trust_update`, and this copy is only the last
fallback. To refresh it, replace the data file, update ``DEFAULT_TRUSTED_ROOT_DATE`` and
re-run the tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography import x509

from lockman import safejson
from lockman.errors import InputError, VerificationError
from lockman.signatures.keys import (
    PublicKey,
    decode_b64,
    key_id,
    load_public_key,
    load_public_key_der,
)

DEFAULT_TRUSTED_ROOT_DATE = "2025-10-21"
"""When the shipped public-good trusted root was taken (sigstore-python commit 276c5e8f)."""



@dataclass(frozen=True)
class ValidityWindow:
    """``[start, end]`` in UTC; None means open on that side."""

    start: datetime | None = None
    end: datetime | None = None

    def contains(self, when: datetime) -> bool:
        """True if ``when`` (timezone-aware) lies inside the window."""
        if self.start is not None and when < self.start:
            return False
        return not (self.end is not None and when > self.end)

    def __str__(self) -> str:
        start = self.start.isoformat() if self.start else "-inf"
        end = self.end.isoformat() if self.end else "+inf"
        return f"[{start}, {end}]"


@dataclass(frozen=True)
class LogKey:
    """A transparency log's (Rekor) or CT log's signing key, found by its log id."""

    log_id: bytes
    key: PublicKey
    validity: ValidityWindow = field(default_factory=ValidityWindow)
    base_url: str = ""


@dataclass(frozen=True)
class CertificateAuthority:
    """A Fulcio CA: its chain (issuing cert first, root last) and when it may issue."""

    chain: tuple[x509.Certificate, ...]
    validity: ValidityWindow = field(default_factory=ValidityWindow)
    uri: str = ""


@dataclass(frozen=True)
class TimestampAuthority:
    """An RFC 3161 TSA: its chain (signing cert first, root last) and when its tokens count."""

    chain: tuple[x509.Certificate, ...]
    validity: ValidityWindow = field(default_factory=ValidityWindow)
    uri: str = ""


@dataclass(frozen=True)
class TrustedRoot:
    """The set of logs and CAs a verification trusts."""

    tlogs: tuple[LogKey, ...] = ()
    certificate_authorities: tuple[CertificateAuthority, ...] = ()
    ctlogs: tuple[LogKey, ...] = ()
    timestamp_authorities: tuple[TimestampAuthority, ...] = ()
    source: str = "trusted root"

    def tlog_keys(self, log_id: bytes) -> list[LogKey]:
        """Rekor keys with this log id (normally one)."""
        return [k for k in self.tlogs if k.log_id == log_id]

    def ctlog_keys(self, log_id: bytes) -> list[LogKey]:
        """CT log keys with this log id (normally one)."""
        return [k for k in self.ctlogs if k.log_id == log_id]

    @classmethod
    def from_json(cls, data: bytes | str, source: str = "trusted root") -> TrustedRoot:
        """Parse ``trusted_root.json``, or several roots as JSON lines (``gh attestation
        trusted-root`` writes one per line), which are then all trusted; InputError naming
        ``source``, the line and the bad field.
        """
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        try:
            doc = safejson.loads(text)
        except ValueError as exc:
            lines = [ln for ln in text.splitlines() if ln.strip()]
            if len(lines) < 2:
                raise InputError(f"{source}: not valid JSON ({exc})") from exc
            roots = [cls._from_doc(_json_line(ln, f"{source}: line {i + 1}"), f"{source}: line {i + 1}")
                     for i, ln in enumerate(lines)]
            merged = roots[0]
            for r in roots[1:]:
                merged = merged.merged(r)
            return TrustedRoot(
                tlogs=merged.tlogs,
                certificate_authorities=merged.certificate_authorities,
                ctlogs=merged.ctlogs,
                timestamp_authorities=merged.timestamp_authorities,
                source=f"{source} ({len(roots)} roots)",
            )
        return cls._from_doc(doc, source)

    @classmethod
    def _from_doc(cls, doc: Any, source: str) -> TrustedRoot:
        if not isinstance(doc, dict):
            raise InputError(f"{source}: expected a JSON object")
        media_type = doc.get("mediaType", "")
        if not str(media_type).startswith("application/vnd.dev.sigstore.trustedroot"):
            raise InputError(f"{source}: mediaType {media_type!r} is not a Sigstore trusted root")
        try:
            tlogs = tuple(_log_key(e, f"{source}: tlogs[{i}]") for i, e in enumerate(doc.get("tlogs", [])))
            ctlogs = tuple(_log_key(e, f"{source}: ctlogs[{i}]") for i, e in enumerate(doc.get("ctlogs", [])))
            cas = tuple(
                _ca(e, f"{source}: certificateAuthorities[{i}]")
                for i, e in enumerate(doc.get("certificateAuthorities", []))
            )
            tsas = tuple(
                TimestampAuthority(*_chain_and_window(e, f"{source}: timestampAuthorities[{i}]"))
                for i, e in enumerate(doc.get("timestampAuthorities", []))
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{source}: malformed trusted root ({exc!r})") from exc
        except VerificationError as exc:  # bad base64: the root is the user's input
            raise InputError(str(exc)) from exc
        return cls(
            tlogs=tlogs,
            certificate_authorities=cas,
            ctlogs=ctlogs,
            timestamp_authorities=tsas,
            source=source,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> TrustedRoot:
        """Read ``trusted_root.json`` from disk."""
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise InputError(f"{p}: cannot read trusted root ({exc.strerror or exc})") from exc
        return cls.from_json(data, source=str(p))

    @classmethod
    def from_pems(
        cls,
        rekor_keys: Iterable[bytes | str] = (),
        fulcio_certs: Iterable[bytes | str] = (),
        ctlog_keys: Iterable[bytes | str] = (),
        source: str = "PEM trust material",
    ) -> TrustedRoot:
        """Assemble a root from loose PEMs, each trusted without a time limit.

        Log ids are computed as sha256 of the key's SPKI DER, as Rekor and CT logs define them.
        Each Fulcio PEM may hold a chain (issuing CA first, root last) and becomes one CA.
        """
        tlogs = tuple(_pem_log_key(p, f"{source}: Rekor key") for p in rekor_keys)
        ctlogs = tuple(_pem_log_key(p, f"{source}: CT log key") for p in ctlog_keys)
        cas = []
        for pem in fulcio_certs:
            certs = _load_pem_certs(pem, f"{source}: Fulcio certificate")
            cas.append(CertificateAuthority(chain=tuple(certs)))
        return cls(tlogs=tlogs, certificate_authorities=tuple(cas), ctlogs=ctlogs, source=source)

    def merged(self, other: TrustedRoot) -> TrustedRoot:
        """Trust everything either root trusts (e.g. the default root plus a private Rekor)."""
        return TrustedRoot(
            tlogs=self.tlogs + other.tlogs,
            certificate_authorities=self.certificate_authorities + other.certificate_authorities,
            ctlogs=self.ctlogs + other.ctlogs,
            timestamp_authorities=self.timestamp_authorities + other.timestamp_authorities,
            source=f"{self.source} + {other.source}",
        )


def _load_pem_certs(pem: bytes | str, source: str) -> list[x509.Certificate]:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        certs = x509.load_pem_x509_certificates(data)
    except (ValueError, x509.InvalidVersion) as exc:
        raise InputError(f"{source}: not PEM certificates ({exc})") from exc
    return certs


def _pem_log_key(pem: bytes | str, source: str) -> LogKey:
    key = load_public_key(pem, source)
    return LogKey(log_id=key_id(key), key=key)


def _time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python 3.10's fromisoformat only takes 3- or 6-digit fractions; protobuf JSON has 0-9.
    text = re.sub(r"\.(\d+)", lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"{where}: bad timestamp {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _json_line(line: str, where: str) -> Any:
    try:
        return safejson.loads(line)
    except ValueError as exc:
        raise InputError(f"{where}: not valid JSON ({exc})") from exc


def _window(entry: dict[str, Any], where: str) -> ValidityWindow:
    """A missing window or start is bad input: it must never widen trust to "always"."""
    valid = entry.get("validFor")
    if not isinstance(valid, dict) or valid.get("start") is None:
        raise InputError(f"{where}.start: missing (a trusted key or CA needs the time it became valid)")
    return ValidityWindow(start=_time(valid.get("start"), where), end=_time(valid.get("end"), where))


def _log_key(entry: dict[str, Any], where: str) -> LogKey:
    public_key = entry["publicKey"]
    der = decode_b64(public_key["rawBytes"], f"{where}.publicKey.rawBytes")
    key = load_public_key_der(der, f"{where}.publicKey")
    log_id = decode_b64(entry["logId"]["keyId"], f"{where}.logId.keyId")
    return LogKey(
        log_id=log_id,
        key=key,
        validity=_window(public_key, f"{where}.publicKey.validFor"),
        base_url=str(entry.get("baseUrl", "")),
    )


def _ca(entry: dict[str, Any], where: str) -> CertificateAuthority:
    chain, validity, uri = _chain_and_window(entry, where)
    return CertificateAuthority(chain=chain, validity=validity, uri=uri)


def _chain_and_window(
    entry: dict[str, Any], where: str
) -> tuple[tuple[x509.Certificate, ...], ValidityWindow, str]:
    certs: Sequence[dict[str, Any]] = entry["certChain"]["certificates"]
    chain = []
    for i, c in enumerate(certs):
        der = decode_b64(c["rawBytes"], f"{where}.certChain[{i}]")
        try:
            chain.append(x509.load_der_x509_certificate(der))
        except (ValueError, x509.InvalidVersion) as exc:
            raise InputError(f"{where}.certChain[{i}]: not a DER certificate ({exc})") from exc
    if not chain:
        raise InputError(f"{where}: empty certificate chain")
    return tuple(chain), _window(entry, f"{where}.validFor"), str(entry.get("uri", ""))


@lru_cache(maxsize=1)
def default_trusted_root() -> TrustedRoot:
    """The shipped Sigstore public-good trusted root (see the module docstring for its date)."""
    data = resources.files("lockman.signatures").joinpath("data/trusted_root.json").read_bytes()
    return TrustedRoot.from_json(data, source=f"public-good trusted root ({DEFAULT_TRUSTED_ROOT_DATE})")
