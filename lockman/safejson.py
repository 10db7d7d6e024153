"""``json.loads`` for bytes that someone else controls (registries, helpers, shared files).

Python's decoder recurses once per nesting level, so 200,000 ``[`` end in a ``RecursionError``
that no ``except ValueError`` catches: a traceback instead of one error line. Here too-deep
nesting is just another invalid document (``ValueError``), for every caller at once.
"""

from __future__ import annotations

import json
from typing import Any


class TooDeep(ValueError):
    """Nesting too deep for the decoder: invalid input, which a caller may name apart."""


def loads(data: str | bytes | bytearray) -> Any:
    """Parse JSON; nesting too deep for the decoder is a ``ValueError`` like any malformed input."""
    try:
        return json.loads(data)
    except RecursionError:
        raise TooDeep("JSON nested too deeply") from None
