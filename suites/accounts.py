"""Obtaining a key the way a new user does, where the vendor documents it (Hontoni: register, then create a key)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from .expect import expect_object
from .registry import fail
from .target import Target
from .wire import Exchange


def account_url(target: Target, path: str) -> str:
    """Account endpoints live beside the API base (/api/... next to /v1), under whatever prefix the base has."""
    parts = urlsplit(target.base_url)
    root = parts.path.removesuffix(target.profile.base_path) if target.profile.base_path else parts.path
    return urlunsplit((parts.scheme, parts.netloc, root.rstrip("/") + path, "", ""))


def register(wire, target: Target, email: str | None = None, password: str | None = None) -> tuple[Exchange, str]:
    """POST the register endpoint with a fresh address (and a fresh password unless given); returns (exchange,
    email)."""
    paths = target.profile.vendor["accounts"]
    email = email or f"wirecheck-{secrets.token_hex(6)}@example.com"
    body = {"email": email, "password": password or "wirecheck-" + secrets.token_hex(8), "name": "wirecheck"}
    return wire.post(account_url(target, paths["register"]), body, auth=False), email


def _key_for(wire, target: Target, token: str) -> str:
    paths = target.profile.vendor["accounts"]
    made = wire.post(account_url(target, paths["keys"]), {"name": "wirecheck"},
                     headers={"Authorization": f"Bearer {token}"}, auth=False)
    if made.status not in (200, 201):
        fail(f"POST {paths['keys']} with the access token got HTTP {made.status}", made.evidence())
    key = (made.json() or {}).get("key")
    if not isinstance(key, str) or not key:
        fail(f"POST {paths['keys']} returned no key", made.evidence())
    return key


def fresh_key(wire, target: Target) -> str:
    """A key of a brand-new account: register, then create a key with the access token."""
    return fresh_session(wire, target).key


@dataclass
class Session:
    """A brand-new account and one of its keys, for the checks that change an account's plan or money."""

    wire: Any
    target: Target
    email: str
    password: str
    token: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def call(self, method: str, name: str, body: Any = None, *, auth: bool = True, headers: dict[str, str] | None
             = None, path_params: dict[str, str] | None = None, raw: bytes | None = None) -> Exchange:
        """`name` is an account endpoint of the profile (`subscription`, `invoice_pdf`, ...); sent with the key."""
        path = self.target.profile.vendor["accounts"][name]
        for param, value in (path_params or {}).items():
            path = path.replace("{" + param + "}", value)
        sent = {**(self.headers if auth else {}), **(headers or {})}
        if raw is not None:
            sent.setdefault("Content-Type", "application/json")
        return self.wire.request(method, account_url(self.target, path), json_body=body, content=raw,
                                 headers=sent, auth=False)

    def object(self, method: str, name: str, body: Any = None, what: str | None = None,
               guessed: bool = False) -> dict[str, Any]:
        """The JSON object a 200 or 201 answers, or a failure that shows what came instead. `guessed`: the document
        shows no request body for this endpoint, so a target refusing wirecheck's body (400, 422) makes the check
        inconclusive, not failed; a 404 or 405 says the documented endpoint is missing, and fails."""
        ex = self.call(method, name, body)
        what = what or f"{method} {self.target.profile.vendor['accounts'][name]}"
        if guessed and ex.status in (400, 422):
            pytest.skip(f"inconclusive: {what} with {body!r} got HTTP {ex.status}; the document shows no request "
                        f"body for it, so this may be wirecheck's guess, not the target's defect")
        return expect_object(ex, what, ok=(200, 201))


def fresh_session(wire, target: Target, top_up: float = 0) -> Session:
    """Register, create a key and, with `top_up`, credit the balance (the documented direct-credit top-up)."""
    paths = target.profile.vendor.get("accounts")
    if not paths:
        fail("the profile documents no account endpoints")
    password = "wirecheck-" + secrets.token_hex(8)
    ex, email = register(wire, target, password=password)
    if ex.status not in (200, 201):
        fail(f"POST {paths['register']} got HTTP {ex.status}", ex.evidence())
    token = (ex.json() or {}).get("access_token")
    if not isinstance(token, str) or not token:
        fail(f"POST {paths['register']} returned no access_token", ex.evidence())
    session = Session(wire, target, email, password, token, _key_for(wire, target, token))
    if top_up:  # "Add funds (direct credit)": a deployment may not open it to every account
        session.object("POST", "topup", {"amount": top_up}, f"POST {paths['topup']} {{amount: {top_up}}}",
                       guessed=True)
    return session
