"""What a conformant response to a given request looks like: pure functions returning problem strings.

Shared by the schemathesis fuzz (`suites/test_schema_fuzz.py`) and the property checks
(`suites/test_properties.py`). Two layers:

* schema: every JSON body and every SSE chunk validates against the spec component the OpenAPI document
  names for it (`--strict` adds `x-wirecheck-strict-required`), and a stream ends with `data: [DONE]`;
* semantics: what the *request* implies for a successful answer -- `n` choices with indexes 0..n-1, one
  finish_reason per choice from the enum, usage arithmetic and token bounds, no stop string in the output,
  logprobs exactly when asked, a usage trailer exactly when `stream_options.include_usage` asked for one.

An empty list means conformant. Problems name the field (`choices[1].finish_reason`) and quote the value.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from wirecheck import spec
from wirecheck.spec import sse

MAX_PROBLEMS = 20


def _show(value: Any, limit: int = 80) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def schema_problems(component: str, instance: Any, *, strict: bool = False, where: str = "body") -> list[str]:
    """Every spec violation of `instance` as `component` (one per offending field)."""
    return [f"{where}: {e.message}" for e in spec.errors(component, instance, strict=strict)]


# ------------------------------------------------------------------------------------------- streams


@dataclass
class Stream:
    """A streamed body taken apart: JSON chunks before [DONE], in-band errors, and framing problems."""

    chunks: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)  # in-band {"error": {...}} payloads
    problems: list[str] = field(default_factory=list)
    done: bool = False


def split_stream(body: bytes) -> Stream:
    """Framing as clients need it: every data event is JSON or the final `[DONE]`, nothing after it."""
    out = Stream()
    events = [it for it in sse.parse(body) if it.kind == "event"]
    for i, item in enumerate(events):
        if not item.complete:
            out.problems.append(f"event {i} is not terminated by a blank line: {item.raw[:80]!r}")
            continue
        if not item.has_data:
            out.problems.append(f"event {i} carries no data line (clients json-decode it): {item.raw[:80]!r}")
            continue
        if out.done:
            out.problems.append(f"event {i} comes after `data: [DONE]`: {item.data[:80]!r}")
            continue
        if item.is_done:
            out.done = True
            continue
        try:
            value = json.loads(item.data)
        except ValueError:
            out.problems.append(f"event {i}: data is not JSON: {item.data[:80]!r}")
            continue
        if not isinstance(value, dict):
            out.problems.append(f"event {i}: data is JSON but not an object: {item.data[:80]!r}")
        elif "error" in value and "choices" not in value:
            out.errors.append(value)
        else:
            out.chunks.append(value)
    if not out.done:
        out.problems.append("the stream does not end with `data: [DONE]`")
    return out


def typed_stream_schema_problems(body: bytes, event_component: str, *, strict: bool = False) -> list[str]:
    """A typed-event stream (Anthropic messages, OpenAI Responses: named events, no [DONE]): every data event is
    one JSON object valid under `event_component`, whose own rules cover its error events."""
    problems = []
    events = [it for it in sse.parse(body) if it.kind == "event"]
    for i, item in enumerate(events):
        if not item.complete or not item.has_data:
            problems.append(f"event {i} is not a terminated data event: {item.raw[:80]!r}")
            continue
        try:
            value = json.loads(item.data)
        except ValueError:
            problems.append(f"event {i}: data is not JSON: {item.data[:80]!r}")
            continue
        problems += schema_problems(event_component, value, strict=strict, where=f"event {i}")
    return problems[:MAX_PROBLEMS]


def stream_schema_problems(body: bytes, chunk_component: str, *, strict: bool = False) -> list[str]:
    """Framing, then each chunk against `chunk_component` and each in-band error against ErrorResponse (typed-event
    streams, whose component is a `...StreamEvent`, by typed_stream_schema_problems)."""
    if chunk_component.endswith("StreamEvent"):
        return typed_stream_schema_problems(body, chunk_component, strict=strict)
    stream = split_stream(body)
    problems = list(stream.problems)
    for i, chunk in enumerate(stream.chunks):
        problems += schema_problems(chunk_component, chunk, strict=strict, where=f"chunk {i}")
    for error in stream.errors:
        problems += schema_problems("ErrorResponse", error, strict=strict, where="in-band error")
    return problems[:MAX_PROBLEMS]


# ------------------------------------------------------------------------------------- request facts


def stops_of(request: dict[str, Any]) -> list[str]:
    stop = request.get("stop")
    items = [stop] if isinstance(stop, str) else list(stop or [])
    return [s for s in items if isinstance(s, str) and s]


def chat_token_limit(request: dict[str, Any]) -> int | None:
    limit = request.get("max_completion_tokens")
    return request.get("max_tokens") if limit is None else limit


def prompt_count(prompt: Any) -> int:
    """How many prompts a completions `prompt` holds (OpenAI's four forms; null is one empty prompt)."""
    if prompt is None or isinstance(prompt, str):
        return 1
    if prompt and all(isinstance(x, int) for x in prompt):
        return 1
    return len(prompt)


def usage_problems(usage: Any, *, choices: int, max_tokens: int | None, min_tokens: int = 0,
                   where: str = "usage") -> list[str]:
    if not isinstance(usage, dict):
        return [f"{where} is {_show(usage)}, not an object"]
    prompt, completion, total = (usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens"))
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (prompt, completion, total)):
        return [f"{where} token counts are not all integers: {_show(usage)}"]
    problems = []
    if total != prompt + completion:
        problems.append(f"{where}.total_tokens {total} != prompt_tokens {prompt} + completion_tokens {completion}")
    if max_tokens is not None and completion > choices * max_tokens:
        problems.append(f"{where}.completion_tokens {completion} exceeds {choices} choice(s) x {max_tokens} "
                        "max tokens")
    if min_tokens and completion < choices * min_tokens:
        problems.append(f"{where}.completion_tokens {completion} is below {choices} choice(s) x min_tokens "
                        f"{min_tokens}")
    return problems


def _index_problems(indexes: list[Any], expected: int, where: str) -> list[str]:
    if sorted(i for i in indexes if isinstance(i, int)) != list(range(expected)):
        return [f"{where} indexes are {_show(indexes)}; expected each of 0..{expected - 1} once"]
    return []


def _stop_problems(text: Any, stops: list[str], where: str) -> list[str]:
    if not isinstance(text, str):
        return []
    return [f"{where} contains the stop string {s!r}: {_show(text)}" for s in stops if s in text]


# ---------------------------------------------------------------------------------------------- chat


def chat_response_problems(request: dict[str, Any], body: Any, *, strict: bool = False) -> list[str]:
    """A non-streamed chat completion for `request` (a valid, tool-free request)."""
    problems = schema_problems("CreateChatCompletionResponse", body, strict=strict)
    if problems or not isinstance(body, dict):
        return problems
    n = request.get("n") or 1
    choices = body["choices"]
    problems += _index_problems([c.get("index") for c in choices], n, "choices")
    stops = [] if request.get("min_tokens") else stops_of(request)
    top = request.get("top_logprobs") or 0
    for i, choice in enumerate(choices):
        where = f"choices[{i}]"
        message = choice["message"]
        if choice["finish_reason"] not in ("stop", "length", "content_filter"):
            problems.append(f"{where}.finish_reason is {choice['finish_reason']!r} although no tools were offered")
        withheld = message.get("refusal") or choice["finish_reason"] == "content_filter"
        if message.get("content") is None and not withheld:
            problems.append(f"{where}.message.content is null with no refusal and no tool calls")
        problems += _stop_problems(message.get("content"), stops, f"{where}.message.content")
        logprobs = choice.get("logprobs")
        if request.get("logprobs"):
            if not isinstance(logprobs, dict) or not isinstance(logprobs.get("content"), list):
                problems.append(f"{where}.logprobs is {_show(logprobs)} although logprobs were requested")
            else:
                for j, entry in enumerate(logprobs["content"]):
                    if len(entry["top_logprobs"]) > top:
                        problems.append(f"{where}.logprobs.content[{j}] has {len(entry['top_logprobs'])} "
                                        f"top_logprobs; at most {top} were requested")
                        break
        elif logprobs is not None:
            problems.append(f"{where}.logprobs is {_show(logprobs)} although logprobs were not requested")
    if "usage" in body:
        problems += usage_problems(body["usage"], choices=n, max_tokens=chat_token_limit(request),
                                   min_tokens=request.get("min_tokens") or 0)
    return problems[:MAX_PROBLEMS]


def chat_stream_problems(request: dict[str, Any], body: bytes, *, strict: bool = False) -> list[str]:
    """A streamed chat completion for `request`: framing, chunk schema, then the stream's semantics."""
    stream = split_stream(body)
    problems = list(stream.problems)
    problems += [f"in-band error: {_show(e, 200)}" for e in stream.errors]
    for i, chunk in enumerate(stream.chunks):
        problems += schema_problems("CreateChatCompletionStreamResponse", chunk, strict=strict, where=f"chunk {i}")
    if problems:
        return problems[:MAX_PROBLEMS]
    problems += _common_stream_problems(request, stream.chunks, request.get("n") or 1,
                                        max_tokens=chat_token_limit(request))
    texts: dict[int, str] = {}
    seen: set[int] = set()
    stops = [] if request.get("min_tokens") else stops_of(request)
    for i, chunk in enumerate(stream.chunks):
        for choice in chunk["choices"]:
            index, delta = choice["index"], choice["delta"]
            if index not in seen and delta.get("role") != "assistant":
                problems.append(f"chunk {i}: the first delta of choice {index} has no role 'assistant': "
                                f"{_show(delta)}")
            elif index in seen and "role" in delta and delta["role"] is not None:
                problems.append(f"chunk {i}: choice {index} repeats role {delta['role']!r} (clients concatenate it)")
            seen.add(index)
            texts[index] = texts.get(index, "") + (delta.get("content") or "")
            # Text held back for a stop string may go out in a later chunk than its token's logprob (vLLM
            # and our server both do that), so only a missing logprobs object is a problem: clients read
            # `choice.logprobs.content` on every content chunk.
            if request.get("logprobs") and delta.get("content") and not isinstance(choice.get("logprobs"), dict):
                problems.append(f"chunk {i}: choice {index} carries content but logprobs "
                                f"{_show(choice.get('logprobs'))} although they were requested")
            if not request.get("logprobs") and choice.get("logprobs") is not None:
                problems.append(f"chunk {i}: choice {index} carries logprobs although none were requested")
    for index, text in sorted(texts.items()):
        problems += _stop_problems(text, stops, f"choice {index}'s streamed content")
    return problems[:MAX_PROBLEMS]


def _common_stream_problems(request: dict[str, Any], chunks: list[dict[str, Any]], expected: int, *,
                            max_tokens: int | None) -> list[str]:
    """Shared by chat and completions streams: stable id, one finish per choice, the usage trailer."""
    problems: list[str] = []
    if not chunks:
        return ["the stream carries no chunks before [DONE]"]
    ids = {c.get("id") for c in chunks}
    if len(ids) > 1:
        problems.append(f"chunks carry {len(ids)} different ids: {_show(sorted(map(str, ids))[:3])}")
    finishes: dict[int, list[Any]] = {}
    for i, chunk in enumerate(chunks):
        for choice in chunk["choices"]:
            index = choice["index"]
            if not 0 <= index < expected:
                problems.append(f"chunk {i}: choice index {index} outside 0..{expected - 1}")
            if choice.get("finish_reason") is not None:
                finishes.setdefault(index, []).append(choice["finish_reason"])
    for index in range(expected):
        got = finishes.get(index, [])
        if len(got) != 1:
            problems.append(f"choice {index} has {len(got)} non-null finish_reason values {_show(got)}; expected 1")
        elif got[0] not in ("stop", "length", "content_filter"):
            problems.append(f"choice {index} finish_reason is {got[0]!r} although no tools were offered")
    with_usage = [i for i, c in enumerate(chunks) if c.get("usage") is not None]
    asked = bool((request.get("stream_options") or {}).get("include_usage"))
    if asked:
        last = chunks[-1]
        if with_usage != [len(chunks) - 1] or last.get("choices") != []:
            problems.append(f"include_usage asked for one usage chunk with `choices: []` right before [DONE]; "
                            f"usage is non-null in chunks {with_usage[:5]} of {len(chunks)}, the last has "
                            f"choices {_show(last.get('choices'))}")
        else:
            problems += usage_problems(last["usage"], choices=expected, max_tokens=max_tokens,
                                       min_tokens=request.get("min_tokens") or 0, where="usage trailer")
    elif with_usage:
        problems.append(f"usage is non-null in chunks {with_usage[:5]} although include_usage was not asked")
    return problems


# ------------------------------------------------------------------------------------------ completions


def completion_response_problems(request: dict[str, Any], body: Any, *, strict: bool = False) -> list[str]:
    problems = schema_problems("CreateCompletionResponse", body, strict=strict)
    if problems or not isinstance(body, dict):
        return problems
    expected = (request.get("n") or 1) * prompt_count(request.get("prompt"))
    choices = body["choices"]
    problems += _index_problems([c.get("index") for c in choices], expected, "choices")
    echo = request.get("prompt") if request.get("echo") and isinstance(request.get("prompt"), str) else ""
    stops = [] if request.get("min_tokens") or (request.get("echo") and not echo) else stops_of(request)
    for i, choice in enumerate(choices):
        where = f"choices[{i}]"
        if choice["finish_reason"] not in ("stop", "length", "content_filter"):
            problems.append(f"{where}.finish_reason is {choice['finish_reason']!r} in a finished completion")
        text = choice["text"]
        if echo and not text.startswith(echo):
            problems.append(f"{where}.text does not start with the echoed prompt {echo!r}: {_show(text)}")
        problems += _stop_problems(text[len(echo):], stops, f"{where}.text")
        problems += _completion_logprobs_problems(request, choice.get("logprobs"), where)
    if "usage" in body:
        problems += usage_problems(body["usage"], choices=expected, max_tokens=request.get("max_tokens", 16),
                                   min_tokens=request.get("min_tokens") or 0)
    return problems[:MAX_PROBLEMS]


def _completion_logprobs_problems(request: dict[str, Any], logprobs: Any, where: str) -> list[str]:
    if request.get("logprobs") is None:
        return [] if logprobs is None else [f"{where}.logprobs is {_show(logprobs)} although none were requested"]
    if not isinstance(logprobs, dict):
        return [f"{where}.logprobs is {_show(logprobs)} although logprobs were requested"]
    lengths = {k: len(logprobs.get(k) or []) for k in ("tokens", "token_logprobs", "text_offset")}
    if len(set(lengths.values())) != 1:
        return [f"{where}.logprobs arrays differ in length: {lengths}"]
    return []


def completion_stream_problems(request: dict[str, Any], body: bytes, *, strict: bool = False) -> list[str]:
    stream = split_stream(body)
    problems = list(stream.problems)
    problems += [f"in-band error: {_show(e, 200)}" for e in stream.errors]
    for i, chunk in enumerate(stream.chunks):
        problems += schema_problems("CreateCompletionStreamResponse", chunk, strict=strict, where=f"chunk {i}")
    if problems:
        return problems[:MAX_PROBLEMS]
    expected = (request.get("n") or 1) * prompt_count(request.get("prompt"))
    problems += _common_stream_problems(request, stream.chunks, expected, max_tokens=request.get("max_tokens", 16))
    texts: dict[int, str] = {}
    for chunk in stream.chunks:
        for choice in chunk["choices"]:
            texts[choice["index"]] = texts.get(choice["index"], "") + choice["text"]
    echo = request.get("prompt") if request.get("echo") and isinstance(request.get("prompt"), str) else ""
    stops = [] if request.get("min_tokens") or (request.get("echo") and not echo) else stops_of(request)
    for index, text in sorted(texts.items()):
        if echo and not text.startswith(echo):
            problems.append(f"choice {index}'s streamed text does not start with the echoed prompt {echo!r}")
        problems += _stop_problems(text[len(echo):], stops, f"choice {index}'s streamed text")
    return problems[:MAX_PROBLEMS]


# ------------------------------------------------------------------------------------------ embeddings


def embedding_response_problems(request: dict[str, Any], body: Any, *, strict: bool = False) -> list[str]:
    problems = schema_problems("CreateEmbeddingResponse", body, strict=strict)
    if problems or not isinstance(body, dict):
        return problems
    value = request["input"]
    expected = 1 if isinstance(value, str) or all(isinstance(x, int) for x in value) else len(value)
    data = body["data"]
    indexes = [d.get("index") for d in data]
    problems += _index_problems(indexes, expected, "data")
    if not problems and indexes != list(range(expected)):
        problems.append(f"data is not in input order: indexes {_show(indexes)} (clients zip data with inputs)")
    base64 = request.get("encoding_format") == "base64"
    widths = set()
    for i, item in enumerate(data):
        vector = item["embedding"]
        if base64 != isinstance(vector, str):
            problems.append(f"data[{i}].embedding is {'a string' if isinstance(vector, str) else 'an array'} "
                            f"although encoding_format was {request.get('encoding_format', 'float')!r}")
            continue
        if base64:
            try:
                raw = binascii.a2b_base64(vector.encode("ascii"), strict_mode=True)
            except (ValueError, UnicodeEncodeError):
                problems.append(f"data[{i}].embedding is not valid base64: {_show(vector)}")
                continue
            if len(raw) % 4:
                problems.append(f"data[{i}].embedding decodes to {len(raw)} bytes, not a whole number of float32")
            widths.add(len(raw) // 4)
        else:
            widths.add(len(vector))
    if len(widths) > 1:
        problems.append(f"embeddings of one request have different dimensions: {sorted(widths)}")
    dims = request.get("dimensions")
    if dims is not None and widths and widths != {dims}:
        problems.append(f"dimensions {dims} was requested; embeddings have {sorted(widths)}")
    usage = body["usage"]
    if usage["total_tokens"] < usage["prompt_tokens"]:
        problems.append(f"usage.total_tokens {usage['total_tokens']} < prompt_tokens {usage['prompt_tokens']}")
    return problems[:MAX_PROBLEMS]
