"""Signed checkpoints (C2SP signed notes) as Rekor v1 and v2 write them."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from lockman.errors import VerificationError
from lockman.signatures.checkpoint import MAX_CHECKPOINT_BYTES, parse_checkpoint, verify_checkpoint
from lockman.signatures.trust import LogKey, TrustedRoot
from tests.support.signing_helpers import b64
from tests.support.sigstore_signers import Rekor2Log

ROOT_HASH = hashlib.sha256(b"root").digest()


def _root(log: Rekor2Log, base_url: str | None = None) -> TrustedRoot:
    url = f"https://{log.origin}" if base_url is None else base_url
    return TrustedRoot(tlogs=(LogKey(log_id=log.log_id, key=log.key.public_key(), base_url=url),))


def _verify(note: str, log: Rekor2Log, root: TrustedRoot | None = None, size: int = 7) -> None:
    verify_checkpoint(note, log_id=log.log_id, tree_size=size, root_hash=ROOT_HASH, trusted_root=root or _root(log))


def test_rekor_v2_checkpoint_verifies_and_parses() -> None:
    log = Rekor2Log()
    note = log.checkpoint(7, ROOT_HASH)
    _verify(note, log)
    cp = parse_checkpoint(note)
    assert (cp.origin, cp.size, cp.root_hash) == (log.origin, 7, ROOT_HASH)


def _v1_note(log: Rekor2Log, origin: str, size: int = 7, name: str | None = None) -> str:
    body = f"{origin} - 1193050959916656506\n{size}\n{b64(ROOT_HASH)}\n"
    return f"{body}\n\u2014 {name or origin} {b64(log.log_id[:4] + log.key.sign(body.encode()))}\n"


def test_rekor_v1_origin_with_tree_id_and_port_in_base_url() -> None:
    v1 = Rekor2Log(origin="rekor.lockman.test")
    _verify(_v1_note(v1, "rekor.lockman.test"), v1)
    local = Rekor2Log(origin="localhost")  # sigstore-go compares the URL's host, without its port
    _verify(local.checkpoint(7, ROOT_HASH), local, _root(local, "http://localhost:8000"))


def test_rekor_v1_origin_is_the_deployments_own_name() -> None:
    """sigstore-go's othername bundle: a private Rekor v1 whose tree heads are named after its pod,
    not its URL. Neither reference compares a v1 origin (or the line's name) with anything: the
    log key and its hint vouch. The root hash is still the proof's; the size is not compared."""
    log = Rekor2Log(origin="rekor-00001-deployment-56bf7777c9-jds5x")
    root = _root(log, "http://rekor.rekor-system.172.18.255.1.sslip.io")
    _verify(_v1_note(log, log.origin), log, root)
    _verify(_v1_note(log, log.origin, name="anything.lockman.test"), log, root)
    _verify(_v1_note(log, log.origin, size=8), log, root)
    with pytest.raises(VerificationError, match=r"^checkpoint does not match the inclusion proof's tree"):
        verify_checkpoint(_v1_note(log, log.origin), log_id=log.log_id, tree_size=7, root_hash=bytes(32), trusted_root=root)
    with pytest.raises(VerificationError, match=r"^checkpoint has no signature from a trusted Rekor log$"):
        _verify(_v1_note(Rekor2Log(origin=log.origin), log.origin), log, root)
    # Without the tree id the same origin is a Rekor v2 one, and must then name the log.
    with pytest.raises(VerificationError, match=r"^checkpoint origin '.*' does not name the trusted log$"):
        _verify(log.checkpoint(7, ROOT_HASH), log, root)


def test_rekor_v2_origin_must_be_exactly_the_host() -> None:
    """sigstore-go: ``note.NewNoteVerifier(u.Hostname(), ...)`` then ``ParseCheckpoint`` compares
    the whole origin, so extra words after the host are not the log's."""
    log = Rekor2Log()
    body = f"{log.origin} extra\n7\n{b64(ROOT_HASH)}\n"
    note = f"{body}\n\u2014 {log.origin} {b64(log.log_id[:4] + log.key.sign(body.encode()))}\n"
    with pytest.raises(VerificationError, match=r"^checkpoint origin 'rekor2.lockman.test extra' does not name"):
        _verify(note, log)
    # A baseUrl without a scheme names no host (Go's url.Parse reads it as a path): nothing matches.
    with pytest.raises(VerificationError, match=r"^checkpoint origin 'rekor2.lockman.test' does not name"):
        _verify(log.checkpoint(7, ROOT_HASH), log, _root(log, "rekor2.lockman.test"))


def test_origin_must_name_the_trusted_log() -> None:
    log = Rekor2Log()
    with pytest.raises(VerificationError, match=r"^checkpoint origin 'rekor2.lockman.test' does not name"):
        _verify(log.checkpoint(7, ROOT_HASH), log, _root(log, "https://other.lockman.test"))


def test_log_signature_needs_the_origin_name_and_the_hint() -> None:
    log = Rekor2Log()
    body = f"{log.origin}\n7\n{b64(ROOT_HASH)}\n"
    sig = log.key.sign(body.encode())
    renamed = f"{body}\n\u2014 evil.lockman.test {b64(log.log_id[:4] + sig)}\n"
    wrong_hint = f"{body}\n\u2014 {log.origin} {b64(b'XXXX' + sig)}\n"
    for note in (renamed, wrong_hint):
        with pytest.raises(VerificationError, match=r"^checkpoint has no signature from a trusted Rekor log$"):
            _verify(note, log)


def test_witness_lines_ignored_in_any_order() -> None:
    log = Rekor2Log()
    note = log.checkpoint(7, ROOT_HASH)
    body, _, sigline = note.partition("\n\n")
    witness = f"\u2014 witness.lockman.test {b64(b'WTNS' + bytes(72))}\n"
    _verify(f"{body}\n\n{witness}{sigline}", log)
    with pytest.raises(VerificationError, match=r"no signature from a trusted Rekor log"):
        _verify(f"{body}\n\n{witness}", log)


def test_checkpoint_from_another_log_key_refused() -> None:
    log, other = Rekor2Log(), Rekor2Log()
    other_key_root = TrustedRoot(
        tlogs=(LogKey(log_id=log.log_id, key=ed25519.Ed25519PrivateKey.generate().public_key(), base_url=""),)
    )
    with pytest.raises(VerificationError, match=r"no signature from a trusted Rekor log"):
        _verify(log.checkpoint(7, ROOT_HASH), log, other_key_root)
    with pytest.raises(VerificationError, match=r"no signature from a trusted Rekor log"):
        _verify(log.checkpoint(7, ROOT_HASH), log, _root(other))


@pytest.mark.parametrize(
    ("mangle", "refusal"),
    [
        (lambda n: n.replace("\n7\n", "\n7\n\n"), r"^checkpoint is not a signed note$"),
        (lambda n: n.replace("\n\n", "\n\n\n"), r"^checkpoint signature line malformed"),
        (lambda n: n.rstrip("\n"), r"^checkpoint is not a signed note$"),
        (lambda n: n.replace("\u2014 ", "- "), r"^checkpoint signature line malformed"),
        (lambda n: "\n" + n.split("\n", 1)[1], r"^checkpoint body malformed$"),
        (lambda n: n.replace(b64(ROOT_HASH), b64(ROOT_HASH[:16])), r"^checkpoint body malformed$"),
        (lambda n: n.replace("\n7\n", "\n-7\n"), r"^checkpoint body malformed$"),
        (lambda n: n.replace("\n7\n", "\n8\n"), r"^checkpoint does not match the inclusion proof's tree"),
        (lambda n: n + "x" * MAX_CHECKPOINT_BYTES, r"^checkpoint is too large$"),
        (lambda n: n.split("\u2014")[0] + "\u2014 rekor2.lockman.test AAAAAA==\n", r"^checkpoint signature too short$"),
    ],
)
def test_malformed_notes_refused(mangle, refusal: str) -> None:
    log = Rekor2Log()
    with pytest.raises(VerificationError, match=refusal):
        _verify(mangle(log.checkpoint(7, ROOT_HASH)), log)


def test_a_checkpoint_that_is_not_utf8_text_is_refused_as_such() -> None:
    """A checkpoint arrives as JSON text, which may hold a lone surrogate; the note is signed as
    UTF-8, so such text is refused before anything else reads it (found by fuzzing)."""
    from lockman.errors import VerificationError
    from lockman.signatures.checkpoint import parse_checkpoint

    with pytest.raises(VerificationError, match=r"^checkpoint is not UTF-8 text$"):
        parse_checkpoint("\udc80rigin\n1\n" + "A" * 43 + "=\n\n\u2014 origin AAAAAAAA\n")
