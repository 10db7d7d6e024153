"""The Digest value type: grammar (own table and the peers' rows), parts, shortening, hashing.

The peers' rows are the digest-bearing references of testdata/conformance (distribution/reference,
go-containerregistry, regclient): the text after ``@`` is checked on its own, so a digest the
peers refuse is refused by :class:`Digest` itself, not only somewhere inside reference parsing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lockman.errors import InvalidReference, VerificationError
from lockman.model import reference
from lockman.model.digest import Digest, shorten
from tests.support.paths import TESTDATA

HEX = "0123456789abcdef"
EMPTY256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
EMPTY512 = (
    "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)
D256 = "sha256:" + "0123456789abcdef" * 4
D512 = "sha512:" + "fedcba9876543210" * 8


# -- grammar ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [EMPTY256, EMPTY512, D256, D512])
def test_parse_accepts_registered_algorithms_with_lowercase_hex(text: str) -> None:
    d = Digest.parse(text)
    assert d == text and isinstance(d, Digest)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid digest '': expected 'sha256:<64 hex>'"),
        ("sha256", "invalid digest 'sha256': expected 'sha256:<64 hex>'"),
        ("sha256:", "invalid digest 'sha256:': expected 'sha256:<64 hex>'"),
        (":" + "a" * 64, "expected 'sha256:<64 hex>'"),
        ("sha256+:" + "a" * 64, "expected 'sha256:<64 hex>'"),  # an algorithm component may not be empty
        ("1sha:" + "a" * 64, "expected 'sha256:<64 hex>'"),  # nor start with a digit
        ("sha256:" + "a" * 63, "sha256 needs 64 lowercase hex characters"),
        ("sha256:" + "a" * 65, "sha256 needs 64 lowercase hex characters"),
        ("sha256:" + "A" * 64, "sha256 needs 64 lowercase hex characters"),
        ("sha256:" + "g" * 64, "sha256 needs 64 lowercase hex characters"),
        ("sha256:" + "a" * 63 + "\n", "expected 'sha256:<64 hex>'"),  # no line break inside (nor after)
        (" sha256:" + "a" * 64, "expected 'sha256:<64 hex>'"),
        ("sha256:sha256:" + "a" * 57, "sha256 needs 64 lowercase hex characters"),
        ("sha256:../../../../etc/passwd", "sha256 needs 64 lowercase hex characters"),
        ("sha512:" + "a" * 64, "sha512 needs 128 lowercase hex characters"),
        ("SHA256:" + "a" * 64, "unsupported digest algorithm 'SHA256' (sha256 and sha512 are supported)"),
        ("sha384:" + "a" * 96, "unsupported digest algorithm 'sha384'"),
        ("md5:" + "a" * 32, "unsupported digest algorithm 'md5'"),
        ("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", "unsupported digest algorithm"),
    ],
)
def test_parse_refuses_with_the_message_validate_digest_always_gave(text: str, message: str) -> None:
    with pytest.raises(InvalidReference) as exc:
        Digest.parse(text)
    assert message in str(exc.value)
    assert str(exc.value).startswith(f"invalid digest {text!r}: ")
    assert reference.is_digest(text) is False


def test_parse_names_what_the_digest_is() -> None:
    with pytest.raises(InvalidReference, match=r"^invalid lock digest 'sha256:ab': sha256 needs 64"):
        Digest.parse("sha256:ab", what="lock digest")
    assert reference.validate_digest(D256) == D256 and isinstance(reference.validate_digest(D256), Digest)


def test_not_a_string_is_an_invalid_digest_not_a_crash() -> None:
    with pytest.raises(InvalidReference, match="expected 'sha256:<64 hex>'"):
        Digest.parse(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidReference):
        Digest(b"sha256:" + b"a" * 64)  # type: ignore[arg-type]


def _peer_digest_rows() -> list[Any]:
    """(digest text, accepted?) for every peer row whose reference carries ``@``.

    An accepted row's digest must parse (and equal the peer's expected digest when it names one).
    A refused row counts only when its name part is fine on its own: then the refusal is the
    digest's. Rows where lockman deliberately differs use lockman's documented result.
    """
    rows = []
    for name in ("distribution-reference", "google-go-containerregistry", "regclient-regclient"):
        peer = json.loads((TESTDATA / "conformance" / f"{name}.json").read_text())
        for table in peer["tables"]:
            for i, row in enumerate(table["rows"]):
                text = row["input"]
                if "@" not in text:
                    continue
                want = row.get("lockman", row["expected"])
                named, _, digest = text.partition("@")
                if want["error"]:
                    try:
                        reference.parse(named)
                    except InvalidReference:
                        continue  # the name is already wrong: says nothing about the digest
                rows.append(pytest.param(digest, not want["error"], want.get("digest"), id=f"{name}:{i}"))
    return rows


PEER_ROWS = _peer_digest_rows()


def test_the_peer_tables_have_digest_rows_both_ways() -> None:
    assert sum(1 for p in PEER_ROWS if p.values[1]) >= 20
    assert sum(1 for p in PEER_ROWS if not p.values[1]) >= 8


@pytest.mark.parametrize(("text", "accepted", "expected"), PEER_ROWS)
def test_peer_rows(text: str, accepted: bool, expected: str | None) -> None:
    if accepted:
        d = Digest.parse(text)
        assert expected is None or d == expected
    else:
        with pytest.raises(InvalidReference):
            Digest.parse(text)


# -- a str that is a digest --------------------------------------------------------------------------


def test_a_digest_is_its_string() -> None:
    d = Digest.parse(D256)
    assert d == D256 and hash(d) == hash(D256) and {D256: 1}[d] == 1
    assert str(d) == D256 and type(str(d)) is str
    assert f"{d}" == D256 and repr(d) == repr(D256)  # messages quoting {digest!r} read the same
    assert json.dumps({"digest": d}) == json.dumps({"digest": D256})
    assert Digest.parse(d) is d  # already parsed: nothing to check again


def test_copies_and_pickles_stay_digests() -> None:
    d = Digest.parse(D512)
    for back in (copy.copy(d), copy.deepcopy(d), pickle.loads(pickle.dumps(d))):
        assert back == d and type(back) is Digest


def test_algorithm_and_hex() -> None:
    assert (Digest.parse(D256).algorithm, Digest.parse(D256).hex) == ("sha256", D256[7:])
    assert (Digest.parse(D512).algorithm, Digest.parse(D512).hex) == ("sha512", D512[7:])


def test_short_forms_lockman_prints() -> None:
    d = Digest.parse(D256)
    assert d.short() == "sha256:0123456789ab"  # what lockman prints to tell digests apart
    assert d.short(7, prefix=False) == "0123456"  # what Renovate shows
    assert d.short(12) == D256[:19]  # enforce's "bundle sha256:…" reason, once a [:19] slice
    assert Digest.parse(D512).short() == "sha512:fedcba987654"


def _old_console_short(digest: str) -> str:
    alg, _, hex_ = digest.partition(":")
    return f"{alg}:{hex_[:12]}"


def _old_short7(digest: str) -> str:
    return digest.partition(":")[2][:7]


def _old_short12(digest: str) -> str:
    return f"{digest.partition(':')[0]}:{digest.partition(':')[2][:12]}"


@settings(deadline=None)
@given(st.text(max_size=90))
@example("sha256:e4f5a6b7c8d90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071829")  # README's 63-hex example
@example("")
@example("no colon at all")
def test_shorten_prints_what_the_three_old_helpers_printed(text: str) -> None:
    """console.short, report.short12 and report.short7 were three spellings; shorten is one, on any text."""
    assert shorten(text) == _old_console_short(text) == _old_short12(text)
    assert shorten(text, 7, prefix=False) == _old_short7(text)


def test_the_old_helper_names_still_print_the_same() -> None:
    from lockman import console, report

    assert console.short(D256) == "sha256:0123456789ab"
    assert report.short12(f"{D256},{D512}") == "sha256:0123456789ab,sha512:fedcba987654"
    assert report.short7(f"{D256},{D512}") == "0123456,fedcba9"
    assert report.short7(None) == ""


# -- hashing ---------------------------------------------------------------------------------------------


def test_of_hashes_with_the_named_algorithm() -> None:
    assert Digest.of(b"") == EMPTY256 and type(Digest.of(b"")) is Digest
    assert Digest.of(b"", "sha512") == EMPTY512
    assert Digest.of(b"abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    Digest.parse(str(Digest.of(b"abc", "sha512")))  # what of() makes, parse() accepts


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha384", "SHA256", ""])
def test_of_refuses_an_algorithm_no_digest_could_carry(algorithm: str) -> None:
    with pytest.raises(InvalidReference, match="unsupported digest algorithm"):
        Digest.of(b"x", algorithm)


def test_verify_uses_the_digests_own_algorithm() -> None:
    assert Digest.parse(EMPTY256).verify(b"") and Digest.parse(EMPTY512).verify(b"")
    assert not Digest.parse(EMPTY256).verify(b"\0")
    assert not Digest.parse(D512).verify(b"")


def test_check_raises_the_mismatch_error_lockman_always_raised() -> None:
    Digest.parse(EMPTY256).check(b"", "rust:1.70 layer")  # matches: nothing raised
    with pytest.raises(VerificationError) as exc:
        Digest.parse(EMPTY256).check(b"x", "rust:1.70 layer")
    got = "sha256:" + hashlib.sha256(b"x").hexdigest()
    assert str(exc.value) == f"rust:1.70 layer: digest mismatch: expected {EMPTY256}, got {got}"


def test_manifest_wrappers_agree_with_digest() -> None:
    from lockman.model import manifest

    assert manifest.sha256_digest(b"abc") == Digest.of(b"abc")
    assert manifest.compute_digest(b"abc", "sha512") == Digest.of(b"abc", "sha512")
    with pytest.raises(VerificationError, match=r"^digest mismatch: expected sha256:"):
        manifest.check_digest(b"abc", EMPTY256)


# -- properties ----------------------------------------------------------------------------------------


@st.composite
def digests(draw: st.DrawFn) -> Digest:
    algorithm = draw(st.sampled_from(["sha256", "sha512"]))
    size = 64 if algorithm == "sha256" else 128
    return Digest(f"{algorithm}:{draw(st.text(HEX, min_size=size, max_size=size))}")


@settings(deadline=None)
@given(digests())
def test_parse_of_str_round_trips(d: Digest) -> None:
    back = Digest.parse(str(d))
    assert back == d and type(back) is Digest
    assert f"{back.algorithm}:{back.hex}" == d
    assert back.short(len(back.hex)) == d


@settings(deadline=None)
@given(st.one_of(st.text(max_size=140), st.builds(lambda d, junk: d + junk, digests(), st.text(max_size=3))))
def test_any_text_is_a_digest_or_an_invalid_reference(text: str) -> None:
    try:
        d = Digest.parse(text)
    except InvalidReference:
        assert not reference.is_digest(text)
        return
    assert d == text and reference.is_digest(text)
