"""A vendor being emulated: its profile (the wire facts, from spec/profiles) and the server's emulation settings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from wirecheck.spec.profiles import Profile, load_profile

from ..keys import key_matches
from .ledger import Ledger, Usage, Wallet
from .limits import LimitSettings, Limiter, settings

CONFIGURED_ACCOUNT = ""  # the account keys given to `wirecheck serve --api-key` belong to

# Where each API path belongs; the vendor's `surfaces` decide which of them exist.
SURFACE_OF = {"chat/completions": "chat", "completions": "completions", "embeddings": "embeddings",
              "messages": "messages", "messages/count_tokens": "messages", "responses": "responses",
              "responses/input_tokens": "responses", "models": "models",
              "audio/transcriptions": "audio"}


def surface_of(rel: str) -> str | None:
    """``chat/completions`` -> chat; ``models/x/y`` -> models; unknown -> None."""
    if rel.startswith("models/"):
        return "models"
    return SURFACE_OF.get(rel)


@dataclass
class Options:
    """What `wirecheck serve` was told beyond the profile: keys, limits, balance, dry pools."""

    api_keys: list[str] = field(default_factory=list)
    rate_limit: dict[str, int | str] = field(default_factory=dict)
    balance: float | None = None  # USD for the configured keys; None = unlimited
    new_account_balance: float = 0.0  # USD an account made through /api/auth/register starts with
    dry_pools: list[str] | None = None  # None = the profile's emulation default


class Vendor:
    def __init__(self, profile: Profile, options: Options, clock: Any = time.time) -> None:
        self.profile = profile
        self.options = options
        self.clock = clock
        self.keys: list[bytes] = [k.encode() for k in options.api_keys]
        self.limits: LimitSettings | None = settings(profile.vendor, options.rate_limit or None)
        self._limiters: dict[str, Limiter] = {}
        self.key_accounts: dict[str, str] = {}  # keys issued at run time -> their account
        self.ledger = Ledger(profile.vendor, clock)
        # Configured keys share one account: --balance (None: not metered) and --rate-limit's limits.
        self.ledger.open(CONFIGURED_ACCOUNT, options.balance)
        self._limited: dict[str, dict[str, int]] = {}  # key -> the limits its Limiter was last given
        self._entries = {e["id"]: e for e in profile.model_entries}
        pools = profile.vendor.get("pools") or {}
        self.dry_pools = list(pools.get("emulated_dry", []) if options.dry_pools is None else options.dry_pools)
        unknown = [p for p in self.dry_pools if p not in pools.get("values", [])]
        if unknown:
            raise ValueError(f"--dry-pool {unknown[0]}: profile {profile.name} has pools "
                             f"{', '.join(pools.get('values', [])) or '(none)'}")

    @classmethod
    def load(cls, name: str, options: Options) -> Vendor:
        return cls(load_profile(name), options)

    # ------------------------------------------------------------------ models

    @property
    def extended_context(self) -> dict[str, Any]:
        """Hontoni's `-1m` variant as the profile documents it ({suffix, context_window}); {} where there is none."""
        return (self.profile.vendor.get("variants") or {}).get("context") or {}

    def extended_id(self, model_id: str) -> str | None:
        """The served id of a documented model's extended-context alias (`claude-sonnet-4-1m`), or None."""
        suffix = self.extended_context.get("suffix")
        return model_id + suffix if suffix and model_id in self._entries else None

    def base_id(self, model_id: str) -> str:
        """The documented id a served id stands for: an extended-context alias (`claude-sonnet-4-1m`) is its base
        model's (`claude-sonnet-4`) in every profile fact (kind, prices, capabilities); any other id is its own."""
        suffix = self.extended_context.get("suffix")
        if suffix and model_id not in self._entries and model_id.endswith(suffix):
            base = model_id[: -len(suffix)]
            if base in self._entries:
                return base
        return model_id

    def lists(self, model_id: str) -> bool:
        """GET /v1/models lists this id: the document's own ids, not the extended-context aliases."""
        return model_id in self._entries

    def entry(self, model_id: str) -> dict[str, Any]:
        return self._entries.get(self.base_id(model_id), {"id": model_id})

    def serves(self, model_id: str) -> bool:
        return self.base_id(model_id) in self._entries

    def quantizations(self, model_id: str) -> list[str]:
        q = self.profile.vendor.get("quantization")
        if not q:
            return []
        return list(self.entry(model_id).get("quantizations", q["values"]))

    # ------------------------------------------------------------------ keys

    def open_account(self, account: str) -> None:
        """A new prepaid account (Hontoni's register): it starts with --new-account-balance (0 by default)."""
        self.ledger.open(account, float(self.options.new_account_balance))

    def add_key(self, key: str, account: str) -> None:
        """A key issued at run time (Hontoni's /api/keys): valid from now on, billed to its account."""
        self.key_accounts[key] = account

    def key_ok(self, offered: str) -> bool:
        """Configured keys match exactly (constant time, every key compared); with none configured, a vendor that
        always demands a key accepts any in its documented format, so clients can start without setup."""
        raw = offered.encode()
        if key_matches(raw, [k.encode() for k in self.key_accounts]):  # keys issued at run time
            return True
        if self.keys:
            return key_matches(raw, self.keys)
        prefix = self.profile.key_prefix or ""
        return len(offered) > len(prefix) and offered.startswith(prefix)

    @property
    def auth_on(self) -> bool:
        return bool(self.keys) or self.profile.auth_required

    # ------------------------------------------------------------------ limits and balance

    def account_of(self, key: str) -> str:
        return self.key_accounts.get(key, CONFIGURED_ACCOUNT)

    def limiter(self, key: str) -> Limiter | None:
        """The key's Limiter, its limits brought up to date with its account's plan and add-on."""
        if self.limits is None:
            return None
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = self.limits.new(self.clock)
        wanted = self.limits_for(self.account_of(key))
        if wanted and self._limited.get(key) != wanted:
            limiter.set_limits(wanted)
            self._limited[key] = wanted
        return limiter

    def _plan_of(self, account: str, subscribed: str | None) -> str | None:
        """The plan whose limits and cap apply: the subscribed one; else an account made through register has the
        lowest plan's (`new_account_plan`), configured keys --rate-limit plan=... (or none: their --rate-limit
        windows as given)."""
        if subscribed is not None:
            return subscribed
        if account == CONFIGURED_ACCOUNT:
            asked = self.options.rate_limit.get("plan")
            return asked if isinstance(asked, str) else None
        return (self.profile.vendor.get("accounts") or {}).get("new_account_plan")

    def limits_for(self, account: str) -> dict[str, int] | None:
        """Every window's limit for the account's keys: its plan's times its add-on's multiplier ("Double all rate
        limits", concurrency included). Configured keys without a subscription keep --rate-limit's windows (which
        already hold its plan=...)."""
        if self.limits is None:
            return None
        subscribed, addon = self.ledger.current(account)
        plan = subscribed if account == CONFIGURED_ACCOUNT else self._plan_of(account, subscribed)
        base = dict(self.limits.limits)
        if plan is not None:
            plans = self.profile.vendor.get("plans") or {}
            base.update({k: int(v) for k, v in plans[plan].items() if k in self.limits.windows})
        factor = int(self.ledger.addons[addon]["multiplier"]) if addon else 1
        return {k: v * factor for k, v in base.items()}

    def plan_thinking_budget(self, account: str) -> int | None:
        """The plan table's Thinking Budget for the account, or None (no plan: not capped)."""
        plan = self._plan_of(account, self.ledger.current(account)[0])
        budget = ((self.profile.vendor.get("plans") or {}).get(plan) or {}).get("thinking_budget")
        return int(budget) if budget is not None else None

    def thinking_cap(self, key: str | None) -> int | None:
        return self.plan_thinking_budget(self.account_of(key or ""))

    def wallet_of(self, account: str) -> Wallet:
        return self.ledger.wallet(account)

    def balance(self, key: str) -> float | None:
        return self.ledger.wallet(self.account_of(key)).balance

    def covered(self, key: str) -> bool:
        """A subscription pays for the key's (non-extended) requests."""
        return self.ledger.current(self.account_of(key))[0] is not None

    def charge(self, key: str, model_id: str, usage: Usage, pay_as_you_go: bool = False) -> dict[str, Any]:
        """Record a request's cost by the documented formula, charged to the balance unless a subscription covers
        it (`pay_as_you_go`: never covered, Hontoni's `-1m`)."""
        entry = self.entry(model_id)
        price = [float(p) for p in (entry.get("price") or [0.0, 0.0, 0.0])]
        return self.ledger.charge(self.account_of(key), model_id, usage, price, pay_as_you_go)
