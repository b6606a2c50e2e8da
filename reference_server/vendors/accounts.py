"""Hontoni's account endpoints, enough for a client to obtain a key locally: register, create keys, read and top up
the prepaid balance. In memory: a restart forgets every account, as an emulator should.

    POST /api/auth/register   {email, password, name}      -> 201 {user, access_token, token_type}
    POST /api/keys            Bearer <access_token>, {name} -> 201 {id, name, key: "sk-gw-...", created_at}
    GET  /api/keys            Bearer <access_token>        -> {data: [{id, name, key_preview, created_at}]}
    GET  /api/billing/balance Bearer <access_token or key>  -> {balance, currency}
    POST /api/billing/topup   Bearer <access_token or key>, {amount} -> {balance, currency}

A new account starts with the balance `wirecheck serve --new-account-balance` sets (0 by default, as a real
prepaid account does), so its keys get 402 until it is topped up.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ..errors import APIError
from .profile import Vendor


@dataclass
class Account:
    id: str
    email: str
    name: str
    password: bytes  # salted hash
    salt: bytes
    token: str
    keys: list[dict[str, Any]] = field(default_factory=list)


class Accounts:
    def __init__(self, vendor: Vendor) -> None:
        self.vendor = vendor
        self.paths: dict[str, str] = dict(vendor.profile.vendor.get("accounts") or {})
        self.by_email: dict[str, Account] = {}
        self.by_token: dict[str, Account] = {}
        self.by_id: dict[str, Account] = {}  # which account a key belongs to is the vendor's key_accounts

    def handles(self, path: str) -> bool:
        return path.rstrip("/") in self.paths.values()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        route = {v: k for k, v in self.paths.items()}[scope["path"].rstrip("/")]
        try:
            response = await self._route(route, request)
        except APIError as error:
            response = error.response()
        await response(scope, receive, send)

    async def _route(self, route: str, request: Request) -> Response:
        method = request.method
        if route == "register" and method == "POST":
            return self.register(await _json(request))
        if route == "keys" and method == "POST":
            return self.create_key(self._account(request, tokens_only=True), await _json(request))
        if route == "keys" and method == "GET":
            account = self._account(request, tokens_only=True)
            return JSONResponse({"data": [{k: v for k, v in key.items() if k != "key"} for key in account.keys]})
        if route == "balance" and method == "GET":
            account = self._account(request)
            balance = self.vendor.account_balance(account.id) or 0.0
            return JSONResponse({"balance": round(balance, 6), "currency": "USD"})
        if route == "topup" and method == "POST":
            account = self._account(request)
            amount = (await _json(request)).get("amount")
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 < amount <= 10_000:
                raise APIError(400, "amount must be a number of USD between 0 and 10000.", param="amount")
            return JSONResponse({"balance": round(self.vendor.top_up(account.id, float(amount)), 6), "currency": "USD"})
        raise APIError(405, f"Method {method} is not allowed on {request.url.path}.")

    def register(self, body: dict[str, Any]) -> Response:
        email, password, name = body.get("email"), body.get("password"), body.get("name", "")
        if not isinstance(email, str) or "@" not in email:
            raise APIError(400, "email must be an email address.", param="email")
        if not isinstance(password, str) or len(password) < 8:
            raise APIError(400, "password must be a string of at least 8 characters.", param="password")
        if email.lower() in self.by_email:
            raise APIError(409, f"An account with email {email!r} already exists.", param="email",
                           code="duplicate_resource", type="conflict_error")
        salt = secrets.token_bytes(16)
        account = Account("usr_" + secrets.token_hex(8), email, str(name), _hash(password, salt), salt,
                          "at_" + secrets.token_urlsafe(24))
        self.by_email[email.lower()] = account
        self.by_token[account.token] = account
        self.by_id[account.id] = account
        self.vendor.open_account(account.id)
        user = {"id": account.id, "email": email, "name": account.name}
        return JSONResponse({"user": user, "access_token": account.token, "token_type": "bearer"}, status_code=201)

    def create_key(self, account: Account, body: dict[str, Any]) -> Response:
        name = body.get("name", "default")
        if not isinstance(name, str) or not name.strip():
            raise APIError(400, "name must be a non-empty string.", param="name")
        if any(k["name"] == name for k in account.keys):
            raise APIError(409, f"A key named {name!r} already exists.", param="name", code="duplicate_resource",
                           type="conflict_error")
        key = (self.vendor.profile.key_prefix or "sk-") + secrets.token_hex(16)
        record = {"id": "key_" + secrets.token_hex(6), "name": name, "key_preview": key[:10] + "...",
                  "created_at": int(time.time())}
        account.keys.append({**record, "key": key})
        self.vendor.add_key(key, account.id)
        return JSONResponse({**record, "key": key}, status_code=201)

    def _account(self, request: Request, tokens_only: bool = False) -> Account:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
        account = self.by_token.get(token)
        if account is None and not tokens_only:
            account = self.by_id.get(self.vendor.key_accounts.get(token, ""))
        if account is None:
            what = "an access token from /api/auth/register" if tokens_only else "an access token or API key"
            raise APIError(401, f"Send {what} as 'Authorization: Bearer <token>'.", code="invalid_token",
                           type="authentication_error")
        return account


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 10_000)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise APIError(400, "The body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise APIError(400, "The body must be a JSON object.")
    return body
