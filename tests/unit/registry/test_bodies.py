"""The bounded decoder under every body lockman reads: caps count decoded bytes."""

from __future__ import annotations

import gzip
import zlib

import httpx
import pytest

from lockman.registry.bodies import BodyTooLarge, BoundedDecoder, UnsupportedEncoding

DATA = b"manifest bytes " * 1000


def _deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("", DATA),
        ("identity", DATA),
        ("gzip", gzip.compress(DATA)),
        ("x-gzip", gzip.compress(DATA)),
        ("deflate", zlib.compress(DATA)),
        ("deflate", _deflate_raw(DATA)),  # what servers often send as "deflate"
    ],
)
def test_decodes_in_small_chunks(encoding: str, body: bytes) -> None:
    d = BoundedDecoder(encoding, len(DATA))
    out = b"".join(d.decode(body[i : i + 7]) for i in range(0, len(body), 7)) + d.flush()
    assert out == DATA


@pytest.mark.parametrize("encoding", ["", "gzip", "deflate"])
def test_one_byte_over_the_cap_is_refused(encoding: str) -> None:
    body = {"": DATA, "gzip": gzip.compress(DATA), "deflate": zlib.compress(DATA)}[encoding]
    d = BoundedDecoder(encoding, len(DATA) - 1)
    with pytest.raises(BodyTooLarge):
        d.decode(body)
        d.flush()


def test_a_bomb_never_inflates_past_the_cap() -> None:
    bomb = gzip.compress(b"\0" * (64 << 20), 9)  # 64 MiB in about 64 KB
    d = BoundedDecoder("gzip", 1 << 20)
    with pytest.raises(BodyTooLarge) as e:
        d.decode(bomb)
    assert e.value.size == (1 << 20) + 1  # stopped one byte past the cap, not at 64 MiB


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, gzip", "compress"])
def test_encodings_never_offered_are_refused(encoding: str) -> None:
    with pytest.raises(UnsupportedEncoding):
        BoundedDecoder(encoding, 100)


def test_garbage_gzip_is_a_decoding_error() -> None:
    with pytest.raises(httpx.DecodingError):
        BoundedDecoder("gzip", 100).decode(b"not gzip at all")
