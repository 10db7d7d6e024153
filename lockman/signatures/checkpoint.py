"""Signed checkpoints (C2SP signed notes): the log's signed statement of its size and root.

Rekor v2 has no signed entry timestamp: an entry is proven logged only by its inclusion proof
leading to a root that the log signed in a checkpoint. Rules (C2SP ``signed-note`` and
``tlog-checkpoint``, as sigstore-python and the conformance suite apply them):

- the note is ``body`` + one blank line + signature lines ``— <name> <base64(hint4 || sig)>``;
  the body is ``origin``, ``size``, ``base64(root)`` and optional extension lines;
- the log's own signature is the line whose name is the origin's host (Rekor v1's origin adds
  `` - <tree id>``, its key name does not) and whose 4-byte key hint
  is the first bytes of the entry's log id; other lines (witness cosignatures, keys we do not
  know) are ignored, in any order;
- the origin must name the trusted log: its first word is the host of the log's ``baseUrl``
  (Rekor v1 writes ``rekor.sigstore.dev - <tree id>``, Rekor v2 the bare host).
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
        return True  # loose PEM roots know no URL; the key alone must vouch
    host = urlsplit(log.base_url).netloc or log.base_url
    return origin.split(" ", 1)[0] == host


def verify_checkpoint(
    envelope: str, *, log_id: bytes, tree_size: int, root_hash: bytes, trusted_root: TrustedRoot
) -> Checkpoint:
    """Check the note is signed by the trusted log ``log_id`` and states this tree."""
    cp = parse_checkpoint(envelope)
    if cp.size != tree_size or cp.root_hash != root_hash:
        raise VerificationError("checkpoint does not match the inclusion proof's tree (size or root hash)")
    logs = trusted_root.tlog_keys(log_id)
    if not logs:
        raise VerificationError("checkpoint has no signature from a trusted Rekor log")
    if not any(_origin_names_log(cp.origin, log) for log in logs):
        raise VerificationError(f"checkpoint origin {cp.origin!r} does not name the trusted log")
    for name, hint, sig in cp.signatures:
        if name != cp.origin.split(" ", 1)[0] or hint != log_id[:4]:
            continue  # a witness or another key: not the log's own signature
        if any(signature_valid(log.key, sig, cp.signed_text) for log in logs):
            return cp
    raise VerificationError("checkpoint has no signature from a trusted Rekor log")
