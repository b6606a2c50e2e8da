"""Hontoni's billing, subscription and add-on endpoints (seeds/002 "Billing Endpoints", "Plan-Based Limits", "Rate
Limit Add-ons"); the state behind them is ledger.py's.

Card payments are emulated and say so (`"emulated": true`): no payment provider is contacted. A checkout session's
`url` and a payment intent's `confirm_url` point back at this server; opening the one or POSTing the other pays it,
as Stripe's hosted page or stripe.js would, so a client can drive a whole top-up in a test.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import APIError
from ..request_body import read_json
from .ledger import PERIOD_S, Ledger, Wallet

if TYPE_CHECKING:
    from .accounts import Accounts, Handler

_PDF_KEY = secrets.token_bytes(32)  # signs invoice download links, which (like Stripe's) need no credentials
MAX_TOPUP = 10_000
BODY_LIMIT = 64 * 1024


def amount_of(body: dict[str, Any]) -> float:
    amount = body.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 < amount <= MAX_TOPUP:
        raise APIError(400, f"amount must be a number of USD above 0 and at most {MAX_TOPUP}.", param="amount",
                       code="invalid_amount")
    return float(amount)


def _string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise APIError(400, f"{name} must be a non-empty string.", param=name, code="invalid_" + name)
    return value.strip()


def _optional(body: dict[str, Any], name: str) -> str | None:
    return None if body.get(name) is None else _string(body, name)


def _root(request: Request) -> str:
    parts = urlsplit(str(request.url))
    return f"{parts.scheme}://{parts.netloc}"


async def json_body(request: Request) -> dict[str, Any]:
    """The surfaces' body reader (size, depth, lone surrogates) at the account API's 64 KB, a bad body's 400 with
    this API's code."""
    try:
        return await read_json(request, BODY_LIMIT)
    except APIError as error:
        if error.status == 400:
            error.code = error.code or "invalid_json"
        raise


# ---------------------------------------------------------------------------------------------- balance


async def balance(accounts: Accounts, request: Request, _: dict[str, str]) -> Response:
    w = accounts.vendor.wallet_of(accounts.account(request).id)
    return JSONResponse({"balance": None if w.balance is None else round(w.balance, 6), "currency": "USD",
                         "metered": w.balance is not None})


async def top_up(accounts: Accounts, request: Request, _: dict[str, str]) -> Response:
    account = accounts.account(request)
    amount = amount_of(await json_body(request))
    balance = accounts.vendor.ledger.top_up(account.id, amount)
    return JSONResponse({"balance": round(balance, 6), "currency": "USD"})


async def transactions(accounts: Accounts, request: Request, _: dict[str, str]) -> Response:
    """Newest first; `limit` (1..500, default 100) and `type` (usage, topup, subscription, addon, referral)."""
    w = accounts.vendor.wallet_of(accounts.account(request).id)
    try:
        limit = int(request.query_params.get("limit", 100))
    except ValueError:
        raise APIError(400, "limit must be an integer.", param="limit", code="invalid_limit") from None
    if not 1 <= limit <= 500:
        raise APIError(400, "limit must be between 1 and 500.", param="limit", code="invalid_limit")
    kind = request.query_params.get("type")
    rows = [t for t in reversed(w.transactions) if kind is None or t["type"] == kind]
    return JSONResponse({"object": "list", "data": rows[:limit], "has_more": len(rows) > limit})


# ---------------------------------------------------------------------------------------------- plans


def plan_object(name: str, plan: dict[str, Any]) -> dict[str, Any]:
    limits = {k: v for k, v in plan.items() if k not in ("price", "thinking_budget")}
    return {"id": name, "name": name.capitalize(), "price": plan["price"], "currency": "USD", "interval": "month",
            "limits": limits, "thinking_budget": plan["thinking_budget"]}


def _subscription(accounts: Accounts, w: Wallet) -> dict[str, Any] | None:
    if w.plan is None:
        return None
    return {"plan": w.plan, "status": "active", "current_period_end": int(w.plan_until),
            "renews_from": "balance"}


def _addon(accounts: Accounts, w: Wallet) -> dict[str, Any] | None:
    if w.addon is None:
        return None
    return {"id": w.addon, **accounts.vendor.ledger.addons[w.addon], "status": "active",
            "current_period_end": int(w.addon_until)}


def _state(accounts: Accounts, account: str) -> dict[str, Any]:
    vendor = accounts.vendor
    vendor.ledger.current(account)  # renew or lapse first
    w = vendor.wallet_of(account)
    return {"subscription": _subscription(accounts, w), "addon": _addon(accounts, w),
            "limits": vendor.limits_for(account), "thinking_budget": vendor.plan_thinking_budget(account),
            "balance": None if w.balance is None else round(w.balance, 6)}


async def get_subscription(accounts: Accounts, request: Request, _: dict[str, str]) -> Response:
    account = accounts.account(request)
    plans = [plan_object(n, p) for n, p in accounts.vendor.ledger.plans.items()]
    return JSONResponse({"plans": plans, "period_days": PERIOD_S // 86400, **_state(accounts, account.id)})


def _changes_plan(change: Callable[[Ledger, str, dict[str, Any]], object]) -> Handler:
    """A handler that applies `change` to the asking account and answers its plan state afterwards."""

    async def handler(accounts: Accounts, request: Request, _: dict[str, str]) -> Response:
        account = accounts.account(request)
        change(accounts.vendor.ledger, account.id, await json_body(request) if request.method == "POST" else {})
        return JSONResponse(_state(accounts, account.id))

    return handler


subscribe = _changes_plan(lambda ledger, account, body: ledger.subscribe(account, _string(body, "plan").lower()))
unsubscribe = _changes_plan(lambda ledger, account, _: ledger.cancel(account))
buy_addon = _changes_plan(lambda ledger, account, body: ledger.buy_addon(account, _string(body, "addon").lower()))
remove_addon = _changes_plan(lambda ledger, account, _: ledger.remove_addon(account))


async def get_addons(accounts: Accounts, request: Request, _: dict[str, str]) -> Response:
    account = accounts.account(request)
    offered = [{"id": k, **v, "currency": "USD", "interval": "month"}
               for k, v in accounts.vendor.ledger.addons.items()]
    return JSONResponse({"addons": offered, **_state(accounts, account.id)})


# ---------------------------------------------------------------------------------------------- codes


async def get_referral(accounts: Accounts, request: Request, _: dict[str, str]) -> Response:
    w = accounts.vendor.wallet_of(accounts.account(request).id)
    return JSONResponse({"code": w.referral_code, "referrals": w.referrals, "credits_earned": w.credits_earned,
                         "currency": "USD", "referred": w.referred_by is not None,
                         "bonus_per_referral": accounts.vendor.ledger.referral_bonus})


async def apply_referral(accounts: Accounts, request: Request, _: dict[str, str]) -> Response:
    account = accounts.account(request)
    code = _string(await json_body(request), "code")
    accounts.vendor.ledger.apply_referral(account.id, code)
    return JSONResponse({"applied": True, "code": code.upper()})


async def promo_code(accounts: Accounts, request: Request, _: dict[str, str]) -> Response:
    accounts.account(request)
    code = _string(await json_body(request), "code")
    promo = accounts.vendor.ledger.promo(code)
    if promo is None:
        return JSONResponse({"code": code, "valid": False, "message": "This promo code does not exist."})
    return JSONResponse({"code": code.upper(), "valid": True, **promo})


# ---------------------------------------------------------------------------------------------- card payments


async def _new_payment(accounts: Accounts, request: Request, kind: str) -> dict[str, Any]:
    account = accounts.account(request)
    body = await json_body(request)
    return accounts.vendor.ledger.create_payment(account.id, kind, amount_of(body), _optional(body, "promo_code"))


async def checkout(accounts: Accounts, request: Request, _: dict[str, str]) -> Response:
    payment = await _new_payment(accounts, request, "checkout.session")
    path = accounts.paths["checkout"] + f"/{payment['id']}/complete"
    return JSONResponse({**payment, "url": _root(request) + path}, status_code=201)


async def intent(accounts: Accounts, request: Request, _: dict[str, str]) -> Response:
    payment = await _new_payment(accounts, request, "payment_intent")
    path = accounts.paths["intent"] + f"/{payment['id']}/confirm"
    secret = f"{payment['id']}_secret_{_sign(payment['id'])[:24]}"
    return JSONResponse({**payment, "client_secret": secret, "confirm_url": _root(request) + path},
                        status_code=201)


async def complete_checkout(accounts: Accounts, request: Request, params: dict[str, str]) -> Response:
    """Emulation only: what paying on the hosted checkout page does."""
    return JSONResponse(accounts.vendor.ledger.complete_payment(params["id"], "checkout.session"))


async def confirm_intent(accounts: Accounts, request: Request, params: dict[str, str]) -> Response:
    """Emulation only: what stripe.js confirming with the client secret does."""
    secret = (await json_body(request)).get("client_secret")
    if not isinstance(secret, str) or not _same(secret, f"{params['id']}_secret_{_sign(params['id'])[:24]}"):
        raise APIError(400, "client_secret does not belong to this payment intent.", param="client_secret",
                       code="invalid_client_secret")
    return JSONResponse(accounts.vendor.ledger.complete_payment(params["id"], "payment_intent"))


async def invoices(accounts: Accounts, request: Request, _: dict[str, str]) -> Response:
    w = accounts.vendor.wallet_of(accounts.account(request).id)
    return JSONResponse({"object": "list", "data": list(reversed(w.invoices)), "has_more": False})


async def invoice_pdf(accounts: Accounts, request: Request, params: dict[str, str]) -> Response:
    """Without `download`: the PDF's URL (as documented). With a valid signed `download`: the PDF itself."""
    signed = request.query_params.get("download")
    if signed is not None:
        owner = accounts.vendor.ledger.invoice_owner(params["id"])
        if owner is None or not _same(signed, _sign(params["id"])):
            raise APIError(404, f"No invoice {params['id']!r}.", code="invoice_not_found", type="not_found_error")
        invoice = accounts.vendor.ledger.invoice(owner, params["id"])
        return Response(invoice_document(invoice), media_type="application/pdf",
                        headers={"content-disposition": f'inline; filename="{invoice["number"]}.pdf"'})
    invoice = accounts.vendor.ledger.invoice(accounts.account(request).id, params["id"])
    path = accounts.paths["invoice_pdf"].replace("{id}", invoice["id"])
    return JSONResponse({"id": invoice["id"], "url": f"{_root(request)}{path}?download={_sign(invoice['id'])}",
                         "emulated": True})


def _same(given: str, expected: str) -> bool:
    """Constant-time equality for any client string (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def _sign(value: str) -> str:
    return hmac.new(_PDF_KEY, value.encode(), hashlib.sha256).hexdigest()


def invoice_document(invoice: dict[str, Any]) -> bytes:
    """A one-page PDF of the invoice: four objects and a cross-reference table, enough for any PDF reader."""
    lines = [f"Hontoni invoice {invoice['number']} (emulated by wirecheck)", f"Invoice id: {invoice['id']}",
             f"{invoice['description']}", f"Amount paid: ${invoice['amount_paid']:.2f} {invoice['currency']}",
             f"Status: {invoice['status']}"]
    text = "BT /F1 12 Tf 72 720 Td 16 TL " + " ".join(f"({_pdf_escape(t)}) '" for t in lines) + " ET"
    objects = ["<< /Type /Catalog /Pages 2 0 R >>",
               "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               "/Resources << /Font << /F1 5 0 R >> >> >>",
               f"<< /Length {len(text)} >>\nstream\n{text}\nendstream",
               "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{obj}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _pdf_escape(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1").replace("\\", "\\\\").replace("(", "\\(") \
        .replace(")", "\\)")


HANDLERS: dict[tuple[str, str], Handler] = {
    ("GET", "balance"): balance,
    ("POST", "topup"): top_up,
    ("GET", "transactions"): transactions,
    ("GET", "subscription"): get_subscription,
    ("POST", "subscription"): subscribe,
    ("DELETE", "subscription"): unsubscribe,
    ("GET", "addons"): get_addons,
    ("POST", "addons"): buy_addon,
    ("DELETE", "addons"): remove_addon,
    ("GET", "referral"): get_referral,
    ("POST", "referral"): apply_referral,
    ("POST", "promo_code"): promo_code,
    ("POST", "checkout"): checkout,
    ("POST", "intent"): intent,
    ("GET", "checkout_complete"): complete_checkout,
    ("POST", "intent_confirm"): confirm_intent,
    ("GET", "invoices"): invoices,
    ("GET", "invoice_pdf"): invoice_pdf,
}
