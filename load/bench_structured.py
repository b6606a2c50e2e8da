"""Structured output that closes: the share of complete, schema-valid answers on every surface that decodes JSON.

For each schema of the corpus (wirecheck.fixtures.schemas: pydantic models plain and strict, tool-library
shapes, JSON mode) and each surface below, it sends `--seeds` requests at the default temperature with a small
budget (`--max-tokens`, 64) to `wirecheck serve` over HTTP, and prints per surface:

* complete and valid: the answer ended on its own (stop / tool_calls / end_turn / tool_use / completed) and every
  JSON in it parses, has no key twice and validates under the client's own schema; the target is 99%;
* valid when complete: the share of complete answers that are valid (the target is 100%);
* p50 / p99 output tokens.

    python -m wirecheck.load.bench_structured [--target URL] [--seeds 20] [--max-tokens 64] [--concurrency 32]

Without --target it starts `wirecheck serve` on a free port. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jsonschema
import numpy as np

from wirecheck.fixtures.schemas import CORPUS
from wirecheck.spec import sse

COMPLETE_TARGET = 0.99
TOOL = "answer"  # the one tool every tool surface declares, its parameters the schema under test
WEATHER = {"name": "get_weather", "description": "Get the weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@dataclass
class Outcome:
    complete: bool
    valid: bool
    tokens: int
    note: str = ""


class DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) < len(keys):
        raise DuplicateKey(f"a key written twice: {sorted(k for k in keys if keys.count(k) > 1)[0]!r}")
    return dict(pairs)


def judge_json(text: Any, schema: dict[str, Any]) -> str:
    """'' when `text` is JSON without repeated keys that validates under `schema`, else why not."""
    if not isinstance(text, str):
        return f"not a string: {text!r}"[:120]
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates)
        jsonschema.validate(value, schema)
    except (ValueError, jsonschema.ValidationError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]} in {text[:80]!r}"
    return ""


def _events(body: bytes) -> list[dict[str, Any]]:
    out = []
    for item in sse.parse(body):
        if item.kind == "event" and item.has_data and not item.is_done:
            out.append(json.loads(item.data))
    return out


# -------------------------------------------------------------------------------------------- the surfaces
# Each surface: (path, request body builder, judge of the answer) -> Outcome. `tool_only` surfaces need an
# object schema (OpenAI function parameters and Anthropic input_schema are objects).


def _chat_format(schema: dict[str, Any], name: str) -> dict[str, Any]:
    if schema == {"type": "object"}:
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema,
                                                   "strict": name.endswith("-strict")}}


def _tool(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": TOOL, "description": "Give the answer.", "parameters": schema,
                                             **({"strict": True} if name.endswith("-strict") else {})}}


def chat_body(prompt: str, max_tokens: int, seed: int, **fields: Any) -> dict[str, Any]:
    return {"model": "tiny", "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "seed": seed, **fields}


def judge_chat_content(schema, body: dict[str, Any], tokens: int) -> Outcome:
    choice = body["choices"][0]
    problem = judge_json(choice["message"].get("content"), schema)
    return Outcome(choice["finish_reason"] == "stop", not problem, tokens, problem)


def judge_chat_calls(schema, body: dict[str, Any], tokens: int, finishes: tuple[str, ...],
                     text_ok: bool = False) -> Outcome:
    choice = body["choices"][0]
    calls = choice["message"].get("tool_calls") or []
    if not calls and text_ok:  # tool_choice auto: a text answer is a complete answer
        return Outcome(choice["finish_reason"] == "stop", True, tokens)
    schemas = {TOOL: schema, WEATHER["name"]: WEATHER["parameters"]}
    problems = [judge_json(c["function"]["arguments"], schemas.get(c["function"]["name"], {"not": {}}))
                for c in calls] or ["no tool call"]
    problem = next((p for p in problems if p), "")
    return Outcome(choice["finish_reason"] in finishes, not problem, tokens, problem)


def assemble_chat(body: bytes) -> tuple[dict[str, Any], int]:
    """A streamed chat completion as a non-streamed body (choice 0), and its completion tokens."""
    content, finish, tokens = "", None, 0
    calls: dict[int, dict[str, Any]] = {}
    for chunk in _events(body):
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            content += delta.get("content") or ""
            for frag in delta.get("tool_calls") or []:
                call = calls.setdefault(frag["index"], {"function": {"name": "", "arguments": ""}})
                function = frag.get("function") or {}
                call["function"]["name"] += function.get("name") or ""
                call["function"]["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    message = {"content": content or None, "tool_calls": [calls[i] for i in sorted(calls)]}
    return {"choices": [{"message": message, "finish_reason": finish}]}, tokens


def judge_responses(schema, body: dict[str, Any], tokens: int, call: bool) -> Outcome:
    complete = body.get("status") == "completed"
    items = body.get("output") or []
    if call:
        found = [i for i in items if i.get("type") == "function_call"]
        problem = judge_json(found[0]["arguments"], schema) if found else "no function_call"
    else:
        text = "".join(p.get("text", "") for i in items if i.get("type") == "message" for p in i.get("content") or [])
        problem = judge_json(text, schema)
    return Outcome(complete, not problem, tokens, problem)


def judge_messages(schema, body: dict[str, Any], tokens: int, tool: bool) -> Outcome:
    blocks = body.get("content") or []
    if tool:
        uses = [b for b in blocks if b.get("type") == "tool_use"]
        problem = judge_json(json.dumps(uses[0]["input"]), schema) if uses else "no tool_use block"
        return Outcome(body.get("stop_reason") == "tool_use", not problem, tokens, problem)
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    problem = judge_json(text, schema)
    return Outcome(body.get("stop_reason") == "end_turn", not problem, tokens, problem)


def assemble_messages(body: bytes) -> tuple[dict[str, Any], int]:
    blocks: dict[int, dict[str, Any]] = {}
    partial: dict[int, str] = defaultdict(str)
    message: dict[str, Any] = {}
    tokens = 0
    for event in _events(body):
        kind = event.get("type")
        if kind == "content_block_start":
            blocks[event["index"]] = dict(event["content_block"])
        elif kind == "content_block_delta":
            delta = event["delta"]
            if delta.get("type") == "text_delta":
                blocks[event["index"]]["text"] = blocks[event["index"]].get("text", "") + delta["text"]
            elif delta.get("type") == "input_json_delta":
                partial[event["index"]] += delta["partial_json"]
        elif kind == "message_delta":
            message["stop_reason"] = event["delta"].get("stop_reason")
            tokens = (event.get("usage") or {}).get("output_tokens", tokens)
    for index, text in partial.items():
        try:
            blocks[index]["input"] = json.loads(text or "{}", object_pairs_hook=_no_duplicates)
        except ValueError:
            blocks[index]["input"] = None
    message["content"] = [blocks[i] for i in sorted(blocks)]
    return message, tokens


@dataclass(frozen=True)
class Surface:
    name: str
    path: str
    build: Callable[[dict[str, Any], str, str, int, int], dict[str, Any]]  # schema, name, prompt, budget, seed
    judge: Callable[[dict[str, Any], dict[str, Any] | bytes], Outcome]  # schema, JSON body or stream bytes
    tool_only: bool = False
    anthropic: bool = False


def _usage(body: dict[str, Any], key: str) -> int:
    return int((body.get("usage") or {}).get(key) or 0)


SURFACES = [
    Surface("chat response_format", "chat/completions",
            lambda s, n, p, b, seed: chat_body(p, b, seed, response_format=_chat_format(s, n)),
            lambda s, body: judge_chat_content(s, body, _usage(body, "completion_tokens"))),
    Surface("chat response_format, streamed", "chat/completions",
            lambda s, n, p, b, seed: chat_body(p, b, seed, response_format=_chat_format(s, n), stream=True,
                                               stream_options={"include_usage": True}),
            lambda s, raw: judge_chat_content(s, *assemble_chat(raw))),
    Surface("chat forced tool", "chat/completions",
            lambda s, n, p, b, seed: chat_body(p, b, seed, tools=[_tool(s, n)],
                                               tool_choice={"type": "function", "function": {"name": TOOL}}),
            lambda s, body: judge_chat_calls(s, body, _usage(body, "completion_tokens"), ("stop",)), tool_only=True),
    Surface("chat forced tool, streamed", "chat/completions",
            lambda s, n, p, b, seed: chat_body(p, b, seed, tools=[_tool(s, n)], stream=True,
                                               tool_choice={"type": "function", "function": {"name": TOOL}},
                                               stream_options={"include_usage": True}),
            lambda s, raw: judge_chat_calls(s, *assemble_chat(raw), ("stop",)), tool_only=True),
    Surface("chat required, parallel", "chat/completions",
            lambda s, n, p, b, seed: chat_body(p, b, seed, tools=[_tool(s, n), {"type": "function",
                                                                                "function": WEATHER}],
                                               tool_choice="required"),
            lambda s, body: judge_chat_calls(s, body, _usage(body, "completion_tokens"), ("tool_calls",)),
            tool_only=True),
    Surface("chat auto", "chat/completions",
            lambda s, n, p, b, seed: chat_body(p, b, seed, tools=[_tool(s, n)], tool_choice="auto"),
            lambda s, body: judge_chat_calls(s, body, _usage(body, "completion_tokens"), ("tool_calls",),
                                             text_ok=True), tool_only=True),
    Surface("responses text.format", "responses",
            lambda s, n, p, b, seed: {"model": "tiny", "input": p, "max_output_tokens": b, "text": {"format": {
                "type": "json_schema", "name": "answer", "schema": s, "strict": n.endswith("-strict")}}},
            lambda s, body: judge_responses(s, body, _usage(body, "output_tokens"), call=False)),
    Surface("responses function call", "responses",
            lambda s, n, p, b, seed: {"model": "tiny", "input": p, "max_output_tokens": b, "tool_choice": {
                "type": "function", "name": TOOL}, "tools": [{"type": "function", "name": TOOL, "parameters": s,
                                                              "strict": n.endswith("-strict")}]},
            lambda s, body: judge_responses(s, body, _usage(body, "output_tokens"), call=True), tool_only=True),
    Surface("messages tool", "messages",
            lambda s, n, p, b, seed: {"model": "tiny", "max_tokens": b, "messages": [{"role": "user", "content": p}],
                                      "tools": [{"name": TOOL, "input_schema": s}],
                                      "tool_choice": {"type": "tool", "name": TOOL}},
            lambda s, body: judge_messages(s, body, _usage(body, "output_tokens"), tool=True), tool_only=True,
            anthropic=True),
    Surface("messages tool, streamed", "messages",
            lambda s, n, p, b, seed: {"model": "tiny", "max_tokens": b, "messages": [{"role": "user", "content": p}],
                                      "tools": [{"name": TOOL, "input_schema": s}], "stream": True,
                                      "tool_choice": {"type": "tool", "name": TOOL}},
            lambda s, raw: judge_messages(s, *assemble_messages(raw), tool=True), tool_only=True, anthropic=True),
    Surface("messages output_config.format", "messages",
            lambda s, n, p, b, seed: {"model": "tiny", "max_tokens": b, "messages": [{"role": "user", "content": p}],
                                      "output_config": {"format": {"type": "json_schema", "schema": s}}},
            lambda s, body: judge_messages(s, body, _usage(body, "output_tokens"), tool=False), anthropic=True),
]


def _is_object(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "object"


async def run_one(client: httpx.AsyncClient, base: str, surface: Surface, name: str, schema: dict[str, Any],
                  prompt: str, budget: int, seed: int) -> Outcome:
    body = surface.build(schema, name, prompt, budget, seed)
    headers = {"anthropic-version": "2023-06-01"} if surface.anthropic else {}
    response = await client.post(f"{base}/v1/{surface.path}", json=body, headers=headers)
    if response.status_code != 200:
        return Outcome(False, False, 0, f"HTTP {response.status_code}: {response.text[:200]}")
    payload = response.content if body.get("stream") else response.json()
    return surface.judge(schema, payload)


async def run_all(base: str, seeds: int, budget: int, concurrency: int, only: list[str]) -> dict[str, list[Any]]:
    jobs = [(surface, name, schema, prompt, seed)
            for surface in SURFACES for name, (schema, prompt) in CORPUS.items()
            if (not only or name in only) and (_is_object(schema) or not surface.tool_only)
            for seed in range(seeds)]
    results: dict[str, list[Any]] = defaultdict(list)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def one(job):
            surface, name, schema, prompt, seed = job
            async with gate:
                outcome = await run_one(client, base, surface, name, schema, prompt, budget, seed)
            results[surface.name].append((name, seed, outcome))

        await asyncio.gather(*(one(job) for job in jobs))
    return results


def report(results: dict[str, list[Any]], budget: int) -> bool:
    print(f"\nstructured output at the default temperature, max tokens {budget}; complete = ended on its own")
    print(f"{'surface':34} {'answers':>7} {'complete+valid':>15} {'valid|complete':>15} {'tokens p50/p99':>15}")
    everything: list[Outcome] = []
    for surface in SURFACES:
        rows = results.get(surface.name, [])
        if not rows:
            continue
        outcomes = [o for _, _, o in rows]
        everything += outcomes
        print(_line(surface.name, outcomes))
    print(_line("all surfaces", everything))
    failed = [(s, n, seed, o) for s, rows in results.items() for n, seed, o in rows if not (o.complete and o.valid)]
    for s, n, seed, o in failed[:12]:
        print(f"  not complete+valid: {s} / {n} / seed {seed}: {o.note or ('cut off' if not o.complete else '')}")
    share = sum(o.complete and o.valid for o in everything) / max(1, len(everything))
    complete = [o for o in everything if o.complete]
    valid_when_complete = sum(o.valid for o in complete) / max(1, len(complete))
    ok = share >= COMPLETE_TARGET and valid_when_complete == 1.0
    print(f"\ntarget: >= {COMPLETE_TARGET:.0%} complete and valid ({share:.2%}), 100% valid when complete "
          f"({valid_when_complete:.2%}): {'met' if ok else 'MISSED'}")
    return ok


def _line(name: str, outcomes: list[Outcome]) -> str:
    n = len(outcomes)
    good = sum(o.complete and o.valid for o in outcomes)
    complete = [o for o in outcomes if o.complete]
    valid = sum(o.valid for o in complete)
    tokens = np.array([o.tokens for o in outcomes]) if outcomes else np.zeros(1)
    return (f"{name:34} {n:7d} {good / max(1, n):15.2%} {valid / max(1, len(complete)):15.2%} "
            f"{int(np.percentile(tokens, 50)):>7d}/{int(np.percentile(tokens, 99)):<7d}")


def _serve() -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "wirecheck", "serve", "--port", str(port), "--log-level",
                             "warning"])
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit("wirecheck serve exited before it was ready")
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("wirecheck serve was not ready in 120 s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", help="base URL of a running wirecheck serve (default: start one)")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--schema", action="append", default=[], help="only this corpus schema (repeatable)")
    args = ap.parse_args(argv)
    proc, base = (None, args.target.rstrip("/").removesuffix("/v1")) if args.target else _serve()
    try:
        started = time.perf_counter()
        results = asyncio.run(run_all(base, args.seeds, args.max_tokens, args.concurrency, args.schema))
        ok = report(results, args.max_tokens)
        print(f"({sum(len(r) for r in results.values())} requests in {time.perf_counter() - started:.0f} s)")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=15)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
