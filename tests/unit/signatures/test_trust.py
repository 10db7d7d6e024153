"""trusted_root.json parsing, the shipped public-good root, and loose-PEM roots."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from lockman.errors import InputError
from lockman.signatures.trust import (
    DEFAULT_TRUSTED_ROOT_DATE,
    TrustedRoot,
    ValidityWindow,
    default_trusted_root,
)
from tests.support.paths import ROOT as REPO
from tests.support.signing_helpers import TESTDATA

PUBLIC_GOOD_REKOR = bytes.fromhex("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d")


def test_default_root_contents() -> None:
    root = default_trusted_root()
    assert DEFAULT_TRUSTED_ROOT_DATE in root.source
    assert len(root.tlogs) == 2 and len(root.ctlogs) == 2
    assert len(root.certificate_authorities) == 2
    (rekor,) = root.tlog_keys(PUBLIC_GOOD_REKOR)
    assert rekor.base_url == "https://rekor.sigstore.dev"
    assert rekor.validity.start == datetime(2021, 1, 12, 11, 53, 27, tzinfo=UTC)
    old_ca = root.certificate_authorities[0]
    assert old_ca.validity.end is not None and old_ca.validity.end.year == 2022
    assert [len(ca.chain) for ca in root.certificate_authorities] == [1, 2]


def test_from_pems_computes_log_ids() -> None:
    root = TrustedRoot.from_pems(
        rekor_keys=[(TESTDATA / "rekor.pub").read_bytes()],
        fulcio_certs=[(TESTDATA / "fulcio_v1.crt.pem").read_bytes()],
    )
    assert root.tlog_keys(PUBLIC_GOOD_REKOR)
    assert root.certificate_authorities[0].chain[0].subject.rfc4514_string() == "CN=sigstore,O=sigstore.dev"
    assert root.ctlogs == ()


def test_validity_window() -> None:
    w = ValidityWindow(
        start=datetime(2020, 1, 1, tzinfo=UTC),
        end=datetime(2021, 1, 1, tzinfo=UTC),
    )
    assert w.contains(datetime(2020, 6, 1, tzinfo=UTC))
    assert not w.contains(datetime(2019, 6, 1, tzinfo=UTC))
    assert not w.contains(datetime(2021, 6, 1, tzinfo=UTC))
    assert ValidityWindow().contains(datetime(1999, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", r"^root.json: not valid JSON"),
        ("[]", "expected a JSON object"),
        ('{"mediaType": "x"}', "not a Sigstore trusted root"),
        (
            json.dumps(
                {
                    "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                    "tlogs": [{"publicKey": {}}],
                }
            ),
            "malformed trusted root",
        ),
    ],
)
def test_bad_trusted_root(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        TrustedRoot.from_json(text, source="root.json")


def test_missing_file(tmp_path) -> None:
    with pytest.raises(InputError, match=r"cannot read trusted root"):
        TrustedRoot.from_file(tmp_path / "nope.json")


@pytest.mark.parametrize("stamp", ["2022-12-31T23:59:59.9Z", "2022-12-31T23:59:59.123456789Z"])
def test_protobuf_timestamps_with_any_fraction(stamp: str) -> None:
    doc = json.loads(
        (REPO / "lockman/signatures/data/trusted_root.json").read_text()
    )
    doc["certificateAuthorities"][0]["validFor"]["end"] = stamp
    root = TrustedRoot.from_json(json.dumps(doc))
    end = root.certificate_authorities[0].validity.end
    assert end is not None and (end.year, end.second, end.microsecond // 100000) == (
        2022,
        59,
        9 if stamp.endswith(".9Z") else 1,
    )


PUBLIC_GOOD = REPO / "lockman/signatures/data/trusted_root.json"


@pytest.mark.parametrize(
    ("path", "where"),
    [
        (("tlogs", 0, "publicKey"), r"tlogs\[0\]\.publicKey\.validFor\.start: missing"),
        (("ctlogs", 1, "publicKey"), r"ctlogs\[1\]\.publicKey\.validFor\.start: missing"),
        (("certificateAuthorities", 0), r"certificateAuthorities\[0\]\.validFor\.start: missing"),
        (("timestampAuthorities", 0), r"timestampAuthorities\[0\]\.validFor\.start: missing"),
    ],
)
def test_window_without_start_is_bad_input(path: tuple, where: str) -> None:
    """Never an unbounded window: a missing start is the root's author's mistake (exit 2)."""
    doc = json.loads(PUBLIC_GOOD.read_text())
    target = doc
    for p in path:
        target = target[p]
    del target["validFor"]["start"]
    with pytest.raises(InputError, match=where):
        TrustedRoot.from_json(json.dumps(doc), source="root.json")
    target.pop("validFor")
    with pytest.raises(InputError, match=where):
        TrustedRoot.from_json(json.dumps(doc), source="root.json")


def test_malformed_key_bytes_are_bad_input() -> None:
    doc = json.loads(PUBLIC_GOOD.read_text())
    doc["tlogs"][0]["publicKey"]["rawBytes"] = "!!not base64!!"
    with pytest.raises(InputError, match=r"^root.json: tlogs\[0\]\.publicKey\.rawBytes is not valid base64$"):
        TrustedRoot.from_json(json.dumps(doc), source="root.json")
    doc["tlogs"][0]["publicKey"]["rawBytes"] = "AAAA"
    with pytest.raises(InputError, match=r"tlogs\[0\]\.publicKey"):
        TrustedRoot.from_json(json.dumps(doc), source="root.json")


def test_timestamp_authorities_parsed() -> None:
    (tsa,) = default_trusted_root().timestamp_authorities
    assert tsa.uri and len(tsa.chain) >= 2 and tsa.validity.start is not None


def test_json_lines_hold_several_roots() -> None:
    """``gh attestation trusted-root`` writes one root per line; all are trusted at once."""
    public = json.loads(PUBLIC_GOOD.read_text())
    custom = json.loads(
        (TESTDATA.parent / "sigstore-conformance/bundle-verify/rekor2-happy-path/trusted_root.json").read_text()
    )
    text = json.dumps(public) + "\n\n" + json.dumps(custom) + "\n"
    root = TrustedRoot.from_json(text, source="roots.jsonl")
    assert root.source == "roots.jsonl (2 roots)"
    assert len(root.tlogs) == len(public["tlogs"]) + len(custom["tlogs"])
    assert len(root.timestamp_authorities) == len(public["timestampAuthorities"]) + len(
        custom["timestampAuthorities"]
    )
    with pytest.raises(InputError, match=r"^roots.jsonl: line 2: not valid JSON"):
        TrustedRoot.from_json(json.dumps(public) + "\n{broken\n", source="roots.jsonl")
    with pytest.raises(InputError, match=r"^roots.jsonl: line 2: mediaType"):
        TrustedRoot.from_json(json.dumps(public) + '\n{"mediaType": "x"}\n', source="roots.jsonl")


# ---------------------------------------------------------------- trust material that must be refused


def _root_doc() -> dict:
    return json.loads(
        (REPO / "lockman/signatures/data/trusted_root.json").read_text()
    )


def test_window_edges_are_inside() -> None:
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC)
    assert ValidityWindow(start=start, end=end).contains(start)
    assert ValidityWindow(start=start, end=end).contains(end)
    assert not ValidityWindow(start=start).contains(datetime(2019, 12, 31, tzinfo=UTC))
    assert ValidityWindow(start=start).contains(datetime(2099, 1, 1, tzinfo=UTC))
    assert not ValidityWindow(end=end).contains(datetime(2021, 1, 2, tzinfo=UTC))
    assert ValidityWindow(end=end).contains(datetime(1999, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["tlogs"][0]["publicKey"]["validFor"].update(start="yesterday"), r"tlogs\[0\].*bad timestamp"),
        (
            lambda d: d["certificateAuthorities"][0]["certChain"]["certificates"][0].update(rawBytes="AAAA"),
            r"certificateAuthorities\[0\]\.certChain\[0\]: not a DER certificate",
        ),
        (
            lambda d: d["certificateAuthorities"][0]["certChain"].update(certificates=[]),
            r"certificateAuthorities\[0\]: empty certificate chain",
        ),
    ],
)
def test_bad_entries_in_trusted_root(edit, message: str) -> None:
    doc = _root_doc()
    edit(doc)
    with pytest.raises(InputError, match=message):
        TrustedRoot.from_json(json.dumps(doc), source="root.json")


def test_loose_pem_that_is_not_a_certificate() -> None:
    with pytest.raises(InputError, match=r"Fulcio certificate: not PEM certificates"):
        TrustedRoot.from_pems(fulcio_certs=[b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
