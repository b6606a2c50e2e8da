"""Rolling rate-limit windows (reference_server/vendors/limits.py) on a fake clock: each Hontoni window, sliding
release, exact and honoured retry-after, concurrency, token windows, remaining/reset headers, plan changes and
the memory bound."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from wirecheck.reference_server.vendors.limits import LimitSettings, Limiter, Verdict, settings
from wirecheck.spec.profiles import load_profile

T0 = 1_800_000_000.0
HONTONI_WINDOWS = [("rpm", 60), ("per_5h", 18_000), ("daily", 86_400), ("weekly", 604_800), ("monthly", 2_592_000)]


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(profile: str | None, clock: Clock, **limits: int) -> Limiter:
    """A key's Limiter for a profile (None: OpenAI's header names), the profile's defaults but for `limits`."""
    made = settings(load_profile(profile).vendor if profile else {}, dict(limits))
    assert made is not None
    return made.new(clock)


def send(lim: Limiter) -> Verdict:
    """One request answered at once: admitted requests are released, so concurrency stays out of the way."""
    verdict = lim.admit()
    if verdict.allowed:
        lim.release()
    return verdict


def wait_out(lim: Limiter, clock: Clock, refused: Verdict) -> None:
    """retry_after is exact: a second short of it the request is still refused, at it the request is admitted."""
    start = clock.now
    clock.now = start + refused.retry_after - 1
    assert not send(lim).allowed, f"admitted a second before retry-after {refused.retry_after}"
    clock.now = start + refused.retry_after
    assert send(lim).allowed, f"refused after waiting retry-after {refused.retry_after}"


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(("window", "seconds"), HONTONI_WINDOWS)
def test_hontoni_window_frees_exactly_when_the_oldest_request_leaves(window: str, seconds: int) -> None:
    clock = Clock()
    lim = limiter("hontoni", clock, **{window: 3})
    for step in range(3):
        clock.now = T0 + step
        assert send(lim).allowed
    assert send(lim) == Verdict(False, window, seconds - 2)
    clock.now = T0 + seconds - 1
    assert send(lim) == Verdict(False, window, 1)  # one second before the oldest leaves: still full
    clock.now = T0 + seconds
    assert send(lim).allowed
    assert send(lim) == Verdict(False, window, 1)  # only the oldest left; the next leaves a second later


def test_requests_spread_over_the_window_free_one_at_a_time() -> None:
    clock = Clock()
    lim = limiter(None, clock, rpm=3)
    for at in (0, 20, 40):
        clock.now = T0 + at
        assert send(lim).allowed
    clock.now = T0 + 60  # a fixed window would be empty again here; a rolling one has freed one slot
    assert send(lim).allowed
    assert send(lim) == Verdict(False, "rpm", 20)
    assert lim.header_values()["x-ratelimit-remaining-requests"] == "0"
    clock.now = T0 + 80
    assert send(lim).allowed and not send(lim).allowed


def test_rounding_is_conservative_for_fractional_times() -> None:
    clock = Clock(T0 + 0.3)
    lim = limiter(None, clock, rpm=1)
    assert send(lim).allowed
    clock.now = T0 + 60.5  # 60.2 s after the request: counted until the whole second after T0 + 60.3
    assert send(lim) == Verdict(False, "rpm", 1)
    clock.now = T0 + 61
    assert send(lim).allowed


def test_two_full_windows_name_the_longer_wait_and_retrying_after_it_is_admitted() -> None:
    clock = Clock()
    lim = limiter("hontoni", clock, rpm=2, per_5h=3)
    assert send(lim).allowed
    clock.now = T0 + 1
    assert send(lim).allowed
    clock.now = T0 + 30
    assert send(lim) == Verdict(False, "rpm", 30)
    clock.now += 30
    assert send(lim).allowed
    # Now rpm frees in 1 s but per_5h only when T0's request leaves it: the refusal names per_5h.
    refused = send(lim)
    assert refused == Verdict(False, "per_5h", 18_000 - 60)
    wait_out(lim, clock, refused)


def test_retry_after_is_exact_and_honoured_over_an_uneven_schedule() -> None:
    clock = Clock()
    lim = limiter("hontoni", clock, rpm=5, per_5h=12)
    gaps = [0.0, 0.4, 3.0, 0.7, 11.2, 0.1, 25.0, 1.5, 7.3, 0.0, 2.2, 40.0]
    refusals = 0
    for step in range(120):
        clock.now += gaps[step % len(gaps)]
        verdict = send(lim)
        if not verdict.allowed:
            refusals += 1
            wait_out(lim, clock, verdict)
    assert refusals > 10


def test_concurrency_refuses_at_its_cap_until_a_release() -> None:
    clock = Clock()
    lim = limiter("hontoni", clock, concurrent=2)
    assert lim.admit().allowed and lim.admit().allowed
    assert lim.admit() == Verdict(False, "concurrent", 1)
    assert lim.header_values()["X-RateLimit-Concurrent-Active"] == "2"
    lim.release()
    assert lim.admit().allowed
    lim.set_limits({"rpm": 3})  # rpm full as well: its wait is the longer one
    assert lim.admit() == Verdict(False, "rpm", 60)


def test_token_window_rolls_and_refuses_until_enough_tokens_leave() -> None:
    clock = Clock()
    lim = limiter("hoonify", clock, tpm=100)
    assert send(lim).allowed
    lim.charge_tokens(60)
    clock.now = T0 + 10
    assert send(lim).allowed
    lim.charge_tokens(50)  # usage is counted after the answer: the window runs over
    assert lim.header_values()["x-ratelimit-remaining-tokens"] == "0"
    refused = send(lim)
    assert refused == Verdict(False, "tpm", 50)
    wait_out(lim, clock, refused)  # at T0 + 60 the first answer's 60 tokens leave
    assert lim.header_values()["x-ratelimit-remaining-tokens"] == "50"
    lim.charge_tokens(250)  # far over: refused until all of it has rolled out
    assert send(lim) == Verdict(False, "tpm", 60)


def test_remaining_and_reset_duration_follow_the_window() -> None:
    clock = Clock()
    lim = limiter(None, clock, rpm=3)

    def headers() -> tuple[str, str]:
        values = lim.header_values()
        return values["x-ratelimit-remaining-requests"], values["x-ratelimit-reset-requests"]

    assert headers() == ("3", "0s")  # an empty window resets now
    assert send(lim).allowed
    clock.now = T0 + 10
    assert send(lim).allowed
    assert headers() == ("1", "60s")  # reset: when the window is wholly empty, not when the next slot frees
    clock.now = T0 + 30
    assert headers() == ("1", "40s")
    clock.now = T0 + 60
    assert headers() == ("2", "10s")
    clock.now = T0 + 70
    assert headers() == ("3", "0s")


def test_reset_iso_and_seconds() -> None:
    clock = Clock()
    hoonify = limiter("hoonify", clock)
    assert hoonify.header_values()["x-ratelimit-reset-requests"] == iso(T0)
    assert send(hoonify).allowed
    clock.now = T0 + 5
    assert hoonify.header_values()["x-ratelimit-reset-requests"] == iso(T0 + 60)
    plain = LimitSettings({"rpm": {"seconds": 60, "counts": "requests"}}, {"rpm": 2},
                          {"reset": "reset-s rpm", "left": "remaining rpm"}).new(clock)
    assert plain.header_values() == {"reset": "0", "left": "2"}
    assert send(plain).allowed
    clock.now = T0 + 5.5
    assert plain.header_values() == {"reset": "60", "left": "1"}  # counted from second T0 + 6, whole seconds


def test_set_limits_raises_and_lowers_mid_window_keeping_the_count() -> None:
    clock = Clock()
    lim = limiter(None, clock, rpm=3)
    for step in range(3):
        clock.now = T0 + step
        assert send(lim).allowed
    assert not send(lim).allowed
    lim.set_limits({"rpm": 5})  # an add-on: two more fit at once
    assert lim.header_values()["x-ratelimit-limit-requests"] == "5"
    clock.now = T0 + 3
    assert send(lim).allowed
    clock.now = T0 + 4
    assert send(lim).allowed
    assert not send(lim).allowed
    lim.set_limits({"rpm": 2})  # a downgrade: five counted, so four must leave before the next fits
    assert lim.header_values()["x-ratelimit-remaining-requests"] == "0"
    refused = send(lim)
    assert refused == Verdict(False, "rpm", 59)
    wait_out(lim, clock, refused)
    for bad in ({"tpd": 5}, {"rpm": -1}):
        with pytest.raises(ValueError):
            lim.set_limits(bad)
    assert lim.windows["rpm"].limit == 2
    lim.set_limits({"rpm": 0})  # a limit of 0 never admits; retry-after says the window's length
    clock.now = T0 + 1_000
    assert send(lim) == Verdict(False, "rpm", 60)


def test_memory_stays_bounded_by_seconds_with_activity() -> None:
    clock = Clock()
    huge = {name: 1_000_000 for name, _ in HONTONI_WINDOWS}
    lim = limiter("hontoni", clock, **huge)
    admitted = 0
    for i in range(200_000):  # 100 requests a second for 2,000 s
        clock.now = T0 + i / 100
        admitted += send(lim).allowed
    assert admitted == 200_000
    for name, seconds in HONTONI_WINDOWS:
        window = lim.windows[name]
        assert len(window.buckets) <= min(2_001, seconds + 1), name
        assert window.used == sum(held for _, held in window.buckets)
    assert lim.windows["monthly"].used == 200_000
    assert lim.header_values()["X-RateLimit-Remaining-Monthly"] == "800000"
