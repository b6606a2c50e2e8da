"""Load profiles: which request each surface sends and which stream events carry tokens.

Pure functions. A "token event" is an event that carries generated output: text, reasoning or tool
arguments. Role preludes, pings, ``message_start``, keep-alive comments and usage-only chunks are not
(counting them deflates TTFT: research/load.md P9). "Content" is a token event that is not reasoning,
so time to first content (TTFO) differs from TTFT only on reasoning models.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .prompts import prompt_text


@dataclass(frozen=True)
class Parsed:
    """What one response said, apart from timing."""

    token_events: list[int]          # indexes (into the events given) of token events
    content_events: list[int]        # the subset that is not reasoning
    usage_out: int | None
    usage_in: int | None
    complete: bool                   # the stream's terminal event (or a whole JSON body) arrived
    error: str | None                # an error the body reported (mid-stream error event)


@dataclass(frozen=True)
class Profile:
    name: str
    path: str
    stream: bool
    anthropic: bool
    build: Callable[[str, str, int], dict]            # (model, prompt, max_tokens) -> body
    parse_stream: Callable[[list[tuple[str | None, str]]], Parsed] | None  # [(event name, data)]
    parse_body: Callable[[dict], Parsed] | None


def _chat_body(model: str, prompt: str, max_tokens: int) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}


def _chat_stream_body(model: str, prompt: str, max_tokens: int) -> dict:
    return {**_chat_body(model, prompt, max_tokens), "stream": True, "stream_options": {"include_usage": True}}


def _completions_body(model: str, prompt: str, max_tokens: int) -> dict:
    return {"model": model, "prompt": prompt, "max_tokens": max_tokens}


def _completions_stream_body(model: str, prompt: str, max_tokens: int) -> dict:
    return {**_completions_body(model, prompt, max_tokens), "stream": True, "stream_options": {"include_usage": True}}


def _embeddings_body(model: str, prompt: str, max_tokens: int) -> dict:
    return {"model": model, "input": prompt}


def _messages_stream_body(model: str, prompt: str, max_tokens: int) -> dict:
    return {"model": model, "max_tokens": max_tokens, "stream": True,
            "messages": [{"role": "user", "content": prompt}]}


def _responses_stream_body(model: str, prompt: str, max_tokens: int) -> dict:
    return {"model": model, "input": prompt, "max_output_tokens": max_tokens, "stream": True}


def _json_events(events: Iterable[tuple[str | None, str]]) -> Iterable[tuple[int, str | None, dict | None]]:
    for i, (name, data) in enumerate(events):
        if data == "[DONE]":
            yield i, "[DONE]", None
            continue
        try:
            obj = json.loads(data)
        except ValueError:
            obj = None
        yield i, name, obj if isinstance(obj, dict) else None


def _usage(obj: dict, out_key: str, in_key: str) -> tuple[int | None, int | None]:
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        return None, None
    out, inp = usage.get(out_key), usage.get(in_key)
    return (out if isinstance(out, int) else None), (inp if isinstance(inp, int) else None)


def _error_text(obj: dict) -> str:
    err = obj.get("error")
    if isinstance(err, dict):
        return f"{err.get('type') or err.get('code') or 'error'}: {err.get('message')}"
    return f"error: {err}"


class _Acc:
    """What the stream parsers collect while walking the events."""

    def __init__(self) -> None:
        self.tokens: list[int] = []
        self.content: list[int] = []
        self.out: int | None = None
        self.inp: int | None = None
        self.done = False
        self.error: str | None = None

    def token(self, i: int, reasoning: bool) -> None:
        self.tokens.append(i)
        if not reasoning:
            self.content.append(i)

    def usage(self, pair: tuple[int | None, int | None]) -> None:
        out, inp = pair
        self.out = out if out is not None else self.out
        self.inp = inp if inp is not None else self.inp

    def parsed(self) -> Parsed:
        return Parsed(self.tokens, self.content, self.out, self.inp, self.done, self.error)


def parse_openai_stream(events: list[tuple[str | None, str]], text_of: Callable[[dict], tuple[bool, bool]]
                        ) -> Parsed:
    """Chat or completions chunks; ``text_of(choice)`` says (token?, reasoning-only?)."""
    acc = _Acc()
    for i, name, obj in _json_events(events):
        if name == "[DONE]":
            acc.done = True
        elif obj is not None and "error" in obj:
            acc.error = _error_text(obj)
        elif obj is not None:
            for choice in obj.get("choices") or []:
                is_token, reasoning = text_of(choice) if isinstance(choice, dict) else (False, False)
                if is_token:
                    acc.token(i, reasoning)
                    break
            acc.usage(_usage(obj, "completion_tokens", "prompt_tokens"))
    return acc.parsed()


def _chat_delta(choice: dict) -> tuple[bool, bool]:
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return False, False
    if delta.get("content") or delta.get("tool_calls") or delta.get("refusal"):
        return True, False
    if delta.get("reasoning_content") or delta.get("reasoning"):
        return True, True
    return False, False


def _completion_text(choice: dict) -> tuple[bool, bool]:
    return bool(choice.get("text")), False


def parse_chat_stream(events: list[tuple[str | None, str]]) -> Parsed:
    return parse_openai_stream(events, _chat_delta)


def parse_completions_stream(events: list[tuple[str | None, str]]) -> Parsed:
    return parse_openai_stream(events, _completion_text)


_ANTHROPIC_DELTAS = {"text_delta": False, "input_json_delta": False, "thinking_delta": True}


def parse_messages_stream(events: list[tuple[str | None, str]]) -> Parsed:
    acc = _Acc()
    for i, _, obj in _json_events(events):
        kind = obj.get("type") if obj else None
        if kind == "content_block_delta":
            delta = obj.get("delta") or {}
            reasoning = _ANTHROPIC_DELTAS.get(delta.get("type"))
            if reasoning is not None and (delta.get("text") or delta.get("partial_json") or delta.get("thinking")):
                acc.token(i, reasoning)
        elif kind == "message_start":
            acc.usage((None, _usage(obj.get("message") or {}, "output_tokens", "input_tokens")[1]))
        elif kind == "message_delta":
            acc.usage((_usage(obj, "output_tokens", "input_tokens")[0], None))
        elif kind == "message_stop":
            acc.done = True
        elif kind == "error":
            acc.error = _error_text(obj)
    return acc.parsed()


_RESPONSES_DELTAS = {"response.output_text.delta": False, "response.function_call_arguments.delta": False,
                     "response.refusal.delta": False, "response.reasoning_text.delta": True,
                     "response.reasoning_summary_text.delta": True}
_RESPONSES_TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


def parse_responses_stream(events: list[tuple[str | None, str]]) -> Parsed:
    acc = _Acc()
    for i, _, obj in _json_events(events):
        kind = obj.get("type") if obj else None
        if kind in _RESPONSES_DELTAS and obj.get("delta"):
            acc.token(i, _RESPONSES_DELTAS[kind])
        elif kind in _RESPONSES_TERMINAL:
            acc.done = True
            acc.usage(_usage(obj.get("response") or {}, "output_tokens", "input_tokens"))
            if kind == "response.failed":
                acc.error = _error_text(obj.get("response") or {})
        elif kind == "error":
            acc.error = f"{obj.get('code') or 'error'}: {obj.get('message')}"
    return acc.parsed()


def _parse_chat_body(obj: dict) -> Parsed:
    out, inp = _usage(obj, "completion_tokens", "prompt_tokens")
    return Parsed([0], [0], out, inp, bool(obj.get("choices")), None)


def _parse_embeddings_body(obj: dict) -> Parsed:
    _, inp = _usage(obj, "completion_tokens", "prompt_tokens")
    return Parsed([0], [0], 0, inp, bool(obj.get("data")), None)


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("chat-stream", "/v1/chat/completions", True, False, _chat_stream_body, parse_chat_stream, None),
    Profile("chat", "/v1/chat/completions", False, False, _chat_body, None, _parse_chat_body),
    Profile("completions-stream", "/v1/completions", True, False, _completions_stream_body,
            parse_completions_stream, None),
    Profile("completions", "/v1/completions", False, False, _completions_body, None, _parse_chat_body),
    Profile("embeddings", "/v1/embeddings", False, False, _embeddings_body, None, _parse_embeddings_body),
    Profile("messages-stream", "/v1/messages", True, True, _messages_stream_body, parse_messages_stream, None),
    Profile("responses-stream", "/v1/responses", True, False, _responses_stream_body, parse_responses_stream, None),
)}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown load profile {name!r}; choose from {', '.join(PROFILES)}") from None


def request_body(profile: Profile, model: str, index: int, input_tokens: int, output_tokens: int,
                 extra: dict, seed: int = 0) -> dict:
    """Request ``index`` of a run: its own prompt, the profile's shape, then ``extra`` fields merged on top."""
    body = profile.build(model, prompt_text(index, input_tokens, seed), output_tokens)
    return {**body, **extra}


def auth_headers(profile: Profile, api_key: str | None) -> dict[str, str]:
    headers = {"Accept-Encoding": "identity"}  # compression makes servers and proxies buffer (P7)
    if profile.anthropic:
        headers["anthropic-version"] = "2023-06-01"
        if api_key:
            headers["x-api-key"] = api_key
    elif api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers
