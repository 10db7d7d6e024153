"""Test signers for today's Sigstore formats: a Rekor-v2-style log and an RFC 3161 TSA.

With :class:`tests.support.signing_helpers.FakeFulcio` they make bundles v0.3 the way cosign v3 /
sigstore-python 4 against a Rekor v2 instance do: DSSE in-toto statement, ``hashedrekord``
0.0.2 entry with an inclusion proof and an Ed25519-signed checkpoint (no SET), and an RFC 3161
timestamp over the signature from a real TSA implementation (``openssl ts -reply``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lockman.signatures.bundle import pae
from tests.support.signing_helpers import FakeFulcio, PrivateKey, b64, ca_cert, sign


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _spki(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class Rekor2Log:
    """An Ed25519 transparency log that answers with inclusion proofs and signed checkpoints."""

    def __init__(self, origin: str = "rekor2.lockman.test") -> None:
        self.origin = origin
        self.key = ed25519.Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        # C2SP signed-note key id: SHA-256(name || "\n" || 0x01 || key)
        self.log_id = hashlib.sha256(origin.encode() + b"\n\x01" + raw).digest()

    def checkpoint(self, size: int, root: bytes) -> str:
        text = f"{self.origin}\n{size}\n{b64(root)}\n"
        sig = self.key.sign(text.encode())
        return f"{text}\n\u2014 {self.origin} {b64(self.log_id[:4] + sig)}\n"

    def entry(self, body: dict[str, Any]) -> dict[str, Any]:
        """A bundle tlog entry for ``body`` as leaf 1 of a three-leaf tree (no SET)."""
        raw = json.dumps(body, separators=(",", ":")).encode()
        leaf = lambda d: hashlib.sha256(b"\x00" + d).digest()  # noqa: E731
        node = lambda a, b: hashlib.sha256(b"\x01" + a + b).digest()  # noqa: E731
        l0, l1, l2 = leaf(b"entry zero"), leaf(raw), leaf(b"entry two")
        root = node(node(l0, l1), l2)
        return {
            "logIndex": "1",
            "logId": {"keyId": b64(self.log_id)},
            "kindVersion": {"kind": "hashedrekord", "version": "0.0.2"},
            "inclusionProof": {
                "logIndex": "1",
                "rootHash": b64(root),
                "treeSize": "3",
                "hashes": [b64(l0), b64(l2)],
                "checkpoint": {"envelope": self.checkpoint(3, root)},
            },
            "canonicalizedBody": b64(raw),
        }


class OpensslTSA:
    """An RFC 3161 timestamp authority: our own CA and TSA certificate, tokens by ``openssl ts``."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = ca_cert(
            "test-tsa-root", self.root_key, None, self.root_key,
            not_before=now - timedelta(days=1), not_after=now + timedelta(days=30),
        )  # fmt: skip
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-tsa")]))
            .issuer_name(self.root.subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .sign(self.root_key, hashes.SHA384())
        )
        (workdir / "tsa.crt").write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        (workdir / "tsa.key").write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (workdir / "chain.pem").write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        (workdir / "serial").write_text("01\n")
        (workdir / "ts.cnf").write_text(
            "[ tsa ]\ndefault_tsa = tsa_config\n[ tsa_config ]\n"
            f"dir = {workdir}\nserial = $dir/serial\nsigner_cert = $dir/tsa.crt\n"
            "signer_key = $dir/tsa.key\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\n"
            "digests = sha256\naccuracy = secs:1\nordering = no\ntsa_name = no\n"
            "ess_cert_id_chain = no\ness_cert_id_alg = sha256\n"
        )

    def timestamp(self, message: bytes) -> bytes:
        """A DER TimeStampResp over sha256(``message``), with the TSA certificate embedded."""
        (self.dir / "msg").write_bytes(message)
        subprocess.run(
            ["openssl", "ts", "-query", "-data", self.dir / "msg", "-sha256", "-cert", "-out", self.dir / "q.tsq"],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            ["openssl", "ts", "-reply", "-config", self.dir / "ts.cnf", "-queryfile", self.dir / "q.tsq",
             "-out", self.dir / "r.tsr"],
            check=True, capture_output=True,
        )  # fmt: skip
        return (self.dir / "r.tsr").read_bytes()


GITHUB_OIDS = {"trigger": "1.3.6.1.4.1.57264.1.2", "repository": "1.3.6.1.4.1.57264.1.5", "ref": "1.3.6.1.4.1.57264.1.6"}


def current_fulcio() -> FakeFulcio:
    """A FakeFulcio whose CAs are valid now (TSA tokens carry the real current time)."""
    now = datetime.now(UTC)
    fulcio = FakeFulcio()
    window = {"not_before": now - timedelta(days=1), "not_after": now + timedelta(days=30)}
    fulcio.reissue(root=window, intermediate=window)
    return fulcio


def workflow_leaf(fulcio: FakeFulcio, key: PrivateKey, identity: str, workflow: dict[str, str]) -> x509.Certificate:
    """A leaf issued now, with GitHub workflow claims in Fulcio's raw-string extensions."""
    return fulcio.leaf(
        key,
        identity=identity,
        issuer="https://token.actions.githubusercontent.com",
        not_before=datetime.now(UTC) - timedelta(minutes=1),
        extensions=tuple((GITHUB_OIDS[k], v.encode()) for k, v in workflow.items()),
    )


def rekor2_bundle(
    key: PrivateKey,
    leaf: x509.Certificate,
    digest: str,
    log: Rekor2Log,
    tsa: OpensslTSA,
    predicate_type: str = "https://slsa.dev/provenance/v1",
) -> dict[str, Any]:
    """A bundle v0.3 as a Rekor v2 signer writes it (edit the dict to tamper, then json.dumps)."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "registry.test/app", "digest": {"sha256": digest.split(":")[1]}}],
        "predicateType": predicate_type,
        "predicate": {"buildDefinition": {"buildType": "https://lockman.test/build"}},
    }
    payload = json.dumps(statement).encode()
    signed = pae("application/vnd.in-toto+json", payload)
    sig = sign(key, signed)
    body = {
        "apiVersion": "0.0.2",
        "kind": "hashedrekord",
        "spec": {
            "hashedRekordV002": {
                "data": {"algorithm": "SHA2_256", "digest": b64(hashlib.sha256(signed).digest())},
                "signature": {
                    "content": b64(sig),
                    "verifier": {"keyDetails": "PKIX_ECDSA_P256_SHA_256", "x509Certificate": {"rawBytes": b64(_der(leaf))}},
                },
            }
        },
    }
    return {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": {"rawBytes": b64(_der(leaf))},
            "tlogEntries": [log.entry(body)],
            "timestampVerificationData": {"rfc3161Timestamps": [{"signedTimestamp": b64(tsa.timestamp(sig))}]},
        },
        "dsseEnvelope": {
            "payload": b64(payload),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": b64(sig)}],
        },
    }


def trusted_root(fulcio: FakeFulcio, log: Rekor2Log, tsa: OpensslTSA) -> bytes:
    """``trusted_root.json`` trusting our Fulcio, CT log, Rekor v2 log and TSA."""
    start = {"start": (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    return json.dumps(
        {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [
                {
                    "baseUrl": f"https://{log.origin}",
                    "hashAlgorithm": "SHA2_256",
                    "publicKey": {"rawBytes": b64(_spki(log.key.public_key())), "keyDetails": "PKIX_ED25519", "validFor": start},
                    "logId": {"keyId": b64(log.log_id)},
                }
            ],
            "certificateAuthorities": [
                {
                    "uri": "https://fulcio.lockman.test",
                    "certChain": {"certificates": [{"rawBytes": b64(_der(c))} for c in (fulcio.intermediate, fulcio.root)]},
                    "validFor": start,
                }
            ],
            "ctlogs": [
                {
                    "baseUrl": "https://ctfe.lockman.test",
                    "hashAlgorithm": "SHA2_256",
                    "publicKey": {"rawBytes": b64(_spki(fulcio.ct_key.public_key())), "validFor": start},
                    "logId": {"keyId": b64(fulcio.ct_log_id)},
                }
            ],
            "timestampAuthorities": [
                {
                    "uri": "https://tsa.lockman.test",
                    "certChain": {"certificates": [{"rawBytes": b64(_der(c))} for c in (tsa.cert, tsa.root)]},
                    "validFor": start,
                }
            ],
        },
        indent=1,
    ).encode()


def tamper_b64(value: str, index: int = -8) -> str:
    """Flip one bit of a base64 field's decoded bytes."""
    raw = bytearray(base64.b64decode(value))
    raw[index] ^= 1
    return b64(bytes(raw))
