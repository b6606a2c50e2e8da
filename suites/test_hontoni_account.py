"""Hontoni's account API (seed 002): log-in, plans and add-ons that set the key's limits, the plan's Thinking
Budget, the rate windows the X-RateLimit-* headers report, and billing: every charge by the documented formula,
referral and promo codes, top-up checkout / intent and invoices.

Each check works on a brand-new account (register, a key, a direct-credit top-up where it spends), so the run's own
key and balance are spared. On a real deployment the plan and add-on checks spend $13 and $4.99 of that top-up.
"""

from __future__ import annotations

from typing import Any

import pytest

from .accounts import Session, fresh_session
from .expect import expect_object
from .judge import envelope_problems
from .registry import check, fail
from .test_ratelimits import header_specs
from .target import Target
from .wire import Exchange

HELLO = [{"role": "user", "content": "Say hi."}]
# Six decimals, so the balances show how precisely the target keeps them (a round $5 would read as 0 decimals).
PRECISE_TOP_UP = 5.123457


def _error_problems(ex: Exchange, status: int, what: str, target: Target) -> list[str]:
    if ex.status != status:
        return [f"{what} got HTTP {ex.status}, not {status}"]
    return envelope_problems(ex.status, ex.content_type, ex.body, strict=target.strict)


def _expect_error(ex: Exchange, status: int, what: str, target: Target) -> None:
    problems = _error_problems(ex, status, what, target)
    if problems:
        fail("; ".join(problems), ex.evidence(*problems))


def _limits_shown(ex: Exchange, target: Target) -> dict[str, int]:
    """window -> the limit the response's headers state for it."""
    got = {k.lower(): v for k, v in ex.headers.items()}
    out: dict[str, int] = {}
    for name, (measure, window) in header_specs(target).items():
        value = got.get(name, "")
        if measure == "limit" and value.strip().isdigit():
            out[window] = int(value)
    return out


def _plan_limits(target: Target, plan: str, factor: int = 1) -> dict[str, int]:
    windows = target.profile.vendor["rate_limits"]["windows"]
    return {k: int(v) * factor for k, v in target.profile.vendor["plans"][plan].items() if k in windows}


def _expect_prices(listed: dict[str, Any], field: str, documented: dict[str, dict[str, Any]], what: str) -> None:
    """Every documented plan or add-on listed under `field` by id, at its documented monthly price."""
    offered = {item.get("id"): item for item in listed.get(field) or [] if isinstance(item, dict)}
    for name, facts in documented.items():
        item = offered.get(name)
        if item is None:
            fail(f"{what} does not list the documented {name!r} (lists {sorted(map(str, offered))})")
        if item.get("price") != facts["price"]:
            fail(f"{what}: {name} costs {item.get('price')!r}, documented ${facts['price']}/mo")


def _chat(session: Session, model: str | None = None) -> Exchange:
    body = {"model": model or session.target.model, "messages": HELLO, "max_tokens": 4}
    return session.wire.post("chat/completions", body, headers=session.headers, auth=False)


def _limit_mismatch(shown: dict[str, int], wanted: dict[str, int]) -> list[str]:
    return [f"{w}: headers say {shown.get(w)}, documented {v}" for w, v in wanted.items() if shown.get(w) != v]


@check("hontoni.accounts.login", surface="auth", claims=("hontoni.accounts",),
       faults=("hontoni-login-wrong-password-200",),
       rationale="Beside register, POST /api/auth/login gives an access token for an existing account (seed 002 "
                 "Quick Start: keys are created with an access token); a wrong password must be 401 in the error "
                 "envelope, or any address's keys are anyone's.")
def test_login(wire, target) -> None:
    session = fresh_session(wire, target)
    ok = session.call("POST", "login", {"email": session.email, "password": session.password}, auth=False)
    body = expect_object(ok, "POST /api/auth/login with the right password")
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        fail("POST /api/auth/login returned no access_token", ok.evidence())
    made = session.call("POST", "keys", {"name": "wirecheck-login"}, headers={"Authorization": f"Bearer {token}"})
    if made.status not in (200, 201):
        fail(f"POST /api/keys with the access token from login got HTTP {made.status}", made.evidence())
    wrong = session.call("POST", "login", {"email": session.email, "password": session.password + "x"}, auth=False)
    _expect_error(wrong, 401, "POST /api/auth/login with a wrong password", target)


@check("hontoni.subscription", surface="auth", claims=("hontoni.subscription", "ratelimit-headers"),
       faults=("hontoni-subscription-plan-ignored", "hontoni-plan-prices-wrong"),
       rationale="GET /api/subscription lists the plans of seed 002's Plan-Based Limits table (Basic $6, Standard "
                 "$13, Premium $39, Ultimate $79, each with its limits); subscribing changes the key's limits at "
                 "once, and every response's X-RateLimit-Limit-* headers show the new plan's numbers.")
def test_subscription(wire, target) -> None:
    session = fresh_session(wire, target, top_up=20)
    listed = expect_object(session.call("GET", "subscription"), "GET /api/subscription")
    _expect_prices(listed, "plans", target.profile.vendor["plans"], "GET /api/subscription")
    session.object("POST", "subscription", {"plan": "standard"}, guessed=True)
    after = _chat(session)
    if after.status != 200:
        fail(f"a chat completion after subscribing got HTTP {after.status}", after.evidence())
    problems = _limit_mismatch(_limits_shown(after, target), _plan_limits(target, "standard"))
    if problems:
        fail("after subscribing to standard, " + "; ".join(problems), after.evidence(*problems))


@check("hontoni.addons", surface="auth", claims=("hontoni.addons", "ratelimit-headers"),
       faults=("hontoni-addon-ignored",),
       rationale="GET /api/addons lists Rate Limit 2x / 5x / 10x ($4.99 / $9.99 / $19.99); an add-on multiplies "
                 "all rate limits of the key's plan (\"Double all rate limits\"), which the X-RateLimit-Limit-* "
                 "headers then show.")
def test_addons(wire, target) -> None:
    session = fresh_session(wire, target, top_up=20)
    listed = expect_object(session.call("GET", "addons"), "GET /api/addons")
    _expect_prices(listed, "addons", target.profile.vendor["addons"], "GET /api/addons")
    before = _chat(session)
    base = _limits_shown(before, target)
    if not base:
        fail("a chat completion carried no X-RateLimit-Limit-* headers to compare", before.evidence())
    session.object("POST", "addons", {"addon": "rate_limit_2x"}, guessed=True)
    after = _chat(session)
    problems = _limit_mismatch(_limits_shown(after, target), {w: v * 2 for w, v in base.items()})
    if problems:
        fail("after buying Rate Limit 2x, " + "; ".join(problems), after.evidence(*problems))


@check("hontoni.plan.thinking-cap", surface="messages", claims=("hontoni.thinking-cap", "thinking",
                                                                  "hontoni.extended-context"),
       faults=("hontoni-thinking-cap-refused", "hontoni-max-suffix-refused"),
       rationale="Each plan has a Thinking Budget (8,000 .. 64,000, seed 002 Plan-Based Limits) and `:max` asks for "
                 "65,536 on \"any thinking-capable model\": `:max` must answer whatever the plan. An explicit budget "
                 "above the plan's should be lowered to it (--strict: refusing it is a reading the document allows "
                 "less well). "
                 "Seen through Anthropic's own rule (budget_tokens < max_tokens): with budget_tokens above the cap "
                 "and max_tokens between the cap and that budget, only a capped request is valid. Uses the -1m "
                 "window, which holds max_tokens above the cap.")
def test_thinking_cap(wire, target) -> None:
    session = fresh_session(wire, target, top_up=5)
    state = expect_object(session.call("GET", "subscription"), "GET /api/subscription")
    cap = state.get("thinking_budget")
    if not isinstance(cap, int):
        pytest.skip("inconclusive: GET /api/subscription states no thinking_budget for a new account")
    base = next((e["id"] for e in target.profile.model_entries if e.get("kind") == "budget"), None)
    if base is None:
        pytest.skip("inconclusive: the profile lists no budget model")
    suffix = target.profile.vendor["variants"]["context"]["suffix"]
    top = max(v["thinking_budget"] for v in target.profile.vendor["variants"]["effort"].values())
    body: dict[str, Any] = {"model": base + ":max", "max_tokens": 1400, "messages": HELLO}
    maxed = session.wire.post("messages", body, headers=session.headers, auth=False)
    blocks = [b.get("type") for b in expect_object(maxed, f"{base}:max (budget {top}, plan cap {cap})")
              .get("content") or []]
    if "thinking" not in blocks:
        fail(f"{base}:max on a plan capped at {cap} answered blocks {blocks}, without thinking", maxed.evidence())
    over = {"model": base + suffix, "max_tokens": cap + 1000, "messages": HELLO, "stop_sequences": [" "],
            "thinking": {"type": "enabled", "budget_tokens": cap + 4000}}
    capped = session.wire.post("messages", over, headers=session.headers, auth=False)
    if capped.status == 400 and not target.strict:
        return  # refusing an explicit budget above the cap is a reading too: a --strict finding (wirecheck caps)
    if capped.status != 200:
        fail(f"budget_tokens {cap + 4000} (plan cap {cap}) with max_tokens {cap + 1000} got HTTP {capped.status}: "
             f"the budget was not lowered to the plan's cap before it was judged", capped.evidence())


@check("hontoni.ratelimit.windows", surface="http", claims=("ratelimit-headers", "hontoni.accounts"),
       faults=("hontoni-ratelimit-remaining-frozen",),
       rationale="Every documented window (RPM, 5h, daily, weekly, monthly) counts each request: consecutive "
                 "responses' X-RateLimit-Remaining-* fall by exactly one per request while the limit stays, and "
                 "X-RateLimit-Concurrent-Active counts the request being answered. Clients pace on these numbers.")
def test_windows(wire, target) -> None:
    session = fresh_session(wire, target, top_up=1)  # chat, not GET /models: surely counted wherever limits apply
    specs = header_specs(target)
    remaining = {n: w for n, (m, w) in specs.items() if m == "remaining"}
    seen: list[dict[str, int]] = []
    limits: list[dict[str, int]] = []
    last: Exchange | None = None
    for _ in range(3):
        last = _chat(session)
        if last.status != 200:
            fail(f"a chat completion with a fresh key got HTTP {last.status}", last.evidence())
        got = {k.lower(): v for k, v in last.headers.items()}
        values = {w: int(got[n]) for n, w in remaining.items() if got.get(n, "").isdigit()}
        missing = sorted(w for w in remaining.values() if w not in values)
        if missing:
            fail(f"no remaining count for windows {missing}", last.evidence())
        active = next((got.get(n) for n, (m, _) in specs.items() if m == "active"), None)
        if active is not None and (not active.isdigit() or int(active) < 1):
            fail(f"the concurrency header says {active!r} active while this request is being answered",
                 last.evidence())
        seen.append(values)
        limits.append(_limits_shown(last, target))
    if limits[0] != limits[-1]:
        fail(f"the limits changed across three requests with no plan change: {limits[0]} then {limits[-1]}",
             last.evidence() if last else None)
    for window in seen[0]:
        steps = [seen[i][window] - seen[i + 1][window] for i in range(len(seen) - 1)]
        if steps != [1, 1]:
            counts = [s[window] for s in seen]
            fail(f"remaining {window} over three consecutive requests was {counts}: it does not count each "
                 f"request once", last.evidence() if last else None)


@check("hontoni.billing.transactions", surface="auth", claims=("hontoni.billing", "hontoni.balance"),
       faults=("hontoni-transactions-cost-wrong", "hontoni-balance-not-charged"),
       rationale="Seed 002: cost = input × input price + output × output price + reasoning × reasoning price, per "
                 "1M tokens, deducted from the prepaid balance. GET /api/billing/transactions must record the "
                 "charge for a request with its token counts and that cost, and the balance must fall by it.")
def test_transactions(wire, target) -> None:
    session = fresh_session(wire, target, top_up=PRECISE_TOP_UP)
    start = _balance(session)
    model = next(e for e in target.profile.model_entries if e.get("kind") == "none")
    reply = _chat(session, model["id"])
    usage = expect_object(reply, f"a chat completion on {model['id']}").get("usage") or {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        fail(f"the completion reported no usage to bill ({usage!r})", reply.evidence())
    cost = (prompt * model["price"][0] + completion * model["price"][1]) / 1_000_000
    listed = expect_object(session.call("GET", "transactions"), "GET /api/billing/transactions")
    data = [r for r in listed.get("data") or [] if isinstance(r, dict)]
    if data and not any("cost" in r or "type" in r for r in data):
        pytest.skip(f"inconclusive: transactions carry fields {sorted(data[0])[:8]}; the document shows none, and "
                    f"wirecheck reads type / cost / input_tokens / output_tokens")
    rows = [r for r in data if r.get("type") == "usage"]
    if not rows:
        fail("GET /api/billing/transactions lists no usage charge after a request")
    row = rows[0]
    if (row.get("input_tokens"), row.get("output_tokens")) != (prompt, completion):
        fail(f"the charge records {row.get('input_tokens')} in / {row.get('output_tokens')} out; the response "
             f"reported {prompt} / {completion}")
    if not isinstance(row.get("cost"), (int, float)) or abs(row["cost"] - cost) > 1e-9 + cost * 1e-6:
        fail(f"the charge's cost is {row.get('cost')!r}; the documented formula gives {cost:.10f} for {prompt} in "
             f"and {completion} out at ${model['price'][0]} / ${model['price'][1]} per 1M")
    end = _balance(session)
    _skip_if_unseen(cost, start, end)
    if abs((start - end) - cost) > 1e-6:
        fail(f"the balance went from {start} to {end} ({start - end:.8f} less); the request cost {cost:.8f}")


def _skip_if_unseen(cost: float, *balances: float) -> None:
    """A balance shown to fewer decimals than a charge needs (cents, say) cannot show it: inconclusive."""
    shown = max(len(repr(b).partition(".")[2].rstrip("0")) for b in balances)
    if shown <= 4 and cost < 10 ** -shown:
        pytest.skip(f"inconclusive: balances {balances} are shown to {shown} decimals; a charge of ${cost:.8f} "
                    f"cannot show in them")


def _balance(session: Session) -> float:
    ex = session.call("GET", "balance")
    value = expect_object(ex, "GET /api/billing/balance").get("balance")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"GET /api/billing/balance returned balance {value!r}, not a number", ex.evidence())
    return float(value)


@check("hontoni.billing.referral", surface="auth", claims=("hontoni.billing",),
       faults=("hontoni-referral-reapply-200",),
       rationale="GET /api/billing/referral gives the account's code and stats; POST applies another account's "
                 "code, which then counts on the referrer's stats. A second application is a duplicate (409, seed "
                 "002's Conflict), and an unknown code is not applied.")
def test_referral(wire, target) -> None:
    referrer = fresh_session(wire, target)
    newcomer = fresh_session(wire, target)
    mine = expect_object(referrer.call("GET", "referral"), "GET /api/billing/referral")
    code, count = mine.get("code"), mine.get("referrals")
    if not isinstance(code, str) or not code or not isinstance(count, int):
        fail(f"GET /api/billing/referral returned code {code!r} and referrals {count!r}")
    newcomer.object("POST", "referral", {"code": code}, "POST /api/billing/referral (a new code)", guessed=True)
    after = expect_object(referrer.call("GET", "referral"), "GET /api/billing/referral after a referral")
    if after.get("referrals") != count + 1:
        fail(f"the referrer's referrals went from {count} to {after.get('referrals')!r} after its code was applied")
    _expect_error(newcomer.call("POST", "referral", {"code": code}), 409, "applying a referral code twice", target)
    unknown = newcomer.call("POST", "referral", {"code": "WIRECHECK-NO-SUCH-CODE"})
    if unknown.status not in (400, 404, 409):
        fail(f"applying an unknown referral code got HTTP {unknown.status}", unknown.evidence())


@check("hontoni.billing.promo-code", surface="auth", claims=("hontoni.billing",),
       faults=("hontoni-promo-any-code-valid",),
       rationale="POST /api/billing/promo-code validates a code: one that does not exist must not validate "
                 "(valid: false, or a 4xx), and a body without a code is a 400 in the error envelope.")
def test_promo_code(wire, target) -> None:
    session = fresh_session(wire, target)
    ex = session.call("POST", "promo_code", {"code": "WIRECHECK-NO-SUCH-PROMO"})
    if ex.status == 200 and (ex.json() or {}).get("valid") is not False:
        fail(f"a promo code that does not exist validated: {ex.json()!r}", ex.evidence())
    if ex.status not in (200, 400, 404):
        fail(f"validating an unknown promo code got HTTP {ex.status}", ex.evidence())
    _expect_error(session.call("POST", "promo_code", {}), 400, "POST /api/billing/promo-code without a code", target)


@check("hontoni.billing.payments", surface="auth", claims=("hontoni.billing",),
       faults=("hontoni-checkout-no-url", "hontoni-invoice-pdf-500"),
       rationale="Seed 002 documents card top-ups: POST /api/billing/topup/checkout creates a Stripe Checkout "
                 "session (a client opens its url), /topup/intent a PaymentIntent (a client confirms it with its "
                 "client_secret), GET /invoices lists invoices and /invoices/:id/pdf gives a PDF's URL, an unknown "
                 "invoice a 404. Nothing is paid: sessions and intents are left unpaid.")
def test_payments(wire, target) -> None:
    session = fresh_session(wire, target)
    made = session.object("POST", "checkout", {"amount": 10}, guessed=True)
    if not isinstance(made.get("id"), str) or not str(made.get("url", "")).startswith(("http://", "https://")):
        fail(f"the checkout session has id {made.get('id')!r} and url {made.get('url')!r}: a client has nowhere "
             f"to send the user")
    intent = session.object("POST", "intent", {"amount": 10}, guessed=True)
    if not isinstance(intent.get("client_secret"), str) or not intent["client_secret"]:
        fail(f"the payment intent has no client_secret ({sorted(intent)[:10]}): a client cannot confirm it")
    listed = expect_object(session.call("GET", "invoices"), "GET /api/billing/invoices")
    if not isinstance(listed.get("data"), list):
        fail(f"GET /api/billing/invoices has no data list ({sorted(listed)[:10]})")
    missing = session.call("GET", "invoice_pdf", path_params={"id": "in_wirecheck_missing"})
    _expect_error(missing, 404, "the PDF of an invoice that does not exist", target)


@check("hontoni.account.errors", surface="auth", claims=("hontoni.accounts", "hontoni.billing"),
       faults=("hontoni-account-errors-flat",),
       rationale="Bad input on the account API gets Hontoni's error envelope {error: {message, type, code}} with "
                 "the documented status (400 invalid body, 401 no credentials), never a 500 or a bare string.")
def test_account_errors(wire, target) -> None:
    session = fresh_session(wire, target)
    for name, body, status in (("topup", {"amount": "lots"}, 400), ("subscription", {"plan": 7}, 400),
                               ("addons", {}, 400), ("referral", {"code": None}, 400)):
        _expect_error(session.call("POST", name, body), status, f"POST {name} with {body}", target)
    _expect_error(session.call("GET", "transactions", auth=False), 401, "GET transactions without credentials",
                  target)
    _expect_error(session.call("POST", "topup", raw=b"{not json"), 400, "POST topup with a body that is not JSON",
                  target)


@check("hontoni.billing.extended-pay-as-you-go", surface="chat",
       claims=("hontoni.billing", "hontoni.extended-context", "hontoni.subscription"),
       faults=("hontoni-extended-context-ignored", "hontoni-balance-not-charged"),
       rationale="Seed 002 Model Variants: '-1m: Extended context via pay-as-you-go'. Whatever a plan covers, a "
                 "-1m request is charged to the prepaid balance, at least what the documented formula gives at the "
                 "base model's prices (the document names no -1m prices; a premium would only add); a gateway that "
                 "serves -1m under the plan bills nothing for a context it does not give.")
def test_extended_pay_as_you_go(wire, target) -> None:
    session = fresh_session(wire, target, top_up=PRECISE_TOP_UP + 5)
    session.object("POST", "subscription", {"plan": "basic"}, guessed=True)
    model = next(e for e in target.profile.model_entries if e.get("kind") == "none")
    extended = model["id"] + target.profile.vendor["variants"]["context"]["suffix"]
    start = _balance(session)
    reply = _chat(session, extended)
    usage = expect_object(reply, f"a chat completion on {extended!r} under the basic plan").get("usage") or {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        fail(f"the completion reported no usage to bill ({usage!r})", reply.evidence())
    cost = (prompt * model["price"][0] + completion * model["price"][1]) / 1_000_000
    end = _balance(session)
    spent = start - end
    _skip_if_unseen(cost, start, end)
    if spent < cost - 1e-6:  # a long-context premium (Anthropic doubles input past 200K) would be more, not less
        fail(f"a {extended!r} request of {prompt} in / {completion} out under a plan took ${spent:.8f} from the "
             f"balance; pay-as-you-go at {model['id']}'s prices is at least ${cost:.8f}")
