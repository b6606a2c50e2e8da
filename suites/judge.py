"""Pure judgements over response bodies, shared by the request/response checks (no I/O, unit-tested).

Each function takes what came off the wire (decoded JSON, headers, SSE items) and returns problems as plain
sentences (empty = it holds), or a small verdict, so the checks stay short and the logic is testable offline.
"""

from __future__ import annotations

import base64
import email.utils
import json
import math
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wirecheck import spec
from wirecheck.spec.sse import SSEItem

# Chat-template control tokens that leak into `content` when a server detokenises with special tokens kept.
TEMPLATE_TOKENS = ("<|im_end|>", "<|im_start|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>",
                   "<|end|>", "<end_of_turn>", "<|start_header_id|>")

RETRY_AFTER_MAX = 120.0  # the openai SDK ignores (and stops retrying on) a Retry-After above two minutes


# ------------------------------------------------------------------------------------------ schema, usage


def schema_problems(name: str, instance: Any, *, strict: bool = False, where: str = "") -> list[str]:
    """Spec violations of `instance` as component `name`, one sentence each."""
    prefix = f"{where}: " if where else ""
    return [prefix + (f"{e.param}: {e.message}" if e.param else e.message)
            for e in spec.errors(name, instance, strict=strict)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def usage_problems(usage: Any, *, completion_expected: bool = True) -> list[str]:
    """`usage` holds non-negative integer counts with total = prompt + completion."""
    if not isinstance(usage, Mapping):
        return [f"usage is {type(usage).__name__}, not an object"]
    problems = []
    keys = ("prompt_tokens", "completion_tokens", "total_tokens") if completion_expected else (
        "prompt_tokens", "total_tokens")
    for key in keys:
        if not _is_int(usage.get(key)) or usage[key] < 0:
            problems.append(f"usage.{key} is {usage.get(key)!r}, not a non-negative integer")
    if problems:
        return problems
    completion = usage["completion_tokens"] if completion_expected else 0
    if usage["total_tokens"] != usage["prompt_tokens"] + completion:
        problems.append(f"usage.total_tokens {usage['total_tokens']} != prompt_tokens {usage['prompt_tokens']}"
                        + (f" + completion_tokens {completion}" if completion_expected else ""))
    if usage["prompt_tokens"] == 0:
        problems.append("usage.prompt_tokens is 0 for a non-empty prompt")
    details = usage.get("completion_tokens_details")
    if completion_expected and isinstance(details, Mapping):
        reasoning = details.get("reasoning_tokens")
        if _is_int(reasoning) and reasoning > usage["completion_tokens"]:
            problems.append(f"completion_tokens_details.reasoning_tokens {reasoning} exceeds completion_tokens "
                            f"{usage['completion_tokens']}")
    return problems


# ----------------------------------------------------------------------------------------------- stops


def pick_stop(text: str, length: int = 5, min_text: int = 10) -> tuple[str, str] | None:
    """A stop string taken from the middle of `text`, and the text expected before it.

    The stop string starts past the first character (so the expected output is non-empty), holds at least one
    non-space character, and is cut at its first occurrence (that is where a server must stop). None when
    `text` is too short to choose one.
    """
    if len(text) < min_text:
        return None
    for start in sorted(range(1, len(text) - 1), key=lambda i: abs(i - len(text) * 2 // 5)):
        stop = text[start:start + length]
        if len(stop) < 2 or not stop.strip():
            continue
        first = text.find(stop)
        if first <= 0:
            continue
        return stop, text[:first]
    return None


@dataclass
class Verdict:
    result: str  # pass | fail | inconclusive
    message: str = ""


def stop_verdict(stop: str, expected: str, content: str | None, finish_reason: Any) -> Verdict:
    """Judge a re-run with `stop` against the greedy output it was taken from (`expected` precedes it): the
    output must be `expected` itself, never keep the stop string or any start of it, and end with
    finish_reason "stop"."""
    content = content or ""
    if stop in content:
        return Verdict("fail", f"the stop string {stop!r} appears in the output: {content[:200]!r}")
    kept = content[len(expected):] if expected and content.startswith(expected) else ""
    if kept and stop.startswith(kept):
        return Verdict("fail", f"the output keeps the first {len(kept)} of the stop string's {len(stop)} characters: "
                               f"it ends {content[-60:]!r} where it should end {expected[-60:]!r}, before {stop!r}")
    if content == expected or (content.rstrip() == expected.rstrip() and content):
        if finish_reason == "stop":
            return Verdict("pass")
        return Verdict("fail", f"the output stopped before {stop!r} as expected but finish_reason is "
                               f"{finish_reason!r}, not 'stop'")
    return Verdict("inconclusive", f"the output diverged from the first greedy run ({content[:80]!r} vs "
                                   f"{expected[:80]!r}, finish_reason {finish_reason!r}), so where it stopped "
                                   f"cannot be compared")


def template_token_leaks(text: str | None) -> list[str]:
    """Control tokens in `text`; `</s>` only at the very end (elsewhere it is HTML's strikethrough end tag)."""
    text = text or ""
    return [t for t in TEMPLATE_TOKENS if (text.rstrip().endswith(t) if t == "</s>" else t in text)]


# ------------------------------------------------------------------------------------------ logprobs


def chat_logprob_problems(logprobs: Any, top_n: int, content: str | None, *, strict: bool = False) -> list[str]:
    """A chat choice's `logprobs` for a request with logprobs=true, top_logprobs=top_n."""
    if not isinstance(logprobs, Mapping):
        return [f"choice.logprobs is {logprobs!r}; logprobs were requested"]
    entries = logprobs.get("content")
    if not isinstance(entries, list):
        return [f"logprobs.content is {entries!r}, not a list"]
    if content and not entries:
        return ["logprobs.content is empty for a non-empty output"]
    problems: list[str] = []
    joined = b""
    all_bytes = True
    for i, entry in enumerate(entries):
        where = f"logprobs.content[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where} is not an object")
            continue
        problems += _token_problems(entry, where)
        top = entry.get("top_logprobs")
        if not isinstance(top, list):
            problems.append(f"{where}.top_logprobs is {top!r}, not a list")
            continue
        if len(top) > top_n or (top_n and not top) or (strict and len(top) != top_n):
            problems.append(f"{where}.top_logprobs has {len(top)} entries; {top_n} were requested")
        for j, alt in enumerate(top):
            if isinstance(alt, Mapping):
                problems += _token_problems(alt, f"{where}.top_logprobs[{j}]")
        values = [alt.get("logprob") for alt in top if isinstance(alt, Mapping)]
        if all(isinstance(v, (int, float)) for v in values) and values != sorted(values, reverse=True):
            problems.append(f"{where}.top_logprobs are not sorted by logprob, most likely first")
        if isinstance(entry.get("bytes"), list):
            joined += bytes(b for b in entry["bytes"] if _is_int(b) and 0 <= b <= 255)
        else:
            all_bytes = False
    if entries and all_bytes and content is not None:
        text = joined.decode("utf-8", errors="replace")
        if text != content:
            problems.append(f"the tokens' bytes join to {text[:80]!r}, not the content {content[:80]!r}")
    return problems


def _token_problems(entry: Mapping[str, Any], where: str) -> list[str]:
    problems = []
    token = entry.get("token")
    logprob = entry.get("logprob")
    raw = entry.get("bytes")
    if not isinstance(token, str):
        problems.append(f"{where}.token is {token!r}, not a string")
    if not isinstance(logprob, (int, float)) or isinstance(logprob, bool) or not logprob <= 0:
        problems.append(f"{where}.logprob is {logprob!r}, not a number <= 0")
    if raw is None:
        return problems
    if not isinstance(raw, list) or not all(_is_int(b) and 0 <= b <= 255 for b in raw):
        return problems + [f"{where}.bytes is {raw!r}, not a list of byte values"]
    if isinstance(token, str) and not token.startswith("bytes:") and bytes(raw) != token.encode("utf-8"):
        problems.append(f"{where}.bytes {raw} are not the UTF-8 bytes of the token {token!r}")
    return problems


def completion_logprob_problems(logprobs: Any, k: int, text: str) -> list[str]:
    """A legacy completions choice's `logprobs` for a request with logprobs=k."""
    if not isinstance(logprobs, Mapping):
        return [f"choice.logprobs is {logprobs!r}; logprobs were requested"]
    lists = {key: logprobs.get(key) for key in ("tokens", "token_logprobs", "top_logprobs", "text_offset")}
    problems = [f"logprobs.{key} is {value!r}, not a list" for key, value in lists.items()
                if not isinstance(value, list)]
    if problems:
        return problems
    tokens, values, tops, offsets = (lists[k_] for k_ in ("tokens", "token_logprobs", "top_logprobs", "text_offset"))
    lengths = {key: len(value) for key, value in lists.items()}
    if len(set(lengths.values())) != 1:
        return [f"logprobs lists differ in length: {lengths}"]
    if text and not tokens:
        return ["logprobs.tokens is empty for a non-empty text"]
    for i, (token, value, top, offset) in enumerate(zip(tokens, values, tops, offsets)):
        if not isinstance(token, str):
            problems.append(f"logprobs.tokens[{i}] is {token!r}, not a string")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value <= 0:
            problems.append(f"logprobs.token_logprobs[{i}] is {value!r}, not a number <= 0")
        if not isinstance(top, Mapping) or len(top) > k or (k and not top):
            problems.append(f"logprobs.top_logprobs[{i}] is {top!r}; a map of up to {k} tokens was requested")
        elif not all(isinstance(v, (int, float)) and v <= 0 for v in top.values()):
            problems.append(f"logprobs.top_logprobs[{i}] holds values that are not logprobs <= 0: {top!r}")
        if not _is_int(offset) or offset < 0:
            problems.append(f"logprobs.text_offset[{i}] is {offset!r}, not a non-negative integer")
    ints = [o for o in offsets if _is_int(o)]
    if ints != sorted(ints):
        problems.append(f"logprobs.text_offset is not non-decreasing: {offsets[:20]}")
    if tokens and all(isinstance(t, str) and not t.startswith("bytes:") for t in tokens):
        joined = "".join(tokens)
        if not text.endswith(joined):
            problems.append(f"the tokens join to {joined[:80]!r}, which does not end the text {text[:80]!r}")
    return problems


# ------------------------------------------------------------------------------------------- embeddings


def decode_base64_floats(value: str) -> list[float]:
    """Base64 of little-endian float32 values, as OpenAI sends embeddings with encoding_format=base64."""
    raw = base64.b64decode(value, validate=True)
    if len(raw) % 4:
        raise ValueError(f"{len(raw)} bytes is not a whole number of float32 values")
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def max_abs_diff(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b):
        return math.inf
    return max((abs(x - y) for x, y in zip(a, b)), default=0.0)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b) or not a:
        return -2.0
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else -2.0


def nearest(vector: Sequence[float], candidates: Sequence[Sequence[float]]) -> int:
    """Index of the candidate most similar (cosine) to `vector`."""
    scores = [cosine(vector, c) for c in candidates]
    return max(range(len(scores)), key=scores.__getitem__)


# ----------------------------------------------------------------------------------------------- errors


def envelope_problems(status: int, content_type: str, body: bytes, *, strict: bool = False) -> list[str]:
    """An error response must be JSON `{"error": {"message", "type", "param", "code"}}` (OpenAI's envelope)."""
    problems = []
    if "json" not in content_type.lower():
        problems.append(f"HTTP {status} error has content type {content_type!r}, not application/json")
    try:
        value = json.loads(body)
    except ValueError:
        snippet = body[:120].decode("utf-8", errors="replace")
        return problems + [f"HTTP {status} error body is not JSON: {snippet!r}"]
    if isinstance(value, Mapping) and "detail" in value and "error" not in value:
        return problems + [f"HTTP {status} error is FastAPI's {{\"detail\": ...}} shape, not {{\"error\": {{...}}}}"]
    if isinstance(value, Mapping) and "error" not in value and "message" in value:
        return problems + [f"HTTP {status} error is a flat object {sorted(value)[:6]}, not wrapped in \"error\""]
    return problems + schema_problems("ErrorResponse", value, strict=strict, where=f"HTTP {status} error")


def error_field(body: bytes, key: str) -> Any:
    try:
        value = json.loads(body)
        return value["error"][key]
    except (ValueError, KeyError, TypeError):
        return None


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, read as the openai SDK does: retry-after-ms, then retry-after (seconds or an HTTP date)."""
    lower = {k.lower(): v for k, v in headers.items()}
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = lower.get(name)
        if value is None:
            continue
        try:
            return float(value) / divisor
        except ValueError:
            continue
    value = lower.get("retry-after")
    if value is None:
        return None
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return float(email.utils.mktime_tz(parsed) - (time.time() if now is None else now))


def retry_after_problems(status: int, headers: Mapping[str, str]) -> list[str]:
    """A 429/503 must say when to retry in a form the SDK reads, within the SDK's two-minute ceiling."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "retry-after" not in lower and "retry-after-ms" not in lower:
        return [f"HTTP {status} without Retry-After (or retry-after-ms): clients back off blindly"]
    delay = parse_retry_after(lower)
    if delay is None or not math.isfinite(delay):
        return [f"HTTP {status} Retry-After {lower.get('retry-after')!r} is not seconds or an HTTP date"]
    if delay > RETRY_AFTER_MAX:
        return [f"HTTP {status} Retry-After is {delay:.0f}s; the openai SDK gives up above {RETRY_AFTER_MAX:.0f}s"]
    if delay < 0:
        return [f"HTTP {status} Retry-After lies in the past ({delay:.0f}s)"]
    return []


# ----------------------------------------------------------------------------------------------- streams


@dataclass
class StreamedChoice:
    roles: list[Any] = field(default_factory=list)
    content: str = ""
    finish_reasons: list[Any] = field(default_factory=list)

    @property
    def finish_reason(self) -> Any:
        return self.finish_reasons[-1] if self.finish_reasons else None


def assemble(items: Iterable[SSEItem], surface: str = "chat") -> dict[int, StreamedChoice]:
    """Per choice index: roles seen, concatenated text, finish reasons (chat deltas or completions text)."""
    out: dict[int, StreamedChoice] = {}
    for item in items:
        if item.kind != "event" or not item.has_data or item.is_done:
            continue
        try:
            chunk = json.loads(item.data)
        except ValueError:
            continue
        if not isinstance(chunk, Mapping):
            continue
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, Mapping) or not _is_int(choice.get("index", 0)):
                continue
            acc = out.setdefault(choice.get("index", 0), StreamedChoice())
            if surface == "chat":
                delta = choice.get("delta") or {}
                if isinstance(delta, Mapping):
                    if "role" in delta:
                        acc.roles.append(delta["role"])
                    if isinstance(delta.get("content"), str):
                        acc.content += delta["content"]
            elif isinstance(choice.get("text"), str):
                acc.content += choice["text"]
            if choice.get("finish_reason") is not None:
                acc.finish_reasons.append(choice["finish_reason"])
    return out
