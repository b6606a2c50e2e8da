"""Obtaining a key the way a new user does, where the vendor documents it (Hontoni: register, then create a key)."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

from .registry import fail
from .target import Target
from .wire import Exchange


def account_url(target: Target, path: str) -> str:
    """Account endpoints live beside the API base (/api/... next to /v1), under whatever prefix the base has."""
    parts = urlsplit(target.base_url)
    root = parts.path.removesuffix(target.profile.base_path) if target.profile.base_path else parts.path
    return urlunsplit((parts.scheme, parts.netloc, root.rstrip("/") + path, "", ""))


def register(wire, target: Target, email: str | None = None) -> tuple[Exchange, str]:
    """POST the register endpoint with a fresh address; returns (exchange, email)."""
    paths = target.profile.vendor["accounts"]
    email = email or f"wirecheck-{secrets.token_hex(6)}@example.com"
    body = {"email": email, "password": "wirecheck-" + secrets.token_hex(8), "name": "wirecheck"}
    return wire.post(account_url(target, paths["register"]), body, auth=False), email


def fresh_key(wire, target: Target) -> str:
    """A key of a brand-new account: register, then create a key with the access token."""
    paths = target.profile.vendor.get("accounts")
    if not paths:
        fail("the profile documents no account endpoints")
    ex, _ = register(wire, target)
    if ex.status not in (200, 201):
        fail(f"POST {paths['register']} got HTTP {ex.status}", ex.evidence())
    token = (ex.json() or {}).get("access_token")
    if not isinstance(token, str) or not token:
        fail(f"POST {paths['register']} returned no access_token", ex.evidence())
    made = wire.post(account_url(target, paths["keys"]), {"name": "wirecheck"},
                     headers={"Authorization": f"Bearer {token}"}, auth=False)
    if made.status not in (200, 201):
        fail(f"POST {paths['keys']} with the access token got HTTP {made.status}", made.evidence())
    key = (made.json() or {}).get("key")
    if not isinstance(key, str) or not key:
        fail(f"POST {paths['keys']} returned no key", made.evidence())
    return key
