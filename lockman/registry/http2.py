"""HTTP/2 tuning: a linear-time HPACK Huffman encoder for hpack (httpx's HTTP/2 stack).

HTTP/2 never indexes ``Authorization`` headers (they are secrets), so every request re-encodes
its bearer token with HPACK's Huffman code, and hpack's encoder (4.x) is quadratic in the
length of the value: it grows one big integer bit by bit. A batched registry token of 4-6 KiB
cost 3-8 ms of CPU per request, more than the rest of the request. :func:`install` swaps in an
encoder that produces the same bytes in linear time (a bit string joined from a per-byte table).
It is idempotent and does nothing when hpack is missing or has changed shape.
"""

from __future__ import annotations

from typing import Any

_ATTR = "_lockman_bit_strings"
original_encode: Any = None  # hpack's own encoder, once replaced (kept for tests and comparison)


def _encode(self: Any, data: bytes | None) -> bytes:
    if not data:
        return b""
    table: list[str] | None = getattr(self, _ATTR, None)
    if table is None:
        table = [
            format(code, f"0{length}b")
            for code, length in zip(self.huffman_code_list, self.huffman_code_list_lengths, strict=True)
        ]
        setattr(self, _ATTR, table)
    bits = "".join([table[b] for b in data])
    bits += "1" * (-len(bits) % 8)  # pad to an octet with the EOS prefix (all ones)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def install() -> bool:
    """Use the linear encoder in hpack; True when it is in place."""
    try:
        from hpack.huffman import HuffmanEncoder
    except ImportError:
        return False
    global original_encode
    if HuffmanEncoder.encode is _encode:
        return True
    original = HuffmanEncoder.encode
    # Only swap when ours gives hpack's exact bytes on this hpack version: a changed hpack keeps
    # its own (slow but correct) encoder rather than ours (fast but possibly wrong).
    try:
        from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

        probe = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
        sample = bytes(range(256)) + b"Bearer eyJhbGciOi.lockman"
        if _encode(probe, sample) != original(probe, sample):
            return False
    except Exception:
        return False
    original_encode = original
    HuffmanEncoder.encode = _encode  # type: ignore[method-assign,assignment]
    return True
