"""API keys: the one constant-time comparison every auth path uses (the plain server's and the vendor layer's)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable


def key_matches(offered: bytes, keys: Iterable[bytes]) -> bool:
    """Whether `offered` is one of `keys`, compared against every key so timing reveals neither which one matched
    nor whether any did."""
    return sum(hmac.compare_digest(offered, key) for key in keys) > 0
