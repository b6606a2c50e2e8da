"""Hontoni's account API on `wirecheck serve --profile hontoni`, over real HTTP: log-in, plans and add-ons that
change the key's limits, the plan's thinking cap, billing by the documented formula, referral and promo codes,
emulated card payments, and money that stays exact under concurrent clients."""

from __future__ import annotations

import asyncio
import json
import secrets

import anthropic
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wirecheck.suites.serve import running

HELLO = [{"role": "user", "content": "Say hi."}]


@pytest.fixture(scope="module")
def hontoni():
    with running("--profile", "hontoni") as server:
        yield server


def _new(server, balance: float = 0.0) -> tuple[httpx.Client, str, str, dict]:
    """A client, a fresh account's token and key (topped up by `balance`), and its register answer."""
    client = httpx.Client(base_url=server.base_url, timeout=60)
    email = f"t-{secrets.token_hex(5)}@example.com"
    made = client.post("/api/auth/register", json={"email": email, "password": "password-123", "name": "t"})
    assert made.status_code == 201, made.text
    token = made.json()["access_token"]
    key = client.post("/api/keys", json={"name": "k"}, headers={"Authorization": f"Bearer {token}"}).json()["key"]
    if balance:
        assert client.post("/api/billing/topup", json={"amount": balance},
                           headers={"Authorization": f"Bearer {key}"}).status_code == 200
    return client, token, key, {"email": email}


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _chat(client: httpx.Client, key: str, model: str = "claude-sonnet-4", **extra) -> httpx.Response:
    return client.post("/v1/chat/completions", headers=_auth(key),
                       json={"model": model, "messages": HELLO, "max_tokens": 4, **extra})


def _error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"] and "type" in error
    if code is not None:
        assert error["code"] == code, error
    return error


def test_login(hontoni) -> None:
    client, _, _, who = _new(hontoni)
    ok = client.post("/api/auth/login", json={"email": who["email"], "password": "password-123"})
    assert ok.status_code == 200 and ok.json()["user"]["email"] == who["email"]
    token = ok.json()["access_token"]
    assert client.post("/api/keys", json={"name": "second"}, headers=_auth(token)).status_code == 201
    _error(client.post("/api/auth/login", json={"email": who["email"], "password": "wrong-password"}), 401,
           "invalid_credentials")
    _error(client.post("/api/auth/login", json={"email": "nobody@example.com", "password": "password-123"}), 401,
           "invalid_credentials")
    _error(client.post("/api/auth/login", json={"email": 5}), 400)
    _error(client.post("/api/auth/login", content=b"{not json"), 400, "invalid_json")
    _error(client.get("/api/auth/login"), 405, "method_not_allowed")


def test_subscription_and_addon_set_the_limits_the_headers_show(hontoni) -> None:
    client, _, key, _ = _new(hontoni, balance=100)
    assert _chat(client, key).headers["X-RateLimit-Limit-RPM"] == "8"  # no plan yet: the lowest plan's limits
    plans = client.get("/api/subscription", headers=_auth(key)).json()
    assert [(p["id"], p["price"], p["thinking_budget"]) for p in plans["plans"]] == [
        ("basic", 6, 8000), ("standard", 13, 16000), ("premium", 39, 32000), ("ultimate", 79, 64000)]
    assert plans["subscription"] is None
    done = client.post("/api/subscription", json={"plan": "premium"}, headers=_auth(key))
    assert done.status_code == 200 and done.json()["subscription"]["plan"] == "premium"
    assert done.json()["balance"] == pytest.approx(61, abs=0.01)  # less the first request's cost
    headers = _chat(client, key).headers
    assert (headers["X-RateLimit-Limit-RPM"], headers["X-RateLimit-Limit-5h"], headers["X-RateLimit-Limit-Daily"],
            headers["X-RateLimit-Limit-Weekly"], headers["X-RateLimit-Limit-Monthly"],
            headers["X-RateLimit-Concurrent-Limit"]) == ("20", "200", "1000", "1250", "5000", "2")
    offered = client.get("/api/addons", headers=_auth(key)).json()["addons"]
    assert [(a["id"], a["price"], a["multiplier"]) for a in offered] == [
        ("rate_limit_2x", 4.99, 2), ("rate_limit_5x", 9.99, 5), ("rate_limit_10x", 19.99, 10)]
    assert client.post("/api/addons", json={"addon": "rate_limit_5x"}, headers=_auth(key)).status_code == 200
    headers = _chat(client, key).headers
    assert headers["X-RateLimit-Limit-RPM"] == "100" and headers["X-RateLimit-Concurrent-Limit"] == "10"
    assert int(headers["X-RateLimit-Remaining-RPM"]) == 100 - 3  # counted before the plan changed: still counted
    assert client.delete("/api/addons", headers=_auth(key)).json()["addon"] is None
    assert _chat(client, key).headers["X-RateLimit-Limit-RPM"] == "20"
    assert client.delete("/api/subscription", headers=_auth(key)).json()["subscription"] is None
    assert _chat(client, key).headers["X-RateLimit-Limit-RPM"] == "8"
    kinds = [t["type"] for t in client.get("/api/billing/transactions", headers=_auth(key)).json()["data"]]
    assert kinds.count("subscription") == 1 and kinds.count("addon") == 1 and kinds[-1] == "topup"
    _error(client.post("/api/subscription", json={"plan": "gold"}, headers=_auth(key)), 400, "invalid_plan")
    _error(client.post("/api/addons", json={}, headers=_auth(key)), 400)
    _error(client.get("/api/subscription"), 401, "invalid_token")


def test_buying_a_plan_needs_the_balance(hontoni) -> None:
    client, _, key, _ = _new(hontoni, balance=5)
    _error(client.post("/api/subscription", json={"plan": "basic"}, headers=_auth(key)), 402, "insufficient_balance")
    assert client.get("/api/billing/balance", headers=_auth(key)).json()["balance"] == 5


def test_subscription_covers_requests_and_1m_is_pay_as_you_go(hontoni) -> None:
    client, _, key, _ = _new(hontoni, balance=6)
    assert client.post("/api/subscription", json={"plan": "basic"}, headers=_auth(key)).status_code == 200
    assert client.get("/api/billing/balance", headers=_auth(key)).json()["balance"] == 0
    covered = _chat(client, key)  # balance 0, but the plan pays
    assert covered.status_code == 200, covered.text
    _error(_chat(client, key, model="claude-sonnet-4-1m"), 402, "insufficient_balance")
    client.post("/api/billing/topup", json={"amount": 1}, headers=_auth(key))
    extended = _chat(client, key, model="claude-sonnet-4-1m")
    assert extended.status_code == 200, extended.text
    rows = client.get("/api/billing/transactions?type=usage", headers=_auth(key)).json()["data"]
    newest, older = rows[0], rows[1]
    assert newest["billed_to"] == "balance" and newest["amount"] == pytest.approx(-newest["cost"])
    assert older["billed_to"] == "subscription" and older["amount"] == 0 and older["cost"] > 0


def test_every_charge_is_the_documented_formula(hontoni) -> None:
    client, _, key, _ = _new(hontoni, balance=2)
    usage = _chat(client, key, model="gpt-4o").json()["usage"]
    rows = client.get("/api/billing/transactions", headers=_auth(key)).json()["data"]
    charge = rows[0]
    assert (charge["type"], charge["model"], charge["input_tokens"], charge["output_tokens"]) == \
        ("usage", "gpt-4o", usage["prompt_tokens"], usage["completion_tokens"])
    cost = (usage["prompt_tokens"] * 2.50 + usage["completion_tokens"] * 10.00) / 1_000_000
    assert charge["cost"] == pytest.approx(cost) and charge["amount"] == pytest.approx(-cost)
    assert client.get("/api/billing/balance", headers=_auth(key)).json()["balance"] == pytest.approx(2 - cost)
    # Reasoning is priced at the reasoning price, counted once (it is inside the output count).
    reply = client.post("/v1/responses", headers=_auth(key),
                        json={"model": "gpt-5.2:high", "input": "Say hi.", "max_output_tokens": 64}).json()
    used = reply["usage"]
    reasoning = used["output_tokens_details"]["reasoning_tokens"]
    assert reasoning > 0
    row = client.get("/api/billing/transactions?limit=1", headers=_auth(key)).json()["data"][0]
    assert row["reasoning_tokens"] == reasoning
    expected = (used["input_tokens"] * 5 + (used["output_tokens"] - reasoning) * 20 + reasoning * 20) / 1_000_000
    assert row["cost"] == pytest.approx(expected)
    _error(client.get("/api/billing/transactions?limit=0", headers=_auth(key)), 400, "invalid_limit")


def test_thinking_budget_above_the_plan_is_capped(hontoni) -> None:
    """Basic's Thinking Budget is 8,000: a larger explicit budget is lowered to it, not refused. Seen through the
    rule Anthropic's API enforces (budget_tokens < max_tokens) on the -1m window, which fits max_tokens 9,000."""
    _, _, key, _ = _new(hontoni, balance=5)
    client = anthropic.Anthropic(base_url=hontoni.base_url, api_key=key, max_retries=0)
    reply = client.messages.create(model="claude-sonnet-4-1m", max_tokens=9000, messages=HELLO,
                                   thinking={"type": "enabled", "budget_tokens": 12000}, stop_sequences=[" "])
    assert reply.content[0].type == "thinking"
    assert client.messages.create(model="claude-sonnet-4:max", max_tokens=1400, messages=HELLO).content[0].type \
        == "thinking"


def test_referral_and_promo_codes(hontoni) -> None:
    client, _, alice, _ = _new(hontoni)
    _, _, bob, _ = _new(hontoni)
    code = client.get("/api/billing/referral", headers=_auth(alice)).json()["code"]
    assert client.post("/api/billing/referral", json={"code": code}, headers=_auth(bob)).status_code == 200
    assert client.get("/api/billing/referral", headers=_auth(alice)).json()["referrals"] == 1
    _error(client.post("/api/billing/referral", json={"code": code}, headers=_auth(bob)), 409,
           "referral_already_applied")
    _error(client.post("/api/billing/referral", json={"code": code}, headers=_auth(alice)), 400, "own_referral_code")
    _error(client.post("/api/billing/referral", json={"code": "HTN-NOPE"}, headers=_auth(alice)), 404)
    promo = client.post("/api/billing/promo-code", json={"code": "wirecheck10"}, headers=_auth(alice)).json()
    assert promo["valid"] is True and promo["percent_off"] == 10
    assert client.post("/api/billing/promo-code", json={"code": "NOPE"}, headers=_auth(alice)).json()["valid"] is False
    _error(client.post("/api/billing/promo-code", json={"code": ""}, headers=_auth(alice)), 400)


def test_card_payments_are_emulated_end_to_end(hontoni) -> None:
    client, _, key, _ = _new(hontoni)
    session = client.post("/api/billing/topup/checkout", json={"amount": 20, "promo_code": "WIRECHECK50"},
                          headers=_auth(key)).json()
    assert session["emulated"] is True and session["amount_total"] == 10 and session["status"] == "open"
    assert client.get(session["url"]).json()["status"] == "complete"
    assert client.get(session["url"]).json()["status"] == "complete"  # paying twice credits once
    intent = client.post("/api/billing/topup/intent", json={"amount": 5}, headers=_auth(key)).json()
    assert intent["client_secret"].startswith(intent["id"])
    _error(client.post(intent["confirm_url"], json={"client_secret": "wrong"}), 400, "invalid_client_secret")
    assert client.post(intent["confirm_url"], json={"client_secret": intent["client_secret"]}).json()["status"] \
        == "succeeded"
    assert client.get("/api/billing/balance", headers=_auth(key)).json()["balance"] == 25
    invoices = client.get("/api/billing/invoices", headers=_auth(key)).json()["data"]
    assert [i["amount_paid"] for i in invoices] == [5, 10]
    link = client.get(f"/api/billing/invoices/{invoices[1]['id']}/pdf", headers=_auth(key)).json()["url"]
    pdf = client.get(link)
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF-1.4")
    assert b"Amount paid: $10.00" in pdf.content and pdf.content.rstrip().endswith(b"%%EOF")
    _error(client.get(link.split("?")[0] + "?download=forged"), 404)
    _, _, other, _ = _new(hontoni)
    _error(client.get(f"/api/billing/invoices/{invoices[1]['id']}/pdf", headers=_auth(other)), 404,
           "invoice_not_found")
    _error(client.post("/api/billing/topup/checkout", json={"amount": -1}, headers=_auth(key)), 400, "invalid_amount")
    _error(client.post("/api/billing/topup/checkout", json={"amount": 5, "promo_code": "NOPE"}, headers=_auth(key)),
           404, "promo_code_not_found")


def test_money_is_exact_under_concurrent_clients(hontoni) -> None:
    _, _, key, _ = _new(hontoni)

    async def burst() -> None:
        async with httpx.AsyncClient(base_url=hontoni.base_url, timeout=60, headers=_auth(key)) as client:
            done = await asyncio.gather(*(client.post("/api/billing/topup", json={"amount": 0.25})
                                          for _ in range(60)))
            assert all(r.status_code == 200 for r in done)
            session = (await client.post("/api/billing/topup/checkout", json={"amount": 7})).json()
            paid = await asyncio.gather(*(client.get(session["url"]) for _ in range(20)))
            assert {r.json()["status"] for r in paid} == {"complete"}
            chats = await asyncio.gather(*(client.post("/v1/chat/completions", json={
                "model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 4}) for _ in range(6)))
            assert [r.status_code for r in chats].count(200) >= 1

    asyncio.run(burst())
    client = httpx.Client(base_url=hontoni.base_url, headers=_auth(key))
    rows = client.get("/api/billing/transactions?limit=500").json()["data"]
    assert sum(r["type"] == "topup" for r in rows) == 61
    expected = 60 * 0.25 + 7 - sum(r["cost"] for r in rows if r["type"] == "usage")
    assert client.get("/api/billing/balance").json()["balance"] == pytest.approx(expected)


def test_what_reviewers_broke(hontoni) -> None:
    """Streams without include_usage are billed; no client string makes a 500; nothing is bought twice; a session
    is paid on its page and an intent only with its secret; counting tokens needs no balance."""
    client, _, key, _ = _new(hontoni, balance=10)
    with client.stream("POST", "/v1/chat/completions", headers=_auth(key), json={
            "model": "gpt-4o", "messages": HELLO, "max_tokens": 4, "stream": True}) as stream:
        assert stream.status_code == 200 and '"usage"' not in stream.read().decode()
    row = client.get("/api/billing/transactions?limit=1", headers=_auth(key)).json()["data"][0]
    assert row["type"] == "usage" and row["input_tokens"] > 0 and row["cost"] > 0
    assert client.get("/api/billing/balance", headers=_auth(key)).json()["balance"] == pytest.approx(10 - row["cost"])
    surrogate = b'{"email": "x@example.com", "password": "\\ud800\\ud800\\ud800\\ud800", "name": "\\udfff"}'
    _error(client.post("/api/auth/register", content=surrogate), 400, "invalid_json")
    intent = client.post("/api/billing/topup/intent", json={"amount": 5}, headers=_auth(key)).json()
    _error(client.post(intent["confirm_url"], json={"client_secret": "é"}), 400, "invalid_client_secret")
    _error(client.get(intent["confirm_url"].replace("/intent/", "/checkout/").replace("/confirm", "/complete")), 404)
    session = client.post("/api/billing/topup/checkout", json={"amount": 5}, headers=_auth(key)).json()
    assert client.get(session["url"]).json()["status"] == "complete"
    invoice = client.get("/api/billing/invoices", headers=_auth(key)).json()["data"][0]["id"]
    link = client.get(f"/api/billing/invoices/{invoice}/pdf", headers=_auth(key)).json()["url"]
    _error(client.get(link.split("?")[0], params={"download": "é"}), 404)
    assert client.post("/api/subscription", json={"plan": "basic"}, headers=_auth(key)).status_code == 200
    _error(client.post("/api/subscription", json={"plan": "basic"}, headers=_auth(key)), 409, "plan_already_active")
    _, _, broke, _ = _new(hontoni)  # $0: counting is free, answering is not
    counted = client.post("/v1/messages/count_tokens", headers={**_auth(broke), "anthropic-version": "2023-06-01"},
                          json={"model": "claude-sonnet-4", "messages": HELLO})
    assert counted.status_code == 200, counted.text
    _error(_chat(client, broke), 402, "insufficient_balance")


# ------------------------------------------------------------------------------------------ the ledger, by clock


def _ledger(balance: float):
    from wirecheck.reference_server.vendors.ledger import Ledger
    from wirecheck.spec.profiles import load_profile

    now = [1_000_000.0]
    ledger = Ledger(load_profile("hontoni").vendor, clock=lambda: now[0])
    ledger.open("a", balance)
    return ledger, now


def test_plans_renew_from_the_balance_and_lapse_when_it_cannot_pay() -> None:
    from wirecheck.reference_server.vendors.ledger import PERIOD_S

    ledger, now = _ledger(balance=20)
    ledger.subscribe("a", "standard")  # $13, 7 left
    ledger.buy_addon("a", "rate_limit_2x")  # $4.99, 2.01 left
    now[0] += PERIOD_S - 1
    assert ledger.current("a") == ("standard", "rate_limit_2x")
    now[0] += 1  # the period is over: the plan cannot renew ($13 > $2.01); the add-on cannot either
    assert ledger.current("a") == (None, None)
    assert ledger.wallet("a").balance == pytest.approx(2.01)
    ledger.top_up("a", 100)
    ledger.subscribe("a", "basic")
    now[0] += 3 * PERIOD_S  # three periods later: renewed three times, $6 each
    assert ledger.current("a") == ("basic", None)
    assert ledger.wallet("a").balance == pytest.approx(102.01 - 6 - 18)
    renewals = [t for t in ledger.wallet("a").transactions if t["description"] == "Plan basic renewal"]
    assert len(renewals) == 3


def test_usage_cost_is_the_documented_formula() -> None:
    from wirecheck.reference_server.vendors.ledger import Usage, usage_cost

    # seeds/002's worked example: claude-sonnet-4, 1,000 input and 500 output tokens = $0.0105
    assert usage_cost(Usage(1000, 500), [3.0, 15.0, 15.0]) == pytest.approx(0.0105)
    # 100 of the 500 output tokens were reasoning, priced at the reasoning price and not again as output.
    assert usage_cost(Usage(1000, 500, 100), [3.0, 15.0, 30.0]) == pytest.approx((3000 + 400 * 15 + 100 * 30) / 1e6)


# ------------------------------------------------------------------------------------------ bad input, generated

_FIELDS = ("email", "password", "name", "amount", "plan", "addon", "code", "promo_code", "client_secret")
_TEXT = st.text(max_size=20) | st.sampled_from(["\ud800", "\udfff x", "é", "\x00", "𝄞" * 3])  # lone surrogates too
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | _TEXT,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=3), max_leaves=8)
_BODIES = st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=8), _JSON, max_size=4) | _JSON


@pytest.mark.parametrize("method,path", [
    ("POST", "/api/auth/register"), ("POST", "/api/auth/login"), ("POST", "/api/keys"),
    ("POST", "/api/billing/topup"), ("POST", "/api/subscription"), ("POST", "/api/addons"),
    ("POST", "/api/billing/referral"), ("POST", "/api/billing/promo-code"), ("POST", "/api/billing/topup/checkout"),
    ("POST", "/api/billing/topup/intent"), ("DELETE", "/api/subscription"), ("GET", "/api/billing/transactions"),
])
def test_any_body_gets_a_status_and_an_envelope_never_a_500(hontoni, method: str, path: str) -> None:
    client, token, key, _ = _new(hontoni, balance=500)
    who = _auth(token if path == "/api/keys" else key)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(body=_BODIES)
    def send(body) -> None:
        raw = json.dumps(body, allow_nan=True).encode()
        reply = client.request(method, path, content=raw, headers={**who, "content-type": "application/json"},
                               params={"limit": "x"} if method == "GET" else None)
        assert reply.status_code < 500, (body, reply.text)
        if reply.status_code >= 400:
            _error(reply, reply.status_code)

    send()


def test_claude_code_configured_as_documented(hontoni) -> None:
    """002: "export ANTHROPIC_BASE_URL=https://api.hontoni.vn/v1": the SDK then asks for /v1/v1/messages."""
    client = anthropic.Anthropic(base_url=hontoni.base_url + "/v1", api_key="sk-gw-any", max_retries=0)
    assert client.messages.create(model="claude-sonnet-4", max_tokens=4, messages=HELLO).type == "message"
    assert client.messages.count_tokens(model="claude-sonnet-4", messages=HELLO).input_tokens > 0
    assert any(m.id == "claude-sonnet-4" for m in client.models.list())
    plain = httpx.post(hontoni.base_url + "/v1/v1/chat/completions", headers=_auth("sk-gw-any"),
                       json={"model": "gpt-4o", "messages": HELLO, "max_tokens": 1})
    _error(plain, 404)  # only what Anthropic clients send there
