"""Per-request records (one line of requests.jsonl) and the metrics derived from one record.

Formulas (the report prints them; research/load.md 6.1):
  ttfb  = t_headers - t_send                      time to response headers (diagnostic)
  ttft  = t_first_token - t_send                  first event carrying text, reasoning or tool arguments
  ttfo  = t_first_content - t_send                first non-reasoning output
  e2el  = t_last_token - t_send                   end-to-end latency to the last token
  tpot  = (t_last_token - t_first_token) / (n_out - 1), n_out >= 2
  icl   = t_i - t_(i-1) over consecutive token events, pooled (vLLM "ITL", AIPerf "ICL")
  ntpot = e2el / n_out
  tokens_per_event = n_out / token events
n_out is the server's usage count when it sent one, else the number of token events.
t_send is when the request reached the network (its connection's start, else its first byte on the socket);
the client's time before that is kept apart as prep_ns.
"""

from __future__ import annotations

from dataclasses import dataclass

from .profiles import Parsed
from .timing import TimedStream

NS_PER_MS = 1_000_000


def stream_record(*, profile: str, stage: int, worker: str, request_id: str | None, send_ns: int,
                  lag_ns: int | None, status: int, headers_ns: int, timed: TimedStream, parsed: Parsed,
                  t_send: int, done_ns: int, max_tokens: int | None, error: str | None,
                  prep_ns: int | None = None) -> dict:
    """One record from a finished streamed response; all times relative to ``t_send`` (perf ns): the moment the
    request's first byte was written to the socket. ``prep_ns`` is the client's own time before that (building
    the request, taking a pooled connection), kept apart so load-generator overhead is not counted as latency."""
    times = [timed.events[i][0] - t_send for i in parsed.token_events]
    content = [timed.events[i][0] - t_send for i in parsed.content_events]
    error = error or parsed.error or (None if parsed.complete else "stream ended without its terminal event")
    return {
        "v": 1, "profile": profile, "stage": stage, "worker": worker, "request_id": request_id,
        "send_ns": send_ns, "lag_ns": lag_ns, "status": status, "ok": status == 200 and error is None,
        "error": error, "headers_ns": headers_ns,
        "first_token_ns": times[0] if times else None, "first_content_ns": content[0] if content else None,
        "last_token_ns": times[-1] if times else None, "done_ns": done_ns,
        "events": [[t, 1] for t in times], "n_events": len(times),
        "usage_out": parsed.usage_out, "usage_in": parsed.usage_in, "bytes": timed.bytes,
        "max_tokens": max_tokens, "prep_ns": prep_ns,
    }


def body_record(*, profile: str, stage: int, worker: str, request_id: str | None, send_ns: int,
                lag_ns: int | None, status: int, headers_ns: int, done_ns: int, parsed: Parsed | None,
                nbytes: int, max_tokens: int | None, error: str | None, prep_ns: int | None = None) -> dict:
    """A non-streamed response: its first and last token arrive with the whole body."""
    ok = status == 200 and error is None and parsed is not None and parsed.complete
    if status == 200 and error is None and not ok:
        error = "response body lacks its result"
    return {
        "v": 1, "profile": profile, "stage": stage, "worker": worker, "request_id": request_id,
        "send_ns": send_ns, "lag_ns": lag_ns, "status": status, "ok": ok, "error": error,
        "headers_ns": headers_ns, "first_token_ns": done_ns if ok else None,
        "first_content_ns": done_ns if ok else None, "last_token_ns": done_ns if ok else None,
        "done_ns": done_ns, "events": [[done_ns, 1]] if ok else [], "n_events": 1 if ok else 0,
        "usage_out": parsed.usage_out if parsed else None, "usage_in": parsed.usage_in if parsed else None,
        "bytes": nbytes, "max_tokens": max_tokens, "prep_ns": prep_ns,
    }


def failed_record(*, profile: str, stage: int, worker: str, send_ns: int, lag_ns: int | None, status: int,
                  headers_ns: int | None, done_ns: int, error: str, max_tokens: int | None,
                  prep_ns: int | None = None) -> dict:
    return {
        "v": 1, "profile": profile, "stage": stage, "worker": worker, "request_id": None, "send_ns": send_ns,
        "lag_ns": lag_ns, "status": status, "ok": False, "error": error, "headers_ns": headers_ns,
        "first_token_ns": None, "first_content_ns": None, "last_token_ns": None, "done_ns": done_ns,
        "events": [], "n_events": 0, "usage_out": None, "usage_in": None, "bytes": 0, "max_tokens": max_tokens,
        "prep_ns": prep_ns,
    }


@dataclass(frozen=True)
class Metrics:
    """One request's derived figures in milliseconds (None where undefined)."""

    ttfb_ms: float | None
    ttft_ms: float | None
    ttfo_ms: float | None
    e2el_ms: float | None
    tpot_ms: float | None
    ntpot_ms: float | None
    icl_ms: list[float]
    n_out: int
    tokens_per_event: float | None
    schedule_lag_ms: float | None


def _ms(ns: int | None) -> float | None:
    return None if ns is None else ns / NS_PER_MS


def output_tokens(record: dict) -> int:
    """Server usage when reported, else the count of token events."""
    usage = record.get("usage_out")
    return usage if isinstance(usage, int) else record["n_events"]


def metrics(record: dict) -> Metrics:
    times = [t for t, _ in record["events"]]
    n_out = output_tokens(record)
    first, last = record["first_token_ns"], record["last_token_ns"]
    tpot = (last - first) / (n_out - 1) / NS_PER_MS if first is not None and last is not None and n_out >= 2 else None
    e2el = _ms(last)
    return Metrics(
        ttfb_ms=_ms(record["headers_ns"]), ttft_ms=_ms(first), ttfo_ms=_ms(record["first_content_ns"]),
        e2el_ms=e2el, tpot_ms=tpot, ntpot_ms=e2el / n_out if e2el is not None and n_out > 0 else None,
        icl_ms=[(b - a) / NS_PER_MS for a, b in zip(times, times[1:])], n_out=n_out,
        tokens_per_event=n_out / record["n_events"] if record["n_events"] else None,
        schedule_lag_ms=_ms(record.get("lag_ns")),
    )
