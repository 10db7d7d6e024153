"""``WWW-Authenticate`` parsing (RFC 7235), robust to several challenges and quoted commas.

Pure. Registries answer ``Bearer realm="…",service="…",scope="repository:a:pull,push"``; the
scope value holds a comma inside quotes, so a naive split breaks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_SCHEME_RE = re.compile(rf"\s*({_TOKEN})(?=\s|,|$)")
_PARAM_RE = re.compile(rf'\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))\s*')


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-cased: "bearer", "basic"
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")


def parse_challenges(headers: list[str]) -> list[Challenge]:
    """Parse every challenge in every ``WWW-Authenticate`` header value."""
    out: list[Challenge] = []
    for value in headers:
        pos = 0
        while pos < len(value):
            while pos < len(value) and value[pos] in " ,\t":
                pos += 1
            m = _SCHEME_RE.match(value, pos)
            if not m:
                break
            scheme, pos = m.group(1).lower(), m.end()
            params: dict[str, str] = {}
            while True:
                pm = _PARAM_RE.match(value, pos)
                if not pm:
                    break
                key = pm.group(1).lower()
                raw = pm.group(2)
                val = re.sub(r"\\(.)", r"\1", raw) if raw is not None else pm.group(3)
                params[key] = val
                pos = pm.end()
                if pos < len(value) and value[pos] == ",":
                    # A comma followed by a new scheme token (not key=) starts the next challenge.
                    nxt = _PARAM_RE.match(value, pos + 1)
                    if nxt:
                        pos += 1
                        continue
                    pos += 1
                    break
                break
            out.append(Challenge(scheme, params))
    return out
