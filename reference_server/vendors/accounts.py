"""Hontoni's account API, in memory (a restart forgets every account, as an emulator should): the routes, and the
handlers for sign-up, log-in and keys. Money, plans and payments are billing.py's.

    POST /api/auth/register   {email, password, name}       -> 201 {user, access_token, token_type}
    POST /api/auth/login      {email, password}             -> 200 {user, access_token, token_type}
    POST /api/keys            Bearer <access_token>, {name}  -> 201 {id, name, key: "sk-gw-...", created_at}
    GET  /api/keys            Bearer <access_token>         -> {data: [{id, name, key_preview, created_at}]}

Billing, subscription and add-on routes take an access token or an API key. Keys given to `wirecheck serve
--api-key` (or, with none given, any key in the documented format) belong to one built-in account, so a run's own
key can read its balance and plan too.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ..errors import APIError
from . import billing
from .billing import json_body
from .profile import CONFIGURED_ACCOUNT, Vendor

Handler = Callable[["Accounts", Request, dict[str, str]], Awaitable[Response]]


@dataclass
class Account:
    id: str
    email: str
    name: str
    password: bytes  # salted hash
    salt: bytes
    tokens: set[str] = field(default_factory=set)
    keys: list[dict[str, Any]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "email": self.email, "name": self.name}


class Accounts:
    def __init__(self, vendor: Vendor) -> None:
        self.vendor = vendor
        self.paths: dict[str, str] = {k: v for k, v in (vendor.profile.vendor.get("accounts") or {}).items()
                                      if isinstance(v, str) and v.startswith("/")}
        self.by_email: dict[str, Account] = {}
        self.by_token: dict[str, Account] = {}
        self.by_id: dict[str, Account] = {}  # which account a key belongs to is the vendor's key_accounts
        self.routes = [(re.compile(_pattern(path)), name) for name, path in self._all_paths().items()]

    def _all_paths(self) -> dict[str, str]:
        # Emulation-only steps of a card payment (what Stripe's hosted page and stripe.js would do).
        extra = {"checkout_complete": self.paths["checkout"] + "/{id}/complete",
                 "intent_confirm": self.paths["intent"] + "/{id}/confirm"} if "checkout" in self.paths else {}
        return {**self.paths, **extra}

    def match(self, path: str) -> tuple[str, dict[str, str]] | None:
        path = path.rstrip("/")
        for pattern, name in self.routes:
            found = pattern.fullmatch(path)
            if found:
                return name, found.groupdict()
        return None

    def handles(self, path: str) -> bool:
        return self.match(path) is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        name, params = self.match(scope["path"])  # type: ignore[misc]
        handler = HANDLERS.get((request.method, name)) or billing.HANDLERS.get((request.method, name))
        try:
            if handler is None:
                allowed = sorted(m for m, n in (*HANDLERS, *billing.HANDLERS) if n == name)
                raise APIError(405, f"Method {request.method} is not allowed on {request.url.path}; use "
                                    f"{' or '.join(allowed)}.", code="method_not_allowed")
            response = await handler(self, request, params)
        except APIError as error:
            response = error.response()
        await response(scope, receive, send)

    # ------------------------------------------------------------------ who is asking

    def account(self, request: Request, tokens_only: bool = False) -> Account:
        """The account an access token (or, unless tokens_only, an API key) in the request belongs to."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
        account = self.by_token.get(token)
        if account is None and not tokens_only and token:
            owner = self.vendor.key_accounts.get(token)
            if owner is not None:
                account = self.by_id.get(owner)
            elif self.vendor.key_ok(token):
                account = self._configured()
        if account is None:
            what = "an access token from /api/auth/login" if tokens_only else "an access token or API key"
            raise APIError(401, f"Send {what} as 'Authorization: Bearer <token>'.", code="invalid_token",
                           type="authentication_error")
        return account

    def _configured(self) -> Account:
        if CONFIGURED_ACCOUNT not in self.by_id:
            self.by_id[CONFIGURED_ACCOUNT] = Account(CONFIGURED_ACCOUNT, "", "configured keys", b"", b"")
        return self.by_id[CONFIGURED_ACCOUNT]

    def issue_token(self, account: Account) -> dict[str, Any]:
        token = "at_" + secrets.token_urlsafe(24)
        account.tokens.add(token)
        self.by_token[token] = account
        return {"user": account.public(), "access_token": token, "token_type": "bearer"}


# ---------------------------------------------------------------------------------------------- handlers


async def register(accounts: Accounts, request: Request, _: dict[str, str]) -> Response:
    body = await json_body(request)
    email, password, name = body.get("email"), body.get("password"), body.get("name", "")
    if not isinstance(email, str) or "@" not in email:
        raise APIError(400, "email must be an email address.", param="email")
    if not isinstance(password, str) or len(password) < 8:
        raise APIError(400, "password must be a string of at least 8 characters.", param="password")
    if not isinstance(name, str):
        raise APIError(400, "name must be a string.", param="name")
    if email.lower() in accounts.by_email:
        raise APIError(409, f"An account with email {email!r} already exists.", param="email",
                       code="duplicate_resource", type="conflict_error")
    salt = secrets.token_bytes(16)
    account = Account("usr_" + secrets.token_hex(8), email, name, _hash(password, salt), salt)
    accounts.by_email[email.lower()] = account
    accounts.by_id[account.id] = account
    accounts.vendor.open_account(account.id)
    return JSONResponse(accounts.issue_token(account), status_code=201)


async def login(accounts: Accounts, request: Request, _: dict[str, str]) -> Response:
    body = await json_body(request)
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        raise APIError(400, "email and password must be strings.", param="email" if not isinstance(email, str)
                       else "password")
    account = accounts.by_email.get(email.lower())
    # One answer for an unknown address and a wrong password, compared in constant time either way.
    salt = account.salt if account else b"\0" * 16
    ok = hmac.compare_digest(_hash(password, salt), account.password if account else b"")
    if account is None or not ok:
        raise APIError(401, "Invalid email or password.", code="invalid_credentials", type="authentication_error")
    return JSONResponse(accounts.issue_token(account))


async def create_key(accounts: Accounts, request: Request, _: dict[str, str]) -> Response:
    account = accounts.account(request, tokens_only=True)
    name = (await json_body(request)).get("name", "default")
    if not isinstance(name, str) or not name.strip():
        raise APIError(400, "name must be a non-empty string.", param="name")
    if any(k["name"] == name for k in account.keys):
        raise APIError(409, f"A key named {name!r} already exists.", param="name", code="duplicate_resource",
                       type="conflict_error")
    key = (accounts.vendor.profile.key_prefix or "sk-") + secrets.token_hex(16)
    record = {"id": "key_" + secrets.token_hex(6), "name": name, "key_preview": key[:10] + "...",
              "created_at": int(time.time())}
    account.keys.append({**record, "key": key})
    accounts.vendor.add_key(key, account.id)
    return JSONResponse({**record, "key": key}, status_code=201)


async def list_keys(accounts: Accounts, request: Request, _: dict[str, str]) -> Response:
    account = accounts.account(request, tokens_only=True)
    return JSONResponse({"data": [{k: v for k, v in key.items() if k != "key"} for key in account.keys]})


HANDLERS: dict[tuple[str, str], Handler] = {
    ("POST", "register"): register,
    ("POST", "login"): login,
    ("POST", "keys"): create_key,
    ("GET", "keys"): list_keys,
}


def _pattern(path: str) -> str:
    """/api/billing/invoices/{id}/pdf -> a regex with a named group per {name}."""
    return re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[A-Za-z0-9_-]+)", re.escape(path.rstrip("/")))


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 10_000)
