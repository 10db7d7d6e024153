"""Signed checkpoints (C2SP signed notes): the log's signed statement of its size and root.

Rekor v2 has no signed entry timestamp: an entry is proven logged only by its inclusion proof
leading to a root that the log signed in a checkpoint. Rules (C2SP ``signed-note`` and
``tlog-checkpoint``, as sigstore-python and the conformance suite apply them):

- the note is ``body`` + one blank line + signature lines ``— <name> <base64(hint4 || sig)>``;
  the body is ``origin``, ``size``, ``base64(root)`` and optional extension lines;
- the log's own signature is the line whose 4-byte key hint is the first bytes of the entry's
  log id (for Rekor v2 also named by the origin); other lines (witness cosignatures, keys we do
  not know) are ignored, in any order;
- a Rekor v2 origin is the host of the log's ``baseUrl``; a Rekor v1 origin
  (``<name> - <tree id>``) is not compared with anything, as in the reference verifiers
  (see :func:`verify_checkpoint`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from lockman.errors import VerificationError
from lockman.signatures.keys import decode_b64, signature_valid
from lockman.signatures.trust import LogKey, TrustedRoot

MAX_CHECKPOINT_BYTES = 64 * 1024
_SIZE = re.compile(r"[0-9]+")
_SIG_LINE = re.compile(r"\u2014 (\S+) (\S+)")
_V1_ORIGIN = re.compile(r".* - [0-9]+")


@dataclass(frozen=True)
class Checkpoint:
    """The parsed note: what the log claims, and the signature lines to check it with."""

    origin: str
    size: int
    root_hash: bytes
    signed_text: bytes
    signatures: tuple[tuple[str, bytes, bytes], ...]
    """(name, 4-byte key hint, signature) per signature line."""


def parse_checkpoint(envelope: str) -> Checkpoint:
    """Parse a signed note; any deviation from the format is a VerificationError."""
    if len(envelope) > MAX_CHECKPOINT_BYTES:
        raise VerificationError("checkpoint is too large")
    try:
        envelope.encode("utf-8")  # JSON text may hold a lone surrogate; the note is signed as UTF-8
    except UnicodeEncodeError:
        raise VerificationError("checkpoint is not UTF-8 text") from None
    if envelope.count("\n\n") != 1:
        raise VerificationError("checkpoint is not a signed note")
    body, _, sig_block = envelope.partition("\n\n")
    if not sig_block.endswith("\n"):
        raise VerificationError("checkpoint is not a signed note")
    lines = body.split("\n")
    if len(lines) < 3:
        raise VerificationError("checkpoint body too short")
    origin = lines[0]
    if not origin.strip():
        raise VerificationError("checkpoint body malformed")
    if not _SIZE.fullmatch(lines[1]):  # not str.isdigit: it takes "²", which int() refuses
        raise VerificationError("checkpoint body malformed")
    root = decode_b64(lines[2], "checkpoint root hash")
    if len(root) != 32:
        raise VerificationError("checkpoint body malformed")
    sigs = []
    for line in sig_block[:-1].split("\n"):
        m = _SIG_LINE.fullmatch(line)
        if m is None:
            raise VerificationError(f"checkpoint signature line malformed: {line[:60]!r}")
        blob = decode_b64(m.group(2), "checkpoint signature")
        if len(blob) < 5:
            raise VerificationError("checkpoint signature too short")
        sigs.append((m.group(1), blob[:4], blob[4:]))
    return Checkpoint(
        origin=origin,
        size=int(lines[1]),
        root_hash=root,
        signed_text=(body + "\n").encode(),
        signatures=tuple(sigs),
    )


def _origin_names_log(origin: str, log: LogKey) -> bool:
    if not log.base_url:
        return True  # loose PEM roots know no URL; the key alone must vouch (as sigstore-python)
    return origin == urlsplit(log.base_url).hostname  # sigstore-go: url.Parse(baseUrl).Hostname()


def is_rekor_v1_origin(origin: str) -> bool:
    """sigstore-go's ``hasRekorV1STH``: Rekor v1 signs tree heads whose origin ends in `` - <tree id>``."""
    return _V1_ORIGIN.fullmatch(origin) is not None


def verify_checkpoint(
    envelope: str, *, log_id: bytes, tree_size: int, root_hash: bytes, trusted_root: TrustedRoot
) -> Checkpoint:
    """Check the note is signed by the trusted log ``log_id`` and states this tree.

    What the reference verifiers check, no more (docs/signatures.md cites the lines):

    - every checkpoint: a signature line whose key hint is ``log_id[:4]`` verifies with that
      log's key, and the root hash is the proof's (rekor ``VerifyCheckpointSignature``,
      sigstore-python ``SignedNote.verify``); other lines are ignored;
    - Rekor v1 (origin ``<name> - <tree id>``): nothing else. The origin is the deployment's
      own name (``rekor.sigstore.dev``, or a pod's name in a private deployment), so neither
      reference compares it, nor the line's name, with the log's URL;
    - otherwise (Rekor v2), as sigstore-go: the origin is exactly the host of the log's
      ``baseUrl``, the signature line bears that name, and the size is the proof's (sigstore-go
      proves inclusion against the checkpoint's own size and root).
    """
    cp = parse_checkpoint(envelope)
    v1 = is_rekor_v1_origin(cp.origin)
    if cp.root_hash != root_hash or (not v1 and cp.size != tree_size):
        raise VerificationError("checkpoint does not match the inclusion proof's tree (size or root hash)")
    logs = trusted_root.tlog_keys(log_id)
    if not logs:
        raise VerificationError("checkpoint has no signature from a trusted Rekor log")
    if not v1:
        logs = [log for log in logs if _origin_names_log(cp.origin, log)]
        if not logs:
            raise VerificationError(f"checkpoint origin {cp.origin!r} does not name the trusted log")
    for name, hint, sig in cp.signatures:
        if hint != log_id[:4] or (not v1 and name != cp.origin):
            continue  # a witness or another key: not the log's own signature
        if any(signature_valid(log.key, sig, cp.signed_text) for log in logs):
            return cp
    raise VerificationError("checkpoint has no signature from a trusted Rekor log")
