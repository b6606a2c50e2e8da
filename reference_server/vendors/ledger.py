"""Hontoni's money, in memory: prepaid balances, subscriptions, add-ons, transactions, referrals and emulated card
payments. Pure state with an injectable clock; the HTTP shapes are in billing.py.

Every mutation holds one lock and reads-then-writes without yielding, so concurrent requests (the event loop's or a
thread pool's) cannot lose a top-up, charge twice, or credit one payment twice.

Readings of the document (seeds/002) where it is silent, each an emulation choice said in docs/vendors.md:
- A subscription covers its plan's requests; requests without one, and every `-1m` request ("Extended context via
  pay-as-you-go"), are charged to the balance by the documented formula.
- Plans and add-ons are bought from the prepaid balance for 30 days and renew from it; a renewal the balance cannot
  pay lets them lapse. One add-on at a time: buying another replaces it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import APIError

PERIOD_S = 30 * 86400  # "$6/mo": a month of 30 days
# Wallet field -> (its transactions' type, what it is called)
SLOTS = {"plan": ("subscription", "plan"), "addon": ("addon", "add-on")}
MAX_TRANSACTIONS = 10_000  # kept per account (GET /api/billing/transactions pages at most 500)


def insufficient(balance: float, needed: float | None = None) -> APIError:
    """The documented 402 ("rejected with a 402 Payment Required error when your balance is too low")."""
    what = f"; ${needed:.2f} is needed" if needed is not None else ""
    return APIError(402, f"Insufficient balance (${balance:.4f}{what}). Top up your account to continue using the "
                         f"API.", code="insufficient_balance", type="insufficient_balance")


def _already(what: str, name: str, until: float) -> APIError:
    """Buying what is active again would pay twice for one period: a 409 (it renews by itself)."""
    return APIError(409, f"The {what} {name!r} is already active (it renews from the balance at {int(until)}).",
                    code=f"{what.replace('-', '')}_already_active", type="conflict_error")


def _metered(w: Wallet) -> Wallet:
    if w.balance is None:
        raise APIError(400, "This account's balance is not metered (wirecheck serve was given no --balance for its "
                            "keys): there is nothing to top up.", code="balance_not_metered")
    return w


def not_found(what: str, value: str, code: str) -> APIError:
    return APIError(404, f"No {what} {value!r}.", code=code, type="not_found_error")


@dataclass
class Wallet:
    """One account's money and plan. `balance` None: not metered (`--api-key` keys without `--balance`)."""

    account: str
    balance: float | None
    referral_code: str
    plan: str | None = None
    plan_until: float = 0.0
    addon: str | None = None
    addon_until: float = 0.0
    referred_by: str | None = None
    referrals: int = 0
    credits_earned: float = 0.0
    # The newest MAX_TRANSACTIONS only: a load test on one key must not grow the server without bound.
    transactions: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_TRANSACTIONS))
    invoices: list[dict[str, Any]] = field(default_factory=list)


class Usage(NamedTuple):
    input: int
    output: int  # every output token, reasoning included (as both APIs report it)
    reasoning: int = 0


def usage_cost(usage: Usage, price: list[float]) -> float:
    """The documented formula: input x input price + output x output price + reasoning x reasoning price, per 1M
    tokens. Output here excludes reasoning, which both APIs count inside their output total: counted once."""
    visible = max(0, usage.output - usage.reasoning)
    return (usage.input * price[0] + visible * price[1] + usage.reasoning * price[2]) / 1_000_000


class Ledger:
    def __init__(self, vendor: dict[str, Any], clock: Callable[[], float] = time.time) -> None:
        self.plans: dict[str, dict[str, Any]] = dict(vendor.get("plans") or {})
        self.addons: dict[str, dict[str, Any]] = dict(vendor.get("addons") or {})
        emulation = vendor.get("emulation") or {}
        self.promo_codes: dict[str, dict[str, Any]] = {k.upper(): v for k, v in
                                                        (emulation.get("promo_codes") or {}).items()}
        self.referral_bonus = float(emulation.get("referral_bonus", 0))
        self.clock = clock
        self.lock = threading.Lock()
        self.wallets: dict[str, Wallet] = {}
        self.by_referral: dict[str, str] = {}
        self.payments: dict[str, dict[str, Any]] = {}  # emulated checkout sessions and payment intents, by id
        self.payment_owner: dict[str, str] = {}

    # ------------------------------------------------------------------ wallets

    def open(self, account: str, balance: float | None) -> Wallet:
        with self.lock:
            if account not in self.wallets:
                code = "HTN-" + secrets.token_hex(4).upper()
                self.wallets[account] = Wallet(account, balance, code)
                self.by_referral[code] = account
            return self.wallets[account]

    def wallet(self, account: str) -> Wallet:
        return self.wallets[account]

    def _record(self, w: Wallet, kind: str, amount: float, description: str, **extra: Any) -> dict[str, Any]:
        if w.balance is not None:
            w.balance += amount
        entry = {"id": "txn_" + secrets.token_hex(8), "object": "transaction", "type": kind,
                 "amount": round(amount, 8), "balance_after": None if w.balance is None else round(w.balance, 8),
                 "currency": "USD", "description": description, "created": int(self.clock()), **extra}
        w.transactions.append(entry)
        return entry

    def _pay(self, w: Wallet, price: float, kind: str, description: str, **extra: Any) -> dict[str, Any]:
        if w.balance is not None and w.balance < price:
            raise insufficient(w.balance, price)
        return self._record(w, kind, -price, description, **extra)

    def top_up(self, account: str, amount: float) -> float:
        with self.lock:
            w = _metered(self.wallets[account])
            self._record(w, "topup", amount, "Top-up (direct credit)")
            return w.balance  # type: ignore[return-value]

    # ------------------------------------------------------------------ plans and add-ons

    def current(self, account: str) -> tuple[str | None, str | None]:
        """(plan, add-on) in force now, renewing from the balance what ran out (or letting it lapse)."""
        with self.lock:
            return self._current(self.wallets[account])

    def _current(self, w: Wallet) -> tuple[str | None, str | None]:
        for slot in SLOTS:
            self._renew(w, slot)
        return w.plan, w.addon

    def _offered(self, slot: str) -> dict[str, dict[str, Any]]:
        return self.plans if slot == "plan" else self.addons

    def _renew(self, w: Wallet, slot: str) -> None:
        """Renew the plan or add-on (`slot`) for each period that has ended, or let it lapse at the first the balance
        cannot pay (a clock that jumped several periods renews each one)."""
        name, until = getattr(w, slot), getattr(w, slot + "_until")
        if name is None:
            return
        price = float(self._offered(slot)[name]["price"])
        kind, what = SLOTS[slot]
        while until <= self.clock():
            if w.balance is not None and w.balance < price:
                name, until = None, 0.0
                break
            self._record(w, kind, -price, f"{what.capitalize()} {name} renewal", **{slot: name})
            until += PERIOD_S
        setattr(w, slot, name)
        setattr(w, slot + "_until", until)

    def subscribe(self, account: str, plan: str) -> Wallet:
        return self._buy(account, "plan", plan)

    def cancel(self, account: str) -> Wallet:
        return self._drop(account, "plan")

    def buy_addon(self, account: str, addon: str) -> Wallet:
        return self._buy(account, "addon", addon)

    def remove_addon(self, account: str) -> Wallet:
        return self._drop(account, "addon")

    def _buy(self, account: str, slot: str, name: str) -> Wallet:
        """Buy a plan or add-on (`slot`, a Wallet field with its `<slot>_until`) for a period from the balance."""
        offered, (kind, what) = self._offered(slot), SLOTS[slot]
        if name not in offered:
            raise APIError(400, f"Unknown {what} {name!r}; {what}s are {', '.join(offered)}.", param=slot,
                           code=f"invalid_{slot}")
        with self.lock:
            w = self.wallets[account]
            self._renew(w, slot)
            if getattr(w, slot) == name:
                raise _already(what, name, getattr(w, slot + "_until"))
            self._pay(w, float(offered[name]["price"]), kind, f"{what.capitalize()} {name} (30 days)",
                      **{slot: name})
            setattr(w, slot, name)
            setattr(w, slot + "_until", self.clock() + PERIOD_S)
            return w

    def _drop(self, account: str, slot: str) -> Wallet:
        with self.lock:
            w = self.wallets[account]
            setattr(w, slot, None)
            setattr(w, slot + "_until", 0.0)
            return w

    # ------------------------------------------------------------------ usage

    def charge(self, account: str, model: str, usage: Usage, price: list[float], pay_as_you_go: bool) -> dict:
        """Record one request's cost; charge it to the balance unless the subscription covers it."""
        cost = usage_cost(usage, price)
        with self.lock:
            w = self.wallets[account]
            billed = pay_as_you_go or self._current(w)[0] is None
            return self._record(w, "usage", -cost if billed else 0.0, f"{model}: {usage.input} in, {usage.output} "
                                f"out ({usage.reasoning} reasoning)", model=model, input_tokens=usage.input,
                                output_tokens=usage.output, reasoning_tokens=usage.reasoning, cost=round(cost, 10),
                                billed_to="balance" if billed else "subscription")

    # ------------------------------------------------------------------ referral and promo codes

    def apply_referral(self, account: str, code: str) -> Wallet:
        with self.lock:
            w = self.wallets[account]
            owner = self.by_referral.get(code.strip().upper())
            if owner is None:
                raise not_found("referral code", code, "referral_code_not_found")
            if owner == account:
                raise APIError(400, "You cannot apply your own referral code.", param="code",
                               code="own_referral_code")
            if w.referred_by is not None:
                raise APIError(409, "A referral code was already applied to this account.", param="code",
                               code="referral_already_applied", type="conflict_error")
            w.referred_by = owner
            referrer = self.wallets[owner]
            referrer.referrals += 1
            if self.referral_bonus:
                referrer.credits_earned += self.referral_bonus
                self._record(referrer, "referral", self.referral_bonus, f"Referral bonus ({account})")
            return w

    def promo(self, code: str) -> dict[str, Any] | None:
        return self.promo_codes.get(code.strip().upper())

    # ------------------------------------------------------------------ emulated card payments

    def create_payment(self, account: str, kind: str, amount: float, promo_code: str | None) -> dict[str, Any]:
        """A checkout session or payment intent: `amount` is credited when it is completed; a promo code lowers
        what is paid (amount_total), not what is credited."""
        discount = 0
        if promo_code is not None:
            promo = self.promo(promo_code)
            if promo is None:
                raise not_found("promo code", promo_code, "promo_code_not_found")
            discount = int(promo.get("percent_off", 0))
        _metered(self.wallets[account])
        prefix = "cs_emulated_" if kind == "checkout.session" else "pi_emulated_"
        payment = {"id": prefix + secrets.token_hex(12), "object": kind, "amount": round(amount, 2),
                   "amount_total": round(amount * (100 - discount) / 100, 2), "currency": "USD",
                   "promo_code": promo_code, "percent_off": discount, "created": int(self.clock()),
                   "status": "open" if kind == "checkout.session" else "requires_payment_method",
                   "emulated": True}
        with self.lock:
            self.payments[payment["id"]] = payment
            self.payment_owner[payment["id"]] = account
        return payment

    def complete_payment(self, payment_id: str, kind: str) -> dict[str, Any]:
        """Pay an emulated session or intent: credit the balance and issue an invoice, once however often it is
        called (a repeated completion returns the same result)."""
        with self.lock:
            payment = self.payments.get(payment_id)
            if payment is None or payment["object"] != kind:  # a session is paid on its page, an intent confirmed
                raise not_found(kind.replace("_", " ").replace(".", " "), payment_id, "payment_not_found")
            if payment["status"] in ("complete", "succeeded"):
                return payment
            w = self.wallets[self.payment_owner[payment_id]]
            invoice = {"id": "in_emulated_" + secrets.token_hex(10), "object": "invoice",
                       "number": f"HTN-{len(w.invoices) + 1:05d}", "status": "paid",
                       "amount_paid": payment["amount_total"], "amount_credited": payment["amount"],
                       "currency": "USD", "created": int(self.clock()), "payment": payment_id,
                       "description": f"Balance top-up ${payment['amount']:.2f}", "emulated": True}
            w.invoices.append(invoice)
            self._record(w, "topup", payment["amount"], f"Top-up by card (emulated), {payment_id}",
                         payment=payment_id, invoice=invoice["id"])
            payment["status"] = "complete" if payment["object"] == "checkout.session" else "succeeded"
            payment["invoice"] = invoice["id"]
            return payment

    def invoice_owner(self, invoice_id: str) -> str | None:
        return next((w.account for w in self.wallets.values() if any(i["id"] == invoice_id for i in w.invoices)),
                    None)

    def invoice(self, account: str, invoice_id: str) -> dict[str, Any]:
        found = next((i for i in self.wallets[account].invoices if i["id"] == invoice_id), None)
        if found is None:
            raise not_found("invoice", invoice_id, "invoice_not_found")
        return found
