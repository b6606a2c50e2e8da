"""Run registered stream invariants against a live exchange, turning problems into CheckFailed."""

from __future__ import annotations

import json
import math

import pytest

from .expect import expect_no_problems
from .invariants import STREAM_CHECKS, _load
from .invariants.common import chunks, positions
from .registry import fail
from .wire import Exchange


def stream_params(surface: str) -> list:
    """One pytest param per registered invariant of `surface`, carrying its check-id marker."""
    _load()
    return [pytest.param(check_id, id=check_id, marks=pytest.mark.wirecheck(id=check_id))
            for check_id in STREAM_CHECKS.get(surface, {})]


def expect_stream(exchange: Exchange, surface: str, check_id: str) -> None:
    if exchange.error or exchange.timed_out or exchange.status != 200:
        fail(f"no stream to judge: {exchange.describe()}", exchange.evidence())
    problems = STREAM_CHECKS[surface][check_id].fn(exchange.items())
    expect_no_problems(exchange, problems)


# ------------------------------------------------------------------------ live checks beyond the invariants

INCREMENTAL_MIN_EVENTS = 16  # fewer events than this cannot show how a stream is delivered
INCREMENTAL_MIN_SECONDS = 0.1  # a whole stream faster than this is too fast to tell buffered from streamed
INCREMENTAL_MIN_SPREAD = 0.025  # seconds: 16+ events inside this window came from a buffer, not a generator


def require_stream(exchange: Exchange) -> None:
    """Fail unless the exchange produced a complete 200 response to judge."""
    if exchange.error or exchange.timed_out or exchange.status != 200:
        fail(f"no stream to judge: {exchange.describe()}", exchange.evidence())


def media_type(exchange: Exchange) -> str:
    return exchange.content_type.split(";", 1)[0].strip().lower()


def expect_event_stream_type(exchange: Exchange) -> None:
    require_stream(exchange)
    if media_type(exchange) != "text/event-stream":
        fail(f"a stream was sent as Content-Type {exchange.content_type or '(none)'!r}, not text/event-stream",
             exchange.evidence())


def expect_sse_body(exchange: Exchange) -> None:
    """`stream: true` got SSE events, not one JSON document."""
    require_stream(exchange)
    try:
        json.loads(exchange.body)
    except ValueError:
        pass
    else:
        fail(f"`stream: true` was answered with a single JSON body ({exchange.content_type!r}), not an event "
             f"stream", exchange.evidence())
    if not exchange.events():
        fail("`stream: true` was answered with no SSE data events", exchange.evidence())


def expect_terminates(exchange: Exchange, deadline: float) -> None:
    # A body cut at the size cap never ended either (an endless stream on a fast link passes 16 MiB before the
    # deadline); one never sent, or lost to a transport error, shows nothing about how it ends: neither passes.
    if exchange.too_large:
        fail(f"the stream did not end: {exchange.describe()}", exchange.evidence("the stream was cut off"))
    if exchange.error:
        fail(f"no stream to judge: {exchange.describe()}", exchange.evidence())
    if exchange.timed_out:
        fail(f"the stream did not end within the {deadline:g}s deadline ({len(exchange.body)} bytes in "
             f"{len(exchange.chunk_times)} reads)", exchange.evidence("the stream was cut off by the deadline"))


def unasked_usage(items, found: list[int]) -> str:
    """What the chunks at `found` (those carrying usage) look like, in words: a separate `choices: []` chunk,
    usage riding on chunks that carry choices, or both."""
    by_position = dict(chunks(items))
    trailers = [n for n in found if by_position.get(n, {}).get("choices") == []]
    riding = [n for n in found if n not in trailers]
    seen = []
    if trailers:
        seen.append(f"{'a' if len(trailers) == 1 else len(trailers)} `choices: []` usage chunk"
                    f"{'s' if len(trailers) > 1 else ''} (#{', #'.join(map(str, trailers[:3]))}), which clients "
                    f"indexing choices[0] crash on")
    if riding:
        carrying = [n for n, chunk in by_position.items() if isinstance(chunk, dict) and chunk.get("choices")]
        seen.append(f"usage on {len(riding)} of the {len(carrying)} chunks that carry choices ({positions(riding)})")
    return " and ".join(seen)


def expect_usage_absent(exchanges: dict[str, Exchange], usage_positions) -> None:
    """No usage in streams that did not ask for it (`usage_positions(items)` finds the chunks that carry it)."""
    for variant, exchange in exchanges.items():
        require_stream(exchange)
        items = exchange.items()
        found = usage_positions(items)
        if found:
            fail(f"a stream with {variant} (include_usage not true) carries {unasked_usage(items, found)}; OpenAI "
                 f"sends usage only when asked, in one final `choices: []` chunk",
                 exchange.evidence(f"request variant: {variant}"))


def expect_usage_present(exchange: Exchange, usage_positions) -> None:
    require_stream(exchange)
    if not usage_positions(exchange.items()):
        fail("`stream_options: {\"include_usage\": true}` was sent but no chunk carries usage: metering and "
             "token accounting see zero tokens", exchange.evidence())


def delivery_span(times: list[float]) -> float:
    """Seconds between the reads at the 10th and the 90th percentile: how long the bulk took to arrive."""
    if len(times) < 2:
        return 0.0
    last = len(times) - 1
    return times[math.ceil(0.9 * last)] - times[int(0.1 * last)]


def expect_incremental(exchange: Exchange) -> None:
    """Events arrive as they are generated: many reads, spread over time, not one burst at the end."""
    require_stream(exchange)
    events = [it for it in exchange.events() if not it.is_done]
    if len(events) < INCREMENTAL_MIN_EVENTS:
        pytest.skip(f"inconclusive: only {len(events)} events; too short to judge delivery")
    times = exchange.chunk_times
    total = times[-1] if times else exchange.elapsed
    if total < INCREMENTAL_MIN_SECONDS:
        pytest.skip(f"inconclusive: the whole stream of {len(events)} events arrived in {total * 1000:.0f} ms; "
                    f"too fast to tell streamed from buffered")
    span = delivery_span(times)
    if len(times) < 3 or (span < INCREMENTAL_MIN_SPREAD and span < 0.1 * total):
        fail(f"{len(events)} events arrived in {len(times)} read(s) within {span * 1000:.1f} ms, after "
             f"{(times[0] if times else total) * 1000:.0f} ms of silence: the stream was buffered, so users see "
             f"nothing until the answer is complete",
             exchange.evidence(f"read times (s): {', '.join(f'{t:.3f}' for t in times[:40])}"))
