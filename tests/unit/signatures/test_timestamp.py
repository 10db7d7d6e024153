"""RFC 3161 timestamps against the trusted root's TSAs, tokens from a real TSA (openssl ts)."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lockman.errors import VerificationError
from lockman.signatures.timestamp import MAX_TIMESTAMPS, verify_timestamp, verify_timestamps
from lockman.signatures.trust import TimestampAuthority, TrustedRoot, ValidityWindow
from tests.support.sigstore_signers import OpensslTSA

pytestmark = pytest.mark.usefixtures("openssl_installed")


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> OpensslTSA:
    return OpensslTSA(tmp_path_factory.mktemp("tsa"))


def _root(tsa: OpensslTSA, window: ValidityWindow | None = None) -> TrustedRoot:
    start = datetime.now(UTC) - timedelta(days=1)
    return TrustedRoot(
        timestamp_authorities=(
            TimestampAuthority(chain=(tsa.cert, tsa.root), validity=window or ValidityWindow(start=start)),
        )
    )


def test_token_verifies_and_gives_its_time(tsa: OpensslTSA) -> None:
    token = tsa.timestamp(b"signature bytes")
    got = verify_timestamp(token, b"signature bytes", _root(tsa))
    assert abs(got.time - datetime.now(UTC)) < timedelta(minutes=5)


def test_token_over_another_signature_refused(tsa: OpensslTSA) -> None:
    token = tsa.timestamp(b"signature bytes")
    with pytest.raises(VerificationError, match=r"not verified by a trusted TSA"):
        verify_timestamp(token, b"other signature", _root(tsa))


def test_untrusted_tsa_refused(tsa: OpensslTSA, tmp_path: Path) -> None:
    token = OpensslTSA(tmp_path / "other").timestamp(b"sig")
    with pytest.raises(VerificationError, match=r"not verified by a trusted TSA"):
        verify_timestamp(token, b"sig", _root(tsa))
    with pytest.raises(VerificationError, match=r"trusted root has no TSA"):
        verify_timestamp(token, b"sig", TrustedRoot())


def test_time_outside_the_trusted_window_refused(tsa: OpensslTSA) -> None:
    token = tsa.timestamp(b"sig")
    ended = ValidityWindow(start=datetime.now(UTC) - timedelta(days=2), end=datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(VerificationError, match=r"outside its trusted window"):
        verify_timestamp(token, b"sig", _root(tsa, ended))


def test_tsa_chain_without_root_is_skipped(tsa: OpensslTSA) -> None:
    root = _root(tsa)
    lone = TrustedRoot(timestamp_authorities=(replace(root.timestamp_authorities[0], chain=(tsa.cert,)),))
    with pytest.raises(VerificationError, match=r"trusted TSA \(CN=test-tsa: chain has no root\)$"):
        verify_timestamp(tsa.timestamp(b"sig"), b"sig", lone)


def test_timestamps_that_do_not_verify_are_ignored_not_fatal(tsa: OpensslTSA, tmp_path: Path) -> None:
    """sigstore-python's and sigstore-go's rule: count the tokens that verify, ignore the others
    (over other bytes, from an unknown TSA); the cap and the repeat check still refuse."""
    good, other = tsa.timestamp(b"sig"), tsa.timestamp(b"not sig")
    stranger = OpensslTSA(tmp_path / "stranger").timestamp(b"sig")
    check = verify_timestamps([other, good, stranger], b"sig", _root(tsa))
    assert [t.authority for t in check.verified] == ["CN=test-tsa"]
    assert len(check.ignored) == 2 and all("not verified by a trusted TSA" in r for r in check.ignored)
    assert verify_timestamps([other], b"sig", _root(tsa)).verified == ()
    with pytest.raises(VerificationError, match=r"repeats an RFC 3161 timestamp"):
        verify_timestamps([good, good], b"sig", _root(tsa))
    with pytest.raises(VerificationError, match=rf"at most {MAX_TIMESTAMPS}"):
        verify_timestamps([b"x"] * (MAX_TIMESTAMPS + 1), b"sig", _root(tsa))
    with pytest.raises(VerificationError, match=r"^RFC 3161 timestamp is malformed"):
        verify_timestamps([good, b"x"], b"sig", _root(tsa))


@pytest.mark.parametrize("token", [b"", b"\x30\x03\x02\x01\x00", b"not der at all"])
def test_malformed_token_refused(tsa: OpensslTSA, token: bytes) -> None:
    with pytest.raises(VerificationError, match=r"^RFC 3161 timestamp is malformed"):
        verify_timestamp(token, b"sig", _root(tsa))


def test_tsa_time_alone_vouches_without_a_log(tsa: OpensslTSA) -> None:
    """GitHub's private-repository attestations: no transparency log, an RFC 3161 time."""
    import json

    from lockman.signatures import TrustedRoot, build_policy
    from lockman.signatures.bundle import verify_bundle
    from tests.support.signing_helpers import new_key
    from tests.support.sigstore_signers import (
        Rekor2Log,
        current_fulcio,
        rekor2_bundle,
        trusted_root,
        workflow_leaf,
    )

    fulcio, log, key = current_fulcio(), Rekor2Log(), new_key("p256")
    ident = "https://github.com/o/r/.github/workflows/build.yml@refs/heads/main"
    leaf = workflow_leaf(fulcio, key, ident, {"repository": "o/r"})
    digest = "sha256:" + "cd" * 32
    doc = rekor2_bundle(key, leaf, digest, log, tsa)
    del doc["verificationMaterial"]["tlogEntries"]
    root = TrustedRoot.from_json(trusted_root(fulcio, log, tsa))
    policy = build_policy(
        certificate_identity=ident,
        certificate_oidc_issuer="https://token.actions.githubusercontent.com",
        trusted_root=root,
        ignore_tlog=True,
        github_workflow=(("repository", "o/r"),),
    )
    result = verify_bundle(digest, json.dumps(doc).encode(), policy)
    assert result.tlog is None and len(result.timestamps) == 1
    with pytest.raises(VerificationError, match=r"no tlog entry \(transparency log required\)"):
        verify_bundle(digest, json.dumps(doc).encode(), replace(policy, ignore_tlog=False))
    # A second token over other bytes is ignored (sigstore-python, sigstore-go), not fatal; alone
    # it gives no verified time, and the bundle is refused.
    tokens = doc["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
    other = {"signedTimestamp": base64.b64encode(tsa.timestamp(b"other bytes")).decode()}
    tokens.append(other)
    assert verify_bundle(digest, json.dumps(doc).encode(), policy).timestamps == result.timestamps
    tokens[:] = [other]
    with pytest.raises(VerificationError, match=r"^not enough verified times \(0 < 1\): RFC 3161 timestamp not"):
        verify_bundle(digest, json.dumps(doc).encode(), policy)


def test_timestamp_over_another_dsse_signature_lends_no_time(tsa: OpensslTSA) -> None:
    """An old timestamped signature put first in the envelope must not vouch for the time of a
    second one (e.g. made after the certificate expired): a bundle's envelope holds exactly one
    signature, as sigstore-python and sigstore-go require."""
    import json

    from lockman.signatures import TrustedRoot, build_policy
    from lockman.signatures.bundle import verify_bundle
    from tests.support.signing_helpers import new_key
    from tests.support.sigstore_signers import (
        Rekor2Log,
        current_fulcio,
        rekor2_bundle,
        trusted_root,
        workflow_leaf,
    )

    fulcio, log, key = current_fulcio(), Rekor2Log(), new_key("p256")
    ident = "https://github.com/o/r/.github/workflows/build.yml@refs/heads/main"
    leaf = workflow_leaf(fulcio, key, ident, {"repository": "o/r"})
    old = rekor2_bundle(key, leaf, "sha256:" + "ab" * 32, log, tsa)
    digest = "sha256:" + "cd" * 32
    new = rekor2_bundle(key, leaf, digest, log, tsa)
    del new["verificationMaterial"]["tlogEntries"]
    new["verificationMaterial"]["timestampVerificationData"] = old["verificationMaterial"]["timestampVerificationData"]
    policy = build_policy(
        certificate_identity=ident,
        certificate_oidc_issuer="https://token.actions.githubusercontent.com",
        trusted_root=TrustedRoot.from_json(trusted_root(fulcio, log, tsa)),
        ignore_tlog=True,
    )
    # Alone, the new signature has no timestamp of its own: the old token is over another one.
    with pytest.raises(VerificationError, match=r"^not enough verified times \(0 < 1\): RFC 3161 timestamp"):
        verify_bundle(digest, json.dumps(new).encode(), policy)
    # The old signature put first, where the timestamp is checked: refused for the envelope's shape.
    new["dsseEnvelope"]["signatures"].insert(0, old["dsseEnvelope"]["signatures"][0])
    with pytest.raises(VerificationError, match=r"^DSSE envelope must have exactly one signature, not 2$"):
        verify_bundle(digest, json.dumps(new).encode(), policy)
    new["dsseEnvelope"]["signatures"] = []
    with pytest.raises(VerificationError, match=r"^DSSE envelope must have exactly one signature, not 0$"):
        verify_bundle(digest, json.dumps(new).encode(), policy)
